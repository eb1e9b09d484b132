"""Issue 18, object storage between tasks: the ingest stage's tasks each on their own disk (their own
``MLOPS_HOME``, deleted once the task is done), handing files to each other only through an S3-protocol server
(moto) and the data registry's git remote (git daemon) with its DVC remote on the same S3 server."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.layout import partition_path, partition_tag
from mlops_provider.operators.dvc import DvcVersionOperator
from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
from mlops_provider.operators.sql import SqlToParquetOperator
from mlops_provider.operators.training_set import TrainingSetAssemblyOperator
from mlops_provider.sensors.dvc import DvcTagSensor
from mlops_provider.utils.files import md5_of_file
from tests.helpers import PROJECT_ROOT, task_context

pytestmark = pytest.mark.integration

DAY, BAD_DAY = dt.date(2026, 11, 20), dt.date(2026, 11, 21)
DATASET = "customer_activity"
SUITE = PROJECT_ROOT / "include" / "gx" / "expectations" / "customer_activity.json"


@pytest.fixture(autouse=True)
def fresh_object_stores():
    """Airflow caches one filesystem per (scheme, connection) in the process; a test's connection is its own."""
    from airflow.sdk.io import store

    store._STORE_CACHE.clear()
    yield
    store._STORE_CACHE.clear()


