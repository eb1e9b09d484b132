"""Trigger that waits, in the triggerer, for a tag to appear in the data registry (or for a sign it never will)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from mlops_provider.triggers.settle import RESUME_SETTLE_SECONDS, settle_delay


async def tag_sha(workspace: str, tag: str) -> str | None:
    """The commit a tag of the git repository at ``workspace`` points to, or None (no tag, no repository)."""
    if not (Path(workspace) / ".git").exists():
        return None
    proc = await asyncio.create_subprocess_exec(
        "git", "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}",
        cwd=workspace, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return (out.decode().strip() or None) if proc.returncode == 0 else None


#: Later logical dates (one interval apart) whose ingest run shows that a missing run of a day will not come.
LATER_RUNS_LOOKED_AT = 7


def give_up_reason(
    tag: str,
    ingest_dag_id: str,
    logical_date: str,
    runs: dict[str, int],
    later_runs: int,
    ingest_versioned: bool | None = None,
    assembly: tuple[str, dict[str, int]] | None = None,
) -> str | None:
    """Why ``tag`` will not come from the day's ingest run, or None (keep waiting); pure. ``runs``: the ingest runs
    of the logical date by state (``failed``, ``success``, ``all``), read *before* the tag was looked up and not
    found, so a run that ends between the two looks is never misread; ``later_runs``: ingest runs of the next
    logical dates (runs are created in date order: a later one and none of this day means this one will not come).
    ``ingest_versioned``: None when the ingest run versions ``tag`` itself; else whether it versioned what ``tag`` is
    built from (a shared dataset's partition, which the model's training-set DAG assembles ``tag`` from after the
    ingest run ended): a successful run that did keeps the wait going, unless ``assembly`` (the training-set DAG
    that assembles ``tag`` and its runs of the logical date by state, read before the tag too) says that run failed
    or succeeded without the tag (too few versioned days yet: the loop is warming up)."""
    run = f"the ingest run of {logical_date} ({ingest_dag_id})"
    if runs.get("failed"):
        return f"{tag} will not be versioned: {run} failed; clear it (and this run) once it is fixed"
    if runs.get("success") and ingest_versioned:
        if assembly is not None:
            made = f"the training-set run of {logical_date} ({assembly[0]})"
            if assembly[1].get("failed"):
                return f"{tag} will not be versioned: {made} failed; clear it (and this run) once it is fixed"
            if assembly[1].get("success"):
                return (
                    f"{tag} will not be versioned: {made} succeeded without versioning it (too few versioned days "
                    "for a training set: the loop is warming up)"
                )
        return None  # the partition is versioned: the model's training-set run of the day assembles the tag
    if runs.get("success") and ingest_versioned is False:
        return f"{tag} will not be versioned: {run} succeeded without versioning the day's partition (no rows that day)"
    if runs.get("success"):
        return (
            f"{tag} will not be versioned: {run} succeeded without versioning it (no rows that day with "
            "dataset.on_empty: skip, or too few versioned days for a training set)"
        )
    if not runs.get("all") and later_runs:
        return (
            f"{tag} will not be versioned: there is no ingest run of {logical_date} in {ingest_dag_id} while a "
            "later day has one (the day is outside its schedule, or its run was deleted)"
        )
    return None


def ingest_run_counts(ingest_dag_id: str, logical_date: str, step_seconds: float) -> tuple[dict[str, int], int]:
    """The day's ingest runs by state and the count of runs of the next logical dates, asked of Airflow
    (``RuntimeTaskInstance.get_dr_count``: works in a task and in the triggerer). In 2 calls, 3 when the day's run
    ended (each an Execution API call, the sensor's check and every poll of its trigger: it was 4): the later days
    are counted only when the day has no run (:func:`give_up_reason` reads them only then; else 0), the day's
    failed and successful runs only when one of them ended."""
    from datetime import datetime, timedelta

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    day = datetime.fromisoformat(logical_date)
    count = RuntimeTaskInstance.get_dr_count
    runs = {"failed": 0, "success": 0, "all": count(ingest_dag_id, logical_dates=[day])}
    if not runs["all"]:
        later = [day + timedelta(seconds=step_seconds * k) for k in range(1, LATER_RUNS_LOOKED_AT + 1)]
        return runs, count(ingest_dag_id, logical_dates=later)
    ended = count(ingest_dag_id, logical_dates=[day], states=["failed", "success"])
    if ended:
        runs["failed"] = count(ingest_dag_id, logical_dates=[day], states=["failed"])
        runs["success"] = ended - runs["failed"]
    return runs, 0


def assembly_run_counts(assembly_dag_id: str, logical_date: str) -> tuple[str, dict[str, int]]:
    """The training-set DAG's runs of the logical date that ended, by state (``failed``, ``success``), asked of
    Airflow as :func:`ingest_run_counts` does (one call while none ended, two once one did); with the DAG's id
    (``give_up_reason``'s ``assembly``)."""
    from datetime import datetime

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    day = datetime.fromisoformat(logical_date)
    count = RuntimeTaskInstance.get_dr_count
    runs = {"failed": 0, "success": 0}
    ended = count(assembly_dag_id, logical_dates=[day], states=["failed", "success"])
    if ended:
        runs["failed"] = count(assembly_dag_id, logical_dates=[day], states=["failed"])
        runs["success"] = ended - runs["failed"]
    return assembly_dag_id, runs


def abandoned_reason(tag: str, path: str) -> str:
    """Why ``tag`` will not come when ``path`` (an abandon path: the partition's quarantine folder) exists."""
    return f"{tag} will not be versioned: {path} exists (the data was quarantined)"


def resolved_paths(paths: Sequence[str]) -> list[str]:
    """Abandon paths as the sensor and its trigger check them: a URL or an absolute path as it is, a relative one
    under the storage root (``MLOPS_STORAGE_URL``, else ``MLOPS_HOME``)."""
    from mlops_provider.utils.storage import location, storage_root

    return [p if "://" in p or Path(p).is_absolute() else location(storage_root() / p) for p in paths]


def registry_of(hook: Any) -> tuple[str, str | None]:
    """What DvcTagTrigger reads for ``hook``'s registry (a ``DvcHook``): its workspace, and its connection id only
    when the registry has a git remote (the tag is then asked of the remote; else of the local workspace)."""
    return str(hook.workspace), (hook.dvc_conn_id if hook.has_git_remote else None)


def run_day(context: Any) -> tuple[str | None, float]:
    """The run's logical date (ISO) and its schedule's interval in seconds (a day when it has none), from a task's
    context."""
    logical = context.get("logical_date")
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    step = (end - start).total_seconds() if start and end and end > start else 86400.0
    return (logical.isoformat() if logical else None), step


def _exists(where: str) -> bool:
    """Whether a file or folder exists: a local path, or a URL on object storage (``mlops_provider.utils.storage``)."""
    from mlops_provider.utils.storage import stored

    return stored(where).exists()


class DvcTagTrigger(BaseTrigger):
    """Fires ``{"status": "found", "tag", "sha"}`` when ``tag`` exists in the data registry, or
    ``{"status": "abandoned", "path"}`` when one of ``abandon_paths`` exists first (e.g. the quarantine folder
    of the partition: the tag will never come).

    :param workspace: local folder of the data registry (a git repository), read when it has no git remote; None:
        the one of ``dvc_conn_id`` (its default connection when that is None), resolved when the trigger runs, which
        then asks the registry's git remote only when the connection has one (a sensor started from its trigger).
    :param tag: the tag to wait for.
    :param abandon_paths: files or folders (local paths or object-storage URLs) whose existence means the tag will
        not appear.
    :param poll_interval: seconds between checks.
    :param dvc_conn_id: the ``dvc`` connection of a registry with a git remote: the tag is then asked of the remote
        (``DvcHook.tag_sha``), since the triggerer's host has no clone of its own that anything keeps fresh.
    :param settle_seconds: the earliest it fires after it started (:mod:`mlops_provider.triggers.settle`).
    :param ingest_dag_id: the DAG whose run of ``logical_date`` versions the tag; when set, fires
        ``{"status": "given_up", "reason"}`` when that run failed, succeeded without the tag, or is missing
        (:func:`give_up_reason`).
    :param logical_date: the logical date (ISO) of the ingest run to look at; None with ``ingest_dag_id``: the one of
        the run the trigger's task belongs to (the triggerer's context of a task started from its trigger).
    :param step_seconds: the schedule's interval (the next logical dates are this far apart).
    :param ingest_tag: the tag the ingest run versions when it is not ``tag`` (a shared dataset's partition; the
        model's training-set DAG assembles ``tag`` from it): a successful ingest run that versioned it keeps the wait
        going (:func:`give_up_reason`'s ``ingest_versioned``).
    :param assembly_dag_id: with ``ingest_tag``: the DAG whose run of ``logical_date`` assembles ``tag`` from it (a
        shared dataset's ``<model>__training_set``): its failed run, or one that succeeded without the tag, gives up.
    :param end_task: end the deferred task here instead of resuming it on a worker (:class:`DvcTagSensor` sets it):
        found, Airflow's ``TaskSuccessEvent`` with the sensor's XCom ``{"tag", "sha"}``; abandoned or given up,
        ``TaskSkippedEvent`` (the reason in the trigger's log, which the task's log shows). A resume cost a second
        task process (supervisor, task runner, the DAG's parse, its Execution API calls) only to return that value.
    """

    def __init__(
        self,
        workspace: str | None,
        tag: str,
        abandon_paths: Sequence[str] = (),
        poll_interval: float = 10.0,
        dvc_conn_id: str | None = None,
        settle_seconds: float = RESUME_SETTLE_SECONDS,
        ingest_dag_id: str | None = None,
        logical_date: str | None = None,
        step_seconds: float = 86400.0,
        ingest_tag: str | None = None,
        assembly_dag_id: str | None = None,
        end_task: bool = False,
    ) -> None:
        super().__init__()
        self.end_task = end_task
        self.ingest_tag = ingest_tag
        self.assembly_dag_id = assembly_dag_id
        self.ingest_dag_id = ingest_dag_id
        self.logical_date = logical_date
        self.step_seconds = step_seconds
        self.workspace = workspace
        self.tag = tag
        self.abandon_paths = list(abandon_paths)
        self.poll_interval = poll_interval
        self.dvc_conn_id = dvc_conn_id
        self.settle_seconds = settle_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "mlops_provider.triggers.dvc.DvcTagTrigger",
            {"workspace": self.workspace, "tag": self.tag, "abandon_paths": self.abandon_paths,
             "poll_interval": self.poll_interval, "dvc_conn_id": self.dvc_conn_id,
             "settle_seconds": self.settle_seconds, "ingest_dag_id": self.ingest_dag_id,
             "logical_date": self.logical_date, "step_seconds": self.step_seconds, "ingest_tag": self.ingest_tag,
             "assembly_dag_id": self.assembly_dag_id,
             "end_task": self.end_task},
        )  # fmt: skip

    def _resolve(self) -> None:
        """Started from a task (no workspace given): the workspace of ``dvc_conn_id``'s registry, its git remote
        only when it has one (as the sensor passes them when it defers), the relative abandon paths under the storage
        root, and the logical date and interval of the task's run."""
        from mlops_provider.hooks.dvc import DvcHook
        from mlops_provider.layout import DVC_DEFAULT_CONN_ID

        self.workspace, self.dvc_conn_id = registry_of(DvcHook(dvc_conn_id=self.dvc_conn_id or DVC_DEFAULT_CONN_ID))
        self.abandon_paths = resolved_paths(self.abandon_paths)
        context = getattr(self.task_instance, "get_template_context", None)
        if self.ingest_dag_id and self.logical_date is None and context is not None:
            self.logical_date, self.step_seconds = run_day(context())

    def _remote_tag_sha(self, tag: str | None = None) -> str | None:
        from mlops_provider.hooks.dvc import DvcError, DvcHook

        try:
            return DvcHook(dvc_conn_id=str(self.dvc_conn_id), workspace=self.workspace).tag_sha(tag or self.tag)
        except DvcError as exc:  # the remote is unreachable for now: keep waiting, say why
            self.log.warning("%s", exc)
            return None

    async def _tag_sha(self, tag: str) -> str | None:
        if self.dvc_conn_id:  # blocking git and connection calls: in a thread
            return await asyncio.to_thread(self._remote_tag_sha, tag)
        return await tag_sha(str(self.workspace), tag)

    def _event(self, payload: dict[str, Any]) -> TriggerEvent:
        """The event for ``payload``: as it is, or (``end_task``) the end of the task with what
        ``DvcTagSensor.execute_complete`` would have made of it."""
        if not self.end_task:
            return TriggerEvent(payload)
        if payload["status"] == "found":
            self.log.info("%s is versioned (commit %s): the task succeeds", payload["tag"], payload["sha"])
            return TaskSuccessEvent(xcoms={"return_value": {"tag": payload["tag"], "sha": payload["sha"]}})
        why = abandoned_reason(self.tag, payload["path"]) if payload["status"] == "abandoned" else payload["reason"]
        self.log.info("Skipping the task: %s", why)
        return TaskSkippedEvent()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        if self.workspace is None:  # started from its task: Airflow's comms (the connection), as below
            from asgiref.sync import sync_to_async

            await sync_to_async(self._resolve)()
        while True:
            counts, assembly = None, None
            if self.ingest_dag_id and self.logical_date:  # before the tag: see give_up_reason
                from asgiref.sync import sync_to_async

                ask = sync_to_async(ingest_run_counts)  # Airflow's comms from the triggerer, as its own triggers do
                counts = await ask(self.ingest_dag_id, self.logical_date, self.step_seconds)
                if self.assembly_dag_id and counts[0].get("success"):  # read only when the ingest succeeded
                    assembly = await sync_to_async(assembly_run_counts)(self.assembly_dag_id, self.logical_date)
            sha = await self._tag_sha(self.tag)
            if sha:
                await asyncio.sleep(settle_delay(started, time.monotonic(), self.settle_seconds))
                yield self._event({"status": "found", "tag": self.tag, "sha": sha})
                return
            for path in self.abandon_paths:
                if await asyncio.to_thread(_exists, path):
                    await asyncio.sleep(settle_delay(started, time.monotonic(), self.settle_seconds))
                    yield self._event({"status": "abandoned", "tag": self.tag, "path": path})
                    return
            versioned = None
            if counts and self.ingest_tag and counts[0].get("success"):
                versioned = bool(await self._tag_sha(self.ingest_tag))
            reason = counts and give_up_reason(
                self.tag, str(self.ingest_dag_id), str(self.logical_date), *counts, ingest_versioned=versioned,
                assembly=assembly,
            )  # fmt: skip
            if reason:
                yield self._event({"status": "given_up", "tag": self.tag, "reason": reason})
                return
            await asyncio.sleep(self.poll_interval)
