"""Retention's pure rules: which stored files are heavy artefacts, the age cutoff in data days, what a record
cites, and that a cited artefact, a ledger or a summary is never selected."""

from __future__ import annotations

import datetime as dt

import pytest

from mlops_provider.layout import retention_days
from mlops_provider.utils.retention import (
    Artefact,
    citations,
    cutoff_day,
    heavy_artefacts,
    relative_location,
    select,
)

pytestmark = pytest.mark.unit

OLD, EDGE, NEW = "2026-01-01", "2026-02-01", "2026-03-01"
LISTING = {
    f"reports/drift/m/{OLD}/a-try1.html": 4_000_000,
    f"reports/drift/m/{OLD}/a-try1.json": 2_000,  # the summary: history
    f"reports/drift/m/{OLD}/.a-try2.html.x1.tmp": 10,  # a write in progress is not a report
    f"reports/drift/other/{OLD}/a-try1.html": 4_000_000,  # another model's
    f"reports/drift/m/{NEW}/b-try1.html": 4_000_000,
    f"reports/gx/d/{OLD}/a-try1/result.json": 300_000,
    f"reports/gx/d/{OLD}/a-try1/data-docs/index.html": 50_000,
    f"reports/gx/d/{OLD}/a-try1/data-docs/validations/x.html": 70_000,
    f"reports/gx/e/{OLD}/a-try1/result.json": 300_000,  # another dataset's
    f"quarantine/d/{OLD}/a-try1/{OLD}.parquet": 9_000_000,
    f"quarantine/d/{OLD}/a-try1/validation_result.json": 300_000,  # why the day is quarantined: stays
    f"reports/performance/m/{OLD}/a-try1.json": 1_000,
    "reports/ledgers/m/v3/a-try1.json": 5_000,
    "reports/retraining/m__training/drift__d__2026-01-01.json": 800,
    f"reports/alarm-reviews/m/{OLD}/a-try1.json": 400,
    f"reports/retention/m/{NEW}/c-try1.json": 900,
    "notifications/0123456789abcdef0123.json": 300,
    "staging/d/2026-01-01.parquet": 9_000_000,
    "reports/drift/m/not-a-day/a-try1.html": 10,
}


def test_only_drift_reports_validation_attempts_and_quarantined_data_are_heavy_artefacts() -> None:
    found = {(a.kind, a.rel, a.day.isoformat(), a.bytes) for a in heavy_artefacts(LISTING, model_name="m", dataset="d")}
    assert found == {
        ("drift_report", f"reports/drift/m/{OLD}/a-try1.html", OLD, 4_000_000),
        ("drift_report", f"reports/drift/m/{NEW}/b-try1.html", NEW, 4_000_000),
        ("validation", f"reports/gx/d/{OLD}/a-try1", OLD, 420_000),  # the attempt folder, all its bytes
        ("quarantine", f"quarantine/d/{OLD}/a-try1/{OLD}.parquet", OLD, 9_000_000),
    }


def test_the_cutoff_counts_data_days_back_from_the_runs_interval() -> None:
    run_day = dt.date(2026, 3, 2)
    cutoff = cutoff_day(run_day, 29)
    assert cutoff == dt.date.fromisoformat(EDGE)
    artefacts = [Artefact("drift_report", f"r/{day}.html", dt.date.fromisoformat(day), 1) for day in (OLD, EDGE, NEW)]
    remove, kept = select(artefacts, {}, cutoff)
    assert [a.rel for a in remove] == [f"r/{OLD}.html"] and kept == []  # the cutoff day itself stays


def test_a_cited_artefact_is_kept_with_the_records_that_cite_it() -> None:
    artefacts = heavy_artefacts(LISTING, model_name="m", dataset="d")
    cited = {
        f"reports/drift/m/{OLD}/a-try1.html": {"reports/retraining/m__training/drift__d__2026-01-01.json"},
        f"reports/gx/d/{OLD}/a-try1/data-docs/index.html": {"reports/ledgers/m/v3/a-try1.json"},  # inside a folder
        f"reports/drift/m/{OLD}/a-try1.json": {f"reports/alarm-reviews/m/{OLD}/a-try1.json"},  # not an artefact
    }
    remove, kept = select(artefacts, cited, dt.date.fromisoformat(EDGE))
    assert [a.rel for a in remove] == [f"quarantine/d/{OLD}/a-try1/{OLD}.parquet"]
    assert [(a.rel, by) for a, by in kept] == [
        (f"reports/drift/m/{OLD}/a-try1.html", ["reports/retraining/m__training/drift__d__2026-01-01.json"]),
        (f"reports/gx/d/{OLD}/a-try1", ["reports/ledgers/m/v3/a-try1.json"]),
    ]


