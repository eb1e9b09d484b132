"""Time-ordered data with day-level effects: the case where a key-hash holdout flatters a model.

Each day has its own random shift of the label's log-odds (weather, a campaign, an outage: anything the rows of
one day share) and a slowly moving day-level feature (``weather``: rising by 0.5 a day, plus a little per-row
noise) that identifies the day. A model can learn each training day's shift through that feature: rows of the same
day in a key-hash holdout reward it; days after the training window do not (their shifts are new, and their
weather lies beyond every training day's, so a tree model gives them all one constant, which does not change a
ranking). The real signal (``usage``, ``tenure``) is the same on every day, so two models trained on equally long
windows are about equally good on days neither has seen.

Pure and seeded: the rows of a day depend only on the day's index from ``start``, the seed and the settings, never
on which other days were generated. The scenario suite (``bench/``) and the tests call :func:`day_effect_days`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

KEY_COLUMN = "customer_id"
TIMESTAMP_COLUMN = "event_ts"
LABEL_COLUMN = "churned"
NUMERICAL = ("usage", "tenure", "weather")


def day_effect_days(
    start: dt.date,
    days: int,
    *,
    rows_per_day: int = 600,
    day_effect_sd: float = 1.0,
    customers: int = 20_000,
    seed: int = 0,
) -> Any:
    """``days`` days of rows from ``start`` (a pandas DataFrame, oldest first).

    Columns: ``customer_id`` (the key; a customer appears on many days), ``event_ts`` (a time within the day, UTC),
    ``usage`` and ``tenure`` (the real signal, the same relationship every day), ``weather`` (the day's value, ``10
    + 0.5 * day index`` plus a day's jitter of sd 0.1, plus per-row noise of sd 0.05: identifies the day),
    ``day_effect`` (the day's shift of the log-odds; the truth, not a feature) and ``churned`` (0/1: ``sigmoid(-1 +
    1.2 usage - 0.8 tenure + day_effect)``).

    :param day_effect_sd: standard deviation of the per-day shift of the log-odds (0: no day-level effect).
    :param customers: size of the customer population the keys are drawn from.
    """
    import numpy as np
    import pandas as pd

    frames = []
    for index in range(days):
        rng = np.random.default_rng([seed, index])
        day = start + dt.timedelta(days=index)
        weather = 10.0 + 0.5 * index + rng.normal(0.0, 0.1)  # slowly rising, like a season: new days lie beyond
        shift = rng.normal(0.0, day_effect_sd) if day_effect_sd > 0 else 0.0
        usage, tenure = rng.normal(0.0, 1.0, rows_per_day), rng.normal(0.0, 1.0, rows_per_day)
        logit = -1.0 + 1.2 * usage - 0.8 * tenure + shift
        seconds = np.sort(rng.integers(0, 86_400, rows_per_day))
        frames.append(
            pd.DataFrame(
                {
                    KEY_COLUMN: [f"c{k}" for k in rng.integers(0, customers, rows_per_day)],
                    TIMESTAMP_COLUMN: pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s"),
                    "usage": usage,
                    "tenure": tenure,
                    "weather": weather + rng.normal(0.0, 0.05, rows_per_day),
                    "day_effect": shift,
                    LABEL_COLUMN: (rng.uniform(size=rows_per_day) < 1 / (1 + np.exp(-logit))).astype(int),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
