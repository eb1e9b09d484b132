"""Retention of heavy stored artefacts (pure rules: no Airflow, no file system).

Everything a run stores lives under the storage root (its folders: :mod:`mlops_provider.utils.records`). Most
of it is the history of the loop and is kept forever: verdict ledgers, drift and performance summaries,
retraining records, alarm reviews, notification markers, retention records. A few artefacts are heavy and only
needed for a while; they are the only ones retention removes, once their data day is older than the window:

* ``reports/drift/<model>/<day>/<attempt>.html``: Evidently drift reports (a few MB each); the JSON summary
  beside each stays;
* ``reports/gx/<dataset>/<day>/<attempt>/``: a validation attempt's full result and Data Docs site;
* ``quarantine/<dataset>/<day>/<attempt>/<file>``: a quarantined partition's data; its
  ``validation_result.json`` stays, so the day still reads as quarantined (the tag sensor and the training-set
  assembly look for the folder).
* ``captures/<model>/<day>/<file>``: what the model's live endpoint answered (data capture, issue 33), with a window
  of its own (``serving.capture.retention_days``); a file a writer left unfinished (``.<name>.tmp``) goes with it.

An artefact a **kept decision** cites is never removed, whatever its age: a retraining record or an alarm review
naming a drift report, a verdict ledger naming a file, and what the records they cite name in turn (a cited drift
summary keeps its report). Age is measured in data days, from the day in the artefact's path to the start of the
run's data interval, not from the wall clock, so a backfill or a re-run decides the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from mlops_provider.utils.records import FOLDERS, REPORTS, REPORTS_URL_PREFIX

#: Kinds of heavy artefacts, as named in retention records.
KINDS = ("drift_report", "validation", "quarantine", "capture")
#: The part of a quarantined attempt that stays: the evidence of why the day was quarantined.
QUARANTINE_KEEPS = "validation_result.json"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def cutoff_day(interval_start: dt.date, days: int) -> dt.date:
    """The oldest data day kept by a run whose data interval starts on ``interval_start``: artefacts of days
    before it may go."""
    return interval_start - dt.timedelta(days=days)


@dataclass(frozen=True)
class Artefact:
    """A heavy artefact: a file or a folder (``rel``, relative to the storage root, POSIX), its data day and the
    bytes of its files."""

    kind: str
    rel: str
    day: dt.date
    bytes: int


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def heavy_artefacts(listing: Mapping[str, int], *, model_name: str, dataset: str) -> list[Artefact]:
    """The heavy artefacts of ``model_name`` and ``dataset`` among ``listing`` (``{path relative to the storage
    root: bytes}`` of files), by path. Nothing else is ever one: ledgers, summaries and records are not, whatever
    their age, and neither is a path whose day is not a date (a partition named otherwise is left alone)."""
    found: dict[tuple[str, str], list[Any]] = {}
    drift = (*FOLDERS["drift"].split("/"), model_name)  # <model>/<day>/<attempt>.html
    gx = (*FOLDERS["validations"].split("/"), dataset)  # <dataset>/<day>/<attempt>/<files>
    quarantine = (*FOLDERS["quarantine"].split("/"), dataset)  # <dataset>/<day>/<attempt>/<file>
    captures = (*FOLDERS["captures"].split("/"), model_name)  # <model>/<day>/<file>
    for rel, size in listing.items():
        parts = tuple(rel.split("/"))
        key: tuple[str, str] | None = None
        day: dt.date | None = None
        d, g, q, c = len(drift), len(gx), len(quarantine), len(captures)
        if len(parts) == d + 2 and parts[:d] == drift and parts[-1].endswith(".html") and not parts[-1].startswith("."):
            day, key = _day(parts[d]), ("drift_report", rel)
        elif len(parts) >= g + 3 and parts[:g] == gx:
            day, key = _day(parts[g]), ("validation", "/".join(parts[: g + 2]))
        elif len(parts) == q + 3 and parts[:q] == quarantine and parts[-1] != QUARANTINE_KEEPS:
            day, key = _day(parts[q]), ("quarantine", rel)
        elif len(parts) == c + 2 and parts[:c] == captures:
            day, key = _day(parts[c]), ("capture", rel)
        if key is None or day is None:
            continue
        entry = found.setdefault(key, [day, 0])
        entry[1] += int(size)
    return sorted((Artefact(kind, rel, day, size) for (kind, rel), (day, size) in found.items()), key=lambda a: a.rel)


def relative_location(where: str, root: str) -> str | None:
    """The path relative to the storage root of a file a record names, or None when it is not under the root.

    ``where`` is a location as records write it (:func:`mlops_provider.utils.storage.location`: a local path, or a URL
    naming the connection, ``s3://conn@bucket/key``) or a report URL of the plugin (``/mlops/reports/...``);
    ``root`` is the root's path (a local folder, or ``bucket/prefix``). Only a whole value names a file: a sentence
    that mentions one does not."""
    root = root.rstrip("/")
    if where.startswith(f"{REPORTS_URL_PREFIX}/"):
        rest = unquote(where[len(REPORTS_URL_PREFIX) + 1 :].split("?", 1)[0].split("#", 1)[0])
        return _clean(f"{REPORTS}/{rest}")
    if "://" in where:
        scheme, path = where.split("://", 1)
        if not _SCHEME.match(scheme):
            return None  # a sentence that mentions a URL is not a location
        bucket, _, key = path.partition("/")
        path = f"{bucket.rpartition('@')[2]}/{key}"  # drop the connection id
    elif where.startswith("/"):
        path = os.path.normpath(where)
    else:
        return None
    if root and path.startswith(root + "/"):
        return _clean(path[len(root) + 1 :])
    return None


def _clean(rel: str) -> str | None:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value (keys excluded), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


def citations(record: Any, root: str) -> set[str]:
    """The paths (relative to the storage root) that a record names anywhere in its values."""
    cited = set()
    for text in strings(record):
        if "/" in text:
            rel = relative_location(text, root)
            if rel is not None:
                cited.add(rel)
    return cited


def is_cited(artefact: Artefact, cited: Iterable[str]) -> list[str]:
    """The cited paths that fall on ``artefact`` (the artefact itself, or a file in its folder)."""
    return sorted(c for c in cited if c == artefact.rel or c.startswith(artefact.rel + "/"))


def select(
    artefacts: Iterable[Artefact], cited: Mapping[str, Iterable[str]], cutoff: dt.date
) -> tuple[list[Artefact], list[tuple[Artefact, list[str]]]]:
    """What goes and what stays because it is cited: ``(remove, kept_cited)``.

    An artefact goes when its day is before ``cutoff`` and no kept decision cites it; ``cited`` maps a cited path
    to the records citing it. ``kept_cited`` pairs each artefact kept although old with the records citing it.
    Artefacts of ``cutoff`` or later are in neither list."""
    remove: list[Artefact] = []
    kept: list[tuple[Artefact, list[str]]] = []
    for artefact in artefacts:
        if artefact.day >= cutoff:
            continue
        hits = is_cited(artefact, cited)
        if hits:
            kept.append((artefact, sorted({r for hit in hits for r in cited[hit]})))
        else:
            remove.append(artefact)
    return remove, kept
