"""Monitoring what the model served (issue 33): the backend app (the code a live backend runs, in process here)
serves two registered versions of a real model on a canary day, captures what they answered, and the drift check
takes the captured rows as its current data (real Evidently, real MLflow and DVC). Late labels joined to the
captured predictions give the realised metric per version, equal to the one computed by hand from the client log.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from mlops_provider.demo.churn_source import SourceSpec, generate_day
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.ml.capture import CaptureSettings, join_labels, realised_by_version
from mlops_provider.operators.evidently import DriftReportOperator
from mlops_provider.runtime.capture import read_day
from tests.helpers import task_context
from tests.integration.models import copy_version

pytestmark = pytest.mark.integration

MODEL = "churn_served"
NUMERICAL = ["tenure_days", "monthly_charges", "total_charges", "sessions_7d", "avg_session_minutes",
             "support_tickets_30d", "payment_failures_90d", "discount_pct", "last_login_days_ago"]  # fmt: skip
CATEGORICAL = ["plan", "region", "device", "payment_method"]
KEY, LABEL = "customer_id", "churned"
ROWS = {"1": 600, "2": 300}  # the champion and a canary sharing the day


@pytest.fixture(scope="module")
def served(trained):
    """v1 (champion) and v2 of MODEL answered a day's requests through the backend app with capture on; returns the
    client log (key -> (version, prediction)) and the day's rows with their labels."""
    from starlette.testclient import TestClient

    from mlops_provider.operators.serving import serving_copy
    from mlops_provider.runtime.backend import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(trained["home"]))
        hook = MlflowHook()
        versions = [copy_version(hook, "pool", trained["runs"][run]["version"], MODEL) for run in ("good", "weak")]
        assert versions == list(ROWS)
        with hook.scoped_environment():
            hook.get_client().set_registered_model_alias(MODEL, "champion", versions[0])
        day = generate_day(dt.date(2026, 11, 12), SourceSpec(rows_per_day=1200))
        day = day.dropna(subset=NUMERICAL + CATEGORICAL).reset_index(drop=True)
        settings = CaptureSettings(flush_rows=100, flush_seconds=0.2, key_column=KEY)
        log: dict[str, tuple[str, float]] = {}
        start = 0
        for version, rows in ROWS.items():
            app = create_app(serving_copy(hook, MODEL, version), MODEL, version, capture=settings)
            part = day.iloc[start : start + rows]
            start += rows
            with TestClient(app) as client:  # its lifespan starts the writer and flushes it at the end
                for first in range(0, len(part), 50):
                    batch = part.iloc[first : first + 50][[KEY, *NUMERICAL, *CATEGORICAL]]
                    payload = {"dataframe_split": {"columns": list(batch.columns),
                                                   "data": batch.astype(object).values.tolist()}}  # fmt: skip
                    answer = client.post("/invocations", json=payload)
                    assert answer.status_code == 200, answer.text
                    assert answer.headers["x-model-version"] == version
                    for key, value in zip(batch[KEY], answer.json()["predictions"], strict=True):
                        log[str(key)] = (version, float(value))
        yield {"home": trained["home"], "log": log, "day": day, "versions": versions}


@pytest.fixture
def home(served, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(served["home"]))
    return served


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def drift(run_id: str, **kwargs) -> dict:
    context = task_context(dt.date.fromisoformat(today()), dag_id="drift_monitoring", run_id=run_id,
                           task_id="drift_report")  # fmt: skip
    return DriftReportOperator(
        task_id="drift_report", dataset="customer_activity", model_name=MODEL, partition=today(),
        numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL, signal="share", current="served", **kwargs,
    ).execute(context)  # fmt: skip


