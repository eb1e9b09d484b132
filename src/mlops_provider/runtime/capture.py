"""Data capture in a serving backend, and reading it back.

:class:`CaptureWriter` lives in the backend process. A request hands it the rows it answered (:meth:`add`: an
append under a lock, nothing else); a background thread writes what waits to the storage root as parquet, one
folder per model and day (``captures/<model>/<day>/``, :func:`mlops_provider.utils.records.capture_folder`), one new
file per flush (:func:`mlops_provider.ml.capture.capture_file_name`), never rewritten. A file is written under a
temporary name and renamed when complete (object storage: one upload), so a reader never sees a torn file: a
writer killed mid-flush leaves only a dot-file readers skip (:func:`capture_files`).

Capture never blocks or fails a request: the buffer is bounded (``buffer_rows``); a row arriving when it is full is
dropped, and rows of a flush the store refused (a full disk, a store that fails) are dropped too; both are counted
(``mlops_capture_dropped_rows_total{reason}``, exported by the backend's ``/metrics``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_provider.ml.capture import (
    CAPTURED_AT,
    PREDICTION,
    REQUEST,
    REQUEST_ID,
    VERSION,
    CaptureSettings,
    capture_file_name,
    day_of,
    is_capture_file,
    versions_of_counts,
)

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)


@dataclass
class DaySample:
    """A day's captured rows, sampled (:func:`sample_day`).

    :param frame: the sampled rows.
    :param files: the locations of the capture files read (the lineage a record names).
    :param rows: the rows the day's files hold in all.
    :param versions: ``{version: rows}`` over all the day's rows.
    :param max_rows: the sample's bound; ``seed``: its seed.
    """

    frame: pd.DataFrame
    files: list[str]
    rows: int
    versions: dict[str, int]
    max_rows: int
    seed: int

    @property
    def sampled(self) -> bool:
        """Whether rows were left out (the day held more than ``max_rows``)."""
        return len(self.frame) < self.rows


class _Batch:
    """Waiting rows of one UTC day and one set of request columns, kept column-wise as they arrive (the flush
    converts each list to an arrow array in one call: no per-request loop while it holds the GIL)."""

    __slots__ = ("ids", "predictions", "requests", "rows", "times")

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.ids: list[str] = []
        self.requests: list[str] = []
        self.predictions: list[float] = []
        self.times: list[dt.datetime] = []


#: Reasons a captured row was dropped (the metric's ``reason`` label).
DROP_REASONS = ("buffer_full", "store_failed", "unmatched_output")


class CaptureWriter:
    """The capture buffer of one backend and its flushing thread.

    :param model_name: the model (its capture folder).
    :param version: the version this backend serves.
    :param settings: ``serving.capture``.
    :param on_drop: called with ``(reason, rows)`` when rows are dropped (the backend's counter).
    :param on_write: called with ``(rows, files)`` after a flush wrote them.
    :param folder_for: ``day -> stored folder`` (default: the storage root's capture folder of the model).
    :param kinds: ``{column: kind}`` of the model's signature (MLflow's type names: ``double``, ``long``,
        ``boolean``, ...): how a captured column is typed in the file (the type the model saw); columns without a
        kind get the type arrow infers from their values.
    """

    def __init__(
        self,
        model_name: str,
        version: str,
        settings: CaptureSettings,
        on_drop: Callable[[str, int], None] | None = None,
        on_write: Callable[[int, int], None] | None = None,
        folder_for: Callable[[str], Any] | None = None,
        kinds: dict[str, str] | None = None,
    ) -> None:
        self.model_name = model_name
        self.version = str(version)
        self.settings = settings
        self.on_drop = on_drop or (lambda reason, rows: None)
        self.on_write = on_write or (lambda rows, files: None)
        self.folder_for = folder_for or (lambda day: default_folder(model_name, day))
        self.kinds = dict(kinds or {})
        self._lock = threading.Lock()
        self._batches: dict[tuple[dt.date, tuple[str, ...]], _Batch] = {}
        self._rows = 0
        self._oldest: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sequence = 0
        self._thread: threading.Thread | None = None
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.written_rows = 0
        self.files = 0

    # -- the request side ----------------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._rows

    def add(self, frame: pd.DataFrame, predictions: list[float], ids: list[str], request: str) -> bool:
        """Hand over a request's answered rows (``frame``: its input; one prediction and request id per row).
        Never blocks on the store: False (rows dropped, counted) when the buffer cannot hold them."""
        return self.add_rows(list(frame.columns), frame.values.tolist(), predictions, ids, request)

    def add_rows(
        self,
        columns: list[str],
        rows: list[list[Any]],
        predictions: list[float],
        ids: list[str],
        request: str,
        at: dt.datetime | None = None,
    ) -> bool:
        """:meth:`add` with the request's rows as it parsed them (no frame is built on the request's path: the
        flush builds one table of all waiting rows, typed by ``kinds``); ``at``: when they were answered (UTC;
        default now)."""
        n = len(ids)
        if n == 0:
            return True
        at = at.astimezone(dt.timezone.utc) if at is not None else dt.datetime.now(dt.timezone.utc)
        key = (at.date(), tuple(columns))
        wake = False
        with self._lock:
            if self._rows + n > self.settings.buffer_rows:
                self.dropped["buffer_full"] += n
                full = True
            else:
                batch = self._batches.get(key)
                if batch is None:
                    batch = self._batches[key] = _Batch()
                batch.rows.extend(rows)
                batch.ids.extend(ids)
                batch.predictions.extend(predictions)
                batch.requests.extend([request] * n)
                batch.times.extend([at] * n)
                self._rows += n
                if self._oldest is None:
                    self._oldest = time.monotonic()
                full = False
                wake = self._rows >= self.settings.flush_rows
        if full:
            self.on_drop("buffer_full", n)
            return False
        if wake:
            self._wake.set()
        return True

    # -- the writer side ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load what a flush needs (the storage root, the parquet writer: seconds of imports that must not fall
        into the first flush, nor into the shutdown's), then start the flushing thread."""
        import pyarrow.parquet  # noqa: F401

        self.folder_for(day_of(dt.datetime.now(dt.timezone.utc)))
        self._thread = threading.Thread(target=self._run, name="mlops-capture", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what waits and stop the thread (the backend's shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _due(self) -> bool:
        with self._lock:
            if self._rows == 0:
                return False
            waited = time.monotonic() - (self._oldest or time.monotonic())
            return self._rows >= self.settings.flush_rows or waited >= self.settings.flush_seconds

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=min(1.0, float(self.settings.flush_seconds) / 4))
            self._wake.clear()
            if self._due():
                self.flush()
        self.flush()

    def _take(self) -> dict[tuple[dt.date, tuple[str, ...]], _Batch]:
        with self._lock:
            batches, self._batches = self._batches, {}
            self._rows = 0
            self._oldest = None
        return batches

    def flush(self) -> int:
        """Write what waits now (one file per day it spans); returns the rows written. A store failure drops the
        rows of the failed file and counts them, as do rows no table can be built of; it never raises."""
        batches = self._take()
        if not batches:
            return 0
        written = 0
        for day, table in self._tables(batches).items():
            rows = table.num_rows
            try:
                self._write(day, table, table.column(CAPTURED_AT)[0].as_py())
            except Exception as exc:  # any store failure: the rows go, the backend keeps answering
                self._store_failed(day, rows, exc)
                continue
            written += rows
            self.written_rows += rows
            self.files += 1
            self.on_write(rows, 1)
        return written

    def _tables(self, batches: dict[tuple[dt.date, tuple[str, ...]], _Batch]) -> dict[str, Any]:
        """The waiting rows as one arrow table per UTC day (a flush across midnight writes two files), built column
        by column: no pandas frame (building one and converting it held the GIL for most of a flush, stalling the
        requests; ``pyarrow.array`` converts a typed list in one C call). Requests with other columns than the
        first's add theirs (null where a request did not have them)."""
        import pyarrow as pa

        days: dict[dt.date, list[Any]] = {}
        for (date, columns), batch in batches.items():
            try:
                table = self._table(columns, batch)
            except Exception as exc:  # rows that do not match their columns: they go, the others are written
                self._store_failed(date.isoformat(), len(batch.ids), exc)
                continue
            days.setdefault(date, []).append(table)
        return {
            date.isoformat(): parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="permissive")
            for date, parts in sorted(days.items())
        }

    def _store_failed(self, day: str, rows: int, exc: Exception) -> None:
        self.dropped["store_failed"] += rows
        log.warning("capture of %s v%s: %d row(s) of %s dropped: %s", self.model_name, self.version, rows, day,
                    f"{type(exc).__name__}: {exc}"[:300])  # fmt: skip
        self.on_drop("store_failed", rows)

    def _table(self, columns: tuple[str, ...], batch: _Batch) -> Any:
        """One arrow table of ``batch``: the request's columns typed as the model's signature says (``kinds``),
        then the capture columns."""
        import pyarrow as pa

        values = list(zip(*batch.rows, strict=True)) if batch.rows else [() for _ in columns]
        arrays = [_column(values[i], self.kinds.get(name)) for i, name in enumerate(columns)]
        del values
        arrays += [
            pa.array(batch.ids, pa.string()),
            pa.array(batch.requests, pa.string()),
            pa.array(batch.predictions, pa.float64()),
            pa.repeat(pa.scalar(self.version, pa.string()), len(batch.ids)),
            pa.array(batch.times, pa.timestamp("ns", tz="UTC")),
        ]
        return pa.Table.from_arrays(arrays, names=[*columns, REQUEST_ID, REQUEST, PREDICTION, VERSION, CAPTURED_AT])

    def _write(self, day: str, table: Any, first: dt.datetime) -> None:
        import pyarrow.parquet as pq

        from mlops_provider.utils.storage import staging_file

        self._sequence += 1
        target = self.folder_for(day) / capture_file_name(first, self.version, os.getpid(), self._sequence)
        with staging_file(target) as tmp:
            pq.write_table(table, tmp)  # the C++ writer releases the GIL while it encodes and writes


