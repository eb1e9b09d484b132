"""Append-only evidence: every attempt of a check writes its own record beside the earlier ones.

A re-run (a cleared task, a retry) never overwrites what an earlier attempt wrote, so a decision made on it (a
retraining, a promotion) can always be traced to the record it cited. Records of one subject (a day of a dataset,
a model version) live in one folder, one file per attempt; the first one is the subject's record of decision,
later ones are re-checks. Imports nothing heavy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.utils.storage import stored, write_text

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath


def attempt_key(context: Context) -> str:
    """``<hash of the run id>-try<N>``: one per task try, safe in file names (no ``:`` or ``+``)."""
    run_key = hashlib.sha1(str(context["run_id"]).encode()).hexdigest()[:10]
    return f"{run_key}-try{context['ti'].try_number}"


def now_iso() -> str:
    """The current time (UTC, seconds) as recorded in evidence."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def attempts(folder: Path | ObjectStoragePath) -> list[dict[str, Any]]:
    """The JSON records in ``folder``, oldest first (by their ``recorded_at``, then file name)."""
    records = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return sorted(records, key=lambda r: (str(r.get("recorded_at", "")), str(r.get("attempt", ""))))


def first_attempt(folder: Path | ObjectStoragePath, *, other_than: str | None = None) -> dict[str, Any] | None:
    """The subject's record of decision: the oldest record not written by attempt ``other_than``."""
    return next((r for r in attempts(folder) if r.get("attempt") != other_than), None)


def write_record(folder: Path | ObjectStoragePath, attempt: str, record: dict[str, Any]) -> ObjectStoragePath:
    """Write ``record`` as ``<folder>/<attempt>.json`` (whole or not at all, on the local disk or object storage:
    :mod:`mlops_provider.utils.storage`),
    stamped with ``attempt`` and ``recorded_at``; returns the path. A record of the
    same attempt (the same task try running again) is replaced; nothing else is."""
    record.setdefault("attempt", attempt)
    record.setdefault("recorded_at", now_iso())
    return write_text(stored(folder) / f"{attempt}.json", json.dumps(record, indent=2, default=str))
