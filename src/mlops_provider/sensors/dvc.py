"""Sensor on the data registry: go on once a version (a tag) exists; skip when it never will."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlops_provider.hooks.mixins import DvcHookMixin
from mlops_provider.utils.compat import AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context


class DvcTagSensor(DvcHookMixin, BaseSensorOperator):
    """Wait until ``tag`` exists in the data registry (e.g. the training set of a day).

    Returns at once when the tag is already there (no deferral, no slot held). Otherwise it defers to
    DvcTagTrigger (default), which ends the task itself in the triggerer (success with the same XCom, or skipped:
    no second task process resumes it on a worker), or pokes (``deferrable=False``, ``mode="poke"`` or
    ``"reschedule"``). When one of ``abandon_paths`` appears first (the partition's quarantine folder: validation
    failed), it ends as **skipped**: the version will not come, and nothing downstream should run for it. With
    ``ingest_dag_id`` it also gives up, **skipped** with the reason, when that DAG's run of the same logical date
    failed, succeeded without versioning the tag (an empty day skipped), or is missing while a later day's run
    exists (:func:`mlops_provider.triggers.dvc.give_up_reason`).

    :param tag: the data registry tag to wait for (templated).
    :param abandon_paths: paths whose existence means the tag will never appear: local paths or object-storage
        URLs (templated; relative paths are under the storage root, ``MLOPS_STORAGE_URL`` or else ``MLOPS_HOME``,
        resolved when the task runs).

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``dvc_conn_id``.
    :param ingest_dag_id: the DAG whose run of this run's logical date versions the tag (None: wait for the tag or
        an abandon path only).
    :param ingest_tag: the tag that run versions when it is not ``tag`` (templated): a shared dataset's ingest DAG
        versions the partition and the model's training-set DAG assembles ``tag`` from it afterwards, so a
        successful ingest run that versioned ``ingest_tag`` keeps the wait going, one that did not gives up.
    :param assembly_dag_id: with ``ingest_tag``: the DAG whose run of this run's logical date assembles ``tag`` (a
        shared dataset's ``<model>__training_set``, which the dataset's ingest starts): its failed run, or one that
        succeeded without the tag (warming up), gives up too.
    :param deferrable: wait in the triggerer (default) or, ``False``, poke.
    :param poll_interval: seconds between checks.
    :param start_from_trigger: Airflow's ``start_from_trigger``: the scheduler defers the task as soon as it is ready
        and DvcTagTrigger makes the first check too, then ends the task (success with the same XCom, or skipped):
        no task process at all, even when the tag is already there (a backfill's usual case). The trigger renders
        the templated fields with the run's context and resolves the connection and the relative abandon paths in
        the triggerer.

    XCom (return value): ``{"tag", "sha"}``.
    """

    template_fields: Sequence[str] = ("tag", "abandon_paths", "ingest_tag")

    def __init__(
        self,
        *,
        tag: str,
        abandon_paths: Sequence[str] = (),
        ingest_dag_id: str | None = None,
        ingest_tag: str | None = None,
        assembly_dag_id: str | None = None,
        deferrable: bool = True,
        poll_interval: float = 10.0,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", timedelta(hours=12).total_seconds())
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.tag = tag
        self.abandon_paths = list(abandon_paths)
        self.ingest_dag_id = ingest_dag_id
        self.ingest_tag = ingest_tag
        self.assembly_dag_id = assembly_dag_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        if start_from_trigger:
            from mlops_provider.triggers import start_from_trigger as start

            # tag, abandon_paths, ingest_tag and dvc_conn_id are rendered by the triggerer (the operator's template
            # fields that are trigger kwargs); the workspace and the run's day are resolved there
            start(
                self,
                "mlops_provider.triggers.dvc.DvcTagTrigger",
                {
                    "workspace": None,
                    "tag": tag,
                    "abandon_paths": list(abandon_paths),
                    "poll_interval": poll_interval,
                    "dvc_conn_id": self.dvc_conn_id,
                    "ingest_dag_id": ingest_dag_id,
                    "logical_date": None,  # the run's, and its interval
                    "step_seconds": 86400.0,
                    "ingest_tag": ingest_tag,
                    "assembly_dag_id": assembly_dag_id,
                    "end_task": True,
                },
            )

    def _abandon_paths(self) -> list[str]:
        from mlops_provider.triggers.dvc import resolved_paths

        return resolved_paths(self.abandon_paths)

    @staticmethod
    def _day(context: Context) -> tuple[str | None, float]:
        from mlops_provider.triggers.dvc import run_day

        return run_day(context)

    def _check(self, context: Context | None = None) -> dict[str, Any] | None:
        """The tag's ``{"tag", "sha"}``, or None (keep waiting); raises skip when it will not come."""
        from mlops_provider.triggers.dvc import assembly_run_counts, give_up_reason, ingest_run_counts

        logical, step = self._day(context) if context is not None else (None, 86400.0)
        counts = ingest_run_counts(self.ingest_dag_id, logical, step) if self.ingest_dag_id and logical else None
        assembly = None  # read only when the ingest succeeded (the only case give_up_reason reads it), before the tag
        if counts and logical and self.assembly_dag_id and counts[0].get("success"):
            assembly = assembly_run_counts(self.assembly_dag_id, logical)
        sha = self.dvc_hook.tag_sha(self.tag)  # after the counts: see give_up_reason
        if sha:
            return {"tag": self.tag, "sha": sha}
        from mlops_provider.utils.storage import stored

        for path in self._abandon_paths():
            if stored(path).exists():
                self._abandon(path)
        versioned = None
        if counts and self.ingest_tag and counts[0].get("success"):
            versioned = self.dvc_hook.tag_sha(self.ingest_tag) is not None
        reason = counts and give_up_reason(
            self.tag, str(self.ingest_dag_id), str(logical), *counts, ingest_versioned=versioned, assembly=assembly
        )
        if reason:
            raise AirflowSkipException(reason)
        return None

    def _abandon(self, path: str) -> None:
        from mlops_provider.triggers.dvc import abandoned_reason

        raise AirflowSkipException(abandoned_reason(self.tag, path))

    def execute(self, context: Context) -> Any:
        from mlops_provider.triggers.dvc import DvcTagTrigger, registry_of

        if not self.deferrable:
            return super().execute(context)
        found = self._check(context)
        if found:
            return found
        logical, step = self._day(context)
        workspace, remote_conn_id = registry_of(self.dvc_hook)
        self.defer(
            trigger=DvcTagTrigger(
                workspace,
                self.tag,
                self._abandon_paths(),
                self.poll_interval,
                dvc_conn_id=remote_conn_id,
                ingest_dag_id=self.ingest_dag_id,
                logical_date=logical,
                step_seconds=step,
                ingest_tag=self.ingest_tag,
                assembly_dag_id=self.assembly_dag_id,
                end_task=True,  # found, abandoned or given up: the trigger ends the task, no resume on a worker
            ),  # fmt: skip
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        found = self._check(context)
        return PokeReturnValue(is_done=True, xcom_value=found) if found else False

    def execute_complete(self, context: Context, event: dict[str, Any] | str) -> dict[str, Any]:
        if not isinstance(event, dict):
            # the trigger ended the task (end_task) and yet it resumes: ``dag.test()`` runs a trigger inline and
            # hands the task the end event's state; look again (found, or the skip with its reason)
            found = self._check(context)
            if found:
                return found
            raise AirflowSkipException(f"{self.tag} will not be versioned (the wait ended: {event})")
        if event["status"] == "abandoned":
            self._abandon(event["path"])
        if event["status"] == "given_up":
            raise AirflowSkipException(event["reason"])
        return {"tag": event["tag"], "sha": event["sha"]}
