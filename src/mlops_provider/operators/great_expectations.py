"""Validate a data partition with Great Expectations 1.x and quarantine it when it fails."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator

from mlops_provider.exceptions import UnreadableFileError
from mlops_provider.hooks.mixins import UpstreamResultMixin
from mlops_provider.layout import DEFAULT_CHUNK_ROWS, check_chunk_rows
from mlops_provider.lineage.mixin import OpenLineageMixin
from mlops_provider.links.extra_links import DataDocsLink, ValidationResultLink, report_url
from mlops_provider.utils.compat import AirflowFailException
from mlops_provider.utils.files import write_atomic
from mlops_provider.utils.templated_fields import INTERVAL_DATE

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context, ObjectStoragePath, XComArg

    from mlops_provider.hooks.great_expectations import GreatExpectationsHook
    from mlops_provider.lineage.datasets import Lineage

MODES = ("fail", "warn")
SUMMARY_XCOM_KEY = "validation_summary"


def _scalar(value: Any) -> Any:
    """A JSON value of a GX result field: scalars as they are, lists of scalars whole (a column list must name
    every column), anything else as text."""
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str, bool)) or v is None for v in value):
        return list(value)
    return str(value)[:500]


def summarize(result: Any, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Compact, JSON-only summary of a GX validation result: success, statistics, failed checks.

    A schema check names the ``missing_columns`` and ``unexpected_columns`` in full. A column check on a column
    that is not in the data (``columns``, when given) says so instead of GX's internal error."""
    failed = []
    present = set(columns) if columns is not None else None
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        details = item.result or {}
        exception = (item.exception_info or {}).get("exception_message") if item.exception_info else None
        column = config.kwargs.get("column")
        if exception and present is not None and column is not None and column not in present:
            exception = f"column {column!r} is not in the data"
        entry = {
            "expectation": config.type,
            "column": column,
            "unexpected_count": _scalar(details.get("unexpected_count")),
            "unexpected_percent": _scalar(details.get("unexpected_percent")),
            "observed_value": _scalar(details.get("observed_value")),
            **({"exception": str(exception)[:300]} if exception else {}),
        }
        mismatched = (details.get("details") or {}).get("mismatched") or {}
        if mismatched:
            entry["missing_columns"] = sorted(str(c) for c in mismatched.get("missing") or [])
            entry["unexpected_columns"] = sorted(str(c) for c in mismatched.get("unexpected") or [])
        failed.append(entry)
    stats = result.statistics
    return {
        "success": bool(result.success),
        "statistics": {
            "evaluated": int(stats["evaluated_expectations"]),
            "successful": int(stats["successful_expectations"]),
            "failed": int(stats["unsuccessful_expectations"]),
            "success_percent": round(float(stats["success_percent"] or 0.0), 2),
        },
        "failed_expectations": failed,
    }


def describe_failures(failed: list[dict[str, Any]], limit: int = 8) -> str:
    """``expect_x(column): 12 unexpected`` items for an error message."""
    parts = []
    for item in failed[:limit]:
        where = f"({item['column']})" if item.get("column") else ""
        if item.get("missing_columns") or item.get("unexpected_columns"):
            detail = (
                f"missing columns {item.get('missing_columns')}, unexpected columns {item.get('unexpected_columns')}"
            )
        elif item.get("exception"):
            detail = f"error: {item['exception']}"
        elif item.get("unexpected_count") is not None:
            detail = f"{item['unexpected_count']} unexpected"
        else:
            detail = f"observed {item.get('observed_value')}"
        parts.append(f"{item['expectation']}{where}: {detail}")
    more = f" and {len(failed) - limit} more" if len(failed) > limit else ""
    return "; ".join(parts) + more


