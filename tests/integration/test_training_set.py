"""TrainingSetAssemblyOperator: newest validated partitions only, versioned, announced as an Asset event."""

from __future__ import annotations

import io
import subprocess

import dvc.api
import pandas as pd
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.layout import partition_path, partition_tag, training_set_tag
from mlops_provider.operators.training_set import TrainingSetAssemblyOperator
from tests.helpers import task_context

pytestmark = pytest.mark.integration

DATASET = "sales"
ASSET = Asset(name="sales_training_set", uri="x-mlops://training-set/sales")


def version_partitions(tmp_path, days: list[str]) -> None:
    hook = DvcHook()
    for day in days:
        source = tmp_path / f"{day}.parquet"
        pd.DataFrame({"day": [day] * 3, "value": [1, 2, 3]}).to_parquet(source, index=False)
        hook.version_file(source, partition_path(DATASET, day), partition_tag(DATASET, day), {})


def assemble(day: str, context: dict | None = None, **kwargs) -> tuple[dict, dict]:
    op = TrainingSetAssemblyOperator(task_id="assemble", dataset=DATASET, partition=day, asset=ASSET, **kwargs)
    context = context or task_context(None, dag_id="ingest")
    return op.execute(context), context


def test_window_of_validated_partitions_versioned_with_asset_event(mlops_home, tmp_path):
    # 2026-11-04 was quarantined: it has no tag and must not be used.
    version_partitions(tmp_path, ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-05", "2026-11-06"])
    (mlops_home / "quarantine" / DATASET / "2026-11-04" / "attempt").mkdir(parents=True)
    result, context = assemble("2026-11-05", window_days=4)
    assert result["partitions"] == ["2026-11-02", "2026-11-03", "2026-11-05"]
    assert result["missing"] == {"2026-11-04": "quarantined"}
    assert result["rows"] == 9 and result["created"] is True
    assert context["outlet_events"][ASSET].extra == {k: v for k, v in result.items() if k not in ("created", "rebuilt")}
    workspace = mlops_home / "data-registry"
    data = dvc.api.read(result["path"], repo=str(workspace), rev=training_set_tag(DATASET, "2026-11-05"), mode="rb")
    frame = pd.read_parquet(io.BytesIO(data))
    assert frame["day"].drop_duplicates().tolist() == result["partitions"]
    message = subprocess.run(
        ["git", "log", "-1", "--format=%B", result["tag"]], cwd=workspace, capture_output=True, text=True
    ).stdout
    assert "Training-Set-Partitions: 2026-11-02,2026-11-03,2026-11-05" in message
    assert "Training-Set-Missing-Days: 2026-11-04=quarantined" in message

    again, _ = assemble("2026-11-05", window_days=4)
    assert again["created"] is False and again["rev"] == result["rev"] and again["tag"] == result["tag"]


def test_unvalidated_partition_and_too_few_partitions(mlops_home, tmp_path):
    version_partitions(tmp_path, ["2026-11-01"])
    with pytest.raises(AirflowFailException, match="2026-11-04 of 'sales' is not versioned"):
        assemble("2026-11-04")
    # The dataset's first day: too few days is the loop warming up (issue 30, item 7): skipped, not failed.
    with pytest.raises(AirflowSkipException, match="Warming up: 1 of the 2 versioned day"):
        assemble("2026-11-01", window_days=5, min_partitions=2)
    version_partitions(tmp_path, ["2026-10-20"])  # an earlier versioned day: too few days is now a gap
    with pytest.raises(AirflowFailException, match="Only 1 validated partition"):
        assemble("2026-11-01", window_days=5, min_partitions=2)
    with pytest.raises(ValueError, match="min_partitions"):
        TrainingSetAssemblyOperator(task_id="x", dataset=DATASET, window_days=2, min_partitions=3)


def test_the_first_days_of_a_loop_skip_until_a_set_can_hold_min_partitions_later_days_fail(mlops_home, tmp_path):
    """Issue 28 (`mlops new-model` writes an out-of-time split with training.min_days 3): the loop's data starts on
    11-01, so 11-01 and 11-02 cannot hold 3 days and nothing is
    versioned before their windows: skipped (warming up), no set; 11-03 is built; a later day with too few days
    (11-06 of a 3-day window holding 11-06 alone) still fails."""
    version_partitions(tmp_path, ["2026-11-01", "2026-11-02"])
    with pytest.raises(AirflowSkipException, match="Warming up: 2 of the 3 versioned day"):
        assemble("2026-11-02", window_days=7, min_partitions=3)
    assert DvcHook().tags(training_set_tag(DATASET, "2026-11-02")) == []
    version_partitions(tmp_path, ["2026-11-03", "2026-11-06"])
    built, _ = assemble("2026-11-03", window_days=7, min_partitions=3)
    assert built["partitions"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    with pytest.raises(AirflowFailException, match="Only 1 validated partition"):
        assemble("2026-11-06", window_days=3, min_partitions=3)


def test_a_window_counts_days_not_partitions(mlops_home, tmp_path):
    """After a gap, a window of 7 days holds only what those 7 days have (it used to reach back a month)."""
    version_partitions(tmp_path, ["2026-10-01", "2026-10-02", "2026-11-05", "2026-11-06"])
    result, _ = assemble("2026-11-06", window_days=7)
    assert result["partitions"] == ["2026-11-05", "2026-11-06"]
    assert set(result["missing"]) == {"2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"}
    assert set(result["missing"].values()) == {"missing"}


def test_an_undecided_day_makes_the_assembly_wait_then_fail_never_build_without_it(mlops_home, tmp_path):
    """Finding 3: when day D-1 validated slowly, day D's set was built without it and nobody heard of it."""
    import datetime as dt

    from airflow.sdk.exceptions import AirflowException, AirflowRescheduleException

    version_partitions(tmp_path, ["2026-11-03", "2026-11-05"])
    slow_run = {"dag_id": "ingest", "run_id": "scheduled__2026-11-04", "state": "running",
                "logical_date": dt.datetime(2026, 11, 4, tzinfo=dt.UTC)}  # fmt: skip
    context = task_context(None, dag_id="ingest", dag_runs=[slow_run])
    with pytest.raises(AirflowRescheduleException):
        assemble("2026-11-05", context, window_days=3)
    assert DvcHook().tags(training_set_tag(DATASET, "*")) == []  # nothing built while 11-04 is undecided
    context["ti"].first_reschedule = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    with pytest.raises(AirflowException, match="ingest runs of 2026-11-04 are still going"):
        assemble("2026-11-05", context, window_days=3)

    slow_run["state"] = "success"  # it finished: versioned now
    version_partitions(tmp_path, ["2026-11-04"])
    result, _ = assemble("2026-11-05", task_context(None, dag_id="ingest", dag_runs=[slow_run]), window_days=3)
    assert result["partitions"] == ["2026-11-03", "2026-11-04", "2026-11-05"] and result["missing"] == {}


def test_a_rebuilt_set_gets_a_new_tag_and_the_old_one_never_moves(mlops_home, tmp_path):
    version_partitions(tmp_path, ["2026-11-03", "2026-11-05"])
    first, _ = assemble("2026-11-05", window_days=3)
    version_partitions(tmp_path, ["2026-11-04"])  # the quarantined day was fixed and re-ingested
    rebuilt, _ = assemble("2026-11-05", window_days=3)
    assert rebuilt["created"] is True and rebuilt["tag"] == training_set_tag(DATASET, "2026-11-05") + ".r2"
    assert rebuilt["partitions"] == ["2026-11-03", "2026-11-04", "2026-11-05"]
    assert DvcHook().resolve_rev(first["tag"]) == first["rev"]


def test_a_fixed_day_is_added_to_the_later_sets_built_without_it_old_versions_kept(mlops_home, tmp_path):
    """Issue 20, item 5: 11-04 was quarantined, so the sets of 11-05 and 11-06 were built without it. Once it is
    fixed and re-ingested, its own assembly rebuilds both with it (new .r2 versions, the old tags unmoved, no Asset
    event for them); a re-run rebuilds nothing more; 11-07's window never held it."""
    (mlops_home / "quarantine" / DATASET / "2026-11-04" / "attempt-1").mkdir(parents=True)
    version_partitions(tmp_path, ["2026-11-03", "2026-11-05", "2026-11-06", "2026-11-07"])
    before = {day: assemble(day, window_days=3)[0] for day in ("2026-11-05", "2026-11-06", "2026-11-07")}
    assert before["2026-11-05"]["missing"] == {"2026-11-04": "quarantined"}

    version_partitions(tmp_path, ["2026-11-04"])  # fixed at the source, re-ingested, validated
    fixed, context = assemble("2026-11-04", window_days=3)
    tag = lambda day: training_set_tag(DATASET, day)  # noqa: E731
    assert fixed["rebuilt"] == [tag("2026-11-05") + ".r2", tag("2026-11-06") + ".r2"]
    hook = DvcHook()
    for day in ("2026-11-05", "2026-11-06"):
        rebuilt = hook.describe_commit(tag(day) + ".r2")
        assert "2026-11-04" in rebuilt["trailers"]["Training-Set-Partitions"].split(",")
        assert rebuilt["trailers"]["Training-Set-Rebuilt-For"] == "2026-11-04"
        assert hook.resolve_rev(tag(day)) == before[day]["rev"]  # the version a model may cite stays
    assert hook.revision_tags(tag("2026-11-07")) == [tag("2026-11-07")]  # 11-04 was never in its window
    assert context["outlet_events"][ASSET].extra["tag"] == tag("2026-11-04")  # only its own set is announced
    again, _ = assemble("2026-11-04", window_days=3)
    assert again["rebuilt"] == [] and again["created"] is False
    from mlops_provider.web.health import rebuilt_training_sets, render

    shown = rebuilt_training_sets(DATASET)  # what the model health page lists
    assert [(r["tag"], r["rebuilt_for"]) for r in shown] == [
        (tag("2026-11-06") + ".r2", "2026-11-04"), (tag("2026-11-05") + ".r2", "2026-11-04"),
    ]  # fmt: skip
    page = render({"model_name": DATASET, "champion": None, "lineage": {}, "history": [], "drift": [],
                   "performance": [], "rebuilt_training_sets": shown})  # fmt: skip
    assert f"<td>{tag('2026-11-05')}.r2</td><td>2026-11-04</td>" in page


def test_a_cleared_earlier_day_waiting_for_a_run_slot_does_not_deadlock_the_later_days(mlops_home, tmp_path):
    """Issue 30, item 6: 11-04 failed and was cleared (its run is queued again) while the runs of 11-05 and 11-06
    hold both of the ingest DAG's ``max_active_runs`` slots. Their assemblies used to wait for 11-04, which could
    not start until they ended: a deadlock until ``wait_timeout`` failed them. Now a day whose run is queued while
    every run slot is taken is left out (``queued``), the later sets are built and their runs end, and 11-04's own
    assembly, once it runs and is versioned, rebuilds the later sets with it (repair)."""
    import datetime as dt

    from airflow.sdk import DAG

    version_partitions(tmp_path, ["2026-11-03", "2026-11-05", "2026-11-06"])

    def run(day: str, state: str) -> dict:
        return {"dag_id": "ingest", "run_id": f"scheduled__{day}", "state": state,
                "logical_date": dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)}  # fmt: skip

    cleared = run("2026-11-04", "queued")
    runs = [cleared, run("2026-11-05", "running"), run("2026-11-06", "running")]

    def assemble_in_dag(day: str, max_active_runs: int) -> dict:
        with DAG("ingest", schedule=None, max_active_runs=max_active_runs):
            op = TrainingSetAssemblyOperator(task_id="assemble", dataset=DATASET, partition=day, asset=ASSET,
                                             window_days=3)  # fmt: skip
        return op.execute(task_context(None, dag_id="ingest", dag_runs=runs))

    # A free slot: 11-04 can start, so the later day waits for it as before.
    from airflow.sdk.exceptions import AirflowRescheduleException

    with pytest.raises(AirflowRescheduleException):
        assemble_in_dag("2026-11-05", max_active_runs=3)
    # Every slot taken by later days: 11-04 cannot start while they wait; they build without it and end.
    built = {day: assemble_in_dag(day, max_active_runs=2) for day in ("2026-11-05", "2026-11-06")}
    assert built["2026-11-05"]["missing"] == {"2026-11-04": "queued"}
    assert built["2026-11-06"]["partitions"] == ["2026-11-05", "2026-11-06"]

    # The slots are free: 11-04 runs, is versioned, and its assembly adds it to both later sets.
    runs[1]["state"] = runs[2]["state"] = "success"
    cleared["state"] = "running"
    version_partitions(tmp_path, ["2026-11-04"])
    fixed = assemble_in_dag("2026-11-04", max_active_runs=2)
    tag = lambda day: training_set_tag(DATASET, day)  # noqa: E731
    assert fixed["rebuilt"] == [tag("2026-11-05") + ".r2", tag("2026-11-06") + ".r2"]
    assert DvcHook().describe_commit(tag("2026-11-05") + ".r2")["trailers"]["Training-Set-Partitions"] == (
        "2026-11-03,2026-11-04,2026-11-05"
    )
