"""Ask a human before the loop acts: before a challenger is promoted, and before an alarm triggers retraining.

Both are Airflow's ``ApprovalOperator`` (``providers.standard``, human-in-the-loop): the task waits for an answer in
the Airflow UI (or ``PATCH .../taskInstances/{task}/-1/hitlDetails`` of the REST API), **Approve** lets the
downstream tasks run, **Reject** skips them, and no answer within ``response_timeout`` takes the default,
**Reject**. What this module adds: the form shows the evidence (the verdict ledger's metrics, segment deltas,
shadow-check numbers and versions; the alarm's numbers and report), and the answer (who, when, what, the note)
is recorded beside that evidence (the ledger, the model version's tags; the alarm's review record), append-only.

**An answer is never lost to a re-run.** Airflow 3.3.2 can re-run an approval task after a human answered: when
the answer comes within seconds of the task parking, the scheduler handles the parked workload's late "success"
after it queued the resumed task, takes it for an external state change ("state attribute is queued") and sends
the task up for retry; the resumed try never runs, and the retry's HITL request upsert erases the response
(``execution_api/routes/hitl.py``, "cleanup the response part"). So the first try of a task instance notes in its
task state store that it asked; any later try (a retry, or a clear) does not ask again but defers to
:class:`~mlops_provider.triggers.approval.KeptAnswerTrigger`, which takes the answer kept on the request, so the
answer is honoured and recorded once. Only a request that ended with the timeout default (or that is gone) is
asked again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param

from mlops_provider.hooks.mixins import MlflowHookMixin
from mlops_provider.triggers.settle import RESUME_SETTLE_SECONDS
from mlops_provider.utils.templated_fields import json_object

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath, XComArg

NOTE_PARAM = "note"
APPROVAL_TAGS = ("approval.decision", "approval.by", "approval.at", "approval.note")
#: Key in the task state store (kept across the tries of a task instance) noting that a try asked.
ASKED_KEY = "mlops.approval.asked"
TIMEOUT_BY = "timeout (no answer: the default, Reject)"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def promotion_summary(ledger: dict[str, Any], version_tags: dict[str, str]) -> str:
    """The approval form's body (Markdown): the gate's verdict, both models' metrics, the segment deltas, the
    shadow check and the data and code versions, from the verdict ledger and the challenger's version tags."""
    name, version, champion = ledger["model_name"], ledger["challenger_version"], ledger.get("champion_version")
    lines = [
        f"**{name} v{version}** against the champion **v{champion or 'none'}**. "
        f"Gate: **{ledger.get('decision')}**, {ledger.get('reason')}.",
        "",
        "| metric | champion | challenger |",
        "|---|---|---|",
    ]
    challenger = (ledger.get("challenger_metrics") or {}).get("overall", {})
    champion_overall = ((ledger.get("champion_metrics") or {}).get("overall")) or {}
    for metric, value in challenger.items():
        lines.append(f"| {metric} | {_fmt(champion_overall.get(metric))} | {_fmt(value)} |")
    segments = [c for c in ledger.get("checks", []) if str(c.get("check", "")).startswith("segment:")]
    if segments:
        lines += ["", "| segment | metric | champion | challenger | delta | passed |", "|---|---|---|---|---|---|"]
        for c in segments:
            lines.append(
                f"| {c['check'].split(':', 1)[1]} | {c['metric']} | {_fmt(c.get('champion'))} | "
                f"{_fmt(c.get('challenger'))} | {_fmt(c.get('delta'))} | {'yes' if c.get('passed') else 'no'} |"
            )
    shadow = ledger.get("shadow")
    if shadow:
        lines += [
            "",
            f"Shadow check: {'passed' if shadow.get('passed') else 'failed'}, {shadow.get('rows')} rows, "
            f"p95 {shadow.get('p95_ms')} ms, max |diff| {shadow.get('max_abs_diff')}, errors {shadow.get('errors')}.",
        ]
    data = ledger.get("evaluation_data") or {}
    lines += [
        "",
        f"Evaluated on {data.get('rows')} holdout rows of `{data.get('path')}` at `{str(data.get('rev'))[:12]}`; "
        f"trained on `{version_tags.get('data.rev_name') or version_tags.get('data.rev', '?')}` with code "
        f"`{version_tags.get('code.version', '?')}`.",
    ]
    return "\n".join(lines)


