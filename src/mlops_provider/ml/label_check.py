"""The late-label check's statistics and rules, as pure functions (numpy only; no Airflow, no pandas).

A day's realised metric is an estimate from a sample of labelled rows, so each value comes with its sample size and
a confidence interval (:func:`metric_interval`): DeLong's for ROC AUC (exact, no resampling), a seeded stratified
bootstrap for the thresholded metrics. Labels are pooled over a rolling window of days (:func:`window_days`) so a
small day still decides; a window with fewer rows than the minimum decides nothing and says why
(:func:`labels_verdict`); an alarm fires by a rule (:func:`crosses_floor`: the point value under the floor, or the
whole interval under it) held on ``consecutive_days`` days (:func:`performance_alarm`).

The scenario suite (``bench/``) calls :func:`metric_interval`, :func:`crosses_floor` and :func:`performance_alarm`
directly; ``ModelPerformanceOperator`` composes the same functions.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from mlops_provider.layout import DEFAULT_INTERVAL_LEVEL as DEFAULT_LEVEL
from mlops_provider.layout import PERFORMANCE_ALARM_RULES as ALARM_RULES

BOOTSTRAP_RESAMPLES = 1000


def _midranks(values: Any) -> Any:
    """1-based ranks with ties given the mean of their ranks."""
    import numpy as np

    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    ranks = np.empty(len(values), dtype=float)
    i, n = 0, len(values)
    while i < n:
        j = i
        while j < n and ordered[j] == ordered[i]:
            j += 1
        ranks[order[i:j]] = 0.5 * (i + j - 1) + 1.0
        i = j
    return ranks


def delong_auc(y_true: Any, scores: Any) -> tuple[float, float]:
    """ROC AUC and DeLong's variance of it (DeLong, DeLong & Clarke-Pearson 1988; the O(n log n) midrank form of
    Sun & Xu 2014). Ties count one half. Raises ``ValueError`` unless both classes are present.

    With ``m`` positives ``X`` and ``n`` negatives ``Y``: ``V10_i`` is the share of negatives ``X_i`` outranks,
    ``V01_j`` the share of positives that outrank ``Y_j``; AUC = mean(V10); variance = var(V10)/m + var(V01)/n
    (sample variances)."""
    import numpy as np

    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=float)
    positives, negatives = s[y == 1], s[y == 0]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        raise ValueError(f"ROC AUC needs both classes; got {m} positive and {n} negative rows")
    combined = _midranks(np.concatenate([positives, negatives]))
    v10 = (combined[:m] - _midranks(positives)) / n
    v01 = 1.0 - (combined[m:] - _midranks(negatives)) / m
    auc = float(v10.mean())
    s10 = float(v10.var(ddof=1)) if m > 1 else 0.0
    s01 = float(v01.var(ddof=1)) if n > 1 else 0.0
    return auc, s10 / m + s01 / n


def _metric(name: str, y: Any, proba: Any, threshold: float) -> float:
    """A thresholded metric of one (re)sample, as the estimate computes realised metrics."""
    from mlops_provider.ml.estimation import metric_of_labels

    if name not in ("accuracy", "precision", "recall", "f1"):
        raise ValueError(f"no interval for metric {name!r}")
    value = metric_of_labels(y, proba, name, threshold)
    assert value is not None  # None only for ROC AUC on one class
    return value


def bootstrap_interval(
    metric: str,
    y_true: Any,
    proba: Any,
    threshold: float = 0.5,
    level: float = DEFAULT_LEVEL,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile interval of a thresholded metric (``accuracy``, ``precision``, ``recall``, ``f1``) from a seeded
    bootstrap that resamples positives and negatives separately (so every resample keeps the day's class counts)."""
    import numpy as np

    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    value = _metric(metric, y, p, threshold)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    values = np.empty(resamples)
    for b in range(resamples):
        rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        values[b] = _metric(metric, y[rows], p[rows], threshold)
    alpha = (1.0 - level) / 2
    lower, upper = np.quantile(values, [alpha, 1.0 - alpha])
    return {"value": value, "lower": float(lower), "upper": float(upper), "level": level,
            "method": f"stratified bootstrap ({resamples} resamples, seed {seed}, percentile)",
            "rows": int(len(y)), "positives": int(len(pos)), "negatives": int(len(neg))}  # fmt: skip


