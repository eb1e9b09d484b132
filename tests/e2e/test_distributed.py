"""Distributed mode on this machine, without containers for the services: CeleryExecutor with two workers, a fresh
PostgreSQL database for Airflow's metadata, another for the MLflow tracking server's backend store and one for
the demo source, Redis as the broker. The configuration is ``config/distributed.env`` on top of the embedded
one (the same settings, switched by environment). It runs the second example model (card_fraud: another schema,
key, label, label delay and suite, from the same DAG factory) through the whole loop, while the embedded
end-to-end test runs the churn demo's.

No two Airflow components share a disk (issue 18): each has its own ``MLOPS_HOME``. What tasks hand to each other,
the reports and the records go through an S3-protocol server (moto) as ``MLOPS_STORAGE_URL``; the data registry is
a git remote served by ``git daemon`` that every worker clones, with its DVC remote on the same S3 server. The
loop must show the same outcomes as under the embedded default, with tasks spread over both workers, the MLflow
runs in the server's PostgreSQL, and none of the shared files on any component's disk."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mlops_provider.demo.churn_source import SourceSpec, dates_between, seed_range
from mlops_provider.demo.embedded import EmbeddedAirflow, distributed_components
from mlops_provider.demo.transactions_source import TRANSACTIONS
from tests.conftest import PROJECT_ROOT, embedded_environment, fresh_databases
from tests.e2e.loop import FRAUD, Loop, check_loop_outcomes, unpause, wait_for_dags, wait_for_loop
from tests.servers import git_daemon_serving, s3_serving

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
DAYS, BAD_INDEX, DRIFT_INDEX = 4, 1, 2  # day 2 bad, days 3-4 drifted (day 3 triggers, day 4 is in the cooldown)
PORT, MLFLOW_PORT, REDIS_DB = 18795, 18500, 7
POSTGRES = "postgres@127.0.0.1:5432"
SHARED = "distributed/shared"  # the storage root's prefix in the bucket


@pytest.fixture(scope="module")
def distributed(tmp_path_factory):
    import redis

    root = tmp_path_factory.mktemp("distributed")
    home, mlops, homes = root / "airflow", root / "mlops", root / "homes"
    for folder in (home, mlops, homes, root / "served"):
        folder.mkdir()
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    days = dates_between(end - dt.timedelta(days=DAYS - 1), end)
    bad, drift_from = days[BAD_INDEX], days[DRIFT_INDEX]
    broker = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    broker.flushdb()
    with (
        fresh_databases("airflow", "mlflow", "source") as databases,
        s3_serving(root / "moto.log") as s3,
        git_daemon_serving(root / "served") as (git_url, registry),
    ):
        # Only what the test decides; everything else comes from config/distributed.env + config/embedded.env.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_"))}
        base.update(
            AIRFLOW_HOME=str(home),
            MLOPS_HOME=str(mlops),
            MLOPS_START_DATE=days[0].isoformat(),
            MLOPS_AIRFLOW_DB=databases["airflow"],
            MLOPS_MLFLOW_DB=databases["mlflow"],
            MLOPS_SOURCE_DB=databases["source"],
            MLOPS_REDIS=f"redis://127.0.0.1:6379/{REDIS_DB}",
            MLOPS_MLFLOW_PORT=str(MLFLOW_PORT),
            MLOPS_STORAGE_URL=f"s3://{s3.bucket}/{SHARED}",
            MLOPS_STORAGE_CONN_ID="mlops_storage",
            AIRFLOW_CONN_MLOPS_STORAGE=s3.aws_connection(),
            AIRFLOW_CONN_DVC_DEFAULT=s3.dvc_connection(git_url, "distributed/dvc"),
        )
        env = embedded_environment(PROJECT_ROOT, ("distributed", "embedded"), base)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        seed_range(
            create_engine(f"postgresql+psycopg2://{POSTGRES}/{databases['source']}"), days,
            SourceSpec(drift_from=drift_from, bad_dates={bad: "null_flood"}, epoch=days[0]), TRANSACTIONS,
        )  # fmt: skip
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([str(BIN / "airflow"), "pools", "import", str(PROJECT_ROOT / "config" / "pools.json")],
                       env=env, check=True, capture_output=True)  # fmt: skip
        airflow = EmbeddedAirflow(
            airflow_bin=str(BIN / "airflow"), airflow_home=home, port=PORT, env=env,
            components=distributed_components(env, BIN, PORT, homes=homes),
        )  # fmt: skip
        airflow.start(timeout=240)
        try:
            wait_for_dags(airflow)
            yield Loop(
                airflow=airflow, days=days, bad=bad, drift_from=drift_from, mlops=mlops, env=env, model=FRAUD,
                notes={"databases": databases, "s3": s3, "homes": homes}, registry=registry,
                quarantined=lambda dataset, day: any(
                    k.endswith("/validation_result.json") for k in s3.keys(f"{SHARED}/quarantine/{dataset}/{day}/")
                ),
            )  # fmt: skip
        finally:
            airflow.stop()
            broker.flushdb()


def test_the_loop_on_celery_postgres_redis_and_an_mlflow_server(distributed):
    airflow = distributed.airflow
    unpause(airflow, *FRAUD.dags)
    runs = wait_for_loop(distributed, timeout=1800)
    state = check_loop_outcomes(distributed, runs)

    # MLflow runs and model versions live in the tracking server's PostgreSQL backend store.
    assert state["tracking_uri"] == f"http://127.0.0.1:{MLFLOW_PORT}"
    mlflow_db = create_engine(f"postgresql+psycopg2://{POSTGRES}/{distributed.notes['databases']['mlflow']}")
    with mlflow_db.connect() as conn:
        stored_runs = set(conn.execute(text("SELECT run_uuid FROM runs")).scalars())
        stored_versions = conn.execute(text("SELECT count(*) FROM model_versions")).scalar()
    assert {r["id"] for r in state["runs"]} <= stored_runs
    assert stored_versions == len(state["versions"])
    mlflow_db.dispose()

    # Tasks ran on both Celery workers (each reports its own hostname).
    hosts: Counter[str] = Counter()
    for dag_id in FRAUD.dags:
        tis = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?limit=1000")["task_instances"]
        hosts.update(ti["hostname"] for ti in tis if ti["state"] == "success" and ti["hostname"])
    assert {"worker-1", "worker-2"} <= set(hosts), hosts
    assert min(hosts["worker-1"], hosts["worker-2"]) >= 5, hosts

    # No common disk: what tasks handed over, the reports and the records are objects; no component's own disk
    # holds any of them (each worker holds its own clone of the registry and its own work files).
    s3, homes = distributed.notes["s3"], distributed.notes["homes"]
    shared = {key.split("/")[2] for key in s3.keys(f"{SHARED}/")}
    assert {"staging", "quarantine", "reports"} <= shared, shared
    kinds = {key.split("/")[3] for key in s3.keys(f"{SHARED}/reports/")}
    assert {"gx", "drift", "performance", "ledgers", "retraining"} <= kinds, kinds
    for component in homes.iterdir():
        held = [p.relative_to(component) for p in component.rglob("*") if p.is_file()]
        assert not [p for p in held if p.parts[0] in ("staging", "quarantine", "reports", "notifications")], held
    assert all((homes / worker / "data-registry" / ".git").is_dir() for worker in ("worker-1", "worker-2"))
    assert not (distributed.mlops / "data-registry").exists() and not (distributed.mlops / "staging").exists()

    # The plugin's model health page (api-server, its own empty disk) reads the monitoring records from the bucket.
    health = airflow.api("GET", f"/mlops/health.json?model={FRAUD.name}")
    assert health["drift"] and {d["day"] for d in health["drift"]} <= {d.isoformat() for d in distributed.days}
