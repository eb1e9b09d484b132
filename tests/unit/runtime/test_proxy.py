"""The endpoint's Caddy configuration is a function of the record's weights, and reads back the same."""

from __future__ import annotations

import pytest

from mlops_provider.runtime.proxy import caddy_config, reduced, upstream_weights

pytestmark = pytest.mark.unit


def test_only_weighted_versions_are_upstreams_and_the_weights_read_back():
    config = caddy_config("churn", 8600, 8601, {8603: 5, 8602: 95, 8604: 0})
    handler = config["apps"]["http"]["servers"]["endpoint"]["routes"][0]["handle"][0]
    assert handler["upstreams"] == [{"dial": "127.0.0.1:8602"}, {"dial": "127.0.0.1:8603"}]
    # reduced by their gcd: Caddy sends each upstream its weight's count of requests in a row
    assert handler["load_balancing"]["selection_policy"] == {"policy": "weighted_round_robin", "weights": [19, 1]}
    assert handler["load_balancing"]["retries"] >= 1  # a dead backend's dial error goes to another one
    assert handler["health_checks"]["active"]["uri"] == "/ping"
    assert config["admin"]["listen"] == "127.0.0.1:8601" and config["admin"]["config"]["persist"] is False
    assert config["apps"]["http"]["servers"]["endpoint"]["listen"] == ["127.0.0.1:8600"]
    assert upstream_weights(config) == {8602: 19, 8603: 1} == reduced({8602: 95, 8603: 5, 8604: 0})
    assert reduced({8602: 80, 8603: 20}) == {8602: 4, 8603: 1} and reduced({8602: 100}) == {8602: 1}


def test_no_weighted_version_answers_503():
    config = caddy_config("churn", 8600, 8601, {8602: 0})
    handler = config["apps"]["http"]["servers"]["endpoint"]["routes"][0]["handle"][0]
    assert handler["handler"] == "static_response" and handler["status_code"] == 503
    assert upstream_weights(config) == {}
