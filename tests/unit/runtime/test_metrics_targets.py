"""What Prometheus scrapes is a function of the deployment record: the proxy's admin API with the model label,
one target per backend; the weights file the backends export; Prometheus' own configuration."""

from __future__ import annotations

import json

import pytest

from mlops_provider.runtime.metrics_targets import (
    JOB,
    prometheus_config,
    publish,
    read_weights,
    scrape_targets,
    targets_dir,
    traffic_percent,
)
from mlops_provider.runtime.proxy import caddy_config

pytestmark = pytest.mark.unit

RECORD = {"model_name": "churn", "port": 8600, "admin_port": 8601, "proxy": {"pid": 1},
          "backends": {"10": {"port": 8604}, "9": {"port": 8602}}, "weights": {"9": 95, "10": 5}}  # fmt: skip


def test_targets_are_the_proxy_and_every_backend_in_version_order():
    assert scrape_targets(RECORD) == [
        {"targets": ["127.0.0.1:8601"], "labels": {"model": "churn", "component": "proxy"}},
        {"targets": ["127.0.0.1:8602"], "labels": {"component": "backend"}},
        {"targets": ["127.0.0.1:8604"], "labels": {"component": "backend"}},
    ]


def test_traffic_percent_normalises_the_weights():
    assert traffic_percent({"1": 3, "2": 1}) == {"1": 75.0, "2": 25.0}
    assert traffic_percent({"1": 0, "2": 0}) == {"1": 0.0, "2": 0.0}
    assert traffic_percent({}) == {}


def test_publish_writes_both_files_and_empties_the_targets_when_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_PROMETHEUS_TARGETS", str(tmp_path / "targets"))
    assert targets_dir() == tmp_path / "targets"
    publish(RECORD, "churn", tmp_path / "state" / "weights.json")
    assert len(json.loads((tmp_path / "targets" / "churn.json").read_text())) == 3
    assert read_weights(tmp_path / "state" / "weights.json") == {"9": 95.0, "10": 5.0}
    publish(RECORD, "churn", tmp_path / "state" / "weights.json", running=False)
    assert json.loads((tmp_path / "targets" / "churn.json").read_text()) == []
    assert read_weights(tmp_path / "missing.json") is None
    assert [p.name for p in (tmp_path / "targets").iterdir()] == ["churn.json"]  # no temporary file left


def test_prometheus_config_follows_the_target_files():
    config = prometheus_config(["/t/*.json"], scrape_interval="1s")
    job = config["scrape_configs"][0]
    assert job["job_name"] == JOB and job["scrape_interval"] == "1s"
    assert job["file_sd_configs"] == [{"files": ["/t/*.json"], "refresh_interval": "5s"}]


def test_caddy_exports_its_metrics_on_the_admin_api():
    config = caddy_config("churn", 8600, 8601, {8602: 1})
    assert config["apps"]["http"]["metrics"] == {}  # Caddy's http metrics on (admin /metrics)
    assert config["admin"]["listen"] == "127.0.0.1:8601"
