"""`mlops new-model` on a source table it has never seen: the scaffolded spec is valid, its suite passes on the
table's own data, and the scaffolded entrypoint trains a model that the gate promotes; the DAG factory builds the
model's five DAGs from the spec. Also: two models on one dataset keep their drift and performance records apart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine

from mlops_provider.cli.main import main
from mlops_provider.demo.churn_source import SourceSpec, dates_between, seed_range
from mlops_provider.demo.transactions_source import TRANSACTIONS
from mlops_provider.loop.spec import load_spec
from tests.helpers import task_context

pytestmark = pytest.mark.integration

DAYS = dates_between(dt.date(2026, 11, 1), dt.date(2026, 11, 3))


def test_new_model_scaffolds_a_spec_and_suite_that_pass_and_a_model_that_is_promoted(mlops_home, tmp_path):
    from mlops_provider.layout import partition_path, partition_tag, training_set_path, training_set_tag
    from mlops_provider.loop.factory import build_dags
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


# -- what would fail at training time is refused before anything is written (issue 27) ----------------------------


def events(rows: int = 300, days: int = 3, **columns) -> pd.DataFrame:
    """A small event table over ``days`` days: an id, a timestamp, a key, two features, a 0/1 label; ``columns``
    replaces or adds columns (a list, or a name -> new name for a rename)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(rows)],
            "ts": pd.Timestamp("2026-11-01") + pd.to_timedelta(np.arange(rows) * (days * 86400 // rows), unit="s"),
            "customer": [f"c{i % 40}" for i in range(rows)],
            "amount": rng.gamma(2.0, 30.0, rows).round(2),
            "channel": rng.choice(["web", "shop"], rows),
            "label": rng.integers(0, 2, rows),
        }
    )
    for name, value in columns.items():
        if isinstance(value, str):
            frame = frame.rename(columns={name: value})
        else:
            frame[name] = value
    return frame


def new_model(mlops_home: Path, frame: pd.DataFrame, out: Path, *extra: str, table: str = "events",
              ts: str = "ts", key: str = "customer", label: str = "label") -> int:  # fmt: skip
    url = f"sqlite:///{mlops_home / 'source.db'}"
    frame.to_sql(table, create_engine(url), index=False, if_exists="replace")
    args = ["--url", url, "--table", table, "--timestamp-column", ts, "--key-column", key, "--label", label,
            "--days", "3", "--out", str(out), *extra]  # fmt: skip
    return main(["new-model", "my_model", *args])


