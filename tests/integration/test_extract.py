"""SqlToParquetOperator against real SQLite and PostgreSQL sources through Airflow connections."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, dates_between, generate_day, seed_range
from mlops_provider.operators.sql import SqlToParquetOperator
from mlops_provider.utils.files import md5_of_file
from tests.helpers import task_context

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 4)
SPEC = SourceSpec(seed=11, rows_per_day=800)


def extract(**kwargs) -> SqlToParquetOperator:
    defaults = dict(
        task_id="extract",
        conn_id="mlops_source",
        table="customer_activity",
        timestamp_column="event_ts",
        parse_dates=["event_ts", "signup_date"],
        dataset="customer_activity",
    )
    return SqlToParquetOperator(**{**defaults, **kwargs})


@pytest.fixture
def sqlite_source(mlops_home):
    engine = create_engine(f"sqlite:///{mlops_home / 'source.db'}")
    seed_range(engine, dates_between(DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)), SPEC)
    return engine


def test_reads_exactly_the_interval(sqlite_source, mlops_home):
    result = extract().execute(task_context(DAY))
    frame = pd.read_parquet(result["path"])
    expected = generate_day(DAY, SPEC)
    assert result["rows"] == len(expected) == len(frame)
    assert frame["event_ts"].dt.date.eq(DAY).all()
    assert sorted(frame["event_id"]) == sorted(expected["event_id"])
    assert result["path"] == str(mlops_home / "staging" / "customer_activity" / f"{DAY}.parquet")
    assert result["md5"] == md5_of_file(mlops_home / "staging" / "customer_activity" / f"{DAY}.parquet")
    assert (result["interval_start"], result["interval_end"]) == (
        f"{DAY} 00:00:00",
        f"{DAY + dt.timedelta(days=1)} 00:00:00",
    )
    json.dumps(result)  # XCom stays JSON
    # No temporary file is left beside the partition.
    assert [p.name for p in (mlops_home / "staging" / "customer_activity").iterdir()] == [f"{DAY}.parquet"]


def test_same_interval_gives_identical_bytes(sqlite_source):
    first = extract().execute(task_context(DAY))
    second = extract().execute(task_context(DAY))
    assert first["md5"] == second["md5"]


def test_empty_interval_fails_or_skips(sqlite_source):
    empty_day = DAY + dt.timedelta(days=10)
    with pytest.raises(AirflowFailException, match=f"No rows in customer_activity .*{empty_day}"):
        extract().execute(task_context(empty_day))
    with pytest.raises(AirflowSkipException, match="No rows"):
        extract(on_empty="skip").execute(task_context(empty_day))


def test_zero_length_interval_is_explained(sqlite_source):
    context = task_context(DAY)
    context["data_interval_end"] = context["data_interval_start"]
    with pytest.raises(AirflowFailException, match="CronDataIntervalTimetable"):
        extract().execute(context)


def test_bad_on_empty_value():
    with pytest.raises(ValueError, match="on_empty"):
        extract(on_empty="ignore")


def test_postgresql_source(postgres_url, mlops_home, monkeypatch):
    seed_range(create_engine(postgres_url), [DAY - dt.timedelta(days=1), DAY], SPEC)
    url = create_engine(postgres_url).url
    conn = {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username, "schema": url.database}
    monkeypatch.setenv("AIRFLOW_CONN_PG_SOURCE", json.dumps(conn))
    whole = pd.read_parquet(extract(conn_id="pg_source").execute(task_context(DAY))["path"])
    assert len(whole) == len(generate_day(DAY, SPEC))
    assert whole["event_ts"].dt.date.eq(DAY).all()
    # Streamed through the server-side cursor 150 rows at a time: the same rows and dtypes.
    streamed = extract(conn_id="pg_source", chunk_rows=150).execute(task_context(DAY))
    pd.testing.assert_frame_equal(pd.read_parquet(streamed["path"]), whole)


def test_chunks_are_row_groups_and_widen_to_the_types_of_a_single_read(mlops_home):
    """Bounded-memory extract (issue 18): rows come and are written chunk_rows at a time (a row group each); a
    column typed differently by a later chunk (NULLs in an integer column, text in a numeric one) is widened in
    the whole file, so the file reads as one single-chunk extract."""
    import pyarrow.parquet as pq

    engine = create_engine(f"sqlite:///{mlops_home / 'source.db'}")
    seed_range(engine, [DAY], SPEC)
    with engine.begin() as conn:  # the last rows of the day: a NULL tenure (an integer column) and text charges
        last = conn.exec_driver_sql("SELECT max(event_ts) FROM customer_activity").scalar()
        conn.exec_driver_sql(
            "UPDATE customer_activity SET tenure_days = NULL, monthly_charges = 'n/a' WHERE event_ts = ?", (last,)
        )
    single = pd.read_parquet(extract(output_path=str(mlops_home / "single.parquet")).execute(task_context(DAY))["path"])
    result = extract(chunk_rows=100).execute(task_context(DAY))
    assert pq.ParquetFile(result["path"]).metadata.num_row_groups == -(-result["rows"] // 100) > 5
    chunked = pd.read_parquet(result["path"])
    pd.testing.assert_frame_equal(chunked, single)
    assert chunked["tenure_days"].dtype == "float64" and chunked["tenure_days"].isna().sum() >= 1
    assert (chunked["monthly_charges"] == "n/a").sum() >= 1
    assert sorted(p.name for p in (mlops_home / "staging" / "customer_activity").iterdir()) == [f"{DAY}.parquet"]
    with pytest.raises(ValueError, match="chunk_rows must be a positive number of rows, got 0"):
        extract(chunk_rows=0)


def test_text_in_a_numeric_column_is_kept_for_validation(mlops_home):
    engine = create_engine(f"sqlite:///{mlops_home / 'source.db'}")
    seed_range(engine, [DAY], SourceSpec(seed=11, rows_per_day=800, bad_dates={DAY: "wrong_types"}))
    frame = pd.read_parquet(extract().execute(task_context(DAY))["path"])
    assert (frame["monthly_charges"] == "n/a").sum() == len(frame) // 10
