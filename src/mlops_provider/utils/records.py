"""One address for every record: the layout of the storage root.

Owns every sub-folder under the storage root (``MLOPS_HOME`` on the local disk, or ``MLOPS_STORAGE_URL``): the
files one task hands to another (``staging/``, ``quarantine/``), the reports and records the plugin serves
(``reports/``: validation results and Data Docs, drift reports and summaries, learned drift thresholds,
performance summaries, verdict ledgers, alarm reviews, retraining records, retention records) and the on-call
mail markers and outbox (``notifications/``). No other module spells one of these folder names: it asks here
(``tests/repo/test_record_paths.py`` fails otherwise).

The other answers to "where do things live", one question each:

* how a file is read and written under the storage root (local disk or object storage, atomic publication,
  locations in XCom): :mod:`mlops_provider.utils.storage`;
* where the worker's own files live under ``MLOPS_HOME`` (the DVC workspace and remote, the local MLflow store,
  model server caches, training work folders, locks, scratch): :mod:`mlops_provider.utils.paths`;
* where data lives inside the data registry (partition and training-set paths and tags in the DVC + git
  repository): :mod:`mlops_provider.layout`;
* :mod:`mlops_provider.utils.files` answers no "where": it writes a local file atomically and hashes it.

The folder table (:data:`FOLDERS`) is pure; the functions that return a stored path read the storage root.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

# -- the folders under the storage root (POSIX, relative to the root) ---------------------------------------------

#: What the plugin serves at ``/mlops/reports/``: every report and record of the loop.
REPORTS = "reports"
#: The URL prefix under which the plugin serves the files of ``reports/`` (links, mails and records name them so).
REPORTS_URL_PREFIX = "/mlops/reports"
#: A day's extract waiting for validation: ``staging/<dataset>/<day>.parquet``.
STAGING = "staging"
#: A day's partition that failed validation: ``quarantine/<dataset>/<day>/<attempt>/<file>`` (+ its result).
QUARANTINE = "quarantine"
#: Sent-mail markers ``notifications/<id>.json`` and the outbox ``notifications/outbox/<id>.json``.
NOTIFICATIONS = "notifications"
#: Tuning studies: ``studies/<training run id>/<first log number>.jsonl``, the Optuna journal a retry resumes.
STUDIES = "studies"
#: What live endpoints answered: ``captures/<model>/<day>/<flush>.parquet`` (one file per backend flush).
CAPTURES = "captures"

#: Every folder the loop keeps records in, by what it holds (path relative to the storage root).
FOLDERS: dict[str, str] = {
    "reports": REPORTS,
    "staging": STAGING,
    "quarantine": QUARANTINE,
    "notifications": NOTIFICATIONS,
    "studies": STUDIES,
    "captures": CAPTURES,
    # reports/<kind>/...
    "validations": f"{REPORTS}/gx",  # <dataset>/<day>/<attempt>/{result.json, data-docs/}
    "drift": f"{REPORTS}/drift",  # <model>/<day>/<attempt>.{json,html}
    "drift_thresholds": f"{REPORTS}/drift-thresholds",  # <model>/v<version>-<settings key>.json
    "performance": f"{REPORTS}/performance",  # <model>/<day>/<attempt>.json
    "ledgers": f"{REPORTS}/ledgers",  # <model>/v<version>/<attempt>.json
    "alarm_reviews": f"{REPORTS}/alarm-reviews",  # <model>/<day>/<attempt>.json
    "retraining": f"{REPORTS}/retraining",  # <trigger dag id>/<run id>.json, held/<attempt>.json
    "retention": f"{REPORTS}/retention",  # <model>/<day>/<attempt>.json
    "deployments": f"{REPORTS}/deployments",  # <model>/deployment.json, <model>/verdicts/v<version>-<attempt>.json
}
#: Folders inside a record's folder.
VALIDATION_DOCS = "data-docs"  # a validation attempt's Data Docs site
HELD_BACK = "held"  # retraining/<trigger dag id>/held/: alarms a rail held back
OUTBOX = "outbox"  # notifications/outbox/: mail not sent yet
OUTBOX_FAILURES = "failures"  # notifications/outbox/failures/<mail id>/: later failed sends
INNER_FOLDERS = (VALIDATION_DOCS, HELD_BACK, OUTBOX, OUTBOX_FAILURES)

#: Folders (under the storage root) of the records whose citations retention keeps: the loop's decisions.
DECISION_FOLDERS = (FOLDERS["retraining"], FOLDERS["alarm_reviews"], FOLDERS["ledgers"])


def folder_names() -> frozenset[str]:
    """Every name this module gives a folder (each segment of :data:`FOLDERS` and the inner folders)."""
    return frozenset(part for rel in FOLDERS.values() for part in rel.split("/")) | set(INNER_FOLDERS)


def relative(kind: str, *parts: str) -> str:
    """The path of ``parts`` under the folder of ``kind`` (a key of :data:`FOLDERS`), relative to the storage
    root; a KeyError names the kinds when ``kind`` is not one."""
    if kind not in FOLDERS:
        raise KeyError(f"no record folder {kind!r}; known: {', '.join(FOLDERS)}")
    return "/".join([FOLDERS[kind], *parts])


def under_reports(kind: str) -> str:
    """The folder of ``kind`` relative to the reports root (what the plugin's ``/mlops/reports/`` URLs name)."""
    rel = FOLDERS[kind]
    if not rel.startswith(f"{REPORTS}/"):
        raise ValueError(f"the {kind!r} folder ({rel}) is not under {REPORTS}/")
    return rel.removeprefix(f"{REPORTS}/")


def kind_folder(rel: str) -> str:
    """The record folder (a value of :data:`FOLDERS`, the deepest) holding ``rel`` (relative to the storage root);
    a ValueError names ``rel`` when no record folder holds it."""
    holders = [f for f in FOLDERS.values() if rel.startswith(f + "/")]
    if not holders:
        raise ValueError(f"{rel!r} is not under a record folder ({', '.join(FOLDERS.values())})")
    return max(holders, key=len)


def is_drift_report(relative_to_reports: str) -> bool:
    """Whether a file (path relative to the reports root) is an Evidently drift report page (the only report that
    runs script, in a sandbox)."""
    return relative_to_reports.startswith(under_reports("drift") + "/") and relative_to_reports.endswith(".html")


# -- stored paths --------------------------------------------------------------------------------------------------


def folder(kind: str, *parts: str) -> ObjectStoragePath:
    """The stored path of ``parts`` under the folder of ``kind`` (a key of :data:`FOLDERS`)."""
    from mlops_provider.utils.storage import storage_root

    return storage_root().joinpath(*relative(kind, *parts).split("/"))


def reports_root() -> ObjectStoragePath:
    """The reports and records the plugin serves under ``/mlops/reports`` (``<storage root>/reports``)."""
    return folder("reports")


def staged_partition(dataset: str, partition: str) -> ObjectStoragePath:
    """Where the extract leaves a day's rows for validation: ``staging/<dataset>/<day>.parquet``."""
    return folder("staging", dataset, f"{partition}.parquet")


def quarantine_relative(dataset: str, partition: str | None = None) -> str:
    """A dataset's (or a day's) quarantine folder relative to the storage root: ``quarantine/<dataset>[/<day>]``
    (the form a sensor's ``abandon_paths`` takes)."""
    return relative("quarantine", dataset, *([partition] if partition is not None else []))


def quarantine_dir(dataset: str, partition: str | None = None) -> ObjectStoragePath:
    """A dataset's quarantine folder, or one day's: one ``<attempt>/`` per failed validation."""
    from mlops_provider.utils.storage import storage_root

    return storage_root().joinpath(*quarantine_relative(dataset, partition).split("/"))


def validation_dir(dataset: str, partition: str, attempt: str) -> ObjectStoragePath:
    """A validation attempt's folder: ``result.json`` and its Data Docs site."""
    return folder("validations", dataset, partition, attempt)


def validation_docs_dir(attempt_dir: Path) -> Path:
    """The Data Docs site inside a validation attempt's folder (the folder GX builds it in on this worker)."""
    return attempt_dir / VALIDATION_DOCS


def drift_folder(model_name: str, partition: str) -> ObjectStoragePath:
    """The folder of a model's drift records of the window ending at ``partition``: one ``<attempt>.json`` summary
    and ``<attempt>.html`` report per check; the oldest is the day's record of decision. Keyed by model: two
    models on one dataset compare it with different references. Under the storage root: the drift sensor, the
    rails and the plugin read it from any host."""
    return folder("drift", model_name, partition)


def drift_thresholds_file(model_name: str, version: str | int, key: str) -> ObjectStoragePath:
    """The learned drift thresholds of a champion version under one set of settings (``key``: their hash)."""
    return folder("drift_thresholds", model_name, f"v{version}-{key}.json")


def performance_folder(model_name: str, partition: str) -> ObjectStoragePath:
    """The folder of a model's performance records of a day: one ``<attempt>.json`` per check, the oldest first."""
    return folder("performance", model_name, partition)


def ledger_dir(model_name: str, version: str | int) -> ObjectStoragePath:
    """The verdict ledgers of a model version: one ``<attempt>.json`` per evaluation (append-only)."""
    return folder("ledgers", model_name, f"v{version}")


def review_dir(model_name: str, day: str) -> ObjectStoragePath:
    """Human reviews of a day's retraining alarm (one record per answer)."""
    return folder("alarm_reviews", model_name, day)


def trigger_records_dir(trigger_dag_id: str) -> ObjectStoragePath:
    """One JSON record per retraining triggered in ``trigger_dag_id`` (``<run id>.json``, with ``triggered_at``):
    every worker counts the same records."""
    return folder("retraining", trigger_dag_id)


def held_back_dir(trigger_dag_id: str) -> ObjectStoragePath:
    """One JSON record per alarm a rail held back (``<reports root>/retraining/<trigger_dag_id>/held/``): the rail,
    its numbers, what it counted, when it frees up. Not counted by any budget; the model health page lists them."""
    return trigger_records_dir(trigger_dag_id) / HELD_BACK


def retention_folder(model_name: str, day: str) -> ObjectStoragePath:
    """The retention records of a model's run for ``day``: one ``<attempt>.json`` per try (never pruned)."""
    return folder("retention", model_name, day)


def capture_folder(model_name: str, day: str) -> ObjectStoragePath:
    """Where a model's live endpoint writes the rows it answered on ``day`` (UTC): ``captures/<model>/<day>/``, one
    ``<flush>.parquet`` per backend flush (:mod:`mlops_provider.runtime.capture`)."""
    return folder("captures", model_name, day)


def notifications_root() -> ObjectStoragePath:
    """The sent-mail markers (``<id>.json``: their existence dedupes) and the outbox."""
    return folder("notifications")


def outbox_dir() -> ObjectStoragePath:
    """Mail that could not be sent: one ``<id>.json`` each, written once (sent when its marker exists)."""
    return notifications_root() / OUTBOX


def outbox_failures_dir(mail_id: str) -> ObjectStoragePath:
    """Later failed sends of an outbox entry, one record each (append-only)."""
    return outbox_dir() / OUTBOX_FAILURES / mail_id


def study_journal(training_run_id: str) -> ObjectStoragePath:
    """Where the tuning study of a training run keeps its journal: ``studies/<training run id>/`` (one
    ``<first log number>.jsonl`` per append; :mod:`mlops_provider.runtime.tuner`)."""
    return folder("studies", training_run_id)
