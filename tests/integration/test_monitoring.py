"""Drift monitoring with real Evidently, MLflow and DVC: reference from the registry, the drift decision, the
champion on late labels, the deferrable sensors' triggers, and (re)training triggered once per window behind
its rails."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pendulum
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from mlops_provider.demo.churn_source import SourceSpec, generate_day
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.operators.evidently import DriftReportOperator
from mlops_provider.operators.performance import ModelPerformanceOperator
from mlops_provider.sensors.drift import DriftSensor
from mlops_provider.sensors.dvc import DvcTagSensor
from mlops_provider.triggers.drift import DriftResultTrigger
from mlops_provider.triggers.dvc import DvcTagTrigger
from tests.helpers import PROJECT_ROOT, task_context
from tests.integration.models import copy_version

pytestmark = pytest.mark.integration

CALM, DRIFTED = dt.date(2026, 11, 12), dt.date(2026, 11, 20)
TRAINED_DAY = dt.date(2026, 11, 3)  # a day of the `trained` pool's training set
NUMERICAL = ["tenure_days", "monthly_charges", "total_charges", "sessions_7d", "avg_session_minutes",
             "support_tickets_30d", "payment_failures_90d", "discount_pct", "last_login_days_ago"]  # fmt: skip
CATEGORICAL = ["plan", "region", "device", "payment_method"]


@pytest.fixture(scope="module")
def monitored(trained, tmp_path_factory):
    """Champion = the 'good' model; partitions: a calm day and drifted days; a newer, different training set."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(trained["home"]))
        hook = MlflowHook()
        version = copy_version(hook, "pool", trained["runs"]["good"]["version"], "churn_classifier")
        with hook.scoped_environment():
            hook.get_client().set_registered_model_alias("churn_classifier", "champion", version)
        champion_rev = hook.get_client().get_model_version("churn_classifier", version).tags["data.rev"]
        tmp = tmp_path_factory.mktemp("partitions")
        spec = SourceSpec(drift_from=DRIFTED)
        for day in (CALM, *(DRIFTED + dt.timedelta(days=n) for n in (0, 1, 3, 6))):
            frame = generate_day(day, spec)
            frame["signup_date"] = pd.to_datetime(frame["signup_date"])
            frame.to_parquet(tmp / f"{day}.parquet", index=False)
            DvcHook().version_file(
                tmp / f"{day}.parquet",
                f"data/customer_activity/partitions/{day}.parquet",
                f"partition/customer_activity/{day}",
                {},
            )
            # drift_monitoring waits for the day's training set (ingest finished); the data does not matter here.
            DvcHook().version_file(
                tmp / f"{day}.parquet", "data/churn_classifier/training_set.parquet",
                f"training-set/churn_classifier/{day}", {},
            )  # fmt: skip
        # A newer training set that is NOT the champion's: drift must not use it as the reference.
        generate_day(DRIFTED, spec).to_parquet(tmp / "newer.parquet", index=False)
        newer = DvcHook().version_file(
            tmp / "newer.parquet", "data/customer_activity/training_set.parquet", "training-set/newer", {}
        )
    return {"home": trained["home"], "champion": str(version), "champion_rev": champion_rev, "newer": newer}


@pytest.fixture
def home(monitored, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(monitored["home"]))
    return monitored


def report(day: dt.date, run_id: str | None = None) -> tuple[dict, dict]:
    context = task_context(day, dag_id="drift_monitoring", run_id=run_id or f"r-{day}", task_id="drift_report")
    summary = DriftReportOperator(
        task_id="drift_report",
        dataset="customer_activity",
        model_name="churn_classifier",
        partition=str(day),
        numerical_columns=NUMERICAL,
        categorical_columns=CATEGORICAL,
        signal="share",  # these tests are about the share's verdict (the default is learned since issue 28)
    ).execute(context)
    return summary, context


def test_calm_day_no_drift_reference_is_the_champions_training_set(home):
    summary, context = report(CALM)
    assert summary["dataset_drift"] is False and summary["drift_share"] < 0.3
    assert summary["reference"]["data_rev"] == home["champion_rev"] != home["newer"]["rev"]
    assert summary["reference"]["model_version"] == home["champion"]
    assert set(summary["columns"]) == set(NUMERICAL + CATEGORICAL)
    assert all({"method", "score", "threshold", "drifted"} <= set(c) for c in summary["columns"].values())
    assert summary["sample_rows"]["current"] > 1000
    assert json.loads(Path(summary["summary_path"]).read_text())["drift_share"] == summary["drift_share"]
    # Issue 31: a calm day keeps its numbers, not Evidently's HTML; its record says how to get the report.
    assert summary["report_path"] is None and summary["report_url"] is None
    assert "MLOPS_DRIFT_HTML=always" in summary["report_note"]
    assert not list(Path(summary["summary_path"]).parent.glob("*.html"))
    assert "_link_DriftReportLink" not in context["ti"].pushed
    client = MlflowHook().get_client()
    history = client.get_metric_history(summary["mlflow_run_id"], "drift_share")
    assert [(m.step, m.value) for m in history] == [(CALM.toordinal(), summary["drift_share"])]
    assert not [a.path for a in client.list_artifacts(summary["mlflow_run_id"], "drift")]


def test_a_calm_day_has_its_html_report_on_request(home, monkeypatch):
    monkeypatch.setenv("MLOPS_DRIFT_HTML", "always")
    summary, context = report(CALM, run_id="html-on-request")
    assert summary["dataset_drift"] is False and summary["report_note"] is None
    assert Path(summary["report_path"]).read_text().lstrip().lower().startswith("<!doctype html")
    link = context["ti"].pushed["_link_DriftReportLink"]
    assert link == f"/mlops/reports/drift/churn_classifier/{CALM}/{summary['attempt']}.html"
    with pytest.raises(AirflowSkipException, match="no retraining: drift share"):
        DriftSensor(task_id="s", summary_path=summary["summary_path"]).decide(summary)


