"""Performance estimated before labels arrive, from the predicted probabilities alone (confidence-based, as
NannyML's CBPE does).

For a calibrated classifier, a row predicted with probability ``p`` is a positive with probability ``p``. So
over a set of rows the expected confusion matrix at a threshold ``t`` is: TP = sum of ``p`` where ``p >= t``,
FP = sum of ``1 - p`` where ``p >= t``, FN = sum of ``p`` where ``p < t``, TN = sum of ``1 - p`` where ``p < t``;
and the expected ROC curve has TPR(t) = TP(t) / sum(p), FPR(t) = FP(t) / sum(1 - p) over every threshold, whose
area is the estimated ROC AUC. The estimate is only as good as the calibration; it is logged next to the
realised metric once labels arrive, so its error is visible.

Calibration: the champion's raw scores are mapped to probabilities fitted on its own holdout (labels vs scores):
isotonic regression (sklearn's ``IsotonicRegression``; its step points are stored, so applying it is a pure
interpolation), or Platt scaling on the logit of the score when the holdout is too small for isotonic, or none.
:func:`fit_calibrations` fits both once (the JSON artefact ``evaluation/calibration.json`` of the version's run) and
chooses between them and none for ``auto`` (:func:`choose_calibration`: each fit cross-fitted on the holdout, kept
only when it lowers the holdout's Brier score: a calibrated model keeps its own probabilities, an over-confident one
is calibrated), :func:`select_calibration` picks the one the spec asks for (falling back, and saying why),
:func:`apply_calibration` applies it. The model's decisions (its ranking, and ``score >= threshold``) stay the raw
scores'; only the expected label mass of each row comes from the calibrated probability.

The estimate assumes ``P(y | x)`` is the same on the day as on the holdout (:data:`ASSUMPTION`): it holds under
covariate shift (the features move, their relation with the label does not) and fails under concept change.
:func:`estimate_error` measures that on any labelled data and :func:`synthetic_estimate_error` on a seeded
synthetic case (the scenario suite calls both).

Written here (numpy, plus scikit-learn for the fits) rather than taken from NannyML: NannyML pins its own
pandas/numpy ranges and brings a plotting stack (plotly, matplotlib) the project does not otherwise need.
"""

from __future__ import annotations

import functools
from typing import Any

from mlops_provider.layout import CALIBRATIONS

ESTIMABLE = ("roc_auc", "accuracy", "precision", "recall", "f1")
#: The fitted calibrations, in the order a fit the holdout is too small for falls back.
FITTED = ("isotonic", "sigmoid")
CALIBRATION_ARTIFACT = "evaluation/calibration.json"
ISOTONIC_MIN_ROWS = 200  # fewer holdout rows (or fewer of either class) overfit a step function
ISOTONIC_MIN_CLASS = 20
SIGMOID_MIN_ROWS = 30  # two parameters
SIGMOID_MIN_CLASS = 5
#: Folds of the cross-fitting ``auto`` judges each calibration by (stratified, seeded).
CROSS_FIT_FOLDS = 5
#: Standard errors by which a calibration's Brier score must beat the raw scores' for ``auto`` to keep it (one-sided
#: test at 5%: "does it lower the Brier score?").
AUTO_Z = 1.645
#: Probabilities are clipped to [LOG_LOSS_EPS, 1 - LOG_LOSS_EPS] for the log loss (isotonic steps reach 0 and 1).
LOG_LOSS_EPS = 1e-6
ASSUMPTION = (
    "assumes P(y|x) is unchanged since the champion's holdout (where the probabilities were calibrated): valid under "
    "covariate shift (the features move, their relation with the label holds), not under concept change (the same "
    "features now go with other labels); under concept change the estimate stays near the holdout's value while "
    "the realised metric falls"
)


