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
runs in the server's PostgreSQL, and none of the shared files on any component's disk.

The model serves live (issue 32): the test's copy of the card_fraud spec adds ``serving.endpoint``, so each promotion
deploys and canaries the challenger; the serving tasks go to the queue ``$MLOPS_SERVING_QUEUE`` that only worker-1
takes, whose default target folder a real Prometheus follows. The client's requests are counted per version by
Prometheus, and the api-server's health page reads its live section from Prometheus."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from mlops_provider.demo.churn_source import SourceSpec, dates_between, seed_range
from mlops_provider.demo.embedded import EmbeddedAirflow, distributed_components
from mlops_provider.demo.transactions_source import TRANSACTIONS
from tests.conftest import PROJECT_ROOT, embedded_environment, fresh_databases
from tests.e2e.browser import Browser, chromium_binary
from tests.e2e.loop import (
    FRAUD,
    Loop,
    check_loop_outcomes,
    clear_of_midnight,
    live_endpoint,
    unpause,
    wait_for,
    wait_for_dags,
    wait_for_loop,
)
from tests.servers import Prometheus, git_daemon_serving, prometheus_serving, s3_serving

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
DAYS, BAD_INDEX, DRIFT_INDEX = 4, 1, 2  # day 2 bad, days 3-4 drifted (day 3 triggers, day 4 is in the cooldown)
PORT, MLFLOW_PORT, REDIS_DB = 18795, 18500, 7
POSTGRES = "postgres@127.0.0.1:5432"
SHARED = "distributed/shared"  # the storage root's prefix in the bucket
PORT_OFFSET = 200  # the endpoint at 8800 (the spec's 8600 + this), its admin port 8801, backends from 8802
SERVING_WORKER = "worker-1"  # takes the serving queue (distributed_components)
SENT = 240  # requests of the live-metrics check
MODULE_MINUTES = 25  # the module's longest runs on a loaded machine


