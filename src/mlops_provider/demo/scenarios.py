"""Scenarios with known truth for the decision signals (issue 28, item 6): daily frames shaped like real data.

Every scenario is the same world, seeded, and differs only in what happens after a calm stretch:

- **~900 rows a day** (one row per event), a key (``customer_id``) and a timestamp (``event_ts``) per row;
- **slowly moving columns** whose daily means follow an AR(1) (lag-1 correlation ~0.8-0.95), rows spread around
  the day's mean: ``temperature`` (plus a yearly season, near its summer peak on the calm days) and ``humidity``,
  both of which the label depends on; ``cloud`` (AR(1), the label ignores it); ``pressure`` (one value a day
  with little spread within it, like weather joined per day: it identifies the day; the label ignores it);
  ``amount`` (independent from row to row, used);
- a **label from a fixed logistic model** of the features, plus a per-day shift of the log-odds (what the rows of
  one day share: a campaign, an outage), ``logit = -1.2 + 1.0 |temperature| + 0.8 h(humidity) + 0.8 amount +
  day_effect`` with ``h(x) = 1.5 - |x - 1.5|`` (rising, then falling past 1.5) and ``|temperature|`` centred.
  On summer days temperature lies mostly above 0 and humidity below 1.5, where both relations look linear: a
  champion trained there learns straight lines, which stop holding where the columns have not been before.

The timeline: ``calibration_days`` calm days, the champion's training window (``window_days``), then the monitored
days: ``calm_days`` calm days and, from ``Truth.change_from``, ``changed_days`` days of the scenario's change.
``Truth`` says which monitored days are calm (an alarm there is false), when the change starts, whether it hurts
the champion (the issue's line: ROC AUC down by >= 0.05) and which days are a data-quality incident.

Pure and seeded (numpy and pandas only): the same name, seed and settings give the same frames. The suite is
``bench/bench_scenarios.py``; the rules of the generators are tested in ``tests/unit/demo/test_scenarios.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

KEY_COLUMN = "customer_id"
TIMESTAMP_COLUMN = "event_ts"
LABEL_COLUMN = "label"
FEATURES = ("temperature", "humidity", "amount", "cloud", "pressure")
#: Columns the label depends on (the others drift without consequence).
USED = ("temperature", "humidity", "amount")
START = dt.date(2025, 5, 1)

#: AR(1) daily means: column -> (coefficient, innovation sd, spread of rows within a day).
AR_COLUMNS = {
    "temperature": (0.8, 0.3, 1.0),
    "humidity": (0.9, 0.2, 1.0),
    "cloud": (0.9, 0.25, 1.0),
    "pressure": (0.95, 0.2, 0.05),
}
SEASON_AMPLITUDE = 2.0  # temperature's yearly cycle (row-sd units); the summer peak is mid-way through the calm days
INTERCEPT = -1.2
DAY_EFFECT_SD = 0.5
HUMIDITY_TURN = 1.5

SCENARIOS: dict[str, str] = {
    "calm": "no change: every monitored day is calm",
    "season_change": "the season turns: temperature's level falls by 2.5 over 2 days (the model leans on it)",
    "covariate_drift": "humidity's level rises by 3, past the turn of its relation with the label (the champion's "
    "straight line no longer holds where the rows go): hurts",
    "covariate_shift": "amount's spread within a day narrows to 0.2 and humidity's to 0.3 (P(y|x) and the champion's "
    "calibration hold where the rows go; the columns it ranks by separate less): hurts",
    "ignored_drift": "cloud's level rises by 3: a column the label ignores; harmless",
    "label_shift": "the base rate rises (intercept -1.2 -> 0); the features and their effects stay: harmless to AUC",
    "concept_drift": "amount's effect on the label reverses (0.8 -> -0.8); the features do not move",
    "data_quality": "one day: 70% of temperature is null and amount is a constant 0; the next day is normal again",
    "small_sample": "the season change on days of 750 rows (~150 labelled holdout rows a day at a 20% holdout)",
}
#: Scenarios whose change hurts the champion (retraining is warranted from the change on).
HARMFUL = ("season_change", "covariate_drift", "covariate_shift", "concept_drift", "small_sample")


@dataclass(frozen=True)
class Truth:
    """What is known about a scenario's days.

    :param calibration: calm days before the champion's window (what learned drift thresholds may also score).
    :param window: the champion's training window.
    :param monitored: the days after the window, oldest first.
    :param change_from: the first day of the change (None: no change).
    :param harmful: whether the change hurts the champion (retraining warranted from ``change_from`` on).
    :param calm: monitored days on which no retraining is warranted (an alarm there is false): the days before the
        change, or every monitored day of a harmless change, less the incident days.
    :param incident: days of a data-quality incident (validation's job; retraining on them is wrong).
    """

    calibration: list[dt.date]
    window: list[dt.date]
    monitored: list[dt.date]
    change_from: dt.date | None
    harmful: bool
    calm: list[dt.date]
    incident: list[dt.date] = field(default_factory=list)

    @property
    def harmful_days(self) -> list[dt.date]:
        """Monitored days on which retraining is warranted."""
        if not self.harmful or self.change_from is None:
            return []
        return [d for d in self.monitored if d >= self.change_from]


@dataclass(frozen=True)
class Scenario:
    """A scenario's frames (one DataFrame per day) and its truth."""

    name: str
    description: str
    seed: int
    frames: dict[dt.date, Any]
    truth: Truth
    features: tuple[str, ...] = FEATURES
    label: str = LABEL_COLUMN

    def days(self, days: list[dt.date]) -> Any:
        """The rows of ``days``, concatenated (a pandas DataFrame)."""
        import pandas as pd

        return pd.concat([self.frames[d] for d in days], ignore_index=True)


def ar1(n: int, coefficient: float, innovation_sd: float, rng: Any) -> Any:
    """A stationary AR(1) series of ``n`` values (mean 0): ``x_t = c x_{t-1} + e_t``, ``e_t ~ N(0, sd^2)``, started
    from its stationary distribution."""
    import numpy as np

    x = np.empty(n)
    x[0] = rng.normal(0.0, innovation_sd / np.sqrt(1 - coefficient**2))
    for t in range(1, n):
        x[t] = coefficient * x[t - 1] + rng.normal(0.0, innovation_sd)
    return x


def true_logit(frame: Any, *, intercept: float = INTERCEPT, amount_effect: float = 0.8) -> Any:
    """The label's log-odds without the day effect (nulls count as the column's summer mean)."""
    import numpy as np

    temperature = np.nan_to_num(frame["temperature"].to_numpy(dtype=float), nan=SEASON_AMPLITUDE)
    humidity = frame["humidity"].to_numpy(dtype=float)
    humidity_term = HUMIDITY_TURN - np.abs(humidity - HUMIDITY_TURN)
    return (
        intercept
        + 1.0 * (np.abs(temperature) - SEASON_AMPLITUDE)
        + 0.8 * humidity_term
        + amount_effect * frame["amount"].to_numpy(dtype=float)
    )


def scenario(
    name: str,
    *,
    seed: int = 0,
    rows_per_day: int | None = None,
    calibration_days: int = 21,
    window_days: int = 7,
    calm_days: int = 40,
    changed_days: int = 20,
    start: dt.date = START,
) -> Scenario:
    """The frames and truth of scenario ``name`` (one of :data:`SCENARIOS`).

    :param rows_per_day: rows of each day (default 900; 750 for ``small_sample``).
    :param calm_days: monitored calm days before the change (for ``calm``: all monitored days are calm).
    :param changed_days: monitored days from the change on.
    """
    import numpy as np
    import pandas as pd

    if name not in SCENARIOS:
        raise ValueError(f"scenario {name!r} is not one of {', '.join(SCENARIOS)}")
    if min(window_days, calm_days, changed_days) < 1 or calibration_days < 0:
        raise ValueError("window_days, calm_days and changed_days must be >= 1 and calibration_days >= 0")
    rows = rows_per_day or (750 if name == "small_sample" else 900)
    n_days = calibration_days + window_days + calm_days + changed_days
    days = [start + dt.timedelta(days=i) for i in range(n_days)]
    change_index = calibration_days + window_days + calm_days
    change_from = days[change_index] if name != "calm" else None

    # Daily series: independent of the scenario's change, so every scenario shares its calm stretch (same seed).
    rng = np.random.default_rng([seed, 28])
    means = {column: ar1(n_days, c, sd, rng) for column, (c, sd, _) in AR_COLUMNS.items()}
    peak = change_index / 2  # the summer peak mid-way through the calm days
    index = np.arange(n_days)
    means["temperature"] = means["temperature"] + SEASON_AMPLITUDE * np.cos(2 * np.pi * (index - peak) / 365)
    means["pressure"] = means["pressure"] * 4  # one value a day, days far apart relative to the spread within one
    day_effect = rng.normal(0.0, DAY_EFFECT_SD, n_days)
    after = index >= change_index
    if name in ("season_change", "small_sample"):
        ramp = np.clip((index - change_index + 1) / 2, 0.0, 1.0)  # half on the first day, all from the second
        means["temperature"] = means["temperature"] - 2.5 * ramp
    elif name == "covariate_drift":
        means["humidity"] = means["humidity"] + 3.0 * after
    elif name == "ignored_drift":
        means["cloud"] = means["cloud"] + 3.0 * after

    frames = {}
    for i, day in enumerate(days):
        day_rng = np.random.default_rng([seed, 28, i])
        narrow = name == "covariate_shift" and bool(after[i])
        spread = {c: AR_COLUMNS[c][2] for c in AR_COLUMNS} | {"amount": 1.0}
        if narrow:
            spread.update(amount=0.2, humidity=0.3)
        columns = {c: means[c][i] + day_rng.normal(0.0, spread[c], rows) for c in ("temperature", "humidity", "cloud")}
        columns["pressure"] = means["pressure"][i] + day_rng.normal(0.0, spread["pressure"], rows)
        columns["amount"] = day_rng.normal(0.0, spread["amount"], rows)
        seconds = np.sort(day_rng.integers(0, 86_400, rows))
        frame = pd.DataFrame(
            {
                KEY_COLUMN: [f"c{k}" for k in day_rng.integers(0, 50_000, rows)],
                TIMESTAMP_COLUMN: pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s"),
                **{c: columns[c] for c in FEATURES},
            }
        )
        changed = bool(after[i])
        logit = true_logit(
            frame,
            intercept=0.0 if name == "label_shift" and changed else INTERCEPT,
            amount_effect=-0.8 if name == "concept_drift" and changed else 0.8,
        )
        frame[LABEL_COLUMN] = (day_rng.uniform(size=rows) < 1 / (1 + np.exp(-(logit + day_effect[i])))).astype(int)
        if name == "data_quality" and i == change_index:  # the incident: after the label, as a broken feed would
            frame.loc[day_rng.uniform(size=rows) < 0.7, "temperature"] = np.nan
            frame["amount"] = 0.0
        frames[day] = frame

    calibration = days[:calibration_days]
    window = days[calibration_days : calibration_days + window_days]
    monitored = days[calibration_days + window_days :]
    harmful = name in HARMFUL
    incident = [change_from] if name == "data_quality" and change_from else []
    if harmful and change_from is not None:
        calm = [d for d in monitored if d < change_from]
    else:
        calm = [d for d in monitored if d not in incident]
    truth = Truth(calibration, window, monitored, change_from, harmful, calm, incident)
    return Scenario(name, SCENARIOS[name], seed, frames, truth)
