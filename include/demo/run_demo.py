"""The demo command (README quickstart 1): run the built stages of the loop under a real Airflow scheduler.

Steps: seed the demo source with three weeks of days (drift injected in the third week, one bad day), start
the embedded Airflow (scheduler, triggerer, dag-processor, api-server) in its own process group, check that
every DAG loads (the factory builds five per model spec), unpause the churn model's ``ingest`` and
``drift_monitoring`` (both daily with catchup: one run per day), ``training`` (triggered by drift_monitoring:
bootstrap, drift, performance) and ``promotion`` (scheduled on the challenger Asset), wait while printing
progress, and end with a summary: versioned partitions, the quarantined day, training-set versions, MLflow runs
with their trigger reasons, the champion history with the gate's verdicts, drift share and labelled AUC per day,
the drift-triggered retraining and why, and where to look.
Exits non-zero when the loop did not close (no drift-triggered retraining decided by the gate).

Run through ``make demo`` (which installs, initialises and exports config/embedded.env first).
``--keep-running`` leaves Airflow up for the UI until Ctrl-C; ``--foreground`` is ``make up``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mlops_provider.demo.embedded import EmbeddedAirflow, EmbeddedAirflowError, distributed_components
from mlops_provider.hooks.mlflow import MlflowHook

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAYS = 21
DRIFT_DAY = 15  # 1-based day of the window from which the source drifts
BAD_DAY = 8  # 1-based day of the window with a null flood
TERMINAL = {"success", "failed"}
#: Seconds between two parses of a DAG file during the demo (Airflow's default: 30); longer than the demo.
DEMO_PARSE_INTERVAL = 1800
#: Seconds between two polls of the REST API while the demo waits (runs, the bad version's run, DAG loading): the
#: end of each wait is noticed this late at most. Each poll is one or two small GETs to the api-server.
POLL_SECONDS = 1.0
SOURCE_CONN_ID = "mlops_source"
#: The model the demo runs (the churn demo's spec); the other example model's DAGs load too and stay paused.
SPEC_FILE = PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml"


def _spec():  # noqa: ANN202 (a ModelSpec)
    from mlops_provider.loop.spec import load_spec

    return load_spec(SPEC_FILE)


def demo_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The three weeks of days that end yesterday."""
    end = today - dt.timedelta(days=1)
    return end - dt.timedelta(days=DAYS - 1), end