def expected_confusion(proba: Any, threshold: float, scores: Any = None) -> dict[str, float]:
    """The expected ``tp, fp, fn, tn`` of rows with predicted probabilities ``proba`` at ``threshold``; with
    ``scores`` (the model's raw scores, when ``proba`` is their calibration) a row is predicted positive when its
    score is at or above ``threshold``, as the model decides."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=float), 0.0, 1.0)
    positive = (p if scores is None else np.asarray(scores, dtype=float)) >= threshold
    return {
        "tp": float(p[positive].sum()),
        "fp": float((1 - p[positive]).sum()),
        "fn": float(p[~positive].sum()),
        "tn": float((1 - p[~positive]).sum()),
    }


def estimated_roc_auc(proba: Any, scores: Any = None) -> float | None:
    """The area under the expected ROC curve; None when there is no expected positive or negative mass. Rows are
    ranked by ``scores`` when given (the model's raw scores, of which ``proba`` is a monotone calibration), else by
    ``proba``."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=float), 0.0, 1.0)
    p = p[np.argsort(-(p if scores is None else np.asarray(scores, dtype=float)), kind="stable")]
    positives, negatives = float(p.sum()), float((1 - p).sum())
    if positives <= 0 or negatives <= 0:
        return None
    tpr = np.concatenate([[0.0], np.cumsum(p) / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1 - p) / negatives])
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))


def estimated_metric(proba: Any, metric: str, threshold: float, scores: Any = None) -> float | None:
    """The expected ``metric`` (one of ``ESTIMABLE``) of rows with predicted probabilities ``proba`` (``scores``: the
    raw scores the model decides with, when ``proba`` is their calibration)."""
    if metric not in ESTIMABLE:
        raise ValueError(f"metric {metric!r} cannot be estimated; one of {ESTIMABLE}")
    if metric == "roc_auc":
        return estimated_roc_auc(proba, scores)
    c = expected_confusion(proba, threshold, scores)
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


# -- calibration on the champion's holdout ---------------------------------------------------------------------------


