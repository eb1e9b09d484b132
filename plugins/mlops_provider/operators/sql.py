"""Extract exactly one data interval from a SQL source into a parquet partition."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops_provider.files import md5_of_file, write_atomic
from mlops_provider.lineage import Lineage, OpenLineageMixin, local_file, sql_table
from mlops_provider.paths import staging_dir

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Context

ON_EMPTY_CHOICES = ("fail", "skip")


def _as_utc_naive_text(value: datetime) -> str:
    """The interval bound as ``YYYY-MM-DD HH:MM:SS`` in UTC: comparable with SQLite text and PostgreSQL timestamps."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S")


class SqlToParquetOperator(OpenLineageMixin, BaseOperator):
    """Read the rows of the run's data interval from a SQL table and write them as one parquet file.

    Rows with ``data_interval_start <= timestamp_column < data_interval_end`` are selected, so every run,
    including a backfill of a past date, reads exactly its own interval. The parquet file is written to a
    temporary file and renamed into place, so a reader never sees half a partition.

    :param conn_id: Airflow connection of the source database (any ``DbApiHook`` connection: sqlite, postgres...).
    :param table: source table.
    :param timestamp_column: column that places a row in time (UTC).
    :param dataset: dataset name, used in the default output path and in messages.
    :param output_path: where to write the parquet file (templated). Default:
        ``$MLOPS_HOME/staging/<dataset>/<ds>.parquet``.
    :param columns: columns to select (default: all).
    :param parse_dates: columns converted to timestamps after reading (drivers differ: SQLite returns text).
    :param on_empty: ``"fail"`` (default) or ``"skip"`` when the interval has no rows; never an empty file.
    :param interval_start: override of the interval start (templated); default ``data_interval_start``.
    :param interval_end: override of the interval end (templated); default ``data_interval_end``.

    XCom (return value): ``{"path", "rows", "md5", "dataset", "partition", "interval_start", "interval_end"}``.
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_empty not in ON_EMPTY_CHOICES:
            raise ValueError(f"on_empty must be one of {ON_EMPTY_CHOICES}, got {on_empty!r}")
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
        """The SQL hook of the connection (resolved by its connection type)."""
        return BaseHook.get_hook(self.conn_id)  # type: ignore[return-value]

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
        placeholder = self.hook.placeholder
        cols = ", ".join(self.columns) if self.columns else "*"
        return (
            f"SELECT {cols} FROM {self.table} "
            f"WHERE {self.timestamp_column} >= {placeholder} AND {self.timestamp_column} < {placeholder} "
            f"ORDER BY {self.timestamp_column}"
        )

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        start, end = self._interval(context)
        partition = start.strftime("%Y-%m-%d")
        target = Path(self.output_path) if self.output_path else staging_dir() / self.dataset / f"{partition}.parquet"
        sql = self.build_query()
        params = (_as_utc_naive_text(start), _as_utc_naive_text(end))
        self.log.info("Extracting %s [%s, %s) from %s.%s", self.dataset, *params, self.conn_id, self.table)
        frame = self.hook.get_df(sql, parameters=params)
        if frame.empty:
            message = (
                f"No rows in {self.table} for {self.dataset} interval [{params[0]}, {params[1]}) "
                f"(connection {self.conn_id!r}). Check that the source was loaded for {partition}."
            )
            if self.on_empty == "skip":
                raise AirflowSkipException(message)
            raise AirflowFailException(message + " Set on_empty='skip' if empty days are expected.")
        for column in self.parse_dates:
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column], errors="coerce")
        for column in frame.select_dtypes(include="object").columns:
            # A column that mixes text with numbers (SQLite stores what it is given) cannot be written as
            # parquet; keep the values as text so validation reports the wrong type instead of a crash here.
            if pd.api.types.infer_dtype(frame[column], skipna=True).startswith("mixed"):
                self.log.warning("Column %s mixes types; it is kept as text for validation to judge", column)
                frame[column] = frame[column].astype("string")
        write_atomic(target, lambda tmp: frame.to_parquet(tmp, index=False))
        result = {
            "path": str(target),
            "rows": len(frame),
            "md5": md5_of_file(target),
            "dataset": self.dataset,
            "partition": partition,
            "interval_start": params[0],
            "interval_end": params[1],
        }
        self.log.info("Wrote %d rows to %s (md5 %s)", result["rows"], target, result["md5"])
        conn = self.hook.get_connection(self.conn_id)
        source = {"conn_type": conn.conn_type, "host": conn.host, "port": conn.port, "database": conn.schema}
        return self.record_lineage(result, source=source)

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the source table. Wrote: the staged partition file (md5, rows)."""
        return Lineage(
            inputs=[sql_table(**result["source"], table=self.table)],
            outputs=[local_file(result["path"], md5=result["md5"], rows=result["rows"])],
        )
