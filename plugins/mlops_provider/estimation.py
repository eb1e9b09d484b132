"""Performance estimated before labels arrive, from the predicted probabilities alone (confidence-based, as
NannyML's CBPE does).

For a calibrated classifier, a row predicted with probability ``p`` is a positive with probability ``p``. So
over a set of rows the expected confusion matrix at a threshold ``t`` is: TP = sum of ``p`` where ``p >= t``,
FP = sum of ``1 - p`` where ``p >= t``, FN = sum of ``p`` where ``p < t``, TN = sum of ``1 - p`` where ``p < t``;
and the expected ROC curve has TPR(t) = TP(t) / sum(p), FPR(t) = FP(t) / sum(1 - p) over every threshold, whose
area is the estimated ROC AUC. The estimate is only as good as the calibration; it is logged next to the
realised metric once labels arrive, so its error is visible.

Written here (numpy only) rather than taken from NannyML: NannyML pins its own pandas/numpy ranges and brings a
plotting stack (plotly, matplotlib) the project does not otherwise need.
"""

from __future__ import annotations

from typing import Any

ESTIMABLE = ("roc_auc", "accuracy", "precision", "recall", "f1")


def expected_confusion(proba: Any, threshold: float) -> dict[str, float]:
    """The expected ``tp, fp, fn, tn`` of rows with predicted probabilities ``proba`` at ``threshold``."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=float), 0.0, 1.0)
    positive = p >= threshold
    return {
        "tp": float(p[positive].sum()),
        "fp": float((1 - p[positive]).sum()),
        "fn": float(p[~positive].sum()),
        "tn": float((1 - p[~positive]).sum()),
    }


def estimated_roc_auc(proba: Any) -> float | None:
    """The area under the expected ROC curve; None when there is no expected positive or negative mass."""
    import numpy as np

    p = np.sort(np.clip(np.asarray(proba, dtype=float), 0.0, 1.0))[::-1]
    positives, negatives = float(p.sum()), float((1 - p).sum())
    if positives <= 0 or negatives <= 0:
        return None
    tpr = np.concatenate([[0.0], np.cumsum(p) / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1 - p) / negatives])
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))


def estimated_metric(proba: Any, metric: str, threshold: float) -> float | None:
    """The expected ``metric`` (one of ``ESTIMABLE``) of rows with predicted probabilities ``proba``."""
    if metric not in ESTIMABLE:
        raise ValueError(f"metric {metric!r} cannot be estimated; one of {ESTIMABLE}")
    if metric == "roc_auc":
        return estimated_roc_auc(proba)
    c = expected_confusion(proba, threshold)
    total = sum(c.values())
    if total <= 0:
        return None
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    values = {
        "accuracy": (c["tp"] + c["tn"]) / total,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    return float(values[metric])
