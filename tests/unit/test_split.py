"""The provider's holdout split: a stable hash of the key, the same side for a key everywhere, recorded as tags."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_provider.split import HoldoutSplit

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
