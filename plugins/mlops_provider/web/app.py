"""The provider's web app, mounted by the plugin at ``/mlops`` in the Airflow api-server.

Routes require a signed-in Airflow user (the UI's session cookie or a bearer token), like the REST API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import requires_authenticated
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from mlops_provider.paths import reports_dir


def _resolve_report(relative: str) -> Path:
    root = reports_dir().resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(status_code=404, detail=f"no report {relative!r}")
    return target


def create_app() -> FastAPI:
    """Build the app (one per api-server process)."""
    app = FastAPI(title="airflow-provider-mlops", dependencies=[Depends(requires_authenticated())])

    @app.get("/reports/{relative:path}")
    def report(relative: str) -> FileResponse:
        """A file under ``$MLOPS_HOME/reports``: validation results, Data Docs, drift reports."""
        return FileResponse(_resolve_report(relative))

    @app.get("/mlflow/runs/{run_id}", response_class=HTMLResponse)
    def mlflow_run(run_id: str) -> str:
        """An MLflow run: parameters, metrics, tags, artifacts, registered versions (the *MLflow run* link)."""
        from mlops_provider.web import records

        return records.render_run(_found(records.mlflow_run, run_id))

    @app.get("/mlflow/models/{name}/versions/{version}", response_class=HTMLResponse)
    def model_version(name: str, version: str) -> str:
        """A registered model version: aliases, tags, source run (the *MLflow model version* link)."""
        from mlops_provider.web import records

        return records.render_model_version(_found(records.model_version, name, version))

    @app.get("/dvc/versions/{rev}", response_class=HTMLResponse)
    def dvc_version(rev: str) -> str:
        """A data registry commit: tags, versioned files with md5, the Airflow run that made it (*DVC version*)."""
        from mlops_provider.web import records

        return records.render_dvc_version(_found(records.dvc_version, rev))

    @app.get("/health.json")
    def health_json(model: str | None = None) -> dict[str, Any]:
        """The model health data: champion, lineage, history, drift and performance series."""
        from mlops_provider.web.health import collect

        return collect(_model_name(model))

    @app.get("/health", response_class=HTMLResponse)
    def health(model: str | None = None) -> str:
        """The model health page (also in the Airflow UI's navigation as *Model health*)."""
        from mlops_provider.web.health import collect, render

        return render(collect(_model_name(model)))

    return app


def _found(read: Callable[..., dict[str, Any]], *args: str) -> dict[str, Any]:
    """``read(*args)``, or 404 with the reader's message when the record does not exist."""
    from mlops_provider.web.records import RecordNotFound

    try:
        return read(*args)
    except RecordNotFound as error:
        raise HTTPException(status_code=404, detail=str(error)) from error


def _model_name(model: str | None) -> str:
    """The requested model, or the only registered one; 404 names the choices otherwise."""
    from mlops_provider.web.health import registered_models

    names = registered_models()
    if model:
        if model not in names:
            raise HTTPException(status_code=404, detail=f"no registered model {model!r}; registered: {names}")
        return model
    if len(names) != 1:
        raise HTTPException(status_code=404, detail=f"name a model with ?model=...; registered: {names}")
    return names[0]
