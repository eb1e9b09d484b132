"""The whole loop under a real scheduler (``airflow standalone``), driven through the REST API v2 as a user would:
catchup over past days with a bad day and injected drift, the deferrable sensors in the triggerer, exactly one
drift-triggered retraining decided by the gate, clearing a finished task of every DAG without duplicates, a
manual training run with a conf, extra links and the model health page served by the plugin, and screenshots
of the UI in headless Chromium."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, dates_between, generate_day, seed_range
from mlops_provider.demo.embedded import EmbeddedAirflow
from mlops_provider.exceptions import EmbeddedAirflowError
from mlops_provider.loop.spec import load_spec
from mlops_provider.operators.sql import SqlToParquetOperator
from tests.e2e.browser import Browser, chromium_binary
from tests.e2e.loop import (
    CHURN,
    CanaryClient,
    Loop,
    all_finished,
    check_loop_outcomes,
    clear_of_midnight,
    dag_runs,
    git,
    idle,
    live_endpoint,
    mlflow_state,
    prepared_environment,
    serving_paths,
    task_states,
    unpause,
    wait_for,
    wait_for_dags,
    wait_for_loop,
)
from tests.helpers import PROJECT_ROOT, task_context

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAYS, BAD_INDEX, DRIFT_INDEX = 5, 1, 3  # day 2 has a null flood; day 4 starts to drift (day 1 waits for the champion)
PORT = 18793
MODULE_MINUTES = 25  # the module's longest runs on a loaded machine (its loop waits up to 25 min)
CHURN_SPEC = load_spec(PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml")
INGEST, TRAINING, PROMOTION, MONITORING = (
    CHURN.dag(s) for s in ("ingest", "training", "promotion", "drift_monitoring")
)
DATASET = CHURN.dataset
PROBE_DAG = """
from __future__ import annotations
import pendulum
from airflow.sdk import DAG, Param
from mlops_provider.sensors.drift import DriftSensor

