"""``drift_sensor`` decides in the triggerer, no task process (issue 31 item 4: fewer task processes a day).

Its inputs (the day's drift and performance summaries) are always there when it is scheduled (it runs after both
checks), so its task process only read two JSON files and skipped (no drift) or returned the decision. Started from
its trigger (Airflow's ``start_from_trigger``), the scheduler defers it at once; the trigger reads the two paths
from the checks' results (their XComs), decides with the same rule (``decide``) and ends the task:
``TaskSuccessEvent`` with the decision as XCom, ``TaskSkippedEvent`` (no retraining), ``TaskFailedEvent`` (no
verdict). A spec that mails on drift keeps the task on a worker (its success callback runs where it always did).
``dag.test()`` ignores ``start_from_trigger``: there the sensor runs as before.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from mlops_provider.loop.factory import build_dags
from mlops_provider.loop.spec import load_spec
from mlops_provider.sensors.drift import DriftSensor
from mlops_provider.triggers.drift import DriftResultTrigger
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

MODELS = PROJECT_ROOT / "include" / "models"


def drift_sensor(spec_path=MODELS / "churn_classifier.yaml") -> DriftSensor:
    return build_dags(load_spec(spec_path))["churn_classifier__drift_monitoring"].get_task("drift_sensor")


def test_the_factorys_drift_sensor_starts_from_its_trigger_with_the_checks_results_templated():
    sensor = drift_sensor()
    assert sensor.start_from_trigger is True
    args = sensor.start_trigger_args
    assert args.trigger_cls == "mlops_provider.triggers.drift.DriftResultTrigger"
    assert args.next_method == "execute_complete" and args.timeout.total_seconds() == sensor.timeout
    kwargs = args.trigger_kwargs
    assert kwargs["decide"] is True and kwargs["settle_seconds"] == 0
    # the checks' results are read by the trigger itself (GetXCom): Airflow 3.3.2's triggerer does not answer a
    # template's ti.xcom_pull (GetXComSequenceSlice), so nothing is templated
    assert (kwargs["summary_task_id"], kwargs["performance_task_id"]) == ("drift_report", "performance_check")
    assert not {"summary_path", "performance_path"} & set(kwargs)


def test_it_serializes_for_the_scheduler():
    from airflow.serialization.serialized_objects import DagSerialization

    dag = build_dags(load_spec(MODELS / "churn_classifier.yaml"))["churn_classifier__drift_monitoring"]
    op = DagSerialization.serialize_dag(dag)
    task = next(t for t in op["tasks"] if t["__var"]["task_id"] == "drift_sensor")["__var"]
    assert task["start_from_trigger"] is True
    assert task["start_trigger_args"]["trigger_cls"] == "mlops_provider.triggers.drift.DriftResultTrigger"


def test_a_spec_that_mails_on_drift_keeps_the_sensor_on_a_worker(tmp_path):
    text = (MODELS / "churn_classifier.yaml").read_text().replace("../", f"{MODELS.parent}/")
    (tmp_path / "churn_classifier.yaml").write_text(text + "\nnotifications:\n  email: [oncall@example.com]\n")
    assert not drift_sensor(tmp_path / "churn_classifier.yaml").start_from_trigger


def summary(tmp_path, share: float, drifted: bool, name: str = "drift.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"drift_share": share, "dataset_drift": drifted, "threshold": 0.3,
                                "partition": "2026-11-02", "columns": {}, "summary_path": str(path)}))  # fmt: skip
    return str(path)


def first_event(trigger: DriftResultTrigger) -> TriggerEvent:
    async def first() -> TriggerEvent:
        return await asyncio.wait_for(trigger.run().__anext__(), 30)

    return asyncio.run(first())


def test_the_trigger_decides_like_the_sensor(tmp_path):
    calm = summary(tmp_path, 0.1, False)
    assert isinstance(first_event(DriftResultTrigger(calm, settle_seconds=0, decide=True)), TaskSkippedEvent)
    drifted = summary(tmp_path, 0.5, True, "drifted.json")
    event = first_event(DriftResultTrigger(drifted, settle_seconds=0, decide=True))
    assert isinstance(event, TaskSuccessEvent)
    sensor = DriftSensor(task_id="drift_sensor", summary_path=drifted)
    assert event.xcoms == {"return_value": sensor.decide(json.loads((tmp_path / "drifted.json").read_text()))}
    (tmp_path / "no_verdict.json").write_text(json.dumps({"drift_share": 0.9}))
    no_verdict = DriftResultTrigger(str(tmp_path / "no_verdict.json"), settle_seconds=0, decide=True)
    assert isinstance(first_event(no_verdict), TaskFailedEvent)


def test_without_decide_the_trigger_fires_as_before(tmp_path):
    calm = summary(tmp_path, 0.1, False)
    event = first_event(DriftResultTrigger(calm, settle_seconds=0))
    assert type(event) is TriggerEvent and event.payload["status"] == "ready"
    assert DriftResultTrigger(**DriftResultTrigger(calm, decide=True).serialize()[1]).decide is True


def test_the_trigger_reads_the_checks_results_of_its_run(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from airflow.sdk.execution_time.xcom import XCom

    paths = {"drift_report": summary(tmp_path, 0.5, True), "performance_check": None}
    perf = tmp_path / "performance.json"
    perf.write_text(json.dumps({"status": "scored", "below_floor": False, "value": 0.8, "floor": 0.65,
                                "metric": "roc_auc"}))  # fmt: skip
    paths["performance_check"] = str(perf)
    asked = []

    def get_one(*, run_id, key, dag_id, task_id, map_index):
        asked.append((dag_id, run_id, task_id, key, map_index))
        return {"summary_path": paths[task_id], "other": 1}

    monkeypatch.setattr(XCom, "get_one", staticmethod(get_one))
    trigger = DriftResultTrigger(settle_seconds=0, decide=True, summary_task_id="drift_report",
                                 performance_task_id="performance_check")  # fmt: skip
    trigger.task_instance = SimpleNamespace(dag_id="m__drift_monitoring", run_id="r1", map_index=-1, task_id="ds")
    event = first_event(trigger)
    assert isinstance(event, TaskSuccessEvent) and event.xcoms["return_value"]["reason"] == "drift"
    assert event.xcoms["return_value"]["performance"]["value"] == 0.8
    assert sorted(asked) == [("m__drift_monitoring", "r1", t, "return_value", -1)
                             for t in ("drift_report", "performance_check")]  # fmt: skip
