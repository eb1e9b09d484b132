"""Prune heavy stored artefacts older than a retention window, never what a kept decision cites."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_provider.utils.compat import AirflowFailException, AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from mlops_provider.utils.retention import Artefact


class RetentionOperator(BaseOperator):
    """Remove the heavy artefacts of a model and its dataset whose data day is older than ``days``, except those a
    kept decision cites, and record what was removed.

    Heavy artefacts (:mod:`mlops_provider.utils.retention`): the model's drift reports
    (``reports/drift/<model>/<day>/<attempt>.html``; the JSON summaries stay), the dataset's validation attempts
    (``reports/gx/<dataset>/<day>/<attempt>/``: full result and Data Docs) and quarantined data
    (``quarantine/<dataset>/<day>/<attempt>/<file>``; its ``validation_result.json`` stays, so the day still reads
    as quarantined). Verdict ledgers, drift and performance summaries, retraining records, alarm reviews,
    notification markers and retention records are the loop's history and are never removed.

    Kept whatever its age: any file named by a retraining record, an alarm review or a verdict ledger, and what the
    records they name cite in turn (a cited drift summary keeps its report). The cutoff is measured in data days
    from the start of the run's data interval (not the wall clock): a backfill or a re-run removes the same set.
    Works on the local disk and on object storage (the storage root, :mod:`mlops_provider.utils.storage`). Models on one
    dataset share its validation and quarantine folders; the shortest window among them applies to those.

    The record ``<storage root>/reports/retention/<model>/<day>/<attempt>.json`` is written **before** anything is
    removed (``status: started``, listing ``to_remove``) and again when done (``status: done``): a task killed midway
    leaves a record of what it was removing, and its re-run finishes the job. A re-run removes only what is still
    there (usually nothing) and writes its own record beside the earlier one.

    Skips when ``days`` is 0 (keep forever) or the run has no data interval. Fails, after recording, when a file
    could not be removed (the message names it; the rest was removed).

    :param model_name: the model whose drift reports are pruned (templated).
    :param dataset: the dataset whose validation attempts and quarantined data are pruned (templated).
    :param days: the window in data days; ``None``: ``$MLOPS_RETENTION_DAYS``, else 90; 0: keep forever.
    :param capture_days: the window of the model's captured traffic (``captures/<model>/<day>/``, the spec's
        ``serving.capture.retention_days``); ``None``: the same as ``days``; 0: keep forever. A capture file a drift
        or performance record names is kept while a kept decision cites that record.

    XCom (return value): ``{"days", "cutoff", "removed", "removed_bytes", "kept_cited", "failed",
    "record_path"}`` (counts; the lists are in the record).
    """

    template_fields: Sequence[str] = ("model_name", "dataset")
    ui_color = "#eeeeee"

    def __init__(
        self, *, model_name: str, dataset: str, days: int | None = None, capture_days: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        for value in (days, capture_days):
            if value is not None:  # the rules load at parse only when there is a value to check (issue 31)
                from mlops_provider.layout import retention_days

                retention_days(value)  # a bad value fails when the DAG is parsed, naming it
        self.model_name = model_name
        self.dataset = dataset
        self.days = days
        self.capture_days = capture_days

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.layout import RETENTION_DAYS_ENV, retention_days
        from mlops_provider.utils.evidence import attempt_key, write_record
        from mlops_provider.utils.records import FOLDERS, quarantine_relative, retention_folder
        from mlops_provider.utils.retention import cutoff_day, heavy_artefacts, select
        from mlops_provider.utils.storage import location, storage_root

        try:
            days = retention_days(self.days)
            capture_days = days if self.capture_days is None else retention_days(self.capture_days)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        if days == 0 and capture_days == 0:
            source = "days=0" if self.days is not None else f"{RETENTION_DAYS_ENV}=0"
            raise AirflowSkipException(f"retention is off ({source}): every report is kept")
        start = context.get("data_interval_start")
        if start is None:
            raise AirflowSkipException(
                "this run has no data interval (a manual run without a logical date): retention counts days from "
                "the data interval, so nothing is removed. Trigger with a logical date to prune."
            )
        day = start.date()
        cutoff = cutoff_day(day, days)
        capture_cutoff = cutoff_day(day, capture_days)
        root = storage_root()
        listing: dict[str, int] = {}
        heavy = (f"{FOLDERS['drift']}/{self.model_name}", f"{FOLDERS['validations']}/{self.dataset}",
                 quarantine_relative(self.dataset), f"{FOLDERS['captures']}/{self.model_name}")  # fmt: skip
        for sub in heavy:
            listing.update(_files(root, sub))
        artefacts = heavy_artefacts(listing, model_name=self.model_name, dataset=self.dataset)
        cited = _cited(root)
        remove: list[Artefact] = []
        kept: list[tuple[Artefact, list[str]]] = []
        for kind_cutoff, window, mine in (
            (cutoff, days, [a for a in artefacts if a.kind != "capture"]),
            (capture_cutoff, capture_days, [a for a in artefacts if a.kind == "capture"]),
        ):
            if window:  # 0: kept forever
                old, stays = select(mine, cited, kind_cutoff)
                remove += old
                kept += stays

        def entry(artefact: Artefact) -> dict[str, Any]:
            return {"path": location(root / artefact.rel), "kind": artefact.kind, "day": artefact.day.isoformat(),
                    "bytes": artefact.bytes}  # fmt: skip

        attempt = attempt_key(context)
        folder = retention_folder(self.model_name, day.isoformat())
        record: dict[str, Any] = {
            "status": "started",
            "model_name": self.model_name,
            "dataset": self.dataset,
            "days": days,
            "data_interval_start": day.isoformat(),
            "cutoff": cutoff.isoformat(),
            "capture_days": capture_days,
            "capture_cutoff": capture_cutoff.isoformat(),
            "to_remove": [entry(a) for a in remove],
            "removed": [],
            "removed_bytes": 0,
            "kept_cited": [{**entry(a), "cited_by": [location(root / r) for r in by]} for a, by in kept],
            "failed": [],
            "airflow": {"dag_id": context["ti"].dag_id, "run_id": context["ti"].run_id,
                        "try_number": context["ti"].try_number},
        }  # fmt: skip
        path = write_record(folder, attempt, record)
        for artefact in remove:
            try:
                gone = _remove(root, artefact.rel)
            except OSError as exc:
                record["failed"].append({**entry(artefact), "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            if gone:
                record["removed"].append(entry(artefact))
                record["removed_bytes"] += artefact.bytes
        record["status"] = "done"
        del record["to_remove"]
        write_record(folder, attempt, record)
        self.log.info(
            "Retention %s/%s (%d days, before %s): removed %d artefact(s), %.1f MB; kept %d cited; record %s",
            self.model_name, self.dataset, days, cutoff, len(record["removed"]), record["removed_bytes"] / 1e6,
            len(kept), location(path),
        )  # fmt: skip
        for item in record["kept_cited"]:
            self.log.info("Kept %s (cited by %s)", item["path"], ", ".join(item["cited_by"]))
        if record["failed"]:
            raise AirflowFailException(
                f"{len(record['failed'])} artefact(s) could not be removed: "
                + "; ".join(f"{f['path']} ({f['error']})" for f in record["failed"][:5])
                + f". The rest was removed and recorded in {location(path)}. Check the storage root's permissions, "
                "then clear this task: it removes what is left."
            )
        return {
            "days": days,
            "cutoff": cutoff.isoformat(),
            "removed": len(record["removed"]),
            "removed_bytes": record["removed_bytes"],
            "kept_cited": len(kept),
            "failed": 0,
            "record_path": location(path),
        }


def _files(root: ObjectStoragePath, folder: str) -> dict[str, int]:
    """``{path relative to root: bytes}`` of every file under ``root/folder`` (empty when it does not exist)."""
    fs, base = root.fs, root.path.rstrip("/")
    target = f"{base}/{folder}"
    fs.invalidate_cache(target)  # another task (or host) may have written or removed files since
    try:
        found = fs.find(target, detail=True)
    except FileNotFoundError:
        return {}
    return {
        str(name).removeprefix(base + "/"): int(info.get("size") or 0)
        for name, info in found.items()
        if info.get("type") != "directory"
    }


def _cited(root: ObjectStoragePath) -> dict[str, set[str]]:
    """``{cited path: {citing record}}`` (relative to ``root``): what the decision records name, and what the
    records they name cite in turn."""
    from mlops_provider.utils.records import DECISION_FOLDERS, FOLDERS
    from mlops_provider.utils.retention import citations

    cited: dict[str, set[str]] = {}
    queue = [rel for folder in DECISION_FOLDERS for rel in _files(root, folder) if rel.endswith(".json")]
    seen: set[str] = set()
    while queue:
        rel = queue.pop()
        if rel in seen or rel.startswith(FOLDERS["retention"] + "/"):  # retention records name what was removed
            continue
        seen.add(rel)
        try:
            record = json.loads((root / rel).read_text())
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            continue  # a cited record that is gone or not JSON cites nothing
        for target in citations(record, root.path):
            if target == rel:
                continue
            cited.setdefault(target, set()).add(rel)
            if target.endswith(".json") and target not in seen:
                queue.append(target)
    return cited


def _remove(root: ObjectStoragePath, rel: str) -> bool:
    """Remove the file or folder ``rel``; False when it was already gone. On the local disk, folders left empty
    below the kind's folder (``reports/<kind>``, ``quarantine``) are removed too."""
    from mlops_provider.utils.records import kind_folder
    from mlops_provider.utils.storage import is_local

    target = root / rel
    fs = root.fs
    if not target.exists():
        return False
    try:
        fs.rm(target.path, recursive=True)
    except FileNotFoundError:
        return False  # removed meanwhile (two models of one dataset pruning at once)
    if is_local(root):
        parent, stop = Path(target.path).parent, Path(root.path).joinpath(*kind_folder(rel).split("/"))
        while parent != stop and stop in parent.parents:
            try:
                os.rmdir(parent)
            except OSError:
                break  # not empty
            parent = parent.parent
    return True
