"""The Grafana dashboard of the live endpoints, as code (grafana-foundation-sdk): `make dashboards` writes
include/grafana/dashboards/mlops-serving.json (committed; tests/repo/test_dashboards.py regenerates and compares).

Why grafana-foundation-sdk and not grafanalib: it is Grafana's own SDK, generated from Grafana's schemas (types for
every panel and the Prometheus query), released with Grafana (10.1.0, January 2026); grafanalib's last release is
0.7.1 (January 2024) and its repository is archived.

Every panel's PromQL comes from mlops_provider.runtime.live_metrics, the module the health page queries Prometheus
with: one definition of each number. ``$model`` is the dashboard's variable, ``$__rate_interval`` Grafana's window.

Usage: python include/grafana/generate.py [--check]   (--check: exit 1 when the committed file differs)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import barchart, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from mlops_provider.runtime import live_metrics as q

OUT = Path(__file__).parent / "dashboards" / "mlops-serving.json"
UID = "mlops-serving"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
MODEL = "$model"
WINDOW = "$__rate_interval"


def target(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def series(title: str, unit: str, targets: list[prometheus.Dataquery], description: str) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
    for t in targets:
        panel = panel.with_target(t)
    return panel.height(8).span(12)


def build() -> dict:
    """The dashboard as Grafana's JSON model."""
    model = (
        dashboard.QueryVariable("model").label("model").datasource(DATASOURCE)
        .query(f"label_values({q.query_versions()}, model)").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )  # fmt: skip
    latency = [target(q.query_latency(MODEL, WINDOW, quantile), f"v{{{{version}}}} p{int(quantile * 100)}", ref)
               for quantile, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))]  # fmt: skip
    builder = (
        dashboard.Dashboard("MLOps live serving").uid(UID).tags(["mlops", "serving"]).time("now-1h", "now")
        .refresh("10s").editable().with_variable(model)
        .with_panel(series("Latency p50 / p95 / p99 per version (backend)", "s", latency,
                           "histogram_quantile over mlops_serving_request_duration_seconds"))
        .with_panel(series("Error rate per version (5xx among judged requests)", "percentunit",
                           [target(q.query_error_rate(MODEL, WINDOW), "v{{version}} 5xx"),
                            target(q.query_bad_input_rate(MODEL, WINDOW), "v{{version}} 4xx/s (bad input)", "B")],
                           "5xx share of the non-4xx requests; 4xx (bad input) per second apart"))
        .with_panel(series("Throughput per version", "reqps", [target(q.query_request_rate(MODEL, WINDOW),
                           "v{{version}}")], "requests per second each version answered"))
        .with_panel(series("Traffic weight vs answered share per version", "percent",
                           [target(q.query_weight(MODEL), "v{{version}} weight"),
                            target(q.query_traffic_share(MODEL, WINDOW), "v{{version}} answered", "B")],
                           "weight: the deployment record's; answered: the measured share of the requests"))
        .with_panel(barchart.Panel().title("Prediction distribution per version").datasource(DATASOURCE)
                    .description("predictions per bucket (upper bound le) over the dashboard's range")
                    .with_target(target(q.query_predictions(MODEL, "$__range"), "v{{version}} le {{le}}")
                                 .instant().format(PromQueryFormat.TABLE))
                    .height(8).span(12))
        .with_panel(series("Endpoint (Caddy): requests per status code", "reqps",
                           [target(q.query_proxy_rate(MODEL, WINDOW), "{{code}}")],
                           "every request through the endpoint's proxy, by answered status code"))
        .with_panel(series("Endpoint (Caddy): latency p95 / p99", "s",
                           [target(q.query_proxy_latency(MODEL, WINDOW, 0.95), "p95"),
                            target(q.query_proxy_latency(MODEL, WINDOW, 0.99), "p99", "B")],
                           "as the client sees it: proxy + backend"))
        .with_panel(stat.Panel().title("Upstreams healthy (Caddy's health checks)").datasource(DATASOURCE)
                    .with_target(target(q.query_upstreams_healthy(MODEL), "{{upstream}}")).height(8).span(12))
    )  # fmt: skip
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run `make dashboards`", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
