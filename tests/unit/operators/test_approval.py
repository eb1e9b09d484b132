"""What the approval forms show and how an answer is recorded (pure rules), and where the factory puts them."""

from __future__ import annotations

import datetime as dt

import pytest

from mlops_provider.operators.approval import alarm_summary, human_verdict, promotion_summary

pytestmark = pytest.mark.unit

LEDGER = {
    "model_name": "churn", "challenger_version": "3", "champion_version": "2", "decision": "promote",
    "reason": "roc_auc +0.012 >= 0.002",
    "challenger_metrics": {"overall": {"roc_auc": 0.71, "log_loss": 0.41}},
    "champion_metrics": {"overall": {"roc_auc": 0.698, "log_loss": 0.43}},
    "checks": [{"check": "segment:premium", "metric": "roc_auc", "champion": 0.70, "challenger": 0.69,
                "delta": -0.01, "passed": True}],
    "shadow": {"passed": True, "rows": 2000, "p95_ms": 41.2, "max_abs_diff": 0.0, "errors": 0},
    "evaluation_data": {"rows": 900, "path": "data/churn/training_set.parquet", "rev": "a" * 40},
}  # fmt: skip


def test_the_promotion_form_shows_metrics_segments_shadow_check_and_versions() -> None:
    body = promotion_summary(LEDGER, {"data.rev_name": "training-set/churn/2026-11-20", "code.version": "0.1.0+abc"})
    assert "**churn v3** against the champion **v2**. Gate: **promote**, roc_auc +0.012 >= 0.002." in body
    assert "| roc_auc | 0.6980 | 0.7100 |" in body and "| log_loss | 0.4300 | 0.4100 |" in body
    assert "| premium | roc_auc | 0.7000 | 0.6900 | -0.0100 | yes |" in body
    assert "Shadow check: passed, 2000 rows, p95 41.2 ms" in body
    assert "training-set/churn/2026-11-20" in body and "0.1.0+abc" in body and "aaaaaaaaaaaa" in body
    first = promotion_summary({**LEDGER, "champion_version": None, "champion_metrics": None, "shadow": None}, {})
    assert "the champion **vnone**" in first and "| roc_auc |  | 0.7100 |" in first


def test_the_retraining_form_shows_the_alarm() -> None:
    performance = {"status": "scored", "metric": "roc_auc", "value": 0.61, "floor": 0.65}
    body = alarm_summary({"reason": "drift", "partition": "2026-11-20", "drift_share": 0.46, "threshold": 0.3,
                          "drifted_columns": ["tenure_days"], "report_url": "/mlops/reports/drift/x.html",
                          "performance": performance})  # fmt: skip
    assert "**drift** alarm for **2026-11-20**: drift share 0.4600 (threshold 0.3000)." in body
    assert "tenure_days" in body and "roc_auc on late labels: 0.6100 (floor 0.6500)" in body
    assert "[Drift report](/mlops/reports/drift/x.html)" in body


def test_an_answer_is_recorded_with_who_when_and_why() -> None:
    at = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.timezone.utc)
    approved = human_verdict({"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "ana"},
                              "responded_at": at, "params_input": {"note": "deltas fine"}})  # fmt: skip
    assert approved == {"decision": "approve", "by": "ana", "at": "2026-11-28T09:30:00+00:00", "note": "deltas fine"}
    timed_out = human_verdict({"chosen_options": ["Reject"], "responded_by_user": None, "responded_at": at})
    assert timed_out["decision"] == "reject" and timed_out["by"].startswith("timeout")


def test_the_factory_puts_the_approvals_where_the_spec_asks() -> None:
    from mlops_provider.loop.factory import build_dags
    from tests.unit.loop.test_factory import twin_of

    plain = build_dags(twin_of("churn_p"))
    assert "approve" not in plain["churn_p__promotion"].task_ids
    assert "review_retraining" not in plain["churn_p__drift_monitoring"].task_ids
    asked = build_dags(twin_of("churn_h", **{"gate.human_approval": True, "retraining.human_review": True,
                                             "gate.approval_timeout_hours": 2}))  # fmt: skip
    promotion = asked["churn_h__promotion"]
    assert promotion.get_task("shadow_check").downstream_task_ids == {"approve"}
    assert promotion.get_task("approve").downstream_task_ids == {"deploy"}  # the churn spec serves live
    assert promotion.get_task("approve").response_timeout == dt.timedelta(hours=2)
    monitoring = asked["churn_h__drift_monitoring"]
    # trigger_training also reads the alarm (its XCom); a rejected review skips it
    assert monitoring.get_task("drift_sensor").downstream_task_ids == {"review_retraining", "trigger_training"}
    # the review comes before the trigger; the days' triggers then go in date order (previous_decision)
    assert monitoring.get_task("review_retraining").downstream_task_ids == {"previous_decision"}
    assert monitoring.get_task("previous_decision").downstream_task_ids == {"trigger_training"}


def test_an_answer_is_recorded_once_however_often_a_re_run_honours_it() -> None:
    from mlops_provider.operators.approval import record_answer

    answer = {"decision": "approve", "by": "ana", "at": "2026-11-28T09:30:00+00:00", "note": "ok", "task": "d/r/a"}
    records: list[dict] = []
    assert record_answer(records, dict(answer)) is True
    assert record_answer(records, {**answer, "note": "ok"}) is False  # the same answer, honoured again
    assert record_answer(records, {**answer, "at": "2026-11-29T10:00:00+00:00", "decision": "reject"}) is True
    assert record_answer(records, {**answer, "task": "d/r2/a"}) is True  # another run's answer
    assert [r["decision"] for r in records] == ["approve", "reject", "approve"]


def test_a_timeout_never_replaces_an_answer_a_human_gave_the_same_task() -> None:
    from mlops_provider.operators.approval import event_of, human_answer_for

    at = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.timezone.utc)
    given = {**human_verdict({"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "ana"},
                              "responded_at": at, "params_input": {"note": "fine"}}), "task": "d/r/a"}  # fmt: skip
    timed_out = {**human_verdict({"chosen_options": ["Reject"], "responded_by_user": None, "responded_at": at}),
                 "task": "d/r/a"}  # fmt: skip
    assert human_answer_for([given, timed_out], "d/r/a") == given
    assert human_answer_for([timed_out], "d/r/a") is None
    assert human_answer_for([given], "d/other/a") is None
    assert human_verdict(event_of(given)) == {k: given[k] for k in ("decision", "by", "at", "note")}


def test_a_re_run_asks_again_only_when_no_answer_was_given() -> None:
    from types import SimpleNamespace

    from mlops_provider.triggers.approval import kept_answer_action

    def response(received: bool, user: dict | None) -> SimpleNamespace:
        return SimpleNamespace(response_received=received, responded_by_user=user)

    assert kept_answer_action(response(True, {"id": "7", "name": "ana"})) is None  # honour it
    assert kept_answer_action(response(False, None)) is None  # still open: wait for it
    assert "timeout default" in str(kept_answer_action(response(True, None)))
    assert "no request" in str(kept_answer_action(None))
