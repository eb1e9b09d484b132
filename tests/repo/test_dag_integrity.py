"""Every DAG file loads in a real DagBag and follows the project's conventions."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

DAG_FILES = sorted(p for p in (PROJECT_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_there_are_dag_files():
    assert DAG_FILES, "dags/ has no DAG file"


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_file_defines_a_dag(dagbag):
    files_with_dags = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert {p.name for p in DAG_FILES} <= files_with_dags


@pytest.mark.parametrize("dag_file", [p.name for p in DAG_FILES])
def test_dag_conventions(dagbag, dag_file):
    dags = [d for d in dagbag.dags.values() if Path(d.fileloc).name == dag_file]
    for dag in dags:
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag.dag_id} has no runbook in doc_md"
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.owner and task.owner != "airflow", f"{where} has no owner"
            # Validation fails on bad data, which does not go away by retrying: it alone may have no retries.
            if not isinstance(task, GreatExpectationsValidateOperator):
                assert task.retries >= 1, f"{where} has no retries"
                assert task.retry_delay.total_seconds() > 0, f"{where} has no retry delay"
        # A cycle makes topological ordering impossible.
        assert len(list(dag.topological_sort())) == len(dag.tasks)
