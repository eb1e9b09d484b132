"""Sensor on the data registry: go on once a version (a tag) exists; skip when it never will."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowSkipException

from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mixins import DvcHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class DvcTagSensor(DvcHookMixin, BaseSensorOperator):
    """Wait until ``tag`` exists in the data registry (e.g. the training set of a day).

    Returns at once when the tag is already there (no deferral, no slot held). Otherwise it defers to
    DvcTagTrigger (default) or pokes (``deferrable=False``, ``mode="poke"``/``"reschedule"``). When one of
    ``abandon_paths`` appears first (the partition's quarantine folder: validation failed), it ends as
    **skipped**: the version will not come, and nothing downstream should run for it.

    :param tag: the data registry tag to wait for (templated).
    :param abandon_paths: paths whose existence means the tag will never appear: local paths or object-storage
        URLs (templated; relative paths are under the storage root, ``MLOPS_STORAGE_URL`` or else ``MLOPS_HOME``,
        resolved when the task runs).
    :param dvc_conn_id: connection of the data registry (its ``workspace``).

    XCom (return value): ``{"tag", "sha"}``.
    """

    template_fields: Sequence[str] = ("tag", "abandon_paths")

    def __init__(
        self,
        *,
        tag: str,
        abandon_paths: Sequence[str] = (),
        dvc_conn_id: str = DvcHook.default_conn_name,
        deferrable: bool = True,
        poll_interval: float = 10.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", timedelta(hours=12).total_seconds())
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.tag = tag
        self.abandon_paths = list(abandon_paths)
        self.dvc_conn_id = dvc_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def _abandon_paths(self) -> list[str]:
        from mlops_provider.utils.storage import location, storage_root

        return [p if "://" in p or Path(p).is_absolute() else location(storage_root() / p) for p in self.abandon_paths]

    def _check(self) -> dict[str, Any] | None:
        sha = self.dvc_hook.tag_sha(self.tag)
        if sha:
            return {"tag": self.tag, "sha": sha}
        from mlops_provider.utils.storage import stored

        for path in self._abandon_paths():
            if stored(path).exists():
                self._abandon(path)
        return None

    def _abandon(self, path: str) -> None:
        raise AirflowSkipException(f"{self.tag} will not be versioned: {path} exists (the data was quarantined)")

    def execute(self, context: Context) -> Any:
        from mlops_provider.triggers.dvc import DvcTagTrigger

        if not self.deferrable:
            return super().execute(context)
        found = self._check()
        if found:
            return found
        self.defer(
            trigger=DvcTagTrigger(
                str(self.dvc_hook.workspace),
                self.tag,
                self._abandon_paths(),
                self.poll_interval,
                dvc_conn_id=self.dvc_conn_id if self.dvc_hook.has_git_remote else None,
            ),  # fmt: skip
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        found = self._check()
        return PokeReturnValue(is_done=True, xcom_value=found) if found else False

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] == "abandoned":
            self._abandon(event["path"])
        return {"tag": event["tag"], "sha": event["sha"]}
