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
        numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL, current="served", **{"signal": "share", **kwargs},
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
    # The bounded join (a batch at a time) gives what joining the whole day read at once gives.
    whole, _ = read_day(MODEL, today())
    assert served["versions"] == realised_by_version(join_labels(whole, day, KEY, LABEL), LABEL, 1, "roc_auc", 0.5)


def test_a_day_larger_than_max_rows_is_sampled_while_read_and_counted_whole(home):
    summary = drift("served-sampled", max_rows=500, min_served_rows=100)
    current = summary["current"]
    assert current["rows"] == sum(ROWS.values()) and current["versions"] == ROWS  # every captured row counted
    assert current["sampled_rows"] == 500 == summary["sample_rows"]["current"]
    assert current["sample"] == {"max_rows": 500, "seed": 0, "sampled": True}
    served = summary["served"]
    assert sum(served[v]["sampled_rows"] for v in ROWS) == 500
    assert all(served[v]["rows"] == rows for v, rows in ROWS.items())
    assert all(served[v]["prediction_drift"]["rows"]["current"] == served[v]["sampled_rows"] for v in ROWS)
    again = drift("served-sampled-again", max_rows=500, min_served_rows=100)  # seeded: the same rows again
    assert again["served"]["1"]["prediction_drift"]["mean_current"] == served["1"]["prediction_drift"]["mean_current"]


@pytest.fixture
def rolling_days(home, tmp_path):
    """Three validated partitions of the days before today (a rolling reference whose days teach the learned
    thresholds by leave-one-day-out)."""
    from mlops_provider.hooks.dvc import DvcHook

    days = [dt.date.fromisoformat(today()) - dt.timedelta(days=i) for i in (3, 2, 1)]
    for day in days:
        frame = generate_day(dt.date(2026, 11, 1) + dt.timedelta(days=day.day % 7), SourceSpec(rows_per_day=700))
        frame["signup_date"] = pd.to_datetime(frame["signup_date"])
        frame.to_parquet(tmp_path / f"{day}.parquet", index=False)
        DvcHook().version_file(tmp_path / f"{day}.parquet", f"data/customer_activity/partitions/{day}.parquet",
                               f"partition/customer_activity/{day}", {})  # fmt: skip
    return days


def test_each_version_gets_its_importance_weighted_and_learned_drift_on_what_it_served(home, rolling_days):
    """Issue 33: the signals of the ingested path, per version on a canary day: the weighted drift by that version's
    own feature importances, the learned drift against the learned thresholds of the day's reference, and the
    verdict of the chosen signal."""
    import math

    from mlops_provider.ml.drift_signals import normalized_importances
    from mlops_provider.ml.learned_drift import counted_excess

    hook = MlflowHook()
    summary = drift("served-learned", signal="learned", reference="rolling", reference_days=3,
                    drift_calibration_days=0, min_served_rows=200)  # fmt: skip
    assert summary["reference"]["days"] == [str(d) for d in rolling_days]
    assert summary["learned_thresholds"]["columns"]  # learned from the three days
    weights = {}
    for version in ROWS:
        entry = summary["served"][version]
        run_id = hook.model_version(MODEL, version).run_id
        assert run_id in entry["importance_source"] and f"v{version}" in entry["importance_source"]
        expected = normalized_importances(hook.load_run_dict(run_id, "feature_importance.json"), list(entry["columns"]))
        weights[version] = {name: column["importance"] for name, column in entry["columns"].items()}
        assert weights[version] == pytest.approx(expected, abs=1e-6)
        drifted = [name for name, column in entry["columns"].items() if column["drifted"]]
        assert entry["drifted_columns"] == sorted(drifted)
        assert entry["weighted_drift"] == pytest.approx(sum(expected[name] for name in drifted))
        judged = {name: column["learned"] for name, column in entry["columns"].items() if "learned" in column}
        assert judged  # each column judged against the day's learned bound
        assert entry["learned_drift"] == pytest.approx(
            sum(expected[name] * counted_excess(j["excess"]) for name, j in judged.items()), abs=1e-5
        )
        assert entry["signal"] == "learned" and entry["dataset_drift"] == (entry["learned_drift"] >= 0.3)
        assert "learned_thresholds" not in entry  # carried once, by the day
        assert math.isclose(sum(weights[version].values()), 1.0, abs_tol=1e-4)
    assert weights["1"] != weights["2"]  # the weak model (2 stumps) relies on other columns than the good one


def test_the_lineage_of_a_captured_prediction_names_its_version_training_set_code_and_run(home, capsys):
    import json

    from mlops_provider.cli.lineage import prediction_lineage
    from mlops_provider.cli.main import main

    hook = MlflowHook()
    for key, (version, prediction) in list(home["log"].items())[:: len(home["log"]) - 1]:  # v1's first, v2's last
        found = prediction_lineage(MODEL, key)
        assert found["days_searched"] == [today()]
        (row,) = found["predictions"]
        assert row["version"] == version and row["prediction"] == pytest.approx(prediction)
        assert row["day"] == today() and Path(row["file"]).is_file() and row["request_id"] == key
        mv = hook.model_version(MODEL, version)
        tags = hook.get_run(mv.run_id).data.tags
        assert row["run_id"] == mv.run_id
        assert row["training_set"]["rev"] == tags["data.rev"] and row["training_set"]["md5"] == tags["data.md5"]
        assert row["training_set"]["path"] == tags["data.path"] and row["code_version"] == tags["code.version"]
        assert row["aliases"] == (["champion"] if version == "1" else [])
        assert row["links"]["training_set"].endswith(tags["data.rev"]) and row["note"] is None
    key, (version, _) = next(iter(home["log"].items()))
    assert main(["lineage", MODEL, key, "--day", today()]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["predictions"][0]["version"] == version
    assert main(["lineage", MODEL, "no-such-request"]) == 1
    assert "no captured prediction" in capsys.readouterr().err


def test_the_health_page_links_the_days_capture_page_listing_files_and_rows_per_version(home):
    from mlops_provider.web import records
    from mlops_provider.web.health import captured_days, collect, render

    data = records.capture_day(MODEL, today())
    assert data["rows"] == sum(ROWS.values()) and data["versions"] == ROWS
    _, files = read_day(MODEL, today())
    assert sorted(f["location"] for f in data["files"]) == sorted(files)
    assert sum(f["rows"] for f in data["files"]) == data["rows"]
    page = records.render_capture_day(data)
    assert f"/mlops/mlflow/models/{MODEL}/versions/2" in page and data["files"][0]["name"] in page
    with pytest.raises(records.RecordNotFound, match="no captured rows"):
        records.capture_day(MODEL, "2001-01-01")
    days = captured_days(MODEL)
    assert days[0] == {"day": today(), "files": len(files), "url": f"/mlops/captures/{MODEL}/{today()}"}
    assert f'href="/mlops/captures/{MODEL}/{today()}"' in render(collect(MODEL))
