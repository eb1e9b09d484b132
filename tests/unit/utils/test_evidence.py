"""Append-only evidence records."""

from __future__ import annotations

import pytest

from mlops_provider.utils.evidence import attempts, first_attempt, write_record

pytestmark = pytest.mark.unit


def test_records_are_append_only_by_attempt(tmp_path):
    write_record(tmp_path, "aaa-try1", {"value": 1, "recorded_at": "2026-11-05T00:00:00+00:00"})
    write_record(tmp_path, "bbb-try1", {"value": 2, "recorded_at": "2026-11-06T00:00:00+00:00"})
    write_record(tmp_path, "aaa-try1", {"value": 3, "recorded_at": "2026-11-05T00:00:00+00:00"})  # same try again
    assert [r["value"] for r in attempts(tmp_path)] == [3, 2]
    assert first_attempt(tmp_path)["attempt"] == "aaa-try1"
    assert first_attempt(tmp_path, other_than="aaa-try1")["attempt"] == "bbb-try1"
    assert first_attempt(tmp_path / "none") is None
