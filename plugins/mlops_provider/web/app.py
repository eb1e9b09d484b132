"""The provider's web app, mounted by the plugin at ``/mlops`` in the Airflow api-server.

Routes require a signed-in Airflow user (the UI's session cookie or a bearer token), like the REST API.
"""

from __future__ import annotations

from pathlib import Path

from airflow.api_fastapi.core_api.security import requires_authenticated
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse

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

    return app
