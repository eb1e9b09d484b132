"""Live metrics of an endpoint (issue 32): a real Prometheus (Debian's) follows the deployment record through its
file_sd target files and its PromQL agrees with what the client sent; the Grafana dashboard's queries parse and name
only metrics the backends and Caddy really export; the health page's live section reads the same numbers."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from mlops_provider.ml.canary import histogram_quantile, snapshot_from_text
from mlops_provider.runtime import live_metrics as q
from mlops_provider.runtime.backend import get
from mlops_provider.runtime.deployment import Endpoint
from mlops_provider.runtime.metrics_targets import targets_dir
from mlops_provider.runtime.traffic import replay
from tests.servers import Prometheus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed"),
]

MODEL = "live_model"
COLUMNS = ["a", "b"]
ROWS = [[round(i / 100, 2), round(1 - i / 100, 2)] for i in range(200)]
SENT = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_base_port(span: int = 8) -> int:
    """A port with ``span`` free ports after it (the endpoint, its admin port and its backends)."""
    for _ in range(50):
        base = free_port()
        if base + span < 65000 and all(_free(base + i) for i in range(span)):
            return base
    raise RuntimeError("no free port range")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def save_model(folder: Path) -> Path:
    """A small scikit-learn model as an MLflow pyfunc model with a signature (what a registry copy looks like)."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    model = LogisticRegression().fit(features, (features["a"] + features["b"] > 0).astype(int))
    mlflow.sklearn.save_model(model, folder, pip_requirements=[], pyfunc_predict_fn="predict_proba",
                              signature=infer_signature(features, model.predict_proba(features)[:, 1]))  # fmt: skip
    return folder


