"""Hyperparameter tuning (spec ``training.tuning``): the search space and budget, checked against the
hyperparameter file, and the rules the tuner follows. No Optuna here: :mod:`mlops_provider.runtime.tuner` runs the
study with these rules.

- The search space names hyperparameters of the hyperparameter file; each is a range (``low``/``high``, ``log``,
  ``step``) of the file's type within the file's ``min``/``max``, or a list of ``choices`` the file allows. An
  unknown name, an empty range or a value the file refuses is an error naming the key.
- The trials never see the gate's holdout: they train on the training rows less a validation part carved from them
  (:func:`validation_split`) and are scored on that part.
- The budget counts finished trials (complete or pruned) and the time they took, across task retries: a retry
  resumes the study and runs only what is left (:func:`remaining_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_provider.ml.split import HoldoutSplit, OutOfTimeSplit, Split

#: Trigger reasons a training may tune for (``reproduce`` never tunes: it replays the recorded parameters).
TUNABLE_REASONS = ("schedule", "asset", "bootstrap", "drift", "performance", "prediction_drift", "manual")
DEFAULT_ON = ("drift", "schedule", "manual")
DIRECTIONS = ("maximize", "minimize")
PRUNERS = ("none", "median")
#: Environment variable the tuner sets for a trial's entrypoint: a JSON-lines file to append ``{"step", "value"}``
#: to while training (the metric on the ``--holdout`` rows so far); the median pruner reads it.
REPORT_ENV = "MLOPS_TUNING_REPORT"
#: Environment variable naming the tuned metric for a trial's entrypoint (what to report).
METRIC_ENV = "MLOPS_TUNING_METRIC"
STUDY_ARTIFACT = "tuning/study.json"
#: Optuna trial states that count against ``n_trials`` and the time budget (a failed trial does not).
COUNTED = ("COMPLETE", "PRUNED")

_RANGE_KEYS = {"low", "high", "log", "step", "choices"}
_TUNING_KEYS = {"enabled", "on", "n_trials", "timeout_minutes", "metric", "direction", "pruning", "seed",
                "validation_fraction", "search_space"}  # fmt: skip


@dataclass(frozen=True)
class SearchRange:
    """One hyperparameter's search range: ``low``..``high`` (``log`` scale, ``step``) or ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    @classmethod
    def from_mapping(cls, name: str, value: Any, where: str) -> SearchRange:
        key = f"{where}.{name}"
        if not isinstance(value, Mapping):
            raise ValueError(f"{key}: a mapping of low/high (log, step) or choices, got {value!r}")
        unknown = sorted(set(value) - _RANGE_KEYS)
        if unknown:
            raise ValueError(f"{key}: unknown key(s) {unknown}; allowed: {', '.join(sorted(_RANGE_KEYS))}")
        choices = value.get("choices")
        if choices is not None:
            if set(value) - {"choices"}:
                raise ValueError(f"{key}: choices excludes low, high, log and step")
            if not isinstance(choices, list | tuple) or not choices:
                raise ValueError(f"{key}.choices: an empty list leaves nothing to search; list at least one value")
            return cls(name, choices=tuple(choices))
        if value.get("low") is None or value.get("high") is None:
            raise ValueError(f"{key}: needs low and high (or choices)")
        low, high, step = value["low"], value["high"], value.get("step")
        for part, number in (("low", low), ("high", high), ("step", step)):
            if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
                raise ValueError(f"{key}.{part}: a number, got {number!r}")
        if not low < high:
            raise ValueError(f"{key}: empty range: low {low!r} must be less than high {high!r}")
        log = bool(value.get("log", False))
        if log and low <= 0:
            raise ValueError(f"{key}: log scale needs low > 0, got {low!r}")
        if step is not None and (step <= 0 or log):
            raise ValueError(f"{key}.step: must be > 0 and cannot be combined with log, got {step!r}")
        return cls(name, low=low, high=high, log=log, step=step)

    def as_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out

    def problems(self, entry: Mapping[str, Any] | None, where: str) -> list[str]:
        """What the hyperparameter file's ``entry`` (type, min, max) refuses in this range."""
        key = f"{where}.{self.name}"
        if entry is None:
            return [f"{key}: unknown hyperparameter (not in the hyperparameter file)"]
        kind = entry.get("type")
        lowest, highest = entry.get("min"), entry.get("max")
        if self.choices is not None:
            from mlops_provider.ml.hyperparameters import resolve

            problems = []
            for choice in self.choices:
                try:
                    resolve({self.name: dict(entry)}, {self.name: choice})
                except ValueError as exc:
                    problems.append(f"{key}.choices: {choice!r} is refused: {str(exc).split(': ', 1)[-1]}")
            return problems
        if kind not in ("int", "float"):
            return [f"{key}: {self.name} is a {kind} hyperparameter: give choices, not a range"]
        assert self.low is not None and self.high is not None
        if kind == "int" and not all(isinstance(v, int) for v in (self.low, self.high, self.step or 1)):
            return [f"{key}: {self.name} is an int hyperparameter: low, high and step must be whole numbers"]
        outside = [
            f"{part} {v!r}"
            for part, v in (("low", self.low), ("high", self.high))
            if lowest is not None and v < lowest or highest is not None and v > highest
        ]
        if outside:
            return [f"{key}: {', '.join(outside)} outside the hyperparameter file's [{lowest}, {highest}]"]
        return []


