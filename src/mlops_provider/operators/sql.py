"""Extract exactly one data interval from a SQL source into a parquet partition."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_provider.layout import DEFAULT_CHUNK_ROWS, check_chunk_rows
from mlops_provider.lineage.mixin import OpenLineageMixin
from mlops_provider.utils.compat import AirflowFailException, AirflowSkipException
from mlops_provider.utils.files import md5_of_file

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Context

    from mlops_provider.lineage.datasets import Lineage

ON_EMPTY_CHOICES = ("fail", "skip")


def unified_schema(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """One Arrow schema for chunks of the same query: a column typed differently in two chunks takes the type
    both widen to (int and float: float; null and any: that type), or text when there is none (numbers in one
    chunk, text in another), marked as a pandas ``string`` column as a single read marks a column of mixed
    values. The pandas metadata of each column comes from a chunk that has the column's final type."""
    import json

    import pyarrow as pa

    fields, described = [], []
    pandas_columns = [json.loads((s.metadata or {}).get(b"pandas", b"{}")).get("columns") for s in schemas]
    for index, field in enumerate(schemas[0]):
        variants = [schema.field(index) for schema in schemas]
        entry = None
        if len({f.type for f in variants}) > 1:
            try:
                field = pa.unify_schemas([pa.schema([f]) for f in variants], promote_options="permissive").field(0)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                field = pa.field(field.name, pa.string())
                entry = {"name": field.name, "field_name": field.name, "pandas_type": "unicode",
                         "numpy_type": "string", "metadata": None}  # fmt: skip
        if entry is None:
            chunk = next(i for i, f in enumerate(variants) if f.type == field.type)
            entry = pandas_columns[chunk][index] if pandas_columns[chunk] else None
        fields.append(field)
        described.append(entry)
    metadata = dict(schemas[0].metadata or {})
    if b"pandas" in metadata and all(described):
        pandas_meta = json.loads(metadata[b"pandas"])
        pandas_meta["columns"] = described
        metadata[b"pandas"] = json.dumps(pandas_meta).encode()
    return pa.schema(fields, metadata=metadata)


