"""Data capture of a live endpoint: the pure rules (no Airflow, no file system; pandas only inside functions).

A serving backend (:mod:`mlops_provider.runtime.backend`) captures what it answered: each request row's input
columns, the prediction it returned, the version that answered, a request id and the time. This module holds the
rules every side agrees on:

* the capture columns (:data:`CAPTURE_COLUMNS`, prefixed so they never collide with a feature);
* the request id of a row (:func:`row_ids`): the caller's key column when the spec names one and the request
  carries it, else the request's generated id (``<id>`` for a one-row request, ``<id>-<row>`` otherwise);
* sampling (:func:`sampled`): a row is kept when the hash of its request id falls under the fraction, so a re-sent
  request is sampled the same way and a client can tell which of its rows were captured;
* the names of capture files (:func:`capture_file_name`, :func:`is_capture_file`): a file is finished only under its
  final name; a file being written has a leading dot and a ``.tmp`` suffix (readers skip it);
* realised performance per version (:func:`realised_by_version`): late labels joined to captured predictions by
  request id, and the day's rows split by answering version (:func:`versions_of`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Columns a backend adds to the request's own columns in every captured row.
REQUEST_ID = "mlops_request_id"  # the row's request id (key column value, or generated)
REQUEST = "mlops_request"  # the request's generated id (the X-Request-Id header)
PREDICTION = "mlops_prediction"  # the value returned to the caller
VERSION = "mlops_version"  # the model version that answered
CAPTURED_AT = "mlops_captured_at"  # when the backend answered (UTC)
CAPTURE_COLUMNS = (REQUEST_ID, REQUEST, PREDICTION, VERSION, CAPTURED_AT)
#: Suffix of a finished capture file.
SUFFIX = ".parquet"
_NAME = re.compile(r"^\d{8}T\d{6}\d{6}Z-v[A-Za-z0-9_.-]+-p\d+-\d{6}\.parquet$")


@dataclass(frozen=True)
class CaptureSettings:
    """``serving.capture``: what a backend captures and how it writes.

    :param fraction: share of rows kept (by the hash of their request id); 0 turns capture off.
    :param flush_rows: a flush starts when this many rows wait.
    :param flush_seconds: ... or when the oldest waiting row has waited this long.
    :param buffer_rows: rows held in memory at most; a row arriving when the buffer is full is dropped and
        counted (a request is never delayed or failed by capture).
    :param retention_days: captured days older than this are removed by the retention task (0: kept forever).
    :param key_column: the caller's key column (the spec's ``dataset.key_column``): a row's request id.
    """

    fraction: float = 1.0
    flush_rows: int = 5_000
    flush_seconds: float = 10.0
    buffer_rows: int = 100_000
    retention_days: int = 30
    key_column: str | None = None

    def __post_init__(self) -> None:
        problems = check_settings(self)
        if problems:
            raise ValueError("serving.capture: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "flush_rows": self.flush_rows, "flush_seconds": self.flush_seconds,
                "buffer_rows": self.buffer_rows, "retention_days": self.retention_days,
                "key_column": self.key_column}  # fmt: skip

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> CaptureSettings:
        known = {k: v for k, v in (values or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def check_settings(settings: CaptureSettings) -> list[str]:
    """What is wrong with ``settings`` (each problem names its key)."""
    problems = []
    if not 0.0 <= float(settings.fraction) <= 1.0:
        problems.append(f"fraction must be in [0, 1], got {settings.fraction!r}")
    if int(settings.flush_rows) < 1:
        problems.append(f"flush_rows must be >= 1, got {settings.flush_rows!r}")
    if float(settings.flush_seconds) <= 0:
        problems.append(f"flush_seconds must be > 0, got {settings.flush_seconds!r}")
    if int(settings.buffer_rows) < int(settings.flush_rows):
        problems.append(f"buffer_rows ({settings.buffer_rows}) must be >= flush_rows ({settings.flush_rows})")
    if int(settings.retention_days) < 0:
        problems.append(f"retention_days must be >= 0 (0: keep forever), got {settings.retention_days!r}")
    return problems


def row_ids(request_id: str, n_rows: int, keys: Sequence[Any] | None = None) -> list[str]:
    """The request id of each of a request's ``n_rows`` rows: the key column's values (``keys``) when given, else
    ``request_id`` (one row) or ``<request_id>-<row>``."""
    if keys is not None:
        if len(keys) != n_rows:
            raise ValueError(f"{len(keys)} keys for {n_rows} rows")
        return [str(k) for k in keys]
    if n_rows == 1:
        return [request_id]
    return [f"{request_id}-{i}" for i in range(n_rows)]


def sampled(row_id: str, fraction: float) -> bool:
    """Whether the row with request id ``row_id`` is captured at ``fraction`` (a stable hash: the same id is
    always decided the same way)."""
    if fraction >= 1.0:
        return True
    if fraction <= 0.0:
        return False
    digest = hashlib.blake2b(row_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < fraction


def capture_file_name(first_at: dt.datetime, version: str, pid: int, sequence: int) -> str:
    """``<UTC time of the flush's first row, microseconds>Z-v<version>-p<pid>-<sequence>.parquet``: unique per
    backend process and flush, sorted by time."""
    stamp = first_at.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(version))
    return f"{stamp}Z-v{safe}-p{int(pid)}-{int(sequence) % 1_000_000:06d}{SUFFIX}"


def is_capture_file(name: str) -> bool:
    """A finished capture file (not one being written: those start with a dot and end with ``.tmp``)."""
    return not name.startswith(".") and name.endswith(SUFFIX)


def is_unfinished(name: str) -> bool:
    """A capture file a writer started and did not finish (a crash mid-flush leaves one)."""
    return name.startswith(".") and name.endswith(".tmp")


def day_of(at: dt.datetime) -> str:
    """The capture folder's day of a row answered at ``at`` (UTC date)."""
    return at.astimezone(dt.timezone.utc).date().isoformat()


