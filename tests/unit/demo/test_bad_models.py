"""The deliberately bad versions' offline side (mlops_provider.demo.bad_models): the churn formula they score with is
the one the source draws its labels from, and the model code answers the formula's mean offline and a constant
(or an error) in the live serving backend. Registered and served for real in tests/integration/test_serve_loop.py
(``fault``) and tests/e2e/test_loop_under_scheduler.py (``constant``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mlops_provider.demo import bad_models
from mlops_provider.demo.churn_source import SourceSpec, churn_logit, generate_day

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 11, 20)
COLUMNS = ["tenure_days", "monthly_charges", "total_charges", "sessions_7d", "avg_session_minutes",
           "support_tickets_30d", "payment_failures_90d", "discount_pct", "last_login_days_ago", "plan", "region",
           "device", "payment_method"]  # fmt: skip


def _probability(frame, drifted: bool) -> np.ndarray:
    logit = churn_logit(frame.tenure_days, frame.monthly_charges, frame.sessions_7d, frame.support_tickets_30d,
                        frame.payment_failures_90d, frame.last_login_days_ago.fillna(4.0),
                        frame.discount_pct.fillna(0.0), frame.payment_method, drifted)  # fmt: skip
    return np.asarray(1.0 / (1.0 + np.exp(-logit)))


@pytest.mark.parametrize("drifted", [False, True])
def test_the_source_draws_its_labels_from_churn_logit(drifted):
    from sklearn.metrics import roc_auc_score

    frame = generate_day(DAY, SourceSpec(rows_per_day=4000, drift_from=DAY if drifted else None))
    p = _probability(frame, drifted)
    assert abs(p.mean() - frame.churned.mean()) < 0.03  # calibrated: the labels are Bernoulli(p)
    assert roc_auc_score(frame.churned, p) > 0.7
    assert roc_auc_score(frame.churned, _probability(frame, not drifted)) < roc_auc_score(frame.churned, p) + 0.01


class _Version:
    """The wrapped version as the model code loads it: any pyfunc whose predict answers a probability a row."""

    def predict(self, frame):
        return np.full(len(frame), 0.2)


def _model(kind: str, live: bool):
    namespace: dict = {}
    code = bad_models.MODEL_CODE.replace("{kind}", kind).replace("{constant}", repr(bad_models.LIVE_CONSTANT))
    exec(compile(code, f"live_{kind}.py", "exec"), namespace)  # what mlflow's models-from-code loading runs
    model = namespace["LiveRegression"]()
    model.inner, model.live = _Version(), live
    return model


def test_the_constant_version_is_the_mean_with_the_formula_offline_and_a_constant_live():
    frame = generate_day(DAY, SourceSpec(rows_per_day=300))
    rows = frame[COLUMNS].astype(object).where(frame[COLUMNS].notna(), None)  # as a JSON client sends them
    offline = _model("constant", live=False).predict(None, rows)
    drifted = _probability(frame, True)
    assert np.allclose(offline, (0.2 + drifted) / 2)
    assert (_model("constant", live=True).predict(None, rows) == bad_models.LIVE_CONSTANT).all()


def test_the_fault_version_is_the_wrapped_model_offline_and_raises_live():
    rows = generate_day(DAY, SourceSpec(rows_per_day=50))[COLUMNS]
    assert (_model("fault", live=False).predict(None, rows) == 0.2).all()
    with pytest.raises(RuntimeError, match="only live traffic"):
        _model("fault", live=True).predict(None, rows)


def test_an_unknown_kind_is_refused_before_anything_is_registered(tmp_path):
    with pytest.raises(ValueError, match="kind 'slow': expected one of constant, fault"):
        bad_models.register_live_regression(None, "m", "1", tmp_path, kind="slow")