def test_the_drift_check_takes_the_captured_rows_as_its_current_data_per_version(home):
    summary = drift("served-1", min_served_rows=200)
    current = summary["current"]
    assert current["kind"] == "served" and current["rows"] == sum(ROWS.values())
    assert current["versions"] == ROWS
    assert current["capture_files"] and all(Path(f).is_file() for f in current["capture_files"])
    _, files = read_day(MODEL, today())
    assert sorted(current["capture_files"]) == sorted(files)  # the record names every file it read
    assert summary["sample_rows"]["current"] == sum(ROWS.values())
    assert summary["dataset_drift"] is False  # a calm day, served
    for version, rows in ROWS.items():
        entry = summary["served"][version]
        assert entry["rows"] == rows and 0 <= entry["drift_share"] <= 1
        pd_ = entry["prediction_drift"]
        assert pd_["rows"]["current"] == rows
        served = np.array([p for v, p in home["log"].values() if v == version])
        assert pd_["mean_current"] == pytest.approx(served.mean())  # the predictions really returned
    # the weak model's predictions sit apart from the good one's on the same traffic
    assert summary["served"]["1"]["prediction_drift"]["score"] < summary["served"]["2"]["prediction_drift"]["score"]


def test_a_day_with_too_few_served_rows_is_recorded_as_such_not_as_no_drift(home):
    import json

    with pytest.raises(AirflowSkipException, match="too few served rows"):
        drift("served-too-few", min_served_rows=10_000)
    records = [json.loads(p.read_text()) for p in Path(home["home"], "reports", "drift", MODEL, today()).glob("*.json")]
    few = [r for r in records if r.get("status") == "too_few_served_rows"]
    assert few and few[0]["dataset_drift"] is None and few[0]["current"]["rows"] == sum(ROWS.values())
    assert few[0]["current"]["capture_files"]


def test_the_realised_metric_per_version_equals_the_one_computed_by_hand_from_the_client_log(home):
    from sklearn.metrics import roc_auc_score

    captured, _ = read_day(MODEL, today())
    labels = home["day"][[KEY, LABEL]]
    realised = realised_by_version(join_labels(captured, labels, KEY, LABEL), LABEL, 1, "roc_auc", 0.5)
    truth = dict(zip(labels[KEY].astype(str), labels[LABEL], strict=True))
    for version, rows in ROWS.items():
        keys = [k for k, (v, _) in home["log"].items() if v == version]
        by_hand = roc_auc_score([truth[k] for k in keys], [home["log"][k][1] for k in keys])
        assert realised[version]["rows"] == rows
        assert realised[version]["value"] == pytest.approx(by_hand)


def test_the_performance_record_gives_the_realised_metric_per_version_on_what_was_served(home, tmp_path):
    from sklearn.metrics import roc_auc_score

    from mlops_provider.hooks.dvc import DvcHook
    from mlops_provider.operators.performance import ModelPerformanceOperator

    day = home["day"].copy()
    day["signup_date"] = pd.to_datetime(day["signup_date"])
    day.to_parquet(tmp_path / "day.parquet", index=False)
    DvcHook().version_file(tmp_path / "day.parquet", f"data/customer_activity/partitions/{today()}.parquet",
                           f"partition/customer_activity/{today()}", {})  # fmt: skip
    context = task_context(dt.date.fromisoformat(today()), dag_id="drift_monitoring", run_id="perf-served",
                           task_id="performance_check")  # fmt: skip
    summary = ModelPerformanceOperator(
        task_id="performance_check", dataset="customer_activity", model_name=MODEL, partition=today(), floor=0.5,
        label_column=LABEL, label_delay_days=0, min_labelled_rows=50, estimate=False, prediction_drift=False,
        served_key_column=KEY,
    ).execute(context)  # fmt: skip
    served = summary["served"]
    assert served["labelled_day"] == today() and served["captured_rows"] == sum(ROWS.values())
    assert served["capture_files"] and served["joined_rows"] == sum(ROWS.values())
    truth = dict(zip(day[KEY].astype(str), day[LABEL], strict=True))
    for version, rows in ROWS.items():
        keys = [k for k, (v, _) in home["log"].items() if v == version]
        by_hand = roc_auc_score([truth[k] for k in keys], [home["log"][k][1] for k in keys])
        assert served["versions"][version]["rows"] == rows
        assert served["versions"][version]["value"] == pytest.approx(by_hand)
    assert served["versions"]["1"]["value"] > served["versions"]["2"]["value"]  # good vs weak, on what they served
