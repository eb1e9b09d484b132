"""A model's live endpoint as a record, and the reconciliation that makes the processes match it.

The deployment record (``<storage root>/reports/deployments/<model>/deployment.json``) holds which versions run,
on which port, at which weight, and the proxy's ports; it is the truth, not any process's memory::

    {"model_name": "churn", "host": "...", "port": 8600, "admin_port": 8601,
     "proxy": {"pid": 4242},
     "backends": {"3": {"port": 8602, "pid": 4250, "model_dir": "...", "deployed_at": "..."}},
     "weights": {"3": 100},
     "events": [{"at": "...", "event": "deploy", "version": "3", "weights": {...}}, ...]}   # append-only

Every operation (:meth:`Endpoint.deploy`, :meth:`Endpoint.set_weights`, :meth:`Endpoint.retire`) first
reconciles: a recorded backend that does not run is started again on its port, a proxy that does not run is
started from the record, and a running proxy whose weights differ from the record's gets the record's. So a
re-run never starts a second backend for a version and never loses the weights, and a killed proxy comes back as
recorded. Operations on one model hold a lock (``$MLOPS_HOME/locks/endpoint-<model>.lock``).

Every save also writes what Prometheus and the backends read from the record
(:mod:`mlops_provider.runtime.metrics_targets`): the model's file_sd target file and the weights file.

The processes are local to the machine that started them (``host``): the embedded mode's single machine, or one
serving worker (route the serving tasks to it with a queue). A task on another machine fails with a clear error
instead of starting a second endpoint.

A backend runs as a local process (runner ``local``, :class:`~mlops_provider.runtime.backend.BackendProcess`) or
as a container of the version's serving image (runner ``docker``,
:class:`~mlops_provider.runtime.backend_container.BackendContainer`), chosen when the version is deployed and
recorded with it (``runner``, ``image``, ``container_id``, the engine's ``docker_url``): a reconciliation starts
it again the way it first ran.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_provider.exceptions import DeploymentError
from mlops_provider.runtime.backend import BackendError, BackendProcess, port_in_use
from mlops_provider.runtime.backend_container import BackendContainer
from mlops_provider.runtime.metrics_targets import publish
from mlops_provider.runtime.proxy import CaddyProxy, ProxyError, reduced
from mlops_provider.utils.paths import home_folder, locks_dir
from mlops_provider.utils.storage import write_text

#: how many ports after the endpoint's admin port the backends may take
BACKEND_PORT_SPAN = 98


def safe_name(model_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)


def serving_records(model_name: str) -> Any:
    """The folder of a model's serving records under the storage root (deployment record, verdicts)."""
    from mlops_provider.utils.records import folder

    return folder("deployments", safe_name(model_name))


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@contextmanager
def endpoint_lock(model_name: str) -> Iterator[None]:
    """Exclusive lock of one model's endpoint across processes on this machine."""
    folder = locks_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"endpoint-{safe_name(model_name)}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Endpoint:
    """One model's endpoint: the record, the proxy and the backends.

    :param model_name: registered model.
    :param port: the endpoint's port on 127.0.0.1 (used when the record is created; the record's port wins after).
    :param admin_port: Caddy's admin port (default ``port + 1``).
    :param log: a logger (the task's).
    :param capture: ``serving.capture`` for the backends this endpoint starts (recorded with each backend, so a
        backend started again by a reconciliation captures as it did); None: no capture.
    :param runner: how the backends this endpoint deploys run: ``local`` (processes) or ``docker`` (containers of
        the versions' serving images; recorded with each backend).
    :param docker_url: the Docker engine of the ``docker`` runner.
    :param docker_conn_id: its connection (registry login, TLS); None: none.
    """

    def __init__(
        self,
        model_name: str,
        port: int,
        admin_port: int | None = None,
        log: Any = None,
        capture: dict[str, Any] | None = None,
        runner: str = "local",
        docker_url: str | None = None,
        docker_conn_id: str | None = None,
    ) -> None:
        import logging

        if runner not in ("local", "docker"):
            raise DeploymentError(f"the serving runner must be 'local' or 'docker', got {runner!r}")
        self.model_name = model_name
        self.capture = capture
        self.runner = runner
        self.docker_url = docker_url
        self.docker_conn_id = docker_conn_id
        self.port = int(port)
        self.admin_port = int(admin_port or port + 1)
        self.log = log or logging.getLogger(__name__)

    # -- the record ------------------------------------------------------------------------------------------

    @property
    def record_path(self) -> Any:
        return serving_records(self.model_name) / "deployment.json"

    @property
    def state_dir(self) -> Path:
        """This machine's files of the endpoint (Caddy's configuration and logs, the backends' logs)."""
        return home_folder("serving", "endpoints", safe_name(self.model_name))

    def load(self) -> dict[str, Any]:
        """The record (a new one when there is none)."""
        path = self.record_path
        if path.exists():
            return json.loads(path.read_text())
        return {"model_name": self.model_name, "host": socket.getfqdn(), "port": self.port,
                "admin_port": self.admin_port, "proxy": {"pid": None}, "backends": {}, "weights": {},
                "events": []}  # fmt: skip

    @property
    def weights_file(self) -> Path:
        """The traffic weights the backends export (:mod:`mlops_provider.runtime.metrics_targets`)."""
        return self.state_dir / "weights.json"

    def save(self, record: dict[str, Any]) -> None:
        """Write the record, then what Prometheus and the backends read from it (target file, weights file)."""
        write_text(self.record_path, json.dumps(record, indent=2))
        publish(record, safe_name(self.model_name), self.weights_file)

    def proxy(self, record: dict[str, Any]) -> CaddyProxy:
        return CaddyProxy(self.model_name, record["port"], record["admin_port"], self.state_dir / "proxy",
                          pid=record["proxy"].get("pid"))  # fmt: skip

    def backend(self, record: dict[str, Any], version: str) -> BackendProcess | BackendContainer:
        """The recorded backend of ``version``: its process or its container (the record's ``runner``)."""
        entry = record["backends"][version]
        if entry.get("runner") == "docker":
            return BackendContainer(self.model_name, version, entry["port"], entry["model_dir"], entry["image"],
                                    container_id=entry.get("container_id"), weights_file=self.weights_file,
                                    capture=entry.get("capture"), docker_url=entry.get("docker_url"),
                                    docker_conn_id=entry.get("docker_conn_id"))  # fmt: skip
        return BackendProcess(self.model_name, version, entry["port"], entry["model_dir"],
                              self.state_dir / f"backend-v{version}.log", pid=entry.get("pid"),
                              weights_file=self.weights_file, capture=entry.get("capture"))  # fmt: skip

    @staticmethod
    def upstreams(record: dict[str, Any]) -> dict[int, int]:
        """Backend port -> weight, from the record."""
        return {int(b["port"]): int(record["weights"].get(v, 0)) for v, b in record["backends"].items()}

    @staticmethod
    def event(record: dict[str, Any], event: str, **details: Any) -> None:
        record["events"].append({"at": now(), "event": event, "weights": dict(record["weights"]), **details})

    # -- reconciliation --------------------------------------------------------------------------------------

    def reconcile(
        self,
        record: dict[str, Any],
        model_dir_for: Callable[[str], str] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """Make the processes match ``record`` (see the module's docstring); returns the record with the pids of
        what it started, and a ``reconciled`` list of what it did. Backends of the versions in ``skip`` are not
        started (a rollback does not wait for the canary it is about to stop)."""
        done: list[str] = []
        if record["host"] != socket.getfqdn() and (record["backends"] or record["proxy"].get("pid")):
            raise DeploymentError(
                f"the endpoint of {self.model_name} runs on {record['host']}, not on {socket.getfqdn()}: "
                "run the serving tasks on that machine (a queue of their own)"
            )
        for version in sorted(set(record["backends"]) - skip):
            backend = self.backend(record, version)
            if backend.running():
                continue
            if model_dir_for is not None and not (Path(backend.model_dir) / "MLmodel").is_file():
                backend.model_dir = Path(model_dir_for(version))
                record["backends"][version]["model_dir"] = str(backend.model_dir)
            self.log.warning("Backend of %s v%s is not running: starting it on port %s as recorded",
                             self.model_name, version, backend.port)  # fmt: skip
            try:
                record["backends"][version][backend.ID_KEY] = backend.start()
            except BackendError as exc:
                raise DeploymentError(str(exc)) from exc
            done.append(f"started backend v{version}")
        proxy = self.proxy(record)
        wanted = self.upstreams(record)
        try:
            if not proxy.running():
                self.log.warning("Proxy of %s is not running: starting it from the record", self.model_name)
                record["proxy"]["pid"] = proxy.start(wanted)
                done.append("started proxy")
            else:
                running = proxy.running_weights()  # None: the admin API did not answer in time
                if running is None or reduced(running) != reduced(wanted):
                    proxy.apply(wanted)
                    done.append("restored weights")
        except ProxyError as exc:
            raise DeploymentError(str(exc)) from exc
        if done:
            self.event(record, "reconcile", actions=done)
        record["reconciled"] = done
        return record

    # -- operations ------------------------------------------------------------------------------------------

    def status(self, model_dir_for: Callable[[str], str] | None = None) -> dict[str, Any]:
        """Reconcile and return the record."""
        with endpoint_lock(self.model_name):
            record = self.reconcile(self.load(), model_dir_for)
            self.save(record)
            return record

    def free_backend_port(self, record: dict[str, Any]) -> int:
        taken = {int(b["port"]) for b in record["backends"].values()} | {record["port"], record["admin_port"]}
        first = int(record["admin_port"]) + 1
        for port in range(first, first + BACKEND_PORT_SPAN):
            if port not in taken and not port_in_use(port):
                return port
        raise DeploymentError(f"no free backend port in {first}..{first + BACKEND_PORT_SPAN - 1} for {self.model_name}")

    def deploy(
        self,
        version: str,
        model_dir: str | Path,
        model_dir_for: Callable[[str], str] | None = None,
        image_for: Callable[[str], str | None] | None = None,
    ) -> dict[str, Any]:
        """Run ``version``'s backend (at weight 0 unless the record already weighs it); nothing new when it runs.
        With the ``docker`` runner ``image_for(version)`` names the version's serving image (asked only when the
        version is not deployed yet)."""
        version = str(version)
        with endpoint_lock(self.model_name):
            record = self.reconcile(self.load(), model_dir_for)
            if version not in record["backends"]:
                port = self.free_backend_port(record)
                entry: dict[str, Any] = {"port": port, "model_dir": str(model_dir), "capture": self.capture,
                                         "runner": self.runner}  # fmt: skip
                backend: BackendProcess | BackendContainer
                if self.runner == "docker":
                    image = image_for(version) if image_for is not None else None
                    if not image:
                        raise DeploymentError(f"{self.model_name} v{version}: the docker serving runner needs the "
                                              "version's serving image (PackageModelOperator builds it)")  # fmt: skip
                    entry.update(image=image, docker_url=self.docker_url, docker_conn_id=self.docker_conn_id)
                    backend = BackendContainer(self.model_name, version, port, model_dir, image,
                                               weights_file=self.weights_file, capture=self.capture,
                                               docker_url=self.docker_url,
                                               docker_conn_id=self.docker_conn_id)  # fmt: skip
                    entry["container_name"] = backend.name
                else:
                    backend = BackendProcess(self.model_name, version, port, model_dir,
                                             self.state_dir / f"backend-v{version}.log",
                                             weights_file=self.weights_file, capture=self.capture)  # fmt: skip
                try:
                    entry[backend.ID_KEY] = backend.start()
                except BackendError as exc:
                    self.save(record)
                    raise DeploymentError(str(exc)) from exc
                record["backends"][version] = {**entry, "deployed_at": now()}
                record["weights"].setdefault(version, 0)
                self.event(record, "deploy", version=version, port=port, runner=self.runner)
            self.save(record)
            return record

    def set_weights(self, weights: dict[str, int], reason: str = "") -> dict[str, Any]:
        """Give the versions ``weights`` (versions not named get 0) and load them into the proxy; returns the
        record with ``apply_seconds`` (the admin API's time)."""
        weights = {str(v): int(w) for v, w in weights.items()}
        with endpoint_lock(self.model_name):
            record = self.load()
            record = self.reconcile(record, skip=frozenset(v for v in record["backends"] if not weights.get(v)))
            unknown = sorted(set(weights) - set(record["backends"]))
            if unknown:
                raise DeploymentError(f"versions {unknown} of {self.model_name} are not deployed (deployed: "
                                      f"{sorted(record['backends'])})")  # fmt: skip
            if any(w < 0 for w in weights.values()):
                raise DeploymentError(f"weights must be >= 0, got {weights}")
            record["weights"] = {v: weights.get(v, 0) for v in record["backends"]}
            try:
                seconds = self.proxy(record).apply(self.upstreams(record))
            except ProxyError as exc:
                raise DeploymentError(str(exc)) from exc
            self.event(record, "weights", reason=reason, apply_seconds=round(seconds, 4))
            self.save(record)
            record["apply_seconds"] = seconds
            return record

    def retire(self, version: str, reason: str = "") -> dict[str, Any]:
        """Take ``version`` out of the proxy, stop its backend and drop it from the record (nothing when absent)."""
        version = str(version)
        with endpoint_lock(self.model_name):
            record = self.load()
            if version not in record["backends"]:
                return record
            backend = self.backend(record, version)
            if record["weights"].get(version, 0):
                record["weights"][version] = 0
                try:
                    self.proxy(record).apply(self.upstreams(record))
                except ProxyError as exc:
                    raise DeploymentError(str(exc)) from exc
            backend.stop()
            del record["backends"][version]
            record["weights"].pop(version, None)
            self.event(record, "retire", version=version, reason=reason)
            self.save(record)
            return record

    def shutdown(self) -> None:
        """Stop the proxy and every backend (the record keeps them: a later operation starts them again)."""
        with endpoint_lock(self.model_name):
            record = self.load()
            self.proxy(record).stop()
            for version in record["backends"]:
                self.backend(record, version).stop()
            publish(record, safe_name(self.model_name), self.weights_file, running=False)
