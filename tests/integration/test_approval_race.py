"""A human's answer survives Airflow 3.3.2's re-run of an approval task (issue 27, item 4), with the real task
runner, execution API, metadata DB and the scheduler's own executor-event handling, in-process.

The race, as the scheduler plays it: the approval task parks awaiting input; a human answers within seconds, so
the task is resumed (scheduled, then queued) before the scheduler has handled the executor's "success" of the
parked workload; ``SchedulerJobRunner.process_executor_events`` then takes that stale event for an external state
change ("state attribute is queued") and sends the task up for retry without running the resumed try. Try 2
starts from ``execute`` again; Airflow's HITL request upsert wipes the response an earlier try received."""

from __future__ import annotations

import datetime as dt
import json

import pytest

pytestmark = pytest.mark.integration

MODEL = "race_model"
DAG_ID = "approval_race"
SETTLE = " rerun_settle_seconds=0.1,"

DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from mlops_provider.operators.approval import PromotionApprovalOperator

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)):
    PromotionApprovalOperator(
        task_id="approve", model_name="{model}", evaluation={evaluation!r}, retries=2,
        response_timeout=dt.timedelta(hours=1),{settle}
    )
"""


@pytest.fixture
def race(airflow_db, mlops_home, tmp_path):
    """A one-task DAG (the promotion approval) serialized into the metadata DB, a registered model version and
    its verdict ledger; a fresh run of it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    from mlops_provider.hooks.mlflow import MlflowHook

    client = MlflowHook().get_client()
    if MODEL not in [m.name for m in client.search_registered_models()]:
        client.create_registered_model(MODEL)
    version = str(client.create_model_version(MODEL, source=str(tmp_path)).version)
    ledger_path = mlops_home / "reports" / "ledgers" / MODEL / f"v{version}" / "a1.json"
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_text(json.dumps({
        "model_name": MODEL, "challenger_version": version, "champion_version": None, "decision": "promote",
        "reason": "first model", "challenger_metrics": {"overall": {"roc_auc": 0.71}}, "checks": [],
        "evaluation_data": {"rows": 10, "path": "data.parquet", "rev": "a" * 40},
    }))  # fmt: skip
    folder = tmp_path / "dags"
    folder.mkdir()
    evaluation = {"challenger_version": version, "ledger_path": str(ledger_path)}
    (folder / "approval_race.py").write_text(
        DAG_FILE.format(dag_id=DAG_ID, model=MODEL, evaluation=evaluation, settle=SETTLE)
    )
    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        scheduler_dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        run = scheduler_dag.create_dagrun(
            run_id=f"race_{version}", logical_date=None, data_interval=None, run_after=dt.datetime.now(dt.timezone.utc),
            conf={}, run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.RUNNING,
            session=session,
        )  # fmt: skip
        run_id = run.run_id
    yield {"task": bag.get_dag(DAG_ID).get_task("approve"), "run_id": run_id, "version": version,
           "ledger": ledger_path, "client": client}  # fmt: skip
    with create_session() as session:
        session.query(DagRun).filter(DagRun.dag_id == DAG_ID).delete()


def task_instance(session, run_id: str):
    from airflow.models.taskinstance import TaskInstance

    return session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id, task_id="approve").one()


def run_try(task, run_id: str, *, resumed: bool = False) -> str:
    """The scheduler starts a try (up_for_retry or none -> scheduled with the next try number), or resumes the
    parked one (``resumed``); the task runner runs it (and, as ``dag.test`` does, a trigger it defers to,
    inline); the state it ends in."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        ti = task_instance(session, run_id)
        if not resumed:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
    with create_session() as session:
        ti = task_instance(session, run_id)
        session.expunge(ti)
    _run_task(ti=ti, task=task, run_triggerer=True)
    with create_session() as session:
        return str(
            session.query(TaskInstance.state).filter_by(id=ti.id).scalar() or task_instance(session, run_id).state
        )


def answer(run_id: str, option: str, note: str) -> None:
    """A human answers as the REST API's PATCH .../hitlDetails does (core_api/routes/public/hitl.py): the response
    on the HITL row, and the parked task resumed (``handle_event_submit``: scheduled, the answer in next_kwargs)."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        ti = task_instance(session, run_id)
        assert ti.state == TaskInstanceState.AWAITING_INPUT
        detail = session.query(HITLDetail).filter_by(ti_id=ti.id).one()
        detail.responded_by = {"id": "7", "name": "ana"}
        detail.responded_at = dt.datetime.now(dt.timezone.utc)
        detail.chosen_options = [option]
        detail.params_input = {"note": note}
        session.add(detail)
        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)