def _logit(scores: Any) -> Any:
    import numpy as np

    s = np.clip(np.asarray(scores, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(s / (1 - s))


@functools.cache
def _blas_controller() -> Any:
    """The process's BLAS thread-pool controller (it lists the loaded BLAS libraries once: ~5 ms)."""
    from threadpoolctl import ThreadpoolController  # scikit-learn's own dependency

    return ThreadpoolController()


def _one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread: the Platt fit is one column, and its threaded dot products cost
    ~15x the CPU on a busy 2-core machine (OpenBLAS threads spin waiting: 20k rows, ~0.9 s instead of ~0.06 s) and
    sum in an order that depends on the thread count (the fitted numbers then differ in the last bit from machine to
    machine)."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _fit(method: str, labels: Any, scores: Any) -> dict[str, Any]:
    """One calibration's parameters fitted on ``labels`` vs ``scores``: isotonic step points or Platt's ``a, b``."""
    import numpy as np

    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
        return {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        with _one_blas_thread():
            platt = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(np.asarray(scores)).reshape(-1, 1), labels)
        return {"a": float(platt.coef_[0][0]), "b": float(platt.intercept_[0])}
    raise ValueError(f"no fit for calibration {method!r}")


def brier_score(labels: Any, proba: Any) -> float:
    """Mean squared difference between the 0/1 labels and the probabilities (lower is better)."""
    import numpy as np

    y, p = np.asarray(labels, dtype=float), np.clip(np.asarray(proba, dtype=float), 0.0, 1.0)
    return float(np.mean((p - y) ** 2))


def log_loss(labels: Any, proba: Any) -> float:
    """Mean negative log-likelihood of the 0/1 labels, probabilities clipped to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]``."""
    import numpy as np

    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(proba, dtype=float), LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def cross_fitted(labels: Any, scores: Any, method: str, folds: int = CROSS_FIT_FOLDS, seed: int = 0) -> Any:
    """Out-of-fold calibrated probabilities of ``scores``: the rows are split into ``folds`` stratified folds
    (seeded), and each fold is calibrated by ``method`` fitted on the other folds, so no row is judged by a fit that
    saw its label. ``none``: the scores clipped to [0, 1]."""
    import numpy as np

    y, s = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    if method == "none":
        return np.clip(s, 0.0, 1.0)
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=int)
    for value in (0, 1):  # stratified: each class dealt round the folds in a seeded order
        rows = rng.permutation(np.flatnonzero(y == value))
        fold[rows] = np.arange(rows.size) % folds
    out = np.empty(y.size)
    for k in range(folds):
        held = fold == k
        fitted = {"method": method, **_fit(method, y[~held], s[~held])}
        out[held] = apply_calibration(fitted, s[held])
    return out


def choose_calibration(
    labels: Any, scores: Any, fits: dict[str, Any], folds: int = CROSS_FIT_FOLDS, seed: int = 0
) -> dict[str, Any]:
    """The ``auto`` calibration of a holdout: each calibration ``fits`` holds (and ``none``) cross-fitted on the
    holdout (:func:`cross_fitted`) and scored by the Brier score (log loss beside it). The fit with the lowest Brier
    score is kept only when it lowers the raw scores' (``none``) beyond the noise of the comparison: the mean of the
    rows' paired differences (``gain``) is more than ``AUTO_Z`` (1.645: one-sided, 5%) standard errors of it
    (``gain_se``) above 0; else ``none``. A calibrated model keeps its own probabilities (a fit to the holdout's
    days then only adds their noise to every later day's estimate); an over-confident one is calibrated.
    ``{"method", "brier": {method: value}, "log_loss": {...}, "gain", "gain_se", "folds", "seed", "rows", "rule",
    "reason"}``."""
    import numpy as np

    y = np.asarray(labels, dtype=float)
    rows = int(y.size)
    candidates = ["none", *(m for m in FITTED if fits.get(m) is not None)]
    brier, loss, squared = {}, {}, {}
    for method in candidates:
        proba = cross_fitted(labels, scores, method, folds, seed)
        squared[method] = (np.clip(proba, 0.0, 1.0) - y) ** 2
        brier[method], loss[method] = float(squared[method].mean()), log_loss(labels, proba)
    best = min(candidates, key=lambda m: (brier[m], candidates.index(m)))  # a tie keeps the simpler
    paired = squared["none"] - squared[best]  # > 0 where the calibration is closer to the label
    gain = float(paired.mean())
    gain_se = float(paired.std(ddof=1) / np.sqrt(rows)) if rows > 1 else 0.0
    chosen = best if best != "none" and gain > AUTO_Z * gain_se else "none"
    numbers = ", ".join(f"{m} {brier[m]:.4f}" for m in candidates)
    if chosen != "none":
        verdict = f"{chosen} lowers it by {gain:.4f} (standard error {gain_se:.4f})"
    elif best != "none":
        verdict = (f"{best} lowers it by {gain:.4f}, within the noise (standard error {gain_se:.4f}): the raw scores "
                   "are used")  # fmt: skip
    else:
        verdict = "no calibration lowers it: the raw scores are used"
    reason = f"auto: cross-fitted Brier score on {rows} holdout rows ({folds} folds): {numbers}; {verdict}"
    return {"method": chosen, "brier": brier, "log_loss": loss, "gain": gain, "gain_se": gain_se, "folds": folds,
            "seed": seed, "rows": rows, "reason": reason,
            "rule": f"the lowest cross-fitted Brier score, kept when it is under none's by more than {AUTO_Z} "
            "standard errors of the paired difference (one-sided, 5%)"}  # fmt: skip


def fit_calibrations(labels: Any, scores: Any) -> dict[str, Any]:
    """Isotonic and sigmoid (Platt) calibrations of ``scores`` fitted on ``labels`` (0/1) of the same rows, and the
    ``auto`` choice among them and none (:func:`choose_calibration`): the artefact stored with a version
    (``CALIBRATION_ARTIFACT``), fitted once on its holdout. A fit the rows cannot support is ``None`` with the reason
    in ``<method>_skipped``: isotonic needs ``ISOTONIC_MIN_ROWS`` rows and ``ISOTONIC_MIN_CLASS`` of each class,
    sigmoid ``SIGMOID_MIN_ROWS`` and ``SIGMOID_MIN_CLASS``. JSON-ready: ``{"rows", "positives", "isotonic": {"x":
    [...], "y": [...]} | None, "sigmoid": {"a", "b"} | None, "auto": {"method", "brier", "log_loss", ...}, ...}``."""
    import numpy as np

    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) must describe the same rows")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("labels must be 0/1")
    rows, positives = int(y.size), int(y.sum())
    smaller = min(positives, rows - positives)
    fits: dict[str, Any] = {"rows": rows, "positives": positives, "isotonic": None, "sigmoid": None}
    if rows >= ISOTONIC_MIN_ROWS and smaller >= ISOTONIC_MIN_CLASS:
        fits["isotonic"] = _fit("isotonic", y, s)
    else:
        fits["isotonic_skipped"] = (
            f"{rows} holdout rows with {smaller} of the rarer class; isotonic needs {ISOTONIC_MIN_ROWS} rows and "
            f"{ISOTONIC_MIN_CLASS} of each class"
        )
    if rows >= SIGMOID_MIN_ROWS and smaller >= SIGMOID_MIN_CLASS:
        fits["sigmoid"] = _fit("sigmoid", y, s)
    else:
        fits["sigmoid_skipped"] = (
            f"{rows} holdout rows with {smaller} of the rarer class; sigmoid needs {SIGMOID_MIN_ROWS} rows and "
            f"{SIGMOID_MIN_CLASS} of each class"
        )
    if smaller >= CROSS_FIT_FOLDS:  # every fold holds both classes
        fits["auto"] = choose_calibration(y, s, fits)
    else:
        fits["auto"] = {"method": "none", "rows": rows,
                        "reason": f"auto: {smaller} row(s) of the rarer class, too few to cross-fit "
                        f"{CROSS_FIT_FOLDS} folds: the raw scores are used"}  # fmt: skip
    return fits


