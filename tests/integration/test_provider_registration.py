"""The installed distribution shows up in Airflow as a provider and as a plugin, and imports from anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def run_json(*args: str) -> list[dict]:
    proc = subprocess.run([AIRFLOW, *args, "--output", "json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = proc.stdout.index("[")
    return json.loads(proc.stdout[start:])


def test_airflow_providers_list_shows_the_provider():
    providers = {p["package_name"]: p for p in run_json("providers", "list")}
    assert "airflow-provider-mlops" in providers
    from mlops_provider import __version__

    assert providers["airflow-provider-mlops"]["version"] == __version__


def test_airflow_plugins_shows_the_plugin():
    names = [p["name"] for p in run_json("plugins")]
    assert names.count("mlops") == 1


def test_package_imports_outside_the_repository(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "import mlops_provider, sys; print(mlops_provider.__version__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_connection_types_are_registered():
    from airflow.providers_manager import ProvidersManager

    hooks = ProvidersManager().hooks
    assert hooks["dvc"].hook_class_name == "mlops_provider.hooks.dvc.DvcHook"
    assert hooks["mlflow"].hook_class_name == "mlops_provider.hooks.mlflow.MlflowHook"
    behaviours = ProvidersManager().field_behaviours
    assert behaviours["mlflow"]["relabeling"]["host"] == "Tracking URI"
    assert "port" in behaviours["dvc"]["hidden_fields"]