def nothing_written(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("name,char", [("amount<100", "<"), ("score[0]", "["), ("score]", "]")])
def test_new_model_refuses_a_feature_name_xgboost_refuses(mlops_home, tmp_path, capsys, name, char):
    out = tmp_path / "models"
    assert new_model(mlops_home, events(amount=name), out) == 2
    err = capsys.readouterr().err
    assert f"column {name!r}" in err and f"{char!r}" in err and "XGBoost" in err, err
    assert nothing_written(out)


def test_new_model_refuses_a_label_with_one_class(mlops_home, tmp_path, capsys):
    out = tmp_path / "models"
    assert new_model(mlops_home, events(label=[0] * 300), out) == 2
    err = capsys.readouterr().err
    assert "label column 'label' has one value (0)" in err and "300 rows" in err and "--days" in err, err
    assert nothing_written(out)


def test_new_model_asks_which_text_label_value_is_positive(mlops_home, tmp_path, capsys):
    out = tmp_path / "models"
    frame = events(label=np.where(np.arange(300) % 3 == 0, "yes", "no"))
    assert new_model(mlops_home, frame, out) == 2
    err = capsys.readouterr().err
    assert "label column 'label' has values ['no', 'yes']" in err and "--positive-class" in err, err
    assert nothing_written(out)
    assert new_model(mlops_home, frame, out, "--positive-class", "maybe") == 2
    assert "'maybe' is not a value of label column 'label'" in capsys.readouterr().err
    assert nothing_written(out)
    assert new_model(mlops_home, frame, out, "--positive-class", "yes") == 0
    assert load_spec(out / "my_model.yaml").label.positive_class == "yes"
    assert main(["spec", "check", str(out / "my_model.yaml")]) == 0


def test_new_model_refuses_a_sample_too_small_to_learn_bounds_from(mlops_home, tmp_path, capsys):
    out = tmp_path / "models"
    assert new_model(mlops_home, events(rows=1), out) == 2
    err = capsys.readouterr().err
    assert "1 row(s)" in err and "--days" in err, err
    assert nothing_written(out)


def test_new_model_quotes_table_and_column_names_with_spaces_and_the_ingest_reads_them(mlops_home, tmp_path):
    from mlops_provider.operators.sql import SqlToParquetOperator

    out = tmp_path / "models"
    frame = events(ts="event ts", customer="customer id", amount="amount usd")
    assert new_model(mlops_home, frame, out, table="card events", ts="event ts", key="customer id") == 0
    spec = load_spec(out / "my_model.yaml")
    assert spec.dataset.table == "card events" and "amount usd" in spec.features.numerical
    staged = SqlToParquetOperator(
        task_id="extract", conn_id="mlops_source", table=spec.dataset.table,
        timestamp_column=spec.dataset.timestamp_column, parse_dates=spec.dataset.parse_dates, dataset="d",
    ).execute(task_context(dt.date(2026, 11, 2)))  # fmt: skip
    assert staged["rows"] == 100


def test_new_model_names_a_missing_table(mlops_home, tmp_path, capsys):
    out = tmp_path / "models"
    assert new_model(mlops_home, events(), out, table="events", ts="ts") == 0
    url = f"sqlite:///{mlops_home / 'source.db'}"
    args = ["--url", url, "--table", "no_such_table", "--timestamp-column", "ts", "--key-column", "customer",
            "--label", "label", "--out", str(tmp_path / "other")]  # fmt: skip
    assert main(["new-model", "m2", *args]) == 2
    assert "table 'no_such_table' does not exist" in capsys.readouterr().err


# -- the source is opened through the hook the extract task uses (issue 30, item 2) -------------------------------


def extract_outcome(conn_id: str) -> str:
    """``ok`` or the message of the extract task's failure on the connection (the first sampled day)."""
    from mlops_provider.operators.sql import SqlToParquetOperator

    try:
        SqlToParquetOperator(
            task_id="extract", conn_id=conn_id, table="events", timestamp_column="ts", dataset="d"
        ).execute(task_context(dt.date(2026, 11, 2)))
    except Exception as exc:  # noqa: BLE001 (the outcome is compared, whatever it is)
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:////{db}",  # SQLAlchemy's absolute form: Airflow's SqliteHook cannot open it (host '', schema /path)
        "sqlite:///{rel}",  # Airflow's absolute form (three slashes, then the path without its leading slash)
        "sqlite://{quoted}",  # the path in the host, URL-encoded
    ],
)
def test_one_connection_works_for_new_model_and_the_extract_or_for_neither(mlops_home, tmp_path, capsys,
                                                                            monkeypatch, uri):  # fmt: skip
    from urllib.parse import quote

    db = mlops_home / "source.db"
    events().to_sql("events", create_engine(f"sqlite:///{db}"), index=False)
    given = uri.format(db=str(db).lstrip("/"), rel=str(db).lstrip("/"), quoted=quote(str(db), safe=""))
    monkeypatch.setenv("AIRFLOW_CONN_SRC", given)
    args = ["--conn-id", "src", "--table", "events", "--timestamp-column", "ts", "--key-column", "customer",
            "--label", "label", "--days", "3", "--out", str(tmp_path / "models")]  # fmt: skip
    cli = main(["new-model", "my_model", *args])
    err = capsys.readouterr().err
    extract = extract_outcome("src")
    assert (cli == 0) == (extract == "ok"), (given, cli, err, extract)
    if cli != 0:
        assert "connection 'src'" in err and "sqlite" in err, err
        assert nothing_written(tmp_path / "models")


