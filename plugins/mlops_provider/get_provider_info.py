"""Provider metadata read by Airflow's ``ProvidersManager`` through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from mlops_provider import __version__
from mlops_provider.connections import provider_connection_types


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow shows in ``airflow providers list`` and uses for connections."""
    return {
        "package-name": "airflow-provider-mlops",
        "name": "MLOps",
        "description": "Operators, hooks, sensors and triggers for an MLOps loop on Airflow 3: "
        "DVC, Great Expectations, MLflow, XGBoost, Evidently and Docker.",
        "versions": [__version__],
        "connection-types": provider_connection_types(),
        "hooks": [
            {"integration-name": "DVC", "python-modules": ["mlops_provider.hooks.dvc"]},
            {"integration-name": "Great Expectations", "python-modules": ["mlops_provider.hooks.great_expectations"]},
            {"integration-name": "MLflow", "python-modules": ["mlops_provider.hooks.mlflow"]},
        ],
        "operators": [
            {"integration-name": "SQL", "python-modules": ["mlops_provider.operators.sql"]},
            {
                "integration-name": "DVC",
                "python-modules": ["mlops_provider.operators.dvc", "mlops_provider.operators.training_set"],
            },
            {
                "integration-name": "Great Expectations",
                "python-modules": ["mlops_provider.operators.great_expectations"],
            },
            {
                "integration-name": "MLflow",
                "python-modules": ["mlops_provider.operators.training", "mlops_provider.operators.promotion"],
            },
        ],
        "integrations": [
            {"integration-name": name, "external-doc-url": url, "tags": ["software"]}
            for name, url in (
                ("SQL", "https://airflow.apache.org/docs/apache-airflow-providers-common-sql/"),
                ("DVC", "https://dvc.org/doc"),
                ("Great Expectations", "https://docs.greatexpectations.io/"),
                ("MLflow", "https://mlflow.org/docs/latest/"),
            )
        ],
    }
