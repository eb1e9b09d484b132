"""Performance of the champion on late-arriving labels: the second retraining signal next to data drift."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops_provider.bases import DvcHookMixin, MlflowHookMixin
from mlops_provider.evidence import attempt_key, first_attempt, write_record
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.layout import (
    CHAMPION_ALIAS,
    DATA_PATH_TAG,
    DATA_REV_TAG,
    RUN_KEY_TAG,
    partition_path,
    partition_tag,
)
from mlops_provider.lineage import Lineage, OpenLineageMixin, dvc_file, mlflow_model, mlflow_run, stored_file
from mlops_provider.links import MlflowRunLink, mlflow_run_url
from mlops_provider.storage import location, reports_root
from mlops_provider.templates import INTERVAL_DATE

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from mlops_provider.split import Split

HIGHER_IS_BETTER = ("roc_auc", "f1", "accuracy", "precision", "recall")


def performance_folder(model_name: str, partition: str) -> ObjectStoragePath:
    """The folder of a model's performance records of a day: one ``<attempt>.json`` per check, the oldest first
    (under the storage root, :mod:`mlops_provider.storage`)."""
    return reports_root() / "performance" / model_name / partition


class ModelPerformanceOperator(OpenLineageMixin, MlflowHookMixin, DvcHookMixin, BaseOperator):
    """Score the current champion on the newest day whose labels have arrived and compare with a floor.

    Labels may arrive late: on the run for day D, the labelled day is ``D - label_delay_days``. Its validated
    partition is read at its tag from the data registry; rows without a label are dropped, and so is every row the
    champion may have trained on: only the **holdout rows of the champion's own split** (version tags ``split.*``,
    recorded by ``TrainModelOperator``) are scored, so a model is never judged on its training rows (a version
    without split tags fails: it cannot be scored out of sample). When the day is not versioned (quarantined, not
    ingested) or has fewer than ``min_labelled_rows`` labelled holdout rows, the summary says
    ``status = "no_labels"`` and nothing is decided. Otherwise ``below_floor`` tells whether ``metric`` fell below
    ``floor``. The summary is written to ``<reports root>/performance/<model>/<D>/<attempt>.json`` (the drift
    sensor waits for it) and the metric is logged to MLflow experiment ``monitoring`` at the labelled day.

    :param dataset: dataset name (templated).
    :param model_name: registered model whose champion is scored (templated).
    :param floor: the lowest acceptable value of ``metric``.
    :param metric: one of ``roc_auc``, ``f1``, ``accuracy``, ``precision``, ``recall``.
    :param partition: day of the monitoring run (templated; default: the date of ``data_interval_start``).
    :param label_delay_days: days until the labels of a day are in the source.
    :param label_column: the label column (no default: it is the model's).
    :param positive_class: the label value of the positive class.
    :param threshold: probability threshold for the thresholded metrics.
    :param min_labelled_rows: fewer labels than this decide nothing.
    :param estimate: also estimate ``metric`` on the run's own day, before its labels arrive, from the champion's
        predicted probabilities on the day's holdout rows (confidence-based, ``mlops_provider.estimation``; for
        ``roc_auc``, ``accuracy``, ``precision``, ``recall``, ``f1``): ``estimated`` in the summary, MLflow metric
        ``estimated_<metric>`` at the day; when the labelled day's realised value is scored, the estimate made for
        that day back then is recorded beside it (``estimate_then``, ``estimate_error`` when the same version made it).
    :param prediction_drift: also compare the champion's predictions on the day's holdout rows with its predictions
        on its own holdout (normed Wasserstein distance of the probabilities, predicted positive rates):
        ``prediction_drift`` in the summary, MLflow metrics ``prediction_drift`` and ``predicted_positive_rate``.
    :param prediction_drift_threshold: the distance at which the predictions count as drifted.
    :param trigger_on_prediction_drift: drifted predictions call for retraining (reason ``prediction_drift``).
    :param trigger_on_estimate: an estimate below ``floor`` calls for retraining too (reason ``performance``),
        without waiting for the labels (``estimated_below_floor``).

    XCom (return value): the summary ``{"status", "partition", "labelled_day", "metric", "value", "floor",
    "below_floor", "labelled_rows", "model_version", "summary_path", "mlflow_run_id"}``.
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
        estimate: bool = True,
        trigger_on_estimate: bool = False,
        prediction_drift: bool = True,
        prediction_drift_threshold: float = 0.1,
        trigger_on_prediction_drift: bool = False,
        champion_alias: str = CHAMPION_ALIAS,
        experiment_name: str = "monitoring",
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        dvc_conn_id: str = DvcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if metric not in HIGHER_IS_BETTER:
            raise ValueError(f"metric must be one of {', '.join(HIGHER_IS_BETTER)}, got {metric!r}")
        if label_delay_days < 0:
            raise ValueError(f"label_delay_days must be >= 0, got {label_delay_days}")
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
        self.champion_alias = champion_alias
        self.experiment_name = experiment_name
        self.mlflow_conn_id = mlflow_conn_id
        self.dvc_conn_id = dvc_conn_id
        self.estimate = estimate
        self.trigger_on_estimate = trigger_on_estimate
        self.prediction_drift = prediction_drift
        self.prediction_drift_threshold = prediction_drift_threshold
        self.trigger_on_prediction_drift = trigger_on_prediction_drift
        self._models: dict[str, Any] = {}
        self._splits: dict[str, Split] = {}

    def execute(self, context: Context) -> dict[str, Any]:
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
            "metric": self.metric,
            "floor": self.floor,
            "model_version": champion,
            "below_floor": False,
            "labelled_rows": 0,
            "recheck": first is not None,
        }
        frame = self._labelled_rows(labelled_day)
        if frame is not None:
            labelled = len(frame)
            frame = self._holdout_rows(champion, frame, f"partition of {labelled_day}")
            summary["holdout"] = self._split(champion).as_dict()
            summary["excluded_training_rows"] = labelled - len(frame)
        summary["labelled_rows"] = 0 if frame is None else len(frame)
        if frame is not None and len(frame) >= self.min_labelled_rows:
            value = self._score(champion, frame)
            summary.update(status="scored", value=value, below_floor=value < self.floor)
            summary["mlflow_run_id"] = self._log_to_mlflow(context, value, dt.date.fromisoformat(labelled_day))
            MlflowRunLink.persist(context, mlflow_run_url(summary["mlflow_run_id"]))
            log = self.log.warning if value < self.floor else self.log.info
            log("Champion v%s %s on %s labels of %s: %.4f (floor %s)", champion, self.metric, len(frame),
                labelled_day, value, self.floor)  # fmt: skip
        else:
            self.log.info("No decision: %s labelled rows for %s (need %s)", summary["labelled_rows"], labelled_day,
                          self.min_labelled_rows)  # fmt: skip
        if self.estimate or self.prediction_drift:
            self._estimate(context, champion, day, summary)
        self._compare_with_estimate(champion, summary)
        summary["summary_path"] = location(folder / f"{attempt}.json")
        write_record(folder, attempt, summary)
        hook = self.mlflow_hook
        return self.record_lineage(
            summary, registry=self.dvc_hook.registry, tracking_uri=hook.tracking_uri, registry_uri=hook.registry_uri
        )

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the champion and the labelled day's partition (when it had labels). Wrote: the summary record;
        the MLflow run of the score."""
        inputs = [mlflow_model(result["registry_uri"], self.model_name, str(result["model_version"]))]
        if result["labelled_rows"]:
            day = result["labelled_day"]
            inputs.append(
                dvc_file(result["registry"], partition_path(self.dataset, day), tag=partition_tag(self.dataset, day))
            )
        return Lineage(
            inputs=inputs,
            outputs=[stored_file(result["summary_path"])],
            run_facets=mlflow_run(result["tracking_uri"], result.get("mlflow_run_id") or ""),
        )

    def _model(self, version: str) -> Any:
        """The version's pyfunc model, loaded once per task."""
        if version not in self._models:
            self._models[version] = self.mlflow_hook.load_model(f"models:/{self.model_name}/{version}")
        return self._models[version]

    def _estimate(self, context: Context, version: str, day: dt.date, summary: dict[str, Any]) -> None:
        """The metric estimated from the champion's probabilities on the day's own holdout rows (no labels needed,
        CBPE), and, once the labelled day's realised value is known, the error of the estimate made back then."""
        import numpy as np

        from mlops_provider.estimation import ESTIMABLE, estimated_metric
        from mlops_provider.scoring import schema_predictor

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
            self._record_estimate(
                context, day, estimated_metric(proba, self.metric, self.threshold), len(rows), summary
            )
        else:
            summary["estimated"] = None
        if summary.get("mlflow_run_id"):
            self.mlflow_hook.terminate_run(summary["mlflow_run_id"], "FINISHED")

    def _record_estimate(
        self, context: Context, day: dt.date, value: float | None, rows: int, summary: dict[str, Any]
    ) -> None:
        summary["estimated"] = {
            "day": day.isoformat(),
            "metric": self.metric,
            "value": value,
            "rows": rows,
            "method": "confidence-based (expected confusion matrix / ROC from probabilities)",
        }
        summary["estimated_below_floor"] = value is not None and value < self.floor
        summary["trigger_on_estimate"] = self.trigger_on_estimate
        if value is not None:
            run_id = summary.get("mlflow_run_id") or self._monitoring_run(context, day)
            summary["mlflow_run_id"] = run_id
            self.mlflow_hook.log_dated_metric(run_id, f"estimated_{self.metric}", value, day)

    def _prediction_drift(
        self, context: Context, version: str, day: dt.date, proba: Any, summary: dict[str, Any]
    ) -> None:
        """The day's predictions vs the champion's predictions on its own holdout (its training set's held-out keys)."""
        import numpy as np

        from mlops_provider.drift_signals import prediction_drift
        from mlops_provider.scoring import schema_predictor

        tags = self.mlflow_hook.model_version_tags(self.model_name, version)
        if not tags.get(DATA_PATH_TAG) or not tags.get(DATA_REV_TAG):
            raise AirflowFailException(f"{self.model_name} v{version} has no {DATA_PATH_TAG}/{DATA_REV_TAG} tags")
        trained_on = self.dvc_hook.read_frame(tags[DATA_PATH_TAG], tags[DATA_REV_TAG])
        holdout = self._holdout_rows(version, trained_on, "the champion's training set")
        if self.label_column in holdout.columns:
            holdout = holdout.drop(columns=[self.label_column])
        reference = np.asarray(schema_predictor(self._model(version))(holdout), dtype=float)
        result = prediction_drift(reference, proba, self.prediction_drift_threshold, self.threshold)
        summary["prediction_drift"] = {**result, "day": day.isoformat()}
        summary["trigger_on_prediction_drift"] = self.trigger_on_prediction_drift
        run_id = summary.get("mlflow_run_id") or self._monitoring_run(context, day)
        summary["mlflow_run_id"] = run_id
        self.mlflow_hook.log_dated_metric(run_id, "prediction_drift", result["score"], day)
        self.mlflow_hook.log_dated_metric(run_id, "predicted_positive_rate", result["positive_rate_current"], day)
        (self.log.warning if result["drifted"] else self.log.info)(
            "Prediction drift of v%s on %s: %.3f (line %s); positive rate %.3f vs %.3f on its holdout",
            version, day, result["score"], self.prediction_drift_threshold, result["positive_rate_current"],
            result["positive_rate_reference"],
        )  # fmt: skip

    def _compare_with_estimate(self, version: str, summary: dict[str, Any]) -> None:
        """Beside a realised value: the estimate the labelled day's own first check made (before its labels)."""
        then = first_attempt(performance_folder(self.model_name, summary["labelled_day"])) or {}
        estimated_then = then.get("estimated") or {}
        if summary.get("status") == "scored" and estimated_then.get("value") is not None:
            summary["estimate_then"] = {**estimated_then, "model_version": then.get("model_version")}
            if str(then.get("model_version")) == str(version):
                summary["estimate_error"] = summary["value"] - estimated_then["value"]

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
        from mlops_provider.split import split_from_tags

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

    def _score(self, version: str, frame: Any) -> float:
        import numpy as np

        from mlops_provider.scoring import binary_labels, classification_metrics, schema_predictor

        model = self._model(version)
        proba = np.asarray(schema_predictor(model)(frame), dtype=float)
        y = binary_labels(frame[self.label_column], self.positive_class)
        metrics = classification_metrics(y, proba, self.threshold)
        if self.metric not in metrics:
            raise AirflowFailException(f"{self.metric} is undefined on these labels (a single class)")
        return float(metrics[self.metric])

    def _monitoring_run(self, context: Context, day: dt.date) -> str:
        """The MLflow run of this task try in the monitoring experiment (one per try, found again by its key)."""
        ti = context["ti"]
        return self.mlflow_hook.run_for_key(
            self.experiment_name, RUN_KEY_TAG, f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/try{ti.try_number}",
            f"performance-{self.model_name}-{day}",
        )  # fmt: skip

    def _log_to_mlflow(self, context: Context, value: float, labelled_day: dt.date) -> str:
        hook = self.mlflow_hook
        run_id = self._monitoring_run(context, labelled_day)
        hook.log_dated_metric(run_id, f"labelled_{self.metric}", value, labelled_day)
        hook.set_run_tags(run_id, {"labelled_day": labelled_day.isoformat()})
        hook.terminate_run(run_id, "FINISHED")
        return run_id
