"""``wait_for_training_set`` starts in the triggerer (issue 31 item 4: fewer task processes a day).

In a backfill the day's training set is usually versioned before its monitoring run starts: the sensor's task
process (supervisor, task runner, the DAG's parse, its Execution API calls) only looked the tag up and returned it.
Started from its trigger (Airflow's ``start_from_trigger``), the scheduler defers the task at once; the triggerer
renders the trigger's templated fields (the operator's template fields that are trigger kwargs) with the run's
context, the trigger resolves the registry's workspace, the relative abandon paths and the run's day itself, makes
the first check and ends the task. These tests build the trigger the way Airflow 3.3's triggerer does: from the
serialized DAG's ``start_trigger_args``, with ``TriggerRunner.create_runtime_ti`` and ``render_template_fields``.
``dag.test()`` ignores ``start_from_trigger``: there the sensor runs on the worker path as before.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import datetime, timezone

import pytest
from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from mlops_provider.loop.factory import build_dags
from mlops_provider.loop.spec import load_spec
from mlops_provider.sensors.dvc import DvcTagSensor
from mlops_provider.triggers import dvc as dvc_triggers
from mlops_provider.triggers.dvc import DvcTagTrigger
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

MODELS = PROJECT_ROOT / "include" / "models"
DAG_ID = "churn_classifier__drift_monitoring"
DAY = datetime(2026, 11, 2, tzinfo=timezone.utc)
TAG = "training-set/churn_classifier/2026-11-02"


def monitoring_dag():
    return build_dags(load_spec(MODELS / "churn_classifier.yaml"))[DAG_ID]


def test_the_factorys_wait_for_training_set_starts_from_its_trigger():
    sensor = monitoring_dag().get_task("wait_for_training_set")
    assert sensor.start_from_trigger is True
    args = sensor.start_trigger_args
    assert args.trigger_cls == "mlops_provider.triggers.dvc.DvcTagTrigger"
    assert args.next_method == "execute_complete" and args.timeout.total_seconds() == sensor.timeout
    kwargs = args.trigger_kwargs
    assert kwargs["end_task"] is True and kwargs["settle_seconds"] == 0 and kwargs["workspace"] is None
    assert kwargs["ingest_dag_id"] == "churn_classifier__ingest" and kwargs["logical_date"] is None
    # the fields the triggerer renders are the operator's template fields that are trigger kwargs
    assert {"tag", "abandon_paths", "ingest_tag", "dvc_conn_id"} <= set(kwargs) & set(sensor.template_fields)
    assert DvcTagTrigger(**kwargs).serialize()[1] == kwargs  # what the trigger row holds


def test_start_from_trigger_needs_deferrable():
    with pytest.raises(ValueError, match="start_from_trigger needs deferrable=True"):
        DvcTagSensor(task_id="w", tag=TAG, deferrable=False, start_from_trigger=True)


def registry(path, tags: list[str]) -> str:
    """A git repository with one commit carrying ``tags``: its commit."""
    path.mkdir(parents=True)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "day"], check=True)
    for tag in tags:
        subprocess.run([*git, "tag", tag], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def triggerer_trigger(dag=None) -> DvcTagTrigger:
    """The trigger as Airflow 3.3's triggerer makes it for the scheduler's deferral of the serialized task of
    ``dag`` (the churn model's monitoring DAG): the trigger row's kwargs, the runtime task instance of the run, the
    trigger's fields rendered with its context."""
    from airflow.executors.workloads.task import TaskInstanceDTO
    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.models.trigger import Trigger
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dag or monitoring_dag()
    dag_data = DagSerialization.to_dict(dag)
    task = DagSerialization.from_dict(dag_data).get_task("wait_for_training_set")
    row = Trigger(classpath=task.start_trigger_args.trigger_cls, kwargs=task.start_trigger_args.trigger_kwargs)
    kwargs = {k: smart_decode_trigger_kwargs(v) for k, v in Trigger._decrypt_kwargs(row.encrypted_kwargs).items()}
    trigger = DvcTagTrigger(**kwargs)
    ti = TaskInstanceDTO(
        id=uuid.uuid4(), dag_version_id=uuid.uuid4(), task_id="wait_for_training_set", dag_id=dag.dag_id,
        run_id="backfill__2026-11-02T00:00:00+00:00", try_number=1, map_index=-1, pool_slots=1, priority_weight=1,
    )  # fmt: skip
    dag_run = {"dag_id": dag.dag_id, "run_id": ti.run_id, "logical_date": DAY, "data_interval_start": DAY,
               "data_interval_end": datetime(2026, 11, 3, tzinfo=timezone.utc), "run_after": DAY, "start_date": DAY,
               "end_date": None, "run_type": "backfill", "state": "running", "consumed_asset_events": [],
               "partition_key": None}  # fmt: skip
    runtime_ti = TriggerRunner.create_runtime_ti(ti, dag_data, dag_run)
    context = runtime_ti.get_template_context()
    trigger.task_instance = runtime_ti
    trigger.render_template_fields(context=context)
    return trigger


def first_event(trigger: DvcTagTrigger) -> TriggerEvent:
    async def first() -> TriggerEvent:
        return await asyncio.wait_for(trigger.run().__anext__(), 30)

    return asyncio.run(first())


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An embedded home: the default connection's registry is ``$MLOPS_HOME/data-registry``."""
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.delenv("MLOPS_STORAGE_URL", raising=False)
    monkeypatch.setattr(dvc_triggers, "ingest_run_counts", lambda *a: ({"failed": 0, "success": 1, "all": 1}, 0))
    return tmp_path


def test_the_triggerer_renders_the_days_tag_and_ends_the_task_with_the_sensors_xcom(home):
    from mlops_provider.utils.paths import dvc_workspace_dir

    sha = registry(dvc_workspace_dir(), [TAG])
    trigger = triggerer_trigger()
    assert trigger.tag == TAG and trigger.abandon_paths == ["quarantine/customer_activity/2026-11-02"]
    event = first_event(trigger)
    assert isinstance(event, TaskSuccessEvent) and event.xcoms == {"return_value": {"tag": TAG, "sha": sha}}
    assert trigger.workspace == str(dvc_workspace_dir()) and trigger.dvc_conn_id is None  # no git remote
    assert trigger.logical_date == DAY.isoformat() and trigger.step_seconds == 86400.0  # the run's day


def test_the_days_quarantine_under_the_storage_root_skips_the_task(home):
    from mlops_provider.utils.paths import dvc_workspace_dir

    registry(dvc_workspace_dir(), [])
    (home / "quarantine" / "customer_activity" / "2026-11-02").mkdir(parents=True)
    assert isinstance(first_event(triggerer_trigger()), TaskSkippedEvent)


def test_a_failed_ingest_run_of_the_runs_day_skips_the_task(home, monkeypatch):
    from mlops_provider.utils.paths import dvc_workspace_dir

    registry(dvc_workspace_dir(), [])
    asked = []

    def counts(dag_id, logical_date, step):
        asked.append((dag_id, logical_date, step))
        return {"failed": 1, "success": 0, "all": 1}, 0

    monkeypatch.setattr(dvc_triggers, "ingest_run_counts", counts)
    assert isinstance(first_event(triggerer_trigger()), TaskSkippedEvent)
    assert asked == [("churn_classifier__ingest", DAY.isoformat(), 86400.0)]


def test_a_shared_datasets_model_gives_up_when_its_training_set_run_of_the_day_failed(home, tmp_path, monkeypatch):
    """A model on a shared dataset: the triggerer renders the partition tag the dataset's ingest versions; once that
    run succeeded and versioned it, the model's training-set run of the day decides (failed: skipped)."""
    from mlops_provider.loop.factory import build_all
    from mlops_provider.utils.paths import dvc_workspace_dir
    from tests.unit.loop.test_shared_ingest import project

    dag = build_all(project(tmp_path, "churn_twin"))[DAG_ID]
    registry(dvc_workspace_dir(), ["partition/customer_activity/2026-11-02"])
    asked = []

    def assembly(dag_id, logical_date):
        asked.append((dag_id, logical_date))
        return dag_id, {"failed": 1, "success": 0}

    monkeypatch.setattr(dvc_triggers, "assembly_run_counts", assembly)
    trigger = triggerer_trigger(dag)
    assert trigger.ingest_tag == "partition/customer_activity/2026-11-02"
    assert trigger.ingest_dag_id == "customer_activity__ingest"
    assert isinstance(first_event(trigger), TaskSkippedEvent)
    assert asked == [("churn_classifier__training_set", DAY.isoformat())]