#: Arrow types of the signature's column kinds (MLflow's ``DataType`` names); other kinds are inferred.
_ARROW_KINDS = {"double": "float64", "float": "float64", "long": "int64", "integer": "int64", "boolean": "bool_"}


def _column(values: Sequence[Any], kind: str | None) -> Any:
    """An arrow array of a request column's ``values`` typed by its signature ``kind`` (as the model saw it: a number
    column's values as float64 or int64, a boolean's as bool); without a kind, or when the values do not convert,
    the type arrow infers (a value that is not a number in a number column is written as null)."""
    import pyarrow as pa

    name = _ARROW_KINDS.get(kind or "")
    if name is not None:
        try:
            return pa.array(values, getattr(pa, name)())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            if name == "float64":
                return pa.array([_number(v) for v in values], pa.float64())
    return pa.array(values)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def default_folder(model_name: str, day: str) -> ObjectStoragePath:
    from mlops_provider.utils.records import capture_folder

    return capture_folder(model_name, day)


def capture_files(model_name: str, day: str) -> list[ObjectStoragePath]:
    """The finished capture files of a model's day, oldest first (files being written, or left torn by a writer
    killed mid-flush, are skipped: :func:`~mlops_provider.ml.capture.is_capture_file`)."""
    folder = default_folder(model_name, day)
    try:
        folder.fs.invalidate_cache(folder.path)
    except Exception:  # noqa: BLE001 - a filesystem without a cache
        pass
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if is_capture_file(p.name)), key=lambda p: p.name)