def stale_success_event_while_queued(run_id: str) -> None:
    """The scheduler queues the resumed task, then handles the executor's late "success" of the parked workload
    (same task instance key): the real ``SchedulerJobRunner.process_executor_events``."""
    from airflow.executors.local_executor import LocalExecutor
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    executor = LocalExecutor()  # not started: it knows no workload, as after the parked one's exit removed the key
    with create_session() as session:
        ti = task_instance(session, run_id)
        assert ti.state == TaskInstanceState.SCHEDULED and ti.next_method
        ti.state = TaskInstanceState.QUEUED
        executor.event_buffer[ti.key] = (TaskInstanceState.SUCCESS, None)
    with create_session() as session:
        SchedulerJobRunner.process_executor_events(
            executor=executor, job_id=None, scheduler_dag_bag=DBDagBag(), session=session
        )
    with create_session() as session:
        assert task_instance(session, run_id).state == TaskInstanceState.UP_FOR_RETRY


@pytest.fixture
def triggerer_hitl_route(monkeypatch):
    """``dag.test``'s in-process trigger runner answers a trigger's requests with the task supervisor, which has no
    route for reading a HITL response; the triggerer has one (triggerer_job_runner.py: GetHITLDetailResponse ->
    ``client.hitl.get_detail_response``). Give it the same route, calling the same execution API."""
    from airflow.jobs.triggerer_job_runner import HITLDetailResponseResult
    from airflow.sdk.execution_time.comms import GetHITLDetailResponse
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    original = InProcessTestSupervisor._handle_request

    def handle(self, msg, log, req_id):
        if isinstance(msg, GetHITLDetailResponse):
            resp = HITLDetailResponseResult.from_api_response(response=self.client.hitl.get_detail_response(msg.ti_id))
            self.send_msg(resp, request_id=req_id)
            return
        original(self, msg, log, req_id)

    monkeypatch.setattr(InProcessTestSupervisor, "_handle_request", handle)


def test_an_answer_given_before_the_scheduler_re_runs_the_task_is_honoured_and_recorded_once(
    race, triggerer_hitl_route
):
    run_id, version = race["run_id"], race["version"]
    assert run_try(race["task"], run_id) == "awaiting_input"  # try 1 asks, and parks
    answer(run_id, "Approve", "metrics reviewed")
    stale_success_event_while_queued(run_id)  # the resumed try 1 never runs: up for retry

    assert run_try(race["task"], run_id) == "success"  # try 2 finds the answer instead of asking again

    ledger = json.loads(race["ledger"].read_text())
    assert ledger["human"]["decision"] == "approve" and ledger["human"]["by"] == "ana"
    assert ledger["human"]["note"] == "metrics reviewed"
    assert ledger["human_approvals"] == [ledger["human"]]
    tags = race["client"].get_model_version(MODEL, version).tags
    assert tags["approval.decision"] == "approve" and tags["approval.by"] == "ana"


def test_a_clear_after_the_answer_was_recorded_honours_it_again_without_a_second_record(race, triggerer_hitl_route):
    from airflow.models.taskinstance import clear_task_instances
    from airflow.utils.session import create_session

    run_id = race["run_id"]
    assert run_try(race["task"], run_id) == "awaiting_input"
    answer(run_id, "Reject", "segment looks off")
    assert run_try(race["task"], run_id, resumed=True) == "success"  # the resumed try records the answer
    with create_session() as session:
        clear_task_instances([task_instance(session, run_id)], session)  # on-call clears `approve`

    assert run_try(race["task"], run_id) == "success"

    ledger = json.loads(race["ledger"].read_text())
    assert ledger["human"]["decision"] == "reject" and ledger["human"]["by"] == "ana"
    assert ledger["human_approvals"] == [ledger["human"]]


def test_a_clear_after_the_timeout_asks_again(race, triggerer_hitl_route):
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import clear_task_instances
    from airflow.utils.session import create_session

    from mlops_provider.operators.approval import TIMEOUT_BY

    run_id = race["run_id"]
    assert run_try(race["task"], run_id) == "awaiting_input"
    with create_session() as session:  # nobody answered: the deadline passes
        task_instance(session, run_id).trigger_timeout = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()  # the scheduler's sweep takes the default
    assert run_try(race["task"], run_id, resumed=True) == "success"
    with create_session() as session:
        clear_task_instances([task_instance(session, run_id)], session)  # on-call clears `approve`

    assert run_try(race["task"], run_id) == "awaiting_input"  # a timeout is no answer: asked again

    with create_session() as session:
        detail = session.query(HITLDetail).filter_by(ti_id=task_instance(session, run_id).id).one()
        assert not detail.response_received
    ledger = json.loads(race["ledger"].read_text())
    assert [r["by"] for r in ledger["human_approvals"]] == [TIMEOUT_BY]
