"""Import the task libraries once in the process that forks task processes, so no task pays for them.

Airflow 3 runs a task by ``os.fork()`` of the executor's worker (the LocalExecutor's workers are forked from the
scheduler; Celery's pool processes from ``airflow celery worker``). A module imported there before the fork is
already in every task process: MLflow, Great Expectations, Evidently and pandas together cost ~19 s of CPU in a
fresh process on a 2-core machine, and a task that imports them pays up to that for a few seconds of work.

``preload_task_libraries()`` is called from ``airflow_local_settings`` (which Airflow imports at start-up in every
``airflow`` process) and acts only in the processes that fork tasks; everywhere else (API server, DAG processor,
triggerer, the CLI, tests) it does nothing, so parse time and CLI start-up are unchanged. Importing these
libraries starts no thread (checked by the tests), which keeps the fork safe.

Set ``MLOPS_PRELOAD_MODULES`` to a comma-separated list to change the modules, or to an empty string to turn
preloading off.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Mapping, Sequence

DEFAULT_MODULES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "great_expectations",
    "mlflow",
    "mlflow.xgboost",
    "mlflow.pyfunc",
    # the embedded default's tracking and registry stores (SQLite): ~1 s for every task that reads the registry
    # when imported there (issue 31); unused with an MLflow server
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "evidently",
    "evidently.presets",
    "xgboost",
    "sklearn.metrics",
    "dvc.repo",
    "dvc.api",
    "docker",
)
"""What the provider's operators import inside ``execute()``."""

ENV_VAR = "MLOPS_PRELOAD_MODULES"


def forks_tasks(argv: Sequence[str], executor: str) -> bool:
    """Whether the process started with ``argv`` forks task processes.

    :param argv: the process's command line (``sys.argv``).
    :param executor: the configured ``[core] executor``.
    """
    command = [a for a in argv[1:] if not a.startswith("-")]
    if command[:1] == ["scheduler"]:
        return "LocalExecutor" in executor
    return command[:2] == ["celery", "worker"]


def modules_to_preload(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The modules named by ``MLOPS_PRELOAD_MODULES`` (unset: ``DEFAULT_MODULES``; empty: none).

    :param environ: the process environment.
    """
    if ENV_VAR not in environ:
        return DEFAULT_MODULES
    return tuple(m.strip() for m in environ[ENV_VAR].split(",") if m.strip())


def preload(modules: Sequence[str]) -> dict[str, float]:
    """Import ``modules`` and return the seconds each took; a module that fails to import is logged and skipped.

    A missing optional library must not stop a scheduler, so a failure is reported on stderr, not raised.

    :param modules: dotted module names.
    """
    seconds: dict[str, float] = {}
    for name in modules:
        started = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - any import failure only loses the speed-up
            _say(f"could not import {name} ({error}); tasks will import it themselves")
            continue
        seconds[name] = round(time.perf_counter() - started, 2)
    return seconds


def preload_task_libraries(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """Preload the task libraries if this process forks task processes; return what was imported.

    :param argv: command line to judge (default ``sys.argv``).
    :param environ: environment to read ``MLOPS_PRELOAD_MODULES`` and the executor from (default ``os.environ``).
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    executor = environ.get("AIRFLOW__CORE__EXECUTOR") or _configured_executor()
    if not forks_tasks(argv, executor):
        return {}
    seconds = preload(modules_to_preload(environ))
    if seconds:
        _say(f"imported {', '.join(seconds)} in {sum(seconds.values()):.1f} s (pid {os.getpid()})")
    return seconds


def _say(message: str) -> None:
    # Airflow configures logging only after airflow_local_settings is imported: stderr is what is there.
    print(f"mlops preload: {message}", file=sys.stderr, flush=True)


def _configured_executor() -> str:
    from airflow.configuration import conf

    return conf.get("core", "executor", fallback="")