def normalize_types(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The frame with equivalent dtypes made plain for type checks: tz-aware timestamps as naive UTC, categorical
    columns as their values' dtype. Returns the frame and ``{column: "from -> to"}`` of what changed."""
    import pandas as pd

    changed: dict[str, str] = {}
    out = frame
    for column in frame.columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            converted = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
        elif isinstance(dtype, pd.CategoricalDtype):
            converted = frame[column].astype(dtype.categories.dtype)
        else:
            continue
        if out is frame:
            out = frame.copy()
        out[column] = converted
        changed[str(column)] = f"{dtype} -> {converted.dtype}"
    return out, changed


class IntervalTally:
    """Counts rows of ``column`` outside ``[start, end)`` over one frame or successive batches of a partition."""

    def __init__(self, column: str, start: Any, end: Any) -> None:
        import pandas as pd

        self.column = column
        self.lower, self.upper = pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")
        self.rows = self.outside = 0
        self.low: Any = None
        self.high: Any = None
        self.missing = False

    def add(self, frame: pd.DataFrame) -> None:
        import pandas as pd

        self.rows += len(frame)
        if self.column not in frame.columns:
            self.missing = True
            return
        values = pd.to_datetime(frame[self.column], utc=True, errors="coerce")
        outside = values[values.notna() & ((values < self.lower) | (values >= self.upper))]
        if len(outside):
            self.outside += len(outside)
            self.low = outside.min() if self.low is None else min(self.low, outside.min())
            self.high = outside.max() if self.high is None else max(self.high, outside.max())

    def failed(self) -> dict[str, Any] | None:
        """The failed-check entry (``rows_within_data_interval``), or None when every row is inside."""
        base = {"expectation": "rows_within_data_interval", "column": self.column}
        if self.missing:
            return {**base, "unexpected_count": None, "unexpected_percent": None, "observed_value": None,
                    "exception": f"column {self.column!r} is not in the data"}  # fmt: skip
        if not self.outside:
            return None
        return {
            **base,
            "unexpected_count": self.outside,
            "unexpected_percent": round(100.0 * self.outside / max(self.rows, 1), 4),
            "observed_value": f"{self.low} .. {self.high} outside [{self.lower}, {self.upper})",
        }


def interval_check(frame: pd.DataFrame, column: str, start: Any, end: Any) -> dict[str, Any] | None:
    """A failed-check entry when rows of ``column`` fall outside ``[start, end)`` (or the column is missing)."""
    tally = IntervalTally(column, start, end)
    tally.add(frame)
    return tally.failed()


def null_counts(file: Any, columns: Sequence[str]) -> dict[str, int]:
    """Nulls per column over a whole ``pyarrow.parquet.ParquetFile``: from the row-group statistics, or by
    reading the one column where a row group has none."""
    counts: dict[str, int] = {}
    meta = file.metadata
    for name in columns:
        total = 0
        for group in range(meta.num_row_groups):
            row_group = meta.row_group(group)
            chunks = (row_group.column(i) for i in range(row_group.num_columns))
            chunk = next((c for c in chunks if c.path_in_schema == name), None)
            stats = chunk.statistics if chunk is not None else None
            if stats is None or not stats.has_null_count:
                total = file.read(columns=[name]).column(0).null_count
                break
            total += stats.null_count
        counts[name] = int(total)
    return counts


def parquet_rows(path: Path) -> int | None:
    """The row count in a parquet file's footer, or None when it cannot be read (:func:`parquet_batches` then says
    why)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, pa.ArrowException):
        return None


def parquet_batches(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The file as successive DataFrames of at most ``rows`` rows, typed as ``pandas.read_parquet`` types the
    whole file (see :func:`mlops_provider.ml.validation_batches.batch_dtypes`); at least one (empty) frame.
    Raises :class:`UnreadableFileError` when the file cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_provider.ml.validation_batches import batch_dtypes

    try:
        file = pq.ParquetFile(path)
        schema = file.schema_arrow
        widened = [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_boolean(f.type)]
        dtypes = batch_dtypes(schema, null_counts(file, widened))
        first = True
        # One row group at a time, sliced (zero-copy) into frames of ``rows``: ParquetFile.iter_batches keeps
        # allocating as it reads (arrow's pool grew 112 -> 215 MB over 5M rows, RSS with it); this stays flat.
        for group in range(file.metadata.num_row_groups):
            table = file.read_row_group(group)
            for start in range(0, table.num_rows, rows):
                frame = table.slice(start, rows).to_pandas()
                first = False
                yield frame.astype(dtypes) if dtypes else frame
                del frame
            del table
        if first:
            yield schema.empty_table().to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise UnreadableFileError(f"{type(exc).__name__}: {exc}"[:300]) from exc


class GreatExpectationsValidateOperator(UpstreamResultMixin, OpenLineageMixin, BaseOperator):
    """Validate a parquet/CSV partition (or a DataFrame) against a GX suite kept as a JSON file.

    On failure (``mode="fail"``, the default) the partition file is moved to the quarantine folder with its
    validation result beside it, and the task fails without retrying: the error names the dataset, the
    partition and the failed checks. Nothing that was versioned before is touched. With ``mode="warn"`` a
    failure is logged and reported in XCom, and the data stays where it is.

    Every attempt keeps its own evidence: the full result is written to
    ``<reports root>/gx/<dataset>/<partition>/<attempt>/result.json`` (extra link of the task), and a failed
    attempt gets a Data Docs site beside it (the other extra link; a passed one has none: rendering the page was a
    fifth of a quiet day's validation, and the result JSON holds everything the page shows), and its file and
    result go to ``<quarantine>/<attempt>/``; a second failure of the same partition never overwrites the first.
    ``<attempt>`` is ``<hash of the run id>-try<N>``.

    Equivalent types pass the suite's type checks: timezone-aware timestamps are checked as naive UTC and
    categorical columns as their values' type (the file itself is not changed). With ``timestamp_column``, rows
    whose timestamp is outside the run's data interval ``[data_interval_start, data_interval_end)`` fail the check
    ``rows_within_data_interval``: a partition holds exactly its own interval.

    A parquet file is validated ``chunk_rows`` rows at a time and the batches' results are merged into the
    verdict, counts and Data Docs page of the whole partition (:mod:`mlops_provider.ml.validation_batches`), so
    memory is set by ``chunk_rows`` (or by the file's parquet row groups where they are larger: the extract writes
    row groups of its own ``chunk_rows``), not by the partition. A suite with an expectation that has no exact merge
    (a median, a quantile...), a CSV file, a given DataFrame or ``chunk_rows=None`` validate the whole frame at
    once; the log says which and why. XCom ``batches`` says how many batches were validated (0: whole frame).

    :param data_path: partition file to validate, ``.parquet`` or ``.csv``: a local path or an object-storage URL
        (``mlops_provider.utils.storage``), read from a download on this worker's disk; or the extract's result (its
        ``path``) (templated).
    :param suite_path: expectation suite JSON file (templated).
    :param dataset: dataset name, used in paths and messages (templated).
    :param partition: partition name (templated; default: the date of ``data_interval_start``).
    :param mode: ``"fail"`` or ``"warn"``.
    :param batch_parameters: extra GX batch parameters (templated).
    :param quarantine_path: folder that receives failed partitions, one sub-folder per attempt (templated; default
        ``<storage root>/quarantine/<dataset>/<partition>``: under ``MLOPS_STORAGE_URL``, else ``MLOPS_HOME``).
    :param timestamp_column: column whose values must lie in the run's data interval (templated; empty: no check).
    :param dataframe: validate this DataFrame instead of a file (Python use; nothing is quarantined).
    :param chunk_rows: rows per validated batch of a parquet file (None: the whole file at once).

    XCom (return value, and key ``validation_summary`` also on failure): ``{"success", "dataset",
    "partition", "attempt", "data_path", "batches", "statistics", "failed_expectations" [{"expectation", "column",
    "unexpected_count", "unexpected_percent", "observed_value", "exception"?, "missing_columns"?,
    "unexpected_columns"?}], "normalized_types", "result_path", "docs_path" (None when it passed),
    "quarantined_to"}``.
    """

    upstream_fields = {"data_path": "path"}  # the extract's result
    template_fields: Sequence[str] = (
        "data_path",
        "suite_path",
        "dataset",
        "partition",
        "batch_parameters",
        "quarantine_path",
        "timestamp_column",
    )
    operator_extra_links = (DataDocsLink(), ValidationResultLink())
    ui_color = "#fff4e0"

    def __init__(
        self,
        *,
        suite_path: str,
        dataset: str,
        data_path: str | XComArg | None = None,
        partition: str = INTERVAL_DATE,
        mode: str = "fail",
        batch_parameters: dict[str, Any] | None = None,
        quarantine_path: str | None = None,
        timestamp_column: str | None = None,
        dataframe: pd.DataFrame | None = None,
        chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)  # a data failure does not go away by retrying
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.chunk_rows = None if chunk_rows is None else check_chunk_rows(chunk_rows)
        if (data_path is None) == (dataframe is None):
            raise ValueError("give exactly one of data_path and dataframe")
        self.data_path = cast("str | None", data_path)  # an upstream result is picked when rendered
        self.suite_path = suite_path
        self.dataset = dataset
        self.partition = partition
        self.mode = mode
        self.batch_parameters = batch_parameters or {}
        self.quarantine_path = quarantine_path
        self.timestamp_column = timestamp_column
        self.dataframe = dataframe
        self.attempt = "adhoc"

    @cached_property
    def hook(self) -> GreatExpectationsHook:
        # One Data Docs site per attempt: GX rebuilds a site from the validations it knows, and each task's
        # ephemeral context knows only its own, so a shared site would lose other partitions' pages.
        from mlops_provider.hooks.great_expectations import GreatExpectationsHook
        from mlops_provider.utils.records import validation_docs_dir

        return GreatExpectationsHook(docs_dir=validation_docs_dir(self._out_dir))

    @property
    def _stored_out_dir(self) -> ObjectStoragePath:
        """The attempt's folder under the reports root, where its result and Data Docs are published."""
        from mlops_provider.utils.records import validation_dir

        return validation_dir(self.dataset, str(self.partition), self.attempt)

    @property
    def _out_dir(self) -> Path:
        """Where GX writes them on this worker first (the published folder itself on local storage)."""
        from mlops_provider.utils.storage import scratch_for

        return scratch_for(self._stored_out_dir)

    def _read(self, path: Path) -> pd.DataFrame:
        import pandas as pd

        if path.suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)

    def _whole_frame_reason(self, data_path: Path | None) -> str | None:
        """Why this partition is validated as one frame, or None when it goes in batches."""
        from mlops_provider.hooks.great_expectations import GreatExpectationsHook
        from mlops_provider.ml.validation_batches import unmergeable

        if data_path is None:
            return "a DataFrame was given"
        if self.chunk_rows is None:
            return "chunk_rows is None"
        if data_path.suffix != ".parquet":
            return f"{data_path.suffix or 'a file without suffix'} is read whole (batches need parquet)"
        unsupported = unmergeable(GreatExpectationsHook.read_suite_file(Path(self.suite_path))["expectations"])
        if unsupported:
            return f"the suite has {', '.join(unsupported)}, which cannot be merged exactly across batches"
        return None

    def _interval_tally(self, context: Context) -> IntervalTally | None:
        if not self.timestamp_column:
            return None
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise AirflowFailException(
                f"timestamp_column={self.timestamp_column!r} needs a run with a data interval; this run has none "
                "(a manual run without a logical date). Drop timestamp_column or trigger with a logical date."
            )
        return IntervalTally(str(self.timestamp_column), start, end)

    def _validate(
        self, data_path: Path | None, run_name: str, tally: IntervalTally | None
    ) -> tuple[Any, Any, dict[str, str], int, int, list[str]]:
        """GX result, its identifier (:meth:`GreatExpectationsHook.render_docs` renders its page), normalized
        types, rows, batches (0: whole frame) and columns of the partition. Raises :class:`UnreadableFileError`
        when the file cannot be read."""
        normalized: dict[str, str] = {}
        rows = 0
        columns: list[str] = []
        reason = self._whole_frame_reason(data_path)

        def prepared(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            nonlocal rows
            for frame in frames:
                frame, changed = normalize_types(frame)
                normalized.update(changed)
                rows += len(frame)
                columns[:] = [str(c) for c in frame.columns]
                if tally is not None:
                    tally.add(frame)
                yield frame

        if reason is None:
            self.log.info("Validating %s in batches of %d rows", data_path, self.chunk_rows)
            batches = prepared(parquet_batches(data_path, int(self.chunk_rows)))  # type: ignore[arg-type]
            result, identifier = self.hook.validate_batches(
                batches,
                Path(self.suite_path),
                run_name=run_name,
                batch_parameters=self.batch_parameters,
                data_docs=False,
                rows=parquet_rows(data_path),  # type: ignore[arg-type]
            )
            count = int(result.meta.get("batches", 1))
        else:
            self.log.info("Validating the whole frame at once: %s", reason)
            try:
                frame = self.dataframe if self.dataframe is not None else self._read(data_path)  # type: ignore[arg-type]
            except Exception as exc:  # unreadable, truncated or corrupt file
                raise UnreadableFileError(f"{type(exc).__name__}: {exc}"[:300]) from exc
            (frame,) = prepared(iter([frame]))
            result, identifier = self.hook.validate_dataframe(
                frame,
                Path(self.suite_path),
                run_name=run_name,
                batch_parameters=self.batch_parameters,
                data_docs=False,
            )
            count = 0
        if normalized:
            self.log.info("Checked as equivalent types: %s", normalized)
        return result, identifier, normalized, rows, count, columns

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.utils.evidence import attempt_key
        from mlops_provider.utils.storage import is_local, local_copy, location, publish_tree, stored

        source = stored(self.data_path) if self.data_path else None
        self.attempt = attempt_key(context)
        out_dir = self._out_dir
        run_name = f"{self.dataset}-{self.partition}-{self.attempt}"
        summary: dict[str, Any]
        docs_page: str | None = None
        full_result: dict[str, Any]
        normalized: dict[str, str] = {}
        rows: int | None = None
        batches = 0
        where = location(source) if source is not None else None
        if source is not None and not source.exists():
            raise AirflowFailException(
                f"{self.dataset} {self.partition}: file to validate {where} does not exist. "
                "Clear the upstream extract task so it writes the partition again."
            )
        tally = self._interval_tally(context)
        try:
            with local_copy(source) if source is not None else nullcontext(None) as data_path:
                result, identifier, normalized, rows, batches, columns = self._validate(data_path, run_name, tally)
        except UnreadableFileError as exc:
            reason = str(exc)
            summary = {
                "success": False,
                "statistics": {"evaluated": 1, "successful": 0, "failed": 1, "success_percent": 0.0},
                "failed_expectations": [
                    {
                        "expectation": "file_is_readable",
                        "column": None,
                        "unexpected_count": None,
                        "unexpected_percent": None,
                        "observed_value": None,
                        "exception": reason,
                    }
                ],
            }
            full_result = {"success": False, "error": reason, "data_path": where}
            rows = None
        else:
            summary = summarize(result, columns)
            full_result = result.to_json_dict()
            if tally is not None:
                self._add_interval_check(tally, summary, full_result)
            if not summary["success"]:  # the page only for a failure (a passed day's result JSON says it all)
                docs_page = self.hook.render_docs(result, identifier)

        result_path = out_dir / "result.json"
        write_atomic(result_path, lambda tmp: tmp.write_text(json.dumps(full_result, indent=2, default=str)))
        stored_out = self._stored_out_dir
        publish_tree(out_dir, stored_out)
        if not is_local(stored_out):
            shutil.rmtree(out_dir, ignore_errors=True)  # published: nothing stays on this worker
        stored_result = stored_out / "result.json"
        stored_docs = stored_out.joinpath(*Path(docs_page).relative_to(out_dir).parts) if docs_page else None
        summary.update(
            dataset=self.dataset,
            partition=str(self.partition),
            attempt=self.attempt,
            data_path=where,
            batches=batches,
            suite_path=str(self.suite_path),
            normalized_types=normalized,
            result_path=location(stored_result),
            docs_path=location(stored_docs) if stored_docs is not None else None,
            quarantined_to=None,
        )
        ValidationResultLink.persist(context, report_url(stored_result))
        if stored_docs is not None:
            DataDocsLink.persist(context, report_url(stored_docs))

        from mlops_provider.lineage.datasets import gx_assertions

        self.record_lineage(summary, assertions=gx_assertions(full_result), rows=rows)
        if summary["success"]:
            self.log.info("%s %s passed %d checks", self.dataset, self.partition, summary["statistics"]["evaluated"])
            return summary

        failures = describe_failures(summary["failed_expectations"])
        if self.mode == "warn":
            self.log.warning(
                "%s %s failed validation (warn mode, data kept): %s", self.dataset, self.partition, failures
            )
            return summary

        if source is not None:
            summary["quarantined_to"] = self._quarantine(source, stored_result)
        context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
        stats = summary["statistics"]
        where = f" Partition quarantined to {summary['quarantined_to']}." if summary["quarantined_to"] else ""
        raise AirflowFailException(
            f"Validation of dataset {self.dataset!r} partition {self.partition} failed "
            f"{stats['failed']} of {stats['evaluated']} checks: {failures}.{where} "
            f"Full result: {summary['result_path']}. Fix the source data for {self.partition}, then clear the extract "
            "task of this run and its downstream tasks."
        )

    @staticmethod
    def _add_interval_check(tally: IntervalTally, summary: dict[str, Any], full_result: dict[str, Any]) -> None:
        """Add the data-interval check of ``timestamp_column`` to the summary and the full result."""
        failed = tally.failed()
        stats = summary["statistics"]
        stats["evaluated"] += 1
        if failed is None:
            stats["successful"] += 1
        else:
            stats["failed"] += 1
            summary["success"] = False
            summary["failed_expectations"].append(failed)
            full_result["success"] = False
        stats["success_percent"] = round(100.0 * stats["successful"] / stats["evaluated"], 2)
        full_result["data_interval_check"] = failed or {"expectation": "rows_within_data_interval", "success": True}

    def _quarantine(self, source: ObjectStoragePath, result_path: ObjectStoragePath) -> str:
        """Move the failed partition to ``<quarantine>/<attempt>/`` with its validation result; its location."""
        from mlops_provider.utils.records import quarantine_dir
        from mlops_provider.utils.storage import location, move, stored

        base = (
            stored(self.quarantine_path) if self.quarantine_path else quarantine_dir(self.dataset, str(self.partition))
        )
        target_dir = base / self.attempt
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / source.name
        move(source, target)
        result_path.copy(target_dir / "validation_result.json")
        self.log.warning("Quarantined %s to %s (earlier attempts stay beside it)", location(source), location(target))
        return location(target)

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the validated file, every expectation as an assertion, its row count; the verdict as a run facet."""
        from mlops_provider.lineage.datasets import gx_validation

        return gx_validation(result, result["assertions"], result["rows"], str(self.suite_path))