@dataclass(frozen=True)
class Tuning:
    """The spec's ``training.tuning`` as the tuner reads it (``TrainModelOperator(tuning=...)``).

    :param search_space: hyperparameter name -> :class:`SearchRange`.
    :param on: trigger reasons that tune (others train with the fixed hyperparameters).
    :param n_trials: finished trials (complete or pruned) the study runs up to; ``None``: only the time budget.
    :param timeout_minutes: no trial starts after the study's trials have taken this long; ``None``: no limit.
    :param metric: the entrypoint's result metric the study optimises (scored on the validation rows).
    :param direction: ``maximize`` or ``minimize``.
    :param pruning: ``none`` or ``median`` (Optuna's MedianPruner on what the entrypoint reports while training).
    :param seed: the sampler's seed (TPE).
    :param validation_fraction: share of the training rows' keys the trials are scored on (key-hash splits).
    """

    search_space: dict[str, SearchRange]
    on: tuple[str, ...] = DEFAULT_ON
    n_trials: int | None = 20
    timeout_minutes: float | None = None
    metric: str = "roc_auc"
    direction: str = "maximize"
    pruning: str = "none"
    seed: int = 0
    validation_fraction: float = 0.2
    enabled: bool = field(default=True)

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any], where: str = "tuning") -> Tuning:
        """The tuning ``value`` describes; ValueError naming ``<where>.<key>`` for anything unusable."""
        unknown = sorted(set(value) - _TUNING_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(sorted(_TUNING_KEYS))}")
        space = value.get("search_space") or {}
        if not isinstance(space, Mapping) or not space:
            raise ValueError(f"{where}.search_space: name at least one hyperparameter to search")
        ranges = {str(n): SearchRange.from_mapping(str(n), r, f"{where}.search_space") for n, r in space.items()}
        on = tuple(value.get("on", DEFAULT_ON))
        bad = sorted(set(on) - set(TUNABLE_REASONS))
        if bad:
            raise ValueError(f"{where}.on: unknown trigger reason(s) {bad}; allowed: {', '.join(TUNABLE_REASONS)}")
        n_trials, timeout = value.get("n_trials", 20), value.get("timeout_minutes")
        if n_trials is None and timeout is None:
            raise ValueError(f"{where}: set n_trials or timeout_minutes (or both): a study needs a budget")
        if n_trials is not None and int(n_trials) < 1:
            raise ValueError(f"{where}.n_trials: must be >= 1, got {n_trials!r}")
        if timeout is not None and float(timeout) <= 0:
            raise ValueError(f"{where}.timeout_minutes: must be > 0, got {timeout!r}")
        direction, pruning = value.get("direction", "maximize"), value.get("pruning", "none")
        if direction not in DIRECTIONS:
            raise ValueError(f"{where}.direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
        if pruning not in PRUNERS:
            raise ValueError(f"{where}.pruning: {pruning!r} is not one of {', '.join(PRUNERS)}")
        fraction = float(value.get("validation_fraction", 0.2))
        if not 0 < fraction < 1:
            raise ValueError(f"{where}.validation_fraction: must be between 0 and 1 (exclusive), got {fraction!r}")
        if int(value.get("seed", 0)) < 0:
            raise ValueError(f"{where}.seed: must be >= 0, got {value.get('seed')!r}")
        return cls(
            search_space=ranges,
            on=on,
            n_trials=None if n_trials is None else int(n_trials),
            timeout_minutes=None if timeout is None else float(timeout),
            metric=str(value.get("metric", "roc_auc")),
            direction=direction,
            pruning=pruning,
            seed=int(value.get("seed", 0)),
            validation_fraction=fraction,
            enabled=bool(value.get("enabled", True)),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, and read back by :meth:`from_mapping`."""
        return {
            "enabled": self.enabled, "on": list(self.on), "n_trials": self.n_trials,
            "timeout_minutes": self.timeout_minutes, "metric": self.metric, "direction": self.direction,
            "pruning": self.pruning, "seed": self.seed, "validation_fraction": self.validation_fraction,
            "search_space": {n: r.as_dict() for n, r in self.search_space.items()},
        }  # fmt: skip

    def tunes(self, reason: str) -> bool:
        """Whether a training triggered for ``reason`` tunes."""
        return self.enabled and reason in self.on

    def problems(self, hyperparameters: Mapping[str, Mapping[str, Any]], where: str = "tuning") -> list[str]:
        """What the hyperparameter file (``{name: {type, min, max, default}}``) refuses in the search space."""
        return [
            line
            for name, search in self.search_space.items()
            for line in search.problems(hyperparameters.get(name), f"{where}.search_space")
        ]

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is better than ``b`` in this study's direction."""
        return a > b if self.direction == "maximize" else a < b


def validation_split(split: Split, fraction: float) -> Split:
    """How the trials carve their validation rows out of the training rows (never the gate's holdout), the same kind
    of split as the holdout's: a key hash with another seed (``fraction`` of the training rows' keys), or out of
    time, the last ``holdout_days`` days of the training rows."""
    if isinstance(split, OutOfTimeSplit):
        return OutOfTimeSplit(split.time_column, split.holdout_days)
    return HoldoutSplit(split.key, fraction, split.seed + 1)


def remaining_budget(
    tuning: Tuning, finished: int, spent_seconds: float
) -> tuple[int | None, float | None, str | None]:
    """``(trials left, seconds left, why none are left)`` after ``finished`` trials that took ``spent_seconds``
    (counted over every try of the task). ``None`` for a budget the spec does not set; the reason is None while
    trials remain."""
    trials = None if tuning.n_trials is None else max(0, tuning.n_trials - finished)
    seconds = None if tuning.timeout_minutes is None else max(0.0, tuning.timeout_minutes * 60 - spent_seconds)
    if trials == 0:
        return 0, seconds, f"{finished} of n_trials={tuning.n_trials} trials finished"
    if seconds is not None and seconds <= 0:
        return trials, 0.0, f"the trials took {spent_seconds:.0f} s of timeout_minutes={tuning.timeout_minutes:g}"
    return trials, seconds, None


def best_so_far(values: Iterable[float | None], direction: str) -> list[float | None]:
    """The best value after each trial (``None`` before the first value; a ``None`` value changes nothing)."""
    best: float | None = None
    out: list[float | None] = []
    for value in values:
        if value is not None and math.isfinite(value):
            if best is None or (value > best if direction == "maximize" else value < best):
                best = value
        out.append(best)
    return out
