"""Pure merge rules of batch-wise validation (issue 18): each kind of expectation merges to the whole frame's
verdict and counts."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from mlops_provider.layout import check_chunk_rows
from mlops_provider.ml.validation_batches import BatchMerger, batch_dtypes, is_between, map_result, unmergeable
from mlops_provider.operators.great_expectations import IntervalTally, interval_check
from mlops_provider.operators.sql import unified_schema

pytestmark = pytest.mark.unit


def item(kind: str, success: bool = True, result: dict | None = None, **kwargs) -> dict:
    return {"expectation_config": {"type": kind, "kwargs": kwargs}, "success": success, "result": result or {},
            "exception_info": {"raised_exception": False}}  # fmt: skip


def merge(batches: list[tuple[list[dict], pd.DataFrame]]) -> list[dict]:
    merger = BatchMerger()
    for results, frame in batches:
        merger.add(results, frame)
    return merger.merged()


def test_mostly_is_judged_on_the_summed_counts_not_per_batch():
    # 10 of 100 rows null in batch one, 0 of 100 in batch two: 95 % non-null overall passes mostly=0.9 though
    # batch one alone is exactly at 0.9 and a stricter 0.92 fails it.
    kind = "expect_column_values_to_not_be_null"
    frame = pd.DataFrame({"x": [1]})
    first = item(kind, True, {"element_count": 100, "unexpected_count": 10, "partial_unexpected_list": [None] * 10},
                 column="x", mostly=0.92)  # fmt: skip
    second = item(kind, True, {"element_count": 100, "unexpected_count": 0, "partial_unexpected_list": []},
                  column="x", mostly=0.92)  # fmt: skip
    (merged,) = merge([([first], frame), ([second], frame)])
    assert merged["success"] is True
    assert merged["result"]["element_count"] == 200 and merged["result"]["unexpected_count"] == 10
    assert merged["result"]["unexpected_percent"] == 5.0 and "missing_count" not in merged["result"]


def test_row_wise_counts_exclude_missing_values_as_gx_does():
    # 2 of the 4 non-null values are unexpected: 50 % expected, under mostly=0.6, at mostly=0.5.
    assert map_result(element=10, unexpected=2, missing=6, partial=["a", "a"], mostly=0.6)[0] is False
    success, result = map_result(element=10, unexpected=2, missing=6, partial=["a", "a"], mostly=0.5)
    assert success is True and result["unexpected_percent"] == 50.0 and result["missing_percent"] == 60.0
    assert result["partial_unexpected_counts"] == [{"value": "a", "count": 2}]
    assert map_result(0, 0, 0, [], 1.0)[0] is True  # an empty column passes vacuously


def test_row_count_is_summed_then_judged():
    kind = "expect_table_row_count_to_be_between"
    frame = pd.DataFrame({"x": range(3)})
    batches = [([item(kind, False, {"observed_value": 300}, min_value=500, max_value=1000)], frame)] * 3
    (merged,) = merge(batches)
    assert merged == {"success": True, "result": {"observed_value": 900}, "exception_info": None}
    (too_many,) = merge(batches * 2)
    assert too_many["success"] is False and too_many["result"]["observed_value"] == 1800


def test_uniqueness_spans_batches_and_counts_every_repeated_row():
    kind = "expect_column_values_to_be_unique"
    first = pd.DataFrame({"id": ["a", "b", None]})
    second = pd.DataFrame({"id": ["c", "a", "a"]})
    result = {"element_count": 3, "unexpected_count": 0, "missing_count": 0}
    (merged,) = merge([([item(kind, True, result, column="id")], first), ([item(kind, True, result, column="id")],
                                                                           second)])  # fmt: skip
    assert merged["success"] is False
    assert merged["result"]["unexpected_count"] == 3 and merged["result"]["missing_count"] == 1
    assert merged["result"]["element_count"] == 6
    numbers = [pd.DataFrame({"n": [1.0, -0.0, None]}), pd.DataFrame({"n": [0.0, 2.5, 1.0]})]
    (merged,) = merge([([item(kind, True, result, column="n")], f) for f in numbers])
    assert merged["result"]["unexpected_count"] == 4 and merged["result"]["missing_count"] == 1


def test_mean_min_max_and_distinct_sets_come_from_the_whole_column():
    frames = [pd.DataFrame({"v": [1.0, 2.0, None]}), pd.DataFrame({"v": [9.0]})]
    for kind, kwargs, expected, ok in [
        ("expect_column_mean_to_be_between", {"min_value": 3.5, "max_value": 4}, 4.0, True),
        ("expect_column_max_to_be_between", {"max_value": 5}, 9.0, False),
        ("expect_column_min_to_be_between", {"min_value": 1, "strict_min": True}, 1.0, False),
        ("expect_column_sum_to_be_between", {"min_value": 12, "max_value": 12}, 12.0, True),
    ]:
        (merged,) = merge([([item(kind, True, {}, column="v", **kwargs)], f) for f in frames])
        assert (merged["result"]["observed_value"], merged["success"]) == (expected, ok), kind
    kind = "expect_column_distinct_values_to_be_in_set"
    (merged,) = merge([([item(kind, True, {}, column="v", value_set=[1.0, 2.0])], f) for f in frames])
    assert merged["success"] is False and merged["result"]["observed_value"] == [1.0, 2.0, 9.0]


def test_schema_checks_fail_when_any_batch_fails_and_errors_win():
    kind = "expect_table_columns_to_match_set"
    frame = pd.DataFrame({"x": [1]})
    ok, bad = item(kind, True, {"observed_value": ["x"]}), item(kind, False, {"observed_value": ["y"]})
    (merged,) = merge([([ok], frame), ([bad], frame)])
    assert merged["success"] is False and merged["result"] == {"observed_value": ["y"]}
    error = item("expect_column_values_to_be_between", False, {}, column="gone")
    error["exception_info"] = {"('column_values.between', 'x')": {"raised_exception": True, "exception_message": "no"}}
    fine = item("expect_column_values_to_be_between", True, {"element_count": 1, "unexpected_count": 0}, column="gone")
    (merged,) = merge([([fine], frame), ([error], frame)])
    assert merged["success"] is False and merged["exception_info"] == error["exception_info"]


def test_unmergeable_types_are_named_and_bounds_follow_gx():
    suite = [{"type": "expect_column_median_to_be_between"}, {"type": "expect_column_values_to_not_be_null"},
             {"type": "expect_column_values_to_be_increasing"}]  # fmt: skip
    assert unmergeable(suite) == ["expect_column_median_to_be_between", "expect_column_values_to_be_increasing"]
    assert is_between(5, {"min_value": 5}) and not is_between(5, {"min_value": 5, "strict_min": True})
    assert is_between(5, {}) and not is_between(None, {"max_value": 1})


def test_batch_dtypes_widen_integers_and_booleans_that_hold_nulls_somewhere_in_the_file():
    schema = pa.schema([("n", pa.int64()), ("flag", pa.bool_()), ("m", pa.int64()), ("x", pa.float64())])
    assert batch_dtypes(schema, {"n": 1, "flag": 2, "m": 0, "x": 5}) == {"n": "float64", "flag": "object"}


def test_interval_tally_over_batches_equals_one_frame():
    start, end = pd.Timestamp("2026-11-05", tz="UTC"), pd.Timestamp("2026-11-06", tz="UTC")
    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-11-04 22:00", "2026-11-05 01:00", "2026-11-07 00:00", None])})
    tally = IntervalTally("ts", start, end)
    tally.add(frame.iloc[:2])
    tally.add(frame.iloc[2:])
    assert tally.failed() == interval_check(frame, "ts", start, end)
    assert tally.failed()["unexpected_count"] == 2


def test_chunk_schemas_widen_to_one_type_or_text():
    ints = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("c", pa.null())])
    other = pa.schema([("a", pa.float64()), ("b", pa.string()), ("c", pa.string())])
    merged = unified_schema([ints, other])
    assert [f.type for f in merged] == [pa.float64(), pa.string(), pa.string()]
    with pytest.raises(ValueError, match="chunk_rows must be a positive number of rows, got 0"):
        check_chunk_rows(0)


def unique_item(column: str) -> dict:
    return item("expect_column_values_to_be_unique", True, {"element_count": 0, "unexpected_count": 0,
                                                            "missing_count": 0}, column=column)  # fmt: skip


def uniqueness_batches() -> list[pd.DataFrame]:
    """Duplicates inside one batch and across batches, nulls of each kind, -0.0 beside 0.0, text beside numbers in
    one object column, one value repeated far more than a bucket holds (the streamed path)."""
    import numpy as np

    rng = np.random.default_rng(31)
    frames = []
    for batch in range(6):
        n = 40
        ints = rng.integers(0, 150, n)  # repeats across batches and buckets
        floats = rng.integers(0, 60, n).astype("float64") / 2
        floats[::7] = np.nan
        floats[3] = -0.0 if batch % 2 else 0.0
        text = pd.Series([f"t{v}" for v in rng.integers(0, 200, n)], dtype=object)
        text[::5] = None
        mixed = pd.Series([v if v % 3 else str(v) for v in rng.integers(0, 90, n).tolist()], dtype=object)
        mixed[::9] = None
        stamps = pd.Series(pd.to_datetime(rng.integers(0, 100, n), unit="D", origin="2026-01-01"))
        stamps[::6] = pd.NaT
        heavy = np.where(rng.random(n) < 0.6, 7, rng.integers(1000 * batch, 1000 * batch + 999, n))
        distinct = np.arange(batch * n, (batch + 1) * n)  # no duplicate at all: passes
        frames.append(pd.DataFrame({"ints": ints, "floats": floats, "text": text, "mixed": mixed, "stamps": stamps,
                                    "heavy": heavy, "distinct": distinct}))  # fmt: skip
    return frames


@pytest.mark.parametrize("rows", [None, 240])
def test_uniqueness_spilled_to_disk_bucket_by_bucket_equals_the_in_memory_merge(tmp_path, rows):
    # Issue 31 item 5: past ``spill_keys`` keys a column's keys go to hash-bucket files and duplicates are counted
    # bucket by bucket (a bucket far over ``bucket_keys`` is counted in chunks): the verdict and every count must
    # be those of the in-memory merge, which tests/integration/test_validation.py holds to GX's whole frame.
    frames = uniqueness_batches()
    columns = list(frames[0].columns)
    in_memory, spilled = BatchMerger(rows=rows), BatchMerger(rows=rows, spill_dir=tmp_path, spill_keys=30,
                                                             bucket_keys=4)  # fmt: skip
    for frame in frames:
        in_memory.add([unique_item(c) for c in columns], frame)
        spilled.add([unique_item(c) for c in columns], frame)
    assert not any(column.spilled for column in in_memory.keys.values())
    assert all(column.spilled for column in spilled.keys.values())
    assert list(tmp_path.rglob("*"))  # the buckets are on disk until the merge
    expected, got = in_memory.merged(), spilled.merged()
    assert got == expected
    by_column = dict(zip(columns, got, strict=True))
    assert by_column["distinct"]["success"] is True
    assert all(not by_column[c]["success"] for c in columns if c != "distinct")
    assert by_column["heavy"]["result"]["unexpected_count"] > 100  # one value in one bucket, over 25 x bucket_keys
    assert by_column["floats"]["result"]["missing_count"] == 36
    assert list(tmp_path.rglob("*")) == []  # the spill files are removed once merged


def test_small_partitions_keep_their_keys_in_memory(tmp_path):
    merger = BatchMerger(rows=100, spill_dir=tmp_path, spill_keys=1000)
    merger.add([unique_item("n")], pd.DataFrame({"n": [1, 2, 2]}))
    assert not merger.keys[0].spilled and list(tmp_path.iterdir()) == []
    (merged,) = merger.merged()
    assert merged["result"]["unexpected_count"] == 2
