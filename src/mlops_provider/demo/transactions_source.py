"""Second demo source: card transactions with a fraud label, a schema unlike the churn demo's.

Key ``card_id`` (cards recur across days), label ``is_fraud`` known three days later, a segment ``channel``, a
different mix of features (amounts, counts, distances, an hour, three categoricals), no ``plan``. Deterministic
like the churn source: the rows of a date depend only on the date, the seed and the drift/bad-data settings.
From ``drift_from`` on: larger amounts, more online payments, a new merchant category (``crypto``), longer
distances, and fraud that moves online. Bad data on chosen dates uses the same kinds as the churn source.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from mlops_provider.demo.churn_source import CorruptibleColumns, SourceSpec, SourceTable, corrupt

if TYPE_CHECKING:
    import pandas as pd

TABLE = "card_transactions"
TIMESTAMP_COLUMN = "tx_ts"
CARDS = 40_000
CATEGORIES = ("grocery", "fuel", "dining", "travel", "electronics", "online_services")
DRIFT_CATEGORY = "crypto"
CHANNELS = ("chip", "contactless", "online", "atm")

COLUMNS: dict[str, str] = {
    "tx_id": "VARCHAR(40)",
    "card_id": "VARCHAR(20)",
    "tx_ts": "TIMESTAMP",
    "amount": "DOUBLE PRECISION",
    "merchant_category": "VARCHAR(30)",
    "channel": "VARCHAR(20)",
    "card_present": "INTEGER",
    "card_age_days": "INTEGER",
    "tx_count_24h": "INTEGER",
    "avg_amount_30d": "DOUBLE PRECISION",
    "distance_km": "DOUBLE PRECISION",
    "hour_of_day": "INTEGER",
    "is_fraud": "INTEGER",
}
BROKEN = CorruptibleColumns(amount="amount", number="card_age_days", category="channel", row_id="tx_id")


def generate_day(day: dt.date, spec: SourceSpec) -> pd.DataFrame:
    """Transactions of one day, deterministic in (spec.seed, day, drift, bad kind)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(spec.day_seed(day, salt=7_919))
    drifted = spec.drift_from is not None and day >= spec.drift_from
    n = int(spec.rows_per_day * rng.uniform(0.95, 1.05))
    cards = rng.integers(0, CARDS, size=n)
    seconds = np.sort(rng.integers(0, 86_400, size=n))
    hour = seconds // 3600
    categories, category_p = list(CATEGORIES), [0.3, 0.15, 0.2, 0.08, 0.12, 0.15]
    channel_p = [0.35, 0.35, 0.22, 0.08]
    amount = rng.lognormal(3.4, 0.9, size=n)
    distance = rng.exponential(8.0, size=n)
    if drifted:
        categories.append(DRIFT_CATEGORY)
        category_p = [0.22, 0.1, 0.15, 0.08, 0.12, 0.15, 0.18]
        channel_p = [0.2, 0.3, 0.45, 0.05]
        amount = amount * 1.6
        distance = rng.exponential(20.0, size=n)
    category = rng.choice(categories, size=n, p=category_p)
    channel = rng.choice(CHANNELS, size=n, p=channel_p)
    present = (channel != "online").astype(int)
    card_age = (cards % 3000) + rng.integers(1, 30, size=n)
    count_24h = rng.poisson(2.5, size=n)
    avg_30d = amount * rng.lognormal(0.0, 0.35, size=n)
    night = (hour < 6).astype(float)
    logit = (
        -5.0
        + 2.2 * np.log1p(amount / np.maximum(avg_30d, 1.0))
        + 0.55 * count_24h
        + 0.05 * distance
        + 1.8 * night
        - 0.0008 * card_age
        + np.where(category == "electronics", 1.2, 0.0)
        + np.where(present == 0, 1.0, 0.0)
    )
    if drifted:
        logit = logit + np.where(channel == "online", 0.9, -0.4) + np.where(category == DRIFT_CATEGORY, 1.2, 0.0)
    fraud = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "tx_id": [f"T{day.strftime('%Y%m%d')}{i:07d}" for i in range(n)],
            "card_id": [f"K{c:06d}" for c in cards],
            "tx_ts": pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s"),
            "amount": np.round(amount, 2),
            "merchant_category": category,
            "channel": channel,
            "card_present": present,
            "card_age_days": card_age.astype(int),
            "tx_count_24h": count_24h.astype(int),
            "avg_amount_30d": np.round(avg_30d, 2),
            "distance_km": np.round(distance, 1),
            "hour_of_day": hour.astype(int),
            "is_fraud": fraud,
        }
    )
    frame.loc[rng.uniform(size=n) < 0.03, "avg_amount_30d"] = np.nan  # new cards have no history
    kind = spec.bad_dates.get(day)
    if kind is not None:
        frame = corrupt(frame, kind, seed=spec.day_seed(day), columns=BROKEN)
    return frame


TRANSACTIONS = SourceTable(TABLE, COLUMNS, TIMESTAMP_COLUMN, generate_day)
