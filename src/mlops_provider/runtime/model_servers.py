"""Model servers for the shadow check: the live backend's app in the task's process, MLflow's scoring server as a
local process, or the serving container.

Both speak the same protocol (``GET /ping``, ``POST /invocations`` with ``dataframe_split`` JSON), so the check
is the same whichever runner the configuration chose.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops_provider.exceptions import ModelServerError
from mlops_provider.hooks.docker_engine import DEFAULT_DOCKER_URL, DockerEngineError, docker_client

#: Container label naming a server of one task, the same for every try (a retry removes what earlier tries left).
SERVER_KEY_LABEL = "mlops.server-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ModelServer:
    """Base: a started server at ``http://127.0.0.1:<port>``."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def output(self) -> str:
        return ""

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise ModelServerError(f"model server at {self.url} not ready after {timeout:.0f} s:\n{self.output()[-2000:]}")

    def _check_alive(self) -> None:
        """Raise when the server process/container has exited."""

    def invoke(self, records: dict[str, Any]) -> tuple[list[float], float]:
        """POST one ``dataframe_split`` batch; returns (predictions, seconds)."""
        body = json.dumps({"dataframe_split": records}, default=str).encode()
        request = urllib.request.Request(self.url + "/invocations", data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ModelServerError(f"HTTP {exc.code}: {exc.read().decode(errors='replace')[:500]}") from exc
        elapsed = time.perf_counter() - started
        predictions = payload["predictions"] if isinstance(payload, dict) else payload
        return [float(p) for p in predictions], elapsed


class LocalModelServer(ModelServer):
    """``mlflow models serve --env-manager local`` with this interpreter, for the ``local`` runner.

    The server dies with its task, the whole of it (``mlflow models serve`` and the uvicorn it starts): it runs in a
    process group of its own under the parent-death rule of :mod:`mlops_provider.runtime.processes` (the training
    runner's), so a ``kill -9`` or an OOM kill of the task takes it down. Its pid and port go into ``pid_file``; a
    retry that names the same pid file first stops a server an earlier try left running (a hung task process).

    :param model_dir: folder of the model's artifacts (MLmodel, python_model, artifacts/).
    :param pid_file: where the server is recorded; the same for every try of a task (default: one per server).
    """

    def __init__(self, model_dir: Path, pid_file: Path | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = self.model_dir.parent / f"server-{self.port}.log"
        self.pid_file = pid_file or self.model_dir.parent / f"server-{self.port}.pid"

    def start(self) -> None:
        import logging

        from mlops_provider.runtime.processes import StaleProcessError, start_bound, stop_earlier

        try:
            stop_earlier(self.pid_file, logging.getLogger(__name__), "model server")
        except StaleProcessError as exc:
            raise ModelServerError(str(exc)) from exc
        command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(self.model_dir),
                   "--env-manager", "local", "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        # MLflow starts `uvicorn` by name: this interpreter's scripts folder goes first on PATH.
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        with open(self._log, "wb") as log:
            self.process = start_bound(
                command,
                pid_file=self.pid_file,
                marker=f"--port {self.port}",  # in the command lines of mlflow and of its uvicorn
                whole_group=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ModelServerError(f"model server exited with {self.process.returncode}:\n{self.output()[-2000:]}")

    def output(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def stop(self) -> None:
        from mlops_provider.runtime.processes import stop_group

        if self.process is not None:
            stop_group(self.process)


class InProcessModelServer(ModelServer):
    """The live backend's app (:func:`mlops_provider.runtime.backend.create_app`: the code that serves the endpoint)
    on a free port, served by uvicorn in a thread of this process, for the ``local`` runner's shadow check.

    No process starts: the model loads in this process, whose libraries the worker preloaded (a ``mlflow models
    serve`` process imports MLflow twice, in its CLI and in its uvicorn worker: most of a shadow check's time). It
    dies with its task by construction, a ``kill -9`` included. The requests still cross HTTP and JSON, so
    encoding, the request check and the latency are the server's; the client shares this process's interpreter,
    which the latency includes.

    :param model_dir: folder of the model's artifacts (MLmodel, python_model, artifacts/).
    :param model_name: the registered model (the app's metric labels).
    :param version: the version served.
    """

    def __init__(self, model_dir: Path, model_name: str = "model", version: str = "0") -> None:
        self.model_dir = Path(model_dir)
        self.model_name, self.version = model_name, str(version)
        self.port = free_port()
        self._server: Any = None
        self._thread: Any = None
        self._error: BaseException | None = None

    def start(self) -> None:
        import threading

        import uvicorn

        from mlops_provider.runtime.backend import create_app

        try:
            app = create_app(self.model_dir, self.model_name, self.version)
        except Exception as exc:  # the model does not load: the check reports it like a server that exits
            raise ModelServerError(f"model {self.model_dir} does not load: {type(exc).__name__}: {exc}"[:800]) from exc
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="off")  # fmt: skip
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # a thread: the task's own handlers stay

        def serve() -> None:
            try:
                self._server.run()
            except BaseException as exc:  # noqa: BLE001 (reported by _check_alive)
                self._error = exc

        self._thread = threading.Thread(target=serve, name=f"shadow-server-{self.port}", daemon=True)
        self._thread.start()

    def _check_alive(self) -> None:
        if self._error is not None or (self._thread is not None and not self._thread.is_alive()):
            raise ModelServerError(f"in-process model server on port {self.port} stopped: {self._error!r}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None


class DockerModelServer(ModelServer):
    """The serving image as a container on the host network, for the ``docker`` runner.

    A container does not die with the task process (the engine runs it): ``stop`` (``on_kill``) removes it, and a
    retry removes the containers earlier tries left (those labelled with the same ``key``) before it starts.

    :param image: serving image (built by PackageModelOperator).
    :param name: container name (deterministic per task try; an existing one is replaced).
    :param docker_url: Docker engine URL.
    :param docker_conn_id: Docker connection (registry login, TLS); ``None``: none.
    :param key: the same for every try of one server of one task (label ``mlops.server-key``); ``None``: the name.
    """

    def __init__(
        self,
        image: str,
        name: str,
        docker_url: str = DEFAULT_DOCKER_URL,
        docker_conn_id: str | None = None,
        key: str | None = None,
    ) -> None:
        self.image = image
        self.name = name
        self.key = key or name
        self.docker_url = docker_url
        self.docker_conn_id = docker_conn_id
        self.port = free_port()
        self.container: Any = None

    def _client(self) -> Any:
        try:
            return docker_client(
                docker_url=self.docker_url, docker_conn_id=self.docker_conn_id, timeout=60, user="the serving container"
            )
        except DockerEngineError as exc:
            raise ModelServerError(str(exc)) from exc

    def start(self) -> None:
        import docker.errors

        client = self._client()
        for stale in client.containers.list(all=True, filters={"label": f"{SERVER_KEY_LABEL}={self.key}"}):
            stale.remove(force=True)  # left by an earlier try of the same task
        try:
            client.containers.get(self.name).remove(force=True)
        except docker.errors.NotFound:
            pass
        self.container = client.containers.run(
            self.image,
            name=self.name,
            detach=True,
            network_mode="host",
            environment={"PORT": str(self.port)},
            labels={SERVER_KEY_LABEL: self.key},
        )

    def _check_alive(self) -> None:
        if self.container is not None:
            self.container.reload()
            if self.container.status == "exited":
                raise ModelServerError(f"serving container {self.name} exited:\n{self.output()[-2000:]}")

    def output(self) -> str:
        return self.container.logs().decode(errors="replace") if self.container is not None else ""

    def stop(self) -> None:
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception:  # already gone
                pass
