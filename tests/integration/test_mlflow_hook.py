"""MlflowHook.load_model against a real MLflow store (the embedded default: SQLite under MLOPS_HOME)."""

from __future__ import annotations

import logging

import pytest

from mlops_provider.hooks.mlflow import MlflowHook

pytestmark = pytest.mark.integration

MISMATCH = "Detected one or more mismatches between the model's dependencies and the current Python environment"


@pytest.fixture
def registered(mlops_home):
    """A registered pyfunc model whose requirements the environment cannot satisfy."""
    import mlflow

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [0.5] * len(model_input)

    hook = MlflowHook()
    experiment = hook.get_or_create_experiment("hook_probe")  # its artifacts under MLOPS_HOME, not the cwd
    with hook.scoped_environment():
        with mlflow.start_run(experiment_id=experiment):
            mlflow.pyfunc.log_model(
                name="model", python_model=Constant(), pip_requirements=["xgboost==0.0.1"],
                registered_model_name="hook_probe",
            )  # fmt: skip
    return hook


def test_a_load_checks_the_models_requirements_unless_told_not_to(registered, caplog):
    """The monitoring tasks load the champion every day: the check of its requirements against the environment
    (MLflow scans every installed distribution, ~1.5 s a load, issue 31) was made when it was promoted."""
    with caplog.at_level(logging.WARNING):
        assert registered.load_model("models:/hook_probe/1", check_requirements=False).predict([[1], [2]]) == [0.5] * 2
    assert MISMATCH not in caplog.text
    with caplog.at_level(logging.WARNING):
        registered.load_model("models:/hook_probe/1")
    assert MISMATCH in caplog.text
