"""The package as a consumer installs it: the wheel and sdist built from this checkout, installed with plain
Airflow into fresh virtual environments on the oldest and the newest supported Python, once with every extra and
once with the core and one extra. Nothing of the repository is on the path there: ``probe.py`` runs with the
environment's own Python from an empty folder.

Needs ``uv`` and the pyenv interpreters of the matrix (``MLOPS_REQUIRE_PYTHONS=1``, set by ``.ci/run``, turns a
missing interpreter into a failure instead of a skip).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = [pytest.mark.consumer, pytest.mark.timeout(1800)]  # environments built side by side, loaded CI

PROBE = Path(__file__).with_name("probe.py")
# (python, which apache-airflow, extras): the oldest Python with the lowest Airflow the package declares and one
# extra; the newest Python with the newest Airflow and every extra. An Airflow with a constraints file of its own
# (constraints/airflow-<version>/) installs with it.
MATRIX = [("3.10.13", "lowest", "mlflow"), ("3.13.0", "newest", "all")]
NOT_IN_MLFLOW_ONLY = {
    "dvc", "great-expectations", "evidently", "celery", "apache-airflow-providers-celery",
    "apache-airflow-providers-amazon",
}  # fmt: skip


def interpreter(version: str) -> str:
    found = None
    if shutil.which("pyenv"):
        proc = subprocess.run(
            ["pyenv", "which", "python"], env={**os.environ, "PYENV_VERSION": version}, capture_output=True, text=True
        )
        found = proc.stdout.strip() if proc.returncode == 0 else None
    if not found:
        if os.environ.get("MLOPS_REQUIRE_PYTHONS") == "1":
            pytest.fail(f"Python {version} is not installed (pyenv install {version})")
        pytest.skip(f"Python {version} is not installed here (pyenv)")
    return found


def clean_env(home: Path) -> dict[str, str]:
    """A consumer's environment: no PYTHONPATH, no project settings, its own Airflow and MLOps homes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(AIRFLOW_HOME=str(home / "airflow"), MLOPS_HOME=str(home / "mlops"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    return env


def test_wheel_and_sdist_hold_the_package_and_not_the_demo(dist: dict[str, Path]) -> None:
    names = zipfile.ZipFile(dist["wheel"]).namelist()
    assert "mlops_provider/get_provider_info.py" in names
    assert "mlops_provider/example_dags/example_promotion.py" in names
    assert "mlops_provider/cli/starter/training/train.py" in names
    assert not [n for n in names if n.startswith("mlops_provider/demo/")]
    metadata = zipfile.ZipFile(dist["wheel"]).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Python: <3.14,>=3.10" in metadata
    for extra in ("dvc", "gx", "mlflow", "evidently", "docker", "openlineage", "s3", "all"):
        assert f"Provides-Extra: {extra}" in metadata
    members = tarfile.open(dist["sdist"]).getnames()
    assert any(m.endswith("src/mlops_provider/utils/extras.py") for m in members)
    assert not [m for m in members if "/mlops_provider/demo/" in m]


def airflow_requirement(wheel: Path, which: str) -> str:
    names = zipfile.ZipFile(wheel).namelist()
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    spec = re.search(r"^Requires-Dist: apache-airflow([<>=!~][^;\n]*)$", metadata, re.M)  # the core's, no marker
    assert spec, "the wheel declares no plain apache-airflow requirement"
    specifiers = spec.group(1)
    lowest = re.search(r">=([0-9.]+)", specifiers).group(1)  # type: ignore[union-attr]
    if which == "newest":
        return f"apache-airflow{specifiers}"
    return f"apache-airflow=={lowest if which == 'lowest' else which}"


def airflow_constraints(requirement: str, python: str) -> list[str]:
    """``-c FILE`` of the constraints of an older Airflow (constraints/airflow-<version>/), if the repository has
    them; none for the newest (resolved freely: the matrix sees what a new release of a dependency breaks)."""
    version = requirement.partition("==")[2]
    path = PROJECT_ROOT / "constraints" / f"airflow-{version}" / f"constraints-{'.'.join(python.split('.')[:2])}.txt"
    return ["-c", str(path)] if version and path.exists() else []