def test_drifted_day_crosses_the_line(home):
    summary, context = report(DRIFTED)
    assert summary["dataset_drift"] is True and summary["drift_share"] >= 0.3
    # A flagged day has its HTML report: the file, the task's link and the MLflow artifact.
    assert Path(summary["report_path"]).read_text().lstrip().lower().startswith("<!doctype html")
    assert summary["report_note"] is None and context["ti"].pushed["_link_DriftReportLink"] == summary["report_url"]
    client = MlflowHook().get_client()
    assert [a.path for a in client.list_artifacts(summary["mlflow_run_id"], "drift")] == [
        f"drift/{Path(summary['report_path']).name}"
    ]
    assert summary["columns"]["device"]["drifted"] and summary["columns"]["monthly_charges"]["drifted"]
    decision = DriftSensor(task_id="s", summary_path=summary["summary_path"]).decide(summary)
    assert decision["reason"] == "drift" and "device" in decision["drifted_columns"]
    assert f"/{DRIFTED}/" in decision["report_url"] and decision["report_url"].endswith(".html")


def test_the_drift_record_weighs_drifted_columns_by_the_champions_feature_importance(home):
    """Issue 20, item 1: the champion's run logged gain importances (the template does); the record carries each
    column's weight, the importance-weighted drift beside the share, and with signal="weighted" that signal
    decides."""
    import math

    hook = MlflowHook()
    run_id = hook.model_version("churn_classifier", home["champion"]).run_id
    importances = hook.load_run_dict(run_id, "feature_importance.json")
    assert importances and set(importances) <= set(NUMERICAL + CATEGORICAL)
    assert hook.load_run_dict(run_id, "no_such_artifact.json") is None
    day = DRIFTED + dt.timedelta(days=1)

    def check(**kwargs) -> dict:
        context = task_context(day, dag_id="weighted", run_id=f"w-{len(kwargs)}-{kwargs}", task_id="drift_report")
        return DriftReportOperator(
            task_id="drift_report", dataset="customer_activity", model_name="churn_classifier", partition=str(day),
            numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL, **{"signal": "share", **kwargs},
        ).execute(context)  # fmt: skip

    plain = check()
    weights = {name: column["importance"] for name, column in plain["columns"].items()}
    assert math.isclose(sum(weights.values()), 1.0, abs_tol=1e-4)
    drifted = [name for name, column in plain["columns"].items() if column["drifted"]]
    assert plain["weighted_drift"] == pytest.approx(sum(weights[c] for c in drifted), abs=1e-4)
    assert plain["signal"] == "share" and plain["dataset_drift"] is (plain["drift_share"] >= 0.3)
    assert run_id in plain["importance_source"]
    line = plain["weighted_drift"]
    above = check(signal="weighted", weighted_drift_threshold=min(1.0, line + 0.01))
    assert above["signal"] == "weighted" and above["dataset_drift"] is False
    with pytest.raises(AirflowSkipException, match="no retraining: weighted drift"):
        DriftSensor(task_id="s", summary_path=above["summary_path"]).decide(above)
    if line > 0.02:
        assert check(signal="weighted", weighted_drift_threshold=line - 0.01)["dataset_drift"] is True
    history = MlflowHook().get_client().get_metric_history(plain["mlflow_run_id"], "weighted_drift")
    assert [m.value for m in history] == [pytest.approx(line)]


def test_a_rolling_or_seasonal_reference_compares_with_the_days_it_names(home):
    """Issue 20, item 2: DRIFTED+1 against the day before it (rolling, 1 day: both drifted) shows little drift;
    DRIFTED against the same day 8 days earlier (seasonal, season_days=8: CALM) shows the drift; a reference with no
    validated day skips naming the days."""

    def check(day: dt.date, **kwargs) -> dict:
        context = task_context(day, dag_id="reference", run_id=f"ref-{day}-{kwargs}", task_id="drift_report")
        return DriftReportOperator(
            task_id="drift_report", dataset="customer_activity", model_name="churn_classifier", partition=str(day),
            numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL, signal="share", **kwargs,
        ).execute(context)  # fmt: skip

    rolling = check(DRIFTED + dt.timedelta(days=1), reference="rolling", reference_days=1)
    assert rolling["reference"]["kind"] == "rolling" and rolling["reference"]["days"] == [str(DRIFTED)]
    seasonal = check(DRIFTED, reference="seasonal", season_days=8)
    assert seasonal["reference"]["days"] == [str(CALM)]
    assert seasonal["drift_share"] >= 0.3 > rolling["drift_share"]
    assert seasonal["reference"]["model_version"] == home["champion"]  # importances still the champion's
    with pytest.raises(AirflowSkipException, match="rolling reference: none of"):
        check(CALM, reference="rolling", reference_days=1)  # 11-11: never a partition here


def test_trigger_waits_for_both_summaries_then_fires(tmp_path):
    path, perf = tmp_path / "summary.json", tmp_path / "performance.json"
    trigger = DriftResultTrigger(
        summary_path=str(path), poll_interval=0.05, performance_path=str(perf), settle_seconds=0
    )
    assert DriftResultTrigger(**trigger.serialize()[1]).performance_path == str(perf)

    async def scenario():
        agen = trigger.run()
        pending = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.3)
        assert not pending.done()  # nothing to read yet: still waiting
        path.write_text(json.dumps({"drift_share": 0.5}))
        await asyncio.sleep(0.3)
        assert not pending.done()  # the drift result alone is not enough
        perf.write_text(json.dumps({"status": "no_labels"}))
        event = await asyncio.wait_for(pending, timeout=5)
        return event.payload

    assert asyncio.run(scenario()) == {
        "status": "ready", "summary": {"drift_share": 0.5}, "performance": {"status": "no_labels"}
    }  # fmt: skip


