"""The tuning rules: the search space against the hyperparameter file (naming the key), the budget across retries,
the validation rows carved from the training rows, the best value so far."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_provider.ml.split import HoldoutSplit, OutOfTimeSplit
from mlops_provider.ml.tuning import (
    TUNABLE_REASONS,
    Tuning,
    best_so_far,
    remaining_budget,
    validation_split,
)
from mlops_provider.operators.training import TRIGGER_REASONS

pytestmark = pytest.mark.unit

HYPERPARAMETERS = {
    "max_depth": {"type": "int", "min": 1, "max": 16, "default": 5},
    "learning_rate": {"type": "float", "min": 0.0001, "max": 1.0, "default": 0.08},
    "booster": {"type": "str", "default": "gbtree"},
}
SPACE = {"max_depth": {"low": 2, "high": 8}, "learning_rate": {"low": 0.01, "high": 0.3, "log": True}}


def plan(**changes) -> dict:
    return {"n_trials": 10, "search_space": SPACE, **changes}


def test_a_plan_reads_back_from_its_dict_and_checks_clean() -> None:
    tuning = Tuning.from_mapping(plan(on=["drift"], pruning="median"))
    assert Tuning.from_mapping(tuning.as_dict()) == tuning
    assert tuning.problems(HYPERPARAMETERS) == []
    assert tuning.tunes("drift") and not tuning.tunes("manual")
    assert not Tuning.from_mapping(plan(enabled=False)).tunes("drift")


def test_every_training_reason_but_reproduce_may_tune() -> None:
    assert set(TUNABLE_REASONS) == set(TRIGGER_REASONS) - {"reproduce"}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"max_dept": {"low": 2, "high": 4}}, "tuning.search_space.max_dept: unknown hyperparameter"),
        ({"max_depth": {"low": 2.5, "high": 4}}, "tuning.search_space.max_depth: max_depth is an int hyperparameter"),
        ({"max_depth": {"low": 0, "high": 40}}, "tuning.search_space.max_depth: low 0, high 40 outside"),
        ({"booster": {"low": 1, "high": 2}}, "tuning.search_space.booster: booster is a str hyperparameter"),
        ({"booster": {"choices": ["gbtree", 3]}}, "tuning.search_space.booster.choices: 3 is refused: expected str"),
        ({"learning_rate": {"choices": [0.1, 2.0]}}, "learning_rate.choices: 2.0 is refused: 2.0 is outside"),
    ],
)
def test_a_search_space_the_hyperparameter_file_refuses_is_named(space, message) -> None:
    problems = Tuning.from_mapping(plan(search_space=space)).problems(HYPERPARAMETERS)
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"search_space": {}}, "tuning.search_space: name at least one hyperparameter"),
        ({"search_space": {"max_depth": {"low": 5, "high": 5}}}, "max_depth: empty range: low 5 must be less"),
        ({"search_space": {"max_depth": {"low": 6, "high": 2}}}, "max_depth: empty range"),
        ({"search_space": {"max_depth": {"choices": []}}}, "max_depth.choices: an empty list leaves nothing"),
        ({"search_space": {"learning_rate": {"low": 0, "high": 1, "log": True}}}, "log scale needs low > 0"),
        ({"search_space": {"max_depth": {"low": 1, "high": 4, "log": True, "step": 1}}}, "cannot be combined"),
        ({"search_space": {"max_depth": {"low": 1}}}, "max_depth: needs low and high"),
        ({"search_space": {"max_depth": {"low": 1, "high": 3, "width": 2}}}, "max_depth: unknown key(s) ['width']"),
        ({"n_trials": None}, "tuning: set n_trials or timeout_minutes"),
        ({"n_trials": 0}, "tuning.n_trials: must be >= 1"),
        ({"on": ["drift", "reproduce"]}, "tuning.on: unknown trigger reason(s) ['reproduce']"),
        ({"direction": "up"}, "tuning.direction: 'up' is not one of maximize, minimize"),
        ({"pruning": "hyperband"}, "tuning.pruning: 'hyperband'"),
        ({"validation_fraction": 1.0}, "tuning.validation_fraction: must be between 0 and 1"),
        ({"trials": 3}, "tuning: unknown key(s) ['trials']"),
    ],
)
def test_an_unusable_plan_is_an_error_naming_the_key(changes, message) -> None:
    with pytest.raises(ValueError) as info:
        Tuning.from_mapping(plan(**changes))
    assert message in str(info.value)


def test_the_budget_counts_every_try_and_stops_at_either_limit() -> None:
    both = Tuning.from_mapping(plan(n_trials=10, timeout_minutes=2))
    assert remaining_budget(both, 0, 0.0) == (10, 120.0, None)
    assert remaining_budget(both, 4, 30.0) == (6, 90.0, None)  # a retry runs only what is left
    trials, seconds, why = remaining_budget(both, 10, 30.0)
    assert trials == 0 and why == "10 of n_trials=10 trials finished"
    trials, seconds, why = remaining_budget(both, 3, 125.0)
    assert seconds == 0.0 and why is not None and "timeout_minutes=2" in why
    timed = Tuning.from_mapping(plan(n_trials=None, timeout_minutes=1))
    assert remaining_budget(timed, 50, 10.0) == (None, 50.0, None)


def test_validation_rows_come_from_the_training_rows_by_the_same_kind_of_split() -> None:
    frame = pd.DataFrame({"key": [f"k{i}" for i in range(2000)], "day": pd.date_range("2026-11-01", periods=2000,
                                                                                     freq="h", tz="UTC")})  # fmt: skip
    holdout = HoldoutSplit("key", 0.2, seed=3)
    train_part, gate = holdout.split(frame)
    fit, validation = validation_split(holdout, 0.25).split(train_part)
    assert not set(validation["key"]) & set(gate["key"]) and not set(fit["key"]) & set(validation["key"])
    assert 0.2 < len(validation) / len(train_part) < 0.3
    assert validation_split(holdout, 0.25) == HoldoutSplit("key", 0.25, seed=4)  # not the holdout's own keys

    by_time = OutOfTimeSplit("day", holdout_days=2)
    train_part, gate = by_time.split(frame)
    fit, validation = validation_split(by_time, 0.25).split(train_part)
    assert validation["day"].min() > fit["day"].max() and validation["day"].max() < gate["day"].min()


def test_best_so_far_follows_the_direction_and_skips_missing_values() -> None:
    assert best_so_far([0.6, None, 0.7, 0.65], "maximize") == [0.6, 0.6, 0.7, 0.7]
    assert best_so_far([None, 0.5, 0.4, 0.45], "minimize") == [None, 0.5, 0.4, 0.4]
