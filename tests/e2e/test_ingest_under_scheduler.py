"""The ingest DAG under a real scheduler (``airflow standalone``), driven through the REST API v2 as a user would:
catchup over past days, a bad day, clearing a finished task, and the plugin serving the reports it links to."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, dates_between, seed_range
from mlops_provider.embedded import EmbeddedAirflow
from mlops_provider.operators.sql import SqlToParquetOperator
from tests.helpers import task_context

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAYS = 5
BAD_DAY_INDEX = 3  # the fourth day has a null flood


def git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """A fresh embedded Airflow on its own port, home and database, with a seeded source."""
    root = tmp_path_factory.mktemp("e2e")
    home, mlops = root / "airflow", root / "mlops"
    home.mkdir()
    mlops.mkdir()
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    days = dates_between(end - dt.timedelta(days=DAYS - 1), end)
    bad = days[BAD_DAY_INDEX]
    seed_range(create_engine(f"sqlite:///{mlops / 'source.db'}"), days, SourceSpec(bad_dates={bad: "null_flood"}))
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        MLOPS_HOME=str(mlops),
        MLOPS_START_DATE=days[0].isoformat(),
        AIRFLOW_CONN_MLOPS_SOURCE=json.dumps({"conn_type": "sqlite", "host": str(mlops / "source.db")}),
        AIRFLOW__CORE__PARALLELISM="4",
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([AIRFLOW, "pools", "import", str(PROJECT_ROOT / "config" / "pools.json")], env=env, check=True,
                   capture_output=True)  # fmt: skip
    airflow = EmbeddedAirflow(airflow_bin=AIRFLOW, airflow_home=home, port=18793, env=env)
    airflow.start()
    try:
        yield {"airflow": airflow, "days": days, "bad": bad, "mlops": mlops, "env": env}
    finally:
        airflow.stop()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def ingest_runs(airflow: EmbeddedAirflow) -> list[dict]:
    return airflow.api("GET", "/api/v2/dags/ingest/dagRuns?limit=100&order_by=logical_date")["dag_runs"]


def finished(airflow: EmbeddedAirflow, count: int) -> list[dict] | None:
    runs = ingest_runs(airflow)
    done = [r for r in runs if r["state"] in ("success", "failed")]
    return runs if len(runs) >= count and len(done) == len(runs) else None


def test_catchup_bad_day_clear_and_reports(loop, monkeypatch):
    airflow, days, bad, mlops = loop["airflow"], loop["days"], loop["bad"], loop["mlops"]
    wait_for(lambda: any(d["dag_id"] == "ingest" for d in airflow.api("GET", "/api/v2/dags")["dags"]), 120, "DAGs")
    assert airflow.api("GET", "/api/v2/importErrors")["total_entries"] == 0
    airflow.api("PATCH", "/api/v2/dags/ingest", {"is_paused": False})
    runs = wait_for(lambda: finished(airflow, DAYS), 600, f"{DAYS} ingest runs")

    # One run per day, each on exactly its own interval; the bad day failed, the others succeeded.
    by_day = {r["data_interval_start"][:10]: r for r in runs}
    assert sorted(by_day) == [d.isoformat() for d in days]
    assert {d: r["state"] for d, r in by_day.items()} == {
        d.isoformat(): ("failed" if d == bad else "success") for d in days
    }

    # Every good day is versioned, byte-identical to extracting that day on its own.
    workspace = mlops / "data-registry"
    monkeypatch.setenv("MLOPS_HOME", str(mlops / "one-by-one"))
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SOURCE", loop["env"]["AIRFLOW_CONN_MLOPS_SOURCE"])
    for day in days:
        tag = f"partition/customer_activity/{day}"
        if day == bad:
            assert git(workspace, "tag", "--list", tag) == ""
            continue
        alone = SqlToParquetOperator(
            task_id="extract", conn_id="mlops_source", table="customer_activity", timestamp_column="event_ts",
            parse_dates=["event_ts", "signup_date"], dataset="customer_activity",
        ).execute(task_context(day))  # fmt: skip
        assert f"Data-Md5: {alone['md5']}" in git(workspace, "log", "-1", "--format=%B", tag)

    # The bad day: validation failed with the check named, the partition is quarantined, nothing downstream ran.
    tis = airflow.api("GET", f"/api/v2/dags/ingest/dagRuns/{by_day[bad.isoformat()]['dag_run_id']}/taskInstances")
    states = {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}
    assert states["validate"] == "failed" and states["version_partition"] == "upstream_failed"
    assert (mlops / "quarantine" / "customer_activity" / bad.isoformat() / f"{bad}.parquet").is_file()
    quarantined = json.loads(
        (mlops / "quarantine" / "customer_activity" / bad.isoformat() / "validation_result.json").read_text()
    )
    assert quarantined["success"] is False

    # Clearing a finished task and letting it run again adds no commit and moves no tag.
    commits, tags = git(workspace, "rev-list", "--count", "HEAD"), git(workspace, "show-ref", "--tags")
    target = by_day[days[1].isoformat()]["dag_run_id"]
    airflow.api(
        "POST", "/api/v2/dags/ingest/clearTaskInstances",
        {"dag_run_id": target, "task_ids": ["version_partition"], "only_failed": False, "dry_run": False},
    )  # fmt: skip

    def cleared_task_done() -> bool:
        ti = airflow.api("GET", f"/api/v2/dags/ingest/dagRuns/{target}/taskInstances/version_partition")
        return ti["state"] == "success" and ti["try_number"] >= 2

    wait_for(cleared_task_done, 300, "the cleared task to run again")
    assert git(workspace, "rev-list", "--count", "HEAD") == commits
    assert git(workspace, "show-ref", "--tags") == tags

    # The extra links resolve: the plugin serves the validation result and Data Docs to a signed-in user.
    links = airflow.api("GET", f"/api/v2/dags/ingest/dagRuns/{target}/taskInstances/validate/links")["extra_links"]
    urls = [u for u in (links.get("GX Data Docs"), links.get("Validation result")) if u]
    assert len(urls) == 2, links
    for url in urls:
        assert airflow.request_status(url) == 200
    assert airflow.request_status("/mlops/reports/gx/customer_activity/none.json") == 404
    assert airflow.request_status(urls[0], auth=False) == 401
