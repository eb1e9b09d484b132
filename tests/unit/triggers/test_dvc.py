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


class Runs:
    """``RuntimeTaskInstance.get_dr_count`` over given runs (logical date -> state), counting the calls."""

    def __init__(self, runs: dict[str, str]) -> None:
        self.runs, self.calls = runs, 0

    def __call__(self, dag_id, logical_dates=None, run_ids=None, states=None) -> int:
        self.calls += 1
        days = {d.isoformat() for d in logical_dates or []}
        return sum(1 for day, state in self.runs.items() if day in days and (states is None or state in states))


LATER = "2026-11-03T00:00:00+00:00"


@pytest.mark.parametrize(
    ("runs", "calls"),
    [
        ({}, 2),  # no run of the day yet: the later days are asked
        ({LATER: "running"}, 2),  # none of the day, a later one: give up
        ({DAY: "running"}, 2),  # the common wait: the day's run is still running
        ({DAY: "queued", LATER: "success"}, 2),
        ({DAY: "failed"}, 3),
        ({DAY: "success"}, 3),
    ],
)
def test_the_ingest_runs_are_counted_in_at_most_3_calls_with_the_same_verdict(monkeypatch, runs, calls):
    """Issue 31 item 4: the sensor's check and every poll of its trigger asked 4 counts (day failed, day succeeded,
    day any, later days); the later days matter only when the day has no run, the split only when it ended."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from mlops_provider.triggers.dvc import ingest_run_counts

    count = Runs(runs)
    monkeypatch.setattr(RuntimeTaskInstance, "get_dr_count", count)
    found, later = ingest_run_counts(DAG, DAY, 86400.0)
    assert count.calls == calls
    day = runs.get(DAY)
    expected = {"failed": int(day == "failed"), "success": int(day == "success"), "all": int(day is not None)}
    assert found == expected
    assert reason(found, later) == reason(expected, int(LATER in runs))


@pytest.mark.parametrize(
    ("runs", "calls", "expected"),
    [
        ({}, 1, {"failed": 0, "success": 0}),  # the day's run not started or not ended: one count
        ({DAY: "running"}, 1, {"failed": 0, "success": 0}),
        ({DAY: "failed"}, 2, {"failed": 1, "success": 0}),
        ({DAY: "success"}, 2, {"failed": 0, "success": 1}),
    ],
)
def test_the_training_set_runs_are_counted_in_one_call_while_none_ended(monkeypatch, runs, calls, expected):
    """A shared dataset's model waits on its training-set run of the day: each poll asks one count while that run
    has not ended (the common wait), the failed/succeeded split only once it has."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from mlops_provider.triggers.dvc import assembly_run_counts

    count = Runs(runs)
    monkeypatch.setattr(RuntimeTaskInstance, "get_dr_count", count)
    assert assembly_run_counts("m__training_set", DAY) == ("m__training_set", expected)
    assert count.calls == calls


def test_the_quarantine_skip_says_the_same_in_the_task_and_in_the_triggerer():
    from mlops_provider.triggers.dvc import abandoned_reason

    assert (
        abandoned_reason("t", "/q/2026-11-02")
        == "t will not be versioned: /q/2026-11-02 exists (the data was quarantined)"
    )
