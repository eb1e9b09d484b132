"""Assemble a training set from the validated partitions of a window of days; version it; announce it (Asset event)."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_provider.hooks.mixins import DvcHookMixin
from mlops_provider.layout import partition_path, partition_tag, run_metadata, training_set_path, training_set_tag
from mlops_provider.lineage.mixin import OpenLineageMixin
from mlops_provider.links.extra_links import DvcVersionLink, dvc_version_url
from mlops_provider.utils.compat import AirflowException, AirflowFailException, AirflowSkipException
from mlops_provider.utils.templated_fields import INTERVAL_DATE

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

    from mlops_provider.lineage.datasets import Lineage


#: How a day of a training-set window stands: versioned (used), quarantined or missing (left out, recorded),
#: undecided (its ingest run is still going: the assembly waits for it), or queued (its run waits for a run slot that
#: the later days hold: left out, and its own assembly adds it to the later sets once it is versioned).
DAY_STATES = ("versioned", "quarantined", "missing", "undecided", "queued")


def window_days(end: str, days: int) -> list[str]:
    """The ``days`` calendar days ending at ``end`` (ISO dates), oldest first."""
    last = dt.date.fromisoformat(end)
    return [(last - dt.timedelta(days=i)).isoformat() for i in range(days)][::-1]


def warming_up(versioned: Iterable[str], window_first_day: str) -> bool:
    """Whether the loop is still warming up (pure): no versioned day (``YYYY-MM-DD``) before the window's first day,
    so a window with too few versioned days is the start of the dataset's history, not a gap in it."""
    return all(day >= window_first_day for day in versioned)


def event_partitions(events: Iterable[Any]) -> list[str]:
    """The days to assemble from the partition Asset events that triggered a run (pure): every event's
    ``extra["partition"]`` (an ISO day), each day once, oldest first. Several events reach one run when Airflow
    coalesces queued events (a backfill of the dataset's ingest, or a slow assembly): each one's day is assembled,
    never only the newest. Raises ValueError naming an event that carries no day."""
    days: set[str] = set()
    for event in events:
        extra = getattr(event, "extra", None) or {}
        day = extra.get("partition")
        try:
            days.add(dt.date.fromisoformat(str(day)).isoformat())
        except ValueError:
            source = f"{getattr(event, 'source_dag_id', None)}/{getattr(event, 'source_run_id', None)}"
            raise ValueError(
                f"an Asset event from {source} carries no partition day (extra['partition'] is {day!r}); only the "
                "dataset's ingest DAG (version_partition) emits events of a partition Asset"
            ) from None
    return sorted(days)


