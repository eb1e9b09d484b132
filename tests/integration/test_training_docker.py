"""The docker runner on a real engine: the real training image, lineage tags, a killed container and its retry."""

from __future__ import annotations

import threading
import time

import docker
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.runtime.runners import RUN_KEY_LABEL
from tests.integration.models import context, train_op

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def test_docker_runner_trains_in_the_training_image(training_set, training_image):
    result = train_op(runner="docker", image=training_image).execute(context())
    client = MlflowHook().get_client()
    tags = client.get_run(result["run_id"]).data.tags
    image_id = docker.from_env().images.get(training_image).id
    assert tags["training.runner"] == "docker" and tags["training.image"] == training_image
    assert tags["training.image.digest"] == image_id
    assert tags["training.python"].startswith("3.11")
    assert result["version"] == "1" and result["metrics"]["roc_auc"] > 0.6
    assert MlflowHook().alias_version("churn_classifier", "challenger") == "1"


def test_missing_image_fails_before_any_container_starts(training_set, docker_engine):
    engine = docker.from_env()
    before = {c.id for c in engine.containers.list(all=True)}
    with pytest.raises(AirflowFailException, match="training image 'mlops-training:does-not-exist' does not exist"):
        train_op(runner="docker", image="mlops-training:does-not-exist").execute(context())
    assert {c.id for c in engine.containers.list(all=True)} == before


def test_killed_container_then_retry_succeeds_in_the_same_run(training_set, training_image):
    engine = docker.from_env()
    outcome: dict = {}

    def first_try() -> None:
        try:
            train_op(runner="docker", image=training_image, hyperparameters={"n_estimators": 400}).execute(context())
        except AirflowException as exc:
            outcome["error"] = str(exc)

    worker = threading.Thread(target=first_try)
    worker.start()
    deadline = time.monotonic() + 120
    container = None
    while container is None and time.monotonic() < deadline:
        running = [c for c in engine.containers.list() if c.name.endswith("-try1") and RUN_KEY_LABEL in c.labels]
        container = running[0] if running else None
        time.sleep(0.2)
    assert container is not None, "the first try's container never started"
    time.sleep(2)  # mid-run: the entrypoint is loading data / training
    container.kill()
    worker.join(timeout=120)
    assert "training container" in outcome.get("error", "") and "-try1" in outcome["error"]

    retry = train_op(runner="docker", image=training_image, hyperparameters={"n_estimators": 400}).execute(
        context(try_number=2)
    )
    client = MlflowHook().get_client()
    runs = client.search_runs([client.get_experiment_by_name("churn").experiment_id])
    assert [r.info.run_id for r in runs] == [retry["run_id"]]  # one MLflow run for the task
    assert runs[0].info.status == "FINISHED"
    # The killed try's container was removed before the retry started; the retry's container removed itself.
    assert not engine.containers.list(all=True, filters={"label": RUN_KEY_LABEL})
