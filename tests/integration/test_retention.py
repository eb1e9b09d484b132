"""Retention on a tree real operators produced (extract, GX validation and quarantine, the drift sensor and the
retraining trigger's record), on the local disk and on an S3 storage root (moto): old uncited reports go, cited
and recent ones stay, ledgers and summaries stay, the record lists what went and what was kept, a re-run removes
nothing more, and the cutoff follows the run's data interval, not the wall clock."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, DagRunTriggerException
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range
from mlops_provider.links.extra_links import report_url
from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
from mlops_provider.operators.retention import RetentionOperator
from mlops_provider.operators.retraining import TriggerRetrainingOperator
from mlops_provider.operators.sql import SqlToParquetOperator
from mlops_provider.sensors.drift import DriftSensor
from mlops_provider.utils.evidence import write_record
from mlops_provider.utils.records import drift_folder, ledger_dir, review_dir, trigger_records_dir
from mlops_provider.utils.storage import location, storage_root, stored, write_text
from tests.helpers import PROJECT_ROOT, task_context

pytestmark = pytest.mark.integration

MODEL, DATASET = "churn_r", "customer_activity"
SUITE = PROJECT_ROOT / "include" / "gx" / "expectations" / "customer_activity.json"
CITED, REVIEWED, OLD, RECENT = (dt.date(2026, 10, d) for d in (1, 2, 3, 29))
RUN_DAY = dt.date(2026, 11, 20)  # 30 days: the cutoff is 2026-10-21


@pytest.fixture(autouse=True)
def fresh_object_stores():
    from airflow.sdk.io import store

    store._STORE_CACHE.clear()
    yield
    store._STORE_CACHE.clear()


@pytest.fixture(params=["local", "s3"])
def sizes(request, tmp_path, monkeypatch) -> Callable[[], dict[str, int]]:
    """The storage root (local disk or S3); returns a reader of ``{path relative to the root: bytes}``, read
    with the plain file system or S3 client (not with the code under test)."""
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLOPS_RETENTION_DAYS", raising=False)
    if request.param == "local":
        monkeypatch.delenv("MLOPS_STORAGE_URL", raising=False)
        root = tmp_path / "home"
        return lambda: {
            str(p.relative_to(root)): p.stat().st_size
            for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] in ("reports", "quarantine")
        }
    s3 = request.getfixturevalue("s3_server")
    prefix = f"retention-{tmp_path.name}"
    monkeypatch.setenv("MLOPS_STORAGE_URL", f"s3://{s3.bucket}/{prefix}")
    monkeypatch.setenv("MLOPS_STORAGE_CONN_ID", "mlops_storage")
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_STORAGE", s3.aws_connection())

    def listed() -> dict[str, int]:
        pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=f"{prefix}/")
        found = {o["Key"].removeprefix(f"{prefix}/"): o["Size"] for page in pages for o in page.get("Contents", [])}
        return {k: v for k, v in found.items() if k.split("/")[0] in ("reports", "quarantine")}

    return listed


def ingest(tmp_path: Path, monkeypatch) -> dict[dt.date, dict]:
    """Extract and validate four days with the real operators; the REVIEWED day is bad and is quarantined."""
    source = tmp_path / "source.db"
    days = [CITED, REVIEWED, OLD, RECENT]
    seed_range(create_engine(f"sqlite:///{source}"), days,
               SourceSpec(seed=3, rows_per_day=700, bad_dates={REVIEWED: "null_flood"}))  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SOURCE", json.dumps({"conn_type": "sqlite", "host": str(source)}))
    results = {}
    for day in days:
        staged = SqlToParquetOperator(
            task_id="extract", conn_id="mlops_source", table="customer_activity", timestamp_column="event_ts",
            parse_dates=["event_ts", "signup_date"], dataset=DATASET,
        ).execute(task_context(day))  # fmt: skip
        validate = GreatExpectationsValidateOperator(
            task_id="validate", data_path=staged["path"], suite_path=str(SUITE), dataset=DATASET, partition=str(day),
        )  # fmt: skip
        if day == REVIEWED:
            with pytest.raises(AirflowFailException, match="quarantined to"):
                validate.execute(context := task_context(day))
            results[day] = context["ti"].pushed["validation_summary"]
        else:
            results[day] = validate.execute(task_context(day))
    return results


def drift_record(day: dt.date) -> dict:
    """A drift check's report and summary, published where DriftReportOperator puts them (an Evidently run is
    what makes the report, and is not what this test is about)."""
    folder, attempt = drift_folder(MODEL, str(day)), "a1b2c3d4e5-try1"
    html = write_text(folder / f"{attempt}.html", "<html>" + "drift " * 20_000 + "</html>")
    summary = {"dataset_drift": True, "drift_share": 0.6, "threshold": 0.3, "columns": {}, "dataset": DATASET,
               "partition": str(day), "report_path": location(html), "report_url": report_url(html),
               "summary_path": location(folder / f"{attempt}.json"), "reference": {"model_name": MODEL}}  # fmt: skip
    write_record(folder, attempt, summary)
    return summary


def retention(day: dt.date, try_number: int = 1, **kwargs) -> dict:
    operator = RetentionOperator(task_id="retention", model_name=MODEL, dataset=DATASET, **kwargs)
    return operator.execute(task_context(day, dag_id=f"{MODEL}__drift_monitoring", try_number=try_number))


def test_old_uncited_reports_go_cited_and_recent_ones_stay_and_the_record_lists_them(sizes, tmp_path, monkeypatch):
    validated = ingest(tmp_path, monkeypatch)
    drift = {day: drift_record(day) for day in (CITED, REVIEWED, OLD, RECENT)}
    # The CITED day triggered a retraining: the real sensor reads its summary, the real trigger records it.
    decision = DriftSensor(task_id="drift_sensor", summary_path=drift[CITED]["summary_path"]).execute(
        task_context(CITED)
    )
    with pytest.raises(DagRunTriggerException):
        TriggerRetrainingOperator(
            task_id="trigger_training", dataset=DATASET, decision=decision, trigger_dag_id=f"{MODEL}__training",
        ).execute(task_context(CITED, dag_id=f"{MODEL}__drift_monitoring"))  # fmt: skip
    # The REVIEWED day's alarm was reviewed by a human: the review names the summary, which names the report.
    alarm = {"reason": "drift", "partition": str(REVIEWED), "summary_path": drift[REVIEWED]["summary_path"]}
    review = {"decision": "reject", "by": "ana", "note": "a holiday", "alarm": alarm}
    write_record(review_dir(MODEL, str(REVIEWED)), "r1-try1", review)
    write_record(ledger_dir(MODEL, 1), "l1-try1", {"model_name": MODEL, "decision": "promote", "checks": []})
    write_record(trigger_records_dir("another_model__training"), "x", {"note": "cites nothing of ours"})

    root = storage_root()

    def rel(where: str) -> str:
        return where.split("@", 1)[1].split("/", 2)[2] if "://" in where else str(Path(where).relative_to(root.path))

    def under(folder: str, listing: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in listing.items() if k == folder or k.startswith(folder + "/")}

    before = sizes()
    gx = {day: str(Path(rel(validated[day]["result_path"])).parent) for day in validated}
    quarantined = rel(validated[REVIEWED]["quarantined_to"])
    assert under(gx[OLD], before) and quarantined in before and len(under(f"quarantine/{DATASET}", before)) == 2
    html = {day: rel(drift[day]["report_path"]) for day in drift}

    # A backfilled run 40 days before RUN_DAY removes nothing: age counts from its data interval, not from today.
    early = retention(RUN_DAY - dt.timedelta(days=40), days=30)
    assert (early["removed"], early["kept_cited"], early["cutoff"]) == (0, 0, "2026-09-11")
    assert {k: v for k, v in sizes().items() if not k.startswith("reports/retention/")} == before

    monkeypatch.setenv("MLOPS_RETENTION_DAYS", "30")  # the global setting, when the spec sets no window
    result = retention(RUN_DAY)
    after = sizes()
    gone = {html[OLD]: "drift_report", gx[CITED]: "validation", gx[REVIEWED]: "validation", gx[OLD]: "validation",
            quarantined: "quarantine"}  # fmt: skip
    removed_files = set(before) - set(after)
    assert removed_files == {k for folder in gone for k in under(folder, before)}
    assert result["removed_bytes"] == sum(before[k] for k in removed_files) > 0
    assert (result["days"], result["cutoff"], result["removed"], result["kept_cited"]) == (30, "2026-10-21", 5, 2)
    # Cited and recent reports stay, and so does every summary, ledger and record.
    for kept in (html[CITED], html[REVIEWED], html[RECENT], *under(gx[RECENT], before)):
        assert kept in after, kept
    history = [k for k in before if k.endswith(".json") and not k.startswith("reports/gx/")]
    assert {k for k in history if k not in after} == set() and len(history) >= 9
    # The quarantined day still reads as quarantined: its validation result stays in the attempt folder.
    evidence = f"{Path(quarantined).parent}/validation_result.json"
    assert under(f"quarantine/{DATASET}/{REVIEWED}", after) == {evidence: before[evidence]}
    assert (root / f"quarantine/{DATASET}/{REVIEWED}").exists()

    record = json.loads(stored(result["record_path"]).read_text())
    assert record["status"] == "done" and "to_remove" not in record and record["failed"] == []
    assert {rel(e["path"]): e["kind"] for e in record["removed"]} == gone
    assert sum(e["bytes"] for e in record["removed"]) == record["removed_bytes"] == result["removed_bytes"]
    assert {rel(e["path"]): [rel(c) for c in e["cited_by"]] for e in record["kept_cited"]} == {
        html[CITED]: [f"reports/retraining/{MODEL}__training/drift__{DATASET}__{CITED}.json"],
        html[REVIEWED]: [rel(drift[REVIEWED]["summary_path"])],  # through the review that names the summary
    }

    # A re-run (the next try) removes nothing more and writes its own record beside the first.
    again = retention(RUN_DAY, try_number=2)
    assert (again["removed"], again["removed_bytes"], again["kept_cited"]) == (0, 0, 2)
    assert again["record_path"] != result["record_path"]
    assert {k: v for k, v in sizes().items() if not k.startswith("reports/retention/")} == {
        k: v for k, v in after.items() if not k.startswith("reports/retention/")
    }
    assert len(under(f"reports/retention/{MODEL}/{RUN_DAY}", sizes())) == 2

    # 0 keeps everything: the task skips and says so.
    with pytest.raises(AirflowSkipException, match=r"retention is off \(days=0\)"):
        retention(RUN_DAY, days=0)
    monkeypatch.setenv("MLOPS_RETENTION_DAYS", "0")
    with pytest.raises(AirflowSkipException, match=r"MLOPS_RETENTION_DAYS=0"):
        retention(RUN_DAY)


def test_captured_traffic_older_than_its_window_goes_unless_a_decision_cites_it(sizes):
    """Issue 33: capture files are heavy artefacts with a window of their own; one a drift record read stays while
    a retraining record cites that drift record."""
    import pandas as pd

    from mlops_provider.ml.capture import CaptureSettings
    from mlops_provider.runtime.capture import CaptureWriter, capture_files
    from mlops_provider.utils.records import capture_folder

    files = {}
    for day in (CITED, OLD, RECENT):
        writer = CaptureWriter(
            MODEL, "1", CaptureSettings(), folder_for=lambda _, day=day: capture_folder(MODEL, str(day))
        )
        writer.add(pd.DataFrame({"a": [1.0, 2.0]}), [0.1, 0.9], ["k1", "k2"], "r1")
        assert writer.flush() == 2
        files[day] = [location(p) for p in capture_files(MODEL, str(day))]
        assert len(files[day]) == 1
    folder = drift_folder(MODEL, str(CITED))
    summary = {"dataset_drift": True, "partition": str(CITED), "current": {"kind": "served",
               "capture_files": files[CITED]}, "summary_path": location(folder / "s1-try1.json")}  # fmt: skip
    write_record(folder, "s1-try1", summary)
    write_record(
        trigger_records_dir(f"{MODEL}__training"), "drift__x", {"detail": {"summary": summary["summary_path"]}}
    )

    result = retention(RUN_DAY, days=0, capture_days=30)  # reports kept forever, captures 30 days
    assert (result["removed"], result["kept_cited"]) == (1, 1)
    assert not stored(files[OLD][0]).exists()
    assert stored(files[CITED][0]).exists() and stored(files[RECENT][0]).exists()
    record = json.loads(stored(result["record_path"]).read_text())
    assert [(e["kind"], e["path"]) for e in record["removed"]] == [("capture", files[OLD][0])]
    assert record["kept_cited"][0]["path"] == files[CITED][0] and record["capture_cutoff"] == "2026-10-21"
