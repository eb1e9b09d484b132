"""Trigger that waits, in the triggerer, for a tag to appear in the data registry (or for a sign it never will)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

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


def _exists(where: str) -> bool:
    """Whether a file or folder exists: a local path, or a URL on object storage (``mlops_provider.utils.storage``)."""
    from mlops_provider.utils.storage import stored

    return stored(where).exists()


class DvcTagTrigger(BaseTrigger):
    """Fires ``{"status": "found", "tag", "sha"}`` when ``tag`` exists in the data registry, or
    ``{"status": "abandoned", "path"}`` when one of ``abandon_paths`` exists first (e.g. the quarantine folder
    of the partition: the tag will never come).

    :param workspace: local folder of the data registry (a git repository), read when it has no git remote.
    :param tag: the tag to wait for.
    :param abandon_paths: files or folders (local paths or object-storage URLs) whose existence means the tag will
        not appear.
    :param poll_interval: seconds between checks.
    :param dvc_conn_id: the ``dvc`` connection of a registry with a git remote: the tag is then asked of the remote
        (``DvcHook.tag_sha``), since the triggerer's host has no clone of its own that anything keeps fresh.
    :param settle_seconds: the earliest it fires after it started (:mod:`mlops_provider.triggers.settle`).
    """

    def __init__(
        self,
        workspace: str,
        tag: str,
        abandon_paths: Sequence[str] = (),
        poll_interval: float = 10.0,
        dvc_conn_id: str | None = None,
        settle_seconds: float = RESUME_SETTLE_SECONDS,
    ) -> None:
        super().__init__()
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
             "settle_seconds": self.settle_seconds},
        )  # fmt: skip

    def _remote_tag_sha(self) -> str | None:
        from mlops_provider.hooks.dvc import DvcError, DvcHook

        try:
            return DvcHook(dvc_conn_id=str(self.dvc_conn_id), workspace=self.workspace).tag_sha(self.tag)
        except DvcError as exc:  # the remote is unreachable for now: keep waiting, say why
            self.log.warning("%s", exc)
            return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        while True:
            if self.dvc_conn_id:  # blocking git and connection calls: in a thread
                sha = await asyncio.to_thread(self._remote_tag_sha)
            else:
                sha = await tag_sha(self.workspace, self.tag)
            if sha:
                await asyncio.sleep(settle_delay(started, time.monotonic(), self.settle_seconds))
                yield TriggerEvent({"status": "found", "tag": self.tag, "sha": sha})
                return
            for path in self.abandon_paths:
                if await asyncio.to_thread(_exists, path):
                    await asyncio.sleep(settle_delay(started, time.monotonic(), self.settle_seconds))
                    yield TriggerEvent({"status": "abandoned", "tag": self.tag, "path": path})
                    return
            await asyncio.sleep(self.poll_interval)
