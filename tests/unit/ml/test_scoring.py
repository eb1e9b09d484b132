"""The promotion gate's pure rules: the decision over floors, improvement, segments and behaviour tests, and the
holdout split."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_provider.ml.scoring import binary_labels, decide

pytestmark = pytest.mark.unit

RULES = {
    "primary_metric": "roc_auc", "min_improvement": 0.002, "floors": {"roc_auc": 0.65, "log_loss": 0.6},
    "lower_is_better": ["log_loss"], "segment_metric": "roc_auc", "max_segment_regression": 0.05,
    "require_behaviour_tests": True,
}  # fmt: skip


def scores(auc: float, log_loss: float = 0.4, **segments: float) -> dict:
    return {"overall": {"roc_auc": auc, "log_loss": log_loss},
            "segments": {name: {"roc_auc": value} for name, value in segments.items()}}  # fmt: skip


def failed(checks: list[dict]) -> list[str]:
    return [f"{c['check']}({c['metric']})" for c in checks if not c["passed"]]


def test_without_a_champion_floors_and_behaviour_decide():
    checks, decision, reason = decide(RULES, scores(0.7), None, [])
    assert decision == "promote" and reason.startswith("no champion yet") and failed(checks) == []
    checks, decision, _ = decide(RULES, scores(0.6, log_loss=0.7), None, [])
    assert decision == "reject" and failed(checks) == ["floor(roc_auc)", "floor(log_loss)"]  # lower is better


def test_the_challenger_must_beat_the_champion_by_the_margin_and_no_segment_may_regress_too_far():
    champion = scores(0.70, a=0.70, b=0.70)
    assert decide(RULES, scores(0.703, a=0.71, b=0.69), champion, [])[1] == "promote"
    checks, decision, _ = decide(RULES, scores(0.701, a=0.71, b=0.70), champion, [])
    assert decision == "reject" and failed(checks) == ["improvement(roc_auc)"]
    checks, decision, _ = decide(RULES, scores(0.75, a=0.80, b=0.64), champion, [])
    assert decision == "reject" and failed(checks) == ["segment:b(roc_auc)"]


def test_a_failed_behaviour_test_rejects_unless_the_rules_do_not_require_them():
    behaviour = [{"kind": "directional", "name": "tickets", "observed": [0.3, 0.2], "expected": "increasing",
                  "passed": False}]  # fmt: skip
    assert failed(decide(RULES, scores(0.7), None, behaviour)[0]) == ["behaviour:directional(tickets)"]
    assert decide({**RULES, "require_behaviour_tests": False}, scores(0.7), None, behaviour)[1] == "promote"


def test_binary_labels_compare_numbers_as_numbers_and_anything_else_as_text():
    assert binary_labels(pd.Series([0, 1, 1.0, None]), 1).tolist() == [0, 1, 1, 0]
    assert binary_labels(pd.Series(["1", "0"]), 1).tolist() == [1, 0]
    assert binary_labels(pd.Series(["fraud", "ok", None]), "fraud").tolist() == [1, 0, 0]
    assert binary_labels(pd.Series([True, False]), True).tolist() == [1, 0]
