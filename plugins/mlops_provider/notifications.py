"""Mail on-call about what the loop decided on its own: a quarantined partition, a drift or performance alarm, a
retraining triggered or held back by a rail, a gate rejection or a failed shadow check, a promotion, a rollback.

:class:`MlopsEventNotifier` is an Airflow notifier (``on_success_callback`` / ``on_failure_callback`` /
``on_skipped_callback`` of the task that decides the event). The message says what happened, why, and links to
act on (the task in the Airflow UI, the report, the verdict ledger). It is sent once per event and task run: a
cleared and re-run task that reaches the same event in the same DAG run sends nothing again (a record per sent
mail under ``$MLOPS_HOME/notifications``).

Why the SMTP provider's ``SmtpHook`` and not its ``SmtpNotifier``: ``SmtpNotifier`` renders subject and body
as Jinja templates with the task context, and our messages carry values from data and records (a category, a
failed check, a reason): rendering them as templates would execute whatever ``{{ ... }}`` they contain. The body
is rendered here by the plugin's autoescaping templates and handed to the hook as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseNotifier

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
}


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

            from mlops_provider.links import ledger_url

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
    raise ValueError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")


def _report_url(path: str) -> str:
    """Where the plugin serves a report (:func:`~mlops_provider.links.report_url`); a file outside the reports by
    its name under them."""
    from mlops_provider.links import REPORTS_URL_PREFIX, report_url

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
        send(notice, to=self.to, smtp_conn_id=self.smtp_conn_id, from_email=self.from_email)
        from mlops_provider.evidence import now_iso
        from mlops_provider.storage import write_text

        record = {"key": key, "event": self.event, "subject": notice.subject, "to": self.to, "sent_at": now_iso()}
        write_text(marker, json.dumps(record, indent=2))

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


def sent_marker(key: str) -> Any:
    """The record of a sent notification (its existence dedupes), under the storage root: a retry on another
    worker sees it."""
    from mlops_provider.storage import storage_root

    return storage_root() / "notifications" / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"


def send(notice: Notice, *, to: list[str], smtp_conn_id: str, from_email: str | None) -> None:
    """Send ``notice`` as an HTML mail through the SMTP provider's hook."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from mlops_provider.web.html import render

    body = render("notification.html", title=notice.subject, notice=notice)
    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(to=to, subject=notice.subject, html_content=body, from_email=from_email or hook.from_email)