def test_monitoring_dag_triggers_one_training_run_per_window_behind_its_rails(home, airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "reserialize"], check=True, capture_output=True
    )
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py")).get_dag(
        "churn_classifier__drift_monitoring"
    )

    def run_for(day: dt.date):
        # A manual run of a daily data-interval timetable covers the day *before* its logical date.
        after = day + dt.timedelta(days=1)
        run = dag.test(logical_date=pendulum.datetime(after.year, after.month, after.day, tz="UTC"))
        return run, {ti.task_id: ti.state for ti in run.get_task_instances()}

    import shutil

    for kind in ("drift", "performance", "retraining"):  # a monitoring history that starts with these runs
        shutil.rmtree(home["home"] / "reports" / kind, ignore_errors=True)

    def training_runs() -> list:
        with create_session() as session:
            runs = session.query(DagRun).filter(
                DagRun.dag_id == "churn_classifier__training", DagRun.run_id.like("drift__%")
            )
            return [(r.run_id, r.conf) for r in runs]

    calm_run, calm = run_for(CALM)
    assert calm == {
        "wait_for_training_set": "success", "champion_check": "success",
        "bootstrap_training": "skipped", "wait_for_champion": "skipped",
        "drift_report": "success",
        "performance_check": "success", "drift_sensor": "skipped", "previous_decision": "skipped",
        "trigger_training": "skipped",
        "retention": "success",  # nothing of these days is older than the window: it removes nothing
    }  # fmt: skip
    assert training_runs() == []
    # A day with a champion runs no cold-start task (issue 31): the fork skipped them before they were queued.
    tries = {ti.task_id: ti.try_number for ti in calm_run.get_task_instances()}
    assert tries["bootstrap_training"] == tries["wait_for_champion"] == 0, tries
    assert tries["champion_check"] >= 1 and tries["drift_report"] >= 1, tries

    _, drifted = run_for(DRIFTED)
    assert drifted["trigger_training"] == "success"
    runs = training_runs()
    assert [r[0] for r in runs] == [f"drift__customer_activity__{DRIFTED}"]
    conf = runs[0][1]
    assert conf["reason"] == "drift" and conf["detail"]["drift_share"] >= 0.3
    decided = conf["detail"]["decided_by"]  # the signal that decided, with its value past its line
    assert decided["signal"] in ("learned", "weighted", "share") and decided["value"] >= decided["line"] > 0
    assert conf["dataset_rev"] == f"training-set/churn_classifier/{DRIFTED}"  # the window's data, not the newest
    assert f"/{DRIFTED}/" in conf["detail"]["report_url"]

    again_run, again = run_for(DRIFTED)  # re-running the monitoring of the same window
    assert again["trigger_training"] == "skipped" and len(training_runs()) == 1
    with create_session() as session:  # its "Triggered DAG" link still names the run the window triggered
        from airflow.models.xcom import XComModel

        pushed = session.query(XComModel).filter_by(
            dag_id="churn_classifier__drift_monitoring", run_id=again_run.run_id, task_id="trigger_training",
            key="trigger_run_id",
        ).one().value  # fmt: skip
    assert str(pushed).strip('"') == f"drift__customer_activity__{DRIFTED}"

    with create_session() as session:  # the triggered run finished; the next drifted day is in the cooldown
        session.query(DagRun).filter(DagRun.dag_id == "churn_classifier__training").update({"state": "success"})
        session.commit()
    _, next_day = run_for(DRIFTED + dt.timedelta(days=1))
    assert next_day["drift_sensor"] == "success" and next_day["trigger_training"] == "skipped"
    assert len(training_runs()) == 1

    def finish_training_runs() -> None:
        with create_session() as session:
            session.query(DagRun).filter(DagRun.dag_id == "churn_classifier__training").update({"state": "success"})
            session.commit()

    # The days decide in date order (a backfill may overlap their checks): the previous day's run is still running
    # and has not decided, so this day's trigger waits (previous_decision reschedules) until that run has ended.
    import threading

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.types import DagRunType

    undecided = pendulum.datetime(*(DRIFTED + dt.timedelta(days=3)).timetuple()[:3], tz="UTC")  # the day before's run
    with create_session() as session:
        session.add(DagRun(dag_id=dag.dag_id, run_id="undecided_previous_day", logical_date=undecided,
                           run_after=undecided, data_interval=(undecided.subtract(days=1), undecided),
                           run_type=DagRunType.MANUAL, state="running"))  # fmt: skip
        session.commit()
    seen: dict = {}

    def release_when_waiting() -> None:
        for _ in range(600):
            with create_session() as session:
                states = {ti.task_id: ti.state for ti in session.query(TaskInstance).filter(
                    TaskInstance.dag_id == dag.dag_id, TaskInstance.logical_date == undecided.add(days=1))}  # fmt: skip
                if states.get("previous_decision") == "up_for_reschedule":
                    seen.update(states=states, training_runs=len(training_runs()))
                    session.query(DagRun).filter(DagRun.run_id == "undecided_previous_day").update({"state": "failed"})
                    session.commit()
                    return
            time.sleep(0.5)

    releaser = threading.Thread(target=release_when_waiting, daemon=True)
    releaser.start()
    _, after_cooldown = run_for(DRIFTED + dt.timedelta(days=3))  # outside the 2-day cooldown: second trigger
    releaser.join(timeout=5)
    assert seen, "previous_decision never waited for the previous run that had not decided"
    assert seen["states"]["drift_sensor"] == "success" and seen["states"].get("trigger_training") is None
    assert seen["training_runs"] == 1  # nothing triggered while the day before was undecided
    assert after_cooldown["previous_decision"] == "success"
    assert after_cooldown["trigger_training"] == "success" and len(training_runs()) == 2
    finish_training_runs()
    _, over_budget = run_for(DRIFTED + dt.timedelta(days=6))  # outside the cooldown, but 2 in the last week
    assert over_budget["drift_sensor"] == "success" and over_budget["trigger_training"] == "skipped"
    assert len(training_runs()) == 2


