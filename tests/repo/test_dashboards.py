"""The Grafana dashboard as code: the committed JSON is what include/grafana/generate.py makes (no drift), it parses
with the SDK's own types, every query is valid PromQL (promtool) and names only metrics the backends and Caddy
export; the provisioning and Prometheus files the compose stack mounts match their generators.
(tests/integration/test_live_metrics.py runs the same queries on a live Prometheus against a live /metrics.)"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_provider.ml.canary import INFO_METRIC, LATENCY_METRIC, PREDICTION_METRIC, REQUESTS_METRIC, WEIGHT_METRIC
from mlops_provider.runtime.metrics_targets import prometheus_config
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

GRAFANA = PROJECT_ROOT / "include" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "mlops-serving.json"
#: What the backends (runtime/backend.py) and Caddy's admin /metrics export, as series names.
EXPORTED = {
    f"{REQUESTS_METRIC}_total", f"{LATENCY_METRIC}_bucket", f"{PREDICTION_METRIC}_bucket", INFO_METRIC, WEIGHT_METRIC,
    "caddy_http_request_duration_seconds_bucket", "caddy_http_request_duration_seconds_count",
    "caddy_reverse_proxy_upstreams_healthy",
}  # fmt: skip


def generator():
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_queries(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every query of the committed dashboard, and the variable's query."""
    data = json.loads(path.read_text())
    queries = [(panel["title"], t["expr"]) for panel in data["panels"] for t in panel.get("targets", [])]
    for variable in data["templating"]["list"]:
        inner = re.fullmatch(r"label_values\((.+), \w+\)", variable["query"])
        assert inner, variable["query"]
        queries.append((f"variable {variable['name']}", inner.group(1)))
    return queries


def test_the_committed_dashboard_is_what_the_generator_makes():
    assert DASHBOARD.read_text() == generator().render(), "run `make dashboards` and commit the JSON"


def test_the_dashboard_parses_with_the_sdk_types_and_has_the_panels():
    from grafana_foundation_sdk.models.dashboard import Dashboard

    data = json.loads(DASHBOARD.read_text())
    parsed = Dashboard.from_json(data)
    assert parsed.uid == "mlops-serving" and parsed.templating.list_val[0].name == "model"
    titles = " | ".join(p["title"] for p in data["panels"])
    for needed in ("p50 / p95 / p99", "Error rate", "Throughput", "Traffic weight", "Prediction distribution",
                   "Caddy"):  # fmt: skip
        assert needed in titles, needed
    for title, expr in dashboard_queries():
        if not title.startswith("variable"):
            assert 'model="$model"' in expr, (title, expr)


def test_every_query_names_only_exported_metrics():
    for title, expr in dashboard_queries():
        names = set(re.findall(r"\b((?:mlops|caddy)_[a-z_]+)\b", expr))
        assert names and names <= EXPORTED, (title, names - EXPORTED)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) is not installed")
def test_every_query_is_valid_promql(tmp_path):
    rules = [{"record": f"check:q{i}", "expr": expr.replace("$model", "m").replace("$__rate_interval", "1m")
              .replace("$__range", "1h")} for i, (_, expr) in enumerate(dashboard_queries())]  # fmt: skip
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_provisioning_and_the_compose_prometheus_config():
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert datasource["datasources"][0]["uid"] == "prometheus" and datasource["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "mlops.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    compose_config = yaml.safe_load((PROJECT_ROOT / "include" / "prometheus" / "prometheus.yml").read_text())
    assert compose_config == prometheus_config(["/etc/prometheus/targets/*.json"], scrape_interval="5s")
