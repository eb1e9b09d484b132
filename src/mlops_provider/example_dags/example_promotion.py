"""Example: promote a reviewed model version to champion by hand, wait for the alias, roll back.

Extra: ``mlflow``. The automatic path (evaluate, gate, package, shadow check, promote) is what the model spec's
promotion DAG composes; this one is for a human who already reviewed a version.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.operators.promotion import PromoteModelOperator, RollbackModelOperator
from mlops_provider.sensors.mlflow import ChampionSensor

with DAG(
    dag_id="example_mlops_promotion",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "mlops"],
    params={
        "model_name": Param("orders_model", type="string"),
        "version": Param("1", type="string", description="the version to make champion"),
        "expected_champion": Param(
            "", type="string", description="the champion you reviewed it against; empty: there is none yet"
        ),
    },
) as dag:
    # --8<-- [start:howto_operator_promote_model]
    promote = PromoteModelOperator(
        task_id="promote",
        model_name="{{ params.model_name }}",
        version="{{ params.version }}",
        expected_champion="{{ params.expected_champion }}",  # compare-and-set: fails if someone moved it since
        pool="model_promotion",
    )
    # --8<-- [end:howto_operator_promote_model]

    # --8<-- [start:howto_sensor_champion]
    champion = ChampionSensor(task_id="wait_for_champion", model_name="{{ params.model_name }}", poke_interval=30)
    # --8<-- [end:howto_sensor_champion]

    promote >> champion

with DAG(
    dag_id="example_mlops_rollback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "mlops"],
    params={
        "model_name": Param("orders_model", type="string"),
        "reason": Param("", type="string", minLength=3, description="recorded on both versions"),
    },
) as rollback_dag:
    # --8<-- [start:howto_operator_rollback_model]
    RollbackModelOperator(
        task_id="rollback", model_name="{{ params.model_name }}", reason="{{ params.reason }}", pool="model_promotion"
    )
    # --8<-- [end:howto_operator_rollback_model]
