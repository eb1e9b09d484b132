"""The training entrypoint contract: each broken item gets its own named error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlops_provider.ml.contract import (
    EntrypointContractError,
    check_predictions,
    check_result,
    check_run_tags,
)

pytestmark = pytest.mark.unit


def test_a_good_result_passes(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"model_id": "m-1", "metrics": {"roc_auc": 0.8, "rows": 10}}))
    assert check_result(path)["model_id"] == "m-1"


@pytest.mark.parametrize(
    ("content", "item"),
    [
        (None, "result file"),
        ("not json", "result file"),
        ("[1, 2]", "result file"),
        ('{"metrics": {}}', "model_id"),
        ('{"model_id": "", "metrics": {}}', "model_id"),
        ('{"model_id": "m"}', "metrics"),
        ('{"model_id": "m", "metrics": {"auc": "high"}}', "metrics"),
    ],
)
def test_a_broken_result_names_its_item(tmp_path, content, item):
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(EntrypointContractError, match=f"contract, {item}:") as info:
        check_result(path)
    assert info.value.item == item and "docs/training-entrypoint.md" in str(info.value)


def test_the_run_must_keep_the_given_tags():
    check_run_tags({"a": "1", "b": "2", "extra": "x"}, {"a": "1", "b": "2"})
    with pytest.raises(EntrypointContractError, match=r"run tags: .*\['a', 'b'\]"):
        check_run_tags({"a": "changed"}, {"a": "1", "b": "2"})


@pytest.mark.parametrize(
    ("predictions", "detail"),
    [
        (np.zeros((5, 2)), r"shape \(5, 2\)"),
        (np.zeros(4), "4 values for 5 rows"),
        (np.array([0, 1, 2, 0, 1]), "outside \\[0, 1\\]"),
        (np.array([0.1, np.nan, 0.2, 0.3, 0.4]), "outside"),
        (["a", "b", "c", "d", "e"], "not numbers"),
    ],
)
def test_predict_must_return_one_probability_per_row(predictions, detail):
    with pytest.raises(EntrypointContractError, match=f"predict output: .*{detail}"):
        check_predictions(predictions, 5)


def test_a_column_vector_of_probabilities_is_accepted():
    check_predictions(np.full((5, 1), 0.5), 5)
    check_predictions([0.0, 0.2, 1.0, 0.5, 0.3], 5)
