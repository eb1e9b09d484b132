"""The training entrypoint contract, checked after every run (docs/training-entrypoint.md).

An entrypoint that breaks it fails the task with :class:`EntrypointContractError`, which names the broken item,
instead of registering a model that evaluation, the shadow check or serving would misread later. Pure checks here;
:func:`mlops_provider.runtime.runners.run_training` applies them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_provider.exceptions import EntrypointContractError


def check_result(path: Path) -> dict[str, Any]:
    """The result file exists and is a JSON object with a string ``model_id`` and numeric ``metrics``."""
    if not path.is_file():
        raise EntrypointContractError("result file", f"{path} was not written (write it with --output's path)")
    try:
        result = json.loads(path.read_text())
    except ValueError as exc:
        raise EntrypointContractError("result file", f"{path} is not JSON: {exc}") from None
    if not isinstance(result, dict):
        raise EntrypointContractError("result file", f"{path} holds a {type(result).__name__}, not a JSON object")
    model_id = result.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        raise EntrypointContractError("model_id", "the result has no model_id (the id of the logged MLflow model)")
    metrics = result.get("metrics")
    if not isinstance(metrics, dict):
        raise EntrypointContractError("metrics", "the result has no metrics object ({name: number})")
    bad = sorted(k for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, (int, float)))
    if bad:
        raise EntrypointContractError("metrics", f"values of {bad} are not numbers")
    return result


def check_run_tags(actual: Mapping[str, str], expected: Mapping[str, str]) -> None:
    """The MLflow run carries every tag the provider handed the entrypoint (``--tags``), unchanged."""
    wrong = sorted(k for k, v in expected.items() if actual.get(k) != v)
    if wrong:
        raise EntrypointContractError("run tags", f"the run lacks or changed the given tags {wrong}")


def check_signature(model: Any) -> None:
    """The logged model has an input signature (the shadow check and serving cast inputs by it)."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.inputs:
        raise EntrypointContractError("signature", "the logged model has no input signature (log it with signature=)")


def check_predictions(predictions: Any, rows: int) -> None:
    """``predict`` returns one probability of the positive class per row: 1-D, ``rows`` long, finite, in [0, 1]."""
    import numpy as np

    try:
        values = np.asarray(predictions, dtype=float)
    except (TypeError, ValueError):
        raise EntrypointContractError("predict output", "predict returned values that are not numbers") from None
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise EntrypointContractError(
            "predict output", f"predict returned shape {values.shape}; expected ({rows},): one probability per row"
        )
    if len(values) != rows:
        raise EntrypointContractError("predict output", f"predict returned {len(values)} values for {rows} rows")
    outside = [float(v) for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if outside:
        raise EntrypointContractError(
            "predict output",
            f"predict returned {len(outside)} values outside [0, 1] (e.g. {outside[0]!r}); it must return the "
            "probability of the positive class, not a label or a score",
        )
