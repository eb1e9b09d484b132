"""Extra links of the provider's operators.

Each operator pushes the URL of what it produced under the link's ``xcom_key`` while it runs; the link reads it
back, so the button points at that try's own report. Files under ``MLOPS_HOME/reports`` are served by the plugin
at ``/mlops/reports/<relative path>`` (see ``mlops_provider.plugin``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from mlops_provider.paths import reports_dir

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

REPORTS_URL_PREFIX = "/mlops/reports"


def report_url(path: Path) -> str:
    """URL under which the plugin serves a file of ``MLOPS_HOME/reports``."""
    relative = Path(path).resolve().relative_to(reports_dir().resolve())
    return f"{REPORTS_URL_PREFIX}/{quote(relative.as_posix())}"


class XComUrlLink(BaseOperatorLink):
    """A link whose URL the operator stored in XCom during its run (empty until the task ran)."""

    name: ClassVar[str] = "Link"  # type: ignore[misc]

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value: Any = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""

    @classmethod
    def persist(cls, context: Context, url: str) -> None:
        """Store the URL for this task try; call from ``execute()``."""
        context["ti"].xcom_push(key=cls().xcom_key, value=url)


class DataDocsLink(XComUrlLink):
    """Great Expectations Data Docs page of the validation."""

    name = "GX Data Docs"


class ValidationResultLink(XComUrlLink):
    """Full Great Expectations validation result (JSON)."""

    name = "Validation result"


class MlflowRunLink(XComUrlLink):
    """The MLflow run of the task in the MLflow UI."""

    name = "MLflow run"


class MlflowModelVersionLink(XComUrlLink):
    """The registered model version in the MLflow UI."""

    name = "MLflow model version"


def mlflow_ui_base(tracking_uri: str) -> str:
    """The MLflow UI for a tracking URI: the server itself, or ``MLFLOW_UI_URL`` (default
    ``http://127.0.0.1:5000``, where ``mlflow ui --backend-store-uri <store>`` serves a local store)."""
    import os

    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return os.environ.get("MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


class VerdictLedgerLink(XComUrlLink):
    """The promotion gate's verdict ledger (JSON)."""

    name = "Verdict ledger"


class DriftReportLink(XComUrlLink):
    """The Evidently drift report (HTML)."""

    name = "Drift report"
