"""Data drift of a window of validated partitions against the champion's training data (Evidently 0.7)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_provider.hooks.mixins import DvcHookMixin, MlflowHookMixin
from mlops_provider.layout import (
    CHAMPION_ALIAS,
    DATA_PATH_TAG,
    DATA_REV_TAG,
    DRIFT_SIGNALS,
    LEARNED_DRIFT_K,
    LEARNED_DRIFT_LINE,
    RUN_KEY_TAG,
    partition_path,
    partition_tag,
)
from mlops_provider.lineage.mixin import OpenLineageMixin
from mlops_provider.links.extra_links import DriftReportLink, MlflowRunLink, mlflow_run_url, report_url
from mlops_provider.utils.compat import AirflowFailException, AirflowSkipException
from mlops_provider.utils.templated_fields import INTERVAL_DATE

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Asset, Context

    from mlops_provider.lineage.datasets import Lineage, LineageDataset
    from mlops_provider.runtime.capture import DaySample


REFERENCES = ("champion", "rolling", "seasonal")
#: What a drift check's current data is: the day's ingested partitions, or the rows the live endpoint served.
CURRENTS = ("ingested", "served")
#: The commit trailer of a training set that lists the partitions (days) it was assembled from.
PARTITIONS_TRAILER = "Training-Set-Partitions"


#: When the drift check renders Evidently's HTML report: ``drifted`` (the default: only on a day that crosses the
#: drift line) or ``always``. Rendering and storing the HTML is most of a calm day's check (issue 31); a calm day's
#: numbers are all in its record and its MLflow run.
HTML_ENV = "MLOPS_DRIFT_HTML"
HTML_SETTINGS = ("drifted", "always")
#: What a record without HTML says in place of the report's link.
NO_HTML_NOTE = (
    "no HTML report: this day did not cross the drift line, so only its numbers were kept (this record, the MLflow "
    f"run); to render the report, set {HTML_ENV}=always for the workers and clear this task (a re-check, written "
    "beside this record against the same champion)"
)


def renders_html(dataset_drift: bool, setting: str | None) -> bool:
    """Whether a drift check renders its HTML report: on a flagged day, or on every day with ``always``
    (``setting`` is the value of ``MLOPS_DRIFT_HTML``; unset or empty means ``drifted``)."""
    value = (setting or "drifted").strip().lower()
    if value not in HTML_SETTINGS:
        raise ValueError(f"{HTML_ENV} must be one of {HTML_SETTINGS}, got {setting!r}")
    return bool(dataset_drift) or value == "always"


def column_drifted(method: str, score: float, threshold: float) -> bool:
    """Distances (Wasserstein, Jensen-Shannon, PSI) drift above the threshold; p-values drift below it."""
    return score < threshold if "p_value" in method.lower() else score >= threshold


def drift_scores(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    drift_share: float,
    methods: dict[str, str] | None = None,
    thresholds: dict[str, float] | None = None,
) -> tuple[float, dict[str, Any]]:
    """The drift share and per column ``{"method", "score", "threshold", "drifted"}`` of ``current`` against
    ``reference``: the numbers of Evidently's ``DataDriftPreset`` report, without building the report.

    Evidently 0.7 computes every metric's HTML widgets (plotly figures) while a ``Report`` runs, ~20x the drift
    tests themselves on a demo-sized day (issue 31). This calls the calculation the preset's metrics call
    (``get_drift_for_columns``: its ``ValueDrift`` per column, its ``DriftedColumnsCount`` for the share) with the
    preset's options; the report is built only to render the HTML. A unit test holds the two equal.

    :param numerical: the numerical columns, in the order the result lists them (then ``categorical``).
    :param drift_share: the preset's ``drift_share``.
    :param methods: per column stattest (the spec's ``column_methods``); a column without one gets Evidently's
        default for its type and size, named as Evidently names it.
    :param thresholds: per column threshold (the spec's ``column_thresholds``).
    """
    from evidently.legacy.calculations.data_drift import get_drift_for_columns
    from evidently.legacy.metric_results import DatasetColumns, DatasetUtilityColumns
    from evidently.legacy.options.data_drift import DataDriftOptions

    columns = [*numerical, *categorical]
    result = get_drift_for_columns(
        current_data=current,
        reference_data=reference,
        dataset_columns=DatasetColumns(
            utility_columns=DatasetUtilityColumns(date=None, id=None, target=None, prediction=None),
            target_type=None,
            task=None,
            num_feature_names=list(numerical),
            cat_feature_names=list(categorical),
            text_feature_names=[],
            datetime_feature_names=[],
            target_names=None,
        ),
        data_drift_options=DataDriftOptions(
            drift_share=drift_share, per_feature_stattest=methods or None, per_feature_threshold=thresholds or None
        ),
        columns=columns,
        agg_data=True,
    )
    scores: dict[str, Any] = {}
    for name in columns:
        drift = result.drift_by_columns[name]
        # the report names a spec's method as the spec wrote it, a default by Evidently's display name
        method = (methods or {}).get(name) or drift.stattest_name
        score, threshold = float(drift.drift_score), float(drift.stattest_threshold)
        scores[name] = {
            "method": method,
            "score": score,
            "threshold": threshold,
            "drifted": column_drifted(method, score, threshold),
        }
    return float(result.share_of_drifted_columns), scores


class DriftReportOperator(OpenLineageMixin, MlflowHookMixin, DvcHookMixin, BaseOperator):
    """Compare the newest validated data with the data the current champion was trained on.

    Reference: the champion's training set, resolved through the registry (alias -> model version tags
    ``data.path``/``data.rev`` -> the data registry), never a file that happens to be around. Current: the
    validated partitions of the ``window_days`` days ending at ``partition``. Column types come from the
    declared lists, not from inference. Each side is sampled to at most ``max_rows`` rows with a fixed seed so
    memory stays bounded; the sample sizes are recorded.

    Output: a JSON summary (dataset drift yes/no, drift share, per column method, score, threshold, drifted),
    written as ``<reports root>/drift/<model>/<day>/<attempt>.json`` and logged to a monitoring run of the attempt
    in MLflow together with metric ``drift_share`` at the window's date, so drift over time plots. Evidently's HTML
    report (``<attempt>.html`` beside it, extra link, MLflow artifact) is rendered on a day that crosses the drift
    line, or on every day with ``MLOPS_DRIFT_HTML=always``; a calm day's record says how to get it.

    History is append-only. The first check of a day is its record of decision; a later check of the same day (a
    cleared task) is a **re-check**: it is written beside the first (never over it), it compares against the
    champion **recorded by the first check** (not today's champion: the question is what that day looked like to
    the model of its time), or fails when that version no longer exists, and its summary says ``recheck: true``,
    which the retraining trigger does not act on unless asked.

    :param dataset: dataset name (templated).
    :param model_name: registered model whose champion gives the reference (templated).
    :param numerical_columns: declared numerical columns.
    :param categorical_columns: declared categorical columns.
    :param partition: last day of the window (templated; default: the date of ``data_interval_start``).
    :param partition_asset: when the run was triggered by events of this Asset (the training-set Asset), the
        newest partition in their ``extra["partitions"]`` is used instead of ``partition``.
    :param window_days: days in the current window.
    :param drift_share_threshold: the dataset counts as drifted when this share of columns drifted.
    :param column_methods: per-column drift method (Evidently stat-test names, e.g. ``{"amount": "psi"}``);
        other columns get Evidently's default for their type and size.
    :param column_thresholds: per-column drift thresholds (e.g. ``{"amount": 0.2}``).
    :param max_rows: sample size bound per side.
    :param reference: what the window is compared with: ``champion`` (the champion's training set, the default),
        ``rolling`` (the validated partitions of the ``reference_days`` days before the window) or ``seasonal``
        (the same window ``season_days`` earlier: data with weekly or yearly cycles). The champion still gives the
        feature importances and is recorded; the record names the reference kind and days.
    :param reference_days: days of a ``rolling`` reference.
    :param season_days: shift of a ``seasonal`` reference (365: a year; 7: a week).
    :param signal: what decides ``dataset_drift``: ``learned`` (the default: the learned drift vs
        ``learned_drift_threshold``: each column's score judged against how far calm days lie from the same
        reference, the excesses over those learned bounds counted up to 1 and summed by importance; see
        :mod:`mlops_provider.ml.learned_drift`), ``share`` (the share of drifted columns vs ``drift_share_threshold``,
        Evidently's verdict) or ``weighted`` (the importance-weighted drift vs ``weighted_drift_threshold``: the
        share of the champion's feature importance, from its run's ``feature_importance.json``, that sits on
        drifted columns). Share and weighted are always reported, the learned drift when chosen; without
        importances the weighted signal falls back to the share, the learned one weighs columns equally, and
        without learned thresholds (a training set that names no partitions, fewer than 2 validated reference days)
        the share decides; the summary says so (``signal_note``).
    :param weighted_drift_threshold: the line of the weighted signal.
    :param learned_drift_threshold: the line of the learned signal (the importance-weighted sum of the columns'
        excesses over their learned bounds; a column holding 30% of the importance lying twice its bound is 0.3).
    :param learned_drift_k: a column's learned bound is ``max(mean + k * std, its fixed threshold)`` of its calm
        scores.
    :param drift_calibration_days: calm scores come from the reference's own days, each left out of the reference
        in turn (the champion's training window: the partitions its training set names), plus the validated days
        among this many days before them, each scored against the whole reference. Learned once per champion (and
        settings) and kept under ``<reports root>/drift-thresholds/<model>/``; every record carries the thresholds
        with the numbers they came from.

    :param current: the current data: ``ingested`` (the validated partitions of the window, the default) or
        ``served`` (the rows the model's live endpoint captured on the window's last day, UTC:
        :mod:`mlops_provider.runtime.capture`; ``window_days`` does not apply). On served rows the record names the
        capture files it read (``current.capture_files``), the rows per answering version, and ``served``: per
        version (two versions share a canary day) its rows, drift share and the prediction drift of the
        predictions it really returned against that version's predictions on the reference sample. A day with fewer
        than ``min_served_rows`` captured rows is recorded with ``status: too_few_served_rows`` (and
        ``dataset_drift: null``: not judged, not "no drift") and the task skips. Templated (the loop's drift-monitoring
        DAG passes its ``current`` param); a rendered value outside these two fails the task naming it.
    :param min_served_rows: the fewest captured rows a served day is judged on.
    :param prediction_drift_threshold: the normed Wasserstein distance at which served predictions count as drifted.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``,
    ``dvc_conn_id``.

    XCom (return value): the summary ``{"dataset_drift", "drift_share", "threshold", "columns", "dataset",
    "partition", "window", "reference" {"model_name", "model_version", "data_rev", "data_path", "source"},
    "signal", "signal_note", "weighted_drift", "learned_drift", "learned_threshold", "learned_thresholds"
    {"path", "computed_now", "reference_days", "calibration_days", "k", "columns" {column: {"threshold", "n_days",
    "mean", "std", "quantiles", ...}}, "note"} (learned signal only), "sample_rows", "attempt", "recorded_at",
    "recheck", "first_attempt", "report_path", "report_url", "report_note", "summary_path", "mlflow_run_id"}``
    (``report_path``/``report_url`` are None and ``report_note`` says how to get the report on a day without HTML:
    the HTML is rendered only on a flagged day unless ``MLOPS_DRIFT_HTML=always``); with the learned
    signal each column also carries ``learned`` ``{"score", "threshold", "ratio", "excess", "counted", "past"}``.
    """

    template_fields: Sequence[str] = ("dataset", "model_name", "partition", "current")
    operator_extra_links = (DriftReportLink(), MlflowRunLink())
    ui_color = "#fdf3e8"

    def __init__(
        self,
        *,
        dataset: str,
        model_name: str,
        numerical_columns: Sequence[str],
        categorical_columns: Sequence[str],
        partition: str = INTERVAL_DATE,
        partition_asset: Asset | None = None,
        window_days: int = 1,
        drift_share_threshold: float = 0.3,
        column_methods: dict[str, str] | None = None,
        column_thresholds: dict[str, float] | None = None,
        max_rows: int = 100_000,
        reference: str = "champion",
        reference_days: int = 7,
        season_days: int = 365,
        signal: str = "learned",
        weighted_drift_threshold: float = 0.3,
        learned_drift_threshold: float = LEARNED_DRIFT_LINE,
        learned_drift_k: float = LEARNED_DRIFT_K,
        drift_calibration_days: int = 21,
        seed: int = 0,
        champion_alias: str = CHAMPION_ALIAS,
        experiment_name: str = "monitoring",
        current: str = "ingested",
        min_served_rows: int = 200,
        prediction_drift_threshold: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if current not in CURRENTS and "{{" not in str(current):  # a template is checked once rendered (execute)
            raise ValueError(f"current must be one of {CURRENTS}, got {current!r}")
        if min_served_rows < 1:
            raise ValueError(f"min_served_rows must be >= 1, got {min_served_rows}")
        self.current = current
        self.min_served_rows = min_served_rows
        self.prediction_drift_threshold = prediction_drift_threshold
        if not 0.0 < drift_share_threshold <= 1.0:
            raise ValueError(f"drift_share_threshold must be in (0, 1], got {drift_share_threshold}")
        self.dataset = dataset
        self.model_name = model_name
        self.numerical_columns = list(numerical_columns)
        self.categorical_columns = list(categorical_columns)
        self.partition = partition
        self.partition_asset = partition_asset
        self.window_days = window_days
        self.drift_share_threshold = drift_share_threshold
        declared = set(self.numerical_columns) | set(self.categorical_columns)
        unknown = sorted((set(column_methods or {}) | set(column_thresholds or {})) - declared)
        if unknown:
            raise ValueError(f"column_methods/column_thresholds name {unknown}, which are not declared columns")
        if signal not in DRIFT_SIGNALS:
            raise ValueError(f"signal must be one of {DRIFT_SIGNALS}, got {signal!r}")
        if not 0.0 < weighted_drift_threshold <= 1.0:
            raise ValueError(f"weighted_drift_threshold must be in (0, 1], got {weighted_drift_threshold}")
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        if reference_days < 1 or season_days < 1:
            raise ValueError(f"reference_days and season_days must be >= 1, got {reference_days}, {season_days}")
        if learned_drift_threshold <= 0 or learned_drift_k < 0 or drift_calibration_days < 0:
            raise ValueError(
                "need learned_drift_threshold > 0, learned_drift_k >= 0 and drift_calibration_days >= 0, got "
                f"{learned_drift_threshold}, {learned_drift_k}, {drift_calibration_days}"
            )
        self.learned_drift_threshold = learned_drift_threshold
        self.learned_drift_k = learned_drift_k
        self.drift_calibration_days = drift_calibration_days
        self.reference = reference
        self.reference_days = reference_days
        self.season_days = season_days
        self.signal = signal
        self.weighted_drift_threshold = weighted_drift_threshold
        self.column_methods = dict(column_methods or {})
        self.column_thresholds = dict(column_thresholds or {})
        self.max_rows = max_rows
        self.seed = seed
        self.champion_alias = champion_alias
        self.experiment_name = experiment_name

    def _window_end(self, context: Context) -> str:
        if self.partition_asset is not None:
            events = (context.get("triggering_asset_events") or {}).get(self.partition_asset) or []
            days = [day for event in events for day in (event.extra.get("partitions") or [])]
            if days:
                return max(days)
        return str(self.partition)

    def _read_sample(self, path: str, rev: str) -> pd.DataFrame:
        """The declared columns of ``path`` at ``rev``, sampled to ``max_rows`` while reading (bounded memory)."""
        from mlops_provider.ml.sampling import sample_parquet

        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "data.parquet"
            self.dvc_hook.read_to(path, rev, local)
            columns = self.numerical_columns + self.categorical_columns
            try:
                return sample_parquet(local, columns, self.max_rows, self.seed)
            except ValueError as exc:
                raise AirflowFailException(f"declared columns: {path} at {rev}: {exc}") from exc

    def _read_days(self, days: list[str]) -> pd.DataFrame:
        """One bounded sample of the validated partitions of ``days``."""
        import pandas as pd

        frames = [self._read_sample(partition_path(self.dataset, d), partition_tag(self.dataset, d)) for d in days]
        frame = pd.concat(frames, ignore_index=True)
        if len(frame) > self.max_rows:  # several days: one bounded sample of the samples
            frame = frame.sample(n=self.max_rows, random_state=self.seed)
        return frame

    def _reference_days(self, window: list[str], available: set[str]) -> list[str]:
        """The validated days of a ``rolling`` or ``seasonal`` reference of ``window``; fails naming them if none."""
        first = dt.date.fromisoformat(window[0])
        if self.reference == "rolling":  # the reference_days days just before the window
            wanted = [(first - dt.timedelta(days=i)).isoformat() for i in range(self.reference_days, 0, -1)]
        else:  # the same window one season earlier
            wanted = [(dt.date.fromisoformat(d) - dt.timedelta(days=self.season_days)).isoformat() for d in window]
        days = [d for d in wanted if partition_tag(self.dataset, d) in available]
        if not days:
            raise AirflowSkipException(
                f"{self.reference} reference: none of {wanted[0]} .. {wanted[-1]} is a validated partition of "
                f"{self.dataset!r}; no reference to compare {window[-1]} with"
            )
        return days

    def _reference_version(self, end: str, attempt: str) -> tuple[str, dict[str, Any] | None]:
        """The champion to compare with: the one the day's first check recorded, else the current champion."""
        from mlops_provider.utils.evidence import first_attempt
        from mlops_provider.utils.records import drift_folder

        first = first_attempt(drift_folder(self.model_name, end), other_than=attempt)
        if first is not None:
            recorded = str((first.get("reference") or {}).get("model_version") or "")
            if not recorded:
                raise AirflowFailException(f"the first drift record of {end} ({first.get('attempt')}) names no model")
            return recorded, first
        champion = self.mlflow_hook.alias_version(self.model_name, self.champion_alias)
        if champion is None:
            raise AirflowSkipException(
                f"{self.model_name} has no {self.champion_alias!r} yet: no reference to compare with"
            )
        return champion, None

    def execute(self, context: Context) -> dict[str, Any]:
        # Task-only modules (issue 31: a parse neither compiles nor runs them).
        from mlops_provider.ml.capture import served_verdict
        from mlops_provider.utils.evidence import attempt_key, now_iso, write_record
        from mlops_provider.utils.extras import require
        from mlops_provider.utils.records import drift_folder
        from mlops_provider.utils.storage import location, publish, work_dir

        require("evidently", user=type(self).__name__)
        if self.current not in CURRENTS:
            raise AirflowFailException(
                f"current (the run's current data, e.g. the DAG param 'current') is {self.current!r}: it must be one "
                f"of {', '.join(CURRENTS)}; trigger the run again with a valid value"
            )
        end = self._window_end(context)
        attempt = attempt_key(context)
        hook = self.mlflow_hook
        version, first = self._reference_version(end, attempt)
        try:
            tags = hook.model_version_tags(self.model_name, version)
        except LookupError as exc:
            raise AirflowFailException(
                f"re-check of {end}: the champion its first check recorded, {self.model_name} v{version}, no longer "
                f"exists ({exc}); the day cannot be re-checked against the model of its time"
            ) from exc
        if not tags.get(DATA_PATH_TAG) or not tags.get(DATA_REV_TAG):
            raise AirflowFailException(f"{self.model_name} v{version} has no {DATA_PATH_TAG}/{DATA_REV_TAG} tags")
        if first is not None:
            self.log.warning(
                "Re-check of %s (first checked by %s at %s): compared with v%s, the champion that check recorded; "
                "written beside it, the first record stays",
                end, first.get("attempt"), first.get("recorded_at"), version,
            )  # fmt: skip

        end_day = dt.date.fromisoformat(end)
        days = [(end_day - dt.timedelta(days=i)).isoformat() for i in range(self.window_days)][::-1]
        available = set(self.dvc_hook.tags(partition_tag(self.dataset, "") + "*"))
        served: Any = None
        if self.current == "served":
            served = self._served_rows(end)
            present = [end]
            status, reason = served_verdict(served.rows, self.min_served_rows)
            if reason is not None:
                self._too_few_served(context, end, attempt, version, first, served, reason)
            current = served.frame[self.numerical_columns + self.categorical_columns]
        else:
            present = [d for d in days if partition_tag(self.dataset, d) in available]
            if end not in present:
                raise AirflowSkipException(
                    f"partition {end} of {self.dataset!r} is not validated/versioned (quarantined or not ingested): "
                    "no drift check for it"
                )
            current = self._read_days(present)
        reference_days: list[str] = []
        if self.reference == "champion":
            reference = self._read_sample(tags[DATA_PATH_TAG], tags[DATA_REV_TAG])
        else:
            reference_days = self._reference_days(days, available)
            reference = self._read_days(reference_days)
        summary = self._run_evidently(reference, current)
        if served is not None:
            summary.update(self._served_summary(served, reference))
        learned = None
        if self.signal == "learned":
            learned = self._learned_thresholds(version, tags, summary, reference_days or None, available)
        summary.update(self._weighted(version, summary, learned))
        if served is not None:
            self._served_signals(summary, learned)
        folder = drift_folder(self.model_name, end)
        summary.update(
            dataset=self.dataset,
            partition=end,
            window=present,
            reference={
                "kind": self.reference,
                "days": reference_days,
                "model_name": self.model_name,
                "model_version": version,
                "data_rev": tags[DATA_REV_TAG],
                "data_path": tags[DATA_PATH_TAG],
                "source": "first check of the day" if first else f"alias {self.champion_alias}",
            },  # fmt: skip
            sample_rows={"reference": len(reference), "current": len(current), "max_rows": self.max_rows},
            attempt=attempt,
            recorded_at=now_iso(),
            recheck=first is not None,
            first_attempt=first.get("summary_path") if first else None,
            first_recorded_at=first.get("recorded_at") if first else None,
        )
        html_path = folder / f"{attempt}.html"
        rendered = renders_html(summary["dataset_drift"], os.environ.get(HTML_ENV))
        summary["report_path"] = location(html_path) if rendered else None
        summary["report_url"] = report_url(html_path) if rendered else None
        summary["report_note"] = None if rendered else NO_HTML_NOTE
        if rendered:
            with tempfile.TemporaryDirectory(dir=work_dir("drift")) as tmp:
                html = Path(tmp) / html_path.name  # the artifact's name in MLflow
                self._report(reference, current).save_html(str(html))
                self._log_to_mlflow(context, summary, html, end_day)
                publish(html, html_path)
        else:
            self._log_to_mlflow(context, summary, None, end_day)
        summary["summary_path"] = location(folder / f"{attempt}.json")
        write_record(folder, attempt, summary)
        if rendered:
            DriftReportLink.persist(context, summary["report_url"])
        MlflowRunLink.persist(context, mlflow_run_url(summary["mlflow_run_id"]))
        self.log.info(
            "Drift %s %s: share %.3f, signal %s (learned drift %s), drifted: %s%s", self.dataset, end,
            summary["drift_share"], summary["signal"], summary.get("learned_drift"), summary["dataset_drift"],
            " [re-check]" if first else "",
        )  # fmt: skip
        return self.record_lineage(
            summary, registry=self.dvc_hook.registry, tracking_uri=hook.tracking_uri, registry_uri=hook.registry_uri
        )

    def _served_rows(self, day: str) -> DaySample:
        """The rows the live endpoint captured on ``day``: the declared columns and the capture columns, sampled to
        ``max_rows`` while reading (seeded; memory bounded by the sample, not the day), with the day's row counts
        and the capture files read; fails naming a declared column the captured rows lack."""
        from mlops_provider.runtime.capture import sample_day

        columns = self.numerical_columns + self.categorical_columns
        served = sample_day(self.model_name, day, columns, self.max_rows, self.seed)
        if served.rows:
            missing = [c for c in columns if c not in served.frame.columns]
            if missing:
                raise AirflowFailException(
                    f"served rows of {self.model_name} on {day} ({len(served.files)} capture file(s)) lack the "
                    f"declared column(s) {missing}: the endpoint's callers do not send them; monitor the ingested "
                    "data (monitoring.current: ingested) or fix the requests"
                )
        return served

    def _too_few_served(
        self,
        context: Context,
        end: str,
        attempt: str,
        version: str,
        first: dict[str, Any] | None,
        served: DaySample,
        reason: str,
    ) -> None:
        """Record a served day with too few captured rows (not judged: not "no drift"), then skip."""
        from mlops_provider.utils.evidence import now_iso, write_record
        from mlops_provider.utils.records import drift_folder
        from mlops_provider.utils.storage import location

        folder = drift_folder(self.model_name, end)
        record = {
            "status": "too_few_served_rows",
            "reason": reason,
            "dataset_drift": None,
            "drift_share": None,
            "dataset": self.dataset,
            "partition": end,
            "window": [end],
            "current": {"kind": "served", "rows": served.rows, "min_rows": self.min_served_rows,
                        "capture_files": served.files, "versions": served.versions},
            "reference": {"kind": self.reference, "model_name": self.model_name, "model_version": version},
            "attempt": attempt,
            "recorded_at": now_iso(),
            "recheck": first is not None,
            "summary_path": location(folder / f"{attempt}.json"),
        }  # fmt: skip
        write_record(folder, attempt, record)
        raise AirflowSkipException(f"{self.model_name} on {end}: {reason}; recorded in {record['summary_path']}")

    def _served_summary(self, served: DaySample, reference: pd.DataFrame) -> dict[str, Any]:
        """``current`` (kind, rows, sampled rows, capture files, rows per version) and ``served``: per answering
        version, its rows (all, and in the sample), its column drift (Evidently on its sampled rows when two versions
        shared the day; the day's own when one did) and the prediction drift of what it returned. The drift signals
        per version are added by :meth:`_served_signals`."""
        import copy

        import numpy as np

        from mlops_provider.ml.capture import PREDICTION, VERSION
        from mlops_provider.ml.drift_signals import prediction_drift
        from mlops_provider.ml.scoring import schema_predictor

        frame = served.frame
        sampled = frame[VERSION].astype(str).value_counts() if len(frame) else {}
        per_version: dict[str, Any] = {}
        for version, rows in served.versions.items():
            mine = frame[frame[VERSION].astype(str) == version]
            entry: dict[str, Any] = {"rows": rows, "sampled_rows": int(sampled.get(version, 0)) if len(frame) else 0}
            if len(served.versions) == 1:
                entry["drift_share"] = self._share
                entry["columns"] = copy.deepcopy(self._columns)
            elif entry["sampled_rows"] >= self.min_served_rows:
                share, columns = self._evidently(reference, mine[self.numerical_columns + self.categorical_columns])
                entry["drift_share"] = share
                entry["columns"] = columns
            else:
                entry["note"] = (
                    f"{entry['sampled_rows']} sampled row(s) of {rows}, fewer than {self.min_served_rows}: not judged"
                )
            if "columns" in entry:
                entry["drifted_columns"] = sorted(c for c, v in entry["columns"].items() if v.get("drifted"))
            try:
                uri = f"models:/{self.model_name}/{version}"  # a served version: checked when it was promoted
                model = self.mlflow_hook.load_model(uri, check_requirements=False)
                expected = np.asarray(schema_predictor(model)(reference), dtype=float).ravel()
                entry["prediction_drift"] = prediction_drift(
                    expected, np.asarray(mine[PREDICTION], dtype=float), self.prediction_drift_threshold, 0.5
                )
            except Exception as exc:  # noqa: BLE001 - a version gone from the registry: the column drift stands
                entry["prediction_drift"] = None
                entry["prediction_drift_note"] = f"v{version}'s predictions on the reference: {exc}"[:300]
            per_version[version] = entry
        return {
            "current": {"kind": "served", "rows": served.rows, "sampled_rows": len(frame),
                        "min_rows": self.min_served_rows, "capture_files": served.files, "versions": served.versions,
                        "sample": {"max_rows": served.max_rows, "seed": served.seed, "sampled": served.sampled}},
            "served": per_version,
        }  # fmt: skip

    def _served_signals(self, summary: dict[str, Any], learned: dict[str, Any] | None) -> None:
        """Per answering version with a column drift, the same signals the day gets (:meth:`_weighted`): the
        importance-weighted drift by **that version's** feature importances (its training run's
        ``feature_importance.json``: the columns it relies on), the learned drift against the champion's learned
        thresholds (the reference is the champion's; so are the calm days), and the chosen signal's verdict."""
        for version, entry in summary["served"].items():
            if "columns" not in entry:
                continue
            try:
                verdict = self._weighted(version, {"columns": entry["columns"], "drift_share": entry["drift_share"]},
                                         learned)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - a version gone from the registry: its column drift stands
                entry["signal_note"] = f"v{version}'s importances: {exc}"[:300]
                continue
            verdict.pop("learned_thresholds", None)  # the day's record carries them once
            entry.update(verdict)

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the window's partitions, the reference (the champion's training data at its rev, or the rolling
        or seasonal partitions), the champion. Wrote: the report and the summary record; the MLflow run."""
        from mlops_provider.lineage.datasets import Lineage, dvc_file, mlflow_model, mlflow_run, stored_file

        registry, reference = result["registry"], result["reference"]

        def partition(day: str) -> LineageDataset:
            return dvc_file(registry, partition_path(self.dataset, day), tag=partition_tag(self.dataset, day))

        if reference["kind"] == "champion":
            reference_data = [dvc_file(registry, reference["data_path"], rev=reference["data_rev"])]
        else:
            reference_data = [partition(day) for day in reference["days"]]
        current = result.get("current") or {}
        if current.get("kind") == "served":
            current_data = [stored_file(f) for f in current.get("capture_files") or []]
        else:
            current_data = [partition(day) for day in result["window"]]
        return Lineage(
            inputs=[
                *current_data,
                *reference_data,
                mlflow_model(result["registry_uri"], self.model_name, str(reference["model_version"])),
            ],
            outputs=[stored_file(result["report_path"]), stored_file(result["summary_path"])],
            run_facets=mlflow_run(result["tracking_uri"], result.get("mlflow_run_id") or ""),
        )

    def _weighted(self, version: str, summary: dict[str, Any], learned: dict[str, Any] | None = None) -> dict[str, Any]:
        """The importance-weighted drift (None without importances), per-column weights, the learned drift (with
        ``learned``: the learned thresholds), and the verdict of the chosen signal."""
        from mlops_provider.ml.drift_signals import (
            IMPORTANCE_ARTIFACT,
            decide_signal,
            normalized_importances,
            weighted_drift,
        )

        run_id = self.mlflow_hook.model_version(self.model_name, version).run_id
        importances = self.mlflow_hook.load_run_dict(run_id, IMPORTANCE_ARTIFACT) if run_id else None
        weighted: float | None = None
        source = None
        weights: dict[str, float] | None = None
        if importances:
            weights = normalized_importances(importances, list(summary["columns"]))
            for name, column in summary["columns"].items():
                column["importance"] = round(weights[name], 6)
            weighted = weighted_drift(summary["columns"], weights)
            source = f"{IMPORTANCE_ARTIFACT} of run {run_id} ({self.model_name} v{version})"
        value, note = None, None
        if learned is not None:
            value, note = self._learned_drift(summary["columns"], learned, weights)
        verdict = decide_signal(
            self.signal, summary["drift_share"], self.drift_share_threshold, weighted, self.weighted_drift_threshold,
            learned=value, learned_threshold=self.learned_drift_threshold, learned_note=note,
        )  # fmt: skip
        extra = (
            {"learned_drift": value, "learned_threshold": self.learned_drift_threshold, "learned_thresholds": learned}
            if learned is not None
            else {}
        )
        return {
            **verdict,
            "weighted_drift": weighted,
            "weighted_threshold": self.weighted_drift_threshold,
            "importance_source": source,
            **extra,
        }

    @staticmethod
    def _learned_drift(
        columns: dict[str, Any], learned: dict[str, Any], weights: dict[str, float] | None
    ) -> tuple[float | None, str | None]:
        """The learned drift of the day's ``columns`` (each gets its ``learned`` judgement) and a note: why there is
        none, or that the columns weighed equally."""
        from mlops_provider.ml.learned_drift import distance, judge_columns, learned_drift, uniform_weights

        thresholds = learned.get("columns") or {}
        if not any(t.get("threshold") is not None for t in thresholds.values()):
            return None, learned.get("note") or "no column has a learned threshold"
        scores = {name: distance(c["method"], c["score"]) for name, c in columns.items()}
        judged = judge_columns(scores, thresholds)
        for name, judgement in judged.items():
            columns[name]["learned"] = {k: round(v, 6) if isinstance(v, float) else v for k, v in judgement.items()}
        unlearned = sorted(set(columns) - set(judged))
        notes = [f"no learned threshold for {unlearned} (they do not count)"] if unlearned else []
        if not weights or not any(weights.values()):
            weights = uniform_weights(list(columns))
            notes.append("the champion's run logged no feature importances: the columns weigh equally")
        return learned_drift(judged, weights), "; ".join(notes) or None

    def _training_days(self, rev: str) -> list[str] | None:
        """The partitions the champion's training set was assembled from (its commit trailer), or None."""
        trailer = self.dvc_hook.describe_commit(rev)["trailers"].get(PARTITIONS_TRAILER, "")
        days = [d.strip() for d in trailer.split(",") if d.strip()]
        return days or None

    def _learned_thresholds(
        self,
        version: str,
        tags: dict[str, str],
        summary: dict[str, Any],
        reference_days: list[str] | None,
        available: set[str],
    ) -> dict[str, Any]:
        """The champion's learned per-column thresholds: read from ``<reports root>/drift-thresholds/<model>/``
        when this champion and these settings were learned before, else learned now and kept there (whole or not at
        all; never rewritten: other settings are another file). ``{"note"}`` alone when they cannot be learned."""
        from mlops_provider.ml.learned_drift import distance, learn_thresholds, leave_one_day_out
        from mlops_provider.utils.evidence import now_iso
        from mlops_provider.utils.records import drift_thresholds_file
        from mlops_provider.utils.storage import location, write_text

        days = reference_days or self._training_days(tags[DATA_REV_TAG])
        if not days:
            return {
                "note": f"{self.model_name} v{version}'s training set ({tags[DATA_REV_TAG]}) names no partitions "
                f"(commit trailer {PARTITIONS_TRAILER}): no calm days to learn thresholds from",
                "columns": {},
            }
        days = sorted(d for d in days if partition_tag(self.dataset, d) in available)
        if len(days) < 2:
            return {
                "note": f"{len(days)} validated day(s) in the reference ({days}): leave-one-day-out needs 2",
                "columns": {},
            }
        first = dt.date.fromisoformat(days[0])
        before = [(first - dt.timedelta(days=i)).isoformat() for i in range(self.drift_calibration_days, 0, -1)]
        earlier = [d for d in before if partition_tag(self.dataset, d) in available]
        methods = {name: column["method"] for name, column in summary["columns"].items()}
        floors = {name: distance(c["method"], c["threshold"]) for name, c in summary["columns"].items()}
        settings = {
            "model": self.model_name, "version": version, "data_rev": tags[DATA_REV_TAG], "dataset": self.dataset,
            "reference_days": days, "calibration_days": earlier, "methods": methods, "floors": floors,
            "k": self.learned_drift_k, "max_rows": self.max_rows, "seed": self.seed,
        }  # fmt: skip
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        path = drift_thresholds_file(self.model_name, version, key)
        if path.is_file():
            try:
                cached = json.loads(path.read_text())
            except ValueError:
                self.log.warning("Unreadable learned thresholds at %s: learning them again", path)
            else:
                self.log.info("Learned drift thresholds of %s v%s read from %s", self.model_name, version, path)
                return {**cached, "path": location(path), "computed_now": False}
        frames = {d: self._read_sample(partition_path(self.dataset, d), partition_tag(self.dataset, d))
                  for d in [*earlier, *days]}  # fmt: skip

        def score(rest: list[str], day: str) -> dict[str, float]:
            import pandas as pd

            reference = pd.concat([frames[d] for d in rest], ignore_index=True)
            if len(reference) > self.max_rows:
                reference = reference.sample(n=self.max_rows, random_state=self.seed)
            _, columns = self._evidently(reference, frames[day])
            # only scores by the method the day's check uses are comparable with the day's score
            return {n: distance(c["method"], c["score"]) for n, c in columns.items() if c["method"] == methods.get(n)}

        calm = leave_one_day_out(days, score, earlier=earlier)
        learned = {
            "reference_days": days,
            "calibration_days": earlier,
            "k": self.learned_drift_k,
            "rule": f"per column max(mean + {self.learned_drift_k:g} * std, fixed threshold) of its calm scores: "
            "each reference day against the other reference days, each calibration day against all of them",
            "rows_per_day": {d: len(frames[d]) for d in frames},
            "columns": learn_thresholds(calm, k=self.learned_drift_k, floors=floors),
            "settings_key": key,
            "model_version": version,
            "learned_at": now_iso(),
        }
        write_text(path, json.dumps(learned, indent=2))
        self.log.info(
            "Learned drift thresholds of %s v%s from %d reference and %d calibration day(s), kept at %s",
            self.model_name, version, len(days), len(earlier), path,
        )  # fmt: skip
        return {**learned, "path": location(path), "computed_now": True}

    def _run_evidently(self, reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
        share, columns = self._evidently(reference, current)
        self._share, self._columns = share, columns
        return {
            "dataset_drift": share >= self.drift_share_threshold,
            "drift_share": share,
            "threshold": self.drift_share_threshold,
            "columns": columns,
        }

    def _evidently(self, reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, dict[str, Any]]:
        """The drift share of ``current`` vs ``reference`` and per column ``{"method", "score", "threshold",
        "drifted"}`` (:func:`drift_scores`: the numbers of Evidently's DataDriftPreset, no report built)."""
        return drift_scores(
            reference, current, self.numerical_columns, self.categorical_columns, self.drift_share_threshold,
            self.column_methods, self.column_thresholds,
        )  # fmt: skip

    def _report(self, reference: pd.DataFrame, current: pd.DataFrame) -> Any:
        """Evidently's report (DataDriftPreset) of ``current`` vs ``reference``, built only for its HTML."""
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(
            numerical_columns=self.numerical_columns, categorical_columns=self.categorical_columns
        )
        preset = DataDriftPreset(
            drift_share=self.drift_share_threshold,
            per_column_method=self.column_methods or None,
            per_column_threshold=self.column_thresholds or None,
        )
        return Report([preset]).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )

    def _log_to_mlflow(self, context: Context, summary: dict[str, Any], html: Path | None, day: dt.date) -> None:
        hook = self.mlflow_hook
        ti = context["ti"]
        run_id = hook.run_for_key(
            self.experiment_name, RUN_KEY_TAG, f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/try{ti.try_number}",
            f"drift-{self.model_name}-{day}",
        )  # fmt: skip
        hook.log_dated_metric(run_id, "drift_share", summary["drift_share"], day)
        if summary.get("weighted_drift") is not None:
            hook.log_dated_metric(run_id, "weighted_drift", summary["weighted_drift"], day)
        if summary.get("learned_drift") is not None:
            hook.log_dated_metric(run_id, "learned_drift", summary["learned_drift"], day)
        hook.set_run_tags(
            run_id,
            {
                "dataset": self.dataset,
                "window_end": day.isoformat(),
                "reference.model_version": summary["reference"]["model_version"],
                "reference.data_rev": summary["reference"]["data_rev"],
                "dataset_drift": str(summary["dataset_drift"]),
                "recheck": str(summary["recheck"]),
            },
        )
        if html is not None:
            hook.log_artifact(run_id, html, "drift")
        hook.terminate_run(run_id, "FINISHED")
        summary["mlflow_run_id"] = run_id