def performance(day: dt.date, floor: float, delay: int, **kwargs) -> dict:
    """One labelled day, calibrated by isotonic: what these tests were written for (the defaults since issue 28
    pool 3 days and choose the calibration by the holdout's Brier score)."""
    run_id = f"p-{day}-{floor}" + (f"-{kwargs}" if kwargs else "")
    context = task_context(day, dag_id="drift_monitoring", run_id=run_id, task_id="performance_check")
    return ModelPerformanceOperator(
        task_id="performance_check", dataset="customer_activity", model_name="churn_classifier",
        partition=str(day), floor=floor, label_delay_days=delay, label_column="churned",
        **{"label_window_days": 1, "estimate_calibration": "isotonic", **kwargs},
    ).execute(context)  # fmt: skip


def test_the_late_label_check_never_scores_the_champion_on_rows_it_trained_on(home):
    """Issue 15: right after a retrain on a window holding the labelled day, the champion's "late-label" AUC jumped
    from 0.67 to 0.84 (in-sample). Day TRAINED_DAY below is one the champion was trained on (its training set holds
    exactly these rows): the check scores the champion's holdout keys only, which the model never saw."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from mlops_provider.ml.split import HoldoutSplit

    frame = generate_day(TRAINED_DAY, SourceSpec(rows_per_day=1500))  # as the `trained` pool's training set
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    path = home["home"].parent / "trained-day.parquet"
    frame.to_parquet(path, index=False)
    DvcHook().version_file(
        path, f"data/customer_activity/partitions/{TRAINED_DAY}.parquet",
        f"partition/customer_activity/{TRAINED_DAY}", {},
    )  # fmt: skip
    scored = performance(TRAINED_DAY + dt.timedelta(days=3), floor=0.5, delay=3)

    hook = MlflowHook()
    split = HoldoutSplit.from_tags(hook.model_version_tags("churn_classifier", home["champion"]))
    holdout = split.mask(frame)
    assert scored["status"] == "scored" and scored["labelled_rows"] == int(holdout.sum())
    assert scored["excluded_training_rows"] == int((~holdout).sum()) > 0
    assert scored["holdout"]["key"] == "customer_id"
    model = hook.load_model(f"models:/churn_classifier/{home['champion']}")
    from mlops_provider.ml.scoring import schema_predictor

    proba = np.asarray(schema_predictor(model)(frame), dtype=float)
    in_sample = roc_auc_score(frame["churned"][~holdout], proba[~holdout])
    out_of_sample = roc_auc_score(frame["churned"][holdout], proba[holdout])
    assert scored["value"] == pytest.approx(out_of_sample)
    assert in_sample > scored["value"] + 0.03, (in_sample, scored["value"])  # what the old check reported


def test_champion_below_its_floor_on_late_labels_calls_for_retraining_with_reason_performance(home):
    calm_drift, _ = report(CALM)
    # Labels of the calm day arrive 3 days later; the champion is scored on them with the registry's model.
    scored = performance(CALM + dt.timedelta(days=3), floor=0.99, delay=3)
    assert scored["status"] == "scored" and scored["labelled_day"] == CALM.isoformat()
    assert scored["labelled_rows"] > 200 and scored["model_version"] == home["champion"]
    assert 0.5 < scored["value"] < 0.99 and scored["below_floor"] is True
    assert json.loads(Path(scored["summary_path"]).read_text())["value"] == scored["value"]
    history = MlflowHook().get_client().get_metric_history(scored["mlflow_run_id"], "labelled_roc_auc")
    assert [(m.step, m.value) for m in history] == [(CALM.toordinal(), scored["value"])]
    decision = DriftSensor(task_id="s", summary_path="-").decide(calm_drift, scored)
    assert decision["reason"] == "performance" and decision["performance"]["value"] == scored["value"]

    fine = performance(CALM + dt.timedelta(days=3), floor=0.5, delay=3)
    assert fine["below_floor"] is False
    with pytest.raises(AirflowSkipException, match=r"roc_auc 0\.\d+ >= floor 0\.5"):
        DriftSensor(task_id="s", summary_path="-").decide(calm_drift, fine)

    # No labels yet for that day (not versioned): nothing is decided, nothing is triggered.
    waiting = performance(CALM + dt.timedelta(days=1), floor=0.99, delay=7)
    assert waiting["status"] == "no_labels" and waiting["below_floor"] is False
    with pytest.raises(AirflowSkipException):
        DriftSensor(task_id="s", summary_path="-").decide(calm_drift, waiting)


def test_tag_sensor_waits_for_the_version_and_skips_a_quarantined_day(home, tmp_path):
    workspace = str(DvcHook().workspace)
    present = DvcTagSensor(task_id="w", tag=f"training-set/churn_classifier/{CALM}")
    assert present.execute(task_context(CALM))["sha"] == DvcHook().resolve_rev(f"training-set/churn_classifier/{CALM}")

    quarantined = tmp_path / "quarantine"
    with pytest.raises(AirflowSkipException, match="quarantined"):
        DvcTagSensor(task_id="w", tag="training-set/none", abandon_paths=[str(tmp_path)]).execute(task_context(CALM))

    trigger = DvcTagTrigger(
        workspace, "training-set/churn_classifier/later", [str(quarantined)], poll_interval=0.05, settle_seconds=0
    )
    assert DvcTagTrigger(**trigger.serialize()[1]).abandon_paths == [str(quarantined)]

    async def scenario(create) -> dict:
        pending = asyncio.ensure_future(trigger.run().__anext__())
        await asyncio.sleep(0.3)
        assert not pending.done()  # neither the tag nor the quarantine: still waiting
        create()
        return (await asyncio.wait_for(pending, timeout=10)).payload

    assert asyncio.run(scenario(quarantined.mkdir))["status"] == "abandoned"
    quarantined.rmdir()
    head = DvcHook().resolve_rev("HEAD")
    event = asyncio.run(scenario(lambda: subprocess.run(
        ["git", "tag", "training-set/churn_classifier/later", head], cwd=workspace, check=True
    )))  # fmt: skip
    assert event == {"status": "found", "tag": "training-set/churn_classifier/later", "sha": head}


def test_without_a_champion_the_loop_bootstraps_one_training_run(home, airflow_db):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "reserialize"], check=True, capture_output=True
    )
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py")).get_dag(
        "churn_classifier__drift_monitoring"
    )
    hook = MlflowHook()
    client = hook.get_client()
    with hook.scoped_environment():
        client.delete_registered_model_alias("churn_classifier", "champion")
    import threading

    stop = threading.Event()

    def promote_when_bootstrapped() -> None:
        # dag.test does not run the triggered training (nor its promotion): once the bootstrap run exists, play
        # its champion arriving, which wait_for_champion waits for.
        while not stop.wait(0.5):
            with create_session() as session:
                exists = (
                    session.query(DagRun)
                    .filter(
                        DagRun.dag_id == "churn_classifier__training", DagRun.run_id == "bootstrap__customer_activity"
                    )
                    .count()
                )
            if exists and hook.alias_version("churn_classifier", "champion") is None:
                with hook.scoped_environment():
                    client.set_registered_model_alias("churn_classifier", "champion", home["champion"])

    finisher = threading.Thread(target=promote_when_bootstrapped, daemon=True)
    finisher.start()
    try:
        states = []
        for attempt in range(2):  # the second run of the day (a clear, or the next day) must not bootstrap again
            if attempt:
                with hook.scoped_environment():
                    client.delete_registered_model_alias("churn_classifier", "champion")
            after = CALM + dt.timedelta(days=1)
            run = dag.test(logical_date=pendulum.datetime(after.year, after.month, after.day, tz="UTC"))
            states.append({ti.task_id: ti.state for ti in run.get_task_instances()})
        with create_session() as session:
            runs = (
                session.query(DagRun)
                .filter(DagRun.dag_id == "churn_classifier__training", DagRun.run_id.like("bootstrap__%"))
                .all()
            )
            bootstrap = [(r.run_id, r.conf) for r in runs]
    finally:
        stop.set()
        finisher.join()
        with hook.scoped_environment():
            client.set_registered_model_alias("churn_classifier", "champion", home["champion"])
    # The first run bootstrapped, waited for the champion, then checked the day against it.
    assert states[0]["bootstrap_training"] == "success" and states[0]["wait_for_champion"] == "success"
    assert states[0]["drift_report"] == "success" and states[1]["bootstrap_training"] == "skipped"
    assert bootstrap == [(
        "bootstrap__customer_activity",
        {"reason": "bootstrap", "dataset_rev": f"training-set/churn_classifier/{CALM}",
         "detail": {"model_name": "churn_classifier"}},
    )]  # fmt: skip


def test_model_health_shows_the_champion_its_lineage_and_drift_over_time(home):
    from mlops_provider.web.health import collect, render

    report(CALM)
    report(DRIFTED)
    data = collect("churn_classifier")
    assert data["champion"]["version"] == home["champion"] and "champion" in data["champion"]["aliases"]
    assert data["lineage"]["data rev"] == home["champion_rev"]
    assert {h["version"] for h in data["history"]} >= {home["champion"]}
    shares = {p["day"]: p["drift_share"] for p in data["drift"]}
    assert shares[DRIFTED.isoformat()] >= 0.3 > shares[CALM.isoformat()]
    page = render(data)
    assert f"Champion: <b>v{home['champion']}</b>" in page
    assert page.count('class="drift"') == len(data["drift"]) and "<svg" in page


def test_a_recheck_of_a_past_day_keeps_its_record_uses_its_champion_and_never_triggers(home):
    """Finding 4: clearing `drift_report` of an old day compared it with today's champion, overwrote that day's
    summary, report and reference, and (with downstream) started a training on the old day's data."""
    from mlops_provider.operators.retraining import TriggerRetrainingOperator
    from mlops_provider.utils.evidence import attempts
    from mlops_provider.utils.records import drift_folder

    day = DRIFTED + dt.timedelta(days=3)
    report(day, run_id="nightly")
    folder = drift_folder("churn_classifier", day.isoformat())
    record = attempts(folder)[0]  # the day's record of decision (whichever test wrote it first)
    # That check happened two days ago (the record's time is what the trigger's grace counts from).
    record["recorded_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat(timespec="seconds")
    Path(record["summary_path"]).write_text(json.dumps(record, indent=2))
    record_bytes = Path(record["summary_path"]).read_bytes()
    report_bytes = Path(record["report_path"]).read_bytes()
    hook = MlflowHook()
    newer = copy_version(hook, "churn_classifier", home["champion"], "churn_classifier")
    with hook.scoped_environment():
        hook.get_client().set_registered_model_alias("churn_classifier", "champion", newer)
    try:
        recheck, _ = report(day, run_id="cleared-later")
    finally:
        with hook.scoped_environment():
            hook.get_client().set_registered_model_alias("churn_classifier", "champion", home["champion"])
    assert recheck["recheck"] is True and recheck["reference"]["source"] == "first check of the day"
    assert recheck["reference"]["model_version"] == record["reference"]["model_version"] != newer
    assert Path(record["summary_path"]).read_bytes() == record_bytes  # the evidence stays as it was
    assert Path(record["report_path"]).read_bytes() == report_bytes
    assert recheck["summary_path"] != record["summary_path"] and len(attempts(folder)) >= 2

    decision = DriftSensor(task_id="s", summary_path=recheck["summary_path"]).decide(recheck)
    assert decision["recheck"] is True
    trigger = TriggerRetrainingOperator(task_id="trigger_training", dataset="customer_activity", decision=decision,
                                        dataset_rev=f"training-set/churn_classifier/{day}",
                                        trigger_dag_id="churn_classifier__training")  # fmt: skip
    with pytest.raises(AirflowSkipException, match="a late re-check never triggers training"):
        trigger.execute(task_context(day, dag_id="drift_monitoring", run_id="cleared-later"))


def test_the_metric_is_estimated_before_labels_and_compared_when_they_arrive(home):
    """Issue 20, item 3: on the run of CALM the champion's ROC AUC on CALM is estimated from its probabilities
    (CALM's labels are not used); three days later CALM's labels are scored and the estimate made back then is
    recorded beside the realised value. An estimate below the floor calls for retraining only when asked."""
    from mlops_provider.utils.evidence import first_attempt
    from mlops_provider.utils.records import performance_folder

    early = performance(CALM, floor=0.5, delay=3)  # labels of 11-09: not versioned here
    assert early["status"] == "no_labels"
    estimated = early["estimated"]
    assert estimated["day"] == str(CALM) and estimated["rows"] > 200 and 0.5 < estimated["value"] < 1.0
    # Issue 28, item 3: calibrated on the champion's holdout at training, bounded, and its assumption stated.
    calibration = estimated["calibration"]
    assert calibration["method"] == "isotonic" and calibration["fitted_at"] == "training"
    assert calibration["source"].endswith("/evaluation/calibration.json") and calibration["rows"] > 200
    assert (
        estimated["low"] < estimated["value"] < estimated["high"]
        and "not under concept change" in estimated["assumption"]
    )
    assert "under the floor" in estimated["verdict"] or "not under the floor" in estimated["verdict"]
    history = MlflowHook().get_client().get_metric_history(early["mlflow_run_id"], "estimated_roc_auc")
    assert [(m.step, m.value) for m in history] == [(CALM.toordinal(), pytest.approx(estimated["value"]))]

    later = performance(CALM + dt.timedelta(days=3), floor=0.5, delay=3)
    assert later["status"] == "scored" and later["labelled_day"] == str(CALM)
    then = first_attempt(performance_folder("churn_classifier", str(CALM)))["estimated"]
    assert later["estimate_then"]["value"] == pytest.approx(then["value"])
    assert later["estimate_error"] == pytest.approx(later["value"] - then["value"])
    assert abs(later["estimate_error"]) < 0.1, later  # calibrated enough to track the realised AUC
    assert later["estimate_covered"] is (then["low"] <= later["value"] <= then["high"])

    above = performance(CALM, floor=0.99, delay=3)  # the estimate is below this floor
    assert above["estimated_below_floor"] is True and above["trigger_on_estimate"] is False
    calm = {"dataset_drift": False, "drift_share": 0.0, "threshold": 0.3, "partition": str(CALM)}
    with pytest.raises(AirflowSkipException):
        DriftSensor(task_id="s", summary_path="-").decide(calm, above)
    decision = DriftSensor(task_id="s", summary_path="-").decide(calm, {**above, "trigger_on_estimate": True})
    assert decision["reason"] == "performance"


def test_the_default_calibration_is_chosen_at_training_by_the_holdouts_brier_score_with_the_numbers(home):
    """Issue 28: ``estimate_calibration: auto`` (the default) applies the choice the training run stored in
    ``evaluation/calibration.json``: each calibration cross-fitted on the champion's holdout, kept only when it lowers
    the Brier score beyond the noise; the record carries the numbers it was chosen by."""
    from mlops_provider.ml.estimation import CALIBRATION_ARTIFACT

    hook = MlflowHook()
    stored = hook.load_run_dict(hook.model_version("churn_classifier", home["champion"]).run_id, CALIBRATION_ARTIFACT)
    auto = stored["auto"]
    assert stored["fitted_at"] == "training" and auto["method"] in ("none", "isotonic", "sigmoid")
    assert set(auto["brier"]) == {"none", "isotonic", "sigmoid"} and auto["folds"] == 5
    kept = auto["method"] != "none"
    assert kept is (auto["brier"][auto["method"]] < auto["brier"]["none"] and auto["gain"] > 1.645 * auto["gain_se"])

    record = performance(CALM, floor=0.5, delay=3, estimate_calibration="auto")["estimated"]
    calibration = record["calibration"]
    assert calibration["requested"] == "auto" and calibration["method"] == auto["method"]
    assert calibration["selection"]["brier"] == pytest.approx(auto["brier"]) and calibration["reason"] == auto["reason"]
    assert calibration["reason"].startswith(f"auto: cross-fitted Brier score on {stored['rows']} holdout rows")
    assert 0.5 < record["value"] < 1.0 and record["low"] < record["value"] < record["high"]


def test_a_version_without_a_stored_calibration_is_fitted_once_on_its_holdout_and_keeps_it(home):
    """Issue 28, item 3: a champion trained before the calibration artefact existed: its first estimate fits the
    calibration on its holdout and stores it with its run; later estimates apply that same fit."""
    from mlops_provider.ml.estimation import CALIBRATION_ARTIFACT

    hook = MlflowHook()
    client = hook.get_client()
    source = client.get_model_version("churn_classifier", home["champion"])
    bare_run = hook.create_run(hook.get_or_create_experiment("older-training"), "older", {})  # no artefact
    hook.get_or_create_registered_model("older_churn")
    with hook.scoped_environment():
        older = client.create_model_version(
            "older_churn", source=source.source, run_id=bare_run, model_id=source.model_id, tags=source.tags
        ).version
        client.set_registered_model_alias("older_churn", "champion", older)

    def estimated(day: dt.date) -> dict:
        context = task_context(day, dag_id="older", run_id=f"older-{day}", task_id="performance_check")
        return ModelPerformanceOperator(
            task_id="performance_check", dataset="customer_activity", model_name="older_churn",
            partition=str(day), floor=0.5, label_delay_days=30, label_column="churned", prediction_drift=False,
            estimate_calibration="isotonic",
        ).execute(context)["estimated"]  # fmt: skip

    assert hook.load_run_dict(bare_run, CALIBRATION_ARTIFACT) is None
    first = estimated(CALM)
    stored = hook.load_run_dict(bare_run, CALIBRATION_ARTIFACT)
    second = estimated(DRIFTED)
    assert stored is not None and stored["fitted_at"] == "first estimate" and stored["isotonic"]["x"]
    assert first["calibration"]["method"] == second["calibration"]["method"] == "isotonic"
    assert first["calibration"]["fitted_at"] == second["calibration"]["fitted_at"] == "first estimate"
    assert first["calibration"]["source"] == f"runs:/{bare_run}/{CALIBRATION_ARTIFACT}"


def test_the_champions_predictions_drift_on_drifted_days_and_may_call_for_retraining(home):
    """Issue 20, item 4: the champion's predicted probabilities on a day's holdout rows vs on its own holdout: close
    on the calm day, drifted (and the predicted churn rate up) on a drifted day; logged per day; with
    trigger_on_prediction_drift the sensor calls for retraining with reason prediction_drift."""

    def check(day: dt.date, **kwargs) -> dict:
        context = task_context(day, dag_id="predictions", run_id=f"pd-{day}", task_id="performance_check")
        return ModelPerformanceOperator(
            task_id="performance_check", dataset="customer_activity", model_name="churn_classifier",
            partition=str(day), floor=0.5, label_delay_days=30, label_column="churned", **kwargs,
        ).execute(context)  # fmt: skip

    calm = check(CALM)["prediction_drift"]
    record = check(DRIFTED, trigger_on_prediction_drift=True)
    drifted = record["prediction_drift"]
    assert calm["drifted"] is False and drifted["drifted"] is True and drifted["score"] > calm["score"]
    assert drifted["positive_rate_current"] > drifted["positive_rate_reference"]
    assert drifted["rows"]["reference"] > 200 and drifted["day"] == str(DRIFTED)
    history = MlflowHook().get_client().get_metric_history(record["mlflow_run_id"], "prediction_drift")
    assert [m.value for m in history] == [pytest.approx(drifted["score"])]
    calm_drift = {"dataset_drift": False, "drift_share": 0.0, "threshold": 0.3, "partition": str(DRIFTED)}
    decision = DriftSensor(task_id="s", summary_path="-").decide(calm_drift, record)
    assert decision["reason"] == "prediction_drift"


def test_two_models_on_one_dataset_keep_their_drift_and_performance_records_apart(home):
    """A second model on customer_activity (another registered model, its own champion) checks the same day: each
    model's records are in its own folder, neither check reads or replaces the other's, and the health page
    shows each model its own history."""
    from mlops_provider.utils.evidence import attempts
    from mlops_provider.utils.records import drift_folder, performance_folder
    from mlops_provider.web.health import collect

    hook = MlflowHook()
    twin = copy_version(hook, "churn_classifier", home["champion"], "churn_twin")
    with hook.scoped_environment():
        hook.get_client().set_registered_model_alias("churn_twin", "champion", twin)
    day = CALM - dt.timedelta(days=2)  # a day no other test checks
    DvcHook().version_file(  # a calm day of the source
        _partition_file(home, day),
        f"data/customer_activity/partitions/{day}.parquet", f"partition/customer_activity/{day}", {},
    )  # fmt: skip
    ours, _ = report(day)
    context = task_context(day, dag_id="churn_twin__drift_monitoring", run_id=f"twin-{day}", task_id="drift_report")
    theirs = DriftReportOperator(
        task_id="drift_report", dataset="customer_activity", model_name="churn_twin", partition=str(day),
        numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL, signal="share",
    ).execute(context)  # fmt: skip
    assert Path(ours["summary_path"]).parent == Path(drift_folder("churn_classifier", str(day)).path)
    assert Path(theirs["summary_path"]).parent == Path(drift_folder("churn_twin", str(day)).path)
    assert theirs["recheck"] is False and ours["recheck"] is False  # neither took the other's for its first check
    assert [a["reference"]["model_name"] for a in attempts(drift_folder("churn_twin", str(day)))] == ["churn_twin"]

    perf_context = task_context(day, dag_id="churn_twin__drift_monitoring", run_id=f"twin-{day}", task_id="p")
    twin_perf = ModelPerformanceOperator(
        task_id="performance_check", dataset="customer_activity", model_name="churn_twin", partition=str(day),
        floor=0.5, label_delay_days=0, label_column="churned", min_labelled_rows=50,
    ).execute(perf_context)  # fmt: skip
    assert Path(twin_perf["summary_path"]).parent == Path(performance_folder("churn_twin", str(day)).path)
    assert not performance_folder("churn_classifier", str(day)).exists()
    assert {p["day"] for p in collect("churn_twin")["drift"]} == {str(day)}
    assert str(day) in {p["day"] for p in collect("churn_classifier")["drift"]}


def _partition_file(home: dict, day: dt.date) -> Path:
    frame = generate_day(day, SourceSpec())
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    path = home["home"].parent / f"{day}.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_a_small_day_records_too_few_labels_and_pooled_days_decide_with_an_interval(home):
    """Issue 28: ~600 rows a day (20 % holdout: ~120 labelled rows) is under min_labelled_rows 200. Alone, the day
    records ``too_few_labels`` with the numbers; pooled over two days the check scores with a DeLong interval, and
    the alarm rule decides: a floor between the value and the interval's upper end alarms by ``point`` only."""
    small = [dt.date(2026, 12, 1), dt.date(2026, 12, 2)]  # days no other test versions or checks (nor the day after)
    for day in small:
        frame = generate_day(day, SourceSpec(rows_per_day=600))
        frame["signup_date"] = pd.to_datetime(frame["signup_date"])
        path = home["home"].parent / f"small-{day}.parquet"
        frame.to_parquet(path, index=False)
        DvcHook().version_file(
            path, f"data/customer_activity/partitions/{day}.parquet", f"partition/customer_activity/{day}", {}
        )

    def check(run_day: dt.date, name: str, delay: int = 0, **kwargs) -> dict:
        context = task_context(run_day, dag_id="drift_monitoring", run_id=name, task_id="performance_check")
        return ModelPerformanceOperator(
            task_id="performance_check", dataset="customer_activity", model_name="churn_classifier",
            partition=str(run_day), label_delay_days=delay, label_column="churned", estimate=False,
            prediction_drift=False, **{"floor": 0.5, "label_window_days": 1, **kwargs},
        ).execute(context)  # fmt: skip

    alone = check(small[0], "small-alone")
    rows = alone["label_days"][0]["labelled_rows"]
    assert alone["status"] == "too_few_labels" and alone["below_floor"] is False and 0 < rows < 200
    assert alone["label_days"] == [{"day": str(small[0]), "versioned": True, "labelled_rows": rows}]
    assert f"{rows} labelled holdout rows in the 1-day window {small[0]}..{small[0]}" in alone["reason"]
    assert "under min_labelled_rows 200" in alone["reason"]
    assert json.loads(Path(alone["summary_path"]).read_text())["reason"] == alone["reason"]
    with pytest.raises(AirflowSkipException, match=r"no performance decision \(too_few_labels\): \d+ labelled"):
        DriftSensor(task_id="s", summary_path="-").decide({"drift_share": 0.0, "dataset_drift": False}, alone)

    pooled = check(small[1], "small-pooled", label_window_days=2)
    assert pooled["status"] == "scored" and pooled["label_window_days"] == 2
    assert [d["day"] for d in pooled["label_days"]] == [str(d) for d in small]
    assert pooled["label_days"][0]["labelled_rows"] == rows
    assert pooled["labelled_rows"] == sum(d["labelled_rows"] for d in pooled["label_days"]) >= 200
    interval = pooled["interval"]
    assert interval["method"] == "DeLong" and interval["level"] == 0.95 and interval["rows"] == pooled["labelled_rows"]
    assert interval["lower"] < pooled["value"] < interval["upper"] and interval["upper"] - interval["lower"] > 0.05
    assert pooled["alarm"] == {"rule": "interval", "consecutive_days": 1, "crossed": False, "previous": [],
                               "reason": "today does not cross the floor"}  # fmt: skip
    history = MlflowHook().get_client().get_metric_history(pooled["mlflow_run_id"], "labelled_roc_auc_upper")
    assert [(m.step, m.value) for m in history] == [(small[1].toordinal(), interval["upper"])]

    floor = round((pooled["value"] + interval["upper"]) / 2, 4)  # under the floor, its interval over it: noise
    by_point = check(small[1], "small-point", label_window_days=2, floor=floor, performance_alarm="point")
    by_interval = check(small[1], "small-interval", label_window_days=2, floor=floor)
    assert by_point["below_floor"] is True and by_point["alarm"]["rule"] == "point"
    assert by_interval["below_floor"] is False and by_interval["crossed"] is False
    assert by_interval["point_below_floor"] is True and "not crossed by the interval rule" in by_interval["verdict"]
    with pytest.raises(AirflowSkipException, match=r"interval \[0\.\d+, 0\.\d+\] \(DeLong, \d+ rows"):
        DriftSensor(task_id="s", summary_path="-").decide({"drift_share": 0.0, "dataset_drift": False}, by_interval)

    # Consecutive days: the next run day pools the same two days (labels a day late) under a floor far above;
    # the day before (small[1]) crossed it too, by its first record, while small[0] had no decision.
    later = small[1] + dt.timedelta(days=1)
    two = check(later, "small-two", delay=1, label_window_days=2, floor=0.99, consecutive_days=2)
    assert two["below_floor"] is True and two["alarm"]["previous"] == [True]
    three = check(later, "small-three", delay=1, label_window_days=2, floor=0.99, consecutive_days=3)
    assert three["crossed"] is True and three["below_floor"] is False and three["alarm"]["previous"] == [True, None]
    assert three["alarm"]["reason"] == "the floor is crossed on 2 consecutive day(s), under the 3 needed"
