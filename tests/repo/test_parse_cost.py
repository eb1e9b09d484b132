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
#: The provider's own modules that only a running task needs (issue 31): the operators import them inside
#: execute(), so the dag processor, which parses every DAG file again and again, neither compiles nor runs them.
TASK_ONLY = (
    "mlops_provider.hooks.docker_engine",
    "mlops_provider.hooks.dvc",
    "mlops_provider.hooks.great_expectations",
    "mlops_provider.hooks.mlflow",
    "mlops_provider.lineage.datasets",  # an operator's lineage(), after its task succeeded
    "mlops_provider.ml.drift_signals",
    "mlops_provider.ml.estimation",
    "mlops_provider.ml.label_check",
    "mlops_provider.ml.learned_drift",
    "mlops_provider.ml.rails",
    "mlops_provider.notifications.mail",
    "mlops_provider.runtime.jobs",
    "mlops_provider.runtime.model_servers",
    "mlops_provider.runtime.processes",
    "mlops_provider.runtime.runners",
    "mlops_provider.triggers.drift",
    "mlops_provider.triggers.dvc",
    "mlops_provider.utils.evidence",
    "mlops_provider.utils.extras",
    "mlops_provider.utils.retention",
    "mlops_provider.utils.storage",
)
#: Modules, of the provider or not, that only a spec asking for them may load at parse time (issue 31): the human
#: approval operators (Airflow's HITL operators and their triggers) and the cron trigger timetable of scheduled
#: retraining. The repository's specs ask for neither.
ON_DEMAND = (
    "mlops_provider.operators.approval",
    "airflow.providers.standard.operators.hitl",
    "airflow.timetables.trigger",
    "statistics",
)
#: Modules a parse of cached specs does not load (the repository's specs do not tune): the tuning plan's module
#: (validation of ``training.tuning``, the training operator's check of a plan), and the spec's schema (the ~21
#: pydantic models: a cached spec is a read-only view, issue 31).
CACHED_PARSE_SKIPS = ("mlops_provider.ml.tuning", "mlops_provider.loop.spec_schema")
DAG_FILES = sorted(p for p in (PROJECT_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def modules_imported_by(path: Path) -> set[str]:
    """Every module in sys.modules after importing ``path`` in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
        env=dict(os.environ),
        timeout=120,
    )
    assert proc.returncode == 0, f"importing {path.name} failed:\n{proc.stderr[-2000:]}"
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    """The heavy top-level packages among ``modules``."""
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


@pytest.fixture(scope="module")
def probed(tmp_path_factory) -> dict[str, set[str]]:
    """Every DAG file and a naive one (a heavy top-level import), each probed in its own fresh interpreter, the
    interpreters run side by side (each pays Airflow's import once; one after another they took most of the unit
    layer's time)."""
    from concurrent.futures import ThreadPoolExecutor

    naive = tmp_path_factory.mktemp("naive") / "naive_dag.py"
    naive.write_text("import pandas\nfrom airflow.sdk import DAG\n")
    files = [*DAG_FILES, naive]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip([f.name for f in files], pool.map(modules_imported_by, files), strict=True))


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_heavy_library(dag_file, probed):
    assert heavy(probed[dag_file.name]) == []


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_task_only_module(dag_file, probed):
    """The provider's task-only modules stay out of a parse (they cost compile and run time on every parse)."""
    assert sorted(set(TASK_ONLY) & probed[dag_file.name]) == []


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_on_demand_module(dag_file, probed):
    """What only a spec that asks for it needs (human approval, a retraining schedule) stays out of a parse of the
    repository's specs, which ask for neither."""
    assert sorted(set(ON_DEMAND) & probed[dag_file.name]) == []


def test_guard_detects_a_heavy_import(probed):
    """The guard itself fails on a DAG file that imports a heavy library at top level."""
    assert heavy(probed["naive_dag.py"]) == ["pandas"]


def test_task_only_modules_exist():
    """Every name in TASK_ONLY is a module of the provider (a renamed module would make the guard pass vacuously)."""
    import importlib.util

    names = (*TASK_ONLY, *ON_DEMAND, *CACHED_PARSE_SKIPS)
    assert [name for name in names if importlib.util.find_spec(name) is None] == []


CACHED_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
modules = sorted(sys.modules)  # before the schema module is imported below
from mlops_provider.loop import spec_schema
built = sorted(name for name, cls in vars(spec_schema).items()
               if isinstance(cls, type) and issubclass(cls, spec_schema.BaseModel) and cls.__pydantic_complete__)
print(json.dumps({"dags": sorted(d for d in vars(module) if "__" in d), "validators_built": built,
                  "modules": modules}))
"""


def test_a_parse_of_cached_specs_builds_no_spec_validator(tmp_path):
    """Issue 31: the first parse validates the specs and caches them under MLOPS_HOME; a later parse of unchanged
    specs rebuilds them from the cache and defines none of the spec models (no schema module, no validator built),
    with the same DAGs, and loads no module only validation or a spec that tunes needs."""
    dag_file = PROJECT_ROOT / "dags" / "mlops_models.py"
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "mlops")}
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", CACHED_PROBE, str(dag_file)],
            capture_output=True,
            text=True,
            cwd=dag_file.parent,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first, cached = runs
    assert "ModelSpec" in first["validators_built"]
    assert cached["validators_built"] == []
    assert sorted(set(CACHED_PARSE_SKIPS) & set(cached["modules"])) == []
    assert cached["dags"] == first["dags"] and len(first["dags"]) >= 10
    assert list((tmp_path / "mlops" / "cache" / "specs").glob("*.json"))