def select_calibration(fits: dict[str, Any] | None, requested: str) -> dict[str, Any]:
    """The calibration to apply: ``requested`` (one of ``CALIBRATIONS``) from ``fits`` (:func:`fit_calibrations`),
    else the next that was fitted (isotonic -> sigmoid -> none), with ``reason`` saying why it fell back:
    ``{"method", "requested", "reason", "rows", "positives", <the method's parameters>}``. ``auto`` applies the
    choice stored in ``fits["auto"]`` (its Brier and log-loss numbers under ``selection``); fits stored before
    ``auto`` existed hold no choice: isotonic (the earlier default) is applied, and the reason says so."""
    if requested not in CALIBRATIONS:
        raise ValueError(f"calibration {requested!r} is not one of {CALIBRATIONS}")
    if requested == "none":
        return {"method": "none", "requested": "none", "reason": "asked for no calibration: the raw scores are used"}
    if fits is None:
        return {"method": "none", "requested": requested, "reason": "no calibration was fitted (no labelled holdout)"}
    chosen: dict[str, Any] = {"requested": requested, "rows": fits.get("rows"), "positives": fits.get("positives")}
    reasons: list[str] = []
    if requested == "auto":
        auto = fits.get("auto")
        if auto is None:
            reasons.append("auto: the stored fits predate auto (no cross-fitted choice): isotonic, the earlier default")
            requested = "isotonic"
        else:
            selection = {k: auto[k] for k in ("brier", "log_loss", "gain", "gain_se", "folds", "seed", "rule")
                         if k in auto}  # fmt: skip
            if auto["method"] == "none":
                return {**chosen, "method": "none", "reason": auto.get("reason"), "selection": selection}
            return {**chosen, "method": auto["method"], "reason": auto.get("reason"), "selection": selection,
                    **fits[auto["method"]]}  # fmt: skip
    order = list(CALIBRATIONS[CALIBRATIONS.index(requested) :])
    for method in order:
        if method == "none":
            return {**chosen, "method": "none", "reason": "; ".join(reasons)}
        if fits.get(method) is not None:
            reason = "; ".join(reasons) if reasons else f"fitted on {fits.get('rows')} holdout rows"
            return {**chosen, "method": method, "reason": reason, **fits[method]}
        reasons.append(f"no {method}: {fits.get(f'{method}_skipped', 'not fitted')}")
    raise AssertionError("unreachable: 'none' ends every order")


