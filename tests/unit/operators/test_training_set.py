"""Pure rules of the training-set assembly: windows are calendar days, ingest runs are found at 00:00 UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from mlops_provider.operators.training_set import day_logical_date, window_days

pytestmark = pytest.mark.unit


def test_windows_are_calendar_days_and_runs_are_found_at_midnight_utc():
    assert window_days("2026-03-02", 3) == ["2026-02-28", "2026-03-01", "2026-03-02"]
    assert day_logical_date("2026-11-05") == dt.datetime(2026, 11, 5, tzinfo=dt.UTC)


def test_the_loop_warms_up_until_a_versioned_day_precedes_the_window():
    from mlops_provider.operators.training_set import warming_up

    assert warming_up([], "2026-11-01")
    assert warming_up(["2026-11-01", "2026-11-02"], "2026-11-01")  # the history starts in the window
    assert not warming_up(["2026-10-25", "2026-11-02"], "2026-11-01")  # an earlier day: a gap, not the start
