"""What differs between the Airflow 3 releases the package supports (3.1, 3.2, 3.3): one place, so every other
module imports one name whatever the release.

- Airflow 3.1 keeps the task exceptions in ``airflow.exceptions``; 3.2 and later in ``airflow.sdk.exceptions``.
- Airflow 3.1 has no ``airflow.sdk.CronDataIntervalTimetable`` (it is ``airflow.timetables.interval``'s).
- Airflow 3.3 gives a task a state store that outlives its tries (``context["task_state_store"]``); before 3.3 there
  is none, and :func:`task_state_store` answers ``None`` (the approval operators then ask again on a re-run).
"""

from __future__ import annotations

from typing import Any

try:  # Airflow >= 3.2
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowRescheduleException,
        AirflowSkipException,
    )
except ImportError:  # Airflow 3.1
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowRescheduleException,
        AirflowSkipException,
    )

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowRescheduleException",
    "AirflowSkipException",
    "cron_data_interval_timetable",
    "task_state_store",
]


def cron_data_interval_timetable(cron: str, timezone: str = "UTC") -> Any:
    """``CronDataIntervalTimetable(cron, timezone=...)`` from wherever this Airflow keeps it."""
    try:
        from airflow.sdk import CronDataIntervalTimetable
    except ImportError:  # Airflow 3.1
        from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[assignment]
    return CronDataIntervalTimetable(cron, timezone=timezone)


def task_state_store(context: Any) -> Any | None:
    """The task's state store that outlives its tries (Airflow >= 3.3), or ``None`` where this Airflow has none."""
    try:
        return context["task_state_store"]
    except KeyError:
        return None
