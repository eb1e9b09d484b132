"""The provider's optional integrations (pip extras) and the check that names the missing one.

The core package (``pip install airflow-provider-mlops``) imports and parses DAGs with no ML library. Each
integration is an extra; its hook or operator calls :func:`require` when it runs, so a DAG using an integration
whose extra is not installed still parses (no import error in the UI) and its task fails with the command that
fixes it, without retries (a retry cannot install a package).
"""

from __future__ import annotations

import importlib.util
import sys

from mlops_provider.exceptions import MlopsError
from mlops_provider.utils.compat import AirflowFailException

PACKAGE = "airflow-provider-mlops"

#: extra name -> the importable modules it provides (checked without importing them).
EXTRAS: dict[str, tuple[str, ...]] = {
    "dvc": ("dvc",),
    "gx": ("great_expectations",),
    "mlflow": ("mlflow", "sklearn", "scipy"),
    "evidently": ("evidently",),
    "docker": ("docker", "airflow.providers.docker"),
    "openlineage": ("airflow.providers.openlineage",),
    "s3": ("airflow.providers.amazon", "s3fs"),
    "tune": ("optuna",),
    "serve": ("prometheus_client", "uvicorn", "starlette"),
}


class MissingExtraError(MlopsError, AirflowFailException):
    """An operator or hook needs an extra of the provider that is not installed where the task runs (an Airflow
    fail exception too: installing is not something a retry does)."""


def install_command(extra: str) -> str:
    """The pip command that installs ``extra`` (quoted for a POSIX shell)."""
    return f"pip install '{PACKAGE}[{extra}]'"


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing or broken
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (empty: the extra is installed)."""
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; the provider's extras are: {', '.join(sorted(EXTRAS))}")
    return [module for module in EXTRAS[extra] if not _importable(module)]


def require(extra: str, *, user: str) -> None:
    """Fail with the pip command to run when ``extra`` is not installed; ``user`` names who needs it."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(
            f"{user} needs the {extra!r} extra of {PACKAGE}, which is not installed in this Python environment "
            f"(cannot import: {', '.join(missing)}). Install it on every worker that runs this task: "
            f"{install_command(extra)}"
        )
