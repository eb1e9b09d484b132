"""Where the worker's own files live: every folder under ``MLOPS_HOME`` on this machine's disk.

Owns ``MLOPS_HOME`` and its folders: the DVC workspace and the default DVC remote, the embedded MLflow store, model
copies and server pid files, training work folders, locks and scratch (``work/<purpose>``). No other module spells
one of these folder names (``tests/repo/test_record_paths.py``).

Files tasks hand to each other and every report and record live under the storage root instead, which is
``MLOPS_HOME`` unless ``MLOPS_STORAGE_URL`` names object storage: its folders are
:mod:`mlops_provider.utils.records` (on the local disk both tables share ``MLOPS_HOME``, so no name is in both:
a unit test checks), its mechanics :mod:`mlops_provider.utils.storage`.

``MLOPS_HOME`` defaults to ``$AIRFLOW_HOME/mlops`` when unset, so a plain ``pip install`` works too; the
project's embedded configuration sets it to ``.mlops`` in the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Every folder under ``MLOPS_HOME`` that this module names, by what it holds.
FOLDERS: dict[str, str] = {
    "data_registry": "data-registry",  # the DVC workspace (git + DVC), the default data registry
    "dvc_remote": "dvc-remote",  # the default DVC remote (a local folder)
    "mlflow": "mlflow",  # the embedded MLflow store: mlflow.db and artifacts/
    # <model>/v<version>/model (registry copies), servers/<key>.pid, endpoints/<model>/, prometheus/ (target files)
    "serving": "serving",
    "training": "training",  # <run id>/ and reproduce-<run id>/: a training's dataset and outputs
    "locks": "locks",  # registry-<model>.lock
    "work": "work",  # <purpose>/: transient files (uploads, downloads, scratch, drift)
    "cache": "cache",  # specs/<key>.json: validated model specs (loop.spec: the DAG factory reads them at parse)
}


def mlops_home() -> Path:
    """The root folder for staging data, the DVC workspace and remote, reports and the local MLflow store."""
    configured = os.environ.get("MLOPS_HOME")
    if configured:
        return Path(configured)
    airflow_home = os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))
    return Path(airflow_home) / "mlops"


def home_folder(kind: str, *parts: str) -> Path:
    """``parts`` under the ``MLOPS_HOME`` folder of ``kind`` (a key of :data:`FOLDERS`); a KeyError names the kinds
    when ``kind`` is not one."""
    if kind not in FOLDERS:
        raise KeyError(f"no MLOPS_HOME folder {kind!r}; known: {', '.join(FOLDERS)}")
    return mlops_home().joinpath(FOLDERS[kind], *parts)


def dvc_workspace_dir() -> Path:
    """The default DVC workspace (git + DVC repository used as the data registry)."""
    return home_folder("data_registry")


def dvc_remote_dir() -> Path:
    """The default DVC remote (a local folder)."""
    return home_folder("dvc_remote")


def mlflow_store_dir() -> Path:
    """The embedded MLflow store: its SQLite database and, under ``artifacts/``, the experiments' artifacts."""
    return home_folder("mlflow")


def serving_copy_dir(model_name: str, version: str | int) -> Path:
    """A registered version's artifacts on this worker's disk: ``serving/<model>/v<version>/model``."""
    return home_folder("serving", model_name, f"v{version}", "model")


def server_pid_file(key: str) -> Path:
    """Where the local runner records a shadow-check server: ``serving/servers/<key>.pid``."""
    return home_folder("serving", "servers", f"{key}.pid")


def training_work_dir(name: str) -> Path:
    """A training's work folder (its dataset, holdout and outputs): ``training/<name>`` (not created)."""
    return home_folder("training", name)


def locks_dir() -> Path:
    """The folder of the per-model lock files (not created)."""
    return home_folder("locks")


def work_dir(purpose: str) -> Path:
    """A folder on this worker's own disk for transient files (``MLOPS_HOME/work/<purpose>``), created."""
    folder = home_folder("work", purpose)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
