"""Drift signals beyond the share of drifted columns (pure functions; no pandas, no Evidently).

The share of drifted columns treats a column the model ignores like its most important one. The
**importance-weighted drift** weighs each drifted column by the champion's reliance on it: the feature
importances its training run logged (artifact ``feature_importance.json``, ``{feature: importance}``, e.g.
XGBoost gain), restricted to the columns the drift check compared and normalized to sum to 1, so the signal is
the share of the model's importance that sits on drifted columns (0 to 1, comparable with the plain share).
The **learned** signal (:mod:`mlops_provider.ml.learned_drift`) judges each column against how far calm days lie from
the reference and sums the importance-weighted excesses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlops_provider.layout import DRIFT_SIGNALS as SIGNALS

#: The run artifact a training entrypoint may log (docs/training-entrypoint.md).
IMPORTANCE_ARTIFACT = "feature_importance.json"


def normalized_importances(importances: Mapping[str, Any], columns: list[str]) -> dict[str, float]:
    """Weights of ``columns`` from raw importances: negatives, missing and non-numbers count 0; the weights sum to
    1 (all 0 when no column has importance)."""
    raw = {}
    for column in columns:
        value = importances.get(column, 0.0)
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
        raw[column] = number if math.isfinite(number) and number > 0 else 0.0
    total = sum(raw.values())
    return {c: (v / total if total else 0.0) for c, v in raw.items()}


def weighted_drift(columns: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float]) -> float:
    """The sum of the weights of the drifted columns."""
    return float(sum(weights.get(name, 0.0) for name, column in columns.items() if column.get("drifted")))


def decide_signal(
    signal: str,
    share: float,
    share_threshold: float,
    weighted: float | None,
    weighted_threshold: float,
    *,
    learned: float | None = None,
    learned_threshold: float = 0.3,
    learned_note: str | None = None,
) -> dict[str, Any]:
    """The drift verdict by the chosen signal. ``weighted`` is None when the champion logged no importances: then
    the plain share decides, and the verdict says so. ``learned`` (the learned drift) is None when no thresholds
    could be learned (``learned_note`` says why): then the share decides, and the verdict says so."""
    if signal not in SIGNALS:
        raise ValueError(f"drift signal must be one of {SIGNALS}, got {signal!r}")
    if signal == "learned":
        if learned is not None:
            return {"signal": "learned", "dataset_drift": learned >= learned_threshold, "signal_note": learned_note}
        reason = learned_note or "no learned thresholds"
        return {
            "signal": "share",
            "dataset_drift": share >= share_threshold,
            "signal_note": f"{reason}: the share of drifted columns decided",
        }
    if signal == "weighted" and weighted is not None:
        return {"signal": "weighted", "dataset_drift": weighted >= weighted_threshold, "signal_note": None}
    note = (
        "the champion's run logged no feature importances: the share of drifted columns decided"
        if signal == "weighted"
        else None
    )
    return {"signal": "share", "dataset_drift": share >= share_threshold, "signal_note": note}


def normed_wasserstein(reference: Any, current: Any) -> float:
    """Evidently's default score of a numerical column: the Wasserstein distance normed by the reference's
    standard deviation (the prediction drift score; the learned signal and the scenario suite score calm days with it
    without Evidently)."""
    import numpy as np
    from scipy.stats import wasserstein_distance

    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    return float(wasserstein_distance(ref, cur) / (float(np.std(ref)) or 1e-9))


def prediction_drift(reference: Any, current: Any, threshold: float, positive_threshold: float) -> dict[str, Any]:
    """Drift of the model's predictions: the day's predicted probabilities vs the champion's predictions on its own
    holdout. Score: the Wasserstein distance normed by the reference's standard deviation (Evidently's default
    for numbers), drifted at or above ``threshold``; beside it the predicted positive rates at
    ``positive_threshold``."""
    import numpy as np

    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if ref.size == 0 or cur.size == 0:
        raise ValueError(f"prediction drift needs predictions on both sides (reference {ref.size}, current {cur.size})")
    score = normed_wasserstein(ref, cur)
    return {
        "method": "wasserstein (normed)",
        "score": score,
        "threshold": threshold,
        "drifted": score >= threshold,
        "positive_rate_reference": float(np.mean(ref >= positive_threshold)),
        "positive_rate_current": float(np.mean(cur >= positive_threshold)),
        "mean_reference": float(np.mean(ref)),
        "mean_current": float(np.mean(cur)),
        "rows": {"reference": int(ref.size), "current": int(cur.size)},
    }