def files_on(home: Path) -> list[str]:
    """Every file a worker left on its own disk, relative to its home."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def test_ingest_tasks_on_separate_disks_hand_partitions_over_through_object_storage(
    s3_server, git_daemon, tmp_path, monkeypatch
):
    git_url, _ = git_daemon
    prefix = f"ingest-{tmp_path.name}"
    source = tmp_path / "database-server" / "source.db"  # the source database is a server, not a worker's disk
    source.parent.mkdir()
    seed_range(create_engine(f"sqlite:///{source}"), [DAY, BAD_DAY],
               SourceSpec(seed=5, rows_per_day=900, bad_dates={BAD_DAY: "null_flood"}))  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SOURCE", json.dumps({"conn_type": "sqlite", "host": str(source)}))
    monkeypatch.setenv("MLOPS_STORAGE_URL", f"s3://{s3_server.bucket}/{prefix}/shared")
    monkeypatch.setenv("MLOPS_STORAGE_CONN_ID", "mlops_storage")
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_STORAGE", s3_server.aws_connection())
    monkeypatch.setenv("AIRFLOW_CONN_DVC_DEFAULT", s3_server.dvc_connection(git_url, f"{prefix}/dvc"))

    def worker(name: str) -> Path:
        home = tmp_path / name
        home.mkdir()
        monkeypatch.setenv("MLOPS_HOME", str(home))
        return home

    def extract(day: dt.date) -> dict:
        return SqlToParquetOperator(
            task_id="extract", conn_id="mlops_source", table="customer_activity", timestamp_column="event_ts",
            parse_dates=["event_ts", "signup_date"], dataset=DATASET,
        ).execute(task_context(day))  # fmt: skip

    def validate(day: dt.date, path: str) -> dict:
        return GreatExpectationsValidateOperator(
            task_id="validate", data_path=path, suite_path=str(SUITE), dataset=DATASET, partition=str(day),
            timestamp_column="event_ts",
        ).execute(task_context(day))  # fmt: skip

    # Worker A extracts both days: the partitions are objects under the storage root, named with the connection.
    a = worker("worker-a")
    good, bad = extract(DAY), extract(BAD_DAY)
    staged = f"{prefix}/shared/staging/{DATASET}/{DAY}.parquet"
    assert good["path"] == f"s3://mlops_storage@{s3_server.bucket}/{staged}"
    assert s3_server.keys(f"{prefix}/shared/staging/") == [staged, staged.replace(str(DAY), str(BAD_DAY))]
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key=staged)["Body"].read()
    (tmp_path / "check.parquet").write_bytes(body)
    assert md5_of_file(tmp_path / "check.parquet") == good["md5"]
    assert len(pd.read_parquet(tmp_path / "check.parquet")) == good["rows"] > 800
    assert not [f for f in files_on(a) if f.endswith(".parquet") or ".tmp" in f], files_on(a)
    shutil.rmtree(a)  # the worker is gone: nothing after this may read its disk

    # Worker B validates: the good day passes; the bad day's partition moves to the quarantine on object storage.
    b = worker("worker-b")
    passed = validate(DAY, good["path"])
    assert passed["success"] and passed["data_path"] == good["path"] and passed["batches"] == 1
    gx = f"{prefix}/shared/reports/gx/{DATASET}/{DAY}/{passed['attempt']}"
    assert passed["result_path"] == f"s3://mlops_storage@{s3_server.bucket}/{gx}/result.json"
    assert passed["docs_path"] is None  # a passed day renders no Data Docs page (issue 31)
    assert f"{gx}/result.json" in set(s3_server.keys(gx))
    with pytest.raises(AirflowFailException, match=f"quarantined to s3://mlops_storage@{s3_server.bucket}/"):
        validate(BAD_DAY, bad["path"])
    quarantined = s3_server.keys(f"{prefix}/shared/quarantine/{DATASET}/{BAD_DAY}/")
    assert [k.rsplit("/", 1)[1] for k in quarantined] == [f"{BAD_DAY}.parquet", "validation_result.json"]
    assert s3_server.keys(f"{prefix}/shared/staging/") == [staged]  # moved, not copied
    assert s3_server.keys(f"{prefix}/shared/reports/gx/{DATASET}/{BAD_DAY}/")  # its evidence, published
    assert not [f for f in files_on(b) if f.endswith((".parquet", ".json", ".html"))], files_on(b)
    shutil.rmtree(b)

    # Worker C versions the good day from the object (registry through git daemon, data to the S3 DVC remote);
    # the tag sensor of the bad day sees its quarantine on object storage and gives up.
    c = worker("worker-c")
    version = DvcVersionOperator(
        task_id="version_partition", source_path=good["path"], target_path=partition_path(DATASET, str(DAY)),
        tag=partition_tag(DATASET, str(DAY)),
    ).execute(task_context(DAY))  # fmt: skip
    assert version["created"] and version["md5"] == good["md5"]
    assert s3_server.keys(f"{prefix}/dvc/")  # the data went to the DVC remote on S3
    with pytest.raises(AirflowSkipException, match=f"quarantine/{DATASET}/{BAD_DAY}"):
        DvcTagSensor(
            task_id="wait", tag=partition_tag(DATASET, str(BAD_DAY)), abandon_paths=[f"quarantine/{DATASET}/{BAD_DAY}"]
        )._check()  # fmt: skip
    assert not (c / "work" / "downloads").exists() or not any((c / "work" / "downloads").iterdir())
    shutil.rmtree(c)

    # Worker D, a fresh disk, sees the bad day as quarantined and reads the versioned bytes of the good day.
    d = worker("worker-d")
    assembly = TrainingSetAssemblyOperator(task_id="assemble", dataset=DATASET, partition=str(BAD_DAY), window_days=2)
    assert assembly.classify_days(task_context(BAD_DAY), end=str(BAD_DAY)) == {
        str(DAY): "versioned",
        str(BAD_DAY): "quarantined",
    }
    read = DvcHook().read_to(partition_path(DATASET, str(DAY)), partition_tag(DATASET, str(DAY)), d / "read.parquet")
    assert read["md5"] == good["md5"] and (d / "read.parquet").read_bytes() == body


def test_reports_and_records_are_read_from_object_storage_by_any_host(s3_server, tmp_path, monkeypatch):
    """Records one task writes and another task, the triggerer or the plugin's pages read (a drift summary, a
    verdict ledger, retraining records) live under the storage root: a host with an empty disk reads them, the
    links point at them and the plugin serves them."""
    import asyncio

    from fastapi.testclient import TestClient

    from mlops_provider.links.extra_links import report_url
    from mlops_provider.operators.retraining import triggered_since
    from mlops_provider.triggers.drift import DriftResultTrigger
    from mlops_provider.utils.evidence import attempts, write_record
    from mlops_provider.utils.records import drift_folder, ledger_dir, trigger_records_dir
    from mlops_provider.utils.storage import location, write_text
    from mlops_provider.web.health import _series
    from tests.integration.test_report_pages import unauthenticated_app

    prefix = f"records-{tmp_path.name}"
    monkeypatch.setenv("MLOPS_STORAGE_URL", f"s3://{s3_server.bucket}/{prefix}")
    monkeypatch.setenv("MLOPS_STORAGE_CONN_ID", "mlops_storage")
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_STORAGE", s3_server.aws_connection())
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "writer"))
    summary = {"model_name": "m", "partition": str(DAY), "dataset_drift": True, "drift_share": 0.6}
    drift = write_record(drift_folder("m", str(DAY)), "a1-try1", summary)
    verdict = {"model_name": "m", "challenger_version": "3", "decision": "promote", "reason": "all checks passed",
               "checks": []}  # fmt: skip
    ledger = write_record(ledger_dir("m", 3), "b2-try1", verdict)
    write_text(
        trigger_records_dir("m__training") / "drift__d__x.json",
        json.dumps({"triggered_at": "2026-11-20T00:00:00+00:00"}),
    )
    assert location(drift) == f"s3://mlops_storage@{s3_server.bucket}/{prefix}/reports/drift/m/{DAY}/a1-try1.json"
    assert not (tmp_path / "writer").exists() or not list((tmp_path / "writer").rglob("*.json"))

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "reader"))  # another host: an empty disk
    event = asyncio.run(
        DriftResultTrigger(summary_path=location(drift), poll_interval=0.1, settle_seconds=0).run().__anext__()
    )
    assert event.payload["summary"]["drift_share"] == 0.6 and event.payload["summary"]["attempt"] == "a1-try1"
    assert [s["drift_share"] for s in _series("drift", "m")] == [0.6]
    assert [r["decision"] for r in attempts(ledger_dir("m", 3))] == ["promote"]
    assert len(triggered_since("m__training", dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))) == 1

    url = report_url(location(ledger))
    assert url == "/mlops/reports/ledgers/m/v3/b2-try1.json"
    client = TestClient(unauthenticated_app())
    served = client.get(url.removeprefix("/mlops"))
    assert served.status_code == 200 and served.json()["decision"] == "promote"
    assert served.headers["content-type"].startswith("application/json") and "sandbox" in served.headers[
        "content-security-policy"]  # fmt: skip
    page = client.get("/ledgers/m/v3/b2-try1")
    assert page.status_code == 200 and "the ledger as JSON" in page.text
    for odd in ("/reports/ledgers/m/v3/../../../../x.json", "/reports/ledgers/m/v3/nope.json", "/ledgers/m/v3/..%2Fx"):
        assert client.get(odd).status_code == 404, odd
    assert not (tmp_path / "reader").exists() or not list((tmp_path / "reader").rglob("*.json"))
