"""The layout of the storage root (mlops_provider.utils.records): every record's address, as it was written before
the layout had one owner (the paths here are the ones the stored records of earlier runs already use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_provider.utils import records
from mlops_provider.utils.storage import location

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "mlops"))
    monkeypatch.delenv("MLOPS_STORAGE_URL", raising=False)
    return tmp_path / "mlops"


def test_every_record_keeps_its_address(home: Path) -> None:
    expected = {
        records.reports_root(): "reports",
        records.staged_partition("sales", "2026-11-05"): "staging/sales/2026-11-05.parquet",
        records.quarantine_dir("sales"): "quarantine/sales",
        records.quarantine_dir("sales", "2026-11-05"): "quarantine/sales/2026-11-05",
        records.validation_dir("sales", "2026-11-05", "a-try1"): "reports/gx/sales/2026-11-05/a-try1",
        records.drift_folder("churn", "2026-11-05"): "reports/drift/churn/2026-11-05",
        records.drift_thresholds_file("churn", 3, "k"): "reports/drift-thresholds/churn/v3-k.json",
        records.folder("performance"): "reports/performance",
        records.performance_folder("churn", "2026-11-05"): "reports/performance/churn/2026-11-05",
        records.ledger_dir("churn", "3"): "reports/ledgers/churn/v3",
        records.review_dir("churn", "2026-11-05"): "reports/alarm-reviews/churn/2026-11-05",
        records.trigger_records_dir("churn__training"): "reports/retraining/churn__training",
        records.held_back_dir("churn__training"): "reports/retraining/churn__training/held",
        records.retention_folder("churn", "2026-11-05"): "reports/retention/churn/2026-11-05",
        records.notifications_root(): "notifications",
        records.outbox_dir(): "notifications/outbox",
        records.outbox_failures_dir("m1"): "notifications/outbox/failures/m1",
        records.capture_folder("churn", "2026-11-05"): "captures/churn/2026-11-05",
    }
    assert {location(path): rel for path, rel in expected.items()} == {
        str(home / rel): rel for rel in expected.values()
    }
    assert records.validation_docs_dir(Path("/x/a-try1")) == Path("/x/a-try1/data-docs")


def test_relative_paths_name_the_folder_and_refuse_an_unknown_kind() -> None:
    assert records.relative("drift", "churn", "2026-11-05") == "reports/drift/churn/2026-11-05"
    assert records.quarantine_relative("sales", "{{ ds }}") == "quarantine/sales/{{ ds }}"
    assert records.under_reports("ledgers") == "ledgers"
    with pytest.raises(KeyError, match="no record folder 'snapshots'; known: reports, staging"):
        records.relative("snapshots")
    with pytest.raises(ValueError, match="'staging' folder \\(staging\\) is not under reports/"):
        records.under_reports("staging")


def test_kind_folder_is_the_deepest_record_folder_holding_a_path() -> None:
    assert records.kind_folder("reports/drift/churn/2026-11-05/a.html") == "reports/drift"
    assert records.kind_folder("reports/drift-thresholds/churn/v3-k.json") == "reports/drift-thresholds"
    assert records.kind_folder("quarantine/sales/2026-11-05/a/x.parquet") == "quarantine"
    with pytest.raises(ValueError, match="'elsewhere/x' is not under a record folder"):
        records.kind_folder("elsewhere/x")


def test_only_drift_report_pages_are_drift_reports() -> None:
    assert records.is_drift_report("drift/churn/2026-11-05/a-try1.html")
    assert not records.is_drift_report("drift/churn/2026-11-05/a-try1.json")
    assert not records.is_drift_report("drift-thresholds/churn/v3-k.html")
    assert not records.is_drift_report("gx/sales/2026-11-05/a/data-docs/index.html")


def test_decision_folders_are_the_ones_retention_reads_for_citations() -> None:
    assert records.DECISION_FOLDERS == ("reports/retraining", "reports/alarm-reviews", "reports/ledgers")
    assert {"reports", "ledgers", "alarm-reviews", "drift-thresholds", "held", "outbox"} <= records.folder_names()