def seed_source(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    from airflow.sdk import BaseHook

    from mlops_provider.demo.churn_source import SourceSpec, dates_between, seed_range

    drift_from = start + dt.timedelta(days=DRIFT_DAY - 1)
    bad_day = start + dt.timedelta(days=BAD_DAY - 1)
    spec = SourceSpec(drift_from=drift_from, bad_dates={bad_day: "null_flood"}, epoch=start)  # same rows any day
    engine = BaseHook.get_hook(SOURCE_CONN_ID).get_sqlalchemy_engine()  # type: ignore[attr-defined]
    written = seed_range(engine, dates_between(start, end), spec)
    print(f"Seeded {sum(written.values())} rows for {start} .. {end} (drift from {drift_from}, bad data on {bad_day})")
    return drift_from, bad_day


def _dag_files() -> list[Path]:
    dags_folder = Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", PROJECT_ROOT / "dags"))
    return sorted(p for p in dags_folder.glob("*.py") if not p.name.startswith("_"))


def check_dags(airflow: EmbeddedAirflow, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Wait until every DAG file is parsed; fail on any import error. Returns the DAGs the API lists."""
    files = _dag_files()
    deadline = time.monotonic() + timeout
    while True:
        errors = airflow.api("GET", "/api/v2/importErrors")["import_errors"]
        if errors:
            lines = "\n".join(f"  {e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}" for e in errors)
            raise SystemExit(f"DAG import errors:\n{lines}")
        dags = airflow.api("GET", "/api/v2/dags?limit=100")["dags"]
        missing = [f.name for f in files if f.name not in {Path(d["fileloc"]).name for d in dags}]
        if not missing:
            return list(dags)
        if time.monotonic() > deadline:
            raise SystemExit(f"DAG files not loaded after {timeout:.0f} s: {', '.join(missing)}")
        time.sleep(POLL_SECONDS)


def wait_for_runs(airflow: EmbeddedAirflow, dag_id: str, expected: int, timeout: float) -> list[dict[str, Any]]:
    """Print progress until ``expected`` runs of ``dag_id`` are finished; returns the runs."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        runs = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")["dag_runs"]
        states = Counter(r["state"] for r in runs)
        line = f"  {dag_id}: {len(runs)}/{expected} runs created; " + ", ".join(
            f"{n} {s}" for s, n in sorted(states.items())
        )
        if line != last:
            print(line, flush=True)
            last = line
        if len(runs) >= expected and sum(states[s] for s in TERMINAL) >= expected:
            return list(runs)
        if time.monotonic() > deadline:
            raise SystemExit(f"{dag_id}: runs not finished after {timeout:.0f} s ({line.strip()})")
        time.sleep(POLL_SECONDS)


def wait_until_idle(airflow: EmbeddedAirflow, dag_id: str, timeout: float) -> list[dict[str, Any]]:
    """Wait until ``dag_id`` has a finished run, none queued or running, and no asset event waiting for it."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        runs = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]
        waiting = airflow.api("GET", f"/api/v2/dags/{dag_id}/assets/queuedEvents")["total_entries"]
        states = Counter(r["state"] for r in runs)
        line = f"  {dag_id}: " + (", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no runs yet")
        line += f"; {waiting} asset event(s) waiting" if waiting else ""
        if line != last:
            print(line, flush=True)
            last = line
        if runs and not states["queued"] and not states["running"] and not waiting:
            return list(runs)
        if time.monotonic() > deadline:
            raise SystemExit(f"{dag_id}: runs not finished after {timeout:.0f} s ({line.strip()})")
        time.sleep(POLL_SECONDS)


def summarize_training() -> None:
    from mlops_provider.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    client = hook.get_client()
    spec = _spec()
    model = spec.name
    experiment = client.get_experiment_by_name(spec.experiment)
    if experiment is None:
        print("\nNo MLflow runs.")
        return
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    versions = {v.run_id: v.version for v in client.search_model_versions(f"name = '{model}'")}
    print(f"\nMLflow runs (experiment {spec.experiment}, store {hook.tracking_uri}):")
    print(f"  {'run':<10} {'status':<9} {'version':<8} {'reason':<8} {'training set':<42} {'roc_auc':>8}")
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        version = versions.get(run.info.run_id, "-")
        reason, dataset = tags.get("trigger.reason", "-"), tags.get("data.rev_name", "-")
        print(
            f"  {run.info.run_id[:8]:<10} {run.info.status:<9} {version:<8} {reason:<8} {dataset:<42} "
            f"{metrics.get('roc_auc', 0):8.4f}"
        )
    print("\nChampion history (promotion gate verdicts):")
    for mv in sorted(client.search_model_versions(f"name = '{model}'"), key=lambda v: int(v.version)):
        tags = client.get_model_version(model, mv.version).tags
        if "gate.decision" not in tags:
            continue
        promoted = f"promoted {tags['promotion.promoted_at']}" if "promotion.promoted_at" in tags else ""
        print(f"  v{mv.version:<4} {tags['gate.decision']:<8} {promoted:<36} {tags.get('gate.reason', '')[:90]}")
    aliases = {a: hook.alias_version(model, a) for a in ("champion", "previous", "challenger")}
    print("  aliases: " + ", ".join(f"{a} -> v{v}" for a, v in aliases.items() if v))
    print(f"  ledgers: {Path(os.environ['MLOPS_HOME']) / 'reports' / 'ledgers' / model}")


class CanaryTraffic(threading.Thread):
    """The demo's clients: while the churn endpoint's record gives two versions a weight (a canary step baking),
    replay rows of a generated day through the endpoint, :data:`CANARY_RATE` requests a second, so the step's
    analysis has live numbers to judge (the spec's ``min_requests: 0`` would pass a step without any, saying so).
    Idle otherwise: it only reads the record every half second."""

    CANARY_RATE = 20.0

    def __init__(self, day: dt.date) -> None:
        super().__init__(daemon=True, name="canary-traffic")
        self.day = day
        self.stop = threading.Event()
        self.totals: Counter[str] = Counter()  # sent, failed, retried, and "v<N>" answers

    def run(self) -> None:
        from mlops_provider.demo.churn_source import SourceSpec, generate_day
        from mlops_provider.runtime.traffic import replay

        spec = _spec()
        endpoint = _endpoint(spec)
        if endpoint is None:
            return
        columns = [*spec.features.numerical, *spec.features.categorical]
        frame = generate_day(self.day, SourceSpec(rows_per_day=400))[columns]
        rows = frame.astype(object).where(frame.notna(), None).values.tolist()
        while not self.stop.wait(0.5):
            try:
                record = endpoint.load() if endpoint.record_path.exists() else None
            except (OSError, ValueError):  # the record is being replaced: read it again
                continue
            if record is None or sum(1 for w in record["weights"].values() if w) < 2:
                continue
            summary = replay(f"http://127.0.0.1:{record['port']}/invocations", columns, rows, rate=self.CANARY_RATE,
                             count=10_000, duration=2.0, stop=self.stop)  # fmt: skip
            self.totals.update(sent=summary.sent, failed=summary.failed, retried=summary.retried)
            self.totals.update({f"v{v}": n for v, n in summary.versions.items()})


def _endpoint(spec: Any) -> Any:
    """The spec's endpoint (None when it serves nothing live)."""
    if spec.serving.endpoint is None:
        return None
    from mlops_provider.runtime.deployment import Endpoint

    return Endpoint(spec.name, **spec.serving.deploy_arguments())


def canary_a_bad_version(airflow: EmbeddedAirflow, traffic: CanaryTraffic, timeout: float) -> dict[str, Any] | None:
    """Register a deliberately bad version (``mlops_provider.demo.bad_models``: it passes every offline check, and
    answers a constant live), run the promotion DAG for it through the REST API as a user would (conf ``version``),
    print its canary's verdict. Returns the verdict (None: the model serves nothing live or has no champion)."""
    import json
    import tempfile

    from mlops_provider.demo.bad_models import LIVE_CONSTANT, register_live_regression
    from mlops_provider.runtime.deployment import serving_records

    spec = _spec()
    hook = MlflowHook()
    champion = hook.alias_version(spec.name, "champion")
    if spec.serving.endpoint is None or champion is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bad-version-") as scratch:
        bad = register_live_regression(hook, spec.name, champion, Path(scratch))
    print(
        f"\nA deliberately bad version: v{bad} wraps the champion v{champion} and the source's own churn formula "
        f"(a little better offline: the gate lets it through) and answers {LIVE_CONSTANT} to every live request."
    )
    dag_id = spec.dag_id("promotion")
    run_id = f"manual__bad_version_v{bad}"
    airflow.api("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                {"dag_run_id": run_id, "logical_date": None, "conf": {"version": bad}})  # fmt: skip
    print(f"  triggered {dag_id} run {run_id} (conf {{\"version\": \"{bad}\"}}) through the REST API; the demo "
          "clients replay rows while its canary bakes ...", flush=True)  # fmt: skip
    sent_before = traffic.totals["sent"], traffic.totals["failed"]
    deadline = time.monotonic() + timeout
    while airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"] not in TERMINAL:
        if time.monotonic() > deadline:
            raise SystemExit(f"{dag_id} run {run_id} not finished after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
    tis = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
    states = {ti["task_id"]: ti["state"] for ti in tis}
    print("  " + ", ".join(f"{t} {states.get(t)}" for t in ("evaluate", "gate", "shadow_check", "deploy",
                                                          "canary_rollout", "promote")))  # fmt: skip
    paths = sorted(serving_records(spec.name).glob(f"verdicts/v{bad}-*.json"), key=lambda p: p.stat().st_mtime)
    verdict = json.loads(paths[-1].read_text()) if paths else {}
    if verdict:
        steps = "; ".join(_step_line(step) for step in verdict["steps"])
        print(f"  rollback verdict: {verdict.get('outcome')}, alarm {verdict.get('alarm')}: {steps}")
    now_serving = {v: w for v, w in _endpoint(spec).load()["weights"].items() if w}
    print(f"  champion after: v{hook.alias_version(spec.name, 'champion')}; traffic: "
          + ", ".join(f"v{v} {w}%" for v, w in now_serving.items())
          + f"; demo clients during this canary: {traffic.totals['sent'] - sent_before[0]} requests, "
          f"{traffic.totals['failed'] - sent_before[1]} failed")  # fmt: skip
    return verdict


def summarize_serving(traffic: CanaryTraffic | None) -> None:
    """The live endpoint: URL, weights per version, and each canary's verdict."""
    import json

    from mlops_provider.runtime.deployment import serving_records

    spec = _spec()
    endpoint = _endpoint(spec)
    if endpoint is None:
        return
    if not endpoint.record_path.exists():
        print(f"\nLive endpoint: none yet (no champion was promoted; spec serving.endpoint port {endpoint.port})")
        return
    record = endpoint.load()
    print(f"\nLive endpoint: http://127.0.0.1:{record['port']}/invocations  (Caddy; record {endpoint.record_path})")
    for version, backend in sorted(record["backends"].items(), key=lambda kv: int(kv[0])):
        print(f"  v{version:<4} weight {record['weights'].get(version, 0):>3}%  backend 127.0.0.1:{backend['port']}")
    verdicts = sorted(serving_records(spec.name).glob("verdicts/*.json"), key=lambda p: p.stat().st_mtime)
    for path in verdicts:
        verdict = json.loads(path.read_text())
        steps = "; ".join(_step_line(step) for step in verdict["steps"])
        if not verdict.get("baseline"):
            print(f"  v{verdict['version']}: first champion, served at 100% at once")
            continue
        print(f"  canary v{verdict['version']} (baseline v{verdict['baseline']}): {verdict.get('outcome')}; "
              f"{steps or verdict.get('reason') or ''}")  # fmt: skip
    if traffic is not None and traffic.totals:
        answered = ", ".join(f"{k} {n}" for k, n in sorted(traffic.totals.items()) if k.startswith("v"))
        print(f"  demo clients during canaries: {traffic.totals['sent']} requests, {traffic.totals['failed']} failed, "
              f"{traffic.totals['retried']} retried once; answered by {answered}")  # fmt: skip
    print(f"  try: mlops replay <a day's parquet> --url http://127.0.0.1:{record['port']}/invocations --rate 10 "
          "--count 50 --duration 10 --columns <the features>")  # fmt: skip


def _step_line(step: dict[str, Any]) -> str:
    judged = f"canary {step.get('canary', {}).get('judged_requests', 0)}, baseline " \
        f"{step.get('baseline', {}).get('judged_requests', 0)} requests"  # fmt: skip
    verdict = "pass" if step.get("passed") else f"ALARM {step.get('alarm')}"
    return f"{step['percent']}%: {verdict} ({judged}; {step.get('reason')})"


def summarize_drift(airflow: EmbeddedAirflow) -> list[dict[str, Any]]:
    """Print drift share and labelled AUC per day and the triggered training runs; returns the drift-triggered."""
    from mlops_provider.layout import deciding_signal
    from mlops_provider.utils.evidence import first_attempt

    reports = Path(os.environ["MLOPS_HOME"]) / "reports"
    spec = _spec()
    print("\nDrift per day (vs the champion's training set): the signal that decided the day, its value and its "
          f"retraining line (|: the line), and the champion's {spec.monitoring.metric}")  # fmt: skip
    print(f"on the labels that arrived that day (holdout keys of day - {spec.label.delay_days}; floor "
          f"{spec.performance_floor}):")  # fmt: skip
    for folder in sorted((reports / "drift" / spec.name).glob("*")):
        summary = first_attempt(folder)  # the day's record of decision
        if summary is None:
            continue
        decided = deciding_signal(summary, spec.monitoring.drift_share)
        scale = 20 / decided["line"] if decided["line"] > 0 else 40.0  # the line sits at column 20
        bar = ("#" * min(40, int(round(decided["value"] * scale)))).ljust(40)
        bar = bar[:20] + "|" + bar[20:]
        reference = summary["reference"]["model_version"]
        perf = first_attempt(reports / "performance" / spec.name / folder.name) or {}
        auc = f"AUC {perf['value']:.3f} ({perf['labelled_day']})" if perf.get("status") == "scored" else "no labels yet"
        print(f"  {summary['partition']}  {decided['name']:<14} {decided['value']:.2f} (line {decided['line']:.2f}) "
              f"{bar} reference v{reference:<3} {auc}")  # fmt: skip
    runs = airflow.api("GET", f"/api/v2/dags/{spec.dag_id('training')}/dagRuns?limit=100&order_by=run_after")[
        "dag_runs"
    ]
    print("\nTraining runs and why they were triggered:")
    for run in runs:
        conf = run.get("conf") or {}
        detail = conf.get("detail") or {}
        why = conf.get("reason", "manual")
        if why in ("drift", "performance"):
            decided = detail.get("decided_by") or deciding_signal(detail)
            why += (
                f": {decided['name']} {decided['value']:.2f} (line {decided['line']:.2f}) on "
                f"{detail.get('window_end')}, drifted columns {', '.join(detail.get('drifted_columns') or [])}; "
                f"report {detail.get('report_url')}"
            )
        print(f"  {run['dag_run_id']:<44} {run['state']:<8} {why}")
    triggered = [r for r in runs if str(r["dag_run_id"]).startswith("drift__")]
    if not triggered:
        print(f"  no drift-triggered run (see the {spec.dag_id('drift_monitoring')} runs: trigger_training says why)")
    return triggered


def _git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True, check=True).stdout


def summarize(airflow: EmbeddedAirflow, runs: list[dict[str, Any]], bad_day: dt.date, drift_from: dt.date) -> None:
    mlops_home = Path(os.environ["MLOPS_HOME"])
    dataset = _spec().dataset.name
    workspace = mlops_home / "data-registry"
    tags = set(_git(workspace, "tag", "--list").split()) if (workspace / ".git").exists() else set()
    print("\nIngest runs (one per day; each reads exactly its own data interval):")
    print(f"  {'day':<11} {'run':<8} {'partition version':<22} note")
    for run in runs:
        day = str(run["data_interval_start"])[:10]
        tag = f"partition/{dataset}/{day}"
        version = _git(workspace, "rev-parse", "--short", tag).strip() if tag in tags else "-"
        note = []
        if day == bad_day.isoformat():
            note.append(f"bad data -> quarantined in {mlops_home / 'quarantine' / dataset / day}")
        if day >= drift_from.isoformat():
            note.append("drifted source")
        print(f"  {day:<11} {run['state']:<8} {version:<22} {'; '.join(note)}")
    training_sets = sorted(t for t in tags if t.startswith("training-set/"))
    if training_sets:
        latest = training_sets[-1]
        message = _git(workspace, "log", "-1", "--format=%B", latest)
        partitions = next((ln.split(": ", 1)[1] for ln in message.splitlines() if ln.startswith("Training-Set-")), "")
        print(f"\nTraining-set versions: {len(training_sets)}; newest {latest}: partitions {partitions}")
    print(f"\nData registry (git + DVC): {workspace}   try: git -C {workspace} log --oneline | head")
    print(
        f"Data Docs: {airflow.base_url}/mlops/reports/gx/{dataset}/<day>/<attempt>/data-docs/index.html "
        "(signed in; one folder per validation attempt, also the validate task's GX Data Docs link)"
    )
    print(f"UI: {airflow.base_url}  (user admin, password {airflow.admin_password})")


def _stop_endpoint() -> None:
    """Stop the endpoint's proxy and backends with Airflow (they are processes of their own; the record stays, and
    the next serving task starts them again as recorded)."""
    endpoint = _endpoint(_spec())
    if endpoint is not None and endpoint.record_path.exists():
        endpoint.shutdown()
        print(f"Stopped the live endpoint (port {endpoint.load()['port']}).")


class Background(threading.Thread):
    """Run ``function(*args)`` in a daemon thread; :meth:`result` joins it and returns its value or raises its
    exception in the caller."""

    def __init__(self, name: str, function: Any, *args: Any) -> None:
        super().__init__(daemon=True, name=name)
        self.function, self.args = function, args
        self.value: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.function(*self.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self.error = exc

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


def warm_summary_imports() -> None:
    """Import what the summaries and the bad version's registration use (MLflow, the demo's bad models), so the end
    of the demo does not wait for these imports. Imports only: the MLflow store is the tasks' to create."""
    import mlflow.pyfunc  # noqa: F401
    from mlflow import MlflowClient  # noqa: F401

    from mlops_provider.demo import bad_models  # noqa: F401


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep-running", action="store_true", help="leave Airflow up until Ctrl-C")
    parser.add_argument("--foreground", action="store_true", help="only start Airflow and wait for Ctrl-C")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the runs")
    args = parser.parse_args(argv)

    # SIGTERM (a service manager, `kill`) stops Airflow as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    return_code = 0
    traffic: CanaryTraffic | None = None
    seeding: Background | None = None
    if not args.foreground:
        start, end = demo_window(dt.datetime.now(dt.UTC).date())
        os.environ["MLOPS_START_DATE"] = start.isoformat()  # the nightly DAGs catch up from here
        # The source is seeded while Airflow starts (nothing reads it before the DAGs are unpaused).
        seeding = Background("seed-source", seed_source, start, end)

    if not args.foreground and not args.keep_running:
        # Demo-only: its DAG file and specs do not change while it runs, so the dag-processor parses them once
        # instead of every 30 s (Airflow's default); each parse of the factory file takes ~1-5 s of a core that the
        # loop's tasks need (2 cores). Set the variable to choose; `make up` and KEEP_RUNNING keep the default.
        os.environ.setdefault("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", str(DEMO_PARSE_INTERVAL))
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    port = int(os.environ.get("AIRFLOW__API__PORT", "8080"))
    bin_dir = Path(sys.executable).parent
    distributed = os.environ.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor"  # make ... MODE=distributed
    airflow = EmbeddedAirflow(
        airflow_bin=str(bin_dir / "airflow"),
        airflow_home=airflow_home,
        port=port,
        components=distributed_components(dict(os.environ), bin_dir, port) if distributed else None,
    )
    print(f"Starting Airflow (logs: {airflow_home / 'standalone.log'}) ...", flush=True)
    try:
        airflow.start()
        print(f"Airflow is healthy after {time.monotonic() - started:.0f} s.", flush=True)
        if not args.foreground:
            dags = check_dags(airflow)
            print(f"{len(dags)} DAG(s) loaded, no import errors: {', '.join(sorted(d['dag_id'] for d in dags))}")
            assert seeding is not None
            drift_from, bad_day = seeding.result()
            # The summaries and the bad version's registration import MLflow in this process: do it while the loop
            # runs, not after it.
            Background("warm-imports", warm_summary_imports)
            spec = _spec()
            for stage in ("drift_monitoring", "promotion", "training", "ingest"):
                airflow.api("PATCH", f"/api/v2/dags/{spec.dag_id(stage)}", {"is_paused": False})
            print(f"Model {spec.name} (spec {SPEC_FILE.relative_to(PROJECT_ROOT)}): unpaused its ingest and drift "
                  f"monitoring (catchup {start} .. {end}); training and promotion follow:")  # fmt: skip
            traffic = CanaryTraffic(end)
            traffic.start()
            runs = wait_for_runs(airflow, spec.dag_id("ingest"), expected=DAYS, timeout=args.timeout)
            wait_for_runs(airflow, spec.dag_id("drift_monitoring"), expected=DAYS, timeout=args.timeout)
            for stage in ("training", "promotion"):
                wait_until_idle(airflow, spec.dag_id(stage), timeout=args.timeout)
            summarize(airflow, runs, bad_day, drift_from)
            summarize_training()
            triggered = summarize_drift(airflow)
            bad_verdict = canary_a_bad_version(airflow, traffic, timeout=args.timeout)
            summarize_serving(traffic)
            print(f"\nModel health: {airflow.base_url}/mlops/health  (signed in)")
            print(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {MlflowHook().tracking_uri} --port 5000")
            (airflow_home / "demo_wall_seconds").write_text(f"{time.monotonic() - started:.1f}\n")  # bench_scheduler
            if not any(r["state"] == "success" for r in triggered):
                print("error: the loop did not close: no drift-triggered training run succeeded", file=sys.stderr)
                return_code = 1
            if bad_verdict is not None and bad_verdict.get("outcome") != "rolled_back":
                print("error: the deliberately bad version was not rolled back by its canary", file=sys.stderr)
                return_code = 1
        else:
            print(f"UI: {airflow.base_url}  (user admin, password {airflow.admin_password})")
        if args.foreground or args.keep_running:
            print("Airflow keeps running; press Ctrl-C to stop it.", flush=True)
            while airflow.process is not None and airflow.process.poll() is None:
                time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nStopping Airflow ...")
    except EmbeddedAirflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if traffic is not None:
            traffic.stop.set()
        airflow.stop()
        _stop_endpoint()
    print(f"Done in {time.monotonic() - started:.0f} s.")
    return return_code


if __name__ == "__main__":
    raise SystemExit(main())
