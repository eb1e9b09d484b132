"""Plugins-folder entry of the MLOps plugin.

Airflow imports every ``.py`` in the plugins folder that ``.airflowignore`` does not hide; this is the only one
left visible. When the ``airflow-provider-mlops`` distribution is installed, Airflow already loads the same
plugin through its ``airflow.plugins`` entry point, so this module exposes nothing (a second registration
would be reported as an import error). Without the distribution (``plugins/`` copied into a deployment), it
exposes the plugin class.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution


def _distribution_installed() -> bool:
    try:
        distribution("airflow-provider-mlops")
    except PackageNotFoundError:
        return False
    return True


if not _distribution_installed():
    from mlops_provider.plugin import MlopsPlugin

    __all__ = ["MlopsPlugin"]
