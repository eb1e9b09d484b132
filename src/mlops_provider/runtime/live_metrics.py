"""Live operational numbers of an endpoint per version: request rate, error rate, latency, weight, over recent windows.

Two sources, the same numbers:

* **embedded** (no extra server): the backends' ``/metrics`` read directly. Each read is kept (a bounded history,
  ``<endpoint state>/scrapes.json``), and a window's numbers are the counter and histogram deltas between now and
  the oldest read inside the window (:func:`window_from_history`). Before a second read exists, a window is the
  backend's whole life (``since_start``).
* **Prometheus** (``MLOPS_PROMETHEUS_URL``): the PromQL of :data:`QUERIES` over HTTP (``/api/v1/query``); the Grafana
  dashboard (``include/grafana``) draws the same expressions.

Error rate is the 5xx share of the judged requests (4xx, bad input, is the client's and counted apart), as in the
canary analysis (:mod:`mlops_provider.ml.canary`).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from mlops_provider.ml.canary import (
    INFO_METRIC,
    LATENCY_METRIC,
    PREDICTION_METRIC,
    REQUESTS_METRIC,
    WEIGHT_METRIC,
    delta,
    error_rate,
    histogram_quantile,
    restarted,
)

PROMETHEUS_ENV = "MLOPS_PROMETHEUS_URL"
#: The windows the health page shows (seconds).
WINDOWS = (60, 300)
#: Reads kept per version in the embedded history.
HISTORY = 120

# -- PromQL: one definition for the health page, the dashboard and the tests --------------------------------------


def _sel(model: str, extra: str = "") -> str:
    return "{" + f'model="{model}"' + (f",{extra}" if extra else "") + "}"


FIVE_XX = 'status_class="5xx"'
JUDGED = 'status_class!="4xx"'
FOUR_XX = 'status_class="4xx"'
PROXY = 'component="proxy"'


def query_request_rate(model: str, window: str) -> str:
    """Requests per second answered by each version (every status class)."""
    return f"sum by (version) (rate({REQUESTS_METRIC}_total{_sel(model)}[{window}]))"


def query_error_rate(model: str, window: str) -> str:
    """Each version's 5xx share of its judged (non-4xx) requests."""
    errors = f"sum by (version) (rate({REQUESTS_METRIC}_total{_sel(model, FIVE_XX)}[{window}]))"
    judged = f"sum by (version) (rate({REQUESTS_METRIC}_total{_sel(model, JUDGED)}[{window}]))"
    return f"{errors} / {judged}"


def query_bad_input_rate(model: str, window: str) -> str:
    """4xx (bad input) per second by version."""
    return f"sum by (version) (rate({REQUESTS_METRIC}_total{_sel(model, FOUR_XX)}[{window}]))"


def query_latency(model: str, window: str, quantile: float) -> str:
    """A latency quantile (seconds) per version from the backends' histogram."""
    buckets = f"rate({LATENCY_METRIC}_bucket{_sel(model)}[{window}])"
    return f"histogram_quantile({quantile:g}, sum by (version, le) ({buckets}))"


def query_weight(model: str) -> str:
    """The percent of the traffic the deployment record gives each version."""
    return f"max by (version) ({WEIGHT_METRIC}{_sel(model)})"


def query_traffic_share(model: str, window: str) -> str:
    """The measured percent of the traffic each version answered."""
    total = f"sum(rate({REQUESTS_METRIC}_total{_sel(model)}[{window}]))"
    return f"100 * {query_request_rate(model, window)} / ignoring(version) group_left {total}"


def query_predictions(model: str, window: str) -> str:
    """Predictions per bucket (``le``) and version over the window (the prediction distribution)."""
    return f"sum by (version, le) (increase({PREDICTION_METRIC}_bucket{_sel(model)}[{window}]))"


def query_proxy_rate(model: str, window: str) -> str:
    """Requests per second through the endpoint's Caddy, by status code."""
    return f"sum by (code) (rate(caddy_http_request_duration_seconds_count{_sel(model, PROXY)}[{window}]))"


def query_proxy_latency(model: str, window: str, quantile: float) -> str:
    """A latency quantile (seconds) of the endpoint as Caddy measured it (proxy + backend)."""
    buckets = f"rate(caddy_http_request_duration_seconds_bucket{_sel(model, PROXY)}[{window}])"
    return f"histogram_quantile({quantile:g}, sum by (le) ({buckets}))"


def query_upstreams_healthy(model: str) -> str:
    """Caddy's view of each upstream's health (1 healthy)."""
    return f"max by (upstream) (caddy_reverse_proxy_upstreams_healthy{_sel(model, PROXY)})"


def query_versions() -> str:
    """The model/version pairs that serve (the dashboard's ``model`` variable reads its label values)."""
    return INFO_METRIC


# -- reading Prometheus -------------------------------------------------------------------------------------------