def metric_interval(
    metric: str,
    y_true: Any,
    proba: Any,
    threshold: float = 0.5,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """``metric`` on labels ``y_true`` (0/1) and probabilities ``proba`` with its confidence interval:
    ``{value, lower, upper, level, method, rows, positives, negatives}`` (``se`` too for DeLong). ROC AUC: DeLong's
    normal interval, clipped to [0, 1]; other metrics: :func:`bootstrap_interval`. Raises ``ValueError`` when ROC
    AUC is asked of one class."""
    import numpy as np

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if metric != "roc_auc":
        return bootstrap_interval(metric, y_true, proba, threshold, level, seed=seed)
    y = np.asarray(y_true).astype(int)
    auc, variance = delong_auc(y, proba)
    se = math.sqrt(max(variance, 0.0))
    from statistics import NormalDist  # loaded by the task that needs it, not at DAG parse time

    z = NormalDist().inv_cdf(0.5 + level / 2)
    return {"value": auc, "lower": max(0.0, auc - z * se), "upper": min(1.0, auc + z * se), "level": level,
            "method": "DeLong", "se": se, "rows": int(len(y)), "positives": int(y.sum()),
            "negatives": int(len(y) - y.sum())}  # fmt: skip


def window_days(labelled_day: dt.date, window: int) -> list[dt.date]:
    """The labelled days a check pools: ``labelled_day`` and the ``window - 1`` days before it, oldest first."""
    if window < 1:
        raise ValueError(f"label_window_days must be >= 1, got {window}")
    return [labelled_day - dt.timedelta(days=back) for back in range(window - 1, -1, -1)]


def labels_verdict(rows_by_day: dict[str, int | None], min_labelled_rows: int) -> tuple[str, str | None]:
    """Whether the pooled window decides: ``("scored", None)``, or ``("no_labels" | "too_few_labels", reason)``.

    ``rows_by_day`` maps each day of the window to its labelled holdout rows, ``None`` for a day not versioned
    (not ingested yet, quarantined)."""
    versioned = {day: rows for day, rows in rows_by_day.items() if rows is not None}
    window = f"{len(rows_by_day)}-day window {min(rows_by_day)}..{max(rows_by_day)}"
    if not versioned:
        return "no_labels", (
            f"no day of the {window} is versioned yet (not ingested, or quarantined): no labels to score"
        )
    total = sum(versioned.values())
    if total < min_labelled_rows:
        per_day = ", ".join(f"{day}: {rows if rows is not None else 'not versioned'}"
                            for day, rows in sorted(rows_by_day.items()))  # fmt: skip
        return "too_few_labels", (
            f"{total} labelled holdout rows in the {window} ({per_day}), under min_labelled_rows {min_labelled_rows}: "
            "too few to decide; pool more days (monitoring.label_window_days) or lower monitoring.min_labelled_rows"
        )
    return "scored", None


def crosses_floor(value: float, lower: float, upper: float, floor: float, rule: str) -> bool:
    """Whether a day's score crosses the floor by ``rule``: ``point`` (the value is under it) or ``interval`` (the
    whole interval is: its upper end is under it, so the drop is not sampling noise). Higher is better."""
    if rule == "point":
        return value < floor
    if rule == "interval":
        return upper < floor
    raise ValueError(f"performance_alarm must be one of {', '.join(ALARM_RULES)}, got {rule!r}")


def performance_alarm(crossed: bool, previous: list[bool | None], consecutive_days: int) -> tuple[bool, str]:
    """Whether the check calls for retraining: today crossed and so did the ``consecutive_days - 1`` days before
    (``previous``: the newest first, ``None`` for a day without a decision, which breaks the run). Returns the
    verdict and a sentence saying why."""
    if consecutive_days < 1:
        raise ValueError(f"consecutive_days must be >= 1, got {consecutive_days}")
    if not crossed:
        return False, "today does not cross the floor"
    needed = previous[: consecutive_days - 1]
    run = 1
    for day in needed:
        if day is not True:
            break
        run += 1
    if run >= consecutive_days:
        return True, f"the floor is crossed on {run} consecutive day(s) (needed {consecutive_days})"
    return False, f"the floor is crossed on {run} consecutive day(s), under the {consecutive_days} needed"


def suite_min_rows(suite: dict[str, Any]) -> int | None:
    """The fewest rows a day that passes validation can hold: the ``min_value`` of the suite's
    ``expect_table_row_count_to_be_between`` (None when the suite has no such expectation)."""
    for expectation in suite.get("expectations") or []:
        if expectation.get("type") == "expect_table_row_count_to_be_between":
            low = (expectation.get("kwargs") or {}).get("min_value")
            return int(low) if low is not None else None
    return None


def labelled_rows_warning(
    rows_per_day: int, holdout_fraction: float, label_window_days: int, min_labelled_rows: int, split: str = ""
) -> str | None:
    """A warning when a window of days at ``rows_per_day`` rows holds, in expectation, fewer labelled holdout rows
    (``holdout_fraction x rows_per_day x label_window_days``) than ``min_labelled_rows`` (None: enough).
    ``holdout_fraction``: the share of a day's rows the check scores (``split.fraction`` for a key-hash split; 1 for
    an out-of-time one: a day after the training window is unseen whole); ``split`` names it in the warning."""
    expected = holdout_fraction * rows_per_day * label_window_days
    if expected >= min_labelled_rows:
        return None
    needed = math.ceil(min_labelled_rows / (holdout_fraction * rows_per_day))
    split = split or f"split.fraction {holdout_fraction:g}"
    return (
        f"a day with the validation suite's minimum of {rows_per_day} rows gives ~{expected:.0f} labelled holdout "
        f"rows per {label_window_days}-day label window ({split}), under "
        f"monitoring.min_labelled_rows {min_labelled_rows}: such windows decide nothing (too_few_labels); set "
        f"monitoring.label_window_days to {needed} or more, or lower monitoring.min_labelled_rows"
    )


def prediction_drift_noise(
    reference: Any, rows: int, level: float = DEFAULT_LEVEL, resamples: int = 200, seed: int = 0
) -> dict[str, Any]:
    """How far a day of ``rows`` predictions drawn from the reference itself lies from it, by the prediction drift
    score (Wasserstein distance normed by the reference's spread): the ``level`` quantile over seeded resamples.
    A score under this bound is what sampling alone produces at that day size (0.1 is noise at 150-200 rows)."""
    import numpy as np

    from mlops_provider.ml.drift_signals import normed_wasserstein

    ref = np.asarray(reference, dtype=float)
    if ref.size == 0 or rows < 1:
        raise ValueError(f"prediction drift noise needs reference predictions and rows >= 1 (got {ref.size}, {rows})")
    rng = np.random.default_rng(seed)
    scores = [normed_wasserstein(ref, rng.choice(ref, rows)) for _ in range(resamples)]
    return {"bound": float(np.quantile(scores, level)), "level": level, "rows": int(rows),
            "method": f"day-sized resamples of the reference ({resamples}, seed {seed})"}  # fmt: skip
