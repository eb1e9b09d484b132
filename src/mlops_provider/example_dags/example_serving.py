"""Example: package a model version as a serving image and check it against the registry's model.

Extras: ``mlflow`` (the version's artifacts), ``docker`` (image build and containers through the Docker
provider's ``DockerHook``; ``docker_conn_id`` names a ``docker`` connection for the registry login).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.operators.serving import PackageModelOperator, ShadowCheckOperator

with DAG(
    dag_id="example_mlops_serving",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "mlops"],
    params={"model_name": Param("orders_model", type="string"), "version": Param("1", type="string")},
) as dag:
    # --8<-- [start:howto_operator_package_model]
    package = PackageModelOperator(
        task_id="package",
        model_name="{{ params.model_name }}",
        version="{{ params.version }}",
        serving_dir="/opt/airflow/include/serving",  # holds the serving Dockerfile
        requirements="/opt/airflow/include/serving/requirements.txt",
        runner="docker",
        docker_conn_id=None,  # or a `docker` connection: registry URL, login, TLS
    )
    # --8<-- [end:howto_operator_package_model]

    # --8<-- [start:howto_operator_shadow_check]
    ShadowCheckOperator(
        task_id="shadow_check",
        package=package.output,
        dataset="orders",  # replays the newest validated partition
        p95_ms=200,
    )
    # --8<-- [end:howto_operator_shadow_check]
