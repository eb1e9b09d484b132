"""Driving the loop under a real scheduler through the REST API v2, and the outcomes every mode must show
(embedded and distributed run the same checks)."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mlops_provider.demo.embedded import EmbeddedAirflow
from mlops_provider.exceptions import EmbeddedAirflowError

T = TypeVar("T")
STAGES = ("drift_monitoring", "promotion", "training", "ingest")


@dataclass(frozen=True)
class LoopModel:
    """The model a loop test drives (one of the repository's specs) and the names its DAGs and data use."""

    name: str
    dataset: str
    experiment: str
    drift_share: float

    @classmethod
    def of(cls, spec_name: str) -> LoopModel:
        from mlops_provider.loop.spec import load_spec
        from tests.helpers import PROJECT_ROOT

        spec = load_spec(PROJECT_ROOT / "include" / "models" / f"{spec_name}.yaml")
        return cls(spec.name, spec.dataset.name, spec.experiment, spec.monitoring.drift_share)

    def dag(self, stage: str) -> str:
        return f"{self.name}__{stage}"

    @property
    def dags(self) -> tuple[str, ...]:
        return tuple(self.dag(stage) for stage in STAGES)


def clear_of_midnight(
    minutes: float, *, now: Callable[[], dt.datetime] | None = None, sleep: Callable[[float], None] = time.sleep
) -> dt.date:
    """Yesterday (UTC) for a module that seeds the days up to yesterday and runs for up to ``minutes``: when the
    module would run across midnight UTC, wait for the new day first. A scheduler that sees the day change queues
    the new day's runs (one day more than the module seeded), so a module must not straddle midnight."""
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    current = clock()
    midnight = dt.datetime.combine(current.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if midnight - current < dt.timedelta(minutes=minutes):
        wait = (midnight - current).total_seconds() + 30
        print(f"e2e: {wait:.0f} s to the new UTC day, under this module's {minutes} min: waiting for it")
        sleep(wait)
        current = clock()
    return current.date() - dt.timedelta(days=1)


CHURN = LoopModel.of("churn_classifier")
FRAUD = LoopModel.of("card_fraud")


@dataclass
class Loop:
    """A running Airflow with a seeded source: the model, the days, the bad day, the first drifted day, its homes."""

    airflow: EmbeddedAirflow
    days: list[dt.date]
    bad: dt.date
    drift_from: dt.date
    mlops: Path
    env: dict[str, str]
    model: LoopModel = CHURN
    notes: dict[str, Any] = field(default_factory=dict)
    #: the registry's git folder the checks read tags from (default: the one workspace ``<mlops>/data-registry``)
    registry: Path | None = None
    #: whether a day's partition of a dataset was quarantined (default: a result under ``<mlops>/quarantine``)
    quarantined: Callable[[str, dt.date], bool] | None = None

    def was_quarantined(self, dataset: str, day: dt.date) -> bool:
        if self.quarantined is not None:
            return self.quarantined(dataset, day)
        return bool(list((self.mlops / "quarantine" / dataset / day.isoformat()).glob("*/validation_result.json")))


def prepared_environment(
    airflow_bin: str, home: Path, dags: Path, mlops: Path, start: dt.date, **extra: str
) -> dict[str, str]:
    """The environment of a fresh embedded Airflow on its own home, database, DAG folder and MLOPS_HOME (source
    DB in it), migrated and with the project's pools; ``extra`` adds or overrides variables."""
    import json
    import os

    from tests.helpers import PROJECT_ROOT
    from tests.integration.test_rollout import free_base_port

    env = dict(
        os.environ,
        # the churn spec serves live (serving.endpoint, port 8600): this instance's endpoints on free ports
        MLOPS_ENDPOINT_PORT_OFFSET=str(free_base_port() - 8600),
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        MLOPS_HOME=str(mlops),
        MLOPS_START_DATE=start.isoformat(),
        AIRFLOW_CONN_MLOPS_SOURCE=json.dumps({"conn_type": "sqlite", "host": str(mlops / "source.db")}),
        AIRFLOW__CORE__PARALLELISM="4",
        MLOPS_PROJECT_ROOT=str(PROJECT_ROOT),
        **extra,
    )
    subprocess.run([airflow_bin, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([airflow_bin, "pools", "import", str(PROJECT_ROOT / "config" / "pools.json")], env=env,
                   check=True, capture_output=True)  # fmt: skip
    return env


def live_endpoint(env: dict[str, str], model: str, *, stop: bool = False) -> dict[str, Any]:
    """The deployment record of ``model``'s endpoint in the instance of ``env`` ({} when it has none); ``stop``: stop
    its proxy and backends too (the record stays)."""
    from mlops_provider.runtime.deployment import Endpoint
    from mlops_provider.utils.storage import STORAGE_CONN_ID, STORAGE_URL

    with pytest.MonkeyPatch.context() as mp:
        connection = f"AIRFLOW_CONN_{env.get(STORAGE_CONN_ID, '').upper()}"  # the storage root's, when on S3
        for name in ("MLOPS_HOME", "AIRFLOW_HOME", STORAGE_URL, STORAGE_CONN_ID, connection):
            if env.get(name) is not None:
                mp.setenv(name, env[name])
        endpoint = Endpoint(model, 8600 + int(env.get("MLOPS_ENDPOINT_PORT_OFFSET") or 0))
        if not endpoint.record_path.exists():
            return {}
        record = endpoint.load()
        if stop:
            endpoint.shutdown()
        return record


def git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True, check=True).stdout.strip()


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 2.0) -> T:
    """Poll ``predicate`` until it gives a true value or ``timeout`` passes. A poll whose API call timed out (the
    api-server did not answer within its 30 s on a machine under load) counts as "not yet", never as an answer;
    the wait's own deadline still bounds it, and the last such error is named when it expires."""
    import urllib.error

    deadline, slow = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (TimeoutError, urllib.error.URLError) as exc:
            if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, TimeoutError):
                raise
            slow = exc
            continue
        if value:
            return value
        time.sleep(interval)
    last = f" (last poll: {slow!r})" if slow else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{last}")


def dag_runs(airflow: EmbeddedAirflow, dag_id: str) -> list[dict[str, Any]]:
    return airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]


