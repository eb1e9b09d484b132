"""Drift judged against learned per-column thresholds, combined by how far each column moved (pure functions).

A fixed per-column line (normed Wasserstein 0.1) calls an autocorrelated column "drifted" on every calm day: one day
of a slowly moving column is a narrow slice of a week. Here each column's day-vs-reference score is judged against
how far **calm days** usually lie from the same reference, learned from the reference's own days (as NannyML
learns bounds from chunks of its reference period):

1. **Calm scores** (:func:`leave_one_day_out`): each day of the reference window is scored against the rest of the
   window (the day left out, so it is as new to its reference as a monitored day is); days before the window, when
   asked, are scored against the whole reference (a day ``d`` days before the window is as far in time as a day
   ``d`` days after it).
2. **Thresholds** (:func:`learn_thresholds`): per column, ``max(mean + k * std, floor)`` of its calm scores (``std``
   with ``ddof=1``; ``floor``: the column's fixed line, so a learned bound is never more sensitive than today's),
   stored with the numbers it came from (days, mean, std, quantiles).
3. **Judge a day** (:func:`judge_columns`): per column the ratio ``score / threshold``, the **excess**
   ``max(0, ratio - 1)`` (0 while the column lies where calm days lie, 1 when it lies twice as far as its bound) and
   what of it **counts**: ``min(excess, EXCESS_CAP)`` (:func:`counted_excess`, cap 1).
4. **Combine** (:func:`learned_drift`): the importance-weighted sum of the counted excesses, between 0 and 1 like the
   share and the weighted drift. A column counts at most its importance, however far it moved: a column the model
   barely uses cannot decide alone (uncapped, a column holding 1% of the importance that moved 40 times its bound
   added 0.4, and seven weather columns holding 13% of a fraud model's importance called every ordinary January
   day drifted); a column holding 30% of the importance that lies twice its bound adds 0.3. The day drifted when
   the sum reaches the line (``monitoring.learned_drift_threshold``, 0.3 by default).

Scores from p-value tests (``ks``, ``chisquare``, ...) are turned into distances first (:func:`distance`:
``-log10 p``) so that larger always means further.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from mlops_provider.layout import LEARNED_DRIFT_K, LEARNED_DRIFT_LINE
from mlops_provider.ml.drift_signals import normed_wasserstein  # noqa: F401 (the suite calls it from here too)

#: Fewest calm scores a column's threshold is learned from (fewer: the column has no learned bound).
MIN_CALM_DAYS = 3
DEFAULT_K = LEARNED_DRIFT_K
DEFAULT_LINE = LEARNED_DRIFT_LINE
#: The most of its excess a column counts (1: a column lying twice its calm bound or further counts its whole
#: importance; the learned drift stays between 0 and 1).
EXCESS_CAP = 1.0

T = TypeVar("T")


def distance(method: str, score: float) -> float:
    """``score`` as a distance (larger = further): p-values (method names containing ``p_value``) become
    ``-log10 p`` (p = 0.05 -> 1.30); distances are returned as they are."""
    if "p_value" in method.lower():
        return -math.log10(max(float(score), 1e-300))
    return float(score)


def leave_one_day_out(
    days: Sequence[T],
    score: Callable[[list[T], T], Mapping[str, float]],
    earlier: Sequence[T] = (),
) -> dict[str, list[float]]:
    """Calm scores per column: each of ``days`` scored by ``score(the other days, that day)``, then each of
    ``earlier`` scored by ``score(all days, that day)``. ``score`` returns ``{column: score}`` (a column missing
    from one result is missing from that day only). Needs at least 2 days."""
    if len(days) < 2:
        raise ValueError(f"leave-one-day-out needs at least 2 reference days, got {len(days)}")
    calm: dict[str, list[float]] = {}
    pairs = [([d for j, d in enumerate(days) if j != i], day) for i, day in enumerate(days)]
    pairs += [(list(days), day) for day in earlier]
    for rest, day in pairs:
        for column, value in score(rest, day).items():
            calm.setdefault(column, []).append(float(value))
    return calm


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolation quantile of an ascending list (numpy's default)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def learn_thresholds(
    calm: Mapping[str, Sequence[float]],
    k: float = DEFAULT_K,
    floors: Mapping[str, float] | None = None,
    min_days: int = MIN_CALM_DAYS,
) -> dict[str, dict[str, Any]]:
    """Per column, the learned threshold and the numbers it came from: ``{"threshold", "bound"`` (mean + k*std),
    ``"floor", "rule", "n_days", "mean", "std", "quantiles" {"p50", "p90", "max"}, "scores"}``. A column with fewer
    than ``min_days`` finite calm scores gets ``{"threshold": None, "n_days", "reason"}``."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    learned: dict[str, dict[str, Any]] = {}
    for column, raw in calm.items():
        scores = sorted(float(s) for s in raw if math.isfinite(float(s)))
        if len(scores) < max(min_days, 2):
            learned[column] = {
                "threshold": None,
                "n_days": len(scores),
                "reason": f"{len(scores)} calm score(s); at least {max(min_days, 2)} are needed",
            }
            continue
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
        bound = mean + k * std
        floor = float((floors or {}).get(column, 0.0))
        learned[column] = {
            "threshold": max(bound, floor, 1e-12),
            "bound": bound,
            "floor": floor,
            "rule": f"max(mean + {k:g} * std, floor)",
            "n_days": len(scores),
            "mean": mean,
            "std": std,
            "quantiles": {"p50": _quantile(scores, 0.5), "p90": _quantile(scores, 0.9), "max": scores[-1]},
            "scores": scores,
        }
    return learned


def counted_excess(excess: float, cap: float = EXCESS_CAP) -> float:
    """What of a column's excess over its learned bound counts towards the learned drift: at most ``cap`` (so a
    column adds at most ``cap`` times its importance, however far it moved)."""
    if cap <= 0:
        raise ValueError(f"the excess cap must be > 0, got {cap}")
    return min(max(0.0, float(excess)), cap)


def judge_columns(scores: Mapping[str, float], thresholds: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """Per column with a learned threshold: ``{"score", "threshold", "ratio", "excess", "counted", "past"}``
    (``score`` a distance: see :func:`distance`; ``counted``: :func:`counted_excess`). Columns without a learned
    threshold are left out."""
    judged = {}
    for column, score in scores.items():
        threshold = (thresholds.get(column) or {}).get("threshold")
        if threshold is None:
            continue
        ratio = float(score) / float(threshold)
        excess = max(0.0, ratio - 1.0)
        judged[column] = {
            "score": float(score),
            "threshold": float(threshold),
            "ratio": ratio,
            "excess": excess,
            "counted": counted_excess(excess),
            "past": ratio > 1.0,
        }
    return judged


def uniform_weights(columns: Sequence[str]) -> dict[str, float]:
    """Equal weights summing to 1 (the champion logged no importances)."""
    return {c: 1.0 / len(columns) for c in columns} if columns else {}


def learned_drift(judged: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float]) -> float:
    """The importance-weighted sum of the columns' counted excesses over their learned thresholds (0 to 1 when the
    weights sum to 1)."""
    return float(sum(weights.get(name, 0.0) * counted_excess(column["excess"]) for name, column in judged.items()))


def decide_learned(value: float, line: float) -> bool:
    """The day drifted when the learned drift reaches the line."""
    return value >= line
