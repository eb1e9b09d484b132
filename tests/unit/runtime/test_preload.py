"""Which processes preload the task libraries, and which modules (``mlops_provider.runtime.preload``)."""

from __future__ import annotations

import pytest

from mlops_provider.runtime.preload import DEFAULT_MODULES, forks_tasks, modules_to_preload

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("argv", "executor", "expected"),
    [
        (["airflow", "scheduler"], "LocalExecutor", True),
        (["/venv/bin/airflow", "scheduler", "--pid", "x"], "airflow.executors.local_executor.LocalExecutor", True),
        (["airflow", "scheduler"], "CeleryExecutor", False),
        (["airflow", "celery", "worker", "--celery-hostname", "w1"], "CeleryExecutor", True),
        (["airflow", "celery", "flower"], "CeleryExecutor", False),
        (["airflow", "api-server"], "LocalExecutor", False),
        (["airflow", "dag-processor"], "LocalExecutor", False),
        (["airflow", "triggerer"], "LocalExecutor", False),
        (["airflow", "standalone"], "LocalExecutor", False),
        (["airflow", "dags", "list"], "LocalExecutor", False),
        (["pytest", "tests"], "LocalExecutor", False),
    ],
)
def test_only_processes_that_fork_tasks_preload(argv, executor, expected):
    assert forks_tasks(argv, executor) is expected


def test_module_list_from_the_environment():
    assert modules_to_preload({}) == DEFAULT_MODULES
    assert modules_to_preload({"MLOPS_PRELOAD_MODULES": ""}) == ()
    assert modules_to_preload({"MLOPS_PRELOAD_MODULES": " pandas, mlflow ,,"}) == ("pandas", "mlflow")