def wait_for(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what} not met in {timeout:.0f} s")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """An endpoint (Caddy + v1 at 75% + v2 at 25%) with Prometheus scraping it, after SENT requests and 12 bad ones."""
    root = tmp_path_factory.mktemp("live-metrics")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(root / "home"))
        mp.delenv("MLOPS_PROMETHEUS_TARGETS", raising=False)
        model = save_model(root / "model")
        endpoint = Endpoint(MODEL, free_base_port())
        prometheus = None
        try:
            endpoint.deploy("1", model)
            endpoint.deploy("2", model)
            record = endpoint.set_weights({"1": 75, "2": 25})
            prometheus = Prometheus(root, [str(targets_dir() / "*.json")])
            wait_for(lambda: len([t for t in prometheus.targets() if t["health"] == "up"]) == 3, 30, "3 targets up")
            url = f"http://127.0.0.1:{record['port']}/invocations"
            summary = replay(url, COLUMNS, ROWS, rate=100, count=SENT, duration=60, concurrency=4)
            bad = 0
            for _ in range(12):  # a missing column: 4xx, counted apart from 5xx
                body = json.dumps({"dataframe_split": {"columns": ["a"], "data": [[0.5]]}}).encode()
                request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
                try:
                    urllib.request.urlopen(request, timeout=5)
                except urllib.error.HTTPError as exc:
                    bad += exc.code // 100 == 4
            # Prometheus has scraped every request (backends and Caddy) before the tests query it
            total = f'sum({q.REQUESTS_METRIC}_total{{model="{MODEL}"}})'
            through = f'sum(caddy_http_request_duration_seconds_count{{model="{MODEL}"}})'
            wait_for(lambda: all([[r["value"] for r in prometheus.query(e)] == [SENT + 12] for e in (total, through)]),
                     60, "the last scrape")  # fmt: skip
            yield {"endpoint": endpoint, "record": endpoint.load(), "prometheus": prometheus, "summary": summary,
                   "bad": bad, "model_dir": model, "root": root}  # fmt: skip
        finally:
            if prometheus is not None:
                prometheus.stop()
            endpoint.shutdown()


def by_version(rows: list[dict]) -> dict[str, float]:
    return {r["metric"].get("version"): r["value"] for r in rows}


def test_prometheus_counts_agree_with_the_client(live):
    prom, summary = live["prometheus"], live["summary"]
    assert summary.failed == 0 and summary.sent == SENT and live["bad"] == 12
    answered = by_version(
        prom.query(f'sum by (version) ({q.REQUESTS_METRIC}_total{{model="{MODEL}",status_class="2xx"}})')
    )
    assert answered == {v: float(n) for v, n in summary.versions.items()}
    assert (
        sum(by_version(prom.query(f'sum by (version) ({q.REQUESTS_METRIC}_total{{status_class="4xx"}})')).values())
        == 12
    )
    # the rate, the error rate and the weights, as the dashboard and the health page query them
    rates = by_version(prom.query(q.query_request_rate(MODEL, "5m")))
    assert set(rates) == {"1", "2"} and all(r > 0 for r in rates.values())
    share = rates["2"] / sum(rates.values())
    client_share = summary.versions["2"] / sum(summary.versions.values())
    assert abs(share - client_share) < 0.05, (share, client_share)
    assert by_version(prom.query(q.query_error_rate(MODEL, "5m"))) == {"1": 0.0, "2": 0.0}  # 4xx do not count
    assert by_version(prom.query(q.query_weight(MODEL))) == {"1": 75.0, "2": 25.0}
    shares = by_version(prom.query(q.query_traffic_share(MODEL, "5m")))
    assert abs(shares["2"] - 100 * client_share) < 5


def test_p95_by_histogram_quantile_matches_the_backends_own_histogram(live):
    prom, record = live["prometheus"], live["record"]
    raw = by_version(prom.query(
        f'histogram_quantile(0.95, sum by (version, le) ({q.LATENCY_METRIC}_bucket{{model="{MODEL}"}}))'))  # fmt: skip
    for version, backend in record["backends"].items():
        snapshot = snapshot_from_text(get(f"http://127.0.0.1:{backend['port']}/metrics")[1])
        assert raw[version] == pytest.approx(histogram_quantile(0.95, snapshot["latency"]), rel=1e-9)
    windowed = by_version(prom.query(q.query_latency(MODEL, "5m", 0.95)))
    assert set(windowed) == {"1", "2"} and all(0 < v < 10 for v in windowed.values())


def test_caddy_metrics_count_every_request_through_the_proxy(live):
    prom, summary = live["prometheus"], live["summary"]
    through = prom.query(f'sum(caddy_http_request_duration_seconds_count{{model="{MODEL}",component="proxy"}})')
    assert through[0]["value"] == summary.sent + 12
    codes = {r["metric"]["code"]: r["value"] for r in prom.query(
        f'sum by (code) (caddy_http_request_duration_seconds_count{{model="{MODEL}"}})')}  # fmt: skip
    assert codes == {"200": float(summary.sent), "422": 12.0}
    healthy = prom.query(q.query_upstreams_healthy(MODEL))
    assert len(healthy) == 2 and all(r["value"] == 1 for r in healthy)
    assert prom.query(q.query_proxy_latency(MODEL, "5m", 0.99))[0]["value"] > 0


def test_prometheus_follows_the_deployment_without_a_restart(live):
    endpoint, prom = live["endpoint"], live["prometheus"]
    record = endpoint.deploy("3", live["model_dir"])
    port = record["backends"]["3"]["port"]
    wait_for(lambda: any(t["scrapeUrl"].endswith(f":{port}/metrics") and t["health"] == "up" for t in prom.targets()),
             30, "v3 scraped")  # fmt: skip
    endpoint.retire("3", reason="test")
    wait_for(lambda: not any(f":{port}/" in t["scrapeUrl"] for t in prom.targets()), 30, "v3 dropped")
    assert prom.process.poll() is None


def test_the_dashboard_queries_parse_and_name_only_exported_metrics(live):
    from tests.repo.test_dashboards import dashboard_queries

    prom, record = live["prometheus"], live["record"]
    exported = set()
    for url in [f"http://127.0.0.1:{b['port']}/metrics" for b in record["backends"].values()] + [
        f"http://127.0.0.1:{record['admin_port']}/metrics"
    ]:
        exported |= {line.split("{")[0].split(" ")[0] for line in get(url)[1].splitlines() if line and line[0] != "#"}
    queries = dashboard_queries()
    assert len(queries) >= 8
    for panel, expr in queries:
        concrete = expr.replace("$model", MODEL).replace("$__rate_interval", "1m").replace("$__range", "10m")
        names = set(re.findall(r"\b((?:mlops|caddy)_[a-z_]+)\b", concrete))
        assert names and names <= exported, (panel, names - exported)
        rows = prom.query(concrete)  # a ValueError carries Prometheus' parse error
        assert rows, f"{panel}: {concrete} returned nothing"


def test_the_health_page_live_section_reads_the_backends_and_prometheus(live):
    from mlops_provider.web.health import live_section, render_live

    embedded = live_section(MODEL)
    assert embedded["source"] == "backends" and embedded["versions"] == ["1", "2"]
    assert embedded["weights"] == {"1": 75.0, "2": 25.0}
    first = embedded["windows"]["60s"]
    assert first["1"]["requests"] + first["2"]["requests"] == SENT + 12 and first["1"]["since_start"]
    again = live_section(MODEL)  # a second read: now a window with a rate (0 requests since)
    assert again["windows"]["60s"]["1"]["since_start"] is False and again["windows"]["60s"]["1"]["rate"] == 0
    html = render_live(again)
    assert 'class="live"' in html and "<svg" in html and "v2" in html

    prometheus = live_section(MODEL, prometheus_url=live["prometheus"].url)
    assert prometheus["source"] == "prometheus" and "prometheus_error" not in prometheus
    assert set(prometheus["windows"]["300s"]) == {"1", "2"}
    assert prometheus["windows"]["300s"]["1"]["rate"] > 0 and prometheus["windows"]["300s"]["2"]["error_rate"] == 0
    assert "Prometheus" in render_live(prometheus)
