"""The provider's web app, mounted by the plugin at ``/mlops`` in the Airflow api-server.

Routes require a signed-in Airflow user (the UI's session cookie or a bearer token), like the REST API.

Every answer carries a Content Security Policy. The app's own pages need no script and load nothing from
elsewhere. Report files are made by other tools from source data (Great Expectations Data Docs, Evidently) and
can carry markup that came with a source row (neither tool escapes every value), so they are served sandboxed:
the browser gives them an opaque origin (no Airflow cookie, no session, no same-origin requests), and nothing is
loaded from another host. Only the Evidently drift report may run script, which it needs to draw itself; its
script stays in the sandbox and may not connect anywhere.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from airflow.api_fastapi.core_api.security import requires_authenticated
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from mlops_provider.utils.records import is_drift_report, reports_root
from mlops_provider.utils.storage import is_local

_NO_EXTERNAL = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; base-uri 'none'; form-action 'none'"
)
#: The app's own pages (records, model health): no script at all.
PAGE_POLICY = f"{_NO_EXTERNAL}; frame-ancestors 'self'"
#: Report files: sandboxed (opaque origin), no script, nothing external.
REPORT_POLICY = f"sandbox; {_NO_EXTERNAL}"
#: The Evidently drift report draws itself with inline script: sandboxed, script allowed, no connections.
SCRIPTED_REPORT_POLICY = (
    f"sandbox allow-scripts; {_NO_EXTERNAL}; script-src 'unsafe-inline' 'unsafe-eval'; connect-src 'none'; "
    "img-src data: blob:"
)


#: The longest path or query parameter any route takes (a report's path under the reports root included).
MAX_PARAMETER_LENGTH = 1024


def checked_parameters(request: Request) -> None:
    """Answer 404 (naming the parameter and its value) to a parameter no record can have: a control character (a NUL
    byte would reach git, the file system and the database as an error, not as "not found") or an overlong value."""
    for name, value in [*request.path_params.items(), *request.query_params.items()]:
        value = str(value)
        problem = None
        if len(value) > MAX_PARAMETER_LENGTH:
            problem = f"is longer than {MAX_PARAMETER_LENGTH} characters"
        elif any(ord(c) < 32 or ord(c) == 127 for c in value):
            problem = "holds a control character"
        if problem:
            shown = repr(value[:80]) + ("..." if len(value) > 80 else "")
            raise HTTPException(status_code=404, detail=f"no record has the {name} {shown}: it {problem}")


def report_policy(relative: str) -> str:
    """The Content Security Policy of a report file, by where it lives under the reports root."""
    return SCRIPTED_REPORT_POLICY if is_drift_report(relative) else REPORT_POLICY


def _resolve_report(relative: str) -> Path | bytes:
    """The report at ``relative`` under the reports root: its local path, or its bytes read from object storage."""
    stored_root = reports_root()
    try:
        if is_local(stored_root):
            root = Path(stored_root.path).resolve()
            target = (root / relative).resolve()
            if target.is_relative_to(root) and target.is_file():
                return target
        else:
            parts = PurePosixPath(relative).parts
            if parts and not {"..", "."} & set(parts) and "\x00" not in relative:
                remote = stored_root.joinpath(*parts)
                if remote.is_file():
                    return remote.read_bytes()
    except (ValueError, OSError):  # a NUL byte or a name the file system refuses: no such report
        pass
    raise HTTPException(status_code=404, detail=f"no report {relative!r}")


def create_app() -> FastAPI:
    """Build the app (one per api-server process)."""
    app = FastAPI(
        title="airflow-provider-mlops",
        dependencies=[Depends(requires_authenticated()), Depends(checked_parameters)],
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @app.get("/reports/{relative:path}")
    def report(relative: str) -> Response:
        """A file under the reports root (``$MLOPS_HOME/reports``, or ``reports/`` under ``MLOPS_STORAGE_URL``):
        validation results, Data Docs, drift reports (sandboxed)."""
        found, headers = _resolve_report(relative), {"Content-Security-Policy": report_policy(relative)}
        if isinstance(found, Path):
            return FileResponse(found, headers=headers)
        media_type = mimetypes.guess_type(relative)[0] or "application/octet-stream"
        return Response(found, media_type=media_type, headers=headers)

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

    @app.get("/ledgers/{name}/{version}/{attempt}", response_class=HTMLResponse)
    def ledger(name: str, version: str, attempt: str) -> str:
        """A verdict ledger: the gate's checks, both models per metric and per segment, the shadow check and the
        human answers (the *Verdict ledger* link; the JSON stays under /reports/ledgers/)."""
        from mlops_provider.web import records

        return records.render_ledger(_found(records.ledger, name, version, attempt))

    @app.get("/captures/{name}/{day}", response_class=HTMLResponse)
    def capture_day(name: str, day: str) -> str:
        """A model's captured traffic of a day: the capture files, rows per answering version (linked from the
        health page)."""
        from mlops_provider.web import records

        return records.render_capture_day(_found(records.capture_day, name, day))

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
