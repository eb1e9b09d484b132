"""The tag sensor's deferred wait ends in the triggerer (issue 31 item 4: fewer task processes a day).

A deferred ``wait_for_training_set`` used to cost a second task process (supervisor, task runner, the DAG's parse,
its Execution API calls) only to return the trigger's ``{"tag", "sha"}`` or to skip. With ``end_task`` the trigger
ends the task itself (Airflow's ``TaskSuccessEvent`` with the same XCom, ``TaskSkippedEvent``): nothing resumes on a
worker. ``dag.test()`` runs a trigger inline and hands the task the bare state; the task then checks again.
"""

from __future__ import annotations

import asyncio
import subprocess
from types import SimpleNamespace

import pytest
from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from mlops_provider.sensors.dvc import DvcTagSensor
from mlops_provider.triggers import dvc as dvc_triggers
from mlops_provider.triggers.dvc import DvcTagTrigger
from mlops_provider.utils.compat import AirflowSkipException

pytestmark = pytest.mark.unit

TAG = "training-set/m/2026-11-02"


def registry(tmp_path, tagged: bool) -> tuple[str, str | None]:
    """A git repository with one commit, ``TAG`` on it when ``tagged``; its path and the commit."""
    repo = tmp_path / "registry"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "day"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    if tagged:
        subprocess.run([*git, "tag", TAG], check=True)
    return str(repo), sha if tagged else None


def first_event(trigger: DvcTagTrigger) -> TriggerEvent:
    async def first() -> TriggerEvent:
        return await asyncio.wait_for(trigger.run().__anext__(), 30)

    return asyncio.run(first())


def test_a_found_tag_ends_the_task_in_the_triggerer_with_the_sensors_xcom(tmp_path):
    workspace, sha = registry(tmp_path, tagged=True)
    trigger = DvcTagTrigger(workspace, TAG, settle_seconds=0, end_task=True)
    assert DvcTagTrigger(**trigger.serialize()[1]).end_task is True  # survives the trigger table
    event = first_event(trigger)
    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms == {"return_value": {"tag": TAG, "sha": sha}}


def test_without_end_task_the_trigger_fires_as_before(tmp_path):
    workspace, sha = registry(tmp_path, tagged=True)
    event = first_event(DvcTagTrigger(workspace, TAG, settle_seconds=0))
    assert type(event) is TriggerEvent and event.payload == {"status": "found", "tag": TAG, "sha": sha}


def test_an_abandon_path_skips_the_task_in_the_triggerer(tmp_path):
    workspace, _ = registry(tmp_path, tagged=False)
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    event = first_event(DvcTagTrigger(workspace, TAG, [str(quarantine)], settle_seconds=0, end_task=True))
    assert isinstance(event, TaskSkippedEvent)


def test_an_ingest_run_that_failed_skips_the_task_in_the_triggerer(tmp_path, monkeypatch):
    workspace, _ = registry(tmp_path, tagged=False)
    monkeypatch.setattr(dvc_triggers, "ingest_run_counts", lambda *a: ({"failed": 1, "success": 0, "all": 1}, 0))
    trigger = DvcTagTrigger(workspace, TAG, settle_seconds=0, end_task=True, ingest_dag_id="m__ingest",
                            logical_date="2026-11-02T00:00:00+00:00")  # fmt: skip
    assert isinstance(first_event(trigger), TaskSkippedEvent)


def sensor(monkeypatch, found):
    monkeypatch.setattr(DvcTagSensor, "dvc_hook", SimpleNamespace(workspace="/w", has_git_remote=False))
    task = DvcTagSensor(task_id="wait_for_training_set", tag=TAG)
    monkeypatch.setattr(task, "_check", lambda context=None: found)
    return task


def test_the_sensor_defers_to_a_trigger_that_ends_the_task(monkeypatch):
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        sensor(monkeypatch, None).execute({})
    assert deferred.value.trigger.end_task is True


def test_a_resume_with_the_bare_state_checks_again(monkeypatch):
    """``dag.test()`` hands the task the end event's state as its payload: the task looks the tag up itself."""
    found = {"tag": TAG, "sha": "abc"}
    assert sensor(monkeypatch, found).execute_complete({}, event="success") == found
    with pytest.raises(AirflowSkipException):
        sensor(monkeypatch, None).execute_complete({}, event="skipped")