def cast_chunk(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A chunk in the unified schema; a column that becomes text is written as pandas writes its values as text
    (``25.0``, not Arrow's ``25``), as in a single read of the interval."""
    import pyarrow as pa

    columns = []
    for field in schema:
        column = table.column(field.name)
        if column.type != field.type and pa.types.is_string(field.type) and not pa.types.is_null(column.type):
            column = pa.chunked_array([pa.array(column.to_pandas().astype("string"), type=pa.string())])
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _as_utc_naive_text(value: datetime) -> str:
    """The interval bound as ``YYYY-MM-DD HH:MM:SS`` in UTC: comparable with SQLite text and PostgreSQL timestamps."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S")


class SqlToParquetOperator(OpenLineageMixin, BaseOperator):
    """Read the rows of the run's data interval from a SQL table and write them as one parquet file.

    Rows with ``data_interval_start <= timestamp_column < data_interval_end`` are selected, so every run,
    including a backfill of a past date, reads exactly its own interval. The parquet file is written to a
    temporary file and then published in one step (a rename on the local disk, one upload to object storage:
    ``mlops_provider.utils.storage``), so a reader never sees half a partition.

    :param conn_id: Airflow connection of the source database (any ``DbApiHook`` connection: sqlite, postgres...).
    :param table: source table.
    :param timestamp_column: column that places a row in time (UTC).
    :param dataset: dataset name, used in the default output path and in messages.
    :param output_path: where to write the parquet file, a local path or an object-storage URL (templated).
        Default: ``<storage root>/staging/<dataset>/<ds>.parquet``, the storage root being ``MLOPS_STORAGE_URL``
        or else ``MLOPS_HOME``.
    :param columns: columns to select (default: all).
    :param parse_dates: columns converted to timestamps after reading (drivers differ: SQLite returns text).
    :param on_empty: ``"fail"`` (default) or ``"skip"`` when the interval has no rows; never an empty file.
    :param interval_start: override of the interval start (templated); default ``data_interval_start``.
    :param interval_end: override of the interval end (templated); default ``data_interval_end``.
    :param chunk_rows: rows fetched and written at a time (a parquet row group); peak memory grows with it.

    XCom (return value): ``{"path", "rows", "md5", "dataset", "partition", "interval_start", "interval_end"}``;
    ``path`` is a local path, or a URL (``s3://<conn_id>@<bucket>/<key>``) on object storage.
    """

    template_fields: Sequence[str] = ("output_path", "table", "interval_start", "interval_end", "dataset")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        conn_id: str,
        table: str,
        timestamp_column: str,
        dataset: str,
        output_path: str | None = None,
        columns: Sequence[str] | None = None,
        parse_dates: Sequence[str] | None = None,
        on_empty: str = "fail",
        interval_start: str | None = None,
        interval_end: str | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_empty not in ON_EMPTY_CHOICES:
            raise ValueError(f"on_empty must be one of {ON_EMPTY_CHOICES}, got {on_empty!r}")
        self.chunk_rows = check_chunk_rows(chunk_rows)
        self.conn_id = conn_id
        self.table = table
        self.timestamp_column = timestamp_column
        self.dataset = dataset
        self.output_path = output_path
        self.columns = list(columns) if columns else None
        self.parse_dates = list(parse_dates) if parse_dates is not None else [timestamp_column]
        self.on_empty = on_empty
        self.interval_start = interval_start
        self.interval_end = interval_end

    @cached_property
    def hook(self) -> DbApiHook:
        """The SQL hook of the connection (resolved by its connection type, as ``mlops new-model`` resolves it)."""
        from mlops_provider.hooks.sql_source import source_hook

        try:
            return source_hook(self.conn_id)
        except ValueError as exc:  # no retry installs a provider or defines a connection
            raise AirflowFailException(f"{self.task_id}: {exc}") from None

    def _interval(self, context: Context) -> tuple[datetime, datetime]:
        import pendulum

        start: Any = self.interval_start or context.get("data_interval_start")
        end: Any = self.interval_end or context.get("data_interval_end")
        if start is None or end is None:
            raise AirflowFailException(
                f"{self.task_id}: the run has no data interval (a manual run without a logical date?). "
                "Trigger it with a logical date, or set interval_start/interval_end."
            )
        start = pendulum.parse(start) if isinstance(start, str) else start
        end = pendulum.parse(end) if isinstance(end, str) else end
        if not start < end:
            raise AirflowFailException(
                f"{self.task_id}: the data interval [{start}, {end}) is empty. Schedule the DAG with a timetable "
                "that has intervals (CronDataIntervalTimetable; a plain cron string in Airflow 3 gives zero-length "
                "intervals), or set interval_start/interval_end."
            )
        return start, end

    def build_query(self) -> str:
        """The SELECT with two positional placeholders in the driver's paramstyle."""
        from mlops_provider.utils.sql_names import needs_quotes, quote_column, quote_table

        placeholder = self.hook.placeholder
        table, timestamp, columns = self.table, self.timestamp_column, list(self.columns or [])
        if any(needs_quotes(name) for name in (table, timestamp, *columns)):  # a space, a reserved word, ...
            dialect = self.hook.get_sqlalchemy_engine().dialect
            table, timestamp = quote_table(table, dialect), quote_column(timestamp, dialect)
            columns = [quote_column(c, dialect) for c in columns]
        cols = ", ".join(columns) if columns else "*"
        return (
            f"SELECT {cols} FROM {table} "
            f"WHERE {timestamp} >= {placeholder} AND {timestamp} < {placeholder} "
            f"ORDER BY {timestamp}"
        )

    def _fetch(self, sql: str, params: tuple[str, str]) -> Iterator[pd.DataFrame]:
        """The query's rows, ``chunk_rows`` at a time, as DataFrames typed as ``pandas.read_sql`` types them."""
        import pandas as pd

        with closing(self.hook.get_conn()) as conn:
            # psycopg (2 and 3) streams from a named (server-side) cursor; other drivers' cursors fetch lazily
            # (sqlite3) or buffer in the driver.
            named = type(conn).__module__.startswith("psycopg")
            cursor = conn.cursor(name="mlops_extract") if named else conn.cursor()
            try:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(min(self.chunk_rows, 2**31 - 1)):  # drivers take a C int
                    columns = [d[0] for d in cursor.description]
                    yield pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)
            finally:
                cursor.close()

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        for column in self.parse_dates:
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column], errors="coerce")
        for column in frame.select_dtypes(include="object").columns:
            # A column that mixes text with numbers (SQLite stores what it is given) cannot be written as
            # parquet; keep the values as text so validation reports the wrong type instead of a crash here.
            if pd.api.types.infer_dtype(frame[column], skipna=True).startswith("mixed"):
                self.log.warning("Column %s mixes types; it is kept as text for validation to judge", column)
                frame[column] = frame[column].astype("string")
        return frame

    def _write(self, chunks: Iterator[pd.DataFrame], tmp: Path) -> int:
        """Write the chunks to ``tmp`` as one parquet file (a row group per chunk); returns the row count.

        Each chunk goes to its own part file first; the parts are then copied into ``tmp`` under one schema, a
        row group at a time, so no step holds more than one chunk."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts_dir = Path(tempfile.mkdtemp(prefix=f".{tmp.name}.parts.", dir=tmp.parent))
        try:
            parts, rows = [], 0
            for index, frame in enumerate(chunks):
                part = parts_dir / f"{index:06d}.parquet"
                pq.write_table(pa.Table.from_pandas(self._prepare(frame), preserve_index=False), part)
                parts.append(part)
                rows += len(frame)
            if len(parts) == 1:
                shutil.move(str(parts[0]), tmp)
            elif parts:
                schema = unified_schema([pq.read_schema(part) for part in parts])
                with pq.ParquetWriter(tmp, schema) as writer:
                    for part in parts:
                        writer.write_table(cast_chunk(pq.read_table(part), schema), row_group_size=self.chunk_rows)
            return rows
        finally:
            shutil.rmtree(parts_dir, ignore_errors=True)

    def execute(self, context: Context) -> dict[str, Any]:

        from mlops_provider.utils.records import staged_partition
        from mlops_provider.utils.storage import location, staging_file, stored

        start, end = self._interval(context)
        partition = start.strftime("%Y-%m-%d")
        target = stored(self.output_path) if self.output_path else staged_partition(self.dataset, partition)
        sql = self.build_query()
        params = (_as_utc_naive_text(start), _as_utc_naive_text(end))
        self.log.info(
            "Extracting %s [%s, %s) from %s.%s, %d rows at a time",
            self.dataset, *params, self.conn_id, self.table, self.chunk_rows,
        )  # fmt: skip
        with staging_file(target) as tmp:  # an empty interval raises inside: nothing is published
            rows = self._write(self._fetch(sql, params), tmp)
            if not rows:
                message = (
                    f"No rows in {self.table} for {self.dataset} interval [{params[0]}, {params[1]}) "
                    f"(connection {self.conn_id!r}). Check that the source was loaded for {partition}."
                )
                if self.on_empty == "skip":
                    raise AirflowSkipException(message)
                raise AirflowFailException(message + " Set on_empty='skip' if empty days are expected.")
            md5 = md5_of_file(tmp)
        result = {
            "path": location(target),
            "rows": rows,
            "md5": md5,
            "dataset": self.dataset,
            "partition": partition,
            "interval_start": params[0],
            "interval_end": params[1],
        }
        self.log.info("Wrote %d rows to %s (md5 %s)", result["rows"], result["path"], result["md5"])
        conn = self.hook.get_connection(self.conn_id)
        source = {"conn_type": conn.conn_type, "host": conn.host, "port": conn.port, "database": conn.schema}
        return self.record_lineage(result, source=source)

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the source table. Wrote: the staged partition file (md5, rows)."""
        from mlops_provider.lineage.datasets import Lineage, sql_table, stored_file

        return Lineage(
            inputs=[sql_table(**result["source"], table=self.table)],
            outputs=[stored_file(result["path"], md5=result["md5"], rows=result["rows"])],
        )
