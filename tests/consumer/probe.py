"""Run by the Python of a fresh virtual environment holding the built wheel (never the repository's code): checks
what a consumer of the package sees and prints one JSON object. Standard library plus what the wheel installed."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path


def import_every_module() -> list[str]:
    import mlops_provider

    failed = []
    for info in pkgutil.walk_packages(mlops_provider.__path__, "mlops_provider."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
    return failed


def import_installed_extras(extras: list[str]) -> list[str]:
    """Import each installed extra's libraries for real (e.g. Evidently and GX on the newest Python)."""
    from mlops_provider.utils.extras import EXTRAS

    failed = []
    for extra in extras:
        for module in EXTRAS[extra]:
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - reported to the test
                failed.append(f"{extra}: {module}: {type(exc).__name__}: {exc}")
    return failed


def parse_example_dags() -> dict:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag

    import mlops_provider.example_dags as examples

    bag = DagBag(dag_folder=os.path.dirname(examples.__file__))
    return {"dag_ids": sorted(bag.dag_ids), "import_errors": {k: v[-500:] for k, v in bag.import_errors.items()}}


def register_model(name: str) -> str:
    """A version of ``name`` in the hook's tracking store (the embedded default under MLOPS_HOME)."""
    import mlflow
    import mlflow.pyfunc

    from mlops_provider.hooks.mlflow import MlflowHook

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            return [0.5] * len(model_input)

    hook = MlflowHook()
    mlflow.set_tracking_uri(hook.tracking_uri)
    mlflow.set_registry_uri(hook.registry_uri)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), registered_model_name=name)
    return str(info.registered_model_version)


def run_promotion_example(name: str, version: str) -> dict:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag

    import mlops_provider.example_dags as examples
    from mlops_provider.hooks.mlflow import MlflowHook

    folder = os.path.dirname(examples.__file__)
    # dag.test() runs a serialized DAG: serialize the example folder into this environment's metadata DB first.
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "reserialize"],
        env={**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": folder},
        check=True,
        capture_output=True,
    )
    dag = DagBag(dag_folder=folder).get_dag("example_mlops_promotion")
    run = dag.test(run_conf={"model_name": name, "version": version, "expected_champion": ""})
    return {"state": str(run.state), "champion": MlflowHook().alias_version(name, "champion")}


def render_a_page() -> str:
    """The health page from the installed templates (package data, not only modules)."""
    from mlops_provider.web.health import render

    data = {"model_name": "m", "champion": None, "lineage": {}, "history": [], "drift": [], "performance": []}
    return render(data)


def missing_extra_message(extra: str) -> str | None:
    from mlops_provider.utils.extras import MissingExtraError, require

    try:
        require(extra, user="probe")
    except MissingExtraError as exc:
        return str(exc)
    return None


def main() -> None:
    import mlops_provider
    from mlops_provider.utils.extras import EXTRAS, missing_modules

    out: dict = {
        "python": sys.version.split()[0],
        "package_file": mlops_provider.__file__,
        "version": mlops_provider.__version__,
        "airflow": importlib.metadata.version("apache-airflow"),
        "distributions": sorted({d.metadata["Name"].lower() for d in importlib.metadata.distributions()}),
        "extras_installed": sorted(extra for extra in EXTRAS if not missing_modules(extra)),
        "import_failures": import_every_module(),
        "extra_import_failures": [],
        "example_dags": parse_example_dags(),
        "dvc_missing_message": missing_extra_message("dvc"),
        "health_page": render_a_page(),
    }
    out["extra_import_failures"] = import_installed_extras(out["extras_installed"])
    if "mlflow" in out["extras_installed"]:
        version = register_model("consumer_model")
        out["promotion"] = run_promotion_example("consumer_model", version)
    Path(sys.argv[1]).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
