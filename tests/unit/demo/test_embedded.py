"""The embedded-Airflow harness: a start that never gets healthy leaves no process behind."""

from __future__ import annotations

import os

import pytest

from mlops_provider.demo.embedded import EmbeddedAirflow, EmbeddedAirflowError

pytestmark = pytest.mark.unit


def test_a_start_that_never_gets_healthy_stops_its_process_group(tmp_path):
    # A component that lives on but never answers the health endpoint, as a scheduler that misses the deadline.
    airflow = EmbeddedAirflow(
        airflow_bin="/bin/true", airflow_home=tmp_path, port=18799, env=dict(os.environ),
        components=[["sleep", "300"]],
    )  # fmt: skip
    with pytest.raises(EmbeddedAirflowError, match="not healthy within 2 s"):
        airflow.start(timeout=2)
    assert airflow.process is not None
    with pytest.raises(ProcessLookupError):  # the whole group is gone
        os.killpg(airflow.process.pid, 0)
