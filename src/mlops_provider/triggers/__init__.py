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
