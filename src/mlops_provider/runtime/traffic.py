"""Replay rows to a model's endpoint at a given rate (``mlops replay``, the tests and the benchmark).

Bounded in count and time, loopback only (it is a load generator: it refuses any other host). Each request is
one batch of rows in MLflow's ``dataframe_split`` format, sent at its scheduled time (open loop: a slow answer
does not slow the schedule; ``concurrency`` threads send). Every answer is logged, one JSON line each:
``{"i", "sent_at", "status", "latency_ms", "version", "retried", "error", "predictions"}`` (``version``: the
backend's ``X-Model-Version`` header; ``status`` 0: no answer; ``predictions``: the answer's predictions, one per row
sent, None unless it answered 200), and with a ``key_column`` also ``"keys"``: the key of each row sent, so the
log joins with labels by key (the backend captures each row under its key: issue 33's realised metric by hand).

A request that got no response at all on a connection (reset, closed before a byte came back) is sent once more
on a new connection (``retried``: true). Predictions are idempotent, and that is what any HTTP client of a proxy
should do: the proxy (Caddy) resets the connections it had queued at the instant it loads a new configuration.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlops_provider.runtime.backend import VERSION_HEADER

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def loopback_url(url: str) -> tuple[str, int, str]:
    """(host, port, path) of ``url``; a ValueError unless it is http on a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise ValueError(f"replay sends to loopback http URLs only (127.0.0.1, localhost, ::1), got {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/invocations"
    return parts.hostname, parts.port or 80, path


def read_rows(path: str | Path, columns: Sequence[str] | None = None) -> tuple[list[str], list[list[Any]]]:
    """Columns and JSON-ready rows of a parquet or CSV file (nulls as None, timestamps as ISO strings)."""
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    else:
        raise ValueError(f"replay reads .parquet or .csv files, got {path.name!r}")
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{path.name} lacks the column(s) {missing}")
        frame = frame[list(columns)]
    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            frame[name] = frame[name].dt.strftime("%Y-%m-%dT%H:%M:%S")
    records = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    return [str(c) for c in records["columns"]], records["data"]


@dataclass
class ReplaySummary:
    """What a replay did: counts by status and by answering version, failures (no answer or 5xx), latencies."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """Requests the client saw fail: no answer, or a 5xx."""
        return sum(n for s, n in self.statuses.items() if s == 0 or s >= 500)

    def percentile(self, q: float) -> float | None:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "versions": dict(self.versions),
            "failed": self.failed,
            "retried": self.retried,
            "p50_ms": self.percentile(0.5),
            "p99_ms": self.percentile(0.99),
            "seconds": round(self.seconds, 3),
            "rate": round(self.sent / self.seconds, 1) if self.seconds else None,
        }


class _Client(threading.local):
    connection: http.client.HTTPConnection | None = None


def replay(
    url: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    rate: float,
    count: int,
    duration: float,
    batch: int = 1,
    concurrency: int = 8,
    log_file: str | Path | None = None,
    stop: threading.Event | None = None,
    key_column: str | None = None,
) -> ReplaySummary:
    """Send ``count`` requests at most, for ``duration`` seconds at most, at ``rate`` requests per second, each a
    batch of ``batch`` rows (cycling through ``rows``). Returns the summary; ``log_file`` gets one line per request.
    ``stop`` ends it early (a test's background traffic). ``key_column``: one of ``columns``, the rows' key,
    logged per request (``keys``)."""
    host, port, path = loopback_url(url)
    if rate <= 0 or count < 1 or duration <= 0 or batch < 1:
        raise ValueError(f"rate, count, duration and batch must be positive, got {rate}, {count}, {duration}, {batch}")
    if not rows:
        raise ValueError("no rows to replay")
    key_at = None
    if key_column is not None:
        if key_column not in columns:
            raise ValueError(f"key column {key_column!r} is not one of the columns sent {list(columns)}")
        key_at = list(columns).index(key_column)
    summary = ReplaySummary()
    lock = threading.Lock()
    local = _Client()
    log = open(log_file, "a") if log_file else None  # noqa: SIM115 - closed below

    def send(i: int) -> None:
        start = (i * batch) % len(rows)
        chunk = [list(rows[(start + k) % len(rows)]) for k in range(batch)]
        body = json.dumps({"dataframe_split": {"columns": list(columns), "data": chunk}})
        sent_at = time.time()
        status, version, error, retried, payload = 0, None, None, False, b""
        began = time.perf_counter()
        for attempt in range(2):
            if local.connection is None:
                local.connection = http.client.HTTPConnection(host, port, timeout=30)
            connection = local.connection
            try:
                connection.request("POST", path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                status, version = response.status, response.getheader(VERSION_HEADER)
                error = None
                break
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                connection.close()
                local.connection = None
                error = f"{type(exc).__name__}: {exc}"
                if attempt == 0:  # no response came back: send it once more on a new connection
                    retried = True
                    continue
        latency = (time.perf_counter() - began) * 1000
        with lock:
            summary.statuses[status] += 1
            if version:
                summary.versions[version] += 1
            summary.retried += retried
            if status:
                summary.latencies_ms.append(latency)
            if log is not None:
                line = {"i": i, "sent_at": round(sent_at, 4), "status": status, "latency_ms": round(latency, 3),
                        "version": version, "retried": retried, "error": error,
                        "predictions": _predictions(payload) if status == 200 else None}  # fmt: skip
                if key_at is not None:
                    line["keys"] = [row[key_at] for row in chunk]
                log.write(json.dumps(line) + "\n")

    began = time.perf_counter()
    interval = 1.0 / rate
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = []
            for i in _schedule(count, duration, interval, began, stop):
                futures.append(pool.submit(send, i))
                summary.sent += 1
            if stop is not None and stop.is_set():
                # stopped: requests still queued behind a slow endpoint are not sent (not counted as sent)
                summary.sent -= sum(future.cancel() for future in futures)
    finally:
        summary.seconds = time.perf_counter() - began
        if log is not None:
            log.close()
    return summary


def _predictions(payload: bytes) -> list[Any] | None:
    """The ``predictions`` of an answer's JSON body (None when it has none)."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return body.get("predictions") if isinstance(body, dict) else None


def _schedule(
    count: int, duration: float, interval: float, began: float, stop: threading.Event | None
) -> Iterator[int]:
    for i in range(count):
        due = began + i * interval
        if due - began >= duration or (stop is not None and stop.is_set()):
            return
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield i
