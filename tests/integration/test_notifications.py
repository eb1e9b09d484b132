"""On-call mail through a real SMTP server (aiosmtpd on 127.0.0.1): a quarantined day through the real task
runner (``dag.test()`` of a model whose spec asks for mail), and one mail per other event kind from the notifier
the DAG factory attaches; a re-run of the same event in the same run sends nothing. Mail down (a closed port, a
server that accepts and never answers): the callback ends within the supervisor's limit, the mail waits in the
outbox, and the outbox DAG sends it once when mail works again; the health page lists it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range
from mlops_provider.notifications.mail import HELD_BACK_XCOM_KEY, TRIGGERED_XCOM_KEY, MlopsEventNotifier
from mlops_provider.runtime.model_servers import free_port
from tests.helpers import PROJECT_ROOT, RecordingTaskInstance

pytestmark = pytest.mark.integration

BAD_DAY = dt.date(2026, 11, 11)
TO = "oncall@example.com"


class Inbox:
    """What the SMTP server received, as parsed messages."""

    def __init__(self, refuse: str | None = None) -> None:
        self.mails: list[email.message.EmailMessage] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        if address == self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802 - aiosmtpd's hook
        self.mails.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["subject"]) for m in self.mails]

    def body(self, subject: str) -> str:
        (mail,) = [m for m in self.mails if str(m["subject"]) == subject]
        return mail.get_body(("html",)).get_content()


def point_smtp_at(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                    "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "mlops@example.com"}}),
    )  # fmt: skip


@contextmanager
def serve_inbox(monkeypatch: pytest.MonkeyPatch, refuse: str | None = None) -> Iterator[Inbox]:
    """A working aiosmtpd server (refusing the recipient ``refuse``), the ``smtp_default`` connection pointing at
    it."""
    from aiosmtpd.controller import Controller

    box = Inbox(refuse)
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    point_smtp_at(monkeypatch, port)
    try:
        yield box
    finally:
        controller.stop()


@contextmanager
def silent_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A TCP server that accepts connections and never answers (no SMTP greeting)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    point_smtp_at(monkeypatch, listener.getsockname()[1])
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def inbox(monkeypatch):
    with serve_inbox(monkeypatch) as box:
        yield box


def spec_with_mail(folder: Path) -> Path:
    """The churn spec with notifications to on-call, its relative paths made absolute (it lives elsewhere)."""
    text = (PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml").read_text()
    text = text.replace("../", f"{PROJECT_ROOT}/include/")
    text += f"\nnotifications:\n  email: [{TO}]\n"
    folder.mkdir()
    (folder / "churn_classifier.yaml").write_text(text)
    return folder


def test_a_quarantined_day_mails_once_with_a_working_link(airflow_db, mlops_home, inbox, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from fastapi.testclient import TestClient

    from tests.integration.test_report_pages import unauthenticated_app

    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [BAD_DAY],
               SourceSpec(seed=3, bad_dates={BAD_DAY: "duplicate_keys"}))  # fmt: skip
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(spec_with_mail(tmp_path / "models")))
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py")).get_dag("churn_classifier__ingest")
    assert dag.get_task("validate").on_failure_callback  # the factory attached the notifier
    logical = pendulum.datetime(BAD_DAY.year, BAD_DAY.month, BAD_DAY.day, tz="UTC").add(days=1)

    first = dag.test(logical_date=logical)
    assert first.state == "failed"
    subject = f"[mlops] churn_classifier: partition {BAD_DAY} of customer_activity quarantined"
    assert inbox.subjects() == [subject]
    assert inbox.mails[0]["to"] == TO and inbox.mails[0]["from"] == "mlops@example.com"
    body = inbox.body(subject)
    assert "expect_compound_columns_to_be_unique" in body or "unique" in body  # the failed check, the reason
    result_url = re.search(r'href="http://[^/"]+(/mlops/reports/gx/[^"]+/result\.json)"', body)
    assert result_url, body
    page = TestClient(unauthenticated_app()).get(result_url.group(1).removeprefix("/mlops"))
    assert page.status_code == 200 and '"success": false' in page.text  # the link works: the validation result
    assert f"/dags/churn_classifier__ingest/runs/{first.run_id.replace(':', '%3A').replace('+', '%2B')}" in body

    # On-call clears validate and it fails again in the same run: the same event, no second mail.
    (notifier,) = dag.get_task("validate").on_failure_callback
    summary = {"dataset": "customer_activity", "partition": str(BAD_DAY)}
    ti = RecordingTaskInstance(
        dag_id=dag.dag_id, run_id=first.run_id, task_id="validate", pushed={"validation_summary": summary}
    )
    notifier({"ti": ti})
    assert len(inbox.mails) == 1
    # A new run of the day (a new manual run, a backfill) is a new event: it mails.
    assert dag.test(logical_date=logical).state == "failed"
    assert inbox.subjects() == [subject, subject]


def call(notifier: MlopsEventNotifier, state: str, pushed: dict, **context) -> None:
    ti = RecordingTaskInstance(dag_id="churn_classifier__promotion", task_id=context.pop("task_id", "t"),
                               run_id="manual__2026-11-28T00:00:00+00:00", state=state, pushed=pushed)  # fmt: skip
    notifier({"ti": ti, **context})


def test_one_mail_per_event_kind_with_subject_reason_and_links(mlops_home, inbox):
    def notifier(event: str, outcome: str = "success") -> MlopsEventNotifier:
        return MlopsEventNotifier(
            event=event, outcome=outcome, model_name="churn_classifier", to=[TO], base_url="http://airflow:8080"
        )

    ledger = mlops_home / "reports" / "ledgers" / "churn_classifier" / "v3" / "a.json"
    ledger.parent.mkdir(parents=True)
    ledger.write_text("{}")
    call(notifier("drift"), "success", {"return_value": {
        "reason": "drift", "partition": "2026-11-20", "drift_share": 0.46, "threshold": 0.3,
        "drifted_columns": ["tenure_days"], "report_url": "/mlops/reports/drift/churn_classifier/2026-11-20/a.html"}},
        task_id="drift_sensor")  # fmt: skip
    call(notifier("retraining"), "success", {TRIGGERED_XCOM_KEY: {
        "dag_id": "churn_classifier__training", "run_id": "drift__customer_activity__2026-11-20", "reason": "drift"}},
        task_id="trigger_training")  # fmt: skip
    held = "budget: 2 drift-triggered trainings in the last 7 days (max 2)"
    call(notifier("retraining", "skipped"), "skipped", {HELD_BACK_XCOM_KEY: held}, task_id="trigger_training_2")
    call(notifier("gate_rejection"), "success", {"return_value": {
        "decision": "reject", "challenger_version": "3", "champion_version": "2", "reason": "roc_auc +0.001 < margin",
        "failed_checks": ["min_improvement(roc_auc)"], "ledger_path": str(ledger)}}, task_id="evaluate")  # fmt: skip
    call(notifier("shadow_check_failure", "failed"), "failed", {}, task_id="shadow_check",
         exception=RuntimeError("p95 812 ms over 500 ms"))  # fmt: skip
    call(notifier("promotion"), "success", {"return_value": {"champion": "4", "previous": "2", "changed": True}},
         task_id="promote")  # fmt: skip
    call(notifier("rollback"), "success", {"return_value": {"champion": "2", "rolled_back": "4",
         "reason": "segment enterprise fell"}}, task_id="rollback")  # fmt: skip

    expected = {
        "[mlops] churn_classifier: drift alarm for 2026-11-20": ("tenure_days", "drift report"),
        "[mlops] churn_classifier: retraining triggered (drift)": ("drift__customer_activity__2026-11-20",
                                                                  "http://airflow:8080/dags/churn_classifier__training/runs/"),
        "[mlops] churn_classifier: retraining held back by a rail": ("budget: 2 drift-triggered", "task in Airflow"),
        "[mlops] churn_classifier: challenger v3 rejected by the gate": ("min_improvement(roc_auc)",
                                                                        "/mlops/ledgers/churn_classifier/v3/a"),
        "[mlops] churn_classifier: shadow check failed": ("p95 812 ms over 500 ms", "the task in Airflow"),
        "[mlops] churn_classifier: v4 is the new champion": ("previous champion is v2", "the task in Airflow"),
        "[mlops] churn_classifier: rolled back to v2": ("segment enterprise fell", "the task in Airflow"),
    }  # fmt: skip
    assert sorted(inbox.subjects()) == sorted(expected)
    for subject, (reason, link) in expected.items():
        body = inbox.body(subject)
        assert reason in body and link in body, (subject, body)
        assert (
            "http://airflow:8080/dags/churn_classifier__promotion/runs/manual__2026-11-28T00%3A00%3A00%2B00%3A00"
            in body
        )

    call(notifier("promotion"), "success", {"return_value": {"champion": "4", "previous": "2", "changed": True}},
         task_id="promote")  # a cleared and re-run promote of the same run: no second mail  # fmt: skip
    assert len(inbox.mails) == len(expected)
    assert len(list((mlops_home / "notifications").glob("*.json"))) == len(expected)


def outbox(home: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home / "notifications" / "outbox").glob("*.json"))]


def sent_markers(home: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home / "notifications").glob("*.json"))]


def test_mail_down_keeps_the_quarantine_mail_and_the_outbox_dag_sends_it_once(
    airflow_db, mlops_home, tmp_path, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag

    from mlops_provider.web.health import collect, render

    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [BAD_DAY],
               SourceSpec(seed=3, bad_dates={BAD_DAY: "duplicate_keys"}))  # fmt: skip
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(spec_with_mail(tmp_path / "models")))
    point_smtp_at(monkeypatch, free_port())  # nothing listens there: connection refused
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py"))
    dag = bag.get_dag("churn_classifier__ingest")
    logical = pendulum.datetime(BAD_DAY.year, BAD_DAY.month, BAD_DAY.day, tz="UTC").add(days=1)
    run = dag.test(logical_date=logical)
    assert run.state == "failed"

    subject = f"[mlops] churn_classifier: partition {BAD_DAY} of customer_activity quarantined"
    (queued,) = outbox(mlops_home)
    assert queued["subject"] == subject and queued["to"] == [TO] and queued["model"] == "churn_classifier"
    assert "ConnectionRefusedError" in queued["error"] and queued["attempts"] > 1  # retried, then kept
    assert "expect_compound_columns_to_be_unique" in queued["html"] or "unique" in queued["html"]
    assert sent_markers(mlops_home) == []
    (row,) = collect("churn_classifier")["notifications"]
    assert row["status"] == "unsent" and "ConnectionRefusedError" in row["error"]
    page = render(collect("churn_classifier"))
    assert "quarantined" in page and "ConnectionRefusedError" in page and "unsent" in page

    # On-call clears validate while mail is still down: the mail is not queued twice.
    (notifier,) = dag.get_task("validate").on_failure_callback
    summary = {"dataset": "customer_activity", "partition": str(BAD_DAY)}
    notifier({"ti": RecordingTaskInstance(dag_id=dag.dag_id, run_id=run.run_id, task_id="validate",
                                          pushed={"validation_summary": summary})})  # fmt: skip
    assert len(outbox(mlops_home)) == 1

    with serve_inbox(monkeypatch) as inbox:  # mail works again
        from mlops_provider.notifications.mail import OUTBOX_DAG_ID

        sender = bag.get_dag(OUTBOX_DAG_ID)
        assert sender is not None, sorted(bag.dag_ids)
        assert sender.test().state == "success"
        assert inbox.subjects() == [subject]
        assert inbox.mails[0]["to"] == TO and "/mlops/reports/gx/" in inbox.body(subject)
        assert sender.test().state == "success"  # a second flush sends nothing again
        notifier({"ti": RecordingTaskInstance(dag_id=dag.dag_id, run_id=run.run_id, task_id="validate",
                                              pushed={"validation_summary": summary})})  # fmt: skip
        assert inbox.subjects() == [subject]  # the event was mailed: a re-run does not mail it again
    (marker,) = sent_markers(mlops_home)
    assert marker["via"] == "outbox" and "ConnectionRefusedError" in marker["error"]
    assert len(outbox(mlops_home)) == 1  # the outbox entry stays, as evidence of what happened
    (row,) = collect("churn_classifier")["notifications"]
    assert row["status"] == "sent" and row["sent_at"] and "ConnectionRefusedError" in row["error"]


def test_a_server_that_never_answers_fails_the_mail_within_the_callback_limit_and_queues_it(
    mlops_home, monkeypatch, caplog
):
    from airflow.configuration import conf

    # Airflow's supervisor kills a task process whose callbacks still run this long after the task ended.
    limit = conf.getfloat("core", "task_success_overtime")
    notifier = MlopsEventNotifier(event="promotion", outcome="success", model_name="churn_classifier", to=[TO],
                                  base_url="http://airflow:8080")  # fmt: skip
    pushed = {"return_value": {"champion": "4", "previous": "2", "changed": True}}
    raised: list[BaseException] = []

    def callback() -> None:
        try:
            call(notifier, "success", pushed, task_id="promote")
        except BaseException as error:  # noqa: BLE001 - reported below
            raised.append(error)

    with silent_server(monkeypatch), caplog.at_level(logging.WARNING, logger="mlops_provider.notifications.mail"):
        worker = threading.Thread(target=callback, daemon=True)
        worker.start()
        worker.join(timeout=limit)
        assert not worker.is_alive(), f"the mail callback outlived task_success_overtime ({limit} s): killed, no log"
    assert raised == []  # a mail that cannot go out does not fail the callback: it is kept
    subject = "[mlops] churn_classifier: v4 is the new champion"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(subject in m and "outbox" in m and TO in m for m in errors), errors
    (queued,) = outbox(mlops_home)
    assert queued["subject"] == subject and "timed out" in queued["error"]

    with serve_inbox(monkeypatch) as inbox:
        from mlops_provider.notifications.mail import flush_outbox

        assert flush_outbox() == {"sent": [subject], "unsent": []}
        assert flush_outbox() == {"sent": [], "unsent": []}
        assert inbox.subjects() == [subject]
        assert "previous champion is v2" in inbox.body(subject)


def test_the_outbox_sender_sends_the_others_and_fails_while_a_mail_is_refused(mlops_home, monkeypatch):
    from airflow.sdk.exceptions import AirflowException

    from mlops_provider.operators.notifications import SendNotificationOutboxOperator
    from mlops_provider.web.health import collect

    def notifier(event: str, to: str) -> MlopsEventNotifier:
        return MlopsEventNotifier(event=event, outcome="success", model_name="churn_classifier", to=[to])

    point_smtp_at(monkeypatch, free_port())  # mail down while both events happen
    call(notifier("promotion", "gone@example.com"), "success",
         {"return_value": {"champion": "4", "previous": "2", "changed": True}}, task_id="promote")  # fmt: skip
    rolled_back = {"champion": "2", "rolled_back": "4", "reason": "bad segment"}
    call(notifier("rollback", TO), "success", {"return_value": rolled_back}, task_id="rollback")
    assert len(outbox(mlops_home)) == 2

    sender = SendNotificationOutboxOperator(task_id="send_outbox")
    with serve_inbox(monkeypatch, refuse="gone@example.com") as inbox:
        with pytest.raises(AirflowException, match=r"1 notification mail\(s\) still not sent.*550"):
            sender.execute({"ti": RecordingTaskInstance()})
        assert inbox.subjects() == ["[mlops] churn_classifier: rolled back to v2"]
    rows = collect("churn_classifier")["notifications"]
    assert [(r["status"], r["event"]) for r in rows] == [("unsent", "promotion"), ("sent", "rollback")]
    (queued,) = [q for q in outbox(mlops_home) if q["event"] == "promotion"]
    assert "ConnectionRefusedError" in queued["error"]  # the outbox entry keeps its first error (never rewritten)
    assert "550" in rows[0]["error"] and rows[0]["attempts"] > queued["attempts"]  # the page shows the latest
