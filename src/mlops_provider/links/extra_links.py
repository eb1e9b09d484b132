"""Extra links of the provider's operators.

Each operator pushes the URL of what it produced under the link's ``xcom_key`` while it runs; the link reads it
back, so the button points at that try's own report. Every URL is a route of the plugin's web app (mounted at
``/mlops`` in the api-server), so a link resolves in the running UI in every mode: files under the reports root
(``<storage root>/reports``, :func:`mlops_provider.utils.storage.reports_root`) at ``/mlops/reports/<relative path>``,
MLflow runs and model versions and DVC data versions at the record pages of ``mlops_provider.web.records`` (which
link on to the MLflow UI when one is known).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from mlops_provider.utils.records import REPORTS_URL_PREFIX

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context, ObjectStoragePath
    from airflow.sdk.types import TaskInstanceKey

MLFLOW_RUNS_URL_PREFIX = "/mlops/mlflow/runs"
MLFLOW_MODELS_URL_PREFIX = "/mlops/mlflow/models"
DVC_VERSIONS_URL_PREFIX = "/mlops/dvc/versions"
LEDGERS_URL_PREFIX = "/mlops/ledgers"
CAPTURES_URL_PREFIX = "/mlops/captures"


def report_url(path: str | os.PathLike[str] | ObjectStoragePath) -> str:
    """URL under which the plugin serves a file of the reports root (a local path or a stored location); a
    ValueError when the file is not under it."""
    from mlops_provider.utils.records import reports_root
    from mlops_provider.utils.storage import is_local, stored

    target, root = stored(path), reports_root()
    if is_local(target) != is_local(root):
        raise ValueError(f"{path} is not under the reports root {root}")
    if is_local(target):
        relative = Path(target.path).resolve().relative_to(Path(root.path).resolve()).as_posix()
    else:
        relative = PurePosixPath(target.path).relative_to(PurePosixPath(root.path)).as_posix()
    return f"{REPORTS_URL_PREFIX}/{quote(relative)}"


def ledger_url(model_name: str, version: str | int, attempt: str) -> str:
    """URL of the plugin's page for a verdict ledger (the JSON stays under the reports)."""
    return f"{LEDGERS_URL_PREFIX}/{quote(model_name)}/v{quote(str(version))}/{quote(attempt)}"


def mlflow_run_url(run_id: str) -> str:
    """URL of the plugin's page for an MLflow run."""
    return f"{MLFLOW_RUNS_URL_PREFIX}/{quote(run_id)}"


def model_version_url(model_name: str, version: str | int) -> str:
    """URL of the plugin's page for a registered model version."""
    return f"{MLFLOW_MODELS_URL_PREFIX}/{quote(model_name)}/versions/{quote(str(version))}"


def capture_url(model_name: str, day: str) -> str:
    """URL of the plugin's page for a model's captured traffic of a day (the capture files, rows per version)."""
    return f"{CAPTURES_URL_PREFIX}/{quote(model_name)}/{quote(day)}"


def dvc_version_url(rev: str) -> str:
    """URL of the plugin's page for a data registry commit (a sha: tags move, the link must not)."""
    return f"{DVC_VERSIONS_URL_PREFIX}/{quote(rev)}"


class XComUrlLink(BaseOperatorLink):
    """A link whose URL the operator stored in XCom during its run (empty until the task ran)."""

    name: ClassVar[str] = "Link"  # type: ignore[misc]

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        made = vars(operator).get(_PERSISTED) if hasattr(operator, "__dict__") else None
        if made is not None and made[0] == _try_of(ti_key):
            # the task runner asks after execute(), in the process that persisted: the URL (or none) of this try,
            # without an Execution API call
            return str(made[1].get(self.xcom_key) or "")
        value: Any = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""

    @classmethod
    def persist(cls, context: Context, url: str) -> None:
        """Store the URL for this task try; call from ``execute()``. The operator also remembers it for this try:
        Airflow's task runner asks every link for its URL after ``execute()`` and stores what it answers."""
        key = cls().xcom_key
        context["ti"].xcom_push(key=key, value=url)
        task = context.get("task")
        if task is not None and hasattr(task, "__dict__"):
            made: tuple[tuple[Any, ...], dict[str, str]] | None = vars(task).get(_PERSISTED)
            this_try = _try_of(context["ti"])
            if made is None or made[0] != this_try:
                made = (this_try, {})
                vars(task)[_PERSISTED] = made  # not through the operator's __setattr__: no template field
            made[1][key] = url


#: The operator attribute that holds ``(the try, {xcom key: URL})`` of the links persisted in that try.
_PERSISTED = "_mlops_persisted_links"


def _try_of(ti: Any) -> tuple[Any, ...]:
    """Which task try ``ti`` (a task instance or its key) is: dag, task, run, try, map index."""
    return tuple(getattr(ti, name, None) for name in ("dag_id", "task_id", "run_id", "try_number", "map_index"))


class DataDocsLink(XComUrlLink):
    """Great Expectations Data Docs page of the validation."""

    name = "GX Data Docs"


class ValidationResultLink(XComUrlLink):
    """Full Great Expectations validation result (JSON)."""

    name = "Validation result"


class MlflowRunLink(XComUrlLink):
    """The MLflow run of the task (the plugin's run page)."""

    name = "MLflow run"


class MlflowModelVersionLink(XComUrlLink):
    """The registered model version (the plugin's version page)."""

    name = "MLflow model version"


class DvcVersionLink(XComUrlLink):
    """The data version the task wrote or read (commit, tags, files with md5, the Airflow run that made it)."""

    name = "DVC version"


class VerdictLedgerLink(XComUrlLink):
    """The promotion gate's verdict ledger (JSON)."""

    name = "Verdict ledger"


class DriftReportLink(XComUrlLink):
    """The Evidently drift report (HTML)."""

    name = "Drift report"
