"""Pure rules of the validation operator: equivalent types, the data-interval check, the summary of a GX result."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_provider.operators.great_expectations import describe_failures, interval_check, normalize_types

pytestmark = pytest.mark.unit


def test_equivalent_types_are_made_plain_and_reported():
    frame = pd.DataFrame({
        "ts": pd.to_datetime(["2026-11-05 01:00", "2026-11-05 23:00"]).tz_localize("Europe/Berlin"),
        "plan": pd.Categorical(["basic", "premium"]),
        "n": [1, 2],
    })  # fmt: skip
    plain, changed = normalize_types(frame)
    assert str(plain["ts"].dtype) == "datetime64[ns]" and plain["ts"][0] == pd.Timestamp("2026-11-05 00:00")
    assert plain["plan"].dtype == object and set(changed) == {"ts", "plan"}
    assert str(frame["ts"].dtype).startswith("datetime64[ns, Europe/Berlin]")  # the caller's frame is untouched
    same, nothing = normalize_types(frame[["n"]])
    assert nothing == {} and same is not None


def test_interval_check_counts_rows_outside_the_half_open_interval():
    start, end = pd.Timestamp("2026-11-05", tz="UTC"), pd.Timestamp("2026-11-06", tz="UTC")
    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-11-05 00:00", "2026-11-05 23:59", "2026-11-06 00:00",
                                                "2026-11-04 23:59", None])})  # fmt: skip
    failed = interval_check(frame, "ts", start, end)
    assert (
        failed is not None and failed["unexpected_count"] == 2 and failed["expectation"] == "rows_within_data_interval"
    )
    assert interval_check(frame.iloc[:2], "ts", start, end) is None
    missing = interval_check(frame, "event_ts", start, end)
    assert missing is not None and missing["exception"] == "column 'event_ts' is not in the data"


def test_failures_name_every_missing_and_unexpected_column_in_full():
    failed = [
        {"expectation": "expect_table_columns_to_match_set", "column": None, "missing_columns": ["b"],
         "unexpected_columns": ["x" * 300]},
        {"expectation": "expect_column_values_to_not_be_null", "column": "a", "unexpected_count": 3},
        {"expectation": "file_is_readable", "column": None, "exception": "ArrowInvalid: truncated"},
    ]  # fmt: skip
    text = describe_failures(failed)
    assert "missing columns ['b']" in text and "x" * 300 in text
    assert "expect_column_values_to_not_be_null(a): 3 unexpected" in text and "error: ArrowInvalid" in text
    assert describe_failures(failed * 4, limit=2).endswith("and 10 more")
