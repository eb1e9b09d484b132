"""Packaging a model version and the shadow check: MLflow's scoring server as a local process and as the real
serving container, predictions equal to the registry model's own."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import docker
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.demo.churn_source import SourceSpec, generate_day
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.operators.serving import PackageModelOperator, ShadowCheckOperator
from mlops_provider.runtime.model_servers import DockerModelServer
from tests.helpers import PROJECT_ROOT, task_context
from tests.integration.models import copy_version

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 9)


@pytest.fixture
def candidate(trained, monkeypatch, tmp_path):
    """The 'good' model registered as serving_model v1, and a validated partition to replay."""
    monkeypatch.setenv("MLOPS_HOME", str(trained["home"]))
    hook = MlflowHook()
    hook.get_or_create_registered_model("serving_model")
    if not hook.get_client().search_model_versions("name = 'serving_model'"):
        copy_version(hook, "pool", trained["runs"]["good"]["version"], "serving_model")
    frame = generate_day(DAY, SourceSpec(rows_per_day=600))
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    path = tmp_path / "part.parquet"
    frame.to_parquet(path, index=False)
    DvcHook().version_file(
        path, f"data/customer_activity/partitions/{DAY}.parquet", f"partition/customer_activity/{DAY}", {}
    )
    return hook


def package(runner: str) -> dict:
    return PackageModelOperator(
        task_id="package",
        model_name="serving_model",
        version="1",
        runner=runner,
        serving_dir=str(PROJECT_ROOT / "include" / "serving"),
        requirements=str(PROJECT_ROOT / "include" / "training" / "requirements.txt"),
    ).execute(task_context(None))


def shadow(pkg: dict, **kwargs) -> dict:
    return ShadowCheckOperator(
        task_id="shadow", package=json.dumps(pkg), dataset="customer_activity", **kwargs
    ).execute(task_context(None))


def test_local_shadow_check_passes_and_is_recorded(candidate):
    pkg = package("local")
    assert pkg["image"] is None and (Path(pkg["model_dir"]) / "MLmodel").is_file()
    result = shadow(pkg)
    assert result["passed"] and result["errors"] == 0 and result["rows"] > 500
    assert result["max_abs_diff"] <= 1e-6 and result["p95_ms"] > 0
    assert result["server"] == "in_process"  # the live backend's app in this process: no server process (issue 31)
    tags = candidate.get_client().get_model_version("serving_model", "1").tags
    assert tags["shadow.passed"] == "True"


def test_in_process_and_process_servers_give_the_same_verdicts(candidate):
    """The in-process server (default) and ``mlflow models serve`` processes judge a package alike: both pass a good
    one with the registry model's predictions, both fail it on an impossible latency bound, and the champion's
    replay says the same (issue 31: the shadow check without server processes)."""
    pkg = package("local")
    with candidate.scoped_environment():
        candidate.get_client().set_registered_model_alias("serving_model", "champion", "1")
    v2 = copy_version(candidate, "serving_model", "1", "serving_model")
    pkg = PackageModelOperator(
        task_id="package", model_name="serving_model", version=str(v2), runner="local",
        serving_dir=str(PROJECT_ROOT / "include" / "serving"),
        requirements=str(PROJECT_ROOT / "include" / "training" / "requirements.txt"),
    ).execute(task_context(None))  # fmt: skip
    verdicts = {}
    for in_process in (True, False):
        result = shadow(pkg, in_process=in_process)
        champion = result["current_champion"]
        verdicts[result["server"]] = (
            result["passed"], result["errors"], result["rows"], result["max_abs_diff"] <= 1e-6,
            champion["version"], champion["errors"], champion["mean_abs_diff_vs_candidate"] <= 1e-6,
        )  # fmt: skip
        with pytest.raises(AirflowFailException, match=r"p95 latency .* > 0.001 ms"):
            shadow(pkg, in_process=in_process, p95_ms=0.001)
    assert set(verdicts) == {"in_process", "process"}
    assert verdicts["in_process"] == verdicts["process"] == (True, 0, verdicts["process"][2], True, "1", 0, True)


def test_current_champion_gets_the_same_replay_for_comparison(candidate):
    package("local")  # v1 packaged: it is what serves today
    with candidate.scoped_environment():
        candidate.get_client().set_registered_model_alias("serving_model", "champion", "1")
    v2 = copy_version(candidate, "serving_model", "1", "serving_model")
    pkg = PackageModelOperator(
        task_id="package", model_name="serving_model", version=str(v2), runner="local",
        serving_dir=str(PROJECT_ROOT / "include" / "serving"),
        requirements=str(PROJECT_ROOT / "include" / "training" / "requirements.txt"),
    ).execute(task_context(None))  # fmt: skip
    result = shadow(pkg)
    champion = result["current_champion"]
    assert champion["version"] == "1" and champion["errors"] == 0 and champion["p95_ms"] > 0
    assert champion["mean_abs_diff_vs_candidate"] <= 1e-6  # same model behind both servers


def test_shadow_check_fails_on_the_latency_bound(candidate):
    with pytest.raises(AirflowFailException, match=r"p95 latency .* > 0.001 ms"):
        shadow(package("local"), p95_ms=0.001)


@pytest.mark.docker
def test_serving_image_answers_like_the_registry_model(candidate, training_image):
    import mlflow

    from mlops_provider.ml.scoring import schema_predictor

    pkg = package("docker")
    image = docker.from_env().images.get(pkg["image"])
    assert pkg["image"] == "serving-model-serving:v1"
    assert image.labels["org.mlops.model.version"] == "1" and image.labels["org.mlops.data.rev"]
    assert package("docker")["image_id"] == pkg["image_id"]  # built once

    tests = json.loads((PROJECT_ROOT / "include" / "promotion" / "churn_classifier.behaviour_tests.json").read_text())
    cases = pd.DataFrame([{**tests["base"], **case["input"]} for case in tests["known_cases"]])
    with candidate.scoped_environment():
        candidate.get_client().set_registered_model_alias("serving_model", "champion", "1")
        model = mlflow.pyfunc.load_model("models:/serving_model@champion")
    expected = list(schema_predictor(model)(cases))
    server = DockerModelServer(pkg["image"], "mlops-test-serving")
    try:
        server.start()
        server.wait_ready()
        got, _ = server.invoke(json.loads(cases.to_json(orient="split", index=False)))
    finally:
        server.stop()
    assert got == pytest.approx(expected, abs=1e-6)

    result = shadow(pkg)
    assert result["passed"] and result["runner"] == "docker" and result["errors"] == 0
