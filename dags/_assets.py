"""Assets shared by the DAGs (this file defines no DAG; dags/.airflowignore keeps the processor off it)."""

from __future__ import annotations

from airflow.sdk import Asset

DATASET = "customer_activity"
MODEL_NAME = "churn_classifier"

#: Emitted by ingest after each training-set version; extra = {rev, md5, rows, partitions, tag, path}.
TRAINING_SET = Asset(name=f"{DATASET}_training_set", uri=f"mlops://training-set/{DATASET}")
#: Emitted by training after a model version is registered with alias challenger; extra = the train XCom.
CHALLENGER = Asset(name=f"{MODEL_NAME}_challenger", uri=f"mlops://model/{MODEL_NAME}/challenger")
