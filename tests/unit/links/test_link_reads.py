"""An extra link read back in the task that made it costs no Execution API call (issue 31 item 4).

After ``execute()`` Airflow's task runner asks every extra link of the operator for its URL and stores it under the
link's XCom key. The links used to read that URL back from XCom (one GET a link and task, 7 a model-day, and a 404
for a link the try did not make) although the same process had just stored it: the operator now remembers what it
persisted in this try, and a link of an operator that persisted any link answers from it.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlops_provider.links import extra_links
from mlops_provider.links.extra_links import DriftReportLink, MlflowRunLink

pytestmark = pytest.mark.unit


class FakeTi:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


@pytest.fixture
def reads(monkeypatch):
    """The XCom reads the links make."""
    import airflow.sdk.execution_time.xcom as xcom

    calls: list[str] = []

    def get_value(*, ti_key, key):
        calls.append(key)
        return "/from/xcom"

    monkeypatch.setattr(xcom.XCom, "get_value", staticmethod(get_value))
    return calls


def test_links_the_try_persisted_answer_without_reading_xcom(reads):
    operator, ti = SimpleNamespace(), FakeTi()
    MlflowRunLink.persist({"ti": ti, "task": operator}, "/mlops/mlflow/runs/r1")
    assert ti.pushed == {MlflowRunLink().xcom_key: "/mlops/mlflow/runs/r1"}  # still stored while the task runs
    assert MlflowRunLink().get_link(operator, ti_key=None) == "/mlops/mlflow/runs/r1"
    assert DriftReportLink().get_link(operator, ti_key=None) == ""  # not made by this try
    assert reads == []


def test_an_operator_that_persisted_nothing_reads_xcom_as_before(reads):
    assert MlflowRunLink().get_link(SimpleNamespace(), ti_key=None) == "/from/xcom"
    assert reads == [MlflowRunLink().xcom_key]


def test_a_context_without_the_task_still_persists(reads):
    ti = FakeTi()
    extra_links.ValidationResultLink.persist({"ti": ti}, "/mlops/reports/r.json")
    assert ti.pushed == {"_link_ValidationResultLink": "/mlops/reports/r.json"}
