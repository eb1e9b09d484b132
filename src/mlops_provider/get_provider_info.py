"""Provider metadata read by Airflow's ``ProvidersManager`` through the ``apache_airflow_provider`` entry point.

Every operator, sensor, trigger and hook module, every extra link and the plugin are listed (a unit test walks the
package and fails on a module or class missing here). ``extra`` names the pip extra an integration needs.
"""

from __future__ import annotations

from typing import Any

from mlops_provider import __version__
from mlops_provider.hooks.connections import provider_connection_types

DOCS = "/docs"  # the repository's docs folder (built by mkdocs, mkdocs.yml)

#: integration -> (external docs, pip extra, how-to page under docs/howto, modules per kind)
INTEGRATIONS: dict[str, dict[str, Any]] = {
    "SQL": {
        "external-doc-url": "https://airflow.apache.org/docs/apache-airflow-providers-common-sql/",
        "extra": None,
        "how-to": "ingest.md",
        "operators": ["sql"],
    },
    "DVC": {
        "external-doc-url": "https://dvc.org/doc",
        "extra": "dvc",
        "how-to": "ingest.md",
        "operators": ["dvc", "training_set"],
        "sensors": ["dvc"],
        "triggers": ["dvc"],
        "hooks": ["dvc"],
    },
    "Great Expectations": {
        "external-doc-url": "https://docs.greatexpectations.io/",
        "extra": "gx",
        "how-to": "ingest.md",
        "operators": ["great_expectations"],
        "hooks": ["great_expectations"],
    },
    "MLflow": {
        "external-doc-url": "https://mlflow.org/docs/latest/",
        "extra": "mlflow",
        "how-to": "mlflow.md",
        "operators": ["training", "promotion", "retraining"],
        "sensors": ["mlflow"],
        "hooks": ["mlflow"],
    },
    "Evidently": {
        "external-doc-url": "https://docs.evidentlyai.com/",
        "extra": "evidently",
        "how-to": "monitoring.md",
        "operators": ["evidently", "performance"],
        "sensors": ["drift"],
        "triggers": ["drift"],
    },
    "Human in the loop": {
        "external-doc-url": "https://airflow.apache.org/docs/apache-airflow-providers-standard/stable/operators/hitl.html",
        "extra": None,
        "how-to": "approvals.md",
        "operators": ["approval"],
        "triggers": ["approval"],
    },
    "Object storage": {
        "external-doc-url": "https://airflow.apache.org/docs/apache-airflow/stable/core-concepts/objectstorage.html",
        "extra": None,
        "how-to": "retention.md",
        "operators": ["retention"],
    },
    "Docker": {
        "external-doc-url": "https://airflow.apache.org/docs/apache-airflow-providers-docker/",
        "extra": "docker",
        "how-to": "serving.md",
        "operators": ["serving"],
    },
    "Live serving": {
        "external-doc-url": "https://caddyserver.com/docs/json/apps/http/servers/routes/handle/reverse_proxy/",
        "extra": "serve",
        "how-to": "live-serving.md",
        "operators": ["rollout"],
        "triggers": ["canary"],
    },
    "SMTP": {
        "external-doc-url": "https://airflow.apache.org/docs/apache-airflow-providers-smtp/",
        "extra": None,
        "how-to": "notifications.md",
        "operators": ["notifications"],
    },
}

EXTRA_LINKS = [
    "mlops_provider.links.extra_links.DataDocsLink",
    "mlops_provider.links.extra_links.ValidationResultLink",
    "mlops_provider.links.extra_links.MlflowRunLink",
    "mlops_provider.links.extra_links.MlflowModelVersionLink",
    "mlops_provider.links.extra_links.DvcVersionLink",
    "mlops_provider.links.extra_links.VerdictLedgerLink",
    "mlops_provider.links.extra_links.DriftReportLink",
]


def _modules(kind: str) -> list[dict[str, Any]]:
    return [
        {"integration-name": name, "python-modules": [f"mlops_provider.{kind}.{module}" for module in entry[kind]]}
        for name, entry in INTEGRATIONS.items()
        if entry.get(kind)
    ]


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow shows in ``airflow providers list`` and uses for connections."""
    return {
        "package-name": "airflow-provider-mlops",
        "name": "MLOps",
        "description": "Operators, hooks, sensors and triggers for an MLOps loop on Airflow 3: "
        "DVC, Great Expectations, MLflow, XGBoost, Evidently and Docker.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": name,
                "external-doc-url": entry["external-doc-url"],
                "how-to-guide": [f"{DOCS}/howto/{entry['how-to']}"],
                "tags": ["software"],
            }
            for name, entry in INTEGRATIONS.items()
        ],
        "operators": _modules("operators"),
        "sensors": _modules("sensors"),
        "triggers": _modules("triggers"),
        "hooks": _modules("hooks"),
        "connection-types": provider_connection_types(),
        "extra-links": EXTRA_LINKS,
        "notifications": ["mlops_provider.notifications.mail.MlopsEventNotifier"],
        "plugins": [{"name": "mlops", "plugin-class": "mlops_provider.web.plugin.MlopsPlugin"}],
        "optional-dependencies": {
            name: entry["extra"] for name, entry in INTEGRATIONS.items() if entry["extra"] is not None
        },
    }
