"""Provider metadata read by Airflow's ``ProvidersManager`` through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from mlops_provider import __version__


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow shows in ``airflow providers list`` and uses for connections."""
    return {
        "package-name": "airflow-provider-mlops",
        "name": "MLOps",
        "description": "Operators, hooks, sensors and triggers for an MLOps loop on Airflow 3: "
        "DVC, Great Expectations, MLflow, XGBoost, Evidently and Docker.",
        "versions": [__version__],
        "connection-types": [],
        "plugins": [],
    }
