"""A task process parses the DAG file for one DAG (Airflow's parsing context names it): the factory builds only the
DAGs of that DAG's model (or dataset), identical to the DAG processor's, and everything when it cannot tell."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

from mlops_provider.loop.factory import build_all
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

MODELS = PROJECT_ROOT / "include" / "models"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The project's two specs and a twin of churn on its dataset (a shared dataset ingest), paths absolute."""
    for variable in ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID"):
        monkeypatch.setenv(variable, "")  # recorded: the context manager leaves its variables set; undone after
        monkeypatch.delenv(variable)
    for name in ("churn_classifier", "card_fraud"):
        text = (MODELS / f"{name}.yaml").read_text().replace("../", f"{PROJECT_ROOT / 'include'}/")
        (tmp_path / f"{name}.yaml").write_text(text)
    twin = (tmp_path / "churn_classifier.yaml").read_text().replace("name: churn_classifier", "name: churn_twin", 1)
    (tmp_path / "churn_twin.yaml").write_text(twin)
    return tmp_path


def serialized(dag) -> str:
    from airflow.serialization.serialized_objects import DagSerialization

    return json.dumps(DagSerialization.serialize_dag(dag), sort_keys=True, default=str)


def in_task_of(folder, dag_id: str) -> dict:
    """What the task runner's parse builds (it sets the context the same way, and leaves it set)."""
    with _airflow_parsing_context_manager(dag_id=dag_id, task_id="some_task"):
        dags = build_all(folder)
    os.environ.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
    os.environ.pop("_AIRFLOW_PARSING_CONTEXT_TASK_ID", None)
    return dags


@pytest.mark.parametrize(
    ("dag_id", "built"),
    [
        ("card_fraud__drift_monitoring", {"card_fraud__"}),
        ("churn_twin__training", {"churn_twin__"}),
        ("customer_activity__ingest", {"customer_activity__ingest"}),  # the shared dataset's ingest alone
    ],
)
def test_a_task_process_builds_only_its_dags_model_and_the_same_dag(folder, dag_id, built):
    everything = build_all(folder)
    mine = in_task_of(folder, dag_id)
    assert dag_id in mine and set(mine) < set(everything)
    assert all(any(d == p or d.startswith(p) for p in built) for d in mine)
    for name in mine:  # what it builds is what the DAG processor built
        assert serialized(mine[name]) == serialized(everything[name])


def test_a_dag_it_cannot_place_gets_every_dag(folder):
    (folder / "broken.yaml").write_text("name: broken\n")  # a placeholder DAG broken__spec_error
    everything = build_all(folder)
    assert "broken__spec_error" in everything
    assert set(in_task_of(folder, "broken__spec_error")) == set(everything)
    assert set(in_task_of(folder, "not_a_dag_of_ours")) == set(everything)
    shutil.rmtree(folder)
