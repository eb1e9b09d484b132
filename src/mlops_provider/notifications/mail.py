"""Mail on-call about what the loop decided on its own: a quarantined partition, a drift or performance alarm, a
retraining triggered or held back by a rail, a gate rejection or a failed shadow check, a promotion, a rollback.

:class:`MlopsEventNotifier` is an Airflow notifier (``on_success_callback`` / ``on_failure_callback`` /
``on_skipped_callback`` of the task that decides the event). The message says what happened, why, and links to
act on (the task in the Airflow UI, the report, the verdict ledger). It is sent once per event and task run: a
cleared and re-run task that reaches the same event in the same DAG run sends nothing again (a record per sent
mail under ``<storage root>/notifications``).

Mail is not lost when the SMTP server is down. The notifier runs in the task process after the task reported its
state, and Airflow's supervisor kills that process ``[core] task_success_overtime`` (20 s) later, with no log line:
so every SMTP operation is bounded (:data:`SMTP_TIMEOUT`, below the connection's ``timeout`` extra, 30 s by default)
and the mail is tried :data:`SEND_ATTEMPTS` times with backoff within :func:`callback_budget`. A mail still not sent
is written to the outbox (``<storage root>/notifications/outbox/<id>.json``: message, recipients, error, attempts;
one file per event and task run, never rewritten) and logged at ERROR; :func:`flush_outbox` (the DAG
:data:`OUTBOX_DAG_ID` the factory adds) sends it later, once, and the model health page lists it.

Why the SMTP provider's ``SmtpHook`` and not its ``SmtpNotifier``: ``SmtpNotifier`` renders subject and body
as Jinja templates with the task context, and our messages carry values from data and records (a category, a
failed check, a reason): rendering them as templates would execute whatever ``{{ ... }}`` they contain. The body
is rendered here by the plugin's autoescaping templates and handed to the hook as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseNotifier

from mlops_provider.exceptions import MailNotSent

log = logging.getLogger(__name__)

#: the callback of each task outcome (a notifier is attached to the callback of the outcome it reports)
CALLBACKS = {"success": "on_success_callback", "failed": "on_failure_callback", "skipped": "on_skipped_callback"}

#: event -> the task outcomes that can be it
EVENT_OUTCOMES: dict[str, tuple[str, ...]] = {
    "quarantine": ("failed",),
    "drift": ("success",),
    "retraining": ("success", "skipped"),
    "gate_rejection": ("success",),
    "shadow_check_failure": ("failed",),
    "promotion": ("success",),
    "rollback": ("success",),
    "canary_rollback": ("failed",),
}

#: event -> when it is sent (the task and callback the DAG factory attaches it to)
EVENTS: dict[str, str] = {
    "quarantine": "validate failed: the day's partition was quarantined",
    "drift": "drift_sensor decided to retrain (reason drift, performance, prediction drift or estimate)",
    "retraining": "trigger_training triggered a training run, or a rail held it back",
    "gate_rejection": "evaluate rejected the challenger",
    "shadow_check_failure": "shadow_check failed: the serving container disagrees with the registry or is slow",
    "promotion": "promote moved the champion alias",
    "rollback": "rollback restored the previous champion",
    "canary_rollback": "canary_rollout failed: an alarm rolled the live canary back (or the rollout broke)",
}


#: Seconds one SMTP operation (connect, greeting, each command) may take before an attempt fails.
SMTP_TIMEOUT = 4
#: Attempts of one mail in a task callback (backoff 0.5 s, 1 s, ... between them), within :func:`callback_budget`.
SEND_ATTEMPTS = 3
#: The DAG that sends the outbox (added by the DAG factory when a spec mails).
OUTBOX_DAG_ID = "mlops_notification_outbox"


@dataclass(frozen=True)
class Notice:
    """One message: subject, what happened, why, and links to act on (``[(text, url)]``)."""

    event: str
    subject: str
    what: str
    why: str
    links: list[tuple[str, str]] = field(default_factory=list)


def _absolute(base_url: str, url: str | None) -> str | None:
    if not url:
        return None
    return url if "://" in url else base_url.rstrip("/") + "/" + url.lstrip("/")


def task_url(base_url: str, dag_id: str, run_id: str, task_id: str) -> str:
    """The task instance in the Airflow 3 UI."""
    from urllib.parse import quote

    return f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}"


def build_notice(
    event: str,
    model: str,
    result: dict[str, Any] | None,
    *,
    state: str,
    task: str,
    base_url: str,
    error: str | None = None,
    held_back: str | None = None,
) -> Notice | None:
    """The message for ``event`` given the task's result (its XCom return value or summary), the state it
    ended in (``success``, ``failed``, ``skipped``) and its error; ``None`` when the run is not that event (a
    promoted challenger is not a rejection, an unchanged champion is not a promotion)."""
    r = result or {}
    links: list[tuple[str, str]] = [("the task in Airflow", task)]

    def link(text: str, url: str | None) -> None:
        absolute = _absolute(base_url, url)
        if absolute:
            links.append((text, absolute))

    if event == "quarantine":
        if state != "failed":
            return None
        checks = ", ".join(
            f"{f.get('expectation')}({f.get('column') or 'table'})" for f in r.get("failed_expectations", [])[:8]
        )
        where = f" It was moved to {r['quarantined_to']}." if r.get("quarantined_to") else ""
        if r.get("result_path"):
            link("validation result", _report_url(r["result_path"]))
        return Notice(
            event,
            f"[mlops] {model}: partition {r.get('partition', '?')} of {r.get('dataset', '?')} quarantined",
            f"Validation of {r.get('dataset', '?')} {r.get('partition', '?')} failed; nothing downstream versions "
            f"it, and training sets leave the day out.{where}",
            f"Failed checks: {checks or error or 'see the task log'}.",
            links,
        )
    if event == "drift":
        if state != "success" or not r.get("reason"):
            return None
        link("drift report", r.get("report_url"))
        performance = r.get("performance") or {}
        why = (
            f"drift share {r.get('drift_share')} (threshold {r.get('threshold')}); drifted columns: "
            f"{', '.join(map(str, r.get('drifted_columns') or [])) or 'none'}"
        )
        if performance.get("status") == "scored":
            metric, value, floor = performance.get("metric"), performance.get("value"), performance.get("floor")
            why += f"; {metric} on late labels {value} (floor {floor})"
        return Notice(
            event,
            f"[mlops] {model}: {r['reason']} alarm for {r.get('partition', '?')}",
            f"The monitoring of {r.get('partition', '?')} raised a {r['reason']} alarm; retraining is up to the "
            "retraining rails.",
            why[0].upper() + why[1:] + ".",
            links,
        )
    if event == "retraining":
        if state == "skipped":
            if not held_back:
                return None  # the window was handled before (a re-run): nothing new
            return Notice(
                event,
                f"[mlops] {model}: retraining held back by a rail",
                "A retraining alarm did not trigger training.",
                held_back,
                links,
            )
        if state != "success" or not r.get("run_id"):
            return None
        link("the training run", r.get("run_url"))
        return Notice(
            event,
            f"[mlops] {model}: retraining triggered ({r.get('reason', '?')})",
            f"Training run {r['run_id']} was triggered.",
            f"Reason {r.get('reason', '?')}; {r.get('detail') or ''}".rstrip("; "),
            links,
        )
    if event == "gate_rejection":
        if state != "success" or r.get("decision") != "reject":
            return None
        if r.get("ledger_path"):
            from pathlib import Path

            from mlops_provider.links.extra_links import ledger_url

            link("verdict ledger", ledger_url(model, r.get("challenger_version", ""), Path(r["ledger_path"]).stem))
        return Notice(
            event,
            f"[mlops] {model}: challenger v{r.get('challenger_version')} rejected by the gate",
            f"The gate kept the champion (v{r.get('champion_version') or 'none'}); the challenger is not promoted.",
            f"{r.get('reason')} (failed checks: {', '.join(r.get('failed_checks') or []) or 'none'}).",
            links,
        )
    if event == "shadow_check_failure":
        if state != "failed":
            return None
        return Notice(
            event,
            f"[mlops] {model}: shadow check failed",
            "The candidate's serving container was replayed against the registry model and did not pass; it is "
            "not promoted.",
            (error or "see the task log")[:1000],
            links,
        )
    if event == "promotion":
        if state != "success" or not r.get("changed"):
            return None
        return Notice(
            event,
            f"[mlops] {model}: v{r.get('champion')} is the new champion",
            f"{model} v{r.get('champion')} was promoted to champion; the previous champion is "
            f"v{r.get('previous') or 'none'}.",
            "It passed the gate and the shadow check.",
            links,
        )
    if event == "rollback":
        if state != "success":
            return None
        return Notice(
            event,
            f"[mlops] {model}: rolled back to v{r.get('champion')}",
            f"{model} v{r.get('champion')} is champion again (v{r.get('rolled_back')} was rolled back).",
            f"Reason given: {r.get('reason')}",
            links,
        )
    if event == "canary_rollback":
        if state != "failed":
            return None
        text = error or "see the task log"
        rolled_back = " rolled back to " in text
        return Notice(
            event,
            f"[mlops] {model}: canary {'rolled back' if rolled_back else 'rollout failed'}",
            "The live canary of the challenger was stopped and the endpoint serves the champion at 100%; the "
            "challenger is not promoted."
            if rolled_back
            else "The canary rollout failed before a verdict; the endpoint's record says what serves (the runbook "
            "of canary_rollout).",
            text[:1500],
            links,
        )
    raise ValueError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")


def _report_url(path: str) -> str:
    """Where the plugin serves a report
    (:func:`~mlops_provider.links.extra_links.report_url`); a file outside the reports by its name under them."""
    from mlops_provider.links.extra_links import report_url
    from mlops_provider.utils.records import REPORTS_URL_PREFIX

    try:
        return report_url(path)
    except ValueError:
        return f"{REPORTS_URL_PREFIX}/{path.rstrip('/').rsplit('/', 1)[-1]}"


class MlopsEventNotifier(BaseNotifier):
    """Mail ``to`` when the task it is attached to reaches ``event`` (one of :data:`EVENTS`).

    Attach it as the callback of the outcome it reports (the DAG factory does this for the model spec's
    ``notifications``; :func:`callbacks` builds the arguments): ``on_failure_callback`` of ``validate``
    (quarantine) and ``shadow_check``, ``on_success_callback`` of ``drift_sensor``, ``evaluate``, ``promote``,
    ``rollback``, and the success and skipped callbacks of ``trigger_training``.

    :param event: the event kind.
    :param outcome: the task outcome whose callback this is: ``success``, ``failed`` or ``skipped``.
    :param model_name: the model the message is about.
    :param to: recipients.
    :param smtp_conn_id: connection of type ``smtp`` (host, port, login; ``from_email`` in its extra).
    :param from_email: sender (default: the connection's ``from_email``).
    :param base_url: the Airflow UI's address for links (default: ``[api] base_url``).
    :param timeout: seconds one SMTP operation (connect, greeting, a command) may take; the connection's
        ``timeout`` extra applies when lower. The mail is tried :data:`SEND_ATTEMPTS` times within
        :func:`callback_budget`, then queued in the outbox.
    """

    template_fields = ()

    def __init__(
        self,
        *,
        event: str,
        outcome: str,
        model_name: str,
        to: list[str],
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
        base_url: str | None = None,
        timeout: int = SMTP_TIMEOUT,
    ) -> None:
        super().__init__()
        if event not in EVENTS:
            raise ValueError(f"event must be one of {sorted(EVENTS)}, got {event!r}")
        if outcome not in EVENT_OUTCOMES[event]:
            raise ValueError(f"{event} is reported on outcome {' or '.join(EVENT_OUTCOMES[event])}, not {outcome!r}")
        if not to:
            raise ValueError("to: give at least one recipient")
        self.event = event
        self.outcome = outcome
        self.model_name = model_name
        self.to = list(to)
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email
        self.base_url = base_url
        self.timeout = timeout

    def _base_url(self) -> str:
        if self.base_url:
            return self.base_url
        from airflow.configuration import conf

        return conf.get("api", "base_url", fallback=None) or "http://localhost:8080"

    def notify(self, context: Any) -> None:
        ti = context["ti"]
        state = self.outcome  # the callback this notifier is attached to says how the task ended
        exception = context.get("exception")
        result = self._result(ti)
        base = self._base_url()
        if self.event == "retraining" and result and result.get("run_id"):
            result["run_url"] = f"/dags/{result.get('dag_id')}/runs/{result['run_id']}"
        held_back = ti.xcom_pull(task_ids=ti.task_id, key=HELD_BACK_XCOM_KEY) if state == "skipped" else None
        notice = build_notice(
            self.event, self.model_name, result, state=state,
            task=task_url(base, ti.dag_id, ti.run_id, ti.task_id), base_url=base,
            error=str(exception)[:2000] if exception is not None else None, held_back=held_back,
        )  # fmt: skip
        if notice is None:
            return
        key = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{self.event}"
        marker = sent_marker(key)
        if marker.exists():
            log.info("Notification %s of %s was sent before (%s): not sending again", self.event, key, marker)
            return
        queued = outbox_entry(key)
        if queued.exists():
            log.warning("Notification %s of %s is already in the outbox (%s), not sent yet: the DAG %s sends it",
                        self.event, key, queued, OUTBOX_DAG_ID)  # fmt: skip
            return
        mail = Mail(
            id=notification_id(key), key=key, event=self.event, model=self.model_name, subject=notice.subject,
            to=self.to, from_email=self.from_email, smtp_conn_id=self.smtp_conn_id, html=render_body(notice),
        )  # fmt: skip
        budget = callback_budget()
        try:
            attempts = deliver(mail, timeout=self.timeout, attempts=SEND_ATTEMPTS, within=budget)
        except MailNotSent as failure:
            queue(mail, failure)
            return
        mark_sent(mail, attempts=attempts)

    def _result(self, ti: Any) -> dict[str, Any] | None:
        """The task's return value, or the validation summary a failed validation pushed."""
        keys = {"quarantine": ("return_value", "validation_summary"), "retraining": (TRIGGERED_XCOM_KEY,)}.get(
            self.event, ("return_value",)
        )
        for key in keys:
            value = ti.xcom_pull(task_ids=ti.task_id, key=key)
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
            if isinstance(value, dict):
                return value
        return None


def callbacks(event: str, outcomes: tuple[str, ...] | None = None, **settings: Any) -> dict[str, list[Any]]:
    """The task arguments that mail ``event`` (``{"on_failure_callback": [notifier]}``, ...) on each of its
    outcomes; ``settings`` are :class:`MlopsEventNotifier`'s other parameters."""
    return {
        CALLBACKS[outcome]: [MlopsEventNotifier(event=event, outcome=outcome, **settings)]
        for outcome in (outcomes or EVENT_OUTCOMES[event])
    }


#: XCom key under which a task that holds something back (a retraining rail) leaves the reason for the notifier.
HELD_BACK_XCOM_KEY = "held_back"
#: XCom key of the training run a retraining trigger started (``{"dag_id", "run_id", "reason", "detail", ...}``).
TRIGGERED_XCOM_KEY = "retraining"


@dataclass(frozen=True)
class Mail:
    """One rendered notification, as sent and as kept in the outbox."""

    id: str
    key: str
    event: str
    model: str
    subject: str
    to: list[str]
    from_email: str | None
    smtp_conn_id: str
    html: str


def notification_id(key: str) -> str:
    """The file name of an event's sent marker and outbox entry (one per event and task run)."""
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def callback_budget(overtime: float | None = None) -> float:
    """Seconds a notifier may spend mailing in a task callback: 60% of ``[core] task_success_overtime`` (Airflow's
    supervisor kills a task process whose callbacks run longer than that after the task ended, without a log
    line), leaving the rest to other callbacks and listeners."""
    if overtime is None:
        from airflow.configuration import conf

        overtime = conf.getfloat("core", "task_success_overtime", fallback=20.0)
    return max(1.0, 0.6 * overtime)


def sent_marker(key: str) -> Any:
    """The record of a sent notification (its existence dedupes), under the storage root: a retry on another
    worker sees it."""
    from mlops_provider.utils.records import notifications_root

    return notifications_root() / f"{notification_id(key)}.json"


def outbox_entry(key: str) -> Any:
    """The outbox record of a notification that could not be sent (written once; sent when its marker exists)."""
    from mlops_provider.utils.records import outbox_dir

    return outbox_dir() / f"{notification_id(key)}.json"


def _failures_dir(mail_id: str) -> Any:
    """Later failed sends of an outbox entry, one record each (append-only)."""
    from mlops_provider.utils.records import outbox_failures_dir

    return outbox_failures_dir(mail_id)


def render_body(notice: Notice) -> str:
    """The mail's HTML body (the plugin's autoescaping template)."""
    from mlops_provider.render.html import render

    return render("notification.html", title=notice.subject, notice=notice)


def _smtp_hook(smtp_conn_id: str, timeout: int) -> Any:
    """The SMTP provider's hook with each operation bounded by ``timeout`` seconds (or the connection's lower
    ``timeout`` extra) and without its own retries (:func:`deliver` retries with backoff, within a budget)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    class BoundedSmtpHook(SmtpHook):
        @property
        def timeout(self) -> int:
            return min(super().timeout, timeout)

        @property
        def smtp_retry_limit(self) -> int:
            return 0

    return BoundedSmtpHook(smtp_conn_id=smtp_conn_id)


def deliver(mail: Mail, *, timeout: int = SMTP_TIMEOUT, attempts: int = SEND_ATTEMPTS, within: float) -> int:
    """Send ``mail``: up to ``attempts`` tries with exponential backoff, none started unless it can end (each SMTP
    operation bounded by ``timeout``) within ``within`` seconds; returns the attempts used. Raises
    :class:`MailNotSent` with the last error."""
    from tenacity import Retrying, stop_after_attempt, stop_before_delay, wait_exponential

    def retrying(state: Any) -> None:
        log.warning("Mail %r: attempt %d failed (%s); retrying in %.1f s", mail.subject, state.attempt_number,
                    describe(state.outcome.exception()), state.upcoming_sleep)  # fmt: skip

    used = 0
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(max(1, attempts)) | stop_before_delay(max(0.0, within - timeout)),
            wait=wait_exponential(multiplier=0.5, max=8),
            before_sleep=retrying,
            reraise=True,
        ):
            with attempt:
                used = attempt.retry_state.attempt_number
                with _smtp_hook(mail.smtp_conn_id, timeout) as hook:
                    hook.send_email_smtp(to=mail.to, subject=mail.subject, html_content=mail.html,
                                         from_email=mail.from_email or hook.from_email)  # fmt: skip
    except Exception as error:  # any failure: the mail goes to the outbox with it
        raise MailNotSent(used, describe(error)) from error
    return used


#: Errors where the server answered and refused this one mail (the server itself works).
REFUSED_MAIL = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def describe(error: BaseException) -> str:
    """``Type: message``, with the errors it was raised from (the SMTP hook hides a timeout behind "Unable to
    connect")."""
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__ or error.__context__
    return f"{text} (from {describe(cause)})" if cause is not None and cause is not error else text


def queue(mail: Mail, failure: MailNotSent) -> None:
    """Keep ``mail`` in the outbox (once per event and task run) and say at ERROR what was not sent and how it
    will be."""
    from dataclasses import asdict

    from mlops_provider.utils.evidence import now_iso
    from mlops_provider.utils.storage import location, write_text

    entry = outbox_entry(mail.key)
    if not entry.exists():
        record = {**asdict(mail), "error": failure.error, "attempts": failure.attempts, "queued_at": now_iso()}
        write_text(entry, json.dumps(record, indent=2))
    log.error(
        "Notification NOT sent: %r (%s) to %s, %s. It is kept in the outbox at %s; the DAG %s sends it once mail "
        "works (hourly, or trigger it now); the model health page lists it.",
        mail.subject, mail.event, ", ".join(mail.to), failure, location(entry), OUTBOX_DAG_ID,
    )  # fmt: skip


def mark_sent(mail: Mail, *, attempts: int, queued: dict[str, Any] | None = None) -> None:
    """Write the sent marker of ``mail`` (after an outbox send: with the error it was queued with)."""
    from mlops_provider.utils.evidence import now_iso
    from mlops_provider.utils.storage import write_text

    record: dict[str, Any] = {"key": mail.key, "event": mail.event, "model": mail.model, "subject": mail.subject,
                              "to": mail.to, "sent_at": now_iso(), "attempts": attempts}  # fmt: skip
    if queued is not None:
        record.update(via="outbox", queued_at=queued.get("queued_at"), error=queued.get("error"))
    write_text(sent_marker(mail.key), json.dumps(record, indent=2))


def _read(path: Any) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _mail(record: dict[str, Any]) -> Mail:
    return Mail(**{name: record.get(name) for name in Mail.__dataclass_fields__})  # type: ignore[arg-type]


def flush_outbox(*, timeout: int = SMTP_TIMEOUT, attempts: int = SEND_ATTEMPTS, within: float = 60.0) -> dict:
    """Send every outbox entry that has no sent marker, oldest first, and mark each sent (an entry with a marker
    is never sent again). A failure is recorded beside its entry; after one the server itself failed on (mail is
    down) the rest wait for the next run, while a mail the server refused (a bad recipient) does not stop the
    others. Returns ``{"sent": [subject], "unsent": [{"subject", "error"}]}``.

    Run one at a time (the outbox DAG has ``max_active_runs=1``): two flushes at once could both send an entry."""
    from mlops_provider.utils.evidence import now_iso, write_record
    from mlops_provider.utils.records import outbox_dir

    folder = outbox_dir()
    records = [r for r in (_read(p) for p in folder.glob("*.json")) if r and r.get("key")] if folder.is_dir() else []
    pending = [r for r in sorted(records, key=lambda r: str(r.get("queued_at"))) if not sent_marker(r["key"]).exists()]
    sent: list[str] = []
    unsent: list[dict[str, Any]] = []
    mail_down = False
    for record in pending:
        mail = _mail(record)
        if mail_down:  # the server is unreachable: the rest would fail the same way; the next run sends them
            unsent.append({"subject": mail.subject, "error": "not tried: the SMTP server failed on an earlier mail"})
            continue
        try:
            used = deliver(mail, timeout=timeout, attempts=attempts, within=within)
        except MailNotSent as failure:
            write_record(_failures_dir(mail.id), now_iso().replace(":", ""),
                         {"error": failure.error, "attempts": failure.attempts})  # fmt: skip
            log.error("Outbox mail %r to %s still NOT sent: %s", mail.subject, ", ".join(mail.to), failure)
            unsent.append({"subject": mail.subject, "error": failure.error})
            mail_down = not isinstance(failure.__cause__, REFUSED_MAIL)  # a refused mail does not stop the others
            continue
        mark_sent(mail, attempts=used, queued=record)
        log.info("Outbox mail %r sent to %s (queued %s: %s)", mail.subject, ", ".join(mail.to),
                 record.get("queued_at"), record.get("error"))  # fmt: skip
        sent.append(mail.subject)
    return {"sent": sent, "unsent": unsent}


def notification_status(model: str, recent: int = 20) -> list[dict[str, Any]]:
    """The model's notifications for the health page: every outbox entry (``unsent``, or ``sent`` later) with its
    error and attempts, and the ``recent`` newest mails sent at once; newest first."""
    from mlops_provider.utils.evidence import attempts as failures_of
    from mlops_provider.utils.records import notifications_root, outbox_dir

    root = notifications_root()
    rows: dict[str, dict[str, Any]] = {}
    for path in root.glob("*.json") if root.is_dir() else []:
        marker = _read(path)
        if not marker or (marker.get("model") or str(marker.get("key", "")).split("__", 1)[0]) != model:
            continue
        rows[path.stem] = {"status": "sent", "event": marker.get("event"), "subject": marker.get("subject"),
                           "to": marker.get("to"), "sent_at": marker.get("sent_at"), "via": marker.get("via"),
                           "queued_at": marker.get("queued_at"), "error": marker.get("error"),
                           "attempts": marker.get("attempts")}  # fmt: skip
    direct = sorted((r for r in rows.values() if r["via"] != "outbox"), key=lambda r: str(r["sent_at"]))
    shown = {k: r for k, r in rows.items() if r["via"] == "outbox" or r in direct[-recent:]}
    outbox = outbox_dir()
    for path in outbox.glob("*.json") if outbox.is_dir() else []:
        entry = _read(path)
        if not entry or entry.get("model") != model or path.stem in shown:
            continue
        later = failures_of(_failures_dir(path.stem))
        shown[path.stem] = {
            "status": "unsent", "event": entry.get("event"), "subject": entry.get("subject"), "to": entry.get("to"),
            "sent_at": None, "via": "outbox", "queued_at": entry.get("queued_at"),
            "error": later[-1]["error"] if later else entry.get("error"),
            "attempts": int(entry.get("attempts") or 0) + sum(int(f.get("attempts") or 0) for f in later),
        }  # fmt: skip
    newest_first = sorted(shown.values(), key=lambda r: str(r["sent_at"] or r["queued_at"]), reverse=True)
    return [r for r in newest_first if r["status"] == "unsent"] + [r for r in newest_first if r["status"] == "sent"]
