"""GreatExpectationsValidateOperator with real GX 1.x: good data passes, ten kinds of bad data are caught,
quarantined, and leave the versioned data untouched."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, corrupt, seed_range
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.operators.great_expectations import SUMMARY_XCOM_KEY, GreatExpectationsValidateOperator
from mlops_provider.operators.sql import SqlToParquetOperator
from tests.helpers import PROJECT_ROOT, task_context

pytestmark = pytest.mark.integration

SUITE = PROJECT_ROOT / "include" / "gx" / "expectations" / "customer_activity.json"
DAY = dt.date(2026, 11, 5)

# kind of bad partition -> (failed expectation, column) that must be named
BAD_PARTITIONS = {
    "null_flood": ("expect_column_values_to_not_be_null", "monthly_charges"),
    "out_of_range": ("expect_column_values_to_be_between", "monthly_charges"),
    "unknown_category": ("expect_column_values_to_be_in_set", "plan"),
    "duplicate_keys": ("expect_column_values_to_be_unique", "event_id"),
    "wrong_types": ("expect_column_values_to_be_in_type_list", "monthly_charges"),
    "row_count_collapse": ("expect_table_row_count_to_be_between", None),
    "empty": ("expect_table_row_count_to_be_between", None),
    "missing_column": ("expect_table_columns_to_match_set", None),
    "extra_column": ("expect_table_columns_to_match_set", None),
    "truncated_file": ("file_is_readable", None),
}


@pytest.fixture
def good_partition(mlops_home) -> Path:
    """One day extracted from the SQLite demo source, as the ingest DAG stages it."""
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [DAY], SourceSpec(seed=5))
    result = SqlToParquetOperator(
        task_id="extract",
        conn_id="mlops_source",
        table="customer_activity",
        timestamp_column="event_ts",
        parse_dates=["event_ts", "signup_date"],
        dataset="customer_activity",
    ).execute(task_context(DAY))
    return Path(result["path"])


def validate(data_path: Path, **kwargs) -> GreatExpectationsValidateOperator:
    kwargs.setdefault("suite_path", str(SUITE))
    return GreatExpectationsValidateOperator(
        task_id="validate", data_path=str(data_path), dataset="customer_activity", partition=str(DAY), **kwargs
    )


def make_bad(good: Path, kind: str) -> Path:
    if kind == "truncated_file":
        good.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        corrupt(pd.read_parquet(good), kind, seed=1).to_parquet(good, index=False)
    return good


def test_good_partition_passes_with_compact_summary_and_reports(good_partition, mlops_home):
    context = task_context(DAY)
    summary = validate(good_partition).execute(context)
    assert summary["success"] is True
    assert summary["statistics"]["failed"] == 0 and summary["statistics"]["evaluated"] >= 50
    assert summary["failed_expectations"] == []
    assert summary["quarantined_to"] is None
    assert len(json.dumps(summary)) < 2000  # compact, JSON-only XCom
    result = json.loads(Path(summary["result_path"]).read_text())
    assert result["success"] is True and len(result["results"]) == summary["statistics"]["evaluated"]
    attempt = summary["attempt"]
    assert attempt.endswith("-try1")
    # A passed day renders no Data Docs page (issue 31): the result JSON is its evidence.
    assert summary["docs_path"] is None
    assert not (mlops_home / "reports" / "gx" / "customer_activity" / str(DAY) / attempt / "data-docs").exists()
    links = context["ti"].pushed
    prefix = f"/mlops/reports/gx/customer_activity/{DAY}/{attempt}"
    assert "_link_DataDocsLink" not in links
    assert links["_link_ValidationResultLink"] == f"{prefix}/result.json"
    assert good_partition.exists()


@pytest.mark.parametrize("kind", sorted(BAD_PARTITIONS))
def test_bad_partition_fails_is_quarantined_and_versioned_data_is_untouched(kind, good_partition, mlops_home):
    # A good version of the same partition is already in the data registry.
    registry = DvcHook()
    tag = f"partition/customer_activity/{DAY}"
    before = registry.version_file(good_partition, f"data/customer_activity/partitions/{DAY}.parquet", tag, {})
    good_bytes = good_partition.read_bytes()

    bad = make_bad(good_partition, kind)
    context = task_context(DAY)
    expectation, column = BAD_PARTITIONS[kind]
    with pytest.raises(AirflowFailException) as failure:
        validate(bad).execute(context)
    message = str(failure.value)
    assert f"dataset 'customer_activity' partition {DAY}" in message
    assert expectation in message
    if column:
        assert f"{expectation}({column})" in message

    summary = context["ti"].pushed[SUMMARY_XCOM_KEY]
    assert summary["success"] is False
    assert any(f["expectation"] == expectation and f["column"] == column for f in summary["failed_expectations"])
    quarantined = Path(summary["quarantined_to"])
    assert quarantined == mlops_home / "quarantine" / "customer_activity" / str(DAY) / summary["attempt"] / bad.name
    assert quarantined.is_file() and not bad.exists()
    assert json.loads((quarantined.parent / "validation_result.json").read_text())["success"] is False
    # A failed day gets its Data Docs page (and the task its link), rendered from the result it failed with.
    if kind != "truncated_file":  # an unreadable file has no GX result to render
        docs = Path(summary["docs_path"])
        assert docs.is_file() and docs.is_relative_to(
            mlops_home / "reports" / "gx" / "customer_activity" / str(DAY) / summary["attempt"] / "data-docs"
        )
        assert "customer_activity" in docs.read_text()
        prefix = f"/mlops/reports/gx/customer_activity/{DAY}/{summary['attempt']}"
        assert context["ti"].pushed["_link_DataDocsLink"].startswith(f"{prefix}/data-docs/validations/")

    # The registry still serves the good version, byte for byte, under the same tag and commit.
    assert registry.resolve_rev(tag) == before["rev"]
    out = mlops_home / "check.parquet"
    registry.read_to(before["path"], tag, out)
    assert out.read_bytes() == good_bytes


def test_warn_mode_reports_and_keeps_the_data(good_partition):
    bad = make_bad(good_partition, "null_flood")
    summary = validate(bad, mode="warn").execute(task_context(DAY))
    assert summary["success"] is False and summary["quarantined_to"] is None
    assert bad.exists()


def test_missing_file_and_bad_arguments(mlops_home, tmp_path):
    with pytest.raises(AirflowFailException, match="does not exist"):
        validate(tmp_path / "nope.parquet").execute(task_context(DAY))
    with pytest.raises(ValueError, match="mode"):
        validate(tmp_path / "x.parquet", mode="lenient")
    broken_suite = tmp_path / "suite.json"
    broken_suite.write_text("{not json")
    frame = pd.DataFrame({"a": [1]})
    frame.to_parquet(tmp_path / "x.parquet")
    op = GreatExpectationsValidateOperator(
        task_id="v", data_path=str(tmp_path / "x.parquet"), suite_path=str(broken_suite), dataset="d", partition="p"
    )
    with pytest.raises(ValueError, match=f"expectation suite file {broken_suite} is not valid JSON"):
        op.execute(task_context(DAY))


def test_rows_outside_the_interval_and_signup_after_the_event_fail(good_partition):
    """Finding 7: shifted timestamps and signup_date > event_ts used to pass the operator."""
    frame = pd.read_parquet(good_partition)
    shifted = frame.copy()
    shifted.loc[:4, "event_ts"] = shifted.loc[:4, "event_ts"] + pd.Timedelta(days=1)
    shifted.to_parquet(good_partition, index=False)
    context = task_context(DAY)
    with pytest.raises(AirflowFailException, match=r"rows_within_data_interval\(event_ts\): 5 unexpected"):
        validate(good_partition, timestamp_column="event_ts").execute(context)

    backwards = frame.copy()
    backwards.loc[:2, "signup_date"] = backwards.loc[:2, "event_ts"] + pd.Timedelta(days=3)
    path = good_partition.with_name("backwards.parquet")
    backwards.to_parquet(path, index=False)
    with pytest.raises(AirflowFailException, match=r"expect_column_pair_values_a_to_be_greater_than_b: 3 unexpected"):
        validate(path, timestamp_column="event_ts").execute(task_context(DAY))


def test_equivalent_types_pass_tz_aware_utc_and_categorical_strings(good_partition):
    frame = pd.read_parquet(good_partition)
    frame["event_ts"] = frame["event_ts"].dt.tz_localize("UTC")
    for column in ("plan", "region", "device", "payment_method"):
        frame[column] = frame[column].astype("category")
    frame.to_parquet(good_partition, index=False)
    summary = validate(good_partition, timestamp_column="event_ts").execute(task_context(DAY))
    assert summary["success"] is True, summary["failed_expectations"]
    assert summary["normalized_types"]["event_ts"] == "datetime64[ns, UTC] -> datetime64[ns]"
    assert "plan" in summary["normalized_types"]


def test_schema_errors_name_every_column_without_gx_noise(good_partition):
    frame = pd.read_parquet(good_partition).drop(columns=["monthly_charges"])
    frame["a_very_long_extra_column_name_that_used_to_be_cut_off_by_the_summary"] = 1
    frame.to_parquet(good_partition, index=False)
    context = task_context(DAY)
    with pytest.raises(AirflowFailException) as failure:
        validate(good_partition).execute(context)
    message = str(failure.value)
    assert "missing columns ['monthly_charges']" in message
    assert "a_very_long_extra_column_name_that_used_to_be_cut_off_by_the_summary" in message
    summary = context["ti"].pushed[SUMMARY_XCOM_KEY]
    schema = next(f for f in summary["failed_expectations"] if f["expectation"] == "expect_table_columns_to_match_set")
    assert schema["unexpected_columns"] == ["a_very_long_extra_column_name_that_used_to_be_cut_off_by_the_summary"]
    for failed in summary["failed_expectations"]:
        assert "list index out of range" not in str(failed.get("exception")), failed
        if failed["column"] == "monthly_charges" and failed.get("exception"):
            assert failed["exception"] == "column 'monthly_charges' is not in the data"


def test_every_failed_attempt_keeps_its_quarantined_file_and_result(good_partition, mlops_home):
    frame = pd.read_parquet(good_partition)
    corrupt(frame, "null_flood", seed=1).to_parquet(good_partition, index=False)
    first = task_context(DAY, try_number=1)
    with pytest.raises(AirflowFailException):
        validate(good_partition).execute(first)
    corrupt(frame, "out_of_range", seed=2).to_parquet(good_partition, index=False)
    second = task_context(DAY, try_number=2)
    with pytest.raises(AirflowFailException):
        validate(good_partition).execute(second)
    attempts = [ctx["ti"].pushed[SUMMARY_XCOM_KEY] for ctx in (first, second)]
    assert attempts[0]["attempt"] != attempts[1]["attempt"]
    kinds = ("expect_column_values_to_not_be_null", "expect_column_values_to_be_between")
    for summary, kind in zip(attempts, kinds, strict=True):
        kept = Path(summary["quarantined_to"])
        assert kept.is_file()
        result = json.loads((kept.parent / "validation_result.json").read_text())
        assert any(r["expectation_config"]["type"] == kind and not r["success"] for r in result["results"])
        assert Path(summary["result_path"]).is_file()


def _verdicts(summary: dict) -> tuple:
    """Every expectation's verdict and counts from the full result, and the summary's failed checks (exceptions
    and float observations compared as far as they are stable)."""
    result = json.loads(Path(summary["result_path"]).read_text())

    def observed(value):
        return round(value, 9) if isinstance(value, float) else value

    per_expectation = [
        (
            item["expectation_config"]["type"],
            item["expectation_config"]["kwargs"].get("column"),
            item["success"],
            {k: observed(v) for k, v in (item.get("result") or {}).items() if not k.startswith("partial_")},
        )
        for item in result.get("results", [])
    ]
    failed = [
        {k: observed(v) for k, v in f.items() if k != "exception"} | {"exception": "exception" in f}
        for f in summary["failed_expectations"]
    ]
    return summary["success"], summary["statistics"], failed, per_expectation


@pytest.mark.parametrize("kind", ["good", *sorted(BAD_PARTITIONS)])
def test_batches_give_the_verdicts_and_counts_of_a_whole_frame_run(kind, good_partition):
    """Bounded-memory validation (issue 18): a partition validated 700 rows at a time gives, for every expectation,
    the verdict and counts of one whole-frame run, on good data and on every kind of bad partition (duplicate keys
    span batches; the row count of each batch is under the suite's minimum)."""
    path = good_partition if kind == "good" else make_bad(good_partition, kind)
    whole = validate(path, mode="warn", chunk_rows=None, timestamp_column="event_ts").execute(task_context(DAY))
    batched = validate(path, mode="warn", chunk_rows=700, timestamp_column="event_ts").execute(task_context(DAY))
    assert whole["batches"] == 0
    if kind not in ("row_count_collapse", "empty", "truncated_file"):
        assert batched["batches"] >= 3
    assert _verdicts(batched) == _verdicts(whole)
    assert batched["success"] is (kind == "good")
    if batched["docs_path"]:
        assert Path(batched["docs_path"]).is_file()


def test_validations_share_one_gx_context_per_process_and_leave_no_result_in_it(good_partition, tmp_path):
    """Issue 31: one GX context per process, each suite registered once; a changed suite file is registered anew;
    no validation result stays in the shared context once its task has it."""
    from mlops_provider.hooks.great_expectations import GreatExpectationsHook

    validate(good_partition).execute(task_context(DAY))
    context = GreatExpectationsHook.validation_context()
    hook = GreatExpectationsHook(docs_dir=tmp_path / "docs")
    definition = hook._validation_definition(SUITE)
    assert hook._validation_definition(SUITE) is definition  # registered once
    summary = validate(make_bad(good_partition, "null_flood"), mode="warn").execute(task_context(DAY))
    assert summary["success"] is False and Path(summary["docs_path"]).is_file()  # warn mode: a failure, its page
    assert GreatExpectationsHook.validation_context() is context
    assert list(context.validation_results_store.list_keys()) == []
    changed = json.loads(SUITE.read_text())
    changed["expectations"] = changed["expectations"][:3]
    (tmp_path / "suite.json").write_text(json.dumps(changed))
    other = hook._validation_definition(tmp_path / "suite.json")
    assert other is not definition and len(other.suite.expectations) == 3
    assert GreatExpectationsHook.validation_context() is not context  # the changed suite: a new context
    assert len(hook._validation_definition(SUITE).suite.expectations) == len(definition.suite.expectations)


def test_a_validation_after_a_rendered_data_docs_page_runs_in_the_shared_context(good_partition, tmp_path):
    """A failed validation renders its Data Docs in a second GX context (the docs site's); GX resolves a validation
    definition through its *current* project, so the next validation in the process (a dag.test() of several days,
    a long-lived worker) failed with ValidationDefinitionRelatedResourcesFreshnessError (CI, issue 31). A dry run
    (``mlops new-model``) leaves no result behind either."""
    import shutil

    from mlops_provider.hooks.great_expectations import GreatExpectationsHook

    copy = shutil.copy(good_partition, tmp_path / "bad.parquet")
    bad = validate(make_bad(Path(copy), "null_flood"), mode="warn").execute(task_context(DAY))
    assert bad["success"] is False and Path(bad["docs_path"]).is_file()
    good = validate(good_partition).execute(task_context(DAY))
    assert good["success"] is True and good["docs_path"] is None
    hook = GreatExpectationsHook(docs_dir=tmp_path / "docs")
    results = hook.dry_run({"day": pd.read_parquet(good_partition)}, SUITE)
    assert results["day"].success is True
    # A second suite (another dataset) registered in the same process must not drop the first one's asset: GX's
    # add_or_update of the shared pandas datasource did ("Could not find asset 'customer_activity'", CI).
    other = json.loads(SUITE.read_text()) | {"name": "another_dataset"}
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert validate(good_partition, suite_path=str(tmp_path / "other.json")).execute(task_context(DAY))["success"]
    assert validate(good_partition).execute(task_context(DAY))["success"]
    assert list(GreatExpectationsHook.validation_context().validation_results_store.list_keys()) == []
