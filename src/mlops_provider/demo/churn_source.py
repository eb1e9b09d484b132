"""Demo source system: daily customer activity with a churn label, in a SQL database.

A seeded generator fills any date range deterministically: the rows of a date depend only on the date (or, with
an ``epoch``, on its distance from the epoch), the seed and the drift/bad-data settings, never on which other
dates were generated or in what order. It can
inject drift from a given date (shifted distributions, a new category, a higher null rate, a changed churn
relationship) and bad data on chosen dates.

The table lives in SQLite (embedded default) or PostgreSQL (distributed mode); writes go through SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

TABLE = "customer_activity"
KEY_COLUMN = "event_id"
TIMESTAMP_COLUMN = "event_ts"
LABEL_COLUMN = "churned"
SEGMENT_COLUMN = "plan"

PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
DEVICES = ("mobile", "desktop", "tablet")
DRIFT_DEVICE = "smart_tv"
PAYMENT_METHODS = ("card", "bank_transfer", "paypal")

#: Column name -> SQL type (portable across SQLite and PostgreSQL). This is the declared schema of the source.
COLUMNS: dict[str, str] = {
    "event_id": "VARCHAR(40)",
    "customer_id": "VARCHAR(20)",
    "event_ts": "TIMESTAMP",
    "signup_date": "DATE",
    "plan": "VARCHAR(20)",
    "region": "VARCHAR(20)",
    "device": "VARCHAR(20)",
    "payment_method": "VARCHAR(20)",
    "tenure_days": "INTEGER",
    "monthly_charges": "DOUBLE PRECISION",
    "total_charges": "DOUBLE PRECISION",
    "sessions_7d": "INTEGER",
    "avg_session_minutes": "DOUBLE PRECISION",
    "support_tickets_30d": "INTEGER",
    "payment_failures_90d": "INTEGER",
    "discount_pct": "DOUBLE PRECISION",
    "last_login_days_ago": "INTEGER",
    "churned": "INTEGER",
}

#: Kinds of bad data that can be stored in the SQL source itself (per date).
SOURCE_BAD_KINDS = (
    "null_flood",
    "out_of_range",
    "unknown_category",
    "duplicate_keys",
    "wrong_types",
    "row_count_collapse",
    "empty",
)


@dataclass(frozen=True)
class SourceSpec:
    """How to generate the source.

    :param seed: base seed; the same (seed, date) always yields the same rows.
    :param rows_per_day: mean number of rows a day (the actual count varies by +-5 % with the date).
    :param drift_from: first date with drifted data, or None for no drift.
    :param bad_dates: date -> kind of bad data (one of ``SOURCE_BAD_KINDS``).
    :param epoch: key the rows of a date by its distance from this date instead of by the date itself, so that a
        range placed relative to today (the demo, the end-to-end tests) holds the same rows on every calendar
        day, and so gives the same models and verdicts. None: keyed by the date.
    """

    seed: int = 42
    rows_per_day: int = 2000
    drift_from: dt.date | None = None
    bad_dates: dict[dt.date, str] = field(default_factory=dict)
    epoch: dt.date | None = None

    def __post_init__(self) -> None:
        for day, kind in self.bad_dates.items():
            if kind not in SOURCE_BAD_KINDS:
                raise ValueError(f"bad data kind {kind!r} for {day} is not one of {', '.join(SOURCE_BAD_KINDS)}")
        if self.rows_per_day < 20:
            raise ValueError(f"rows_per_day must be at least 20, got {self.rows_per_day}")

    def day_seed(self, day: dt.date, salt: int = 0) -> int:
        """The seed of ``day``'s rows (``salt`` tells tables apart)."""
        key = day.isoformat() if self.epoch is None else f"+{(day - self.epoch).days}"
        digest = hashlib.sha256(f"{self.seed + salt}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "little")


def churn_logit(
    tenure: Any,
    charges: Any,
    sessions: Any,
    tickets: Any,
    failures: Any,
    last_login: Any,
    discount: Any,
    payment: Any,
    drifted: bool,
) -> Any:
    """The log-odds of churn the source draws its labels from (arrays, one value a row; ``drifted``: the
    relationship from the drift date on). :func:`generate_day` draws with it; ``demo.bad_models`` scores with it."""
    import numpy as np

    logit = (
        -1.2
        - 0.0012 * tenure
        + 0.018 * (charges - 50.0)
        - 0.09 * (sessions - 12)
        + 0.55 * tickets
        + 0.8 * failures
        + 0.06 * last_login
        - 0.03 * discount
        + np.where(payment == "bank_transfer", -0.3, 0.0)
    )
    if drifted:
        # The relationship changes too: support tickets matter more, charges less.
        logit = logit + 0.5 * tickets - 0.01 * (charges - 50.0) + 0.3
    return logit


def generate_day(day: dt.date, spec: SourceSpec) -> pd.DataFrame:
    """Rows of one day, deterministic in (spec.seed, day, drift, bad kind)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(spec.day_seed(day))
    drifted = spec.drift_from is not None and day >= spec.drift_from
    n = int(spec.rows_per_day * rng.uniform(0.95, 1.05))

    customer_num = 100_000 + rng.choice(max(900_000, 10 * n), size=n, replace=False)
    seconds = np.sort(rng.integers(0, 86_400, size=n))
    midnight = pd.Timestamp(day)
    event_ts = midnight + pd.to_timedelta(seconds, unit="s")
    tenure = rng.gamma(2.0, 300.0, size=n).astype(int) + 1
    plan = rng.choice(PLANS, size=n, p=[0.5, 0.35, 0.15])
    plan_base = np.select([plan == "basic", plan == "standard"], [25.0, 55.0], 95.0)
    charges = plan_base * rng.normal(1.0, 0.12, size=n)
    sessions = rng.poisson(12, size=n)
    minutes = rng.lognormal(2.6, 0.5, size=n)
    tickets = rng.poisson(0.6, size=n)
    failures = rng.poisson(0.25, size=n)
    last_login = rng.exponential(4.0, size=n)
    devices = list(DEVICES)
    device_p = [0.55, 0.35, 0.10]
    discount_null_rate = 0.05
    if drifted:
        # Shifted distributions, a new category and a higher null rate from the drift date on.
        charges = charges * 1.35
        sessions = rng.poisson(7, size=n)
        tickets = rng.poisson(1.4, size=n)
        devices.append(DRIFT_DEVICE)
        device_p = [0.40, 0.25, 0.10, 0.25]
        discount_null_rate = 0.35
    device = rng.choice(devices, size=n, p=device_p)
    region = rng.choice(REGIONS, size=n)
    payment = rng.choice(PAYMENT_METHODS, size=n, p=[0.6, 0.25, 0.15])
    discount = np.round(rng.choice([0.0, 5.0, 10.0, 20.0], size=n, p=[0.6, 0.2, 0.15, 0.05]), 1)

    logit = churn_logit(tenure, charges, sessions, tickets, failures, last_login, discount, payment, drifted)
    churned = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)

    frame = pd.DataFrame(
        {
            "event_id": [f"{day.isoformat()}-{i:06d}" for i in range(n)],
            "customer_id": [f"C{c}" for c in customer_num],
            "event_ts": event_ts,
            "signup_date": (midnight - pd.to_timedelta(tenure, unit="D")).date,
            "plan": plan,
            "region": region,
            "device": device,
            "payment_method": payment,
            "tenure_days": tenure,
            "monthly_charges": np.round(charges, 2),
            "total_charges": np.round(charges * tenure / 30.0, 2),
            "sessions_7d": sessions,
            "avg_session_minutes": np.round(minutes, 2),
            "support_tickets_30d": tickets,
            "payment_failures_90d": failures,
            "discount_pct": discount,
            "last_login_days_ago": np.round(last_login).astype(int),
            "churned": churned,
        }
    )
    # Realistic gaps: some nulls in a few columns.
    frame.loc[rng.uniform(size=n) < 0.02, "total_charges"] = np.nan
    frame.loc[rng.uniform(size=n) < discount_null_rate, "discount_pct"] = np.nan
    frame["last_login_days_ago"] = frame["last_login_days_ago"].astype("Int64")
    frame.loc[rng.uniform(size=n) < 0.03, "last_login_days_ago"] = pd.NA

    kind = spec.bad_dates.get(day)
    if kind is not None:
        frame = corrupt(frame, kind, seed=spec.day_seed(day))
    return frame


@dataclass(frozen=True)
class CorruptibleColumns:
    """Which columns of a source ``corrupt`` breaks: a non-negative number, a second numeric column, a categorical
    column and the unique row id."""

    amount: str
    number: str
    category: str
    row_id: str


CHURN_COLUMNS = CorruptibleColumns(amount="monthly_charges", number="tenure_days", category="plan", row_id="event_id")


def corrupt(frame: pd.DataFrame, kind: str, seed: int = 0, columns: CorruptibleColumns = CHURN_COLUMNS) -> pd.DataFrame:
    """Return a copy of a good partition made bad in one way (used by the sources and by tests).

    Kinds: those of ``SOURCE_BAD_KINDS`` plus ``missing_column`` and ``extra_column`` (file-level only).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    bad = frame.copy()
    n = len(bad)
    c = columns
    if kind == "null_flood":
        bad[c.amount] = np.nan
        bad.loc[rng.uniform(size=n) < 0.6, c.number] = None
    elif kind == "out_of_range":
        bad.loc[bad.index[: max(1, n // 10)], c.amount] = -500.0
    elif kind == "unknown_category":
        bad.loc[bad.index[: max(1, n // 10)], c.category] = "platinum_plus"
    elif kind == "duplicate_keys":
        bad.loc[bad.index[1 : max(2, n // 5)], c.row_id] = bad[c.row_id].iloc[0]
    elif kind == "wrong_types":
        bad[c.amount] = bad[c.amount].astype(str)
        bad.loc[bad.index[: max(1, n // 10)], c.amount] = "n/a"
    elif kind == "row_count_collapse":
        bad = bad.iloc[: max(1, n // 100)].copy()
    elif kind == "empty":
        bad = bad.iloc[0:0].copy()
    elif kind == "missing_column":
        bad = bad.drop(columns=[c.amount])
    elif kind == "extra_column":
        bad["debug_blob"] = "x"
    else:
        raise ValueError(f"unknown kind of bad data: {kind!r}")
    return bad


def dates_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Dates from ``start`` to ``end`` inclusive."""
    if end < start:
        raise ValueError(f"end date {end} is before start date {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


@dataclass(frozen=True)
class SourceTable:
    """A demo source table: its name, declared columns (name -> SQL type), timestamp column and day generator."""

    table: str
    columns: dict[str, str]
    timestamp_column: str
    generate: Callable[[dt.date, SourceSpec], pd.DataFrame]


def create_table(engine: Any, source: SourceTable | None = None) -> None:
    """Create the source table and its timestamp index if they do not exist."""
    from sqlalchemy import text

    src = source or CHURN
    columns = ", ".join(f"{name} {sqltype}" for name, sqltype in src.columns.items())
    ts = src.timestamp_column
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {src.table} ({columns})"))
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{src.table}_{ts} ON {src.table} ({ts})"))


def seed_range(
    engine: Any, days: Iterable[dt.date], spec: SourceSpec, source: SourceTable | None = None
) -> dict[dt.date, int]:
    """(Re)write the rows of each day in one transaction per day; returns rows written per day.

    Re-seeding a day replaces its rows, so seeding is idempotent. ``source``: the churn table by default.
    """
    from sqlalchemy import text

    src = source or CHURN
    create_table(engine, src)
    ts = src.timestamp_column
    written: dict[dt.date, int] = {}
    for day in days:
        frame = src.generate(day, spec)
        start = dt.datetime.combine(day, dt.time())
        with engine.begin() as conn:
            conn.execute(
                text(f"DELETE FROM {src.table} WHERE {ts} >= :start AND {ts} < :end"),
                {"start": start, "end": start + dt.timedelta(days=1)},
            )
            if len(frame):
                frame.to_sql(src.table, conn, if_exists="append", index=False, chunksize=5000)
        written[day] = len(frame)
    return written


CHURN = SourceTable(TABLE, COLUMNS, TIMESTAMP_COLUMN, generate_day)


def parse_bad_dates(items: Sequence[str]) -> dict[dt.date, str]:
    """Parse ``DATE=KIND`` items, e.g. ``2026-11-03=null_flood``."""
    result: dict[dt.date, str] = {}
    for item in items:
        day, sep, kind = item.partition("=")
        if not sep:
            raise ValueError(f"--bad {item!r}: expected DATE=KIND, e.g. 2026-11-03=null_flood")
        result[dt.date.fromisoformat(day)] = kind
    return result


PIECE_ID_SPAN = 10**9
"""Width of one piece's customer-number range in :func:`piece_of_day` (the generator draws below 10x a day's rows)."""


def piece_of_day(day: dt.date, rows: int, piece: int) -> pd.DataFrame:
    """Piece ``piece`` of a day too large to generate at once (the bench seeds 50M rows 5M at a time): its own
    seed, and ids disjoint from every other piece's, so the pieces together pass the suite's uniqueness checks.

    Event ids get the prefix ``<piece>-``; customer numbers are moved into ``[piece * 1e9, (piece + 1) * 1e9)``
    (still ``C<digits>``). Piece 0 is exactly ``generate_day(day, SourceSpec(rows_per_day=rows))``."""
    import pandas as pd

    if piece == 0:
        return generate_day(day, SourceSpec(rows_per_day=rows))
    if not 0 < 10 * rows * 1.05 + 100_000 < PIECE_ID_SPAN:
        raise ValueError(f"a piece of {rows} rows does not fit the customer-number span {PIECE_ID_SPAN}")
    frame = generate_day(day, SourceSpec(rows_per_day=rows, seed=piece))
    frame["event_id"] = f"{piece}-" + frame["event_id"]
    numbers = pd.to_numeric(frame["customer_id"].str.slice(1)) + piece * PIECE_ID_SPAN
    frame["customer_id"] = "C" + numbers.astype("int64").astype(str)
    return frame