with DAG("drift_sensor_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         params={"summary_path": Param("", type="string")}):
    DriftSensor(task_id="drift_sensor", summary_path="{{ params.summary_path }}", poll_interval=1)
"""


#: An ingest DAG of the provider's operators on a second dataset name, where one day (MLOPS_SLOW_DAY) validates
#: slowly: the parallel-backfill case of the on-call review (finding 3).
SLOW_INGEST_DAG = """
from __future__ import annotations
import os, time
import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, task
from mlops_provider.operators.dvc import DvcVersionOperator
from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
from mlops_provider.operators.sql import SqlToParquetOperator
from mlops_provider.layout import partition_path, partition_tag
from mlops_provider.operators.training_set import TrainingSetAssemblyOperator

DATASET = "probe_activity"
SUITE = os.path.join(os.environ["MLOPS_PROJECT_ROOT"], "include/gx/expectations/customer_activity.json")
START = pendulum.parse(os.environ["MLOPS_START_DATE"], tz="UTC")
with DAG("slow_ingest_probe", schedule=CronDataIntervalTimetable("@daily", timezone="UTC"), start_date=START,
         catchup=True, max_active_runs=5, default_args={"retries": 1, "retry_delay": 5}):
    @task
    def slow_validation(ds=None):
        if ds == os.environ["MLOPS_SLOW_DAY"]:
            time.sleep(40)

    staged = "{{ ti.xcom_pull(task_ids='extract')['path'] }}"
    extract = SqlToParquetOperator(
        task_id="extract", conn_id="mlops_source", table="customer_activity", timestamp_column="event_ts",
        parse_dates=["event_ts", "signup_date"], dataset=DATASET,
    )
    validate = GreatExpectationsValidateOperator(
        task_id="validate", data_path=staged, suite_path=SUITE, dataset=DATASET, timestamp_column="event_ts"
    )
    version = DvcVersionOperator(
        task_id="version_partition", source_path=staged, target_path=partition_path(DATASET, "{{ ds }}"),
        tag=partition_tag(DATASET, "{{ ds }}"), pool="dvc_workspace",
    )
    assemble = TrainingSetAssemblyOperator(
        task_id="assemble_training_set", dataset=DATASET, window_days=3, poll_interval=20, pool="dvc_workspace"
    )
    extract >> validate >> slow_validation() >> version >> assemble
"""
SLOW_INDEX = 2  # the day after the bad day validates slowly


def source_spec(days: list[dt.date], bad: dt.date, drift_from: dt.date) -> SourceSpec:
    """The seeded source of the loop: the past days, and the wall-clock day the served-day test seeds and ingests
    (the day the loop's clients replay, so every request they sent has its label in that day's partition)."""
    return SourceSpec(drift_from=drift_from, bad_dates={bad: "null_flood"}, epoch=days[0])


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """A fresh embedded Airflow on its own port, home and database, with a seeded source. Its DAG folder holds
    the project's DAGs (links) and a probe DAG with a lone drift sensor."""
    root = tmp_path_factory.mktemp("e2e")
    home, mlops, dags = root / "airflow", root / "mlops", root / "dags"
    for folder in (home, mlops, dags):
        folder.mkdir()
    for source in (PROJECT_ROOT / "dags").iterdir():
        if source.suffix == ".py" or source.name == ".airflowignore":
            (dags / source.name).symlink_to(source)
    (dags / "drift_sensor_probe.py").write_text(PROBE_DAG)
    (dags / "slow_ingest_probe.py").write_text(SLOW_INGEST_DAG)
    end = clear_of_midnight(MODULE_MINUTES)
    days = dates_between(end - dt.timedelta(days=DAYS - 1), end)
    bad, drift_from = days[BAD_INDEX], days[DRIFT_INDEX]
    seed_range(create_engine(f"sqlite:///{mlops / 'source.db'}"), days, source_spec(days, bad, drift_from))
    env = prepared_environment(AIRFLOW, home, dags, mlops, days[0], MLOPS_SLOW_DAY=days[SLOW_INDEX].isoformat())
    airflow = EmbeddedAirflow(airflow_bin=AIRFLOW, airflow_home=home, port=PORT, env=env)
    airflow.start(timeout=420)  # a 2-core machine shared with other jobs took > 180 s to answer
    try:
        wait_for_dags(airflow)
        yield Loop(airflow=airflow, days=days, bad=bad, drift_from=drift_from, mlops=mlops, env=env)
    finally:
        airflow.stop()
        live_endpoint(env, CHURN.name, stop=True)  # the endpoint's processes outlive Airflow's


def ti(airflow: EmbeddedAirflow, dag_id: str, run_id: str, task_id: str) -> dict:
    return airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")


def test_drift_sensor_defers_to_the_triggerer_and_resumes(loop, tmp_path):
    airflow = loop.airflow
    summary = tmp_path / "summary.json"
    unpause(airflow, "drift_sensor_probe")
    run = airflow.api(
        "POST", "/api/v2/dags/drift_sensor_probe/dagRuns",
        {"logical_date": None, "conf": {"summary_path": str(summary)}},
    )  # fmt: skip
    run_id = run["dag_run_id"]
    wait_for(lambda: ti(airflow, "drift_sensor_probe", run_id, "drift_sensor")["state"] == "deferred", 120,
             "the drift sensor to defer")  # fmt: skip
    drifted = {"dataset_drift": True, "drift_share": 0.5, "threshold": 0.3, "partition": "2026-11-20",
               "columns": {"device": {"drifted": True}}}  # fmt: skip
    summary.write_text(json.dumps(drifted))
    wait_for(lambda: ti(airflow, "drift_sensor_probe", run_id, "drift_sensor")["state"] == "success", 120,
             "the trigger to fire and the sensor to resume")  # fmt: skip
    value = airflow.api(
        "GET", f"/api/v2/dags/drift_sensor_probe/dagRuns/{run_id}/taskInstances/drift_sensor/xcomEntries/return_value"
    )["value"]
    decision = value if isinstance(value, dict) else json.loads(value)
    assert decision["reason"] == "drift" and decision["drifted_columns"] == ["device"]


def test_the_loop_closes_drift_triggers_one_retraining_decided_by_the_gate(loop):
    airflow = loop.airflow
    # Monitoring first: its first day waits (deferred, in the triggerer) for that day's ingest.
    unpause(airflow, MONITORING, TRAINING, PROMOTION)
    first = wait_for(lambda: dag_runs(airflow, MONITORING), 120, "the first drift_monitoring run")[0]
    wait_for(
        lambda: ti(airflow, MONITORING, first["dag_run_id"], "wait_for_training_set")["state"] == "deferred",
        120, "wait_for_training_set to defer",
    )  # fmt: skip
    # A client of the live endpoint for the whole loop: it replays rows while a canary bakes (issue 32). The rows are
    # the wall-clock day's, as the served-day test seeds them, with their key: the backends capture each row under
    # its key, and the served day's labels join to what each version answered (issue 33).
    record_path, _ = serving_paths(loop.env, CHURN.name)
    key = CHURN_SPEC.dataset.key_column
    columns = [key, *CHURN_SPEC.features.numerical, *CHURN_SPEC.features.categorical]
    today = dt.datetime.now(dt.UTC).date()
    frame = generate_day(today, source_spec(loop.days, loop.bad, loop.drift_from))[columns]
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    loop.notes["client_rows"] = (columns, rows)
    with CanaryClient(record_path, columns, rows, loop.mlops / "client-loop.jsonl", key_column=key) as client:
        unpause(airflow, INGEST)
        runs = wait_for_loop(loop, timeout=1500)
    loop.notes["loop_client"] = client
    assert ti(airflow, MONITORING, first["dag_run_id"], "wait_for_training_set")["state"] == "success"
    loop.notes["runs"] = runs
    loop.notes["mlflow"] = check_loop_outcomes(loop, runs)

    # The champion serves live (the churn spec's serving.endpoint): its deployment record shows it at 100%, and the
    # endpoint answers with it.
    record = live_endpoint(loop.env, CHURN.name)
    champion = str(loop.notes["mlflow"]["champion"])
    assert {v: w for v, w in record["weights"].items() if w} == {champion: 100}, record["weights"]
    row = generate_day(loop.days[-1], SourceSpec(rows_per_day=20)).iloc[:1]
    features = [*CHURN_SPEC.features.numerical, *CHURN_SPEC.features.categorical]
    body = {"dataframe_split": json.loads(row[features].to_json(orient="split", index=False))}
    request = urllib.request.Request(f"http://127.0.0.1:{record['port']}/invocations", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200 and answer.headers["X-Model-Version"] == champion
        assert len(json.loads(answer.read())["predictions"]) == 1

    # Every good day is versioned byte-identical to extracting that day on its own (backfill == one by one).
    workspace = loop.mlops / "data-registry"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(loop.mlops / "one-by-one"))
        mp.setenv("AIRFLOW_CONN_MLOPS_SOURCE", loop.env["AIRFLOW_CONN_MLOPS_SOURCE"])
        for day in loop.days:
            if day == loop.bad:
                continue
            alone = SqlToParquetOperator(
                task_id="extract", conn_id="mlops_source", table=DATASET, timestamp_column="event_ts",
                parse_dates=["event_ts", "signup_date"], dataset=DATASET,
            ).execute(task_context(day))  # fmt: skip
            message = git(workspace, "log", "-1", "--format=%B", f"partition/{DATASET}/{day}")
            assert f"Data-Md5: {alone['md5']}" in message

    # The bad day's failure names the check; neither training nor promotion used it.
    bad_run = next(r for r in runs["ingest"] if r["data_interval_start"].startswith(loop.bad.isoformat()))
    log = airflow.api(
        "GET", f"/api/v2/dags/{INGEST}/dagRuns/{bad_run['dag_run_id']}/taskInstances/validate/logs/1?full_content=true"
    )  # fmt: skip
    assert "expect_column_values_to_not_be_null" in json.dumps(log)
    for day in loop.days:
        if day != loop.bad:
            message = git(workspace, "log", "-1", "--format=%B", f"training-set/{CHURN.name}/{day}")
            partitions = next(ln for ln in message.splitlines() if ln.startswith("Training-Set-Partitions:"))
            assert loop.bad.isoformat() not in partitions and day.isoformat() in partitions


def test_a_bad_version_is_canaried_and_rolled_back_automatically_with_no_failed_request(loop, tmp_path):
    """Issue 32 under the scheduler: the loop's drift-triggered version was canaried and promoted, and a version that
    passes every offline check but answers a constant live (mlops_provider.demo.bad_models) is canaried through the
    REST API and rolled back automatically on its prediction shift; a client replaying rows through the endpoint
    the whole time saw no failed request in either canary."""
    airflow = loop.airflow
    loop.notes.get("runs") or pytest.skip("the loop did not complete")
    wait_for(lambda: idle(airflow, PROMOTION), 600, "promotion to be idle")
    champion = mlflow_state(loop.env)["champion"]
    record_path, verdicts = serving_paths(loop.env, CHURN.name)
    code = (
        "import sys; from pathlib import Path; from mlops_provider.hooks.mlflow import MlflowHook\n"
        "from mlops_provider.demo.bad_models import register_live_regression\n"
        "print(register_live_regression(MlflowHook(), sys.argv[1], sys.argv[2], Path(sys.argv[3])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, CHURN.name, str(champion), str(tmp_path / "bad")],
                         env=loop.env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    bad = out.strip().splitlines()[-1]
    # This client replays a calm day's rows (no key: its requests get generated ids, joined to no label), not the
    # loop client's rows of the wall-clock day: those are drifted, and the champion retrained on the drift answers
    # > 0.9 on 15% of them, the bucket of the bad version's constant 0.97, so the two are only ~0.82 apart there
    # (measured 0.8178), under the spec's 0.85 line. On calm rows it answers > 0.9 on 0.3%: ~1 apart.
    features = [*CHURN_SPEC.features.numerical, *CHURN_SPEC.features.categorical]
    frame = generate_day(loop.days[-1], SourceSpec(rows_per_day=400))[features]
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    with CanaryClient(record_path, features, rows, tmp_path / "client-bad.jsonl") as client:
        airflow.api("POST", f"/api/v2/dags/{PROMOTION}/dagRuns",
                    {"dag_run_id": "manual__bad_version", "logical_date": None, "conf": {"version": bad}})  # fmt: skip
        run = wait_for(
            lambda: next((r for r in dag_runs(airflow, PROMOTION) if r["dag_run_id"] == "manual__bad_version"
                          and r["state"] in ("success", "failed")), None),
            900, "the bad version's promotion run",
        )  # fmt: skip
    states = task_states(airflow, PROMOTION, "manual__bad_version")
    assert run["state"] == "failed", states
    assert states["gate"] == "success" and states["shadow_check"] == "success", states  # offline it is fine
    assert states["canary_rollout"] == "failed" and states["promote"] == "upstream_failed", states
    mine = [json.loads(p.read_text()) for p in verdicts.glob(f"v{bad}-*.json")]
    assert len(mine) == 1 and mine[0]["outcome"] == "rolled_back", mine
    assert mine[0]["alarm"] == "prediction_shift", mine[0]
    assert mine[0]["steps"][-1]["prediction_shift"] > CHURN_SPEC.serving.endpoint.canary.thresholds.max_prediction_shift
    record = json.loads(record_path.read_text())
    assert {v: w for v, w in record["weights"].items() if w} == {str(champion): 100}, record["weights"]
    assert bad not in record["backends"]
    after = mlflow_state(loop.env)
    assert after["champion"] == champion
    tags = next(v["tags"] for v in after["versions"] if str(v["version"]) == bad)  # MLflow gives an int
    assert tags["canary.outcome"] == "rolled_back" and tags["canary.alarm"] == "prediction_shift", tags
    lines = client.lines()
    assert lines and client.totals["failed"] == 0, [x for x in lines if x["status"] != 200][:5]
    assert {x["version"] for x in lines} == {str(champion), bad}  # the canary answered, and answered 200
    loop.notes["bad_version"] = {"version": bad, "verdict": mine[0], "client": dict(client.totals)}
    loop.notes["bad_client"] = client

    # The loop's drift-triggered version went through a canary too, under the same client: promoted, no failure.
    loop_client = loop.notes["loop_client"]
    promoted = [json.loads(p.read_text()) for p in verdicts.glob("v*.json")]
    canaried = [v for v in promoted if v.get("baseline") and v["outcome"] == "promoted"]
    assert canaried, [(v["version"], v.get("baseline"), v["outcome"]) for v in promoted]
    loop_lines = loop_client.lines()
    assert loop_client.totals["failed"] == 0, [x for x in loop_lines if x["status"] != 200][:5]
    for verdict in canaried:
        assert {verdict["version"], verdict["baseline"]} <= {x["version"] for x in loop_lines}, verdict

    # The health page's live section, rendered: the endpoint, the champion at 100%, the latest endpoint events.
    if chromium_binary() is None:
        if os.environ.get("MLOPS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (MLOPS_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium not installed: no screenshot of the live section")
    shots = Path(os.environ.get("MLOPS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with Browser() as browser:
        page = browser.visit(f"{airflow.base_url}/mlops/health", token=airflow._token_value(),
                             screenshot=shots / "model_health_live.png", full_page=True,
                             expect=[f"127.0.0.1:{record['port']}/invocations", "5xx rate", "p95 ms",
                                     "Latest endpoint events", f"retire v{bad}"])  # fmt: skip
    assert f"v{champion}" in page["text"]
    assert (shots / "model_health_live.png").stat().st_size > 10_000


def test_clearing_a_finished_task_of_every_dag_creates_no_duplicates(loop):
    airflow = loop.airflow
    runs = loop.notes.get("runs") or pytest.skip("the loop did not complete")
    workspace = loop.mlops / "data-registry"
    before_git = (git(workspace, "rev-list", "--all", "--count"), git(workspace, "show-ref", "--tags"))
    before_mlflow = mlflow_state(loop.env)
    before_training = sorted(r["dag_run_id"] for r in dag_runs(airflow, TRAINING))
    before_promotion = sorted(r["dag_run_id"] for r in dag_runs(airflow, PROMOTION))
    good_ingest = next(r for r in runs["ingest"] if r["state"] == "success")
    drift_run = next(r for r in dag_runs(airflow, TRAINING) if r["dag_run_id"].startswith("drift__"))
    window = drift_run["conf"]["detail"]["window_end"]
    drift_day_run = next(r for r in runs["drift_monitoring"] if r["data_interval_start"].startswith(window))
    promotion_run = runs["promotion"][-1]
    targets = [
        (INGEST, good_ingest["dag_run_id"], "version_partition"),
        (INGEST, good_ingest["dag_run_id"], "assemble_training_set"),
        (TRAINING, drift_run["dag_run_id"], "train"),
        (MONITORING, drift_day_run["dag_run_id"], "trigger_training"),
        (PROMOTION, promotion_run["dag_run_id"], "evaluate"),
    ]
    tries = {}
    for dag_id, run_id, task_id in targets:
        tries[(dag_id, run_id, task_id)] = ti(airflow, dag_id, run_id, task_id)["try_number"]
        airflow.api(
            "POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {"dag_run_id": run_id, "task_ids": [task_id], "only_failed": False, "dry_run": False},
        )  # fmt: skip
    for (dag_id, run_id, task_id), before in tries.items():
        wait_for(
            lambda d=dag_id, r=run_id, t=task_id, b=before: (
                (x := ti(airflow, d, r, t))["try_number"] > b and x["state"] in ("success", "skipped")
            ),
            600, f"{dag_id}.{task_id} to run again",
        )  # fmt: skip
    # The re-run trigger task saw its window handled and skipped; nothing new anywhere.
    assert ti(airflow, MONITORING, drift_day_run["dag_run_id"], "trigger_training")["state"] == "skipped"
    for dag_id in (TRAINING, PROMOTION):
        wait_for(lambda d=dag_id: all(r["state"] in ("success", "failed") for r in dag_runs(airflow, d)), 600, dag_id)
    assert sorted(r["dag_run_id"] for r in dag_runs(airflow, TRAINING)) == before_training
    # The re-run training of an already judged version announced nothing: no promotion run again.
    assert sorted(r["dag_run_id"] for r in dag_runs(airflow, PROMOTION)) == before_promotion
    assert (git(workspace, "rev-list", "--all", "--count"), git(workspace, "show-ref", "--tags")) == before_git
    after_mlflow = mlflow_state(loop.env)
    assert sorted(r["id"] for r in after_mlflow["runs"]) == sorted(r["id"] for r in before_mlflow["runs"])
    versions = [sorted(v["version"] for v in state["versions"]) for state in (before_mlflow, after_mlflow)]
    assert versions[0] == versions[1]
    assert (after_mlflow["champion"], after_mlflow["challenger"]) == (
        before_mlflow["champion"],
        before_mlflow["challenger"],
    )  # the cleared old training did not make its old version the challenger again


def test_manual_training_from_the_rest_api_with_a_conf(loop):
    airflow = loop.airflow
    loop.notes.get("runs") or pytest.skip("the loop did not complete")
    rev = f"training-set/{CHURN.name}/{loop.days[-1]}"
    run = airflow.api(
        "POST", f"/api/v2/dags/{TRAINING}/dagRuns",
        {"dag_run_id": "manual__e2e", "logical_date": None,
         "conf": {"reason": "manual", "dataset_rev": rev, "hyperparameters": {"max_depth": 3},
                  "detail": {"ticket": "OPS-42"}}},
    )  # fmt: skip
    assert run["state"] in ("queued", "running")
    wait_for(lambda: ti(airflow, TRAINING, "manual__e2e", "train")["state"] in ("success", "failed"), 600, "train")
    assert ti(airflow, TRAINING, "manual__e2e", "train")["state"] == "success"
    state = mlflow_state(loop.env)
    mlflow_run = next(r for r in state["runs"] if r["tags"]["airflow.run_id"] == "manual__e2e")
    assert mlflow_run["tags"]["trigger.reason"] == "manual" and mlflow_run["params"]["max_depth"] == "3"
    assert mlflow_run["tags"]["data.rev_name"] == rev and json.loads(mlflow_run["tags"]["trigger.detail"]) == {
        "ticket": "OPS-42"
    }
    # A conf the form would refuse is refused by the API too, naming the field.
    with pytest.raises(Exception, match="reason"):
        airflow.api("POST", f"/api/v2/dags/{TRAINING}/dagRuns", {"logical_date": None, "conf": {"reason": "whim"}})

    # Issue 27: the API accepts a misspelt key and a branch as dataset_rev (neither breaks a param's schema), but the
    # training task refuses both before training, naming the key and the value: the conf reaches the task merged into
    # its params, so the check reads the run's conf against the declared names.
    branch = git(loop.mlops / "data-registry", "symbolic-ref", "--short", "HEAD")
    refused = {
        "manual__e2e_misspelt": ({"datset_rev": rev}, "unknown key(s) ['datset_rev'] in the run's conf; allowed: "
                                 "['dataset_rev', 'detail', 'hyperparameters', 'reason']"),
        "manual__e2e_branch": ({"dataset_rev": branch}, f"dataset_rev: {branch!r} is a branch of the data registry"),
    }  # fmt: skip
    for run_id, (conf, _) in refused.items():
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        airflow.api("POST", f"/api/v2/dags/{TRAINING}/dagRuns", body)
    for run_id, (_, message) in refused.items():
        wait_for(lambda r=run_id: ti(airflow, TRAINING, r, "train")["state"] in ("success", "failed"), 300, run_id)
        assert ti(airflow, TRAINING, run_id, "train")["state"] == "failed"  # at once: no retry of bad input
        log = airflow.api(
            "GET", f"/api/v2/dags/{TRAINING}/dagRuns/{run_id}/taskInstances/train/logs/1?full_content=true"
        )  # fmt: skip
        assert message in json.dumps(log, ensure_ascii=False), run_id
    assert not [r for r in mlflow_state(loop.env)["runs"] if r["tags"].get("airflow.run_id") in refused]


def test_extra_links_and_the_model_health_page_resolve(loop, tmp_path):
    airflow = loop.airflow
    runs = loop.notes.get("runs") or pytest.skip("the loop did not complete")
    mlflow = loop.notes["mlflow"]
    checked = []
    calm_run = next(r for r in runs["drift_monitoring"] if task_states(airflow, MONITORING, r["dag_run_id"])
                    .get("drift_report") == "success")  # fmt: skip
    # Evidently's HTML report is rendered on a day that crosses the drift line (issue 31): the drifted window that
    # triggered the retraining has the "Drift report" link; the first checked day (calm) has none.
    triggered = next(r for r in runs["training"] if r["dag_run_id"].startswith("drift__"))
    window = triggered["conf"]["detail"]["window_end"]
    trigger_run = next(r for r in runs["drift_monitoring"] if r["data_interval_start"].startswith(window))
    calm_links = airflow.api(
        "GET", f"/api/v2/dags/{MONITORING}/dagRuns/{calm_run['dag_run_id']}/taskInstances/drift_report/links"
    )["extra_links"]  # fmt: skip
    assert calm_links.get("Drift report") is None and calm_links["MLflow run"].startswith("/mlops/"), calm_links
    good_ingest = next(r for r in runs["ingest"] if r["state"] == "success")
    # GX Data Docs are rendered for a failed validation only (issue 31): the quarantined day's validate links them,
    # a passing day's has its result (JSON) and no Data Docs link.
    bad_ingest = next(r for r in runs["ingest"] if r["data_interval_start"].startswith(loop.bad.isoformat()))
    good_links = airflow.api(
        "GET", f"/api/v2/dags/{INGEST}/dagRuns/{good_ingest['dag_run_id']}/taskInstances/validate/links"
    )["extra_links"]  # fmt: skip
    assert good_links.get("GX Data Docs") is None, good_links
    training_run = next(r for r in runs["training"] if r["state"] == "success")
    promotion_run = runs["promotion"][-1]["dag_run_id"]
    # Every link of every operator that produced something viewable, answered 200 by the plugin's web app.
    for dag_id, run_id, task_id, names in (
        (MONITORING, trigger_run["dag_run_id"], "drift_report", ["Drift report", "MLflow run"]),
        (INGEST, good_ingest["dag_run_id"], "validate", ["Validation result"]),
        (INGEST, bad_ingest["dag_run_id"], "validate", ["GX Data Docs", "Validation result"]),
        (INGEST, good_ingest["dag_run_id"], "version_partition", ["DVC version"]),
        (INGEST, good_ingest["dag_run_id"], "assemble_training_set", ["DVC version"]),
        (TRAINING, training_run["dag_run_id"], "train", ["MLflow run", "MLflow model version", "DVC version"]),
        (PROMOTION, promotion_run, "evaluate", ["Verdict ledger"]),
        (PROMOTION, promotion_run, "promote", ["MLflow model version"]),
    ):
        links = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")
        for name in names:
            url = links["extra_links"].get(name)
            assert url and url.startswith("/mlops/"), (dag_id, task_id, name, links)
            assert airflow.request_status(url) == 200, url
            checked.append(url)
    assert airflow.request_status(checked[0], auth=False) == 401
    assert airflow.request_status("/mlops/mlflow/runs/no-such-run") == 404
    # The page behind the training's links: its run, version and data, tied to each other.
    train_links = airflow.api(
        "GET", f"/api/v2/dags/{TRAINING}/dagRuns/{training_run['dag_run_id']}/taskInstances/train/links"
    )["extra_links"]  # fmt: skip
    run_page = airflow.request_text(train_links["MLflow run"])
    assert "roc_auc" in run_page and train_links["MLflow model version"] in run_page
    assert all(f'class="plot {kind}"' in run_page for kind in ("roc", "pr", "calibration", "confusion", "importance"))
    ledger_link = airflow.api(
        "GET", f"/api/v2/dags/{PROMOTION}/dagRuns/{promotion_run}/taskInstances/evaluate/links"
    )["extra_links"]["Verdict ledger"]  # fmt: skip
    assert ledger_link.startswith("/mlops/ledgers/") and 'class="plot metrics"' in airflow.request_text(ledger_link)
    data_page = airflow.request_text(train_links["DVC version"])
    assert f"training-set/{CHURN.name}/" in data_page and "assemble_training_set" in data_page
    # The drift trigger's link (Airflow's own) names the training run it triggered, also after the clearing test
    # re-ran that trigger task (it skipped: the window was handled).
    link = airflow.api(
        "GET", f"/api/v2/dags/{MONITORING}/dagRuns/{trigger_run['dag_run_id']}/taskInstances/trigger_training/links"
    )["extra_links"]["Triggered DAG"]  # fmt: skip
    assert link.endswith(f"/dags/{TRAINING}/runs/{triggered['dag_run_id']}"), link

    # The page shows the champion of now: the manual training test's version may have gone through the gate since
    # the loop's notes were taken, so compare with MLflow once training and promotion are idle.
    wait_for(lambda: idle(airflow, TRAINING) and idle(airflow, PROMOTION), 600, "training and promotion to be idle")
    mlflow = mlflow_state(loop.env)
    health = airflow.api("GET", "/mlops/health.json")
    assert health["champion"]["version"] == mlflow["champion"]
    assert health["lineage"]["training set"].startswith(f"training-set/{CHURN.name}/")
    assert health["lineage"]["gate verdict"] == "promote"
    assert {h["version"] for h in health["history"]} >= {str(v["version"]) for v in mlflow["versions"]}
    shares = {p["day"]: p["drift_share"] for p in health["drift"]}
    assert max(shares.values()) >= 0.3 and min(shares.values()) < 0.3
    assert airflow.request_status("/mlops/health") == 200

    if chromium_binary() is None:
        if os.environ.get("MLOPS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (MLOPS_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium not installed: no screenshots")
    shots = Path(os.environ.get("MLOPS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    token = airflow._token_value()
    base = airflow.base_url
    with Browser() as browser:
        grid = browser.visit(f"{base}/dags/{MONITORING}", token=token, screenshot=shots / "grid.png",
                             expect=[MONITORING, "drift_report", "trigger_training"])  # fmt: skip
        assert "drift_sensor" in grid["text"]
        page = browser.visit(  # the task instance's Details tab lists its extra links
            f"{base}/dags/{MONITORING}/runs/{trigger_run['dag_run_id']}/tasks/drift_report/details", token=token,
            screenshot=shots / "drift_report_links.png", expect=["Extra Links", "Drift report"],
        )  # fmt: skip
        assert f"{base}{checked[0]}" in page["links"]  # the button's target is the plugin route that answered 200
        health_page = browser.visit(f"{base}/mlops/health", token=token, screenshot=shots / "model_health.png",
                                    full_page=True,
                                    expect=["Model health", "Champion history", f"v{mlflow['champion']}",
                                            "Per-column drift over time"])  # fmt: skip
        assert "gate verdict" in health_page["text"]
        run_page = browser.visit(f"{base}{train_links['MLflow run']}", token=token, screenshot=shots / "mlflow_run.png",
                                 full_page=True,
                                 expect=["MLflow run", "On the holdout", "Metrics", "roc_auc"])  # fmt: skip
        browser.visit(f"{base}{ledger_link}", token=token, screenshot=shots / "verdict_ledger.png", full_page=True,
                      expect=["Verdict ledger", "Challenger vs champion", "Checks"])  # fmt: skip
        assert "Open in the MLflow UI" not in run_page["text"]  # the embedded mode runs no MLflow UI
        nav = browser.visit(f"{base}/plugin/model-health", token=token, screenshot=shots / "nav_model_health.png",
                            expect=["Model health"])  # fmt: skip
        assert nav["text"]
    for name in ("grid.png", "drift_report_links.png", "model_health.png", "mlflow_run.png", "verdict_ledger.png"):
        assert (shots / name).stat().st_size > 10_000  # a rendered page, not a blank one


def test_a_parallel_backfill_builds_every_training_set_from_exactly_its_window(loop):
    """Finding 3: five days ingested at once, the bad day quarantined and the next day validating 40 s late; every
    training set holds exactly the versioned days of its 3-day window (the slow day included), and says which day
    it left out and why."""
    unpause(loop.airflow, "slow_ingest_probe")
    runs = wait_for(lambda: all_finished(loop.airflow, "slow_ingest_probe", len(loop.days)), 600, "the probe backfill")
    states = {r["logical_date"][:10]: r["state"] for r in runs}
    assert states[loop.bad.isoformat()] == "failed" and list(states.values()).count("failed") == 1, states
    workspace = loop.mlops / "data-registry"
    versioned = set(
        git(workspace, "tag", "--list", "partition/probe_activity/*").replace("partition/probe_activity/", "").split()
    )
    assert loop.bad.isoformat() not in versioned and len(versioned) == len(loop.days) - 1
    slow = loop.days[SLOW_INDEX].isoformat()
    for day in loop.days:
        if day == loop.bad:
            continue
        window = [(day - dt.timedelta(days=i)).isoformat() for i in (2, 1, 0)]
        message = git(workspace, "log", "-1", "--format=%B", f"training-set/probe_activity/{day.isoformat()}")
        partitions = next(line for line in message.splitlines() if line.startswith("Training-Set-Partitions: "))
        assert partitions.removeprefix("Training-Set-Partitions: ").split(",") == [d for d in window if d in versioned]
        if loop.bad.isoformat() in window:
            assert f"{loop.bad.isoformat()}=quarantined" in message
        if slow in window:
            assert slow in partitions, (day, message)
    # The race happened: a later day's assembly found the slow day undecided and waited (was rescheduled).
    later = [r for r in runs if r["logical_date"][:10] > slow]
    task_path = "taskInstances/assemble_training_set/logs/1?full_content=true"
    logs = [
        json.dumps(loop.airflow.api("GET", f"/api/v2/dags/slow_ingest_probe/dagRuns/{r['dag_run_id']}/{task_path}"))
        for r in later
    ]
    assert any(f"Waiting for {slow}" in log for log in logs), logs[0][-2000:]


def realised_served(loop: Loop, day: dt.date) -> dict:
    """The ``served`` part of the spec's performance check of ``day`` run with ``label_delay_days=0`` and the served
    join on the dataset's key, executed in the instance's environment (a child process, like a task)."""
    code = (
        "import datetime as dt, json, sys\n"
        "from mlops_provider.loop.spec import load_spec\n"
        "from mlops_provider.operators.performance import ModelPerformanceOperator\n"
        "from tests.helpers import task_context\n"
        "spec, day = load_spec(sys.argv[1]), dt.date.fromisoformat(sys.argv[2])\n"
        "arguments = {**spec.performance_arguments(), 'label_delay_days': 0,\n"
        "             'served_key_column': spec.dataset.key_column}\n"
        "check = ModelPerformanceOperator(task_id='performance_check', dataset=spec.dataset.name,\n"
        "                                 model_name=spec.name, partition=day.isoformat(), **arguments)\n"
        "context = task_context(day, dag_id=sys.argv[3], run_id='e2e__realised_served', task_id=check.task_id)\n"
        "print(json.dumps(check.execute(context)['served']))\n"
    )
    spec_path = PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml"
    out = subprocess.run([sys.executable, "-c", code, str(spec_path), day.isoformat(), MONITORING], env=loop.env,
                         cwd=PROJECT_ROOT, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_served_day_is_monitored_on_its_capture_under_the_scheduler(loop):
    """Issue 33 under the scheduler: the loop's client traffic (two versions answering while canaries baked) was
    captured on the wall-clock day; that day is ingested and monitored as a user would from the REST API or the
    trigger form: runs whose data interval is the capture's day, the drift-monitoring run with the param
    ``current: served``. Its drift record names the capture as its current data and reports both versions. Last in
    the module: a served drift may trigger a retraining that nothing after it should see."""
    started = time.monotonic()
    loop.notes.get("loop_client") or pytest.skip("the loop did not complete")
    airflow, today = loop.airflow, dt.datetime.now(dt.UTC).date()
    if today != loop.days[-1] + dt.timedelta(days=1):
        pytest.skip("the UTC day changed during the module: the capture spans two days")
    start, end = (f"{d.isoformat()}T00:00:00+00:00" for d in (today, today + dt.timedelta(days=1)))
    interval = {"logical_date": start, "data_interval_start": start, "data_interval_end": end}
    # A value outside the param's enum is refused when the run is triggered (nothing runs).
    with pytest.raises(EmbeddedAirflowError, match="400|422"):
        airflow.api("POST", f"/api/v2/dags/{MONITORING}/dagRuns", {**interval, "conf": {"current": "live"}})
    # The day's source rows exist once it is over; here the day is ingested early (the same interval).
    spec = source_spec(loop.days, loop.bad, loop.drift_from)
    seed_range(create_engine(f"sqlite:///{loop.mlops / 'source.db'}"), [today], spec)
    airflow.api("POST", f"/api/v2/dags/{INGEST}/dagRuns", {**interval, "dag_run_id": "manual__served_day"})
    run_id = "manual__served_day"
    airflow.api("POST", f"/api/v2/dags/{MONITORING}/dagRuns",
                {**interval, "dag_run_id": run_id, "conf": {"current": "served"}})  # fmt: skip
    done = ("success", "failed", "skipped", "upstream_failed")
    report = wait_for(lambda: (t := ti(airflow, MONITORING, run_id, "drift_report"))["state"] in done and t, 600,
                      "the served day's drift_report")  # fmt: skip
    assert report["state"] == "success", task_states(airflow, MONITORING, run_id)
    value = airflow.api(
        "GET", f"/api/v2/dags/{MONITORING}/dagRuns/{run_id}/taskInstances/drift_report/xcomEntries/return_value"
    )["value"]
    summary = value if isinstance(value, dict) else json.loads(value)
    record = json.loads(Path(summary["summary_path"]).read_text())  # the record of decision, as stored
    current = record["current"]
    assert current["kind"] == "served" and record["partition"] == today.isoformat(), current
    capture = f"/captures/{CHURN.name}/{today.isoformat()}/"
    assert current["capture_files"] and all(capture in f for f in current["capture_files"]), current
    assert sum(current["versions"].values()) == current["rows"] >= CHURN_SPEC.monitoring.min_served_rows
    # A canary day: every version the loop's client saw answering was captured, and each is reported on its own.
    client_versions = {x["version"] for x in loop.notes["loop_client"].lines()}
    assert len(client_versions) >= 2 and client_versions <= set(current["versions"]), (client_versions, current)
    assert set(record["served"]) == set(current["versions"])
    for version in client_versions:
        entry = record["served"][version]
        assert entry["rows"] == current["versions"][version] and entry["prediction_drift"] is not None, entry

    # The realised metric per version on what was served on T equals the one computed by hand from the client logs
    # joined with T's labels. Under the scheduler that is the monitoring run of T + label.delay_days (7), which Airflow
    # refuses to run today (a logical date in the future: RunnableExecDateDep), so the spec's own performance check
    # runs here in the instance's environment with label_delay_days=0 (T labels T) and the served join on (the spec's
    # monitoring.current is "ingested": its key is passed explicitly). After the run's own performance_check, so the
    # day's first performance record stays the DAG's.
    wait_for(lambda: ti(airflow, MONITORING, run_id, "performance_check")["state"] in done, 600,
             "the served day's performance_check")  # fmt: skip
    realised = realised_served(loop, today)
    assert realised["labelled_day"] == today.isoformat() and realised["capture_files"], realised
    seeded = generate_day(today, spec)  # T's rows as seeded and ingested: their labels
    truth = dict(zip(seeded[CHURN_SPEC.dataset.key_column], seeded[CHURN_SPEC.label.column], strict=True))
    served: dict[str, list[tuple[int, float]]] = {}
    for line in loop.notes["loop_client"].lines() + loop.notes["bad_client"].lines():
        if line["status"] != 200 or not line.get("keys"):  # the bad-version client sends no key: nothing to join
            continue
        for row_key, prediction in zip(line["keys"], line["predictions"], strict=True):
            served.setdefault(line["version"], []).append((truth[row_key], prediction))
    assert len(served) >= 2, sorted(served)  # a canary day: two versions answered the loop's client
    assert set(realised["versions"]) == set(served), (realised["versions"], sorted(served))
    for version, pairs in served.items():
        labels, predictions = zip(*pairs, strict=True)
        got = realised["versions"][version]
        assert got["rows"] == len(pairs), (version, got)
        if len(set(labels)) > 1:
            assert got["value"] == pytest.approx(roc_auc_score(labels, predictions)), (version, got)
        else:  # one class among the rows it answered: roc_auc is undefined, and the record says so
            assert got["value"] is None and "single class" in got["reason"], (version, got)
    assert realised["joined_rows"] == sum(len(pairs) for pairs in served.values())
    loop.notes["realised"] = realised["versions"]
    print(f"realised roc_auc per version on {today}: {realised['versions']}")
    loop.notes["served_day_seconds"] = time.monotonic() - started
    print(f"served-day monitoring added {loop.notes['served_day_seconds']:.0f} s")
