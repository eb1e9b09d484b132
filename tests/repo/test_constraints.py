"""The consumer's constraints files (constraints/constraints-<python>.txt) are the lock's pins, one file per
supported Python (regenerate with `make constraints`), and they ship in the sdist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

FOLDER = PROJECT_ROOT / "constraints"


def test_constraints_match_uv_lock():
    assert shutil.which("uv"), "uv is needed to export the lock (the Makefile installs it)"
    proc = subprocess.run(
        [sys.executable, str(FOLDER / "generate.py"), "--check"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"constraints/ is stale, run `make constraints`: {proc.stderr}"


def test_one_file_per_supported_python_pinning_airflow_and_the_loop():
    classifiers = (PROJECT_ROOT / "pyproject.toml").read_text()
    pythons = sorted(re.findall(r"Programming Language :: Python :: (3\.\d+)\"", classifiers))
    assert pythons == ["3.10", "3.11", "3.12", "3.13"]
    for python in pythons:
        text = (FOLDER / f"constraints-{python}.txt").read_text()
        pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==([^ ;\n]+)$", text, re.M))
        for name in ("apache-airflow", "apache-airflow-task-sdk", "mlflow", "dvc", "great-expectations", "evidently",
                     "apache-airflow-providers-amazon", "apache-airflow-providers-sqlite", "pydantic"):  # fmt: skip
            assert name in pins, f"constraints-{python}.txt pins no {name}"
        assert "airflow-provider-mlops" not in pins  # the package itself is what the consumer installs


def test_older_airflow_constraints_pin_that_airflow():
    for path in FOLDER.glob("airflow-*/constraints-*.txt"):
        airflow = path.parent.name.removeprefix("airflow-")
        assert f"\napache-airflow=={airflow}\n" in path.read_text(), path


def test_the_pools_of_mlops_init_are_the_repositorys():
    from mlops_provider.cli.init import POOLS

    pools = json.loads((PROJECT_ROOT / "config" / "pools.json").read_text())
    assert {
        name: (pool["slots"], pool["description"], pool["include_deferred"]) for name, pool in pools.items()
    } == POOLS
    factory = (PROJECT_ROOT / "src" / "mlops_provider" / "loop" / "factory.py").read_text()
    assert set(re.findall(r'pool="([a-z_]+)"', factory)) <= set(POOLS)
