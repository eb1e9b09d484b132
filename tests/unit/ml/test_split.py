"""The provider's holdout split: a stable hash of the key, the same side for a key everywhere, recorded as tags."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_provider.ml.split import (
    HoldoutSplit,
    OutOfTimeSplit,
    holdout_from_day,
    split_from_mapping,
    split_from_tags,
    split_params,
)

pytestmark = pytest.mark.unit


def keys(n: int = 4000) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "x": range(n)})


def test_the_holdout_is_about_the_fraction_and_independent_of_row_order():
    frame = keys()
    split = HoldoutSplit("customer_id", 0.2, 0)
    mask = split.mask(frame)
    assert 0.17 < mask.mean() < 0.23
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert set(frame["customer_id"][mask]) == set(shuffled["customer_id"][split.mask(shuffled)])


def test_a_key_is_on_one_side_in_every_frame_so_no_holdout_key_is_ever_trained_on():
    split = HoldoutSplit("customer_id", 0.3, 7)
    day_one = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e", "f"] * 3, "day": 1})
    day_two = pd.DataFrame({"customer_id": ["f", "e", "d", "c", "b", "a"], "day": 2})
    train, holdout = split.split(pd.concat([day_one, day_two]))
    assert not set(train["customer_id"]) & set(holdout["customer_id"])
    assert set(holdout["customer_id"]) == {k for k in "abcdef" if split.in_holdout(k)}


def test_the_seed_changes_which_keys_are_held_out():
    frame = keys()
    first, second = HoldoutSplit("customer_id", 0.2, 0).mask(frame), HoldoutSplit("customer_id", 0.2, 1).mask(frame)
    assert (first != second).mean() > 0.2


def test_tags_round_trip_and_a_version_without_them_has_no_split():
    split = HoldoutSplit("card_id", 0.25, 3)
    assert HoldoutSplit.from_tags({**split.tags(), "other": "x"}) == split
    assert HoldoutSplit.from_tags({"data.rev": "abc"}) is None


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"fraction": 0.2}, "needs 'key'"),
        ({"key": "k", "fraction": 1.5}, "holdout.fraction"),
        ({"key": "k", "fraction": 0}, "holdout.fraction"),
        ({"key": "k", "seed": -1}, "holdout.seed"),
        ({"key": "k", "percent": 20}, "unknown key(s) ['percent']"),
    ],
)
def test_a_bad_split_is_named(mapping, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        HoldoutSplit.from_mapping(mapping)


def test_a_missing_key_column_is_named():
    with pytest.raises(ValueError, match="column 'card_id' is not in the data"):
        HoldoutSplit("card_id").mask(keys())


# -- out of time ------------------------------------------------------------------------------------------------------


def days_frame() -> pd.DataFrame:
    """Two rows a day on 2026-11-01..04 (one late in the UTC day), given out of order, plus a tz-aware stamp."""
    stamps = ["2026-11-03 10:00", "2026-11-01 00:00", "2026-11-04 23:59", "2026-11-02 12:00",
              "2026-11-01 23:00", "2026-11-03 00:00", "2026-11-02 01:00", "2026-11-04 00:00"]  # fmt: skip
    return pd.DataFrame({"event_ts": pd.to_datetime(stamps), "customer_id": [f"c{i}" for i in range(8)]})


def test_the_first_held_out_day_is_the_nth_newest_distinct_day():
    days = ["2026-11-02", "2026-11-01", "2026-11-04", "2026-11-04", "2026-11-03"]
    assert holdout_from_day(days, 1) == "2026-11-04"
    assert holdout_from_day(days, 3) == "2026-11-02"
    # a day missing from the window (quarantined) is not counted: the last 2 days present are 11-03 and 11-05
    assert holdout_from_day(["2026-11-01", "2026-11-03", "2026-11-05"], 2) == "2026-11-03"


@pytest.mark.parametrize(("days", "n", "have"), [(["2026-11-01", "2026-11-02"], 2, 2), (["2026-11-01"] * 5, 1, 1)])
def test_too_few_days_for_the_out_of_time_holdout_is_named_with_the_numbers(days, n, have):
    with pytest.raises(ValueError) as caught:
        holdout_from_day(days, n, "event_ts")
    message = str(caught.value)
    assert f"split.holdout_days={n} needs at least {n + 1} days" in message
    assert f"'event_ts' has {have} (" in message
    assert f"training.min_days >= {n + 1}" in message


def test_the_out_of_time_split_holds_out_exactly_the_last_days_rows():
    frame = days_frame()
    split = OutOfTimeSplit("event_ts", holdout_days=2)
    resolved = split.resolve(frame)
    assert resolved.holdout_from == "2026-11-03"
    train, holdout = split.split(frame)
    assert sorted(holdout["customer_id"]) == ["c0", "c2", "c5", "c7"]  # 11-03 and 11-04, incl. 23:59
    assert sorted(train["customer_id"]) == ["c1", "c3", "c4", "c6"]
    # resolved, the rule holds on any later frame: a day after the window is held out whole, an earlier one not
    later = pd.DataFrame({"event_ts": pd.to_datetime(["2026-11-02 23:00", "2026-11-03 00:00", "2026-11-09 08:00"])})
    assert resolved.mask(later).tolist() == [False, True, True]


def test_out_of_time_days_are_utc_dates():
    aware = pd.DataFrame({"event_ts": pd.to_datetime(["2026-11-02T23:30:00-02:00", "2026-11-02T12:00:00-02:00"])})
    assert OutOfTimeSplit("event_ts", 1, "2026-11-03").mask(aware).tolist() == [True, False]  # 01:30 UTC on 11-03


def test_unreadable_timestamps_and_a_missing_time_column_are_named():
    frame = pd.DataFrame({"event_ts": ["2026-11-01", None, "not a date"], "k": [1, 2, 3]})
    with pytest.raises(ValueError, match="2 row\\(s\\) of 'event_ts' have no readable timestamp"):
        OutOfTimeSplit("event_ts").mask(frame)
    with pytest.raises(ValueError, match="column 'tx_ts' is not in the data"):
        OutOfTimeSplit("tx_ts").mask(frame)


def test_the_split_round_trips_through_tags_and_old_versions_are_key_hash():
    resolved = OutOfTimeSplit("event_ts", 2, "2026-11-03")
    assert resolved.tags() == {
        "split.method": "out_of_time", "split.time_column": "event_ts", "split.holdout_days": "2",
        "split.holdout_from": "2026-11-03",
    }  # fmt: skip
    assert split_from_tags({**resolved.tags(), "data.rev": "abc"}) == resolved
    key_hash = HoldoutSplit("customer_id", 0.2, 0)
    assert split_from_tags(key_hash.tags()) == key_hash
    old = {k: v for k, v in key_hash.tags().items() if k != "split.method"}  # tagged before split.method existed
    assert split_from_tags(old) == key_hash
    assert split_from_tags({"data.rev": "abc"}) is None
    assert split_params(resolved)["split.method"] == "out_of_time"


def test_the_operator_mapping_chooses_the_method():
    assert split_from_mapping({"key": "k"}) == HoldoutSplit("k")
    assert split_from_mapping({"method": "key_hash", "key": "k", "fraction": 0.3}) == HoldoutSplit("k", 0.3)
    assert split_from_mapping({"method": "out_of_time", "time_column": "ts", "holdout_days": 2}) == OutOfTimeSplit(
        "ts", 2
    )
    with pytest.raises(ValueError, match="method 'random' is not one of key_hash, out_of_time"):
        split_from_mapping({"method": "random"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['key'\]; allowed for method out_of_time"):
        split_from_mapping({"method": "out_of_time", "time_column": "ts", "key": "k"})
    with pytest.raises(ValueError, match="split.holdout_days: must be >= 1"):
        split_from_mapping({"method": "out_of_time", "time_column": "ts", "holdout_days": 0})


def _key_columns() -> dict[str, pd.Series]:
    """Key columns of every kind a dataset may hash: text, ints, nullable ints, floats, dates, timestamps, nulls."""
    import datetime as dt

    import numpy as np

    n = 3000
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i % 400) for i in range(n)]
    return {
        "text": pd.Series([f"C{i * 7919}" for i in range(n)]),
        "text_with_nulls": pd.Series([None if i % 11 == 0 else f"c{i}" for i in range(n)], dtype=object),
        "string_dtype_with_na": pd.Series([None if i % 13 == 0 else f"s{i}" for i in range(n)], dtype="string"),
        "int64": pd.Series(np.arange(n, dtype="int64") * 104729 - 50),
        "int32": pd.Series(np.arange(n, dtype="int32")),
        "nullable_int": pd.Series([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"),
        "float_with_nan": pd.Series([np.nan if i % 5 == 0 else i / 3 for i in range(n)]),
        "float_whole": pd.Series(np.arange(n, dtype="float64")),
        "dates": pd.Series(days, dtype=object),
        "timestamps": pd.Series(pd.to_datetime(days) + pd.to_timedelta(np.arange(n), unit="s")),
        "timestamps_utc_with_nat": pd.Series(
            [
                pd.NaT if i % 17 == 0 else pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=i)
                for i in range(n)
            ]
        ),
        "category": pd.Series([f"k{i % 50}" for i in range(n)], dtype="category"),
        "bool": pd.Series([i % 3 == 0 for i in range(n)]),
        "mixed_objects": pd.Series([i if i % 2 else f"x{i}" for i in range(n)], dtype=object),
    }


@pytest.mark.parametrize("kind", sorted(_key_columns()))
@pytest.mark.parametrize(("fraction", "seed"), [(0.2, 0), (0.5, 7), (0.013, 123)])
def test_the_vectorised_mask_holds_the_same_rows_as_the_per_row_rule(kind, fraction, seed):
    values = _key_columns()[kind]
    split = HoldoutSplit("key", fraction, seed)
    frame = pd.DataFrame({"key": values, "x": range(len(values))}, index=range(10, 10 + len(values)))
    per_row = frame["key"].map(split.in_holdout).astype(bool)  # the rule, one Python call per row
    mask = split.mask(frame)
    assert mask.dtype == bool
    assert mask.index.equals(frame.index)
    assert mask.tolist() == per_row.tolist()
    assert 0 < mask.sum() < len(mask) or kind in ("bool", "category")
    train, holdout = split.split(frame)
    assert train["x"].tolist() == frame["x"][~per_row].tolist()
    assert holdout["x"].tolist() == frame["x"][per_row].tolist()


def test_the_vectorised_mask_of_an_empty_frame_is_empty():
    mask = HoldoutSplit("key", 0.2, 0).mask(pd.DataFrame({"key": pd.Series([], dtype=object)}))
    assert mask.dtype == bool and mask.empty
