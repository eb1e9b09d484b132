"""Jinja templates shared by operators and DAGs."""

from __future__ import annotations

#: Date (YYYY-MM-DD) of the start of the run's data interval: the day a nightly run processes. In Airflow 3
#: ``{{ ds }}`` is the logical date, which for manual runs is the *end* of the inferred interval.
INTERVAL_DATE = "{{ data_interval_start | ds }}"
