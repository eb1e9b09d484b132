"""The environment of a long-lived child a task starts (mlops_provider.runtime.processes)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_a_child_of_a_task_gets_the_environment_without_the_database_block():
    from mlops_provider.runtime.processes import BLOCKED_DATABASE_URL, child_environment

    blocked = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": BLOCKED_DATABASE_URL, "AIRFLOW__CORE__SQL_ALCHEMY_CONN":
               BLOCKED_DATABASE_URL, "KEEP": "1"}  # fmt: skip
    assert child_environment(blocked) == {"KEEP": "1"}
    real = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://db/airflow"}
    assert child_environment(real) == real  # a real URL (outside a task) is the child's too
