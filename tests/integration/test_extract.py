"""SqlToParquetOperator against real SQLite and PostgreSQL sources through Airflow connections."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, dates_between, generate_day, seed_range
from mlops_provider.files import md5_of_file
from mlops_provider.operators.sql import SqlToParquetOperator
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
    result = extract(conn_id="pg_source").execute(task_context(DAY))
    frame = pd.read_parquet(result["path"])
    assert len(frame) == len(generate_day(DAY, SPEC))
    assert frame["event_ts"].dt.date.eq(DAY).all()


def test_text_in_a_numeric_column_is_kept_for_validation(mlops_home):
    engine = create_engine(f"sqlite:///{mlops_home / 'source.db'}")
    seed_range(engine, [DAY], SourceSpec(seed=11, rows_per_day=800, bad_dates={DAY: "wrong_types"}))
    frame = pd.read_parquet(extract().execute(task_context(DAY))["path"])
    assert (frame["monthly_charges"] == "n/a").sum() == len(frame) // 10
