"""Data capture's pure rules: settings, request ids, sampling, file names, the served-day verdict, realised
performance per version."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlops_provider.ml.capture import (
    PREDICTION,
    REQUEST_ID,
    VERSION,
    CaptureSettings,
    capture_file_name,
    day_of,
    is_capture_file,
    is_unfinished,
    join_labels,
    realised_by_version,
    row_ids,
    sampled,
    served_verdict,
    versions_of,
)

pytestmark = pytest.mark.unit


def test_settings_round_trip_and_bad_values_name_their_key():
    settings = CaptureSettings(fraction=0.5, flush_rows=10, buffer_rows=20, key_column="id")
    assert CaptureSettings.from_dict(settings.to_dict()) == settings
    assert CaptureSettings.from_dict({"fraction": 0.2, "unknown": 1}).fraction == 0.2
    for bad, key in (({"fraction": 1.5}, "fraction"), ({"flush_rows": 0}, "flush_rows"),
                     ({"flush_seconds": 0}, "flush_seconds"), ({"flush_rows": 10, "buffer_rows": 5}, "buffer_rows"),
                     ({"retention_days": -1}, "retention_days")):  # fmt: skip
        with pytest.raises(ValueError, match=key):
            CaptureSettings(**bad)


def test_a_rows_request_id_is_its_key_else_the_generated_id():
    assert row_ids("abc", 1) == ["abc"]
    assert row_ids("abc", 3) == ["abc-0", "abc-1", "abc-2"]
    assert row_ids("abc", 2, [7, "k"]) == ["7", "k"]
    with pytest.raises(ValueError):
        row_ids("abc", 2, [1])


def test_sampling_is_stable_and_near_the_fraction():
    ids = [f"id{i}" for i in range(20_000)]
    kept = [i for i in ids if sampled(i, 0.25)]
    assert 0.23 < len(kept) / len(ids) < 0.27
    assert kept == [i for i in ids if sampled(i, 0.25)]  # the same id is always decided the same way
    assert all(sampled(i, 1.0) for i in ids[:100]) and not any(sampled(i, 0.0) for i in ids[:100])
    assert set(i for i in ids if sampled(i, 0.1)) <= set(kept)  # a smaller fraction keeps a subset


def test_file_names_sort_by_time_and_readers_skip_unfinished_files():
    at = dt.datetime(2026, 12, 6, 23, 59, 59, 123456, tzinfo=dt.timezone.utc)
    name = capture_file_name(at, "3", 4242, 7)
    assert name == "20261206T235959123456Z-v3-p4242-000007.parquet"
    assert capture_file_name(at + dt.timedelta(microseconds=1), "3", 1, 1) > name
    assert is_capture_file(name) and not is_unfinished(name)
    torn = f".{name}.x1y2.tmp"
    assert is_unfinished(torn) and not is_capture_file(torn)
    assert day_of(at) == "2026-12-06"
    assert day_of(dt.datetime(2026, 12, 7, 1, tzinfo=dt.timezone(dt.timedelta(hours=3)))) == "2026-12-06"


def test_a_day_under_the_minimum_is_too_few_served_rows_not_no_drift():
    assert served_verdict(200, 200) == ("checked", None)
    status, reason = served_verdict(12, 200)
    assert status == "too_few_served_rows" and "12" in reason and "not 'no drift'" in reason


def captured() -> pd.DataFrame:
    return pd.DataFrame({REQUEST_ID: ["a", "b", "c", "d", "e", "f", "x"],
                         PREDICTION: [0.9, 0.2, 0.7, 0.4, 0.8, 0.3, 0.5],
                         VERSION: ["10", "10", "10", "2", "2", "2", "2"]})  # fmt: skip


def test_versions_are_counted_in_numeric_order():
    assert list(versions_of(captured()).items()) == [("2", 4), ("10", 3)]


def test_labels_join_captured_predictions_by_request_id():
    labels = pd.DataFrame({"key": ["a", "b", "c", "d", "e", "f", "z"], "y": [1, 0, 0, 0, 1, None, 1]})
    joined = join_labels(captured(), labels, "key", "y")
    assert sorted(joined[REQUEST_ID]) == ["a", "b", "c", "d", "e"]  # f: no label yet; x: no label; z: never served
    realised = realised_by_version(joined, "y", 1, "roc_auc", 0.5)
    assert realised["10"] == {"rows": 3, "value": 1.0, "reason": None, "positives": 1}
    assert realised["2"]["value"] == 1.0 and realised["2"]["rows"] == 2
    few = realised_by_version(joined, "y", 1, "roc_auc", 0.5, min_rows=3)
    assert few["2"]["value"] is None and "fewer than 3" in few["2"]["reason"]
    one_class = realised_by_version(joined[joined[REQUEST_ID].isin(["b", "c"])], "y", 1, "roc_auc", 0.5)
    assert one_class["10"]["value"] is None and "single class" in one_class["10"]["reason"]
    with pytest.raises(ValueError, match="no column"):
        join_labels(captured(), labels.rename(columns={"y": "label"}), "key", "y")
