"""Airflow's real plugin loading: the plugins folder must not shadow real libraries, and our plugin loads once.

Airflow imports every ``.py`` under the plugins folder as a top-level module named after its file stem, so
``plugins/mlops_provider/hooks/dvc.py`` would become ``sys.modules["dvc"]``. ``plugins/.airflowignore`` hides
the package from that walk. The check runs in a fresh interpreter, as a scheduler or api-server would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration

REAL_LIBRARIES = ("docker", "mlflow", "dvc", "great_expectations", "evidently", "xgboost")

PROBE = """
import json, sys
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
real = {}
for name in sys.argv[2].split(","):
    try:
        module = __import__(name)
        real[name] = getattr(module, "__file__", None)
    except ImportError as exc:
        real[name] = "ImportError: " + str(exc)
shadowing = sorted(
    name for name, module in list(sys.modules.items())
    if (getattr(module, "__file__", None) or "").startswith(sys.argv[1] + "/mlops_provider/")
    and not name.startswith("mlops_provider")
)
print(json.dumps({"plugins": [p.name for p in plugins], "errors": errors, "real": real, "shadowing": shadowing}))
"""


def load_plugins(plugins_folder: Path) -> dict:
    env = dict(os.environ, AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins_folder))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(plugins_folder), ",".join(REAL_LIBRARIES)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_plugins_folder_shadows_nothing_and_registers_the_plugin_once():
    result = load_plugins(PROJECT_ROOT / "plugins")
    assert result["shadowing"] == []
    site_packages = str(Path(sys.executable).parents[1] / "lib")
    for name in ("docker", "mlflow", "dvc", "great_expectations", "evidently", "xgboost"):
        assert result["real"][name].startswith(site_packages), f"{name} is {result['real'][name]}"
    assert result["plugins"].count("mlops") == 1
    assert result["errors"] == {}


def test_without_airflowignore_the_package_would_shadow_libraries(tmp_path):
    """Control: the same folder without .airflowignore shows the trap the ignore file prevents."""
    folder = tmp_path / "plugins"
    shutil.copytree(PROJECT_ROOT / "plugins", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".airflowignore").unlink()
    result = load_plugins(folder)
    assert {"dvc", "great_expectations"} <= set(result["shadowing"])
    assert not str(result["real"]["dvc"]).startswith(str(Path(sys.executable).parents[1]))