def day_logical_date(day: str) -> dt.datetime:
    """The logical date of the daily ingest run of ``day``: 00:00 UTC (a ``@daily`` schedule in UTC)."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.timezone.utc)


class TrainingSetAssemblyOperator(OpenLineageMixin, DvcHookMixin, BaseOperator):
    """Concatenate the validated partitions of the ``window_days`` days up to ``partition`` into one training set.

    Every day of the window is classified before anything is read:

    - **versioned**: it has the tag ``partition/<dataset>/<day>`` (it passed validation): used;
    - **quarantined**: its quarantine folder exists (``<quarantine_root>/<day>``): left out;
    - **undecided**: a run of ``ingest_dag_id`` for that day is still queued or running (a parallel backfill where
      that day validates slowly): the task **waits** (it is rescheduled every ``poll_interval`` seconds, freeing
      its worker and pool slot) and fails after ``wait_timeout`` naming the days, so a set is never built from a
      window whose days are not all decided;
    - **queued**: its run is queued (cleared or re-run) while every run slot of the ingest DAG
      (``max_active_runs``) is taken, so it cannot start while later days wait for it: left out, and the set is
      built now (waiting would deadlock ingest until ``wait_timeout``). Once that day runs and is versioned, its own
      assembly adds it to the later sets (``repair_later``);
    - **missing**: none of these (before the DAG's start, or its run ended without a version): left out.

    Left-out days are recorded (XCom, Asset event ``extra["missing"]`` and the commit trailer
    ``Training-Set-Missing-Days``). The partition of the run's own day must be versioned. Each partition is read at
    its tag (the exact versioned bytes, md5-checked); the set is versioned under the **immutable** tag
    ``training-set/<training_set>/<partition>``: re-running with the same result is a no-op, a different result (a day
    that was fixed since) is a new version tagged ``<tag>.r2`` (``.r3``...), and the tag a model was trained on
    never moves. An event of ``asset`` is emitted with ``extra = {"dataset", "rev", "md5", "rows", "partitions",
    "missing", "tag", "path"}``.

    :param dataset: dataset name (templated): the partitions read are ``partition/<dataset>/<day>``.
    :param training_set: name of the set (templated): path ``data/<training_set>/training_set.parquet``, tags
        ``training-set/<training_set>/<day>``; default: the dataset. Give the model's name when several models
        share a dataset (their windows may differ).
    :param partition: the newest day to include (templated; default: the date of ``data_interval_start``).
    :param window_days: calendar days in the window, ending at ``partition``.
    :param min_partitions: fail when fewer days of the window are versioned; skip instead while the loop warms up
        (no versioned day of the dataset before the window: :func:`warming_up`), so the first training set, and
        the first training, waits for ``min_partitions`` versioned days.
    :param asset: Asset to emit an event of (added to ``outlets``).
    :param ingest_dag_id: the DAG whose daily runs (logical date 00:00 UTC of the day) version the partitions;
        default: the DAG this task runs in.
    :param quarantine_root: folder holding one sub-folder per quarantined day (templated; default
        ``<storage root>/quarantine/<dataset>``, where the validation operator puts them; a local path or an
        object-storage URL).
    :param poll_interval: seconds between checks while a day is undecided; keep it at 20 s or more (a reschedule
        much faster than the scheduler's loop can be taken for an external state change and fail the task).
    :param wait_timeout: how long to wait for undecided days before failing.
    :param partition_asset: the dataset's partition Asset (``x-mlops://partition/<dataset>``) when the task runs in
        a DAG scheduled on it (a dataset shared by several models): the days come from the run's triggering events
        (:func:`event_partitions`: every event's day, oldest first), not from ``partition``, and each is assembled in
        turn; the Asset event of ``asset`` describes the newest. Give ``ingest_dag_id`` (the dataset's ingest DAG).
        Caveat: Airflow 3.3 leaves behind the events that arrive while such a DAG's run is at ``max_active_runs`` or
        between two scheduler loops (apache/airflow#56050): their days get no run until another event comes. The
        DAG factory starts one run a day instead (a ``TriggerDagRunOperator`` after the versioning, ``partition``
        from the run's data interval).
    :param repair_later: after versioning its own day, rebuild the sets of the later days (up to
        ``window_days - 1`` after it) that were assembled while this day was left out (quarantined or missing) and
        so lack it: a day fixed and re-ingested reaches the sets built without it. Each rebuild is a new version
        (``<tag>.rN``, trailer ``Training-Set-Rebuilt-For``), the old one stays; no Asset event is emitted for it
        (nothing retrains by itself). A later window with a day still being ingested is left for later (logged).

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``dvc_conn_id``.

    XCom (return value): the same dict as the Asset event's ``extra`` plus ``created`` and ``rebuilt`` (the tags of
    the later sets rebuilt with this day); with ``partition_asset``, that of the newest day plus ``assembled`` (the
    tag of every day's set, oldest first).
    """

    template_fields: Sequence[str] = ("dataset", "training_set", "partition", "quarantine_root")
    operator_extra_links = (DvcVersionLink(),)
    ui_color = "#e8fde9"

    def __init__(
        self,
        *,
        dataset: str,
        training_set: str | None = None,
        partition: str = INTERVAL_DATE,
        window_days: int = 7,
        min_partitions: int = 1,
        asset: Asset | None = None,
        ingest_dag_id: str | None = None,
        quarantine_root: str | None = None,
        poll_interval: float = 30.0,
        wait_timeout: dt.timedelta = dt.timedelta(hours=2),
        repair_later: bool = True,
        partition_asset: Asset | None = None,
        **kwargs: Any,
    ) -> None:
        if asset is not None:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), asset]
        super().__init__(**kwargs)
        if window_days < 1 or min_partitions < 1 or min_partitions > window_days:
            raise ValueError(
                f"need 1 <= min_partitions <= window_days, got min_partitions={min_partitions}, "
                f"window_days={window_days}"
            )
        self.dataset = dataset
        self.training_set = training_set
        self.partition = partition if partition_asset is None else ""  # each run's days come from its events
        self.window_days = window_days
        self.min_partitions = min_partitions
        self.asset = asset
        self.ingest_dag_id = ingest_dag_id
        self.quarantine_root = quarantine_root
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.repair_later = repair_later
        self.partition_asset = partition_asset

    def classify_days(self, context: Context, end: str | None = None) -> dict[str, str]:
        """``{day: state}`` for every day of the window ending at ``end`` (default: ``partition``; see
        ``DAY_STATES``)."""
        from mlops_provider.utils.records import quarantine_dir
        from mlops_provider.utils.storage import stored

        end = end or str(self.partition)
        prefix = partition_tag(self.dataset, "")
        versioned = {tag.removeprefix(prefix) for tag in self.dvc_hook.tags(prefix + "*")}
        quarantine = stored(self.quarantine_root) if self.quarantine_root else quarantine_dir(self.dataset)
        ti = context["ti"]
        dag_id = self.ingest_dag_id or ti.dag_id
        states: dict[str, str] = {}
        for day in window_days(end, self.window_days):
            if day in versioned:
                states[day] = "versioned"
            elif (quarantine / day).is_dir():
                states[day] = "quarantined"
            elif day == end:
                states[day] = "missing"
            elif ti.get_dr_count(dag_id=dag_id, logical_dates=[day_logical_date(day)], states=["running"]):
                states[day] = "undecided"
            elif ti.get_dr_count(dag_id=dag_id, logical_dates=[day_logical_date(day)], states=["queued"]):
                states[day] = "queued" if self._run_slots_full(ti, dag_id) else "undecided"
            else:
                states[day] = "missing"
        return states

    def _run_slots_full(self, ti: Any, dag_id: str) -> bool:
        """Whether every run slot (``max_active_runs``) of the ingest DAG is taken, so a queued run of an earlier day
        cannot start while this one waits. Unknown (another DAG, or no DAG): taken (waiting could deadlock)."""
        if not self.has_dag() or self.dag.dag_id != dag_id:
            return True
        limit = self.dag.max_active_runs
        return bool(limit) and ti.get_dr_count(dag_id=dag_id, states=["running"]) >= limit

    def _versioned_days(self) -> list[str]:
        prefix = partition_tag(self.dataset, "")
        return [tag.removeprefix(prefix) for tag in self.dvc_hook.tags(prefix + "*")]

    def select_partitions(self, context: Context) -> tuple[list[str], dict[str, str]]:
        """The versioned days of the window and the left-out ones with their state; waits for undecided days."""
        states = self.classify_days(context)
        if states[str(self.partition)] != "versioned":
            raise AirflowFailException(
                f"Partition {self.partition} of {self.dataset!r} is not versioned (no tag "
                f"{partition_tag(self.dataset, str(self.partition))}): it failed validation or was not ingested. "
                "The training set is only built from validated partitions."
            )
        undecided = [day for day, state in states.items() if state == "undecided"]
        if undecided:
            self._wait(context, undecided)
        chosen = [day for day, state in states.items() if state == "versioned"]
        if len(chosen) < self.min_partitions and warming_up(self._versioned_days(), min(states)):
            raise AirflowSkipException(
                f"Warming up: {len(chosen)} of the {self.min_partitions} versioned day(s) of {self.dataset!r} a "
                f"training set needs (min_partitions) by {self.partition}, and none before the window: no training "
                "set yet (the first training waits for a full enough window)"
            )
        if len(chosen) < self.min_partitions:
            raise AirflowFailException(
                f"Only {len(chosen)} validated partition(s) of {self.dataset!r} in the {self.window_days} days up to "
                f"{self.partition} ({states}); min_partitions is {self.min_partitions}. Backfill earlier days first."
            )
        return chosen, {day: state for day, state in states.items() if state != "versioned"}

    def _wait(self, context: Context, undecided: list[str]) -> None:
        from mlops_provider.utils.compat import AirflowRescheduleException

        first = context["ti"].get_first_reschedule_date(context)
        now = dt.datetime.now(dt.timezone.utc)
        waited = (now - first) if first else dt.timedelta(0)
        if waited >= self.wait_timeout:
            raise AirflowException(
                f"{self.dataset} {self.partition}: after {waited} the ingest runs of {', '.join(undecided)} are still "
                "going (neither versioned nor quarantined); the training set is not built from an undecided window. "
                "Let those runs finish (or fail them), then clear this task."
            )
        self.log.info(
            "Waiting for %s of %s to be versioned or quarantined (their ingest runs are still going); waited %s",
            ", ".join(undecided), self.dataset, waited,
        )  # fmt: skip
        raise AirflowRescheduleException(now + dt.timedelta(seconds=self.poll_interval))

    def _build(
        self, context: Context, end: str, chosen: list[str], left_out: dict[str, str], trailers: dict[str, str]
    ) -> tuple[dict[str, Any], int]:
        """Version the set of the window ending at ``end`` from ``chosen``; returns the version and its rows."""
        import pandas as pd

        name = self.training_set or self.dataset
        with tempfile.TemporaryDirectory(prefix="training-set-") as tmp_dir:
            frames = [
                self.dvc_hook.read_frame(partition_path(self.dataset, d), partition_tag(self.dataset, d))
                for d in chosen
            ]
            training_set = pd.concat(frames, ignore_index=True)
            out = Path(tmp_dir) / "training_set.parquet"
            training_set.to_parquet(out, index=False)
            version = self.dvc_hook.version_file(
                out,
                training_set_path(name),
                training_set_tag(name, end),
                metadata={
                    **run_metadata(context),
                    "Training-Set-Partitions": ",".join(chosen),
                    "Training-Set-Missing-Days": ",".join(f"{d}={s}" for d, s in left_out.items()) or "none",
                    **trailers,
                },
                immutable_tag=True,
            )
        return version, len(training_set)

    def repair_later_sets(self, context: Context) -> list[str]:
        """Rebuild the sets of the later days whose window holds this day and whose newest version left it out
        (it was quarantined or missing then, and is versioned now). Returns the new tags."""
        day = str(self.partition)
        name = self.training_set or self.dataset
        start = dt.date.fromisoformat(day)
        rebuilt = []
        for offset in range(1, self.window_days):
            later = (start + dt.timedelta(days=offset)).isoformat()
            versions = self.dvc_hook.revision_tags(training_set_tag(name, later))
            if not versions:
                continue
            missing = self.dvc_hook.describe_commit(versions[-1])["trailers"].get("Training-Set-Missing-Days", "")
            if day not in {item.split("=", 1)[0] for item in missing.split(",")}:
                continue
            states = self.classify_days(context, later)
            undecided = [d for d, s in states.items() if s == "undecided"]
            if undecided:
                self.log.warning(
                    "Not rebuilding the set of %s yet: %s still being ingested; clear its assemble task later",
                    later, ", ".join(undecided),
                )  # fmt: skip
                continue
            chosen = [d for d, s in states.items() if s == "versioned"]
            left_out = {d: s for d, s in states.items() if s != "versioned"}
            version, _ = self._build(context, later, chosen, left_out, {"Training-Set-Rebuilt-For": day})
            self.log.warning("Rebuilt the set of %s with %s (was left out): %s", later, day, version["tag"])
            rebuilt.append(str(version["tag"]))
        return rebuilt

    def event_days(self, context: Context) -> list[str]:
        """The days of the run's triggering events of ``partition_asset`` (:func:`event_partitions`)."""
        assert self.partition_asset is not None
        events = context["triggering_asset_events"].get(self.partition_asset, [])
        try:
            days = event_partitions(events)
        except ValueError as exc:
            raise AirflowFailException(f"{self.dataset}: {exc}") from None
        if not days:
            raise AirflowFailException(
                f"This run of {self.dataset}'s training set has no event of {self.partition_asset.uri}: it was "
                f"triggered by hand. Run (or clear) the day in the dataset's ingest DAG ({self.ingest_dag_id}) "
                "instead: its version_partition announces the day and this DAG assembles it."
            )
        return days

    def execute(self, context: Context) -> dict[str, Any]:
        if self.partition_asset is None:
            return self.assemble(context)
        days = self.event_days(context)
        self.log.info("Assembling the set of %d day(s) announced by %s: %s", len(days), self.partition_asset.uri, days)
        assembled = []
        for day in days:
            self.partition = day
            result = self.assemble(context)
            assembled.append(result["tag"])
        return {**result, "assembled": assembled}

    def assemble(self, context: Context) -> dict[str, Any]:
        """Assemble, version and announce the set of the window ending at ``partition``."""
        self.dvc_hook.ensure_workspace()
        chosen, left_out = self.select_partitions(context)
        self.log.info("Assembling %s from %d partition(s): %s", self.dataset, len(chosen), ", ".join(chosen))
        if left_out:
            self.log.warning("Left out of the %s window up to %s: %s", self.dataset, self.partition, left_out)
        queued = [day for day, state in left_out.items() if state == "queued"]
        if queued:
            self.log.warning(
                "Not waiting for %s: their ingest runs are queued while every run slot of the ingest DAG is taken by "
                "later days (waiting would deadlock). Built without them; their own assembly adds them to this set "
                "once they are versioned.", ", ".join(queued),
            )  # fmt: skip
        version, rows = self._build(context, str(self.partition), chosen, left_out, {})
        extra = {
            "dataset": self.dataset,
            "rev": version["rev"],
            "md5": version["md5"],
            "rows": rows,
            "partitions": chosen,
            "missing": left_out,
            "tag": version["tag"],
            "path": version["path"],
        }
        DvcVersionLink.persist(context, dvc_version_url(version["rev"]))
        if self.asset is not None:
            context["outlet_events"][self.asset].extra = extra
        rebuilt = self.repair_later_sets(context) if self.repair_later else []
        result = {**extra, "created": version["created"], "rebuilt": rebuilt}
        return self.record_lineage(result, registry=self.dvc_hook.registry)

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the window's versioned partitions (by tag). Wrote: the training set (rev, tag, md5, rows)."""
        from mlops_provider.lineage.datasets import Lineage, dvc_file

        registry = result["registry"]
        return Lineage(
            inputs=[
                dvc_file(registry, partition_path(self.dataset, day), tag=partition_tag(self.dataset, day))
                for day in result["partitions"]
            ],
            outputs=[
                dvc_file(registry, result["path"], rev=result["rev"], tag=result["tag"], md5=result["md5"],
                         rows=result["rows"])
            ],
        )  # fmt: skip
