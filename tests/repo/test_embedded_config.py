"""config/embedded.env: a second instance on one machine is configured by ``AIRFLOW__API__PORT`` alone."""

from __future__ import annotations

import os

import pytest

from tests.conftest import embedded_environment
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

DERIVED = (
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
)


def clean_base(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS"))}
    return {**base, **extra}


def test_default_instance_uses_8080_and_its_neighbours() -> None:
    env = embedded_environment(PROJECT_ROOT, base=clean_base())
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:8080/execution/"
    assert (env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"], env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]) == (
        "8081",
        "8082",
    )


def test_the_api_port_alone_moves_every_port_the_tasks_and_log_servers_use() -> None:
    first = embedded_environment(PROJECT_ROOT, base=clean_base())
    second = embedded_environment(PROJECT_ROOT, base=clean_base(AIRFLOW__API__PORT="9180"))
    assert second["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:9180/execution/"
    assert second["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "9181"
    assert second["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "9182"
    assert not {first[k] for k in DERIVED} & {second[k] for k in DERIVED}


def test_an_explicit_setting_still_wins() -> None:
    env = embedded_environment(
        PROJECT_ROOT, base=clean_base(AIRFLOW__API__PORT="9180", AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="7000")
    )
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "7000"


def test_the_homes_alone_move_the_metadata_db_and_the_source_db(tmp_path) -> None:
    """Finding 8 of the on-call review: the DB paths were derived from the checkout, so a second instance from one
    checkout with its own AIRFLOW_HOME and MLOPS_HOME shared the first one's metadata and source databases."""
    import json

    airflow_home, mlops_home = tmp_path / "second" / "airflow", tmp_path / "second" / "mlops"
    env = embedded_environment(
        PROJECT_ROOT, base=clean_base(AIRFLOW_HOME=str(airflow_home), MLOPS_HOME=str(mlops_home))
    )
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{airflow_home}/airflow.db"
    assert json.loads(env["AIRFLOW_CONN_MLOPS_SOURCE"]) == {"conn_type": "sqlite", "host": f"{mlops_home}/source.db"}
    default = embedded_environment(PROJECT_ROOT, base=clean_base())  # the first instance: under the checkout
    assert default["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{PROJECT_ROOT}/.airflow/airflow.db"
    assert json.loads(default["AIRFLOW_CONN_MLOPS_SOURCE"])["host"] == f"{PROJECT_ROOT}/.mlops/source.db"


def test_a_task_waits_30_s_for_the_execution_api_unless_set() -> None:
    """Airflow's 5 s default failed task start-ups (httpx.ReadTimeout) on a saturated 2-core machine."""
    assert embedded_environment(PROJECT_ROOT, base=clean_base())["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] == "30"
    env = embedded_environment(PROJECT_ROOT, base=clean_base(AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="12"))
    assert env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] == "12"


def test_the_scheduler_loops_again_within_a_quarter_second_unless_set() -> None:
    """Issue 31: with Airflow's 1 s idle sleep, every hop between two tasks of the demo's one-day-at-a-time monitoring
    chain waited for the next scheduler loop; the embedded default sleeps 0.25 s, and a setting still wins."""
    assert embedded_environment(PROJECT_ROOT, base=clean_base())["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] == (
        "0.25"
    )
    env = embedded_environment(PROJECT_ROOT, base=clean_base(AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="1"))
    assert env["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] == "1"
