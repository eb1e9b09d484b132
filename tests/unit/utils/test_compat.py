"""``utils/compat``: on the locked Airflow (3.3) the names are Airflow's own; the task state store is optional."""

from __future__ import annotations

import pytest

from mlops_provider.utils import compat

pytestmark = pytest.mark.unit


def test_the_exceptions_are_the_task_sdks_on_this_airflow():
    from airflow.sdk import exceptions

    for name in ("AirflowException", "AirflowFailException", "AirflowNotFoundException",
                 "AirflowRescheduleException", "AirflowSkipException"):  # fmt: skip
        assert getattr(compat, name) is getattr(exceptions, name)


def test_a_cron_data_interval_timetable():
    from airflow.sdk import CronDataIntervalTimetable

    timetable = compat.cron_data_interval_timetable("0 2 * * *")
    assert isinstance(timetable, CronDataIntervalTimetable)


def test_the_task_state_store_is_none_where_airflow_has_none():
    store = object()
    assert compat.task_state_store({"task_state_store": store}) is store
    assert compat.task_state_store({}) is None  # Airflow < 3.3: the approval operators ask again on a re-run
