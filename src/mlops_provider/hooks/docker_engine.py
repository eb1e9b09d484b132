"""Docker engine access through the Docker provider's ``DockerHook``: one place for the engine URL, TLS and the
registry login of a ``docker_conn_id`` (connection type ``docker``), for image builds, engine checks and the
serving containers. The training container runs through the provider's ``DockerOperator``, which takes the same
two parameters.

Why not only ``DockerHook``: its ``api_client`` is Docker's low-level ``APIClient``; the high-level
``docker.DockerClient`` (images, containers as objects, build logs) wraps exactly such a client, so the hook's
client (already logged in to the registry of the connection) is wrapped instead of a second one being opened.
"""

from __future__ import annotations

from typing import Any

from mlops_provider.exceptions import DockerEngineError
from mlops_provider.layout import DEFAULT_DOCKER_URL
from mlops_provider.utils.extras import require

__all__ = ["DEFAULT_DOCKER_URL", "DockerEngineError", "docker_client"]


def docker_client(*, docker_url: str, docker_conn_id: str | None, timeout: int, user: str) -> Any:
    """A ``docker.DockerClient`` on the engine at ``docker_url``, logged in to the registry of ``docker_conn_id``
    (``None``: no login). ``user`` names the caller in the error raised when the engine does not answer."""
    require("docker", user=user)
    import docker
    from airflow.providers.docker.hooks.docker import DockerHook

    hook = DockerHook(docker_conn_id=docker_conn_id, base_url=docker_url, timeout=timeout)
    try:
        api = hook.api_client  # pings the engine, logs in to the connection's registry
    except Exception as exc:
        via = f" (connection {docker_conn_id!r})" if docker_conn_id else ""
        raise DockerEngineError(
            f"{user} needs a Docker engine, but none answers at {docker_url}{via}: {exc}. Start the engine, or "
            "point docker_url / the connection at one."
        ) from exc
    client = docker.DockerClient.__new__(docker.DockerClient)  # DockerClient.__init__ only builds an APIClient
    client.api = api
    return client