def apply_calibration(calibration: dict[str, Any], scores: Any) -> Any:
    """The calibrated probabilities of ``scores`` under ``calibration`` (:func:`select_calibration`'s result, or any
    dict with ``method`` and its parameters). Isotonic interpolates its step points (as sklearn's ``predict`` with
    ``out_of_bounds="clip"``); sigmoid is ``1 / (1 + exp(-(a * logit(score) + b)))``; none clips to [0, 1]."""
    import numpy as np

    s = np.asarray(scores, dtype=float)
    method = calibration.get("method")
    if method == "isotonic":
        return np.interp(s, np.asarray(calibration["x"], dtype=float), np.asarray(calibration["y"], dtype=float))
    if method == "sigmoid":
        return 1.0 / (1.0 + np.exp(-(float(calibration["a"]) * _logit(s) + float(calibration["b"]))))
    if method == "none":
        return np.clip(s, 0.0, 1.0)
    raise ValueError(f"unknown calibration method {method!r}")


# -- the estimate with its bounds ------------------------------------------------------------------------------------


def metric_of_labels(labels: Any, scores: Any, metric: str, threshold: float) -> float | None:
    """The realised ``metric`` of 0/1 ``labels`` for rows scored ``scores`` (numpy; ROC AUC by the rank-sum, ties
    counted half, as sklearn's ``roc_auc_score``; thresholded metrics predict positive at ``score >= threshold``,
    an undefined ratio is 0 as sklearn's ``zero_division=0``). None for ROC AUC on a single class."""
    import numpy as np
    from scipy.stats import rankdata

    if metric not in ESTIMABLE:
        raise ValueError(f"metric {metric!r} cannot be estimated; one of {ESTIMABLE}")
    y, s = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    positives = int(y.sum())
    negatives = int(y.size) - positives
    if metric == "roc_auc":
        if positives == 0 or negatives == 0:
            return None
        ranks = rankdata(s)
        return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))
    predicted = s >= threshold
    tp = int((predicted & (y == 1)).sum())
    fp, fn = int(predicted.sum()) - tp, positives - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    values = {
        "accuracy": (int(y.size) - fp - fn) / y.size if y.size else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    return float(values[metric])


def estimate_interval(
    proba: Any,
    metric: str,
    threshold: float,
    scores: Any = None,
    *,
    resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Where the realised ``metric`` of these rows should fall if ``proba`` (calibrated) is right: a seeded
    bootstrap that draws the day's rows with replacement and their labels from ``proba``, and scores the model's
    ``scores`` (default ``proba``) on them; the ``confidence`` percentile interval. It covers the day's sample of
    rows and of labels, not the error of the calibration itself. None when no draw has both classes (ROC AUC)."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=float), 0.0, 1.0)
    s = p if scores is None else np.asarray(scores, dtype=float)
    if p.size == 0:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        index = rng.integers(0, p.size, p.size)
        drawn = (rng.random(p.size) < p[index]).astype(int)
        value = metric_of_labels(drawn, s[index], metric, threshold)
        if value is not None:
            values.append(value)
    if not values:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def estimate(
    scores: Any,
    metric: str,
    threshold: float,
    calibration: dict[str, Any],
    *,
    resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The estimated ``metric`` of rows the model scored ``scores``, after ``calibration``, with its bootstrap
    interval, the uncalibrated estimate beside it, and the assumption it rests on: ``{"value", "low", "high",
    "uncalibrated", "rows", "interval": {...}, "calibration": {"method", "requested", "reason", ...},
    "assumption"}``. The calibration's parameters (step points) are left out: they are in its artefact."""
    import numpy as np

    s = np.asarray(scores, dtype=float)
    proba = apply_calibration(calibration, s)
    bounds = estimate_interval(proba, metric, threshold, s, resamples=resamples, confidence=confidence, seed=seed)
    return {
        "value": estimated_metric(proba, metric, threshold, s),
        "low": None if bounds is None else bounds[0],
        "high": None if bounds is None else bounds[1],
        "uncalibrated": estimated_metric(np.clip(s, 0.0, 1.0), metric, threshold),
        "rows": int(s.size),
        "interval": {
            "method": "bootstrap: rows resampled, labels drawn from the calibrated probabilities",
            "confidence": confidence,
            "resamples": resamples,
            "seed": seed,
        },
        "calibration": {k: v for k, v in calibration.items() if k not in ("x", "y")},
        "assumption": ASSUMPTION,
    }


def estimate_error(
    holdout_labels: Any,
    holdout_scores: Any,
    day_labels: Any,
    day_scores: Any,
    *,
    calibration: str = "auto",
    metric: str = "roc_auc",
    threshold: float = 0.5,
    resamples: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """How far the estimate lands from the realised metric: calibrate on the holdout (labels vs scores), estimate on
    the day's scores (its labels unseen), then score the day's labels. ``{"estimated", "low", "high", "realised",
    "error" (estimated - realised), "covered" (realised within the interval), "calibration", "rows"}``."""
    chosen = select_calibration(fit_calibrations(holdout_labels, holdout_scores), calibration)
    made = estimate(day_scores, metric, threshold, chosen, resamples=resamples, seed=seed)
    realised = metric_of_labels(day_labels, day_scores, metric, threshold)
    value = made["value"]
    error = None if value is None or realised is None else value - realised
    covered = None
    if realised is not None and made["low"] is not None:
        covered = made["low"] <= realised <= made["high"]
    return {
        "estimated": value,
        "low": made["low"],
        "high": made["high"],
        "uncalibrated": made["uncalibrated"],
        "realised": realised,
        "error": error,
        "covered": covered,
        "calibration": chosen["method"],
        "rows": made["rows"],
    }


SHIFTS = ("none", "covariate", "concept")


def synthetic_scores(shift: str, rows: int, seed: int) -> tuple[Any, Any]:
    """Seeded synthetic labels and model scores of ``rows`` rows. Truth: ``P(y=1|x) = sigmoid(1.2 x0 + 0.8 x1 + 0.8
    x2 - 1)``, with ``x ~ N(0, 1)``; the model ranks by ``1.2 x0 + 0.8 x1`` (it never saw ``x2``) and is
    over-confident (``score = sigmoid(2.5 (1.2 x0 + 0.8 x1) - 1)``), as boosted trees often are. ``shift``:
    ``none`` (the holdout's population), ``covariate`` (``x0 ~ N(1, 0.5^2)``, ``x1 ~ N(-0.5, 1)``: the features
    move, ``P(y|x)`` does not; the model's AUC drops as ``x0`` narrows), ``concept`` (the features as on the
    holdout, ``x1``'s effect on the label reversed: ``P(y|x)`` changes)."""
    import numpy as np

    if shift not in SHIFTS:
        raise ValueError(f"shift {shift!r} is not one of {SHIFTS}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 3))
    if shift == "covariate":
        x[:, 0] = 1.0 + 0.5 * x[:, 0]
        x[:, 1] = x[:, 1] - 0.5
    w1 = -0.8 if shift == "concept" else 0.8
    truth = 1.2 * x[:, 0] + w1 * x[:, 1] + 0.8 * x[:, 2] - 1.0
    labels = (rng.random(rows) < 1 / (1 + np.exp(-truth))).astype(int)
    scores = 1 / (1 + np.exp(-(2.5 * (1.2 * x[:, 0] + 0.8 * x[:, 1]) - 1.0)))
    return labels, scores


def synthetic_estimate_error(
    shift: str,
    *,
    calibration: str = "auto",
    rows: int = 20_000,
    holdout_rows: int = 5_000,
    metric: str = "roc_auc",
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`estimate_error` on :func:`synthetic_scores`: a holdout of ``holdout_rows`` from the unshifted
    population (seed ``seed``), a day of ``rows`` under ``shift`` (seed ``seed + 1``). Expected: a small error with
    calibration under ``none`` and ``covariate``, a large one under ``concept`` (the estimate cannot see it)."""
    holdout_labels, holdout_scores = synthetic_scores("none", holdout_rows, seed)
    day_labels, day_scores = synthetic_scores(shift, rows, seed + 1)
    result = estimate_error(
        holdout_labels, holdout_scores, day_labels, day_scores, calibration=calibration, metric=metric, seed=seed
    )
    return {**result, "shift": shift}
