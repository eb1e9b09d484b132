"""Parse-cost guard: importing a DAG file must not import heavy ML libraries (checked in sys.modules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration  # a parse in a fresh interpreter per DAG file: out of the fast lane

HEAVY = ("mlflow", "great_expectations", "evidently", "xgboost", "dvc", "pandas", "sklearn", "docker")
DAG_FILES = sorted(p for p in (PROJECT_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def heavy_modules_imported_by(path: Path) -> list[str]:
    """Top-level heavy packages present in sys.modules after importing ``path`` in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
        env=dict(os.environ),
        timeout=120,
    )
    assert proc.returncode == 0, f"importing {path.name} failed:\n{proc.stderr[-2000:]}"
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    return sorted(loaded & set(HEAVY))


@pytest.fixture(scope="module")
def probed(tmp_path_factory) -> dict[str, list[str]]:
    """Every DAG file and a naive one (a heavy top-level import), each probed in its own fresh interpreter, the
    interpreters run side by side (each pays Airflow's import once; one after another they took most of the unit
    layer's time)."""
    from concurrent.futures import ThreadPoolExecutor

    naive = tmp_path_factory.mktemp("naive") / "naive_dag.py"
    naive.write_text("import pandas\nfrom airflow.sdk import DAG\n")
    files = [*DAG_FILES, naive]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip([f.name for f in files], pool.map(heavy_modules_imported_by, files), strict=True))


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_heavy_library(dag_file, probed):
    assert probed[dag_file.name] == []


def test_guard_detects_a_heavy_import(probed):
    """The guard itself fails on a DAG file that imports a heavy library at top level."""
    assert probed["naive_dag.py"] == ["pandas"]
