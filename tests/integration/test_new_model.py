"""`mlops new-model` on a source table it has never seen: the scaffolded spec is valid, its suite passes on the
table's own data, and the scaffolded entrypoint trains a model that the gate promotes; the DAG factory builds the
model's five DAGs from the spec. Also: two models on one dataset keep their drift and performance records apart."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine

from mlops_provider.cli import main
from mlops_provider.demo.churn_source import SourceSpec, dates_between, seed_range
from mlops_provider.demo.transactions_source import TRANSACTIONS
from mlops_provider.spec import load_spec
from tests.helpers import task_context

pytestmark = pytest.mark.integration

DAYS = dates_between(dt.date(2026, 11, 1), dt.date(2026, 11, 3))


def test_new_model_scaffolds_a_spec_and_suite_that_pass_and_a_model_that_is_promoted(mlops_home, tmp_path):
    from mlops_provider.factory import build_dags
    from mlops_provider.layout import partition_path, partition_tag, training_set_path, training_set_tag
    from mlops_provider.operators.dvc import DvcVersionOperator
    from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
    from mlops_provider.operators.promotion import EvaluateModelOperator, PromoteModelOperator
    from mlops_provider.operators.sql import SqlToParquetOperator
    from mlops_provider.operators.training import TrainModelOperator
    from mlops_provider.operators.training_set import TrainingSetAssemblyOperator

    url = f"sqlite:///{mlops_home / 'source.db'}"
    seed_range(create_engine(url), DAYS, SourceSpec(seed=21, rows_per_day=1500), TRANSACTIONS)
    models = tmp_path / "models"
    args = ["--url", url, "--table", "card_transactions", "--timestamp-column", "tx_ts", "--key-column", "card_id",
            "--label", "is_fraud", "--days", "3", "--out", str(models)]  # fmt: skip
    assert main(["new-model", "tx_risk", *args]) == 0
    spec = load_spec(models / "tx_risk.yaml")
    assert spec.dataset.key_column == "card_id" and spec.label.column == "is_fraud"
    assert {"amount", "distance_km"} <= set(spec.features.numerical) and "channel" in spec.features.categorical
    assert not {"tx_id", "card_id", "tx_ts", "is_fraud"} & set(spec.features.columns)  # ids, key, time, label
    assert sorted(build_dags(spec)) == sorted(
        f"tx_risk__{s}" for s in ("ingest", "training", "promotion", "drift_monitoring", "rollback")
    )

    data = spec.dataset
    for day in DAYS:  # the ingest stage, as the factory composes it, on the table's own data
        staged = SqlToParquetOperator(
            task_id="extract", conn_id="mlops_source", table=data.table, timestamp_column=data.timestamp_column,
            parse_dates=data.parse_dates, dataset=data.name,
        ).execute(task_context(day))  # fmt: skip
        verdict = GreatExpectationsValidateOperator(
            task_id="validate", data_path=staged["path"], suite_path=str(spec.resolve(spec.validation)),
            dataset=data.name, timestamp_column=data.timestamp_column,
        ).execute(task_context(day, task_id="validate"))  # fmt: skip
        assert verdict["success"] is True, verdict
        DvcVersionOperator(
            task_id="version", source_path=staged["path"], target_path=partition_path(data.name, str(day)),
            tag=partition_tag(data.name, str(day)),
        ).execute(task_context(day, task_id="version"))  # fmt: skip
    assembled = TrainingSetAssemblyOperator(
        task_id="assemble", dataset=data.name, training_set=spec.name, partition=str(DAYS[-1]),
        window_days=spec.training.window_days,
    ).execute(task_context(DAYS[-1], dag_id="tx_risk__ingest", task_id="assemble"))  # fmt: skip
    assert assembled["partitions"] == [str(d) for d in DAYS]

    trained = TrainModelOperator(
        task_id="train", dataset_path=training_set_path(spec.name),
        dataset_rev=training_set_tag(spec.name, str(DAYS[-1])),
        entrypoint=str(spec.resolve(spec.training.entrypoint)), model_schema=spec.entrypoint_schema(),
        holdout=spec.holdout,
        hyperparameter_spec=str(spec.resolve(spec.training.hyperparameters)), experiment_name=spec.experiment,
        model_name=spec.name, runner="local",
    ).execute(task_context(None, dag_id="tx_risk__training", run_id="manual__1", task_id="train"))  # fmt: skip
    evaluation = EvaluateModelOperator(
        task_id="evaluate", model_name=spec.name, challenger_version=trained["version"],
        gate_rules=spec.gate.rules(None), behaviour_tests=None, label_column=spec.label.column,
        positive_class=spec.label.positive_class,
    ).execute(task_context(None, dag_id="tx_risk__promotion", run_id="r", task_id="evaluate"))  # fmt: skip
    assert evaluation["decision"] == "promote", evaluation
    PromoteModelOperator(
        task_id="promote", model_name=spec.name, version=evaluation["challenger_version"],
        expected_champion=evaluation["champion_version"],
    ).execute(task_context(None, dag_id="tx_risk__promotion", run_id="r", task_id="promote"))  # fmt: skip
    from mlops_provider.hooks.mlflow import MlflowHook

    assert MlflowHook().alias_version(spec.name, "champion") == trained["version"]


def test_scaffolding_refuses_to_overwrite_and_names_a_missing_column(mlops_home, tmp_path, capsys):
    url = f"sqlite:///{mlops_home / 'source.db'}"
    seed_range(create_engine(url), DAYS[:1], SourceSpec(rows_per_day=200), TRANSACTIONS)
    args = ["--url", url, "--table", "card_transactions", "--timestamp-column", "tx_ts", "--key-column", "card_id",
            "--days", "1", "--out", str(tmp_path)]  # fmt: skip
    assert main(["new-model", "a_model", "--label", "fraud", *args]) == 2
    assert "column 'fraud' is not in table card_transactions" in capsys.readouterr().err
    assert main(["new-model", "a_model", "--label", "is_fraud", *args]) == 0
    assert main(["new-model", "a_model", "--label", "is_fraud", *args]) == 2
    assert "exists already" in capsys.readouterr().err
