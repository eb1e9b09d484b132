"""Live serving (issue 32): a real Caddy in front of real backends serving real registered MLflow models, real HTTP
traffic from the replay client while the rollout operators shift weights.

One endpoint for the module (backends take seconds to start): v1 (the pool's good model) is deployed and becomes
the champion at once (no baseline); each test then deploys a canary against whatever the record says serves now.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.operators.rollout import CanaryRolloutOperator, DeployModelVersionOperator
from mlops_provider.runtime.deployment import Endpoint, serving_records
from mlops_provider.runtime.proxy import reduced
from mlops_provider.runtime.traffic import read_rows, replay
from tests.helpers import task_context
from tests.integration.models import copy_version

pytestmark = pytest.mark.integration

MODEL = "live_model"
#: Short steps so a rollout takes seconds. The thresholds fit a step's traffic on a loaded 2-core machine (a backend
#: answered ~12 req/s at p95 ~230 ms while other jobs ran: ~25 canary requests a step; two equal models then differ
#: by a Jensen-Shannon distance up to ~0.45 by chance, the constant model by ~0.9; a p95 swings by tens of ms: the
#: unit tests judge the latency rule).
THRESHOLDS = {"min_requests": 20, "max_prediction_shift": 0.6, "min_latency_increase_ms": 200}
ROLLOUT = dict(steps=[20, 50, 100], bake_seconds=12, poll_seconds=1, deferrable=False, thresholds=THRESHOLDS)
RATE = 40

BAD_MODEL = """
import mlflow.pyfunc
import numpy as np


