"""The scenario generators' rules (mlops_provider.demo.scenarios): seeded, autocorrelated, and the truth they
declare holds for a fixed model (a harmful change costs it >= 0.05 ROC AUC on large samples; a calm stretch or a
harmless change does not). Margins of the signals are the bench's business (bench/bench_scenarios.py), not these
tests'."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mlops_provider.demo.scenarios import FEATURES, HARMFUL, LABEL_COLUMN, SCENARIOS, Scenario, scenario

pytestmark = pytest.mark.unit

ROWS = 3000  # large days: the AUC of a pooled stretch is then far more precise than the 0.05 the tests check


def _champion_auc(s: Scenario) -> dict[str, float]:
    """A fixed model (logistic regression trained once on the window) scored on the calm days before the change and
    on the changed days."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    t = s.truth
    window = s.days(t.window)
    means = window[list(FEATURES)].mean()
    model = LogisticRegression(max_iter=500).fit(window[list(FEATURES)], window[LABEL_COLUMN])

    def auc(days: list[dt.date]) -> float:
        frame = s.days(days)
        return float(roc_auc_score(frame[LABEL_COLUMN], model.predict_proba(frame[list(FEATURES)].fillna(means))[:, 1]))

    change = t.change_from or t.monitored[-1] + dt.timedelta(days=1)
    before = [d for d in t.monitored if d < change]
    after = [d for d in t.monitored if d >= change and d not in t.incident]
    return {"window": auc(t.window), "before": auc(before), "after": auc(after) if after else float("nan"),
            "first_two": auc(after[:2]) if after else float("nan")}  # fmt: skip


def test_the_same_seed_gives_the_same_frames_and_another_seed_other_frames():
    a, b = scenario("season_change", seed=3), scenario("season_change", seed=3)
    assert list(a.frames) == list(b.frames)
    for day in a.frames:
        assert a.frames[day].equals(b.frames[day])
    other = scenario("season_change", seed=4)
    assert not other.frames[a.truth.window[0]].equals(a.frames[a.truth.window[0]])


def test_every_scenario_shares_the_calm_stretch_of_its_seed():
    calm = scenario("calm", seed=1)
    for name in SCENARIOS:
        if name == "small_sample":
            continue  # other day sizes, other rows
        s = scenario(name, seed=1)
        for day in [*s.truth.window, *s.truth.calm[:5]]:
            assert s.frames[day].equals(calm.frames[day]), (name, day)


def test_days_are_shaped_like_the_real_case():
    s = scenario("calm", seed=0)
    assert {len(f) for f in s.frames.values()} == {900}
    assert {len(f) for f in scenario("small_sample", seed=0).frames.values()} == {750}  # ~150 labelled at 20%
    frame = s.frames[s.truth.window[0]]
    assert set(frame.columns) == {"customer_id", "event_ts", *FEATURES, LABEL_COLUMN}
    assert frame["event_ts"].dt.date.eq(s.truth.window[0]).all()
    assert set(frame[LABEL_COLUMN].unique()) == {0, 1}
    assert len(s.truth.calibration) == 21 and len(s.truth.window) == 7 and len(s.truth.monitored) == 60


@pytest.mark.parametrize("column", ["temperature", "humidity", "cloud", "pressure"])
def test_the_slowly_moving_columns_daily_means_are_autocorrelated(column):
    s = scenario("calm", seed=0, calm_days=150, changed_days=1)
    means = np.array([s.frames[d][column].mean() for d in sorted(s.frames)])
    assert np.corrcoef(means[:-1], means[1:])[0, 1] > 0.5
    amount = np.array([s.frames[d]["amount"].mean() for d in sorted(s.frames)])
    assert abs(np.corrcoef(amount[:-1], amount[1:])[0, 1]) < 0.3  # the iid column is not


def test_truth_names_the_calm_days_the_change_and_the_incident():
    calm = scenario("calm", seed=0).truth
    assert calm.change_from is None and calm.calm == calm.monitored and not calm.harmful_days
    season = scenario("season_change", seed=0).truth
    assert season.harmful and season.change_from == season.monitored[40]
    assert season.calm == season.monitored[:40] and season.harmful_days == season.monitored[40:]
    ignored = scenario("ignored_drift", seed=0).truth
    assert not ignored.harmful and ignored.calm == ignored.monitored  # harmless: every day is calm
    incident = scenario("data_quality", seed=0)
    day = incident.truth.incident[0]
    assert day == incident.truth.change_from and day not in incident.truth.calm
    assert incident.frames[day]["temperature"].isna().mean() > 0.6 and incident.frames[day]["amount"].nunique() == 1
    after = incident.truth.monitored[incident.truth.monitored.index(day) + 1]
    assert incident.frames[after]["temperature"].notna().all() and incident.frames[after]["amount"].nunique() > 1


def test_an_unknown_scenario_is_refused_by_name():
    with pytest.raises(ValueError, match="'winter'.*calm"):
        scenario("winter")


@pytest.mark.parametrize("name", HARMFUL)
def test_a_harmful_change_drops_a_fixed_models_auc_by_at_least_0_05_and_calm_days_keep_it(name):
    auc = _champion_auc(scenario(name, seed=0, rows_per_day=ROWS))
    assert abs(auc["before"] - auc["window"]) < 0.02  # the calm stretch keeps the champion's AUC
    assert auc["before"] - auc["after"] >= 0.05
    assert auc["before"] - auc["first_two"] >= 0.05  # from its first days on, not only once it has built up


@pytest.mark.parametrize("name", ["calm", "ignored_drift", "label_shift", "data_quality"])
def test_a_harmless_scenario_keeps_the_fixed_models_auc(name):
    auc = _champion_auc(scenario(name, seed=0, rows_per_day=ROWS))
    assert abs(auc["before"] - auc["window"]) < 0.02
    if name != "calm":
        assert abs(auc["after"] - auc["before"]) < 0.03
