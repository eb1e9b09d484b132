"""Performance of the champion on late-arriving labels: the second retraining signal next to data drift."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_provider.hooks.mixins import DvcHookMixin, MlflowHookMixin
from mlops_provider.layout import (
    CALIBRATIONS,
    CHAMPION_ALIAS,
    DATA_PATH_TAG,
    DATA_REV_TAG,
    DEFAULT_INTERVAL_LEVEL,
    PERFORMANCE_ALARM_RULES,
    RUN_KEY_TAG,
    partition_path,
    partition_tag,
)
from mlops_provider.lineage.mixin import OpenLineageMixin
from mlops_provider.links.extra_links import MlflowRunLink, mlflow_run_url
from mlops_provider.utils.compat import AirflowFailException, AirflowSkipException
from mlops_provider.utils.templated_fields import INTERVAL_DATE

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops_provider.lineage.datasets import Lineage
    from mlops_provider.ml.split import Split

HIGHER_IS_BETTER = ("roc_auc", "f1", "accuracy", "precision", "recall")


class ModelPerformanceOperator(OpenLineageMixin, MlflowHookMixin, DvcHookMixin, BaseOperator):
    """Score the current champion on the newest day whose labels have arrived and compare with a floor.

    Labels may arrive late: on the run for day D, the labelled day is ``D - label_delay_days``; the check pools it
    with the ``label_window_days - 1`` days before it. Each day's validated partition is read at its tag from the
    data registry; rows without a label are dropped, and so is every row the champion may have trained on: only the
    **holdout rows of the champion's own split** (version tags ``split.*``, recorded by ``TrainModelOperator``) are
    scored, so a model is never judged on its training rows (a version without split tags fails: it cannot be
    scored out of sample). When no day of the window is versioned (quarantined, not ingested) the summary says
    ``status = "no_labels"``; when the window holds fewer than ``min_labelled_rows`` labelled holdout rows it says
    ``status = "too_few_labels"``; both with a ``reason`` (rows per day, window, minimum) and nothing is decided.
    Otherwise the metric is scored with its confidence interval (``interval``: DeLong for ROC AUC, a seeded
    stratified bootstrap otherwise; :mod:`mlops_provider.ml.label_check`), the day ``crossed`` the floor by the
    ``performance_alarm`` rule, and ``below_floor`` (what the drift sensor reads) says whether it did on
    ``consecutive_days`` days in a row. The summary is written to
    ``<reports root>/performance/<model>/<D>/<attempt>.json`` (the drift sensor waits for it) and the metric and
    its bounds are logged to MLflow experiment ``monitoring`` at the labelled day.

    :param dataset: dataset name (templated).
    :param model_name: registered model whose champion is scored (templated).
    :param floor: the lowest acceptable value of ``metric``.
    :param metric: one of ``roc_auc``, ``f1``, ``accuracy``, ``precision``, ``recall``.
    :param partition: day of the monitoring run (templated; default: the date of ``data_interval_start``).
    :param label_delay_days: days until the labels of a day are in the source.
    :param label_column: the label column (no default: it is the model's).
    :param positive_class: the label value of the positive class.
    :param threshold: probability threshold for the thresholded metrics.
    :param min_labelled_rows: fewer labelled holdout rows in the window decide nothing (``too_few_labels``).
    :param label_window_days: days of labels pooled: the labelled day and the ``label_window_days - 1`` before it
        (3 by default: at ~150-200 labelled rows a day one day decides on 0-3% of days, three on all of them;
        docs/drift-signals.md).
    :param performance_alarm: ``interval`` (the day crosses the floor when the upper end of the metric's interval
        is under it) or ``point`` (when the value is).
    :param consecutive_days: the floor must be crossed on this many run days in a row (the earlier days' first
        records, judged by today's rule and floor) before ``below_floor`` calls for retraining.
    :param interval_level: confidence level of the interval.
    :param estimate: also estimate ``metric`` on the run's own day, before its labels arrive, from the champion's
        predicted probabilities on the day's holdout rows (confidence-based, ``mlops_provider.ml.estimation``; for
        ``roc_auc``, ``accuracy``, ``precision``, ``recall``, ``f1``), after calibrating them on the champion's
        holdout (``estimate_calibration``), with a seeded bootstrap interval: ``estimated`` in the summary
        (``value``, ``low``, ``high``, ``uncalibrated``, ``calibration``, ``assumption``, ``verdict``), MLflow
        metrics ``estimated_<metric>`` (and ``_low``, ``_high``) at the day; when the labelled day's realised value
        is scored, the estimate made for that day back then is recorded beside it (``estimate_then``;
        ``estimate_error`` and ``estimate_covered`` (realised within its interval) when the same version made it).
        The estimate assumes ``P(y|x)`` unchanged since the holdout: it holds under covariate shift, not under
        concept change (``mlops_provider.ml.estimation.ASSUMPTION``).
    :param prediction_drift: also compare the champion's predictions on the day's holdout rows with its predictions
        on its own holdout (normed Wasserstein distance of the probabilities, predicted positive rates):
        ``prediction_drift`` in the summary (with ``noise``: the score a day of that many rows drawn from the holdout
        predictions reaches by sampling alone, at ``interval_level``), MLflow metrics ``prediction_drift`` and
        ``predicted_positive_rate``.
    :param prediction_drift_threshold: the distance at which the predictions count as drifted.
    :param trigger_on_prediction_drift: drifted predictions call for retraining (reason ``prediction_drift``).
    :param trigger_on_estimate: an estimate below ``floor`` calls for retraining too (reason ``performance``),
        without waiting for the labels (``estimated_below_floor``).
    :param estimate_calibration: how the champion's scores are calibrated before estimating: ``auto`` (the
        default: the calibration whose cross-fitted Brier score on the champion's holdout is lowest, kept only when
        it beats the raw scores by more than the noise, else none; ``estimated.calibration.selection`` holds the
        numbers), ``isotonic``, ``sigmoid`` (Platt on the logit) or ``none``. The fits and the auto choice come from
        the version's run artefact ``evaluation/calibration.json`` (written at training; for an older version fitted
        on its holdout at the first estimate and stored there; an artefact from before ``auto`` holds no choice:
        isotonic then, and the record says so); a fit the holdout is too small for falls back (isotonic -> sigmoid
        -> none) and the record says why.
    :param estimate_alarm: when the estimate counts as below the floor: ``interval`` (its upper bound is under
        ``floor``) or ``point`` (the estimate itself is).
    :param estimate_resamples: bootstrap resamples of the estimate's interval (seeded by the day).
    :param served_key_column: the dataset's key column: when given, the labelled day's late labels are also joined,
        by request id == key, to the predictions the live endpoint really returned that day (its capture,
        :mod:`mlops_provider.runtime.capture`), and the summary gains ``served``: the realised ``metric`` per
        answering version on what it served (``{"labelled_day", "capture_files", "captured_rows", "joined_rows",
        "versions": {<version>: {"rows", "value", "reason"}}}``), beside the estimate. None: not computed.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``,
    ``dvc_conn_id``.

    XCom (return value): the summary ``{"status", "reason", "partition", "labelled_day", "label_days", "metric",
    "value", "interval": {"lower", "upper", "level", "method", "rows", "positives", "negatives"}, "floor",
    "crossed", "below_floor", "alarm": {"rule", "consecutive_days", "crossed", "previous", "reason"},
    "labelled_rows", "min_labelled_rows", "model_version", "summary_path", "mlflow_run_id"}``.
    """

    template_fields: Sequence[str] = ("dataset", "model_name", "partition")
    operator_extra_links = (MlflowRunLink(),)
    ui_color = "#fdf3e8"

    def __init__(
        self,
        *,
        dataset: str,
        model_name: str,
        floor: float,
        label_column: str,
        label_delay_days: int,
        positive_class: Any = 1,
        metric: str = "roc_auc",
        partition: str = INTERVAL_DATE,
        threshold: float = 0.5,
        min_labelled_rows: int = 200,
        label_window_days: int = 3,
        performance_alarm: str = "interval",
        consecutive_days: int = 1,
        interval_level: float = DEFAULT_INTERVAL_LEVEL,
        estimate: bool = True,
        trigger_on_estimate: bool = False,
        prediction_drift: bool = True,
        prediction_drift_threshold: float = 0.1,
        trigger_on_prediction_drift: bool = False,
        estimate_calibration: str = "auto",
        estimate_alarm: str = "interval",
        estimate_resamples: int = 200,
        champion_alias: str = CHAMPION_ALIAS,
        experiment_name: str = "monitoring",
        served_key_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.served_key_column = served_key_column
        if metric not in HIGHER_IS_BETTER:
            raise ValueError(f"metric must be one of {', '.join(HIGHER_IS_BETTER)}, got {metric!r}")
        if label_delay_days < 0:
            raise ValueError(f"label_delay_days must be >= 0, got {label_delay_days}")
        if estimate_calibration not in CALIBRATIONS:
            raise ValueError(
                f"estimate_calibration must be one of {', '.join(CALIBRATIONS)}, got {estimate_calibration!r}"
            )
        if estimate_alarm not in ("interval", "point"):
            raise ValueError(f"estimate_alarm must be interval or point, got {estimate_alarm!r}")
        if estimate_resamples < 1:
            raise ValueError(f"estimate_resamples must be >= 1, got {estimate_resamples}")
        if label_window_days < 1 or consecutive_days < 1 or min_labelled_rows < 1:
            raise ValueError(
                "label_window_days, consecutive_days and min_labelled_rows must be >= 1, got "
                f"{label_window_days}, {consecutive_days}, {min_labelled_rows}"
            )
        if performance_alarm not in PERFORMANCE_ALARM_RULES:
            raise ValueError(
                f"performance_alarm must be one of {', '.join(PERFORMANCE_ALARM_RULES)}, got {performance_alarm!r}"
            )
        if not 0 < interval_level < 1:
            raise ValueError(f"interval_level must be in (0, 1), got {interval_level}")
        self.dataset = dataset
        self.model_name = model_name
        self.floor = floor
        self.metric = metric
        self.partition = partition
        self.label_delay_days = label_delay_days
        self.label_column = label_column
        self.positive_class = positive_class
        self.threshold = threshold
        self.min_labelled_rows = min_labelled_rows
        self.label_window_days = label_window_days
        self.performance_alarm = performance_alarm
        self.consecutive_days = consecutive_days
        self.interval_level = interval_level
        self.champion_alias = champion_alias
        self.experiment_name = experiment_name
        self.estimate = estimate
        self.trigger_on_estimate = trigger_on_estimate
        self.prediction_drift = prediction_drift
        self.prediction_drift_threshold = prediction_drift_threshold
        self.trigger_on_prediction_drift = trigger_on_prediction_drift
        self.estimate_calibration = estimate_calibration
        self.estimate_alarm = estimate_alarm
        self.estimate_resamples = estimate_resamples
        self._models: dict[str, Any] = {}
        self._splits: dict[str, Split] = {}

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.ml.label_check import labels_verdict
        from mlops_provider.utils.evidence import attempt_key, first_attempt, write_record
        from mlops_provider.utils.records import performance_folder
        from mlops_provider.utils.storage import location

        day = dt.date.fromisoformat(str(self.partition))
        attempt = attempt_key(context)
        folder = performance_folder(self.model_name, day.isoformat())
        first = first_attempt(folder, other_than=attempt)
        if first is not None:  # a re-check scores the model the day's first check scored, beside that record
            champion = str(first.get("model_version"))
            self.log.warning("Re-check of %s: scoring v%s, the champion its first check (%s) recorded",
                             day, champion, first.get("attempt"))  # fmt: skip
        else:
            champion = self.mlflow_hook.alias_version(self.model_name, self.champion_alias)  # type: ignore[assignment]
        if champion is None:
            raise AirflowSkipException(f"{self.model_name} has no {self.champion_alias!r} yet: nothing to score")
        labelled_day = (day - dt.timedelta(days=self.label_delay_days)).isoformat()
        summary: dict[str, Any] = {
            "status": "no_labels",
            "dataset": self.dataset,
            "model_name": self.model_name,
            "partition": day.isoformat(),
            "labelled_day": labelled_day,
            "label_window_days": self.label_window_days,
            "metric": self.metric,
            "floor": self.floor,
            "model_version": champion,
            "below_floor": False,
            "labelled_rows": 0,
            "min_labelled_rows": self.min_labelled_rows,
            "recheck": first is not None,
        }
        frame = self._pooled_rows(champion, dt.date.fromisoformat(labelled_day), summary)
        status, reason = labels_verdict(
            {d["day"]: d["labelled_rows"] if d["versioned"] else None for d in summary["label_days"]},
            self.min_labelled_rows,
        )
        if status == "scored":
            self._decide(context, champion, day, frame, summary)
        else:
            summary.update(status=status, reason=reason)
            self.log.warning("No decision on %s (%s): %s", labelled_day, status, reason)
        if self.estimate or self.prediction_drift:
            self._estimate(context, champion, day, summary)
        self._compare_with_estimate(champion, summary)
        if self.served_key_column:
            summary["served"] = self._realised_served(labelled_day)
        summary["summary_path"] = location(folder / f"{attempt}.json")
        write_record(folder, attempt, summary)
        hook = self.mlflow_hook
        return self.record_lineage(
            summary, registry=self.dvc_hook.registry, tracking_uri=hook.tracking_uri, registry_uri=hook.registry_uri
        )

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the champion and the window's versioned partitions. Wrote: the summary record; the MLflow run of
        the score."""
        from mlops_provider.lineage.datasets import Lineage, dvc_file, mlflow_model, mlflow_run, stored_file

        inputs = [mlflow_model(result["registry_uri"], self.model_name, str(result["model_version"]))]
        for labelled in result.get("label_days") or []:
            if labelled.get("versioned"):
                day = labelled["day"]
                inputs.append(
                    dvc_file(
                        result["registry"], partition_path(self.dataset, day), tag=partition_tag(self.dataset, day)
                    )
                )
        return Lineage(
            inputs=inputs,
            outputs=[stored_file(result["summary_path"])],
            run_facets=mlflow_run(result["tracking_uri"], result.get("mlflow_run_id") or ""),
        )

    def _model(self, version: str) -> Any:
        """The version's pyfunc model, loaded once per task (its requirements were checked when it was promoted)."""
        if version not in self._models:
            uri = f"models:/{self.model_name}/{version}"
            self._models[version] = self.mlflow_hook.load_model(uri, check_requirements=False)
        return self._models[version]

    def _estimate(self, context: Context, version: str, day: dt.date, summary: dict[str, Any]) -> None:
        """The metric estimated from the champion's probabilities on the day's own holdout rows (no labels needed,
        CBPE), and, once the labelled day's realised value is known, the error of the estimate made back then."""
        import numpy as np

        from mlops_provider.ml.estimation import ESTIMABLE, estimate
        from mlops_provider.ml.scoring import schema_predictor

        tag = partition_tag(self.dataset, day.isoformat())
        if tag not in self.dvc_hook.tags(tag):
            summary["estimated"] = None
            return
        frame = self.dvc_hook.read_frame(partition_path(self.dataset, day.isoformat()), tag)
        rows = self._holdout_rows(version, frame, f"partition of {day.isoformat()}")
        if self.label_column in rows.columns:
            rows = rows.drop(columns=[self.label_column])  # the estimate never looks at labels
        proba = np.asarray(schema_predictor(self._model(version))(rows), dtype=float)
        if self.prediction_drift:
            self._prediction_drift(context, version, day, proba, summary)
        if self.estimate and self.metric in ESTIMABLE:
            calibration = self._calibration(version)
            made = estimate(proba, self.metric, self.threshold, calibration, resamples=self.estimate_resamples,
                            seed=day.toordinal())  # fmt: skip
            self._record_estimate(context, day, made, summary)
        else:
            summary["estimated"] = None
        if summary.get("mlflow_run_id"):
            self.mlflow_hook.terminate_run(summary["mlflow_run_id"], "FINISHED")

    def _calibration(self, version: str) -> dict[str, Any]:
        """The calibration of ``version``'s scores to apply (``estimate_calibration``, or its fallback), from the
        fits stored with the version's run; fitted on the version's holdout (and stored there, once) when the
        version predates them. ``source`` names the artefact, ``fitted_at`` when it was fitted."""
        from mlops_provider.ml.estimation import CALIBRATION_ARTIFACT, fit_calibrations, select_calibration
        from mlops_provider.ml.scoring import binary_labels, schema_predictor

        if self.estimate_calibration == "none":
            return select_calibration(None, "none")
        run_id = self.mlflow_hook.model_version(self.model_name, version).run_id
        fits = self.mlflow_hook.load_run_dict(run_id, CALIBRATION_ARTIFACT) if run_id else None
        if fits is None:
            tags = self.mlflow_hook.model_version_tags(self.model_name, version)
            if not tags.get(DATA_PATH_TAG) or not tags.get(DATA_REV_TAG):
                raise AirflowFailException(f"{self.model_name} v{version} has no {DATA_PATH_TAG}/{DATA_REV_TAG} tags")
            trained_on = self.dvc_hook.read_frame(tags[DATA_PATH_TAG], tags[DATA_REV_TAG])
            holdout = self._holdout_rows(version, trained_on, "the champion's training set")
            holdout = holdout[holdout[self.label_column].notna()]
            scores = schema_predictor(self._model(version))(holdout.drop(columns=[self.label_column]))
            labels = binary_labels(holdout[self.label_column], self.positive_class)
            fits = {**fit_calibrations(labels, scores), "fitted_at": "first estimate"}
            self.log.info("v%s had no %s: fitted on its %s holdout rows", version, CALIBRATION_ARTIFACT, len(holdout))
            if run_id:  # the same fit for every later day (deterministic: a concurrent fit writes the same file)
                self.mlflow_hook.log_dict(run_id, fits, CALIBRATION_ARTIFACT)
        source = f"runs:/{run_id}/{CALIBRATION_ARTIFACT}" if run_id else None
        return {**select_calibration(fits, self.estimate_calibration), "source": source,
                "fitted_at": fits.get("fitted_at")}  # fmt: skip

    def _record_estimate(self, context: Context, day: dt.date, made: dict[str, Any], summary: dict[str, Any]) -> None:
        value, low, high = made["value"], made["low"], made["high"]
        if self.estimate_alarm == "interval":
            judged, what = high, "upper bound"
        else:
            judged, what = value, "estimate"
        below = judged is not None and judged < self.floor
        calibration = made["calibration"]
        bounds = "no interval" if low is None else f"[{low:.3f}, {high:.3f}]"
        verdict = (
            f"estimated {self.metric} {value if value is None else round(value, 4)} {bounds} on {made['rows']} rows, "
            f"calibration {calibration['method']} ({calibration.get('reason')}); rule {self.estimate_alarm}: "
            f"{what} {judged if judged is None else round(judged, 4)} "
            f"{'under' if below else 'not under'} the floor {self.floor:g}"
        )
        summary["estimated"] = {
            "day": day.isoformat(),
            "metric": self.metric,
            **made,
            "method": "confidence-based (expected confusion matrix / ROC from calibrated probabilities)",
            "alarm": self.estimate_alarm,
            "verdict": verdict,
        }
        summary["estimated_below_floor"] = below
        summary["trigger_on_estimate"] = self.trigger_on_estimate
        (self.log.warning if below else self.log.info)("%s", verdict)
        if value is not None:
            run_id = summary.get("mlflow_run_id") or self._monitoring_run(context, day)
            summary["mlflow_run_id"] = run_id
            self.mlflow_hook.log_dated_metric(run_id, f"estimated_{self.metric}", value, day)
            if low is not None:
                self.mlflow_hook.log_dated_metric(run_id, f"estimated_{self.metric}_low", low, day)
                self.mlflow_hook.log_dated_metric(run_id, f"estimated_{self.metric}_high", high, day)

    def _prediction_drift(
        self, context: Context, version: str, day: dt.date, proba: Any, summary: dict[str, Any]
    ) -> None:
        """The day's predictions vs the champion's predictions on its own holdout (its training set's held-out keys)."""
        import numpy as np

        from mlops_provider.ml.drift_signals import prediction_drift
        from mlops_provider.ml.label_check import prediction_drift_noise
        from mlops_provider.ml.scoring import schema_predictor

        tags = self.mlflow_hook.model_version_tags(self.model_name, version)
        if not tags.get(DATA_PATH_TAG) or not tags.get(DATA_REV_TAG):
            raise AirflowFailException(f"{self.model_name} v{version} has no {DATA_PATH_TAG}/{DATA_REV_TAG} tags")
        trained_on = self.dvc_hook.read_frame(tags[DATA_PATH_TAG], tags[DATA_REV_TAG])
        holdout = self._holdout_rows(version, trained_on, "the champion's training set")
        if self.label_column in holdout.columns:
            holdout = holdout.drop(columns=[self.label_column])
        reference = np.asarray(schema_predictor(self._model(version))(holdout), dtype=float)
        result = prediction_drift(reference, proba, self.prediction_drift_threshold, self.threshold)
        # the score a day of this size reaches by sampling alone (informative: the line decides)
        result["noise"] = prediction_drift_noise(reference, len(proba), self.interval_level)
        summary["prediction_drift"] = {**result, "day": day.isoformat()}
        summary["trigger_on_prediction_drift"] = self.trigger_on_prediction_drift
        run_id = summary.get("mlflow_run_id") or self._monitoring_run(context, day)
        summary["mlflow_run_id"] = run_id
        self.mlflow_hook.log_dated_metric(run_id, "prediction_drift", result["score"], day)
        self.mlflow_hook.log_dated_metric(run_id, "predicted_positive_rate", result["positive_rate_current"], day)
        (self.log.warning if result["drifted"] else self.log.info)(
            "Prediction drift of v%s on %s: %.3f (line %s; sampling noise reaches %s at %s rows); positive rate "
            "%.3f vs %.3f on its holdout",
            version, day, result["score"], self.prediction_drift_threshold,
            f"{result['noise']['bound']:.3f}", len(proba),
            result["positive_rate_current"], result["positive_rate_reference"],
        )  # fmt: skip

    def _realised_served(self, labelled_day: str) -> dict[str, Any]:
        """The realised metric per answering version on what the endpoint served on ``labelled_day``: the day's late
        labels joined to its captured predictions by request id (the predictions returned, not a re-scoring). The
        capture is read bounded (:func:`~mlops_provider.runtime.capture.join_day`: three columns, a batch at a time,
        each batch joined before the next): memory holds the labels and the joined rows, not the captured day."""
        from mlops_provider.ml.capture import label_lookup, realised_by_version
        from mlops_provider.runtime.capture import join_day

        key = str(self.served_key_column)

        def lookup() -> Any:
            labels = self._labelled_rows(labelled_day)
            if labels is None or not len(labels):
                return None
            try:
                return label_lookup(labels, key, self.label_column)
            except ValueError as exc:
                raise AirflowFailException(f"served rows of {labelled_day} vs its labels: {exc}") from exc

        try:
            day = join_day(self.model_name, labelled_day, lookup)
        except ValueError as exc:
            raise AirflowFailException(f"served rows of {labelled_day}: {exc}") from exc
        out: dict[str, Any] = {"labelled_day": labelled_day, "capture_files": day.files, "captured_rows": day.rows,
                               "joined_rows": 0, "versions": {}}  # fmt: skip
        if day.joined is None:
            out["reason"] = "no captured rows that day" if not day.rows else "the labelled day is not versioned"
            return out
        out["joined_rows"] = len(day.joined)
        out["versions"] = realised_by_version(day.joined, self.label_column, self.positive_class, self.metric,
                                              self.threshold)  # fmt: skip
        self.log.info("Realised %s on what was served on %s: %s", self.metric, labelled_day,
                      {v: e["value"] for v, e in out["versions"].items()})  # fmt: skip
        return out

    def _compare_with_estimate(self, version: str, summary: dict[str, Any]) -> None:
        """Beside a realised value: the estimate the labelled day's own first check made (before its labels)."""
        from mlops_provider.utils.evidence import first_attempt
        from mlops_provider.utils.records import performance_folder

        then = first_attempt(performance_folder(self.model_name, summary["labelled_day"])) or {}
        estimated_then = then.get("estimated") or {}
        if summary.get("status") == "scored" and estimated_then.get("value") is not None:
            summary["estimate_then"] = {**estimated_then, "model_version": then.get("model_version")}
            if str(then.get("model_version")) == str(version):
                summary["estimate_error"] = summary["value"] - estimated_then["value"]
                if estimated_then.get("low") is not None:  # outside: the assumption (or the calibration) failed
                    summary["estimate_covered"] = estimated_then["low"] <= summary["value"] <= estimated_then["high"]

    def _labelled_rows(self, labelled_day: str) -> Any:

        tag = partition_tag(self.dataset, labelled_day)
        if tag not in self.dvc_hook.tags(tag):
            return None
        frame = self.dvc_hook.read_frame(partition_path(self.dataset, labelled_day), tag)
        if self.label_column not in frame.columns:
            raise AirflowFailException(f"label column {self.label_column!r} is not in partition {labelled_day}")
        return frame[frame[self.label_column].notna()].reset_index(drop=True)

    def _split(self, version: str) -> Split:
        """The holdout split ``version`` was trained with (its version tags), read once per task. An out-of-time
        split holds out every row on or after its first held-out day: a day after the training window is unseen
        whole."""
        from mlops_provider.ml.split import split_from_tags

        if version not in self._splits:
            split = split_from_tags(self.mlflow_hook.model_version_tags(self.model_name, version))
            if split is None:
                raise AirflowFailException(
                    f"{self.model_name} v{version} has no split tags (split.method, split.key...): it was "
                    "not trained by TrainModelOperator's split, so its training rows cannot be told apart and it "
                    "cannot be scored out of sample. Retrain it (trigger the training DAG) and promote the new version."
                )
            self._splits[version] = split
        return self._splits[version]

    def _holdout_rows(self, version: str, frame: Any, where: str) -> Any:
        """The rows of ``frame`` (``where`` names it in errors) in the holdout of ``version``'s split."""
        try:
            return frame[self._split(version).mask(frame)].reset_index(drop=True)
        except ValueError as exc:
            raise AirflowFailException(f"{where}: {exc}") from exc

    def _pooled_rows(self, version: str, labelled_day: dt.date, summary: dict[str, Any]) -> Any:
        """The labelled holdout rows of every versioned day of the window, pooled (``None`` when no day is
        versioned); ``summary`` gets ``label_days`` (each day: versioned, labelled holdout rows) and the totals."""
        import pandas as pd

        from mlops_provider.ml.label_check import window_days

        frames, label_days, excluded = [], [], 0
        for labelled in window_days(labelled_day, self.label_window_days):
            frame = self._labelled_rows(labelled.isoformat())
            if frame is None:
                label_days.append({"day": labelled.isoformat(), "versioned": False, "labelled_rows": 0})
                continue
            holdout = self._holdout_rows(version, frame, f"partition of {labelled.isoformat()}")
            excluded += len(frame) - len(holdout)
            label_days.append({"day": labelled.isoformat(), "versioned": True, "labelled_rows": len(holdout)})
            frames.append(holdout)
        summary["label_days"] = label_days
        if not frames:
            return None
        summary["holdout"] = self._split(version).as_dict()
        summary["excluded_training_rows"] = excluded
        pooled = pd.concat(frames, ignore_index=True)
        summary["labelled_rows"] = len(pooled)
        return pooled

    def _previous_crossings(self, day: dt.date) -> list[bool | None]:
        """Whether each of the ``consecutive_days - 1`` run days before ``day`` crossed the floor, the newest first,
        judged by this check's rule and floor from the day's first record (``None``: no decision that day)."""
        from mlops_provider.ml.label_check import crosses_floor
        from mlops_provider.utils.evidence import first_attempt
        from mlops_provider.utils.records import performance_folder

        previous: list[bool | None] = []
        for back in range(1, self.consecutive_days):
            earlier = day - dt.timedelta(days=back)
            record = first_attempt(performance_folder(self.model_name, earlier.isoformat())) or {}
            interval = record.get("interval") or {}
            if record.get("status") != "scored" or record.get("value") is None:
                previous.append(None)
            elif self.performance_alarm == "interval" and interval.get("upper") is None:
                previous.append(None)  # a record from before intervals: it cannot be judged by this rule
            else:
                value = float(record["value"])
                lower, upper = float(interval.get("lower", value)), float(interval.get("upper", value))
                previous.append(crosses_floor(value, lower, upper, self.floor, self.performance_alarm))
        return previous

    def _decide(self, context: Context, version: str, day: dt.date, frame: Any, summary: dict[str, Any]) -> None:
        """Score the pooled rows with the interval, judge the floor by the rule and record the verdict."""
        from mlops_provider.ml.label_check import crosses_floor, performance_alarm

        value, interval = self._score(version, frame)
        crossed = crosses_floor(value, interval["lower"], interval["upper"], self.floor, self.performance_alarm)
        previous = self._previous_crossings(day)
        alarm, why = performance_alarm(crossed, previous, self.consecutive_days)
        level = f"{interval['level']:.0%}"
        verdict = (
            f"{self.metric} {value:.4f}, {level} interval [{interval['lower']:.4f}, {interval['upper']:.4f}] "
            f"({interval['method']}, {interval['rows']} rows: {interval['positives']} positive) vs floor {self.floor}: "
            + ("crossed" if crossed else "not crossed")
            + f" by the {self.performance_alarm} rule; {why}: "
            + ("retraining is called for" if alarm else "no alarm")
        )
        summary.update(
            status="scored", value=value, interval=interval, crossed=crossed, point_below_floor=value < self.floor,
            below_floor=alarm, verdict=verdict,
            alarm={"rule": self.performance_alarm, "consecutive_days": self.consecutive_days, "crossed": crossed,
                   "previous": previous, "reason": why},
        )  # fmt: skip
        labelled_day = dt.date.fromisoformat(summary["labelled_day"])
        summary["mlflow_run_id"] = self._log_to_mlflow(context, value, labelled_day, interval)
        MlflowRunLink.persist(context, mlflow_run_url(summary["mlflow_run_id"]))
        days = ", ".join(f"{d['day']}: {d['labelled_rows'] if d['versioned'] else 'not versioned'}"
                         for d in summary["label_days"])  # fmt: skip
        (self.log.warning if alarm or value < self.floor else self.log.info)(
            "Champion v%s on the labels of %s (%s): %s", version, summary["labelled_day"], days, verdict
        )

    def _score(self, version: str, frame: Any) -> tuple[float, dict[str, Any]]:
        """``metric`` of ``version`` on ``frame`` and its confidence interval (:func:`~mlops_provider.ml.label_check.
        metric_interval`, seeded: a re-check gives the same bounds)."""
        import numpy as np

        from mlops_provider.ml.label_check import metric_interval
        from mlops_provider.ml.scoring import binary_labels, classification_metrics, schema_predictor

        model = self._model(version)
        proba = np.asarray(schema_predictor(model)(frame), dtype=float)
        y = binary_labels(frame[self.label_column], self.positive_class)
        metrics = classification_metrics(y, proba, self.threshold)
        if self.metric not in metrics:
            raise AirflowFailException(
                f"{self.metric} is undefined on these {len(y)} labels (a single class): nothing to score; widen "
                "monitoring.label_window_days so the window holds both classes"
            )
        interval = metric_interval(self.metric, y, proba, self.threshold, self.interval_level)
        interval.pop("value", None)
        return float(metrics[self.metric]), interval

    def _monitoring_run(self, context: Context, day: dt.date) -> str:
        """The MLflow run of this task try in the monitoring experiment (one per try, found again by its key)."""
        ti = context["ti"]
        return self.mlflow_hook.run_for_key(
            self.experiment_name, RUN_KEY_TAG, f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/try{ti.try_number}",
            f"performance-{self.model_name}-{day}",
        )  # fmt: skip

    def _log_to_mlflow(self, context: Context, value: float, labelled_day: dt.date, interval: dict[str, Any]) -> str:
        hook = self.mlflow_hook
        run_id = self._monitoring_run(context, labelled_day)
        hook.log_dated_metric(run_id, f"labelled_{self.metric}", value, labelled_day)
        hook.log_dated_metric(run_id, f"labelled_{self.metric}_lower", interval["lower"], labelled_day)
        hook.log_dated_metric(run_id, f"labelled_{self.metric}_upper", interval["upper"], labelled_day)
        hook.log_dated_metric(run_id, "labelled_rows", float(interval["rows"]), labelled_day)
        hook.set_run_tags(run_id, {"labelled_day": labelled_day.isoformat()})
        hook.terminate_run(run_id, "FINISHED")
        return run_id