class Bad(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if "{kind}" == "fault":
            raise RuntimeError("this version is broken")
        return np.full(len(model_input), 0.97)


mlflow.models.set_model(Bad())
"""


def free_base_port(span: int = 12) -> int:
    """A port with ``span`` free ports after it."""
    for base in range(18700 + (os.getpid() % 50) * 20, 30000, 20):
        if all(_free(base + i) for i in range(span)):
            return base
    raise RuntimeError("no free port range")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def register_bad(hook: MlflowHook, kind: str, signature, folder: Path) -> str:
    """A pyfunc model (models-from-code) that raises ("fault") or answers a constant, with the good model's
    signature, registered as a new version of MODEL."""
    import mlflow.pyfunc

    code = folder / f"bad_{kind}.py"
    code.write_text(BAD_MODEL.replace("{kind}", kind))
    experiment = hook.get_or_create_experiment("live-bad")  # artifacts under MLOPS_HOME, not ./mlruns
    with hook.scoped_environment():
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(name="model", python_model=str(code), signature=signature,
                                           pip_requirements=[], registered_model_name=MODEL)  # fmt: skip
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def live(trained, tmp_path_factory):
    """The endpoint with v1 (good) serving 100%, the versions registered, rows to replay."""
    import mlflow.models

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(trained["home"]))
        hook = MlflowHook()
        hook.get_or_create_registered_model(MODEL)
        good = copy_version(hook, "pool", trained["runs"]["good"]["version"], MODEL)
        again = copy_version(hook, "pool", trained["runs"]["good_again"]["version"], MODEL)
        with hook.scoped_environment():
            signature = mlflow.models.get_model_info(f"models:/{MODEL}/{good}").signature
        folder = tmp_path_factory.mktemp("bad-models")
        constant = register_bad(hook, "constant", signature, folder)
        fault = register_bad(hook, "fault", signature, folder)
        columns, rows = read_rows(trained["home"].parent / "clean.parquet", signature.inputs.input_names())
        port = free_base_port()
        state = {"hook": hook, "port": port, "columns": columns, "rows": rows[:2000],
                 "versions": {"good": good, "again": again, "constant": constant, "fault": fault}}  # fmt: skip
        deploy(state, good)
        first = rollout(state, good)
        assert first["outcome"] == "promoted" and first["baseline"] is None
        try:
            yield state
        finally:
            Endpoint(MODEL, port).shutdown()


def context(run: str) -> dict:
    return task_context(None, dag_id="promotion", run_id=run, task_id="rollout")


def deploy(live, version: str, **kwargs) -> dict:
    return DeployModelVersionOperator(
        task_id="deploy", model_name=MODEL, version=version, port=live["port"], **kwargs
    ).execute(context(f"deploy-{version}"))


def rollout(live, version: str, run: str | None = None, **kwargs) -> dict:
    op = CanaryRolloutOperator(task_id="rollout", model_name=MODEL, version=version, port=live["port"],
                               **{**ROLLOUT, **kwargs})  # fmt: skip
    return op.execute(context(run or f"rollout-{version}"))


class Traffic:
    """The replay client in a background thread for the length of a block; ``summary`` after it ends."""

    def __init__(self, live, log: Path) -> None:
        self.live, self.log, self.stop = live, log, threading.Event()
        self.summary = None

    def __enter__(self) -> Traffic:
        url = f"http://127.0.0.1:{self.live['port']}/invocations"

        def run() -> None:
            self.summary = replay(url, self.live["columns"], self.live["rows"], rate=RATE, count=100_000,
                                  duration=600, log_file=self.log, stop=self.stop)  # fmt: skip

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(60)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def serving(live) -> dict[str, int]:
    return {v: w for v, w in Endpoint(MODEL, live["port"]).load()["weights"].items() if w}


def test_a_good_canary_is_rolled_out_with_no_failed_request(live, tmp_path):
    version = live["versions"]["again"]
    baseline = next(iter(serving(live)))
    deploy(live, version)
    with Traffic(live, tmp_path / "client.jsonl") as traffic:
        result = rollout(live, version)
        time.sleep(1)
    assert result["outcome"] == "promoted", result
    assert [s["percent"] for s in result["steps"]] == [20, 50] and all(s["passed"] for s in result["steps"])
    assert serving(live) == {version: 100}
    hook = live["hook"]
    assert hook.alias_version(MODEL, "champion") == version
    assert hook.alias_version(MODEL, "previous") == baseline
    assert hook.alias_version(MODEL, "canary") is None
    lines = traffic.lines()
    assert traffic.summary.failed == 0, [x for x in lines if x["status"] != 200][:5]
    assert {x["version"] for x in lines} == {baseline, version}  # both answered during the steps
    record = Endpoint(MODEL, live["port"]).load()
    assert record["backends"][baseline]["pid"]  # the baseline keeps running at weight 0 (keep_versions=2)


def test_a_constant_model_is_rolled_back_automatically(live, tmp_path):
    version = live["versions"]["constant"]
    baseline = next(iter(serving(live)))
    deploy(live, version)
    with Traffic(live, tmp_path / "client.jsonl") as traffic:
        with pytest.raises(AirflowFailException, match="rolled back.*prediction_shift"):
            rollout(live, version)
    assert serving(live) == {baseline: 100}
    record = Endpoint(MODEL, live["port"]).load()
    assert version not in record["backends"]
    assert live["hook"].alias_version(MODEL, "champion") == baseline
    assert live["hook"].alias_version(MODEL, "canary") is None
    verdicts = [json.loads(p.read_text()) for p in (serving_records(MODEL) / "verdicts").glob(f"v{version}-*.json")]
    assert len(verdicts) == 1 and verdicts[0]["outcome"] == "rolled_back"
    assert verdicts[0]["alarm"] == "prediction_shift" and verdicts[0]["steps"][-1]["prediction_shift"] > 0.6
    assert verdicts[0]["rollback_seconds"] < 5
    assert traffic.summary.failed == 0  # the constant answers 200: no request failed


def test_a_failing_model_is_rolled_back_on_its_error_rate(live, tmp_path):
    version = live["versions"]["fault"]
    baseline = next(iter(serving(live)))
    deploy(live, version, **{})  # its health check predicts the serving example only when MLflow saved one
    with Traffic(live, tmp_path / "client.jsonl") as traffic:
        with pytest.raises(AirflowFailException, match="rolled back.*error_rate"):
            rollout(live, version)
    assert serving(live) == {baseline: 100}
    failed = [x for x in traffic.lines() if x["status"] != 200]
    assert failed and {x["version"] for x in failed} == {version}  # only the canary's answers failed


def test_killing_the_canary_mid_step_rolls_back_with_no_failed_request(live, tmp_path):
    version = live["versions"]["good"] if next(iter(serving(live))) != live["versions"]["good"] else None
    version = version or live["versions"]["again"]
    baseline = next(iter(serving(live)))
    record = deploy(live, version)
    pid = Endpoint(MODEL, live["port"]).load()["backends"][version]["pid"]

    def kill_soon() -> None:
        time.sleep(2.5)
        os.killpg(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon, daemon=True)
    with Traffic(live, tmp_path / "client.jsonl") as traffic:
        killer.start()
        with pytest.raises(AirflowFailException, match="canary_unreachable"):
            rollout(live, version, bake_seconds=20)
    assert record["version"] == version and serving(live) == {baseline: 100}
    assert traffic.summary.failed == 0, [x for x in traffic.lines() if x["status"] != 200][:5]


def test_bad_input_is_a_4xx_naming_the_column_and_counted_apart(live):
    url = f"http://127.0.0.1:{live['port']}/invocations"
    columns = live["columns"]
    body = {"dataframe_split": {"columns": columns[1:], "data": [live["rows"][0][1:]]}}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 422
    assert json.loads(raised.value.read())["column"] == columns[0]
    version = next(iter(serving(live)))
    backend = Endpoint(MODEL, live["port"]).load()["backends"][version]
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{backend['port']}/metrics").read().decode()
    four = [line for line in metrics.splitlines() if 'status_class="4xx"' in line and line.startswith("mlops_")]
    assert four and float(four[0].split()[-1]) >= 1


def test_a_rerun_reconciles_and_never_doubles(live):
    endpoint = Endpoint(MODEL, live["port"])
    before = endpoint.load()
    version = next(iter(serving(live)))
    again = deploy(live, version)
    after = endpoint.load()
    assert after["backends"] == before["backends"] and again["reconciled"] == []
    os.kill(after["proxy"]["pid"], signal.SIGKILL)  # the proxy dies: the next task restores it from the record
    time.sleep(0.5)
    restored = deploy(live, version)
    assert restored["reconciled"] == ["started proxy"] and restored["weights"] == before["weights"]
    assert endpoint.proxy(endpoint.load()).running_weights() == reduced(
        {int(b["port"]): after["weights"][v] for v, b in after["backends"].items()}
    )
    answer = urllib.request.urlopen(
        urllib.request.Request(
            f"http://127.0.0.1:{live['port']}/invocations",
            data=json.dumps({"dataframe_split": {"columns": live["columns"], "data": live["rows"][:2]}}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        ),
        timeout=10,
    )
    assert answer.status == 200 and answer.headers["X-Model-Version"] == version
    # a rollout re-run of the champion is a no-op promotion: same weights, same backends
    result = rollout(live, version, run="rerun")
    assert result["outcome"] == "promoted" and serving(live) == {version: 100}
    assert endpoint.load()["backends"].keys() == after["backends"].keys()


def test_a_taken_port_is_a_clear_error(live, trained):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        op = DeployModelVersionOperator(task_id="deploy", model_name="other_model", version="1", port=port)
        hook = live["hook"]
        hook.get_or_create_registered_model("other_model")
        if not hook.get_client().search_model_versions("name = 'other_model'"):
            copy_version(hook, "pool", trained["runs"]["good"]["version"], "other_model")
        with pytest.raises(AirflowFailException, match=f"port {port} of other_model's endpoint is taken"):
            op.execute(context("taken"))
    Endpoint("other_model", port).shutdown()