def test_a_connection_type_whose_provider_is_missing_names_the_package(mlops_home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SRC", "mysql://user:secret-pw@localhost:3306/shop")
    args = ["--conn-id", "src", "--table", "events", "--timestamp-column", "ts", "--key-column", "customer",
            "--label", "label", "--out", str(tmp_path / "models")]  # fmt: skip
    assert main(["new-model", "my_model", *args]) == 2
    err = capsys.readouterr().err
    assert "connection 'src'" in err and "apache-airflow-providers-mysql" in err and "Traceback" not in err, err
    extract = extract_outcome("src")
    assert extract.startswith("AirflowFailException") and "apache-airflow-providers-mysql" in extract, extract
    assert main(["new-model", "my_model", *args[:1], "no_such_conn", *args[2:]]) == 2
    assert "connection 'no_such_conn' is not defined" in capsys.readouterr().err


# -- scaffolding from real history: a date range, per-day worst cases, a per-day dry run (issue 30, item 4) ---------


def history(days: int = 20, rows: int = 200, incident: dt.date | None = None) -> pd.DataFrame:
    """``days`` days from 2026-10-01 of ``rows`` rows each; ``amount`` is null in 1 % of an ordinary day's rows and
    in 20 % on every fifth day (a regular pattern, e.g. a weekly batch); ``incident``: a day with 90 % nulls."""
    rng = np.random.default_rng(1)
    frames = []
    for index in range(days):
        day = dt.date(2026, 10, 1) + dt.timedelta(days=index)
        frame = events(rows=rows, days=1)
        frame["event_id"] = [f"e{index}_{i}" for i in range(rows)]
        frame["ts"] = pd.Timestamp(day) + pd.to_timedelta(np.arange(rows) * (86400 // rows), unit="s")
        share = 0.9 if day == incident else 0.2 if index % 5 == 4 else 0.01
        frame.loc[rng.random(rows) < share, "amount"] = np.nan
        frame.loc[frame.index[: max(1, int(rows * share) // 2)], "amount"] = np.nan  # at least the share's half
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_new_model_learns_null_rates_from_the_worst_ordinary_day_and_dry_runs_each_day(mlops_home, tmp_path, capsys):
    from mlops_provider.hooks.great_expectations import GreatExpectationsHook

    out = tmp_path / "models"
    frame = history()
    assert new_model(mlops_home, frame, out, "--start", "2026-10-01", "--end", "2026-10-20") == 0
    printed = capsys.readouterr().out
    assert "dry run: 0 of 20 sampled days would fail" in printed, printed
    spec = load_spec(out / "my_model.yaml")
    assert spec.schedule.start_date == dt.date(2026, 10, 1)
    hook = GreatExpectationsHook(docs_dir=tmp_path / "docs")
    for day, rows in frame.groupby(frame["ts"].dt.date):  # each ordinary day passes the written suite (real GX)
        result, _ = hook.validate_dataframe(rows.reset_index(drop=True), out / "my_model" / "suite.json", str(day))
        assert result.success, (day, [r.expectation_config.type for r in result.results if not r.success])


def test_new_model_dry_run_names_the_days_and_checks_that_would_fail(mlops_home, tmp_path, capsys):
    out = tmp_path / "models"
    frame = history(days=21, incident=dt.date(2026, 10, 21))
    assert new_model(mlops_home, frame, out, "--days", "21", "--end", "2026-10-21") == 0
    printed = capsys.readouterr().out
    assert "dry run: 1 of 21 sampled days would fail" in printed, printed
    line = next(line for line in printed.splitlines() if line.strip().startswith("2026-10-21"))
    assert "expect_column_values_to_not_be_null" in line and "amount" in line, line
    assert "not learned from: 2026-10-21" in printed, printed  # the incident day sets no bound


def test_new_model_samples_days_ending_at_end(mlops_home, tmp_path, capsys):
    out = tmp_path / "models"
    assert new_model(mlops_home, history(), out, "--days", "5", "--end", "2026-10-10") == 0
    assert load_spec(out / "my_model.yaml").schedule.start_date == dt.date(2026, 10, 6)
    assert "dry run: 0 of 5 sampled days would fail" in capsys.readouterr().out
    assert new_model(mlops_home, history(), tmp_path / "m2", "--start", "2026-10-10", "--end", "2026-10-01") == 2
    assert "--start 2026-10-10 is after --end 2026-10-01" in capsys.readouterr().err
