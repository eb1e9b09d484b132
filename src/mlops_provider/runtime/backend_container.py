"""A live serving backend as a container: the ``docker`` serving runner's :class:`BackendContainer`.

Same contract as :class:`~mlops_provider.runtime.backend.BackendProcess` (``/ping`` with ``X-Model-Version``,
``/invocations`` with the request check, ``/metrics``, data capture, the traffic weight read from the endpoint's
weights file), because it runs the same backend module: the version's serving image (built by
:class:`~mlops_provider.operators.serving.PackageModelOperator` from ``include/serving/Dockerfile``) holds, beside
MLflow's scoring server (its default command, what the shadow check runs), this package's source and the one
dependency the backend adds (``prometheus-client``); the container runs
``python -m mlops_provider.runtime.backend --model-dir /opt/model ...`` instead of the default command.

Why not MLflow's scoring server as the live backend: it has none of the metrics per version the canary is judged
on, no capture and no ``X-Model-Version`` header (see :mod:`mlops_provider.runtime.backend`). Why not a second
image: the model's dependencies are already in the serving image, and one image per version keeps the shadow check
and the live traffic on the same bytes.

The container runs on the host network on ``127.0.0.1:<port>`` (Caddy's upstream, Prometheus' target, as a
process backend's port), as the task's user, with ``MLOPS_HOME`` mounted at the same path: the backend reads the
endpoint's weights file there and writes its captured rows under the storage root (the local one; an
object-storage root needs Airflow, which the image does not hold: :meth:`BackendContainer.start` refuses capture
then). Its name is fixed per model, version and port (``mlops-serving-<model>-v<version>-p<port>``) and its id
goes into the deployment record, so any task reconciles it: a running container is left alone, a stopped or killed
one is removed and started again, retire removes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from mlops_provider.exceptions import BackendError
from mlops_provider.hooks.docker_engine import DEFAULT_DOCKER_URL, DockerEngineError, docker_client
from mlops_provider.ml.capture import CaptureSettings
from mlops_provider.runtime.backend import answers_as, backend_command, get, port_in_use
from mlops_provider.utils.paths import mlops_home

#: Where the serving image holds the model (include/serving/Dockerfile).
IMAGE_MODEL_DIR = "/opt/model"
#: Labels of a backend container.
ENDPOINT_LABEL = "mlops.endpoint"
VERSION_LABEL = "mlops.version"
#: Label of a serving image: the digest of the backend source it holds (an image without it, or with another, is
#: built again by PackageModelOperator).
BACKEND_LABEL = "org.mlops.serving.backend"
#: The distributions the backend needs beyond the model's pinned requirements (the serving image's).
BACKEND_REQUIREMENTS = ("prometheus-client",)


def container_name(model_name: str, version: str, port: int) -> str:
    return f"mlops-serving-{re.sub(r'[^A-Za-z0-9_.-]', '-', model_name)}-v{version}-p{port}"


def write_backend_context(folder: Path) -> str:
    """Put the backend into a serving image's build context (``folder``, its ``backend/``): this package's source
    and ``requirements.txt`` (the pins of :data:`BACKEND_REQUIREMENTS` this environment runs); returns the digest of
    both (the image's :data:`BACKEND_LABEL`)."""
    import mlops_provider

    source = Path(mlops_provider.__file__).parent
    target = folder / "backend"
    shutil.copytree(source, target / "mlops_provider", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pins = "".join(f"{name}=={metadata.version(name)}\n" for name in BACKEND_REQUIREMENTS)
    (target / "requirements.txt").write_text(pins)
    digest = hashlib.sha256(pins.encode())
    for path in sorted((target / "mlops_provider").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(target)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class BackendContainer:
    """One model version's backend as a container of its serving image on ``127.0.0.1:<port>`` (host network).

    :param model_name: registered model.
    :param version: its version.
    :param port: port on 127.0.0.1.
    :param model_dir: the version's artifacts on this machine (the health check reads its serving example; the
        container serves the image's own copy).
    :param image: the version's serving image (``<model>-serving:v<version>``).
    :param container_id: the recorded container (from the deployment record), if any.
    :param weights_file: the endpoint's weights file (under ``MLOPS_HOME``).
    :param capture: ``serving.capture`` as a dict; None: no capture.
    :param docker_url: Docker engine URL.
    :param docker_conn_id: Docker connection (registry login, TLS); None: none.
    """

    #: The deployment record's key of what :meth:`start` returns.
    ID_KEY = "container_id"

    def __init__(
        self,
        model_name: str,
        version: str,
        port: int,
        model_dir: str | Path,
        image: str,
        container_id: str | None = None,
        weights_file: Path | None = None,
        capture: dict[str, Any] | None = None,
        docker_url: str | None = None,
        docker_conn_id: str | None = None,
        prediction_buckets: tuple[float, ...] = (),
    ) -> None:
        self.model_name = model_name
        self.version = str(version)
        self.port = int(port)
        self.model_dir = Path(model_dir)
        self.image = image
        self.container_id = container_id
        self.weights_file = weights_file
        self.capture = CaptureSettings.from_dict(capture) if capture is not None else None
        self.docker_url = docker_url or DEFAULT_DOCKER_URL
        self.docker_conn_id = docker_conn_id
        self.prediction_buckets = prediction_buckets
        self._client: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return container_name(self.model_name, self.version, self.port)

    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = docker_client(docker_url=self.docker_url, docker_conn_id=self.docker_conn_id,
                                             timeout=60, user="the docker serving runner")  # fmt: skip
            except DockerEngineError as exc:
                raise BackendError(str(exc)) from exc
        return self._client

    def container(self) -> Any:
        """The recorded container (by id, else by its fixed name), or None."""
        import docker.errors

        for ref in (self.container_id, self.name):
            if ref:
                try:
                    return self.client().containers.get(ref)
                except docker.errors.NotFound:
                    continue
        return None

    def running(self) -> bool:
        """The recorded container runs (a busy backend that answers slowly still runs: it is not started twice)."""
        container = self.container()
        return container is not None and container.status == "running"

    def alive(self) -> bool:
        """The container runs and answers ``/ping`` with this version."""
        return self.running() and answers_as(self.url, self.version)

    def command(self) -> list[str]:
        return backend_command(self, "python", IMAGE_MODEL_DIR)

    def _check_startable(self) -> None:
        import docker.errors

        from mlops_provider.utils.storage import storage_url

        try:
            image = self.client().images.get(self.image)
        except docker.errors.ImageNotFound:
            raise BackendError(
                f"the serving image {self.image} of {self.model_name} v{self.version} is not on the Docker engine at "
                f"{self.docker_url}: build it with PackageModelOperator (runner 'docker'; the promotion DAG's "
                "`package` task, run with MLOPS_TRAINING_RUNNER=docker)"
            ) from None
        if image.labels.get(BACKEND_LABEL) is None:
            raise BackendError(
                f"the serving image {self.image} of {self.model_name} v{self.version} holds no live backend (no label "
                f"{BACKEND_LABEL}: built before the docker serving runner): remove it (docker rmi {self.image}) and "
                "run PackageModelOperator (the promotion DAG's `package` task) again"
            )
        if self.capture is not None and self.capture.fraction > 0 and storage_url() is not None:
            raise BackendError(
                f"{self.model_name} v{self.version}: a serving container captures to a local storage root only "
                f"(MLOPS_STORAGE_URL={storage_url()} needs Airflow, which the serving image does not hold): serve "
                "with the local runner, or set serving.capture.fraction to 0"
            )
        if port_in_use(self.port):
            raise BackendError(
                f"port {self.port} for {self.model_name} v{self.version} is taken by another process "
                "(choose another port range, or stop what listens there)"
            )

    def start(self, timeout: float = 120.0) -> str:
        """Start the container and wait until it answers; returns its id. A BackendError when the image is missing
        (naming what builds it), the port is taken, or the backend exits or does not answer in ``timeout`` seconds
        (with its log's tail)."""
        old = self.container()
        if old is not None:  # stopped, killed or exited: replaced (a running one is never started twice)
            old.remove(force=True)
        self._check_startable()
        home = str(mlops_home().absolute())
        container = self.client().containers.run(
            self.image,
            command=self.command(),
            name=self.name,
            detach=True,
            network_mode="host",
            user=f"{os.getuid()}:{os.getgid()}",  # writes under MLOPS_HOME as the task does
            environment={"MLOPS_HOME": home, "HOME": "/tmp", "PYTHONUNBUFFERED": "1"},
            volumes={home: {"bind": home, "mode": "rw"}},
            labels={ENDPOINT_LABEL: self.model_name, VERSION_LABEL: self.version},
        )
        self.container_id = container.id
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs.get("State", {}).get("ExitCode")
                raise BackendError(
                    f"backend container {self.name} of {self.model_name} v{self.version} exited with {code}:\n"
                    f"{self.tail()}"
                )
            if get(self.url + "/ping", timeout=1)[0] == 200:
                return str(container.id)
            time.sleep(0.2)
        tail = self.tail()
        self.stop()
        raise BackendError(f"backend container {self.name} of {self.model_name} v{self.version} not ready after "
                           f"{timeout:.0f} s:\n{tail}")  # fmt: skip

    def stop(self) -> None:
        """Remove the container (SIGTERM first: the backend flushes its captured rows; nothing when it is gone)."""
        import docker.errors

        container = self.container()
        if container is None:
            return
        try:
            if container.status == "running":
                container.stop(timeout=10)
            container.remove(force=True)
        except docker.errors.NotFound:
            pass

    def tail(self, chars: int = 2000) -> str:
        container = self.container()
        if container is None:
            return ""
        try:
            return str(container.logs(tail=50).decode(errors="replace"))[-chars:]
        except Exception:  # noqa: BLE001 - a tail for a message only
            return ""
