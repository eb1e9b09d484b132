"""The demo source generator: deterministic days, drift, bad data, idempotent seeding (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from mlops_provider.demo.churn_source import (
    COLUMNS,
    DRIFT_DEVICE,
    SOURCE_BAD_KINDS,
    TABLE,
    SourceSpec,
    dates_between,
    generate_day,
    parse_bad_dates,
    seed_range,
)

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 3)


def test_same_date_same_rows_whatever_else_was_generated():
    spec = SourceSpec(seed=7)
    first = generate_day(DAY, spec)
    generate_day(DAY + dt.timedelta(days=1), spec)
    pd.testing.assert_frame_equal(first, generate_day(DAY, spec))
    assert not first.equals(generate_day(DAY, SourceSpec(seed=8)))


def test_with_an_epoch_a_range_moved_in_time_holds_the_same_rows():
    """The demo and the end-to-end tests place their days relative to today: with an epoch, the days of a range
    hold the same rows (dates aside) whatever the calendar date, so the same models and verdicts follow."""
    from mlops_provider.demo.transactions_source import TRANSACTIONS

    def spec(epoch: dt.date) -> SourceSpec:
        return SourceSpec(epoch=epoch, drift_from=epoch + dt.timedelta(days=2), bad_dates={epoch: "null_flood"})

    later = DAY + dt.timedelta(days=40)
    for generate, stamp in ((generate_day, "event_ts"), (TRANSACTIONS.generate, "tx_ts")):
        for offset in (0, 3):  # the bad first day; a drifted day
            a, b = DAY + dt.timedelta(days=offset), later + dt.timedelta(days=offset)
            first, moved = generate(a, spec(DAY)), generate(b, spec(later))
            marks = (str(a), a.strftime("%Y%m%d"))  # ids carry the date
            dates = [c for c in first.columns if c.endswith("_date") or any(
                first[c].astype(str).str.contains(mark).any() for mark in marks)]  # fmt: skip
            assert stamp in dates and len(dates) < len(first.columns) / 2
            pd.testing.assert_frame_equal(first.drop(columns=dates), moved.drop(columns=dates))
            assert (pd.to_datetime(moved[stamp]).dt.date == b).all()
        assert not generate(DAY, SourceSpec()).equals(generate(later, SourceSpec()))  # without an epoch: by date


def test_shape_of_a_day():
    frame = generate_day(DAY, SourceSpec())
    assert list(frame.columns) == list(COLUMNS)
    assert 1900 <= len(frame) <= 2100
    assert frame["event_id"].is_unique and frame["customer_id"].is_unique
    assert frame["event_ts"].dt.date.eq(DAY).all()
    assert frame[["total_charges", "discount_pct", "last_login_days_ago"]].isna().any().all()
    assert 0.05 < frame["churned"].mean() < 0.6


def test_drift_from_a_date():
    spec = SourceSpec(drift_from=DAY)
    before = generate_day(DAY - dt.timedelta(days=1), spec)
    after = generate_day(DAY, spec)
    assert DRIFT_DEVICE not in set(before["device"]) and DRIFT_DEVICE in set(after["device"])
    assert after["monthly_charges"].mean() > 1.2 * before["monthly_charges"].mean()
    assert after["discount_pct"].isna().mean() > 3 * before["discount_pct"].isna().mean()


def test_bad_kinds_are_checked():
    with pytest.raises(ValueError, match="not one of"):
        SourceSpec(bad_dates={DAY: "gremlins"})
    with pytest.raises(ValueError, match="DATE=KIND"):
        parse_bad_dates(["2026-11-03"])
    assert parse_bad_dates(["2026-11-03=empty"]) == {DAY: "empty"}
    assert len(generate_day(DAY, SourceSpec(bad_dates={DAY: "empty"}))) == 0
    assert set(SOURCE_BAD_KINDS) >= {"null_flood", "duplicate_keys", "wrong_types"}


def _count_by_day(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT substr(CAST(event_ts AS TEXT), 1, 10), count(*) FROM {TABLE} GROUP BY 1"))
        return {str(day): int(n) for day, n in rows}


def test_seeding_sqlite_is_idempotent(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    days = dates_between(DAY, DAY + dt.timedelta(days=2))
    written = seed_range(engine, days, SourceSpec())
    assert seed_range(engine, days, SourceSpec()) == written
    assert _count_by_day(engine) == {d.isoformat(): n for d, n in written.items()}


def test_seeding_postgresql(postgres_url):
    engine = create_engine(postgres_url)
    written = seed_range(engine, [DAY], SourceSpec())
    seed_range(engine, [DAY], SourceSpec())
    assert _count_by_day(engine) == {DAY.isoformat(): written[DAY]}
