"""The e2e modules seed the days up to yesterday (UTC) and must not straddle midnight: a scheduler that sees the day
change queues the new day's runs, one day more than the module seeded (CI failed that way at 00:00). The guard waits
for the new day when the module could not finish before it, and otherwise does not wait."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.e2e.loop import clear_of_midnight

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now, self.slept = start, []

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


def test_a_module_that_would_cross_midnight_waits_for_the_new_day():
    clock = Clock(dt.datetime(2026, 12, 6, 23, 50, tzinfo=dt.UTC))
    assert clear_of_midnight(25, now=clock, sleep=clock.sleep) == dt.date(2026, 12, 6)  # the new day's yesterday
    assert clock.slept == [630.0] and clock.now.date() == dt.date(2026, 12, 7)


def test_a_module_with_time_left_before_midnight_starts_at_once():
    clock = Clock(dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.UTC))
    assert clear_of_midnight(25, now=clock, sleep=clock.sleep) == dt.date(2026, 12, 5)
    assert clock.slept == []
