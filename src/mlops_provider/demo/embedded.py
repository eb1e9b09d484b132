"""Run the embedded Airflow (``airflow standalone``) as a managed child: start, wait healthy, talk REST, stop.

Used by the demo command and by the end-to-end tests. The process is started in its own session (process
group) so that stopping it also stops the scheduler, triggerer, dag-processor, api-server and their workers;
a plain SIGTERM to the parent would orphan them.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mlops_provider.exceptions import EmbeddedAirflowError


@dataclass
class EmbeddedAirflow:
    """A running ``airflow standalone`` and a small REST API v2 client for it.

    :param airflow_bin: path of the ``airflow`` executable (the project's ``.venv/bin/airflow``).
    :param airflow_home: ``AIRFLOW_HOME`` of the instance; the admin password file is read from it.
    :param port: port of the api-server (``AIRFLOW__API__PORT``).
    :param log_path: file that receives the combined output of all components.
    :param env: environment of the process; defaults to the current one.
    :param components: instead of ``airflow standalone``, these commands (e.g. ``["airflow", "scheduler"]``,
        ``["airflow", "celery", "worker"]``), each its own process, all in one process group: the distributed
        mode's components on one machine. Each is a list of arguments, optionally preceded by a dict of extra
        environment variables for that component only.
    :param request_timeout: seconds to wait for one answer of the REST API; a GET that gets none is tried
        :attr:`GET_TRIES` times in all.
    """

    airflow_bin: str
    airflow_home: Path
    port: int = 8080
    log_path: Path | None = None
    env: dict[str, str] | None = None
    components: list[list[Any]] | None = None
    request_timeout: float = 30.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _token: str | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        """Start ``airflow standalone`` in a new process group and wait until every component is healthy."""
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise EmbeddedAirflowError(
                    f"port {self.port} is already in use (another Airflow still running?); stop it or choose "
                    "another port (AIRFLOW__API__PORT)"
                )
        log_path = self.log_path or self.airflow_home / "standalone.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(self.env if self.env is not None else os.environ)
        env["AIRFLOW__API__PORT"] = str(self.port)
        # Tasks reach the api-server's execution API, and the worker and triggerer serve logs on ports of their
        # own: the same derivation as config/embedded.env, redone because this port may differ from the one the
        # environment was sourced with.
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{self.port}/execution/"
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(self.port + 1)
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(self.port + 2)
        # standalone starts its components as `airflow ...` looked up on PATH.
        env["PATH"] = os.pathsep.join([str(Path(self.airflow_bin).parent), env.get("PATH", "")])
        if self.components:
            # One shell in a new session starts every component in its process group; when any component
            # exits, the shell stops the rest and exits, so a dead component is noticed like a dead standalone.
            lines = ["trap 'kill 0' EXIT"]
            for command in self.components:
                has_env = bool(command) and isinstance(command[0], dict)  # [{VAR: value, ...}, *argv] or argv
                extra = command[0] if has_env else {}
                args = [str(a) for a in (command[1:] if has_env else command)]
                assignments = [f"{k}={shlex.quote(str(v))}" for k, v in extra.items()]
                lines.append(" ".join(["env", *assignments, *map(shlex.quote, args)]) + " &")
            lines.append("wait -n; exit 1")
            argv = ["bash", "-c", "\n".join(lines)]
        else:
            argv = [self.airflow_bin, "standalone"]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        try:
            self.wait_healthy(timeout=timeout, log_path=log_path)
        except BaseException:
            self.stop()  # a start that never got healthy leaves nothing behind (callers stop only a started one)
            raise

    def wait_healthy(self, timeout: float, log_path: Path) -> dict[str, Any]:
        """Poll the health endpoint until metadatabase, scheduler, triggerer and dag-processor are healthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                what = "a component" if self.components else "airflow standalone"
                raise EmbeddedAirflowError(
                    f"{what} exited (code {self.process.returncode}) before Airflow was healthy; see {log_path}"
                )
            try:
                health = self._request("GET", "/api/v2/monitor/health", auth=False)
            except (urllib.error.URLError, ConnectionError, TimeoutError, EmbeddedAirflowError) as exc:
                last = exc
            else:
                last = health
                components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((health.get(c) or {}).get("status") == "healthy" for c in components):
                    return health
            time.sleep(1.0)
        raise EmbeddedAirflowError(
            f"Airflow at {self.base_url} was not healthy within {timeout:.0f} s (last answer: {last}); see {log_path}"
        )

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after ``timeout`` seconds."""
        if self.process is None:
            return
        pgid = self.process.pid  # the session's leader: the group id stays valid while any member lives
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Components and the workers they forked can outlive the leader by a moment: give them the rest of the
        # timeout to finish, then make sure none is left.
        try:
            while time.monotonic() < deadline:
                os.killpg(pgid, 0)
                time.sleep(0.5)
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @property
    def admin_password(self) -> str:
        """The generated password of the ``admin`` user (simple auth manager)."""
        path = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        try:
            return str(json.loads(path.read_text())["admin"])
        except (OSError, KeyError, ValueError) as exc:
            raise EmbeddedAirflowError(f"cannot read the admin password from {path}: {exc}") from exc

    def _token_value(self) -> str:
        if self._token is None:
            answer = self._request(
                "POST", "/auth/token", {"username": "admin", "password": self.admin_password}, auth=False
            )
            self._token = str(answer["access_token"])
        return self._token

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the REST API v2 as the admin user and return the decoded JSON answer."""
        return self._request(method, path, body, auth=True)

    def request_status(self, path: str, *, auth: bool = True) -> int:
        """HTTP status of a GET (for pages and files that are not JSON API answers)."""
        return self._get(path, auth=auth)[0]

    def request_text(self, path: str) -> str:
        """Body of a GET as the admin user (a page of the UI or the plugin); raises on a status other than 200."""
        status, body = self._get(path, auth=True)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:500]}")
        return body

    def _get(self, path: str, *, auth: bool) -> tuple[int, str]:
        request = urllib.request.Request(self.base_url + path)
        if auth:
            request.add_header("Authorization", f"Bearer {self._token_value()}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode("utf-8", "replace")

    #: Tries of a GET that timed out: the api-server has one worker and, on a loaded 2-core machine, may answer a
    #: poll after more than the 30 s timeout (measured at load average ~17); a GET is safe to repeat.
    GET_TRIES: ClassVar[int] = 3

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, *, auth: bool) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self._token_value()}")
        tries = self.GET_TRIES if method == "GET" else 1
        for attempt in range(1, tries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                    payload = response.read()
                break
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:500]
                raise EmbeddedAirflowError(f"{method} {path} answered HTTP {exc.code}: {detail}") from exc
            except TimeoutError as exc:
                if attempt == tries:
                    raise EmbeddedAirflowError(
                        f"{method} {path} got no answer from {self.base_url} within {self.request_timeout:g} s "
                        f"({tries} tries): the api-server is overloaded or stuck; see the standalone log, or retry "
                        "on a quieter machine"
                    ) from exc
        return json.loads(payload) if payload else None


