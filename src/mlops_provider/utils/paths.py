"""Where the provider keeps things on disk by default: everything under ``MLOPS_HOME``.

Files one task hands to another (staged and quarantined partitions) and the reports and records live under the
storage root instead, which is ``MLOPS_HOME`` unless ``MLOPS_STORAGE_URL`` names object storage
(:mod:`mlops_provider.utils.storage`).

``MLOPS_HOME`` defaults to ``$AIRFLOW_HOME/mlops`` when unset, so a plain ``pip install`` works too; the
project's embedded configuration sets it to ``.mlops`` in the repository.
"""

from __future__ import annotations

import os
from pathlib import Path


def mlops_home() -> Path:
    """The root folder for staging data, the DVC workspace and remote, reports and the local MLflow store."""
    configured = os.environ.get("MLOPS_HOME")
    if configured:
        return Path(configured)
    airflow_home = os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))
    return Path(airflow_home) / "mlops"


#: Folder of the drift reports under the reports root (the only reports that run script, in a sandbox).
DRIFT_REPORTS = "drift"


def dvc_workspace_dir() -> Path:
    """The default DVC workspace (git + DVC repository used as the data registry)."""
    return mlops_home() / "data-registry"


def dvc_remote_dir() -> Path:
    """The default DVC remote (a local folder)."""
    return mlops_home() / "dvc-remote"