def test_ledgers_summaries_and_records_are_never_selected_whatever_their_age() -> None:
    remove, _ = select(heavy_artefacts(LISTING, model_name="m", dataset="d"), {}, dt.date(2100, 1, 1))
    removed = {a.rel for a in remove}
    history = [rel for rel in LISTING if rel.endswith(".json") and not rel.startswith("reports/gx/")]
    assert len(history) == 8  # ledger, drift and performance summaries, records, markers, quarantine evidence
    for rel in [*history, "staging/d/2026-01-01.parquet"]:
        assert not any(rel == r or rel.startswith(r + "/") for r in removed), rel


@pytest.mark.parametrize(
    ("where", "root", "expected"),
    [
        ("/srv/mlops/reports/drift/m/2026-01-01/a.html", "/srv/mlops", "reports/drift/m/2026-01-01/a.html"),
        ("/srv/mlops/reports/../reports/x.html", "/srv/mlops", "reports/x.html"),
        ("s3://store@bucket/pre/reports/drift/m/d/a.html", "bucket/pre", "reports/drift/m/d/a.html"),
        ("s3://bucket/pre/quarantine/d/x.parquet", "bucket/pre", "quarantine/d/x.parquet"),
        ("/mlops/reports/drift/m/2026-01-01/a%20b.html", "/anything", "reports/drift/m/2026-01-01/a b.html"),
        ("/mlops/reports/../../etc/passwd", "/srv/mlops", None),
        ("/elsewhere/reports/x.html", "/srv/mlops", None),
        ("s3://store@other/pre/reports/x.html", "bucket/pre", None),
        ("data/m/training_set.parquet", "/srv/mlops", None),  # a data-registry path, not a stored file
    ],
)
def test_a_location_a_record_names_maps_to_its_place_under_the_storage_root(where, root, expected) -> None:
    assert relative_location(where, root) == expected


def test_a_record_cites_every_stored_file_it_names_at_any_depth() -> None:
    record = {
        "run_id": "drift__d__2026-01-01",
        "detail": {
            "report_path": "s3://c@b/p/reports/drift/m/2026-01-01/a.html",
            "report_url": "/mlops/reports/drift/m/2026-01-01/a.html",
            "performance": {"summary_path": "s3://c@b/p/reports/performance/m/2025-12-25/x.json"},
            "drifted_columns": ["plan", "region"],
        },
        "notes": ["see s3://c@b/p/quarantine/d/2026-01-01/a/x.parquet", "a/b"],
    }
    assert citations(record, "b/p") == {
        "reports/drift/m/2026-01-01/a.html",
        "reports/performance/m/2025-12-25/x.json",
    }


def test_the_window_comes_from_the_spec_else_the_environment_else_90_days(monkeypatch) -> None:
    monkeypatch.delenv("MLOPS_RETENTION_DAYS", raising=False)
    assert retention_days(None) == 90
    assert retention_days(0) == 0 and retention_days(30) == 30
    monkeypatch.setenv("MLOPS_RETENTION_DAYS", "14")
    assert retention_days(None) == 14 and retention_days(7) == 7
    monkeypatch.setenv("MLOPS_RETENTION_DAYS", "two weeks")
    with pytest.raises(ValueError, match="MLOPS_RETENTION_DAYS='two weeks' is not a whole number of days"):
        retention_days(None)
    with pytest.raises(ValueError, match="days must be a whole number of days >= 0"):
        retention_days(-1)


def test_captured_traffic_of_the_model_is_a_heavy_artefact_file_by_file() -> None:
    listing = {
        f"captures/m/{OLD}/20260101T000000000001Z-v3-p1-000001.parquet": 700,
        f"captures/m/{OLD}/.20260101T000000000002Z-v3-p1-000002.parquet.ab.tmp": 50,  # torn by a crash: goes too
        f"captures/other/{OLD}/20260101T000000000001Z-v1-p1-000001.parquet": 700,  # another model's
        f"captures/m/{NEW}/20260301T000000000001Z-v3-p1-000001.parquet": 700,
        "captures/m/not-a-day/x.parquet": 1,
    }
    found = {(a.kind, a.rel, a.day.isoformat()) for a in heavy_artefacts(listing, model_name="m", dataset="d")}
    assert found == {(kind, rel, rel.split("/")[2]) for kind, rel in (
        ("capture", f"captures/m/{OLD}/20260101T000000000001Z-v3-p1-000001.parquet"),
        ("capture", f"captures/m/{OLD}/.20260101T000000000002Z-v3-p1-000002.parquet.ab.tmp"),
        ("capture", f"captures/m/{NEW}/20260301T000000000001Z-v3-p1-000001.parquet"),
    )}  # fmt: skip
    cited = {f"captures/m/{OLD}/20260101T000000000001Z-v3-p1-000001.parquet": {"reports/drift/m/x.json"}}
    remove, kept = select(heavy_artefacts(listing, model_name="m", dataset="d"), cited, dt.date.fromisoformat(EDGE))
    assert [a.rel for a in remove] == [f"captures/m/{OLD}/.20260101T000000000002Z-v3-p1-000002.parquet.ab.tmp"]
    assert [by for _, by in kept] == [["reports/drift/m/x.json"]]
