"""Live serving with the ``docker`` runner on a real engine (issue 32): each version's backend is a container of its
real serving image behind a real Caddy, with the process backend's contract (health check, /metrics, capture,
weights through Caddy) and the same reconciliation (recorded container; a re-run never doubles it, a killed one is
started again from the record, retire removes it). Two versions, their images built once for the module."""

from __future__ import annotations

import datetime as dt
import json
import socket
import urllib.request

import docker
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.exceptions import BackendError, DeploymentError
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.operators.rollout import DeployModelVersionOperator, ServeVersionOperator
from mlops_provider.operators.serving import PackageModelOperator
from mlops_provider.runtime.backend_container import ENDPOINT_LABEL, BackendContainer
from mlops_provider.runtime.capture import capture_files
from mlops_provider.runtime.deployment import Endpoint
from mlops_provider.runtime.traffic import read_rows
from tests.helpers import PROJECT_ROOT, task_context
from tests.integration.models import copy_version
from tests.integration.test_rollout import free_base_port

pytestmark = [pytest.mark.integration, pytest.mark.docker]

MODEL = "docker_live"
CAPTURE = {"fraction": 1.0, "flush_rows": 5000, "flush_seconds": 1.0, "buffer_rows": 100_000, "retention_days": 30,
           "key_column": None}  # fmt: skip
LABEL = {"label": f"{ENDPOINT_LABEL}={MODEL}"}


@pytest.fixture(scope="module")
def live(trained, training_image):
    """Two versions of MODEL (the pool's good model twice), each packaged as its serving image; rows to send."""
    import mlflow.models

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(trained["home"]))
        hook = MlflowHook()
        hook.get_or_create_registered_model(MODEL)
        versions = [copy_version(hook, "pool", trained["runs"][run]["version"], MODEL) for run in ("good", "good")]
        images = {}
        for version in versions:
            images[version] = PackageModelOperator(
                task_id="package", model_name=MODEL, version=version, runner="docker",
                serving_dir=str(PROJECT_ROOT / "include" / "serving"),
                requirements=str(PROJECT_ROOT / "include" / "training" / "requirements.txt"),
            ).execute(task_context(None))["image"]  # fmt: skip
        with hook.scoped_environment():
            signature = mlflow.models.get_model_info(f"models:/{MODEL}/{versions[0]}").signature
        columns, rows = read_rows(trained["home"].parent / "clean.parquet", signature.inputs.input_names())
        port = free_base_port()
        try:
            yield {"hook": hook, "port": port, "versions": versions, "images": images, "columns": columns,
                   "rows": rows[:200], "pool_good": trained["runs"]["good"]["version"]}  # fmt: skip
        finally:
            Endpoint(MODEL, port).shutdown()
            for container in docker.from_env().containers.list(all=True, filters=LABEL):
                container.remove(force=True)


def deploy(live, version: str) -> dict:
    return DeployModelVersionOperator(
        task_id="deploy", model_name=MODEL, version=version, port=live["port"], capture=CAPTURE, runner="docker"
    ).execute(task_context(None))


def containers() -> dict[str, str]:
    """version -> status of MODEL's backend containers on the engine."""
    found = docker.from_env().containers.list(all=True, filters=LABEL)
    assert len({c.labels["mlops.version"] for c in found}) == len(found), [c.name for c in found]  # one per version
    return {c.labels["mlops.version"]: c.status for c in found}


