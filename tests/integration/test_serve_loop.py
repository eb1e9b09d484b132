"""The loop serves its champion live (issue 32): the factory's promotion and rollback DAGs of a spec with
``serving.endpoint``, run for real by ``dag.test()`` (the real task runner; the canary's deferred analysis runs
inline), with a real Caddy in front of real backends and a real client replaying rows through the endpoint.

One model for the module, its versions in order: v1 (the pool's weak model) is the first champion, deployed at 100%
at once; v2 (the good model) is canaried and promoted; v3 passes every offline check (it wraps the good model) but
fails live, in the serving backend only (``mlops_provider.demo.bad_models``, kind ``fault``: a fault only production
meets): its canary is rolled back automatically; the rollback DAG then moves the traffic back to v1.

The spec is the churn spec's endpoint with these changes: the gate accepts any challenger (``min_improvement -1``,
no behaviour tests: the pool's weak model fails them); the prediction-shift alarm is off (``max_prediction_shift
1``: the weak model's predictions differ from the good one's by design) and the latency alarm needs a second more
(a loaded machine's p95 swings by hundreds of ms; the unit tests and tests/integration/test_rollout.py judge both
alarms); each step bakes 10 s.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlops_provider.demo.bad_models import register_live_regression
from mlops_provider.demo.churn_source import SourceSpec, generate_day
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.operators.rollout import CanaryRolloutOperator, DeployModelVersionOperator
from mlops_provider.runtime.deployment import Endpoint, serving_records
from mlops_provider.runtime.traffic import read_rows
from tests.helpers import PROJECT_ROOT, task_context
from tests.integration.models import copy_version
from tests.integration.test_rollout import Traffic as _Traffic
from tests.integration.test_rollout import free_base_port

pytestmark = pytest.mark.integration

MODEL = "churn_live"
#: Requests per second of the client: what one backend answers on a loaded 2-core machine (~12 req/s measured with
#: other jobs running); more queues requests behind each other and the analysis' /metrics reads with them.
RATE = 12


class Traffic(_Traffic):
    """test_rollout's background client, at :data:`RATE`."""

    def __enter__(self) -> Traffic:
        import threading

        from mlops_provider.runtime.traffic import replay

        url = f"http://127.0.0.1:{self.live['port']}/invocations"

        def run() -> None:
            self.summary = replay(url, self.live["columns"], self.live["rows"], rate=RATE, count=100_000,
                                  duration=900, log_file=self.log, stop=self.stop)  # fmt: skip

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self