def read_day(model_name: str, day: str, columns: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """A model's captured rows of ``day`` (only ``columns`` plus the capture columns when given) and the locations of
    the files read (the lineage a record names). An empty frame when nothing was captured."""
    import pandas as pd

    from mlops_provider.ml.capture import CAPTURE_COLUMNS
    from mlops_provider.utils.storage import local_copy, location

    frames, read = [], []
    wanted = None if columns is None else [*columns, *CAPTURE_COLUMNS]
    for path in capture_files(model_name, day):
        with local_copy(path) as local:
            if wanted is None:
                frames.append(pd.read_parquet(local))
            else:
                import pyarrow.parquet as pq

                present = set(pq.read_schema(local).names)
                frames.append(pd.read_parquet(local, columns=[c for c in wanted if c in present]))
        read.append(location(path))
    if not frames:
        return pd.DataFrame(columns=wanted or list(CAPTURE_COLUMNS)), []
    return pd.concat(frames, ignore_index=True, sort=False), read


def sample_day(model_name: str, day: str, columns: list[str], max_rows: int, seed: int = 0) -> DaySample:
    """A bounded, seeded sample of a model's captured rows of ``day``: only ``columns`` plus the capture columns are
    read, one file and record batch at a time, and at most ``max_rows`` rows are kept while reading (the rule of
    :func:`mlops_provider.ml.sampling.sample_positions` over the day's files in name order), so memory grows with
    the sample, not with the day. The rows per answering version count every captured row, sampled or not."""
    from contextlib import ExitStack

    from mlops_provider.ml.capture import CAPTURE_COLUMNS
    from mlops_provider.ml.sampling import sample_parquet_files
    from mlops_provider.utils.storage import local_copy, location

    paths = capture_files(model_name, day)
    wanted = [*columns, *(c for c in CAPTURE_COLUMNS if c not in columns)]
    with ExitStack() as stack:
        local = [stack.enter_context(local_copy(p)) for p in paths]
        sample = sample_parquet_files(local, wanted, max_rows, seed, count_column=VERSION)
    return DaySample(
        frame=sample.frame,
        files=[location(p) for p in paths],
        rows=sample.rows,
        versions=versions_of_counts(sample.counts),
        max_rows=max_rows,
        seed=seed,
    )


@dataclass
class DayJoin:
    """A day's captured predictions joined to their late labels (:func:`join_day`).

    :param joined: request id, prediction, version and label of each captured row with a label, in capture order
        (:func:`mlops_provider.ml.capture.join_label_lookup`); None when there were no labels to join.
    :param files: the locations of the capture files read (the lineage a record names).
    :param rows: the rows the day's files hold in all (labelled or not).
    """

    joined: pd.DataFrame | None
    files: list[str]
    rows: int


def join_day(model_name: str, day: str, lookup: Callable[[], Any], batch_rows: int | None = None) -> DayJoin:
    """A model's captured rows of ``day`` joined to their labels, bounded: only the request id, prediction and version
    columns are read, one file and record batch at a time, each batch joined to the labels (``lookup()``, a
    :func:`~mlops_provider.ml.capture.label_lookup`, called once and only when the day has captured rows; None:
    no labels) before the next is read, so memory holds one batch, the labels and the joined rows, not the day.
    The result equals :func:`~mlops_provider.ml.capture.join_labels` of the whole day (:func:`read_day`), row for
    row. Raises ValueError naming a capture file that lacks a capture column."""
    import pandas as pd
    import pyarrow.parquet as pq

    from mlops_provider.ml.capture import join_label_lookup
    from mlops_provider.ml.sampling import BATCH_ROWS
    from mlops_provider.utils.storage import local_copy, location

    columns = [REQUEST_ID, PREDICTION, VERSION]
    paths = capture_files(model_name, day)
    files = [location(p) for p in paths]
    rows, pieces, right, asked = 0, [], None, False
    for path, shown in zip(paths, files, strict=True):
        with local_copy(path) as local:
            parquet = pq.ParquetFile(local)
            try:
                n = parquet.metadata.num_rows
                rows += n
                if not n:
                    continue
                if not asked:
                    right, asked = lookup(), True
                if right is None:
                    continue
                missing = [c for c in columns if c not in parquet.schema_arrow.names]
                if missing:
                    raise ValueError(f"capture file {shown} has no column(s) {missing}: not written by a backend")
                for batch in parquet.iter_batches(batch_size=batch_rows or BATCH_ROWS, columns=columns):
                    joined = join_label_lookup(batch.to_pandas(), right)
                    if len(joined):
                        pieces.append(joined)
            finally:
                parquet.close()
    if right is None:
        return DayJoin(joined=None, files=files, rows=rows)
    if not pieces:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        return DayJoin(joined=join_label_lookup(empty, right), files=files, rows=rows)
    joined = pieces[0] if len(pieces) == 1 else pd.concat(pieces, ignore_index=True)
    return DayJoin(joined=joined, files=files, rows=rows)


def capture_days(model_name: str) -> list[str]:
    """The days a model's endpoint captured rows on, newest first."""
    from mlops_provider.utils.records import folder

    root = folder("captures", model_name)
    try:
        root.fs.invalidate_cache(root.path)
    except Exception:  # noqa: BLE001 - a filesystem without a cache
        pass
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if p.is_dir() and _is_day(p.name)), reverse=True)


