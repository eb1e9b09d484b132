"""Hyperparameter overrides are checked against their spec, naming the field."""

from __future__ import annotations

import pytest

from mlops_provider.ml.hyperparameters import resolve

pytestmark = pytest.mark.unit

SPEC = {
    "max_depth": {"type": "int", "min": 1, "max": 16, "default": 5},
    "learning_rate": {"type": "float", "min": 0.0001, "max": 1.0, "default": 0.08},
    "use_gpu": {"type": "bool", "default": False},
}


def test_defaults_with_overrides_ints_accepted_as_floats():
    assert resolve(SPEC, {"max_depth": 7, "learning_rate": 1}) == {
        "max_depth": 7,
        "learning_rate": 1.0,
        "use_gpu": False,
    }
    assert resolve(SPEC, None)["max_depth"] == 5
    whole = {"reg_lambda": {"type": "float", "min": 0, "max": 10, "default": 1}}
    assert resolve(whole, None) == {"reg_lambda": 1.0} and isinstance(resolve(whole, None)["reg_lambda"], float)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"depth": 3}, r"hyperparameters\.depth: unknown hyperparameter; known: learning_rate, max_depth, use_gpu"),
        ({"max_depth": "7"}, r"hyperparameters\.max_depth: expected int, got str '7'"),
        ({"max_depth": True}, r"hyperparameters\.max_depth: expected int, got bool"),
        ({"max_depth": 17}, r"hyperparameters\.max_depth: 17 is outside \[1, 16\]"),
        ({"use_gpu": 1}, r"hyperparameters\.use_gpu: expected bool, got int"),
    ],
)
def test_bad_overrides_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve(SPEC, overrides)


def test_the_hyperparameter_spec_is_read_and_a_bad_entry_names_it(tmp_path):
    import json

    from mlops_provider.ml.hyperparameters import load_hyperparameter_spec

    good = tmp_path / "hyperparameters.json"
    good.write_text(json.dumps({"max_depth": {"type": "int", "default": 4, "min": 1}}))
    assert load_hyperparameter_spec(good) == {"max_depth": {"type": "int", "default": 4, "min": 1}}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"eta": {"default": 0.1}}))
    with pytest.raises(ValueError, match="'eta' needs a type"):
        load_hyperparameter_spec(bad)