def consume(dist: dict[str, Path], root: Path, python: str, airflow: str, extra: str, version: str = "") -> dict:
    """Install the wheel into a fresh environment and look at it as a consumer: what Airflow's CLI lists, and what
    the probe sees from inside. Returns ``{"providers", "hooks", "plugins", "seen", "venv"}``."""
    venv = root / "venv"
    uv = str(dist["uv"])
    subprocess.run([uv, "venv", "-q", "-p", python, str(venv)], check=True)
    bin_dir = venv / "bin"
    requirement = airflow_requirement(dist["wheel"], airflow)
    install = subprocess.run(
        [uv, "pip", "install", "--python", str(bin_dir / "python"), requirement, f"{dist['wheel']}[{extra}]",
         *airflow_constraints(requirement, version)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    home = root / "home"
    home.mkdir()
    env = clean_env(home)

    def airflow_cli(*args: str) -> str:
        proc = subprocess.run([str(bin_dir / "airflow"), *args], env=env, cwd=home, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    def json_of(output: str) -> list[dict]:
        return json.loads(output[output.index("[") :])

    airflow_cli("db", "migrate")
    probe = subprocess.run(
        [str(bin_dir / "python"), str(PROBE), str(home / "probe.json")], env=env, cwd=home, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stdout[-2000:] + probe.stderr[-3000:]
    return {
        "venv": venv,
        "providers": {p["package_name"]: p for p in json_of(airflow_cli("providers", "list", "--output", "json"))},
        "hooks": {
            h["connection_type"]: h["class"] for h in json_of(airflow_cli("providers", "hooks", "--output", "json"))
        },
        "plugins": {p["name"] for p in json_of(airflow_cli("plugins", "--output", "json"))},
        "seen": json.loads((home / "probe.json").read_text()),
    }


@pytest.fixture(scope="module")
def consumed(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], Any]:
    """Every environment of the matrix, built side by side (threads: the work is in subprocesses); a failure is
    kept and raised by the test of its environment."""
    from concurrent.futures import ThreadPoolExecutor

    pythons = {python: interpreter(python) for python, _, _ in MATRIX}
    with ThreadPoolExecutor(max_workers=len(MATRIX)) as pool:
        futures = {
            case: pool.submit(
                consume, dist, tmp_path_factory.mktemp(f"py{case[0]}"), pythons[case[0]], *case[1:], case[0]
            )
            for case in MATRIX
        }
    results: dict[tuple[str, str, str], Any] = {}
    for case, future in futures.items():
        try:
            results[case] = future.result()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the case's own test
            results[case] = exc
    return results


@pytest.mark.parametrize(("python", "airflow", "extra"), MATRIX, ids=[f"py{p}-{a}-{e}" for p, a, e in MATRIX])
def test_fresh_environment(consumed: dict, python: str, airflow: str, extra: str) -> None:
    result = consumed[(python, airflow, extra)]
    if isinstance(result, BaseException):
        raise result
    venv, seen = result["venv"], result["seen"]
    assert "airflow-provider-mlops" in result["providers"]
    assert result["hooks"]["dvc"] == "mlops_provider.hooks.dvc.DvcHook"
    assert result["hooks"]["mlflow"] == "mlops_provider.hooks.mlflow.MlflowHook"
    assert "mlops" in result["plugins"]

    assert seen["python"] == python
    if airflow not in ("lowest", "newest"):
        assert seen["airflow"] == airflow
    assert seen["package_file"].startswith(str(venv)), "the probe imported the repository, not the wheel"
    assert seen["import_failures"] == [] and seen["extra_import_failures"] == []
    assert seen["example_dags"]["import_errors"] == {}
    assert "<h1>Model health: m</h1>" in seen["health_page"]  # the templates are in the wheel
    assert {"example_mlops_ingest", "example_mlops_promotion", "example_mlops_monitoring"} <= set(
        seen["example_dags"]["dag_ids"]
    )
    assert seen["promotion"] == {"state": "success", "champion": "1"}  # the mlflow extra's operator ran
    if extra == "all":
        assert seen["extras_installed"] == [
            "docker",
            "dvc",
            "evidently",
            "gx",
            "mlflow",
            "openlineage",
            "s3",
            "serve",
            "tune",
        ]
        assert seen["dvc_missing_message"] is None
    else:
        assert seen["extras_installed"] == [extra]
        assert not NOT_IN_MLFLOW_ONLY & set(seen["distributions"]), "the core plus one extra pulled in another"
        assert "pip install 'airflow-provider-mlops[dvc]'" in seen["dvc_missing_message"]
    dists = len(seen["distributions"])
    print(f"consumer: Python {seen['python']}, Airflow {seen['airflow']}, [{extra}]: {dists} distributions")
