"""Human approval under a real scheduler, answered through the REST API v2 as the UI does: a model whose spec asks
a human before each promotion and before each alarm's retraining. The bootstrap challenger is approved and
becomes champion; the first drifted day's alarm is rejected (no training); the next one is approved (training
runs); that challenger's promotion is rejected. Each answer is recorded with who and when: promotions in the
verdict ledger and on the model version, alarms beside the alarm."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, dates_between, seed_range
from mlops_provider.demo.embedded import EmbeddedAirflow
from tests.e2e.loop import (
    CHURN,
    clear_of_midnight,
    dag_runs,
    live_endpoint,
    prepared_environment,
    unpause,
    wait_for,
    wait_for_dags,
)
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).parent / "airflow")
PORT = 18797
MODULE_MINUTES = 15  # the module's longest runs on a loaded machine
MODEL = CHURN.name
INGEST, TRAINING, PROMOTION, MONITORING = (CHURN.dag(s) for s in ("ingest", "training", "promotion",
                                                                   "drift_monitoring"))  # fmt: skip


def spec_asking_humans(folder: Path) -> Path:
    """The churn spec with both human steps on, a gate that lets any challenger through (so that each one reaches
    the human), rails that let the second alarm through, and its relative paths made absolute."""
    import yaml

    text = (PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml").read_text()
    data = yaml.safe_load(text.replace("../", f"{PROJECT_ROOT}/include/"))
    data["gate"].update(human_approval=True, min_improvement=-1.0, floors={}, max_segment_regression=1.0)
    data["retraining"].update(human_review=True, cooldown_days=0, max_per_week=5)
    data["monitoring"]["floor"] = 0.5  # the late-label floor stated here, as gate.floors is emptied
    folder.mkdir()
    (folder / "churn_classifier.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("hitl")
    home, mlops, dags = root / "airflow", root / "mlops", root / "dags"
    for folder in (home, mlops, dags):
        folder.mkdir()
    (dags / "mlops_models.py").symlink_to(PROJECT_ROOT / "dags" / "mlops_models.py")
    end = clear_of_midnight(MODULE_MINUTES)
    days = dates_between(end - dt.timedelta(days=2), end)
    seed_range(create_engine(f"sqlite:///{mlops / 'source.db'}"), days, SourceSpec(drift_from=days[1], epoch=days[0]))
    env = prepared_environment(
        AIRFLOW, home, dags, mlops, days[0], MLOPS_MODELS_DIR=str(spec_asking_humans(root / "models"))
    )
    instance = EmbeddedAirflow(airflow_bin=AIRFLOW, airflow_home=home, port=PORT, env=env)
    instance.start()
    try:
        wait_for_dags(instance, models=(CHURN,))
        instance.notes = {"days": days, "mlops": mlops}  # type: ignore[attr-defined]
        yield instance
    finally:
        instance.stop()
        live_endpoint(env, CHURN.name, stop=True)  # the spec serves live: the endpoint's processes outlive Airflow


def pending(airflow: EmbeddedAirflow, task_id: str) -> list[dict]:
    """Requests for a human that nobody answered yet, of ``task_id``."""
    details = airflow.api("GET", f"/api/v2/dags/~/dagRuns/~/hitlDetails?task_id={task_id}&limit=50")["hitl_details"]
    return [d for d in details if not d["response_received"]]


def answer(airflow: EmbeddedAirflow, task_id: str, option: str, note: str, timeout: float = 600) -> dict:
    """Wait for a request of ``task_id``, answer it with ``option`` through the REST API; the request.

    It answers as soon as the task parked: in Airflow 3.3.2 an answer given before the scheduler has handled the
    end of the parked workload (its supervisor exits ~5 s after the task parks) makes the scheduler take the
    resumed task for "changed externally" and send it up for retry; the retry must honour that answer, not ask
    again (issue 27)."""
    (request,) = wait_for(lambda: pending(airflow, task_id), timeout, f"{task_id} to ask a human")
    ti = request["task_instance"]
    wait_for(lambda: task_state(airflow, ti["dag_id"], ti["dag_run_id"], task_id) == "awaiting_input", 60,
             f"{task_id} to park awaiting input", interval=0.5)  # fmt: skip
    airflow.api(
        "PATCH", f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{task_id}/-1/hitlDetails",
        {"chosen_options": [option], "params_input": {"note": note}},
    )  # fmt: skip
    return request


def task_state(airflow: EmbeddedAirflow, dag_id: str, run_id: str, task_id: str) -> str | None:
    return airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]


def test_promotions_and_retraining_wait_for_a_human_and_keep_the_answer(airflow):
    from mlflow import MlflowClient

    days, mlops = airflow.notes["days"], airflow.notes["mlops"]
    unpause(airflow, INGEST, TRAINING, PROMOTION, MONITORING)

    # 1. The bootstrap challenger reaches the human after the gate and the shadow check; approved, it is promoted.
    first = answer(airflow, "approve", "Approve", "first model, metrics reviewed")
    assert first["subject"] == f"Promote {MODEL} v1 to champion?"
    assert "| roc_auc |" in first["body"] and "Shadow check: passed" in first["body"]
    run = first["task_instance"]["dag_run_id"]
    wait_for(lambda: task_state(airflow, PROMOTION, run, "promote") == "success", 300, "promote after approval")

    # 2. The first drifted day's alarm asks before training; rejected, nothing is triggered.
    alarm = answer(airflow, "review_retraining", "Reject", "known marketing campaign, not a shift")
    assert alarm["subject"].startswith(f"Retrain {MODEL}? drift alarm for {days[1]}")
    alarm_run = alarm["task_instance"]["dag_run_id"]
    wait_for(lambda: task_state(airflow, MONITORING, alarm_run, "trigger_training") == "skipped", 300,
             "the rejected alarm to skip the trigger")  # fmt: skip

    # 3. The next drifted day's alarm is approved: the rails let it through, training runs, and its challenger
    #    comes to the human again; this one is rejected and stays a challenger.
    answer(airflow, "review_retraining", "Approve", "drift confirmed")
    second = answer(airflow, "approve", "Reject", "segment enterprise looks off", timeout=900)
    assert second["subject"] == f"Promote {MODEL} v2 to champion?"
    second_run = second["task_instance"]["dag_run_id"]
    wait_for(lambda: task_state(airflow, PROMOTION, second_run, "promote") == "skipped", 300, "promote skipped")

    client = MlflowClient(tracking_uri=f"sqlite:///{mlops / 'mlflow' / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    tags = {v: client.get_model_version(MODEL, v).tags for v in ("1", "2")}
    assert tags["1"]["approval.decision"] == "approve" and tags["2"]["approval.decision"] == "reject"
    assert tags["1"]["approval.by"] == tags["2"]["approval.by"] == "admin"
    assert tags["2"]["approval.note"] == "segment enterprise looks off" and tags["2"]["approval.at"]
    for version, decision in (("1", "approve"), ("2", "reject")):
        (ledger,) = [
            json.loads(p.read_text()) for p in (mlops / "reports" / "ledgers" / MODEL / f"v{version}").glob("*.json")
        ]
        assert ledger["human"]["decision"] == decision and ledger["human"]["by"] == "admin"
        assert ledger["human_approvals"] == [ledger["human"]]

    reviews = {
        p.parent.name: json.loads(p.read_text()) for p in (mlops / "reports" / "alarm-reviews" / MODEL).glob("*/*.json")
    }
    assert reviews[days[1].isoformat()]["decision"] == "reject"
    assert reviews[days[1].isoformat()]["note"] == "known marketing campaign, not a shift"
    assert reviews[days[2].isoformat()]["decision"] == "approve" and reviews[days[2].isoformat()]["by"] == "admin"
    training_runs = [r["dag_run_id"] for r in dag_runs(airflow, TRAINING)]
    assert (
        f"drift__{CHURN.dataset}__{days[2]}" in training_runs
        and f"drift__{CHURN.dataset}__{days[1]}" not in training_runs
    )
