"""Helpers for operators' templated fields (Airflow renders them with Jinja before ``execute``): the date
expression the DAGs template, and the reading of a field that holds an object.

"Template" in this package means a Jinja template: a templated field, or a page of ``render/templates``. The
files `mlops new-model` copies are starter files (:func:`mlops_provider.cli.scaffold.starter_dir`).
"""

from __future__ import annotations

import json
from typing import Any

#: Date (YYYY-MM-DD) of the start of the run's data interval: the day a nightly run processes. In Airflow 3
#: ``{{ ds }}`` is the logical date, which for manual runs is the *end* of the inferred interval.
INTERVAL_DATE = "{{ data_interval_start | ds }}"
#: Date (YYYY-MM-DD) of the run's logical date: the day of a run that another DAG's task started for a given day (a
#: ``TriggerDagRunOperator`` with ``logical_date``), whose data interval Airflow infers from the time it was made.
LOGICAL_DATE = "{{ logical_date | ds }}"


def json_object(value: Any, field: str) -> dict[str, Any]:
    """A templated field that holds an object: a dict, or a JSON string (``{{ ... | tojson }}``); empty -> {}.
    (An ``XComArg`` given at authoring time arrives here resolved to its value.)

    Raises AirflowFailException naming ``field`` when it is not an object: retrying would not fix it.
    """
    from mlops_provider.utils.compat import AirflowFailException

    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise AirflowFailException(f"{field}: not a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise AirflowFailException(f"{field}: expected an object, got {type(value).__name__}")
    return value
