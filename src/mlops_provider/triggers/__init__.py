"""The provider's triggers (each module imports ``airflow.triggers.base``: load them only where they run)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass
class StartTriggerArgs:
    """The fields of Airflow's ``airflow.triggers.base.StartTriggerArgs`` (what its DAG serialization reads), without
    importing that module when a DAG file is parsed (~50 ms, issue 31 item 1): a sensor that starts from its trigger
    (Airflow's ``start_from_trigger``) sets ``start_trigger_args`` to one of these."""

    trigger_cls: str
    next_method: str
    trigger_kwargs: dict[str, Any] | None = None
    next_kwargs: dict[str, Any] | None = None
    timeout: timedelta | None = None


def start_from_trigger(task: Any, trigger_cls: str, trigger_kwargs: dict[str, Any]) -> None:
    """Make ``task``, a deferrable sensor of this provider, start from its trigger (Airflow's ``start_from_trigger``):
    the scheduler defers it as soon as it is ready, with ``trigger_cls(**trigger_kwargs)``, the task's timeout and
    ``execute_complete`` as the method a resume would call. Its trigger ends the task: nothing resumes on a worker,
    so ``settle_seconds`` (:mod:`mlops_provider.triggers.settle`) is 0."""
    if not task.deferrable:
        raise ValueError(
            f"{task.task_id}: start_from_trigger needs deferrable=True (the task waits and ends in the triggerer)"
        )
    task.start_from_trigger = True
    task.start_trigger_args = StartTriggerArgs(
        trigger_cls=trigger_cls,
        next_method="execute_complete",
        trigger_kwargs={**trigger_kwargs, "settle_seconds": 0},
        timeout=timedelta(seconds=float(task.timeout)),
    )