def alarm_summary(decision: dict[str, Any]) -> str:
    """The retraining form's body (Markdown): the alarm's reason, numbers and report."""
    performance = decision.get("performance") or {}
    lines = [
        f"**{decision.get('reason')}** alarm for **{decision.get('partition')}**: drift share "
        f"{_fmt(decision.get('drift_share'))} (threshold {_fmt(decision.get('threshold'))}).",
        f"Drifted columns: {', '.join(map(str, decision.get('drifted_columns') or [])) or 'none'}.",
    ]
    if performance.get("status") == "scored":
        lines.append(
            f"{performance.get('metric')} on late labels: {_fmt(performance.get('value'))} "
            f"(floor {_fmt(performance.get('floor'))})."
        )
    if decision.get("report_url"):
        lines.append(f"[Drift report]({decision['report_url']})")
    lines.append("Approve: train now (the retraining rails still apply). Reject: no training; say why in the note.")
    return "\n\n".join(lines)


def human_verdict(event: dict[str, Any]) -> dict[str, Any]:
    """The answer of a human-in-the-loop event as recorded: ``decision`` (``approve``/``reject``), ``by`` (the
    user, or ``timeout`` when the default was taken), ``at``, ``note``."""
    chosen = (event.get("chosen_options") or ["Reject"])[0]
    user = event.get("responded_by_user") or {}
    by = user.get("name") or user.get("id") if isinstance(user, dict) else user
    at = event.get("responded_at")
    note = str((event.get("params_input") or {}).get(NOTE_PARAM) or "")
    return {
        "decision": "approve" if chosen == ApprovalOperator.APPROVE else "reject",
        "by": str(by) if by else TIMEOUT_BY,
        "at": at.isoformat(timespec="seconds") if isinstance(at, dt.datetime) else str(at or ""),
        "note": note,
    }


def record_answer(records: list[dict[str, Any]], record: dict[str, Any]) -> bool:
    """Append ``record`` (an answer as recorded, with its ``task``) to ``records`` unless that same answer (task,
    decision, by, at) is there already, as when a re-run honours it again; whether it was appended."""
    same = ("task", "decision", "by", "at")
    if any(all(r.get(k) == record.get(k) for k in same) for r in records):
        return False
    records.append(record)
    return True


def human_answer_for(records: list[dict[str, Any]], task: str) -> dict[str, Any] | None:
    """The latest answer a human (not the timeout) gave ``task`` among ``records``, or None."""
    answered = [r for r in records if r.get("task") == task and r.get("by") and r.get("by") != TIMEOUT_BY]
    return answered[-1] if answered else None


def event_of(record: dict[str, Any]) -> dict[str, Any]:
    """The human-in-the-loop event of an answer as recorded (the inverse of :func:`human_verdict`)."""
    at = dt.datetime.fromisoformat(record["at"]) if record.get("at") else dt.datetime.now(dt.timezone.utc)
    return {
        "chosen_options": [ApprovalOperator.APPROVE if record["decision"] == "approve" else ApprovalOperator.REJECT],
        "params_input": {NOTE_PARAM: record.get("note", "")},
        "responded_at": at,
        "responded_by_user": {"id": record["by"], "name": record["by"]},
    }


