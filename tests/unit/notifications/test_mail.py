"""Which task outcome is which on-call event, and what its message says (pure rules, no SMTP)."""

from __future__ import annotations

import pytest

from mlops_provider.loop.spec import NOTIFICATION_EVENTS
from mlops_provider.notifications.mail import EVENTS, build_notice, task_url

pytestmark = pytest.mark.unit

BASE = "https://airflow.example.com"
TASK = task_url(BASE, "m__promotion", "manual__2026-11-28T00:00:00+00:00", "evaluate")


def notice(event: str, result: dict | None, state: str = "success", **kwargs):
    return build_notice(event, "churn", result, state=state, task=TASK, base_url=BASE, **kwargs)


def test_the_spec_offers_exactly_the_events_there_are() -> None:
    assert NOTIFICATION_EVENTS == tuple(EVENTS)


def test_task_links_quote_the_run_id() -> None:
    assert TASK == f"{BASE}/dags/m__promotion/runs/manual__2026-11-28T00%3A00%3A00%2B00%3A00/tasks/evaluate"


def test_quarantine_names_the_day_the_checks_and_the_result() -> None:
    summary = {"dataset": "sales", "partition": "2026-11-08", "quarantined_to": "/q/sales/2026-11-08/a",
               "failed_expectations": [{"expectation": "expect_column_values_to_not_be_null", "column": "id"}],
               "result_path": "/nowhere/result.json"}  # fmt: skip
    n = notice("quarantine", summary, "failed")
    assert n.subject == "[mlops] churn: partition 2026-11-08 of sales quarantined"
    assert "expect_column_values_to_not_be_null(id)" in n.why and "/q/sales/2026-11-08/a" in n.what
    assert n.links[0] == ("the task in Airflow", TASK)
    assert n.links[1] == ("validation result", f"{BASE}/mlops/reports/result.json")
    assert notice("quarantine", summary, "success") is None


def test_drift_alarm_carries_the_report_and_the_numbers() -> None:
    decision = {"reason": "drift", "partition": "2026-11-20", "drift_share": 0.5, "threshold": 0.3,
                "drifted_columns": ["tenure", "plan"], "report_url": "/mlops/reports/drift/x.html",
                "performance": {"status": "scored", "metric": "roc_auc", "value": 0.61, "floor": 0.65}}  # fmt: skip
    n = notice("drift", decision)
    assert n.subject == "[mlops] churn: drift alarm for 2026-11-20"
    assert "Drift share 0.5 (threshold 0.3); drifted columns: tenure, plan; roc_auc on late labels 0.61" in n.why
    assert ("drift report", f"{BASE}/mlops/reports/drift/x.html") in n.links


def test_retraining_triggered_held_back_or_already_handled() -> None:
    triggered = {"dag_id": "churn__training", "run_id": "drift__d__2026-11-20", "reason": "drift",
                 "run_url": "/dags/churn__training/runs/drift__d__2026-11-20"}  # fmt: skip
    n = notice("retraining", triggered)
    assert n.subject == "[mlops] churn: retraining triggered (drift)"
    assert ("the training run", f"{BASE}/dags/churn__training/runs/drift__d__2026-11-20") in n.links
    held = notice("retraining", None, "skipped", held_back="cooldown: a drift-triggered training ran within 2 day(s)")
    assert held.subject == "[mlops] churn: retraining held back by a rail" and held.why.startswith("cooldown")
    assert notice("retraining", None, "skipped") is None  # the window was handled before: nothing new


def test_gate_rejection_promotion_rollback_and_shadow_check() -> None:
    verdict = {"decision": "reject", "challenger_version": "3", "champion_version": "2", "reason": "auc -0.02",
               "failed_checks": ["margin(roc_auc)"], "ledger_path": "/nowhere/ledger.json"}  # fmt: skip
    rejected = notice("gate_rejection", verdict)
    assert rejected.subject == "[mlops] churn: challenger v3 rejected by the gate"
    assert "margin(roc_auc)" in rejected.why and rejected.links[-1][0] == "verdict ledger"
    assert notice("gate_rejection", {**verdict, "decision": "promote"}) is None
    promoted = notice("promotion", {"champion": "3", "previous": "2", "changed": True})
    assert promoted.subject == "[mlops] churn: v3 is the new champion"
    assert notice("promotion", {"champion": "3", "previous": "2", "changed": False}) is None  # a re-run: no move
    rolled = notice("rollback", {"champion": "2", "rolled_back": "3", "reason": "bad segment"})
    assert rolled.subject == "[mlops] churn: rolled back to v2" and "bad segment" in rolled.why
    shadow = notice("shadow_check_failure", None, "failed", error="p95 812 ms > 500 ms")
    assert shadow.why == "p95 812 ms > 500 ms"
    with pytest.raises(ValueError, match="unknown event 'typo'"):
        notice("typo", None)


def test_a_canary_rollback_says_the_alarm_and_its_numbers_and_a_broken_rollout_says_so() -> None:
    error = "canary churn v4 rolled back to v3 at step 5%: alarm error_rate: canary 5xx rate 0.2 > baseline 0.0"
    rolled = notice("canary_rollback", None, "failed", error=error)
    assert rolled.subject == "[mlops] churn: canary rolled back" and "error_rate" in rolled.why
    assert "not promoted" in rolled.what
    broken = notice("canary_rollback", None, "failed", error="reconciling churn's endpoint: port 8600 is taken")
    assert broken.subject == "[mlops] churn: canary rollout failed" and "port 8600" in broken.why
    assert notice("canary_rollback", None, "success") is None


def test_a_callback_mails_within_most_of_the_supervisor_overtime() -> None:
    from mlops_provider.notifications.mail import SEND_ATTEMPTS, SMTP_TIMEOUT, callback_budget

    assert callback_budget(20.0) == 12.0  # the default [core] task_success_overtime
    assert callback_budget(0.5) == 1.0
    assert SMTP_TIMEOUT * 2 < callback_budget(20.0) < 20.0 and SEND_ATTEMPTS > 1  # room for a retry


def test_the_error_names_what_the_smtp_hook_hid() -> None:
    from mlops_provider.notifications.mail import describe

    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError:
            raise RuntimeError("Unable to connect to smtp server")  # noqa: B904 - how the hook raises it
    except RuntimeError as error:
        assert describe(error) == "RuntimeError: Unable to connect to smtp server (from TimeoutError: timed out)"


def test_one_outbox_entry_and_one_marker_per_event_and_task_run() -> None:
    from mlops_provider.notifications.mail import notification_id

    key = "m__promotion/manual__1/promote/promotion"
    assert notification_id(key) == notification_id(key) != notification_id(key.replace("manual__1", "manual__2"))
    assert len(notification_id(key)) == 20 and notification_id(key).isalnum()
