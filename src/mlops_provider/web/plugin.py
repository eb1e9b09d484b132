"""The Airflow plugin of the provider: its web app (reports, pages) and, as stages add them, links and listeners.

Airflow loads it through the ``airflow.plugins`` entry point of the installed distribution (nothing in the plugins
folder is needed).

Every Airflow process loads plugins, task processes included, so this module stays cheap: the web app (FastAPI,
Airflow's API security) is built on its first request, in the api-server only.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

PLUGIN_NAME = "mlops"
URL_PREFIX = "/mlops"


class LazyWebApp:
    """ASGI app that builds ``mlops_provider.web.app.create_app()`` on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is None:
            from mlops_provider.web.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class MlopsPlugin(AirflowPlugin):
    """Registers the provider's web app (reports under ``/mlops/reports``, the model health page at
    ``/mlops/health``) with Airflow, and the health page in the UI's navigation."""

    name = PLUGIN_NAME
    fastapi_apps = [{"app": LazyWebApp(), "url_prefix": URL_PREFIX, "name": "MLOps"}]
    external_views = [
        {"name": "Model health", "href": f"{URL_PREFIX}/health", "url_route": "model-health", "destination": "nav"}
    ]
