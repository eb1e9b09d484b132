"""The curves of a binary classifier on its holdout, as JSON-able data for the plots: ROC, precision-recall,
calibration (reliability) and the confusion matrix at the threshold. numpy only; at most ``max_points`` points
per curve, so the record stays small whatever the holdout's size."""

from __future__ import annotations

from typing import Any

CURVES_ARTIFACT = "evaluation/holdout_curves.json"


def _thin(xs: list[float], ys: list[float], max_points: int) -> tuple[list[float], list[float]]:
    if len(xs) <= max_points:
        return xs, ys
    step = (len(xs) - 1) / (max_points - 1)
    keep = sorted({round(i * step) for i in range(max_points)})
    return [xs[i] for i in keep], [ys[i] for i in keep]


def holdout_curves(labels: Any, scores: Any, threshold: float = 0.5, max_points: int = 200) -> dict[str, Any]:
    """``labels`` (0/1) and predicted probabilities of the positive class -> ``{"rows", "positives", "roc" {fpr,
    tpr, auc}, "pr" {recall, precision, average_precision}, "calibration" {predicted, observed, count},
    "confusion" {threshold, tp, fp, tn, fn}}``."""
    import numpy as np

    y = np.asarray(labels, dtype=float)
    p = np.asarray(scores, dtype=float)
    if y.shape != p.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError(f"labels and scores must be two equal 1-D arrays, got {y.shape} and {p.shape}")
    positives, negatives = float(y.sum()), float(len(y) - y.sum())
    order = np.argsort(-p, kind="mergesort")
    y_sorted, p_sorted = y[order], p[order]
    distinct = np.r_[np.where(np.diff(p_sorted))[0], len(y) - 1]  # last index of each distinct score
    tps = np.cumsum(y_sorted)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / positives] if positives else np.zeros(len(tps) + 1)
    fpr = np.r_[0.0, fps / negatives] if negatives else np.zeros(len(fps) + 1)
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)) if positives and negatives else float("nan")
    precision = tps / (tps + fps)
    recall = tps / positives if positives else np.zeros(len(tps))
    average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision)) if positives else float("nan")
    edges = np.linspace(0.0, 1.0, 11)
    bins = np.clip(np.digitize(p, edges[1:-1]), 0, 9)
    predicted, observed, count = [], [], []
    for b in range(10):
        mask = bins == b
        if mask.any():
            predicted.append(round(float(p[mask].mean()), 4))
            observed.append(round(float(y[mask].mean()), 4))
            count.append(int(mask.sum()))
    hit = p >= threshold
    roc_x, roc_y = _thin([round(float(v), 4) for v in fpr], [round(float(v), 4) for v in tpr], max_points)
    pr_x, pr_y = _thin([round(float(v), 4) for v in recall], [round(float(v), 4) for v in precision], max_points)
    return {
        "rows": int(len(y)),
        "positives": int(positives),
        "roc": {"fpr": roc_x, "tpr": roc_y, "auc": round(auc, 6)},
        "pr": {"recall": pr_x, "precision": pr_y, "average_precision": round(average_precision, 6)},
        "calibration": {"predicted": predicted, "observed": observed, "count": count},
        "confusion": {
            "threshold": threshold,
            "tp": int((hit & (y == 1)).sum()),
            "fp": int((hit & (y == 0)).sum()),
            "tn": int((~hit & (y == 0)).sum()),
            "fn": int((~hit & (y == 1)).sum()),
        },
    }
