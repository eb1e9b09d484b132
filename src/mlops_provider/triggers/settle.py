"""A pause before a trigger of this provider fires, against a race in Airflow 3.3's scheduler.

When a deferred task is resumed within seconds of deferring, the resumed try can be running before the scheduler
has handled the executor's "success" of the deferring try; the scheduler then takes that stale event for an
external state change and fails the running task (apache/airflow#72716, #71580; open upstream at the time of
writing, seen here on 3.3.2 when a drift summary appeared 4 s after its sensor deferred). The sensors of this
provider check once before they defer, so their triggers only find a result that appeared in those few seconds;
waiting until ``settle_seconds`` after the trigger started costs that rare case a few seconds and nothing else.
"""

from __future__ import annotations

#: Default seconds between a trigger's start and the earliest moment it fires.
RESUME_SETTLE_SECONDS = 10.0


def settle_delay(started: float, now: float, settle_seconds: float) -> float:
    """Seconds to wait before firing, for a trigger that started at ``started`` (monotonic clock) and is ready at
    ``now``: what is left of ``settle_seconds``, never negative."""
    return max(0.0, settle_seconds - (now - started))
