"""Airflow's real plugin loading: the plugins folder must not shadow real libraries, and our plugin loads once.

Airflow imports every ``.py`` under the plugins folder as a top-level module named after its file stem, so a
package kept there (``plugins/mlops_provider/hooks/dvc.py``) would become ``sys.modules["dvc"]``. The package lives
in ``src/`` and registers its plugin through the ``airflow.plugins`` entry point; the plugins folder holds only
Airflow's settings hook. The check runs in a fresh interpreter, as a scheduler or api-server would.
"""

from __future__ import annotations

import json
import os
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
    if (getattr(module, "__file__", None) or "").startswith(sys.argv[1] + "/")
    and not name.startswith("mlops_provider") and name != "airflow_local_settings"
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


def test_the_entry_point_registers_the_plugin_with_an_empty_plugins_folder(tmp_path):
    """An installed deployment needs nothing in its plugins folder: the distribution's entry point registers it."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    result = load_plugins(folder)
    assert result["plugins"].count("mlops") == 1
    assert result["errors"] == {}


def test_the_plugins_folder_holds_no_package():
    """Nothing under plugins/ is the provider's code (the trap of a package inside Airflow's plugin walk)."""
    python_files = sorted(p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "plugins").rglob("*.py"))
    assert python_files == ["plugins/airflow_local_settings.py"]
