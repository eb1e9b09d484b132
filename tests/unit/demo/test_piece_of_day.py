"""Pieces of one large day (bench/bench_ingest.py seeds 50M rows 5M at a time) must not share ids: the suite
checks event_id and customer_id for uniqueness over the whole day."""

from __future__ import annotations

import datetime as dt

import pytest

from mlops_provider.demo.churn_source import SourceSpec, generate_day, piece_of_day

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 11, 1)


def test_pieces_have_disjoint_event_and_customer_ids() -> None:
    pieces = [piece_of_day(DAY, 3_000, k) for k in range(3)]
    for column in ("event_id", "customer_id"):
        values = [v for frame in pieces for v in frame[column]]
        assert len(values) == len(set(values)), f"{column} repeats across pieces"


def test_unshifted_pieces_would_collide() -> None:
    # The defect the helper fixes: two pieces drawn independently share customer numbers.
    a = generate_day(DAY, SourceSpec(rows_per_day=3_000, seed=1))
    b = generate_day(DAY, SourceSpec(rows_per_day=3_000, seed=2))
    assert set(a["customer_id"]) & set(b["customer_id"])


def test_piece_zero_is_the_plain_day_and_ids_keep_their_shape() -> None:
    assert piece_of_day(DAY, 2_000, 0).equals(generate_day(DAY, SourceSpec(rows_per_day=2_000)))
    shifted = piece_of_day(DAY, 2_000, 4)
    assert shifted["customer_id"].str.fullmatch(r"C4\d{9}").all()
    assert shifted["event_id"].str.startswith("4-").all()