def distributed_components(env: dict[str, str], bin_dir: Path, port: int, homes: Path | None = None) -> list[list[Any]]:
    """The distributed mode's processes on one machine (``config/distributed.env``): an MLflow tracking server
    with its PostgreSQL backend store, the Airflow api-server, scheduler, dag-processor, triggerer, and
    ``MLOPS_CELERY_WORKERS`` Celery workers, each with its own name and log-server port (``worker-1`` also takes the
    queue ``$MLOPS_SERVING_QUEUE``: the serving worker). With ``homes``, every
    Airflow component gets its own ``MLOPS_HOME`` under it (``<homes>/<component>``): hosts without a common disk,
    as far as disks go (the files they share then go through ``MLOPS_STORAGE_URL`` and the registry's git remote).
    For ``EmbeddedAirflow(components=...)``."""
    airflow = str(bin_dir / "airflow")
    artifacts = Path(env["MLOPS_HOME"]) / "mlflow-artifacts"
    mlflow_port = env.get("MLOPS_MLFLOW_PORT", "5000")

    def own_home(name: str) -> dict[str, str]:
        return {"MLOPS_HOME": str(homes / name)} if homes is not None else {}

    commands: list[list[Any]] = [
        [str(bin_dir / "mlflow"), "server", "--backend-store-uri", env["MLFLOW_BACKEND_STORE_URI"],
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", mlflow_port],
        [own_home("api-server"), airflow, "api-server", "--port", str(port)],
        [own_home("scheduler"), airflow, "scheduler"],
        [own_home("dag-processor"), airflow, "dag-processor"],
        [own_home("triggerer"), airflow, "triggerer"],
    ]  # fmt: skip
    for i in range(1, int(env.get("MLOPS_CELERY_WORKERS", "2")) + 1):
        worker_env = {
            "MLOPS_WORKER_NAME": f"worker-{i}",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "mlops_provider.utils.hostname.worker_hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 10 + i),
            **own_home(f"worker-{i}"),
        }
        worker = [airflow, "celery", "worker", "--celery-hostname", f"worker-{i}@%h", "--concurrency", "2"]
        if i == 1 and env.get("MLOPS_SERVING_QUEUE"):  # the serving worker: the endpoints run on its machine
            default = env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE") or "default"
            worker += ["--queues", f"{default},{env['MLOPS_SERVING_QUEUE']}"]
        commands.append([worker_env, *worker])
    return commands