def task_states(airflow: EmbeddedAirflow, dag_id: str, run_id: str) -> dict[str, str]:
    tis = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in tis}


def all_finished(airflow: EmbeddedAirflow, dag_id: str, count: int) -> list[dict[str, Any]] | None:
    runs = dag_runs(airflow, dag_id)
    done = [r for r in runs if r["state"] in ("success", "failed")]
    return runs if len(runs) >= count and len(done) == len(runs) else None


def idle(airflow: EmbeddedAirflow, dag_id: str) -> bool:
    """No run queued or running and no asset event waiting for a run."""
    runs = dag_runs(airflow, dag_id)
    waiting = airflow.api("GET", f"/api/v2/dags/{dag_id}/assets/queuedEvents")["total_entries"]
    return not waiting and all(r["state"] in ("success", "failed") for r in runs)


def wait_for_dags(
    airflow: EmbeddedAirflow, timeout: float = 180, models: tuple[LoopModel, ...] = (CHURN, FRAUD)
) -> None:
    """Every model's DAGs are parsed (default: both example models), with no import error."""
    wanted = {dag for model in models for dag in model.dags}

    def loaded() -> bool:
        errors = airflow.api("GET", "/api/v2/importErrors")
        assert errors["total_entries"] == 0, errors  # fail now, with the error, not after the timeout
        ids = {d["dag_id"] for d in airflow.api("GET", "/api/v2/dags?limit=100")["dags"]}
        return wanted <= ids

    wait_for(loaded, timeout, "the DAGs to be parsed")
    errors = airflow.api("GET", "/api/v2/importErrors")
    assert errors["total_entries"] == 0, errors


def unpause(airflow: EmbeddedAirflow, *dag_ids: str) -> None:
    for dag_id in dag_ids:
        for attempt in range(5):  # SQLite refuses a write while the scheduler writes ("Database error", HTTP 500)
            try:
                airflow.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})  # idempotent: safe to repeat
                break
            except EmbeddedAirflowError as exc:
                if "Database error" not in str(exc) or attempt == 4:
                    raise
                time.sleep(2)


