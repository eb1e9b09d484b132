"""Plain helpers of the integration tests that train and register models (constants, an operator factory, a task
context, copying a registered version); the fixtures built on them are in conftest.py."""

from __future__ import annotations

from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.layout import training_set_path
from mlops_provider.loop.spec import load_spec
from mlops_provider.operators.training import TrainModelOperator
from tests.helpers import PROJECT_ROOT, task_context

TRAINING = PROJECT_ROOT / "include" / "training"
#: The churn demo's model spec: the schema and holdout split the tests train with.
SPEC = load_spec(PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml")
TAG = "training-set/churn_classifier/2026-11-05"
FAST = {"n_estimators": 30, "max_depth": 4}


PROMOTION = PROJECT_ROOT / "include" / "promotion"
BEHAVIOUR = PROMOTION / "churn_classifier.behaviour_tests.json"
DATA_PATH = "data/churn_classifier/training_set.parquet"


def train_op(**kwargs) -> TrainModelOperator:
    defaults = dict(
        task_id="train",
        dataset_path=training_set_path("churn_classifier"),
        dataset_rev=TAG,
        entrypoint=str(TRAINING / "train.py"),
        model_schema=SPEC.entrypoint_schema(),
        holdout=SPEC.holdout,
        hyperparameter_spec=str(TRAINING / "hyperparameters.json"),
        hyperparameters=FAST,
        experiment_name="churn",
        model_name="churn_classifier",
        runner="local",
    )
    return TrainModelOperator(**{**defaults, **kwargs})


def context(try_number: int = 1) -> dict:
    return task_context(None, dag_id="training", run_id="manual__1", task_id="train", try_number=try_number)


def copy_version(hook: MlflowHook, source_name: str, source_version: str, name: str) -> str:
    """Register the model of ``source_name`` v``source_version`` again as a new version of ``name``."""
    client = hook.get_client()
    source = client.get_model_version(source_name, source_version)
    hook.get_or_create_registered_model(name)
    with hook.scoped_environment():
        created = client.create_model_version(
            name, source=source.source, run_id=source.run_id, model_id=source.model_id, tags=source.tags
        )
    return str(created.version)