def answered(live, requests: int, until: set[str] | None = None) -> dict[str, int]:
    """Send ``requests`` one-row requests through the endpoint (with ``until``: until those versions answered, at
    most ``requests``); how many each version answered. Every request must succeed."""
    counts: dict[str, int] = {}
    for i in range(requests):
        row = live["rows"][i % len(live["rows"])]
        body = json.dumps({"dataframe_split": {"columns": live["columns"], "data": [row]}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{live['port']}/invocations", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            version = response.headers["X-Model-Version"]
        counts[version] = counts.get(version, 0) + 1
        if until is not None and set(counts) >= until:
            break
    return counts


def test_versions_run_as_containers_behind_the_proxy_reconciled_from_the_record(live):
    v1, v2 = live["versions"]
    first = deploy(live, v1)
    assert first["health"]["ping"] and first["health"]["example_status"] in (None, 200)
    endpoint = Endpoint(MODEL, live["port"])
    endpoint.set_weights({v1: 100})
    second = deploy(live, v2)
    endpoint.set_weights({v1: 70, v2: 30}, reason="canary")
    record = endpoint.load()
    for version in (v1, v2):
        entry = record["backends"][version]
        assert entry["runner"] == "docker" and entry["image"] == live["images"][version]
        assert entry["container_id"] and entry["capture"] == CAPTURE and "pid" not in entry
    assert containers() == {v1: "running", v2: "running"}
    counts = answered(live, 40)
    assert set(counts) == {v1, v2}, counts  # both containers answer through Caddy

    # /metrics of a container: the version's requests and the weight the record gives it
    with urllib.request.urlopen(f"http://127.0.0.1:{record['backends'][v2]['port']}/metrics") as response:
        metrics = response.read().decode()
    requests = f'mlops_serving_requests_total{{model="{MODEL}",status_class="2xx",version="{v2}"}}'
    example = 1 if second["health"]["example_status"] else 0  # the health check's request
    assert f"{requests} {counts[v2] + example}.0" in metrics, metrics
    assert f'mlops_serving_traffic_weight{{model="{MODEL}",version="{v2}"}} 30.0' in metrics

    # a re-run of deploy: nothing new
    again = deploy(live, v2)
    assert again["reconciled"] == [] and endpoint.load()["backends"] == record["backends"]
    assert containers() == {v1: "running", v2: "running"}

    # a killed container is started again from the record (the same image, the same port, a new container)
    docker.from_env().containers.get(record["backends"][v1]["container_id"]).kill()
    status = endpoint.status()
    assert status["reconciled"] == [f"started backend v{v1}"]
    assert status["backends"][v1]["container_id"] != record["backends"][v1]["container_id"]
    assert status["backends"][v1]["port"] == record["backends"][v1]["port"]
    assert containers() == {v1: "running", v2: "running"}
    assert set(answered(live, 300, until={v1, v2})) == {v1, v2}  # Caddy's health check takes it back

    # retire removes the container; what it answered was captured under the storage root
    endpoint.set_weights({v1: 100})
    endpoint.retire(v2, reason="test")
    assert containers() == {v1: "running"} and v2 not in endpoint.load()["backends"]
    day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert [f for f in capture_files(MODEL, day) if f"Z-v{v2}-" in f.name], "the container captured nothing"

    # serve_champion brings the retired version back: a container again, capturing as deploy started it
    served = ServeVersionOperator(task_id="serve_champion", model_name=MODEL, version=v2, port=live["port"],
                                  capture=CAPTURE, runner="docker").execute(task_context(None))  # fmt: skip
    assert served["changed"] and {v: w for v, w in served["weights"].items() if w} == {v2: 100}
    entry = endpoint.load()["backends"][v2]
    assert entry["runner"] == "docker" and entry["capture"] == CAPTURE
    assert containers() == {v1: "running", v2: "running"} and set(answered(live, 10)) == {v2}


def test_a_missing_image_and_a_taken_port_are_clear_errors(live, tmp_path):
    v1 = live["versions"][0]
    hook = live["hook"]
    base = free_base_port()
    missing = Endpoint(f"{MODEL}_missing", base, runner="docker")
    try:
        with pytest.raises(DeploymentError, match=r"serving image mlops-missing:v1 .* is not on the Docker engine "
                                                  r".*PackageModelOperator"):  # fmt: skip
            missing.deploy(v1, tmp_path, image_for=lambda version: "mlops-missing:v1")
        assert missing.load()["backends"] == {}
    finally:
        missing.shutdown()  # the proxy the reconciliation started

    # a version never packaged for docker: the operator says which task builds its image
    unpackaged = copy_version(hook, "pool", live["pool_good"], MODEL)
    with pytest.raises(AirflowFailException, match=r"no serving image .* PackageModelOperator"):
        DeployModelVersionOperator(task_id="deploy", model_name=MODEL, version=unpackaged, port=base,
                                   runner="docker").execute(task_context(None))  # fmt: skip

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        backend = BackendContainer(MODEL, v1, port, tmp_path, live["images"][v1])
        with pytest.raises(BackendError, match=f"port {port} for {MODEL} v{v1} is taken"):
            backend.start()
    assert backend.container() is None
