"""The replay client refuses anything but loopback http, and reads rows as JSON-ready values."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_provider.runtime.traffic import ReplaySummary, loopback_url, read_rows

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("url", ["http://10.0.0.5:8600/invocations", "https://127.0.0.1:8600/", "http://example.org/"])
def test_only_loopback_http(url):
    with pytest.raises(ValueError, match="loopback"):
        loopback_url(url)


def test_loopback_urls_default_to_invocations():
    assert loopback_url("http://127.0.0.1:8600") == ("127.0.0.1", 8600, "/invocations")
    assert loopback_url("http://localhost:8600/other") == ("localhost", 8600, "/other")


def test_rows_from_parquet_and_csv(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, None], "t": pd.to_datetime(["2026-11-01", "2026-11-02"])})
    frame.to_parquet(tmp_path / "rows.parquet")
    columns, rows = read_rows(tmp_path / "rows.parquet", ["a", "b", "t"])
    assert columns == ["a", "b", "t"] and rows[1] == [2, None, "2026-11-02T00:00:00"]
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert read_rows(tmp_path / "rows.csv", ["a"]) == (["a"], [[1], [2]])
    with pytest.raises(ValueError, match="lacks the column"):
        read_rows(tmp_path / "rows.csv", ["zz"])
    with pytest.raises(ValueError, match=".parquet or .csv"):
        read_rows(tmp_path / "rows.json")


def test_failures_are_no_answer_or_5xx():
    summary = ReplaySummary(sent=4)
    summary.statuses.update({200: 1, 422: 1, 503: 1, 0: 1})
    assert summary.failed == 2