def prometheus_query(base_url: str, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """An instant query's vector: ``[{"metric": {labels}, "value": float}]``. A ValueError carries Prometheus' error
    (a query that does not parse), an OSError an unreachable server."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        raise ValueError(f"Prometheus refused {promql!r}: {body.get('error', exc)}") from exc
    if body.get("status") != "success":
        raise ValueError(f"Prometheus refused {promql!r}: {body.get('error')}")
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        return [{"metric": {}, "value": float(result[1])}]
    return [{"metric": r["metric"], "value": float(r["value"][1])} for r in result]


def _by_version(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for row in rows:
        value = row["value"]
        out[str(row["metric"].get("version"))] = None if value != value else value  # NaN: no traffic
    return out


def prometheus_windows(base_url: str, model: str, windows: tuple[int, ...] = WINDOWS) -> dict[str, Any]:
    """Per version and window, from Prometheus: ``{"weights": {v: %}, "windows": {"60s": {v: numbers}}}``."""
    weights = _by_version(prometheus_query(base_url, query_weight(model)))
    out: dict[str, Any] = {"source": "prometheus", "weights": weights, "windows": {}}
    for seconds in windows:
        window = f"{seconds}s"
        rate = _by_version(prometheus_query(base_url, query_request_rate(model, window)))
        errors = _by_version(prometheus_query(base_url, query_error_rate(model, window)))
        bad = _by_version(prometheus_query(base_url, query_bad_input_rate(model, window)))
        p95 = _by_version(prometheus_query(base_url, query_latency(model, window, 0.95)))
        versions = sorted(set(rate) | set(weights), key=lambda v: (len(v), v))
        out["windows"][window] = {
            v: {"rate": rate.get(v), "error_rate": errors.get(v), "bad_input_rate": bad.get(v),
                "p95_ms": None if p95.get(v) is None else round(p95[v] * 1000, 3)}  # type: ignore[operator]
            for v in versions
        }  # fmt: skip
    return out


# -- the embedded way: the backends' /metrics and a history of reads ------------------------------------------------


def window_numbers(before: dict[str, Any] | None, after: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """Rate, error rate, 4xx rate and p95 between two reads of one backend (``before`` None: its whole life, no
    rate). ``seconds``: the time between the reads."""
    window = delta(before, after)
    total = sum(window["requests"].values())
    p95 = histogram_quantile(0.95, window["latency"])
    rate = total / seconds if seconds and before is not None and not restarted(before, after) else None
    bad = window["requests"].get("4xx", 0.0)
    return {
        "requests": int(total),
        "rate": None if rate is None else round(rate, 3),
        "error_rate": error_rate(window),
        "bad_input_rate": None if rate is None or not seconds else round(bad / seconds, 3),
        "p95_ms": None if p95 is None else round(p95 * 1000, 3),
    }


def window_from_history(history: list[dict[str, Any]], now: float, seconds: int) -> dict[str, Any] | None:
    """The oldest read of ``history`` (``[{"at": epoch, "snapshot": ...}]``, oldest first) at most ``seconds`` before
    ``now`` and older than ``now`` itself; None when there is none."""
    for entry in history:
        if now - seconds <= entry["at"] < now:
            return entry
    return None


def embedded_windows(
    record: dict[str, Any],
    history_file: Path,
    windows: tuple[int, ...] = WINDOWS,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Per version and window, from the backends' ``/metrics`` and the kept reads (appended to ``history_file``)."""
    from mlops_provider.runtime.backend import scrape
    from mlops_provider.runtime.metrics_targets import traffic_percent, write_json

    try:
        kept: dict[str, list[dict[str, Any]]] = json.loads(history_file.read_text())
    except (OSError, ValueError):
        kept = {}
    now = time.time()
    out: dict[str, Any] = {"source": "backends", "weights": weights or traffic_percent(record.get("weights", {})),
                           "windows": {f"{s}s": {} for s in windows}, "unreachable": []}  # fmt: skip
    for version in sorted(record.get("backends", {}), key=lambda v: (len(v), v)):
        port = record["backends"][version]["port"]
        snapshot = scrape(f"http://127.0.0.1:{port}")
        history = [e for e in kept.get(version, []) if e.get("port") == port]
        if snapshot is None:
            out["unreachable"].append(version)
            continue
        for seconds in windows:
            before = window_from_history(history, now, seconds)
            earlier = before["snapshot"] if before else None
            numbers = window_numbers(earlier, snapshot, now - before["at"] if before else None)
            numbers["since_start"] = before is None
            out["windows"][f"{seconds}s"][version] = numbers
        kept[version] = [*history, {"at": now, "port": port, "snapshot": snapshot}][-HISTORY:]
    kept = {v: h for v, h in kept.items() if v in record.get("backends", {})}
    write_json(history_file, kept)
    return out


def live(record: dict[str, Any] | None, history_file: Path, prometheus_url: str | None = None) -> dict[str, Any] | None:
    """The live numbers of an endpoint: from Prometheus when ``prometheus_url`` is given (falling back to the
    backends, with the error, when it does not answer), else from the backends. None without a record."""
    if not record or not record.get("backends"):
        return None
    base = {"port": record.get("port"), "versions": sorted(record["backends"], key=lambda v: (len(v), v)),
            "events": record.get("events", [])[-8:]}  # fmt: skip
    if prometheus_url:
        try:
            return {
                **base,
                **prometheus_windows(prometheus_url, str(record["model_name"])),
                "prometheus_url": prometheus_url,
            }
        except (OSError, ValueError, KeyError) as exc:
            return {**base, **embedded_windows(record, history_file), "prometheus_error": str(exc)[:300]}
    return {**base, **embedded_windows(record, history_file)}