def spec_folder(folder: Path) -> Path:
    """The churn spec as MODEL with the changes of the module's docstring, its relative paths made absolute."""
    text = (PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml").read_text()
    data = yaml.safe_load(text.replace("../", f"{PROJECT_ROOT}/include/"))
    data["name"] = MODEL
    data["gate"].update(min_improvement=-1.0, floors={"roc_auc": 0.5})
    del data["gate"]["behaviour_tests"]
    canary = data["serving"]["endpoint"]["canary"]
    canary["bake_seconds"] = 10
    canary["thresholds"]["max_prediction_shift"] = 1.0
    canary["thresholds"]["min_latency_increase_ms"] = 1000  # a loaded machine's p95 swings by hundreds of ms
    folder.mkdir()
    (folder / f"{MODEL}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def live(trained, airflow_db, tmp_path_factory):
    """The model's DAGs built from its spec on a free port range, the pool's versions registered, rows to replay."""
    from airflow.dag_processing.dagbag import DagBag

    base = free_base_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(trained["home"]))
        mp.setenv("MLOPS_ENDPOINT_PORT_OFFSET", str(base - 8600))
        mp.setenv("MLOPS_MODELS_DIR", str(spec_folder(tmp_path_factory.mktemp("live") / "models")))
        hook = MlflowHook()
        hook.get_or_create_registered_model(MODEL)
        runs = trained["runs"]
        versions = {
            "weak": copy_version(hook, "pool", runs["weak"]["version"], MODEL),
            "good": copy_version(hook, "pool", runs["good"]["version"], MODEL),
        }
        versions["fault"] = register_live_regression(hook, MODEL, versions["good"], tmp_path_factory.mktemp("fault"),
                                                     kind="fault")  # fmt: skip
        # The newest validated partition is what the shadow check replays, and what the client sends.
        day = generate_day(dt.date(2026, 11, 7), SourceSpec(rows_per_day=500))
        day["signup_date"] = pd.to_datetime(day["signup_date"])
        partition = trained["home"].parent / "partition.parquet"
        day.to_parquet(partition, index=False)
        DvcHook().version_file(partition, "data/customer_activity/partitions/2026-11-07.parquet",
                               "partition/customer_activity/2026-11-07", {})  # fmt: skip
        with hook.scoped_environment():
            import mlflow.models

            signature = mlflow.models.get_model_info(f"models:/{MODEL}/{versions['good']}").signature
        columns, rows = read_rows(partition, signature.inputs.input_names())
        bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py"))
        assert not bag.import_errors, bag.import_errors
        state = {"hook": hook, "port": base, "columns": columns, "rows": rows, "versions": versions, "bag": bag}
        try:
            yield state
        finally:
            Endpoint(MODEL, base).shutdown()


def promote(live, version: str):
    return live["bag"].get_dag(f"{MODEL}__promotion").test(run_conf={"version": version})


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def serving(live) -> dict[str, int]:
    return {v: w for v, w in Endpoint(MODEL, live["port"]).load()["weights"].items() if w}


def answered_by(live) -> str:
    body = {"dataframe_split": {"columns": live["columns"], "data": live["rows"][:1]}}
    request = urllib.request.Request(
        f"http://127.0.0.1:{live['port']}/invocations",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return response.headers["X-Model-Version"]


def canary_in_ledger(version: str) -> dict:
    """The ``canary`` the rollout added to the version's verdict ledger (the evaluation of this run)."""
    from mlops_provider.utils.records import ledger_dir

    ledgers = [json.loads(p.read_text()) for p in ledger_dir(MODEL, version).glob("*.json")]
    with_canary = [ledger for ledger in ledgers if "canary" in ledger]
    assert len(with_canary) == 1, [sorted(ledger) for ledger in ledgers]
    return with_canary[0]["canary"]


def test_the_first_champion_is_deployed_at_100_percent_by_the_promotion_dag(live):
    v1 = live["versions"]["weak"]
    run = promote(live, v1)
    assert states(run) == dict.fromkeys(
        ("evaluate", "gate", "package", "shadow_check", "deploy", "canary_rollout", "promote"), "success"
    ), states(run)
    assert serving(live) == {v1: 100}
    assert live["hook"].alias_version(MODEL, "champion") == v1
    assert answered_by(live) == v1


def test_a_good_challenger_is_canaried_to_100_percent_and_promoted_with_no_failed_client_request(live, tmp_path):
    v1, v2 = live["versions"]["weak"], live["versions"]["good"]
    hook = live["hook"]
    with Traffic(live, tmp_path / "client.jsonl") as traffic:
        run = promote(live, v2)
    assert run.state == "success", states(run)
    assert serving(live) == {v2: 100}
    assert (hook.alias_version(MODEL, "champion"), hook.alias_version(MODEL, "previous")) == (v2, v1)
    assert hook.alias_version(MODEL, "canary") is None
    lines = traffic.lines()
    assert traffic.summary.failed == 0, [x for x in lines if x["status"] != 200][:5]
    assert {x["version"] for x in lines} >= {v1, v2}  # both answered during the rollout
    canary = canary_in_ledger(v2)
    assert canary["outcome"] == "promoted" and [s["percent"] for s in canary["steps"]] == [25], canary
    assert canary["steps"][0]["passed"] and canary["steps"][0]["canary"]["judged_requests"] > 0
    assert hook.model_version_tags(MODEL, v2)["canary.outcome"] == "promoted"
    record = Endpoint(MODEL, live["port"]).load()
    assert sorted(record["backends"]) == sorted([v1, v2])  # keep_versions 2: the old champion runs at weight 0

    # Clearing deploy and canary_rollout (the DAG's own arguments): nothing starts twice, nothing shifts.
    spec_args = live["bag"].get_dag(f"{MODEL}__promotion").get_task("canary_rollout")
    context = task_context(None, dag_id=f"{MODEL}__promotion", run_id=run.run_id, task_id="canary_rollout",
                           try_number=2)  # fmt: skip
    again = DeployModelVersionOperator(task_id="deploy", model_name=MODEL, version=v2, port=spec_args.port
                                       ).execute(context)  # fmt: skip
    assert again["reconciled"] == [] and again["weights"] == {v1: 0, v2: 100}
    rerun = CanaryRolloutOperator(
        task_id="canary_rollout", model_name=MODEL, version=v2, port=spec_args.port, steps=spec_args.steps,
        bake_seconds=spec_args.bake_seconds, thresholds=spec_args.thresholds, move_champion=False,
    ).execute(context)  # fmt: skip
    assert rerun["outcome"] == "promoted" and rerun["steps"] == [] and serving(live) == {v2: 100}
    after = Endpoint(MODEL, live["port"]).load()
    assert after["backends"] == record["backends"]
    assert [e for e in after["events"] if e["event"] == "deploy"] == [e for e in record["events"] if e["event"] ==
                                                                      "deploy"]  # fmt: skip
    assert hook.alias_version(MODEL, "champion") == v2


def test_a_challenger_failing_live_is_rolled_back_automatically_and_not_promoted(live, tmp_path):
    v2, v3 = live["versions"]["good"], live["versions"]["fault"]
    hook = live["hook"]
    with Traffic(live, tmp_path / "client.jsonl") as traffic:
        run = promote(live, v3)
    assert run.state == "failed"
    assert states(run)["canary_rollout"] == "failed" and states(run)["promote"] == "upstream_failed", states(run)
    assert states(run)["shadow_check"] == "success"  # offline it is fine: only live traffic finds the fault
    assert serving(live) == {v2: 100}
    assert v3 not in Endpoint(MODEL, live["port"]).load()["backends"]  # the canary is stopped
    assert hook.alias_version(MODEL, "champion") == v2 and hook.alias_version(MODEL, "canary") is None
    verdicts = [json.loads(p.read_text()) for p in (serving_records(MODEL) / "verdicts").glob(f"v{v3}-*.json")]
    assert len(verdicts) == 1 and verdicts[0]["outcome"] == "rolled_back" and verdicts[0]["alarm"] == "error_rate"
    assert verdicts[0]["steps"][-1]["canary"]["error_rate"] > 0.5
    canary = canary_in_ledger(v3)
    assert canary["outcome"] == "rolled_back" and canary["alarm"] == "error_rate"
    assert hook.model_version_tags(MODEL, v3)["canary.alarm"] == "error_rate"
    failed = [x for x in traffic.lines() if x["status"] != 200]
    assert failed and {x["version"] for x in failed} == {v3}  # only the canary's own answers failed
    assert not [x for x in failed if x["status"] == 0]  # no request went unanswered, also during the rollback


def test_the_rollback_dag_moves_the_traffic_back(live, tmp_path):
    v1, v2 = live["versions"]["weak"], live["versions"]["good"]
    dag = live["bag"].get_dag(f"{MODEL}__rollback")
    with Traffic(live, tmp_path / "client.jsonl") as traffic:
        run = dag.test(run_conf={"reason": "the good model misbehaves on a segment"})
    assert states(run) == {"rollback": "success", "serve_champion": "success"}, states(run)
    assert live["hook"].alias_version(MODEL, "champion") == v1
    assert serving(live) == {v1: 100} and answered_by(live) == v1
    assert traffic.summary.failed == 0
    assert v2 in Endpoint(MODEL, live["port"]).load()["backends"]  # kept at weight 0