def live_spec(folder: Path) -> Path:
    """The card_fraud spec with a live endpoint (the churn spec's demo-sized canary), in ``folder``: its relative
    paths made absolute. The drift check keeps comparing the ingested days (the replayed days have no served traffic)
    and the backends capture nothing (this test is about the metrics)."""
    source = PROJECT_ROOT / "include" / "models"
    data = yaml.safe_load((source / "card_fraud.yaml").read_text())
    churn = yaml.safe_load((source / "churn_classifier.yaml").read_text())

    def absolute(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: absolute(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("../"):
            return str((source / value).resolve())
        return value

    data = absolute(data)
    data["serving"]["endpoint"] = churn["serving"]["endpoint"]
    data["serving"]["capture"] = {"fraction": 0}
    data["monitoring"]["current"] = "ingested"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "card_fraud.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def distributed(tmp_path_factory):
    import redis

    root = tmp_path_factory.mktemp("distributed")
    home, mlops, homes = root / "airflow", root / "mlops", root / "homes"
    for folder in (home, mlops, homes, root / "served", root / "prometheus"):
        folder.mkdir()
    live_spec(root / "models")
    end = clear_of_midnight(MODULE_MINUTES)
    days = dates_between(end - dt.timedelta(days=DAYS - 1), end)
    bad, drift_from = days[BAD_INDEX], days[DRIFT_INDEX]
    broker = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    broker.flushdb()
    with (
        fresh_databases("airflow", "mlflow", "source") as databases,
        s3_serving(root / "moto.log") as s3,
        git_daemon_serving(root / "served") as (git_url, registry),
        # Prometheus runs on the serving machine and follows the target files the serving tasks write there (the
        # serving worker's default folder: nothing shared with the other components).
        prometheus_serving(
            root / "prometheus", [str(homes / SERVING_WORKER / "serving" / "prometheus" / "*.json")]
        ) as prometheus,
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
            MLOPS_MODELS_DIR=str(root / "models"),
            MLOPS_ENDPOINT_PORT_OFFSET=str(PORT_OFFSET),
            MLOPS_PROMETHEUS_URL=prometheus.url,
        )
        env = embedded_environment(PROJECT_ROOT, ("distributed", "embedded"), base)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor" and env["MLOPS_SERVING_QUEUE"] == "serving"
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
        # seven processes importing Airflow on a shared 2-core machine: waiting for start-up is not a check of it
        airflow.start(timeout=480)
        try:
            wait_for_dags(airflow, models=(FRAUD,))  # the test's models folder holds card_fraud alone
            yield Loop(
                airflow=airflow, days=days, bad=bad, drift_from=drift_from, mlops=mlops, env=env, model=FRAUD,
                notes={"databases": databases, "s3": s3, "homes": homes, "prometheus": prometheus,
                       "root": root}, registry=registry,
                quarantined=lambda dataset, day: any(
                    k.endswith("/validation_result.json") for k in s3.keys(f"{SHARED}/quarantine/{dataset}/{day}/")
                ),
            )  # fmt: skip
        finally:
            airflow.stop()
            broker.flushdb()
            live_endpoint(serving_env(env, homes), FRAUD.name, stop=True)  # its processes outlive Airflow's


def serving_env(env: dict[str, str], homes: Path) -> dict[str, str]:
    """What the serving worker sees: its own MLOPS_HOME, the storage root and its connection."""
    return {**env, "MLOPS_HOME": str(homes / SERVING_WORKER)}


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

    check_live_serving_with_prometheus(distributed, state)


def check_live_serving_with_prometheus(distributed: Loop, state: dict[str, Any]) -> None:
    """The champion serves live on the serving worker; Prometheus scrapes it through the target files written there,
    counts the client's requests per version, and the api-server's health page reads its live section from it."""
    from mlops_provider.runtime import live_metrics as q
    from mlops_provider.runtime.backend import scrape
    from mlops_provider.runtime.traffic import replay

    airflow, homes = distributed.airflow, distributed.notes["homes"]
    prometheus: Prometheus = distributed.notes["prometheus"]
    champion = str(state["champion"])

    # Every task that operated the endpoint ran on the serving worker (the queue), so its target file is there only.
    promotion = FRAUD.dag("promotion")
    tis = airflow.api("GET", f"/api/v2/dags/{promotion}/dagRuns/~/taskInstances?limit=1000")["task_instances"]
    serving = [ti for ti in tis if ti["task_id"] in ("deploy", "canary_rollout") and ti["state"] == "success"]
    assert serving and {ti["hostname"] for ti in serving} == {SERVING_WORKER}, serving
    assert {ti["queue"] for ti in serving} == {"serving"}
    record = live_endpoint(serving_env(distributed.env, homes), FRAUD.name)
    assert record["port"] == 8600 + PORT_OFFSET
    assert {v: w for v, w in record["weights"].items() if w} == {champion: 100}, record["weights"]
    target_files = [p.relative_to(homes) for p in homes.rglob("serving/prometheus/*.json")]
    assert target_files == [Path(SERVING_WORKER, "serving", "prometheus", f"{FRAUD.name}.json")], target_files

    # Prometheus follows the target file: Caddy's admin API and every recorded backend are up.
    ports = {record["admin_port"], *(b["port"] for b in record["backends"].values())}
    wait_for(lambda: {int(t["scrapeUrl"].split(":")[2].split("/")[0]) for t in prometheus.targets()
                      if t["health"] == "up"} == ports, 60, "every endpoint target scraped")  # fmt: skip
    up = prometheus.query('up{job="mlops-serving"}')
    assert len(up) == len(ports) and all(r["value"] == 1 for r in up), up

    # The client's requests, counted per version by Prometheus exactly as the client saw them answered.
    before = {v: _answered(scrape(f"http://127.0.0.1:{b['port']}")) for v, b in record["backends"].items()}
    columns, rows = traffic_rows(distributed)
    summary = replay(f"http://127.0.0.1:{record['port']}/invocations", columns, rows, rate=60, count=SENT,
                     duration=60, concurrency=4)  # fmt: skip
    assert summary.sent == SENT and summary.failed == 0 and set(summary.versions) == {champion}, summary
    expected = {v: before[v] + summary.versions.get(v, 0) for v in before}
    answered = f'sum by (version) ({q.REQUESTS_METRIC}_total{{model="{FRAUD.name}",status_class="2xx"}})'

    def counted() -> dict[str, float]:
        return {r["metric"]["version"]: r["value"] for r in prometheus.query(answered)}

    def agrees() -> bool:
        seen = counted()  # a version that never answered may have no 2xx series
        return all(seen.get(v, 0.0) == float(n) for v, n in expected.items()) and set(seen) <= set(expected)

    wait_for(agrees, 30, f"Prometheus counting {expected} answered requests per version", interval=1)
    assert counted()[champion] >= SENT

    # The api-server's health page (its own empty disk) reads the live numbers from Prometheus.
    live = airflow.api("GET", f"/mlops/health.json?model={FRAUD.name}")["live"]
    assert live["source"] == "prometheus" and "prometheus_error" not in live, live
    assert live["prometheus_url"] == prometheus.url and champion in live["versions"]
    assert live["weights"][champion] == 100
    window = live["windows"]["300s"][champion]
    assert window["rate"] > 0 and window["error_rate"] == 0 and window["p95_ms"] > 0, window
    status, page = airflow._get(f"/mlops/health?model={FRAUD.name}", auth=True)
    assert status == 200 and "Numbers from Prometheus" in page and prometheus.url in page

    if chromium_binary() is None:
        if os.environ.get("MLOPS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (MLOPS_REQUIRE_BROWSER=1) but not installed")
        return
    shots = Path(os.environ.get("MLOPS_SCREENSHOTS") or distributed.notes["root"] / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with Browser() as browser:
        browser.visit(f"{airflow.base_url}/mlops/health?model={FRAUD.name}", token=airflow._token_value(),
                      screenshot=shots / "distributed_live_prometheus.png", full_page=True,
                      expect=["Numbers from Prometheus", f"v{champion}", "req/s"])  # fmt: skip
    assert (shots / "distributed_live_prometheus.png").stat().st_size > 10_000


def _answered(snapshot: dict[str, Any] | None) -> int:
    """2xx requests a backend answered (its own /metrics)."""
    assert snapshot is not None
    return int(snapshot["requests"].get("2xx", 0))


def traffic_rows(distributed: Loop) -> tuple[list[str], list[list[Any]]]:
    """Feature rows of the last (valid) day from the source database, JSON-ready."""
    import pandas as pd

    from mlops_provider.loop.spec import load_spec

    spec = load_spec(PROJECT_ROOT / "include" / "models" / "card_fraud.yaml")
    columns = [*spec.features.numerical, *spec.features.categorical]
    engine = create_engine(f"postgresql+psycopg2://{POSTGRES}/{distributed.notes['databases']['source']}")
    day = distributed.days[-1].isoformat()
    frame = pd.read_sql(text(f"SELECT * FROM {spec.dataset.table} WHERE {spec.dataset.timestamp_column} >= :day "
                             "LIMIT 100"), engine, params={"day": day})  # fmt: skip
    engine.dispose()
    split = json.loads(frame[columns].to_json(orient="split", index=False))
    return split["columns"], split["data"]