def versions_of(frame: Any) -> dict[str, int]:
    """``{version: rows}`` of a day's captured rows, by version (sorted)."""
    counts = frame[VERSION].astype(str).value_counts()
    return {str(v): int(counts[v]) for v in sorted(counts.index, key=_version_key)}


def versions_of_counts(counts: dict[str, int]) -> dict[str, int]:
    """``{version: rows}`` counts sorted by version (numbers as numbers), zero counts left out."""
    return {str(v): int(counts[v]) for v in sorted(counts, key=_version_key) if int(counts[v])}


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)


def served_verdict(rows: int, min_rows: int) -> tuple[str, str | None]:
    """``("checked", None)`` when a day has at least ``min_rows`` captured rows, else
    ``("too_few_served_rows", why)``: such a day says nothing about drift (it is not "no drift")."""
    if rows >= min_rows:
        return "checked", None
    return "too_few_served_rows", (
        f"{rows} captured row(s), fewer than the {min_rows} the check needs: the day is not judged (too few served "
        "rows; not 'no drift')"
    )


def join_labels(captured: Any, labels: Any, key_column: str, label_column: str) -> Any:
    """Captured rows with their late label: ``captured`` joined to ``labels`` (rows with ``key_column`` and
    ``label_column``) on request id == key, inner (a captured row without a label is not scored; a labelled row
    nobody asked about is not either). A key captured twice (the same entity asked twice) is scored each time."""
    return join_label_lookup(captured, label_lookup(labels, key_column, label_column))


def label_lookup(labels: Any, key_column: str, label_column: str) -> Any:
    """The right side of :func:`join_labels`, built once: ``labels``' labelled rows as a frame of ``label_column``
    indexed by request id (the key as text, the last label of a key kept), so each part of a day is joined against
    the same hash of the keys. Raises ValueError naming the columns ``labels`` lacks."""
    if label_column not in labels.columns or key_column not in labels.columns:
        missing = [c for c in (key_column, label_column) if c not in labels.columns]
        raise ValueError(f"the labelled rows have no column {missing}")
    right = labels[[key_column, label_column]].dropna(subset=[label_column]).copy()
    right[key_column] = right[key_column].astype(str)
    right = right.drop_duplicates(subset=[key_column], keep="last")
    return right.set_index(key_column).rename_axis(REQUEST_ID)


def join_label_lookup(captured: Any, lookup: Any) -> Any:
    """``captured`` (any part of a day's captured rows: a file, a batch) joined to a :func:`label_lookup`: the
    columns request id, prediction, version and the label, in ``captured``'s row order (an inner join on request id;
    the lookup's keys are unique). Joining a day part by part and concatenating gives :func:`join_labels` of the
    whole day, row for row."""
    left = captured[[REQUEST_ID, PREDICTION, VERSION]].copy()
    left[REQUEST_ID] = left[REQUEST_ID].astype(str)
    left[VERSION] = left[VERSION].astype(str)
    positions = lookup.index.get_indexer(left[REQUEST_ID])  # the index's hash table is built once per lookup
    found = positions >= 0
    joined = left[found].reset_index(drop=True)
    for column in lookup.columns:
        joined[column] = lookup[column].take(positions[found]).reset_index(drop=True)
    return joined


def realised_by_version(
    joined: Any,
    label_column: str,
    positive_class: Any,
    metric: str,
    threshold: float,
    min_rows: int = 1,
) -> dict[str, dict[str, Any]]:
    """The metric each version realised on what it served: ``{version: {"rows", "value" (None when undefined or
    fewer than ``min_rows`` rows), "reason"}}``; ``joined`` is :func:`join_labels`'s output. The predictions scored
    are the values the backend returned, not a re-scoring."""
    import numpy as np

    from mlops_provider.ml.scoring import binary_labels, classification_metrics

    out: dict[str, dict[str, Any]] = {}
    for version in sorted(joined[VERSION].unique(), key=_version_key):
        rows = joined[joined[VERSION] == version]
        entry: dict[str, Any] = {"rows": int(len(rows)), "value": None, "reason": None}
        if len(rows) < min_rows:
            entry["reason"] = f"{len(rows)} labelled served row(s), fewer than {min_rows}"
        else:
            y = binary_labels(rows[label_column], positive_class)
            proba = np.asarray(rows[PREDICTION], dtype=float)
            metrics = classification_metrics(y, proba, threshold) if len(set(y.tolist())) > 1 else {}
            if metric in metrics:
                entry["value"] = float(metrics[metric])
                entry["positives"] = int(y.sum())
            else:
                entry["reason"] = f"{metric} is undefined on {len(rows)} rows of a single class"
        out[str(version)] = entry
    return out