class _ApprovalWithNote(ApprovalOperator):
    """An ``ApprovalOperator`` whose default (taken at the timeout) is Reject, with a free-text ``note`` field, that
    honours an answer an earlier try of the same task instance received instead of asking again (module doc).

    :param rerun_settle_seconds: on a re-run, the earliest the answer found is acted on after the task deferred
        (:mod:`mlops_provider.triggers.settle`).
    """

    def __init__(
        self,
        *,
        subject: str,
        note_kept: str,
        response_timeout: dt.timedelta,
        rerun_settle_seconds: float = RESUME_SETTLE_SECONDS,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("params", {NOTE_PARAM: Param("", type="string", description=f"why (kept {note_kept})")})
        super().__init__(subject=subject, defaults=ApprovalOperator.REJECT, response_timeout=response_timeout, **kwargs)
        self.rerun_settle_seconds = rerun_settle_seconds

    def prepare_form(self, context: Context) -> None:
        """Set ``subject`` and ``body`` from the evidence (subclasses)."""

    def execute(self, context: Context) -> Any:
        from mlops_provider.utils.compat import task_state_store

        store = task_state_store(context)
        if store is None:  # Airflow < 3.3 keeps no state across tries: a re-run asks again
            self.prepare_form(context)
            return super().execute(context)
        from airflow.sdk.execution_time.context import NEVER_EXPIRE

        asked = store.get(ASKED_KEY)
        if asked is not None:
            self.log.warning(
                "Try %s of this task asked a human already (%s): taking the answer it received, if any, instead of "
                "asking again", asked.get("try") if isinstance(asked, dict) else "?", asked,
            )  # fmt: skip
            return self._defer_to_kept_answer(context)
        self.prepare_form(context)
        store.set(ASKED_KEY, {"try": context["ti"].try_number}, retention=NEVER_EXPIRE)
        return super().execute(context)

    def _defer_to_kept_answer(self, context: Context) -> None:
        from airflow.sdk.timezone import utcnow

        from mlops_provider.triggers.approval import KeptAnswerTrigger

        self.defer(
            trigger=KeptAnswerTrigger(
                ti_id=context["task_instance"].id,
                options=self.options,
                defaults=self.defaults,
                params=self.serialized_params,
                multiple=self.multiple,
                timeout_datetime=utcnow() + self.response_timeout if self.response_timeout else None,
                settle_seconds=self.rerun_settle_seconds,
            ),
            method_name="resume_rerun",
        )

    def resume_rerun(self, context: Context, event: dict[str, Any]) -> Any:
        """A re-run resumed: with the answer an earlier try received (or one given since), or told to ask again."""
        from mlops_provider.triggers.approval import ASK_AGAIN

        if ASK_AGAIN in event:
            self.log.warning("Asking again: %s", event[ASK_AGAIN])
            self.prepare_form(context)
            return super().execute(context)
        self.log.warning("Honouring the answer given to an earlier try of this task (Airflow re-ran it)")
        return self.execute_complete(context, event)


class PromotionApprovalOperator(MlflowHookMixin, _ApprovalWithNote):
    """Wait for a human to approve a challenger's promotion, showing the verdict ledger's summary.

    Runs after the gate and the shadow check. The form shows the metrics of both models, the segment deltas, the
    shadow-check numbers and the data and code versions (read from the ledger when the task starts, so they
    include the shadow check). The answer is recorded before anything else happens: appended to the ledger
    (``human_approvals``, ``human`` the latest) and as tags of the version (``approval.decision``, ``.by``,
    ``.at``, ``.note``). Approve: ``promote`` runs. Reject, or no answer within ``response_timeout``: it is
    skipped.

    :param model_name: registered model (templated).
    :param evaluation: the evaluation's result (templated; dict or JSON): ``challenger_version``,
        ``ledger_path``.
    :param response_timeout: how long to wait; then the default, Reject, is taken.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``.

    XCom (return value): the human-in-the-loop answer ``{"chosen_options", "params_input", "responded_at",
    "responded_by_user"}``.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "model_name", "evaluation")

    def __init__(
        self,
        *,
        model_name: str,
        evaluation: dict[str, Any] | str | XComArg,
        response_timeout: dt.timedelta = dt.timedelta(hours=24),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            subject=kwargs.pop("subject", f"Promote a new {model_name} champion?"),
            note_kept="in the ledger",
            response_timeout=response_timeout,
            **kwargs,
        )
        self.model_name = model_name
        self.evaluation = evaluation

    def _ledger_path(self) -> ObjectStoragePath:

        from mlops_provider.utils.storage import stored

        return stored(json_object(self.evaluation, "evaluation")["ledger_path"])

    def prepare_form(self, context: Context) -> None:
        verdict = json_object(self.evaluation, "evaluation")
        ledger = json.loads(self._ledger_path().read_text())
        version = str(verdict["challenger_version"])
        tags = self.mlflow_hook.model_version_tags(self.model_name, version)
        self.subject = f"Promote {self.model_name} v{version} to champion?"
        self.body = promotion_summary(ledger, tags)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:

        from mlops_provider.utils.storage import write_text

        answer = human_verdict(event)
        verdict = json_object(self.evaluation, "evaluation")
        version = str(verdict["challenger_version"])
        path = self._ledger_path()
        ledger = json.loads(path.read_text())
        task = f"{context['ti'].dag_id}/{context['ti'].run_id}/{context['ti'].task_id}"
        records = ledger.setdefault("human_approvals", [])  # earlier answers stay
        if answer["by"] == TIMEOUT_BY and (given := human_answer_for(records, task)):
            self.log.error("The timeout came after %s answered this task (%s at %s): that answer stands",
                           given["by"], given["decision"], given["at"])  # fmt: skip
            event, answer = event_of(given), {k: given[k] for k in ("decision", "by", "at", "note")}
        record = {**answer, "task": task}
        if record_answer(records, record):
            ledger["human"] = record
            write_text(path, json.dumps(ledger, indent=2, default=str))
        else:
            self.log.warning("This answer is in the ledger already (a re-run honoured it again); not added twice")
        self.mlflow_hook.set_version_tags(
            self.model_name, version, dict(zip(APPROVAL_TAGS, (answer["decision"], answer["by"], answer["at"],
                                                               answer["note"][:500]), strict=True))
        )  # fmt: skip
        self.log.warning("%s v%s: %s by %s at %s", self.model_name, version, answer["decision"], answer["by"],
                         answer["at"])  # fmt: skip
        return super().execute_complete(context, event)


class RetrainingApprovalOperator(_ApprovalWithNote):
    """Ask a human before an alarm triggers retraining (a model whose spec flags retraining for review).

    Runs between the drift sensor (the alarm) and the retraining trigger. The form shows the alarm's numbers and
    report link; Approve lets the trigger run (its rails still apply), Reject or no answer within
    ``response_timeout`` skips it. The answer and its note are recorded beside the alarm:
    ``<reports root>/alarm-reviews/<model>/<day>/<attempt>.json``.

    :param model_name: the model (templated).
    :param decision: the drift sensor's result (templated; dict or JSON).
    :param response_timeout: how long to wait; then the default, Reject, is taken.

    XCom (return value): the human-in-the-loop answer.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "model_name", "decision")

    def __init__(
        self,
        *,
        model_name: str,
        decision: dict[str, Any] | str | XComArg,
        response_timeout: dt.timedelta = dt.timedelta(hours=24),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            subject=kwargs.pop("subject", f"Retrain {model_name}?"),
            note_kept="beside the alarm",
            response_timeout=response_timeout,
            **kwargs,
        )
        self.model_name = model_name
        self.decision = decision

    def prepare_form(self, context: Context) -> None:
        alarm = json_object(self.decision, "decision")
        self.subject = f"Retrain {self.model_name}? {alarm.get('reason')} alarm for {alarm.get('partition')}"
        self.body = alarm_summary(alarm)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from mlops_provider.utils.evidence import attempt_key, attempts, write_record
        from mlops_provider.utils.records import review_dir

        alarm = json_object(self.decision, "decision")
        answer = human_verdict(event)
        task = f"{context['ti'].dag_id}/{context['ti'].run_id}/{context['ti'].task_id}"
        folder = review_dir(self.model_name, str(alarm.get("partition")))
        earlier = attempts(folder)
        if answer["by"] == TIMEOUT_BY and (given := human_answer_for(earlier, task)):
            self.log.error("The timeout came after %s answered this task (%s at %s): that answer stands",
                           given["by"], given["decision"], given["at"])  # fmt: skip
            event, answer = event_of(given), {k: given[k] for k in ("decision", "by", "at", "note")}
        kept = ("reason", "partition", "drift_share", "report_url", "summary_path")
        record = {**answer, "task": task, "alarm": {k: alarm.get(k) for k in kept}}
        if record_answer(list(earlier), record):
            write_record(folder, attempt_key(context), record)
        self.log.warning("Retraining of %s for %s: %s by %s", self.model_name, alarm.get("partition"),
                         answer["decision"], answer["by"])  # fmt: skip
        return super().execute_complete(context, event)
