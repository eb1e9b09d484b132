"""What Prometheus scrapes, written from the deployment record: file_sd target files and the traffic weights file.

Prometheus follows the endpoints through ``file_sd_configs``: one JSON file per model in the targets folder
(``$MLOPS_PROMETHEUS_TARGETS``, default ``$MLOPS_HOME/serving/prometheus``), rewritten atomically by every
:class:`~mlops_provider.runtime.deployment.Endpoint` operation that saves the record (a backend started, retired,
weights changed) and emptied when the endpoint shuts down. Prometheus re-reads the files itself (no restart, no
reload)::

    [{"targets": ["127.0.0.1:8601"], "labels": {"model": "churn", "component": "proxy"}},
     {"targets": ["127.0.0.1:8602"], "labels": {"component": "backend"}}, ...]

The proxy's target is Caddy's admin API, whose ``/metrics`` holds Caddy's own metrics (``caddy_http_*``,
``caddy_reverse_proxy_upstreams_healthy``); it carries the ``model`` label as a target label. A backend exports
``model`` and ``version`` itself (:mod:`mlops_provider.runtime.backend`), so its target adds no label that could
clash with them.

The weights file (``<endpoint state>/weights.json``, ``{version: percent of the traffic}``) is what a backend
exports as ``mlops_serving_traffic_weight``: Caddy does not export its upstream weights, and a dashboard draws the
weight beside the measured share.

Targets are ``127.0.0.1``: the backends and Caddy listen on loopback, so Prometheus runs on the serving machine (in
docker-compose it shares the serving worker's network namespace).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlops_provider.utils.files import atomic_path
from mlops_provider.utils.paths import home_folder

TARGETS_ENV = "MLOPS_PROMETHEUS_TARGETS"
#: The scrape job of the endpoints (what the dashboard and the health page's PromQL select on).
JOB = "mlops-serving"


def targets_dir() -> Path:
    """The folder of the file_sd target files (``$MLOPS_PROMETHEUS_TARGETS``, else under ``MLOPS_HOME``)."""
    configured = os.environ.get(TARGETS_ENV)
    return Path(configured) if configured else home_folder("serving", "prometheus")


def scrape_targets(record: dict[str, Any], host: str = "127.0.0.1") -> list[dict[str, Any]]:
    """The file_sd entries of one deployment record: the proxy (Caddy's admin API) and one entry per backend."""
    entries: list[dict[str, Any]] = []
    if record.get("admin_port"):
        entries.append({"targets": [f"{host}:{record['admin_port']}"],
                        "labels": {"model": str(record["model_name"]), "component": "proxy"}})  # fmt: skip
    for version in sorted(record.get("backends", {}), key=lambda v: (len(v), v)):
        port = record["backends"][version]["port"]
        entries.append({"targets": [f"{host}:{port}"], "labels": {"component": "backend"}})
    return entries


def traffic_percent(weights: dict[str, Any]) -> dict[str, float]:
    """Each version's share of the traffic in percent (the weights need not add up to 100; all 0: all 0)."""
    total = sum(max(0, int(w)) for w in weights.values())
    return {str(v): round(100.0 * max(0, int(w)) / total, 3) if total else 0.0 for v, w in weights.items()}


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as JSON, whole or not at all (a reader never sees half a file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1))
    return path


def targets_file(model_file_name: str) -> Path:
    return targets_dir() / f"{model_file_name}.json"


def publish(record: dict[str, Any], model_file_name: str, weights_file: Path, running: bool = True) -> None:
    """Write the target file and the weights file of ``record`` (``running`` False: an empty target list, the
    endpoint's processes are stopped)."""
    write_json(targets_file(model_file_name), scrape_targets(record) if running else [])
    write_json(weights_file, traffic_percent(record.get("weights", {})))


def prometheus_config(target_files: list[str], scrape_interval: str = "15s") -> dict[str, Any]:
    """Prometheus' configuration for the endpoints: one job reading the target files (re-read every 5 s)."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": JOB,
                "scrape_interval": scrape_interval,
                "file_sd_configs": [{"files": list(target_files), "refresh_interval": "5s"}],
            }
        ],
    }


def read_weights(path: str | Path) -> dict[str, float] | None:
    """The weights file (None when it cannot be read: the backend then exports no weight)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else None
