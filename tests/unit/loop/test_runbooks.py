"""The runbooks' re-run statements come from one table (``runbooks.RERUNS``) that is checked against the built
tasks: every task has a row and the runbook says it, the retries a row states are the task's, the operator's
docstring promises the same, and the integration tests a row cites exist (they re-run the task and check it)."""

from __future__ import annotations

import inspect
import re

import pytest

from mlops_provider.loop import runbooks
from mlops_provider.loop.factory import STAGES, build_dags
from mlops_provider.loop.runbooks import RERUNS
from tests.helpers import PROJECT_ROOT
from tests.unit.loop.test_factory import twin_of

pytestmark = pytest.mark.unit

#: every optional task on: the retraining schedule's rails, human approval and review, the performance check's wait
#: for the previous day's (consecutive days) and the churn spec's endpoint
ALL_ON = {
    "gate.human_approval": True,
    "retraining.human_review": True,
    "retraining.schedule": "@weekly",
    "monitoring.consecutive_days": 2,
}


@pytest.fixture(scope="module")
def dags():
    spec = twin_of("churn_all", **ALL_ON)
    return {stage: build_dags(spec)[spec.dag_id(stage)] for stage in STAGES}


def rows():
    return [(stage, task, row) for stage, tasks in RERUNS.items() for task, row in tasks.items()]


def test_every_task_of_every_stage_has_one_row_and_every_row_a_task(dags):
    assert list(RERUNS) == list(STAGES)
    for stage, dag in dags.items():
        assert sorted(RERUNS[stage]) == sorted(dag.task_ids), stage


@pytest.mark.parametrize(("stage", "task_id", "row"), rows(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_runbook_says_the_row_and_the_task_behaves_as_it_states(dags, stage, task_id, row):
    dag = dags[stage]
    task = dag.get_task(task_id)
    facts = runbooks.Facts.of(twin_of("churn_all", **ALL_ON), {s: d.dag_id for s, d in dags.items()}, "ts", "ch")
    said = " ".join(dag.doc_md.split())
    assert " ".join(runbooks.rerun(facts, stage, task_id).split()) in said, "the runbook does not quote its row"
    expected = dag.default_args["retries"] if row.retries is None else row.retries
    assert task.retries == expected, f"{task_id}: retries {task.retries}, the runbook's row says {expected}"
    if row.operator_says:
        doc = " ".join(inspect.getdoc(type(task)).split())
        assert row.operator_says in doc, f"{type(task).__name__}'s docstring does not say {row.operator_says!r}"


@pytest.mark.parametrize(("stage", "task_id", "row"), rows(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_cited_tests_exist(stage, task_id, row):
    for cited in row.shown_by:
        path, _, name = cited.partition("::")
        source = (PROJECT_ROOT / path).read_text()
        assert re.search(rf"^def {re.escape(name)}\(", source, re.M), f"{cited} does not exist"


def test_a_task_the_runbook_says_does_not_retry_has_no_retries(dags):
    """The ingest runbook tells on-call that ``validate`` does not retry by itself: the row and the task agree."""
    assert RERUNS["ingest"]["validate"].retries == 0 == dags["ingest"].get_task("validate").retries
    assert "It does not retry by itself" in dags["ingest"].doc_md


def test_the_monitoring_runbook_says_what_a_served_day_does_only_when_the_drift_check_reads_served_traffic():
    served = build_dags(twin_of("churn_served", **{"monitoring.current": "served", "monitoring.min_served_rows": 321}))
    doc = served["churn_served__drift_monitoring"].doc_md
    assert "**Served traffic**" in doc and "too_few_served_rows" in doc and "fewer than 321 captured rows" in doc
    assert "mlops lineage churn_served <request-id>" in doc
    assert "`captures/churn_served/<day>/` older than 30 day(s)" in doc  # the retention row names the window
    ingested = build_dags(twin_of("churn_ingested", **{"monitoring.current": "ingested"}))
    assert "**Served traffic**" not in ingested["churn_ingested__drift_monitoring"].doc_md
    # Either way, the run's param says how to check one day on its served traffic (or on its ingested rows).
    for dags, current in ((served, "served"), (ingested, "ingested")):
        dag = next(d for i, d in dags.items() if i.endswith("__drift_monitoring"))
        assert dag.params["current"] == current and '`{"current": "served"}`' in dag.doc_md
        assert dag.get_task("drift_report").current == "{{ params.current }}"
