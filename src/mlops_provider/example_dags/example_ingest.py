"""Example: ingest one day of a table (extract, validate, version) and assemble the training set.

Extras: ``gx`` (validation), ``dvc`` (versioning, training set); the extract needs only the core and the
source's Airflow provider (e.g. ``apache-airflow-providers-postgres``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.layout import partition_path, partition_tag
from mlops_provider.operators.dvc import DvcVersionOperator
from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
from mlops_provider.operators.sql import SqlToParquetOperator
from mlops_provider.operators.training_set import TrainingSetAssemblyOperator
from mlops_provider.utils.templated_fields import INTERVAL_DATE

DATASET = "orders"  # the name partitions, tags and reports of this table go by

with DAG(
    dag_id="example_mlops_ingest",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),  # each run ingests its own data interval
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "mlops"],
) as dag:
    # --8<-- [start:howto_operator_sql_to_parquet]
    extract = SqlToParquetOperator(
        task_id="extract",
        conn_id="orders_db",  # any connection whose hook is a DbApiHook (postgres, mysql, sqlite, ...)
        table="orders",
        timestamp_column="created_at",  # rows with data_interval_start <= created_at < data_interval_end
        dataset=DATASET,
    )
    # --8<-- [end:howto_operator_sql_to_parquet]

    # --8<-- [start:howto_operator_gx_validate]
    validate = GreatExpectationsValidateOperator(
        task_id="validate",
        data_path=extract.output,  # the extract's whole result: the operator reads its "path"
        suite_path="/opt/airflow/include/gx/orders.json",  # a GX 1.x expectation suite (JSON), reviewed like code
        dataset=DATASET,
        timestamp_column="created_at",
    )
    # --8<-- [end:howto_operator_gx_validate]

    # --8<-- [start:howto_operator_dvc_version]
    version = DvcVersionOperator(
        task_id="version_partition",
        source_path=extract.output,  # reads its "path"
        target_path=partition_path(DATASET, INTERVAL_DATE),
        tag=partition_tag(DATASET, INTERVAL_DATE),  # one immutable tag per day: a re-run never moves it
        pool="dvc_workspace",
    )
    # --8<-- [end:howto_operator_dvc_version]

    # --8<-- [start:howto_operator_training_set]
    assemble = TrainingSetAssemblyOperator(
        task_id="assemble_training_set",
        dataset=DATASET,
        training_set="orders_model",
        window_days=30,
        min_partitions=7,
        pool="dvc_workspace",
    )
    # --8<-- [end:howto_operator_training_set]

    extract >> validate >> version >> assemble
