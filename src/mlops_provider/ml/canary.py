"""Canary analysis: the pure rules that compare a canary version with the baseline on live serving numbers.

The numbers are what every serving backend exports at ``/metrics`` (Prometheus text format,
:mod:`mlops_provider.runtime.backend`): request counters by status class, a latency histogram and a prediction
histogram. A canary step reads them twice (when the step starts and when its baking period ends) and judges the
*deltas*, so a backend's whole life does not dilute the window. Nothing here does I/O.

A :data:`Snapshot` is plain JSON (it crosses a deferral)::

    {"requests": {"2xx": n, "4xx": n, "5xx": n},
     "latency": [[le, cumulative count], ...],      # seconds, ascending, last le is "+Inf" (inf)
     "predictions": [[le, cumulative count], ...]}

Alarms (each with its numbers in the verdict):

* ``error_rate``: the canary's 5xx share of its requests (4xx are the client's fault and are counted apart: a
  malformed request never fails a canary) exceeds the baseline's by more than ``max_error_rate_increase``.
* ``latency_p95``: the canary's p95 latency exceeds the baseline's by the factor ``max_latency_ratio`` and by at
  least ``min_latency_increase_ms`` (histogram buckets make sub-millisecond differences noise).
* ``prediction_shift``: the Jensen-Shannon distance (base 2, 0..1) between the two prediction histograms exceeds
  ``max_prediction_shift`` (a model answering a constant, or the inverted one).
* ``canary_unreachable``: the canary's metrics could not be read (its backend died).
* ``insufficient_traffic``: the window ended with fewer than ``min_requests`` judged requests on either side.

Too little traffic is the spec's choice: ``min_requests`` > 0 (the default, 200) fails a step whose window ends
with fewer judged requests on either side (``insufficient_traffic``, a rollback: no evidence is no pass);
``min_requests: 0`` judges whatever traffic came, once, when the baking period is over (no early alarm on a
handful of requests), and passes a step in which a side got none, with the reason ``no traffic to judge`` in the
verdict (a model nobody calls yet, or a demo without clients). Small samples make the prediction distributions
differ by chance (see :class:`Thresholds`): raise ``max_prediction_shift`` with it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

Snapshot = dict[str, Any]

#: Status classes a backend counts; ``4xx`` is bad input (the client's), never a canary's failure.
STATUS_CLASSES = ("2xx", "4xx", "5xx")
#: The metric names the backends export (runtime/backend.py registers them; the parser reads them).
REQUESTS_METRIC = "mlops_serving_requests"
LATENCY_METRIC = "mlops_serving_request_duration_seconds"
PREDICTION_METRIC = "mlops_serving_prediction"
INFO_METRIC = "mlops_serving_model_info"
WEIGHT_METRIC = "mlops_serving_traffic_weight"
DEFAULT_STEPS = (5, 25, 100)


def rollout_steps(steps: Iterable[Any]) -> list[int]:
    """The traffic percentages of a rollout, checked: whole numbers, strictly increasing, within 1..100, the last
    100 (the canary ends serving everything). A ValueError names the bad step."""
    checked: list[int] = []
    for step in steps:
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 100:
            raise ValueError(f"rollout steps must be whole percentages in 1..100, got {step!r}")
        if checked and step <= checked[-1]:
            raise ValueError(f"rollout steps must increase, got {step} after {checked[-1]}")
        checked.append(step)
    if not checked or checked[-1] != 100:
        raise ValueError(f"the last rollout step must be 100 (the canary serves everything), got {checked}")
    return checked


def step_weights(canary: str, baseline: str, percent: int) -> dict[str, int]:
    """Proxy weights of one step: the canary's percentage, the rest to the baseline (a weight-0 side is kept so the
    record names both)."""
    return {baseline: 100 - percent, canary: percent}


def resume_index(steps: Sequence[int], canary_weight: int) -> int:
    """The step a rollout (re)starts at when the canary already has ``canary_weight`` percent: the step of that
    weight when it is one (a cleared task judges the step it was in again, without shifting twice), else the
    first step above it (never less traffic on the canary than now), else the first."""
    for index, percent in enumerate(steps):
        if percent >= canary_weight:
            return index
    return len(steps) - 1


@dataclass(frozen=True)
class Thresholds:
    """When a canary step fails (see the module's docstring); every field is an argument of the rollout operator.

    :param max_error_rate_increase: largest allowed canary 5xx rate above the baseline's (0.01: one point).
    :param max_latency_ratio: largest allowed canary p95 / baseline p95.
    :param min_latency_increase_ms: a p95 increase below this many milliseconds never alarms.
    :param max_prediction_shift: largest allowed Jensen-Shannon distance between the prediction histograms.
    :param min_requests: judged requests (non-4xx) each side needs in the window before a verdict. It goes with
        ``max_prediction_shift``: two samples of one distribution over k buckets are apart by a Jensen-Shannon
        distance of about ``sqrt((k - 1) / (5.5 n))`` by chance (n: the smaller side): ~0.1 at 200 requests and
        10 buckets, ~0.25 at 50 (measured: 0.28 between two equal models at 48/69 requests).
    """

    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 1.5
    min_latency_increase_ms: float = 5.0
    max_prediction_shift: float = 0.3
    min_requests: int = 200

    def __post_init__(self) -> None:
        for name in ("max_error_rate_increase", "max_latency_ratio", "min_latency_increase_ms", "max_prediction_shift"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
                raise ValueError(f"canary threshold {name} must be a number >= 0, got {value!r}")
        if isinstance(self.min_requests, bool) or not isinstance(self.min_requests, int) or self.min_requests < 0:
            raise ValueError(f"canary threshold min_requests must be a whole number >= 0, got {self.min_requests!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> Thresholds:
        """From a mapping (the operator's arguments or the spec); unknown keys are an error naming them."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown canary threshold(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading the backends' /metrics ------------------------------------------------------------------------------


def snapshot_from_text(text: str) -> Snapshot:
    """The counters and histograms of one backend's ``/metrics`` text (Prometheus exposition format), summed over
    label sets other than the status class and bucket bound."""
    from prometheus_client.parser import text_string_to_metric_families

    requests = dict.fromkeys(STATUS_CLASSES, 0.0)
    latency: dict[float, float] = {}
    predictions: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS_METRIC + "_total":
                status = sample.labels.get("status_class", "")
                requests[status] = requests.get(status, 0.0) + sample.value
            elif sample.name == LATENCY_METRIC + "_bucket":
                le = float(sample.labels["le"])
                latency[le] = latency.get(le, 0.0) + sample.value
            elif sample.name == PREDICTION_METRIC + "_bucket":
                le = float(sample.labels["le"])
                predictions[le] = predictions.get(le, 0.0) + sample.value
    return {
        "requests": requests,
        "latency": [[le, latency[le]] for le in sorted(latency)],
        "predictions": [[le, predictions[le]] for le in sorted(predictions)],
    }


def _bound(le: float | str | None) -> float:
    """A bucket's upper bound; the +Inf bound may come back as null (Airflow's serialization of a trigger's
    kwargs stores a non-finite float so) or as Prometheus' text ``+Inf``."""
    return math.inf if le is None else float(le)


def normalised(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` with every bucket bound a float (+Inf restored): a snapshot read back from a trigger's kwargs."""
    return {
        "requests": dict(snapshot.get("requests", {})),
        "latency": [[_bound(le), count] for le, count in snapshot.get("latency", [])],
        "predictions": [[_bound(le), count] for le, count in snapshot.get("predictions", [])],
    }


def _bucket_delta(before: Sequence[Sequence[float]], after: Sequence[Sequence[float]]) -> list[list[float]]:
    earlier = {float(le): count for le, count in before}
    return [[float(le), count - earlier.get(float(le), 0.0)] for le, count in after]


def restarted(before: Snapshot, after: Snapshot) -> bool:
    """A counter went down between the two reads: the backend restarted (its counters start at zero)."""
    return any(after["requests"].get(k, 0.0) < before["requests"].get(k, 0.0) for k in after["requests"])


def delta(before: Snapshot | None, after: Snapshot) -> Snapshot:
    """What happened between two snapshots of one backend. A counter that went down means the backend restarted
    (its counters start at zero): the later snapshot is then the whole window. Either may have been read back from
    a trigger's kwargs (:func:`normalised`)."""
    after = normalised(after)
    if before is None:
        return after
    before = normalised(before)
    if restarted(before, after):
        return after
    return {
        "requests": {k: v - before["requests"].get(k, 0.0) for k, v in after["requests"].items()},
        "latency": _bucket_delta(before.get("latency", []), after.get("latency", [])),
        "predictions": _bucket_delta(before.get("predictions", []), after.get("predictions", [])),
    }


# -- the numbers of a window -------------------------------------------------------------------------------------


def judged_requests(window: Snapshot) -> float:
    """Requests that count for the verdict: all but the 4xx (bad input)."""
    return sum(v for k, v in window["requests"].items() if k != "4xx")


def error_rate(window: Snapshot) -> float | None:
    """5xx share of the judged requests; None when there were none."""
    judged = judged_requests(window)
    return window["requests"].get("5xx", 0.0) / judged if judged else None


def histogram_quantile(q: float, buckets: Sequence[Sequence[float]]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the bucket holding the q-quantile of
    cumulative ``[le, count]`` buckets (ascending, last ``+Inf``); None for an empty histogram. A quantile in the
    ``+Inf`` bucket is the highest finite bound."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    previous_le, previous_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return previous_le
            if count == previous_count:
                return le
            return previous_le + (le - previous_le) * (rank - previous_count) / (count - previous_count)
        previous_le, previous_count = le, count
    return previous_le


def bucket_shares(buckets: Sequence[Sequence[float]]) -> list[float]:
    """Per-bucket shares of cumulative buckets (empty: all zeros)."""
    counts = []
    previous = 0.0
    for _, cumulative in buckets:
        counts.append(max(cumulative - previous, 0.0))
        previous = cumulative
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def jensen_shannon_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, 0 = same distribution, 1 = disjoint) of two discrete distributions."""
    if len(p) != len(q):
        raise ValueError(f"distributions over different buckets ({len(p)} vs {len(q)})")
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(x: Sequence[float]) -> float:
        return sum(a * math.log2(a / b) for a, b in zip(x, m, strict=True) if a > 0)

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def window_numbers(window: Snapshot) -> dict[str, Any]:
    """The judged numbers of one side's window (JSON, for the verdict record)."""
    p95 = histogram_quantile(0.95, window.get("latency", []))
    return {
        "requests": {k: int(v) for k, v in window["requests"].items()},
        "judged_requests": int(judged_requests(window)),
        "error_rate": error_rate(window),
        "p95_ms": None if p95 is None else round(p95 * 1000, 3),
        "prediction_shares": [round(s, 4) for s in bucket_shares(window.get("predictions", []))],
    }


class Verdict(NamedTuple):
    """One analysis: ``passed`` (False with ``alarm``), ``final`` (a verdict to act on now: enough traffic, or an
    alarm that fired early), the numbers of both sides and the thresholds."""

    passed: bool
    final: bool
    alarm: str | None
    reason: str
    canary: dict[str, Any]
    baseline: dict[str, Any]
    prediction_shift: float | None
    thresholds: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._asdict())  # as dataclasses.asdict: nested values copied


def analyse(canary: Snapshot | None, baseline: Snapshot, thresholds: Thresholds, *, window_over: bool) -> Verdict:
    """Judge a step's windows (deltas). ``canary`` None: its metrics could not be read. Before the window is over
    an alarm with enough canary traffic is final at once (a fast rollback); a pass waits for the window's end."""
    limits = thresholds.as_dict()
    base = window_numbers(baseline)
    if canary is None:
        return Verdict(False, True, "canary_unreachable", "the canary's /metrics could not be read (backend down)",
                       {}, base, None, limits)  # fmt: skip
    numbers = window_numbers(canary)
    shift = None
    if numbers["judged_requests"] and base["judged_requests"]:
        shift = round(jensen_shannon_distance(numbers["prediction_shares"], base["prediction_shares"]), 4)
    enough = (
        numbers["judged_requests"] >= thresholds.min_requests and base["judged_requests"] >= thresholds.min_requests
    )

    def verdict(passed: bool, final: bool, alarm: str | None, reason: str) -> Verdict:
        return Verdict(passed, final, alarm, reason, numbers, base, shift, limits)

    if not thresholds.min_requests and not window_over:  # no minimum: nothing is trusted before the window's end
        return verdict(True, False, None, "baking (min_requests 0: judged when the baking period is over)")
    if enough and not (numbers["judged_requests"] and base["judged_requests"]):  # min_requests 0, a side idle
        return verdict(True, True, None,
                       f"no traffic to judge (canary {numbers['judged_requests']}, baseline "
                       f"{base['judged_requests']} judged requests; min_requests is 0): passed")  # fmt: skip
    if enough:
        base_rate = base["error_rate"] or 0.0
        if numbers["error_rate"] - base_rate > thresholds.max_error_rate_increase:
            return verdict(False, True, "error_rate",
                           f"canary 5xx rate {numbers['error_rate']:.4f} > baseline {base_rate:.4f} + "
                           f"{thresholds.max_error_rate_increase}")  # fmt: skip
        if numbers["p95_ms"] is not None and base["p95_ms"] is not None:
            increase = numbers["p95_ms"] - base["p95_ms"]
            ratio = numbers["p95_ms"] / base["p95_ms"] if base["p95_ms"] > 0 else math.inf
            if ratio > thresholds.max_latency_ratio and increase >= thresholds.min_latency_increase_ms:
                return verdict(False, True, "latency_p95",
                               f"canary p95 {numbers['p95_ms']:.1f} ms > {thresholds.max_latency_ratio} x baseline "
                               f"{base['p95_ms']:.1f} ms")  # fmt: skip
        if shift is not None and shift > thresholds.max_prediction_shift:
            return verdict(False, True, "prediction_shift",
                           f"prediction distributions differ: Jensen-Shannon distance {shift} > "
                           f"{thresholds.max_prediction_shift}")  # fmt: skip
        if window_over:
            return verdict(True, True, None, "no alarm over the baking period")
        return verdict(True, False, None, "no alarm yet; baking")
    if window_over:
        return verdict(False, True, "insufficient_traffic",
                       f"fewer than {thresholds.min_requests} judged requests in the window (canary "
                       f"{numbers['judged_requests']}, baseline {base['judged_requests']})")  # fmt: skip
    return verdict(True, False, None, "waiting for traffic")