def wait_for_loop(loop: Loop, timeout: float) -> dict[str, list[dict[str, Any]]]:
    """Wait until every day went through ingest and drift monitoring and training/promotion are idle."""
    n, m = len(loop.days), loop.model
    wait_for(lambda: all_finished(loop.airflow, m.dag("ingest"), n), timeout, f"{n} ingest runs")
    wait_for(lambda: all_finished(loop.airflow, m.dag("drift_monitoring"), n), timeout, f"{n} drift_monitoring runs")
    for stage in ("training", "promotion", "training", "promotion"):
        dag_id = m.dag(stage)
        wait_for(lambda dag_id=dag_id: idle(loop.airflow, dag_id), timeout, f"{dag_id} to be idle")
    return {stage: dag_runs(loop.airflow, m.dag(stage)) for stage in STAGES}


def mlflow_state(env: dict[str, str], model: LoopModel = CHURN) -> dict[str, Any]:
    """Training runs and model versions in the loop's MLflow (read in a child with the loop's environment)."""
    import json
    import sys

    code = (
        "import json; from mlops_provider.hooks.mlflow import MlflowHook\n"
        "h = MlflowHook(); c = h.get_client()\n"
        f"e = c.get_experiment_by_name('{model.experiment}')\n"
        "runs = c.search_runs([e.experiment_id]) if e else []\n"
        f"vs = c.search_model_versions(\"name = '{model.name}'\")\n"
        "print(json.dumps({'tracking_uri': h.tracking_uri,"
        " 'runs': [{'id': r.info.run_id, 'tags': r.data.tags, 'params': r.data.params} for r in runs],"
        " 'versions': [{'version': v.version, 'run_id': v.run_id, 'tags': dict(v.tags)} for v in vs],"
        f" 'champion': h.alias_version('{model.name}', 'champion'),"
        f" 'challenger': h.alias_version('{model.name}', 'challenger')}}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def check_loop_outcomes(loop: Loop, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What the loop must have done, in any mode. Returns the MLflow state for further checks."""
    airflow, days, bad, model = loop.airflow, loop.days, loop.bad, loop.model
    dataset = model.dataset
    workspace = loop.registry or loop.mlops / "data-registry"

    # Ingest: one run per day on exactly its interval; the bad day failed at validation and was quarantined.
    by_day = {r["data_interval_start"][:10]: r for r in runs["ingest"]}
    assert sorted(by_day) == [d.isoformat() for d in days]
    assert {d: r["state"] for d, r in by_day.items()} == {
        d.isoformat(): ("failed" if d == bad else "success") for d in days
    }
    states = task_states(airflow, model.dag("ingest"), by_day[bad.isoformat()]["dag_run_id"])
    assert states["validate"] == "failed" and states["version_partition"] == "upstream_failed"
    assert loop.was_quarantined(dataset, bad)
    tags = set(git(workspace, "tag", "--list").split())
    for day in days:
        assert (f"partition/{dataset}/{day}" in tags) is (day != bad)
        assert (f"training-set/{model.name}/{day}" in tags) is (day != bad)

    # Drift monitoring: one run per day, all finished; the quarantined day was skipped at the wait.
    drift_by_day = {r["data_interval_start"][:10]: r for r in runs["drift_monitoring"]}
    assert sorted(drift_by_day) == [d.isoformat() for d in days]
    assert all(r["state"] == "success" for r in drift_by_day.values())
    bad_states = task_states(airflow, model.dag("drift_monitoring"), drift_by_day[bad.isoformat()]["dag_run_id"])
    assert bad_states["wait_for_training_set"] == "skipped" and bad_states["drift_report"] == "skipped"

    # Training: the bootstrap run, then exactly one drift-triggered run, for a drifted day, with the reason.
    training = {r["dag_run_id"]: r for r in runs["training"]}
    assert training[f"bootstrap__{dataset}"]["conf"]["reason"] == "bootstrap"
    drift_runs = [r for r in training.values() if r["dag_run_id"].startswith("drift__")]
    assert len(drift_runs) == 1, sorted(training)
    triggered = drift_runs[0]
    window_end = triggered["conf"]["detail"]["window_end"]
    assert window_end >= loop.drift_from.isoformat()
    assert triggered["conf"]["reason"] == "drift" and triggered["conf"]["detail"]["drift_share"] >= model.drift_share
    assert triggered["conf"]["dataset_rev"] == f"training-set/{model.name}/{window_end}"
    assert all(r["state"] == "success" for r in training.values()), training

    # MLflow: one run per training run, one version per run, the gate decided on every challenger.
    state = mlflow_state(loop.env, model)
    keys = [r["tags"].get("airflow.run_key") for r in state["runs"]]
    assert len(keys) == len(set(keys)) == len(training)
    assert sorted(r["tags"]["airflow.run_id"] for r in state["runs"]) == sorted(training)
    run_ids = [v["run_id"] for v in state["versions"]]
    assert len(run_ids) == len(set(run_ids)) == len(training)
    drift_run = next(r for r in state["runs"] if r["tags"]["airflow.run_id"] == triggered["dag_run_id"])
    assert drift_run["tags"]["trigger.reason"] == "drift"
    drift_version = next(v for v in state["versions"] if v["run_id"] == drift_run["id"])
    assert drift_version["tags"].get("gate.decision") in ("promote", "reject"), drift_version["tags"]
    assert state["champion"] is not None
    assert all(r["state"] == "success" for r in runs["promotion"]), runs["promotion"]
    return state


def serving_paths(env: dict[str, str], model: str) -> tuple[Path, Path]:
    """The deployment record and the verdicts folder of ``model``'s endpoint in the instance of ``env``."""
    from mlops_provider.runtime.deployment import serving_records
    from mlops_provider.utils.storage import STORAGE_CONN_ID, STORAGE_URL, location

    with pytest.MonkeyPatch.context() as mp:
        for name in ("MLOPS_HOME", "AIRFLOW_HOME", STORAGE_URL, STORAGE_CONN_ID):
            if env.get(name) is not None:
                mp.setenv(name, env[name])
        folder = Path(location(serving_records(model)))  # a local path (str() of a local root is "file:/...")
    return folder / "deployment.json", folder / "verdicts"


class CanaryClient(threading.Thread):
    """A client of a model's endpoint: while the deployment record gives two versions a weight (a canary baking),
    replay ``rows`` through the endpoint at ``rate`` requests a second, one line per request in ``log`` (the
    client-side log of :func:`mlops_provider.runtime.traffic.replay`); idle otherwise (reads the record every half
    second). Each replay goes on from the row where the previous one stopped, so the client's traffic goes through
    ``rows`` rather than repeating their first few. ``totals``: sent, failed, retried and the answers per version.
    ``key_column``: one of ``columns``, the rows' key: each log line names its rows' keys beside the predictions they
    got (joinable with the labels)."""

    def __init__(
        self,
        record: Path,
        columns: list[str],
        rows: list[list[Any]],
        log: Path,
        rate: float = 12.0,
        key_column: str | None = None,
    ) -> None:
        super().__init__(daemon=True, name="canary-client")
        self.record, self.columns, self.rows, self.log, self.rate = record, columns, rows, log, rate
        self.key_column = key_column
        self.offset = 0
        self.stop = threading.Event()
        self.totals: Counter[str] = Counter()

    def run(self) -> None:
        import json

        from mlops_provider.runtime.traffic import replay

        while not self.stop.wait(0.5):
            try:
                record = json.loads(self.record.read_text()) if self.record.exists() else None
            except (OSError, ValueError):  # being replaced: read it again
                continue
            if record is None or sum(1 for w in record["weights"].values() if w) < 2:
                continue
            rows = self.rows[self.offset :] + self.rows[: self.offset]
            summary = replay(f"http://127.0.0.1:{record['port']}/invocations", self.columns, rows,
                             rate=self.rate, count=10_000, duration=2.0, log_file=self.log, stop=self.stop,
                             key_column=self.key_column)  # fmt: skip
            self.offset = (self.offset + summary.sent) % len(self.rows)
            self.totals.update(sent=summary.sent, failed=summary.failed, retried=summary.retried)
            self.totals.update({f"v{v}": n for v, n in summary.versions.items()})

    def lines(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def __enter__(self) -> CanaryClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=30)
