"""When the tag sensor gives up on a day's version (issue 30, item 5): the pure rule."""

from __future__ import annotations

import pytest

from mlops_provider.triggers.dvc import give_up_reason

pytestmark = pytest.mark.unit

TAG, DAG, DAY = "training-set/m/2026-11-02", "m__ingest", "2026-11-02T00:00:00+00:00"


def reason(runs: dict[str, int], later: int = 0) -> str | None:
    return give_up_reason(TAG, DAG, DAY, runs, later)


def test_a_failed_ingest_run_gives_up_naming_the_run():
    message = reason({"failed": 1, "all": 1})
    assert message and "failed" in message and DAG in message and DAY in message and TAG in message


def test_an_ingest_run_that_succeeded_without_the_tag_gives_up_naming_on_empty():
    message = reason({"success": 1, "all": 1})
    assert message and "succeeded without versioning" in message and "on_empty: skip" in message


def test_a_missing_ingest_run_gives_up_only_when_a_later_day_has_one():
    assert reason({"all": 0}, later=0) is None  # not created yet (catchup creates runs in date order)
    message = reason({"all": 0}, later=1)
    assert message and "no ingest run" in message


def test_a_queued_or_running_ingest_run_is_waited_for():
    assert reason({"failed": 0, "success": 0, "all": 1}, later=3) is None