def _is_day(name: str) -> bool:
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return True


def describe_day(model_name: str, day: str) -> dict[str, Any]:
    """What a model's endpoint captured on ``day``: ``{"model_name", "day", "folder", "rows", "versions" {version:
    rows}, "files" [{"name", "location", "rows", "bytes", "versions", "first_at", "last_at"}]}`` (each file's footer
    and its version and time columns only; the rows are not read)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mlops_provider.utils.storage import local_copy, location

    files: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    for path in capture_files(model_name, day):
        with local_copy(path) as local:
            parquet = pq.ParquetFile(local)
            try:
                names = parquet.schema_arrow.names
                table = parquet.read(columns=[c for c in (VERSION, CAPTURED_AT) if c in names])
            finally:
                parquet.close()
            size = local.stat().st_size
        counts: dict[str, int] = {}
        if VERSION in table.column_names:
            for item in pc.value_counts(table.column(VERSION).cast("string")).to_pylist():
                counts[str(item["values"])] = int(item["counts"])
        for version, rows in counts.items():
            totals[version] = totals.get(version, 0) + rows
        at = table.column(CAPTURED_AT) if CAPTURED_AT in table.column_names and table.num_rows else None
        files.append({
            "name": path.name, "location": location(path), "rows": table.num_rows, "bytes": size,
            "versions": versions_of_counts(counts),
            "first_at": pc.min(at).as_py().isoformat() if at is not None else None,
            "last_at": pc.max(at).as_py().isoformat() if at is not None else None,
        })  # fmt: skip
    return {
        "model_name": model_name,
        "day": day,
        "folder": location(default_folder(model_name, day)),
        "rows": sum(f["rows"] for f in files),
        "versions": versions_of_counts(totals),
        "files": files,
    }


def find_request(model_name: str, request_id: str, days: list[str] | None = None) -> list[dict[str, Any]]:
    """The captured rows whose request id is ``request_id`` (the caller's key, or the generated ``<id>`` /
    ``<id>-<row>``), searched in ``days`` (default: every captured day, newest first; the search stops after the
    first day with a match): ``[{"day", "file", "request_id", "request", "version", "prediction", "captured_at"}]``
    (an entity asked twice was captured twice). Only the capture columns are read, filtered by request id."""
    import pyarrow.parquet as pq

    from mlops_provider.ml.capture import CAPTURE_COLUMNS
    from mlops_provider.utils.storage import local_copy, location

    found: list[dict[str, Any]] = []
    for day in days if days is not None else capture_days(model_name):
        for path in capture_files(model_name, day):
            with local_copy(path) as local:
                names = pq.read_schema(local).names
                if REQUEST_ID not in names:
                    continue
                table = pq.read_table(local, columns=[c for c in CAPTURE_COLUMNS if c in names],
                                      filters=[(REQUEST_ID, "==", str(request_id))])  # fmt: skip
            for row in table.to_pylist():
                at = row.get(CAPTURED_AT)
                found.append({
                    "day": day, "file": location(path), "request_id": row[REQUEST_ID], "request": row.get(REQUEST),
                    "version": None if row.get(VERSION) is None else str(row[VERSION]),
                    "prediction": row.get(PREDICTION), "captured_at": at.isoformat() if at is not None else None,
                })  # fmt: skip
        if found and days is None:
            break
    return found
