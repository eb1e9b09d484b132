"""The model spec's sections' behaviour, shared by the schema (:mod:`mlops_provider.loop.spec_schema`, the
pydantic models) and the validated-spec cache's read-only view (:class:`mlops_provider.loop.spec.SpecView`): each
section's ``*_arguments()`` methods and derived values (``_<Section>Methods``), the spec's constants and the label and
feature-name checks. Read a spec through :mod:`mlops_provider.loop.spec`, which re-exports the public names here.

Imports nothing beyond the standard library (a DAG file's parse loads it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

NAME = r"^[a-z][a-z0-9_]{1,62}$"
#: Characters XGBoost (3.2, ``DMatrix.feature_names``) refuses in a feature name: it raises at training time.
XGBOOST_FORBIDDEN = ("[", "]", "<")
DRIFT_METHODS = ("wasserstein", "jensenshannon", "psi", "kl_div", "ks", "chisquare", "z", "hellinger")


class _Methods:
    """The base of a section's behaviour: the methods and derived values that both the pydantic model
    (:mod:`mlops_provider.loop.spec_schema`) and the cached view (:class:`SpecView`) have; they read the section's
    fields as attributes."""

    if TYPE_CHECKING:  # the fields are the schema's (a model's or a view's attributes)

        def __getattr__(self, name: str) -> Any: ...

        def __iter__(self) -> Generator[tuple[str, Any], None, None]: ...


class _DatasetSpecMethods(_Methods):
    """DatasetSpec's behaviour (the pydantic model's and the cached view's)."""

    def extract_arguments(self) -> dict[str, Any]:
        """``SqlToParquetOperator``'s arguments."""
        return {
            "conn_id": self.connection,
            "table": self.table,
            "timestamp_column": self.timestamp_column,
            "parse_dates": self.parse_dates or [self.timestamp_column],
            "dataset": self.name,
            "chunk_rows": self.chunk_rows,
            "on_empty": self.on_empty,
        }

    def validate_arguments(self) -> dict[str, Any]:
        """``GreatExpectationsValidateOperator``'s arguments from the dataset (the suite: ``ModelSpec``)."""
        return {"dataset": self.name, "timestamp_column": self.timestamp_column, "chunk_rows": self.chunk_rows}


class _LabelSpecMethods(_Methods):
    """LabelSpec's behaviour (the pydantic model's and the cached view's)."""

    def score_arguments(self) -> dict[str, Any]:
        """The label as the operators that score a model take it (``EvaluateModelOperator``,
        ``ModelPerformanceOperator``)."""
        return {"label_column": self.column, "positive_class": self.positive_class}

    def performance_arguments(self) -> dict[str, Any]:
        """``ModelPerformanceOperator``'s arguments from the label."""
        return {**self.score_arguments(), "label_delay_days": self.delay_days}


class _FeaturesSpecMethods(_Methods):
    """FeaturesSpec's behaviour (the pydantic model's and the cached view's)."""

    @property
    def columns(self) -> list[str]:
        return [*self.numerical, *self.categorical]

    def drift_arguments(self) -> dict[str, Any]:
        """What ``DriftReportOperator`` takes from the features: the columns not excluded from the drift check, by
        type, and their per-column methods and thresholds."""
        kept = [c for c in self.columns if not (c in self.drift and self.drift[c].exclude)]
        settings = {c: self.drift[c] for c in kept if c in self.drift}
        return {
            "numerical_columns": [c for c in self.numerical if c in kept],
            "categorical_columns": [c for c in self.categorical if c in kept],
            "column_methods": {c: s.method for c, s in settings.items() if s.method},
            "column_thresholds": {c: s.threshold for c, s in settings.items() if s.threshold},
        }


def feature_name_problem(name: str, what: str = "feature") -> str | None:
    """Why XGBoost would refuse ``name`` as a feature name (``None``: it takes it); ``what`` names the thing."""
    found = [char for char in XGBOOST_FORBIDDEN if char in name]
    if not found:
        return None
    return (
        f"{what} {name!r} contains {found[0]!r}: XGBoost refuses feature names containing "
        f"{', '.join(XGBOOST_FORBIDDEN)} (training would fail); read the table through a view that renames the column"
    )


def label_matches(value: Any, positive_class: Any) -> bool:
    """Whether a label ``value`` is the positive class, compared as training and scoring compare them
    (:func:`mlops_provider.ml.scoring.binary_labels`: numbers as numbers, anything else as text)."""
    if isinstance(positive_class, (bool, int, float)):
        try:
            return float(value) == float(positive_class)
        except (TypeError, ValueError):
            return False
    return str(value) == str(positive_class)


def suite_label_values(suite: Any, column: str) -> list[Any] | None:
    """The value set a GX suite (JSON data) allows for ``column`` (``None``: the suite does not say)."""
    for expectation in suite.get("expectations", []) if isinstance(suite, dict) else []:
        kwargs = expectation.get("kwargs") or {}
        if expectation.get("type") == "expect_column_values_to_be_in_set" and kwargs.get("column") == column:
            return list(kwargs.get("value_set") or [])
    return None


def label_problems(label: Any, suite: Any) -> list[str]:  # label: a LabelSpec (or its view)
    """What in the suite's label value set makes training impossible: one class only, or no value that is
    ``positive_class`` (every row would be negative). Lines are ``key: problem``."""
    values = suite_label_values(suite, label.column)
    if values is None:
        return []
    if len(values) < 2:
        return [
            f"validation: the suite allows one value for label column {label.column!r} ({values}): every training set "
            "would hold one class and a day with the other class would fail validation; list both classes in its "
            "expect_column_values_to_be_in_set"
        ]
    if not any(label_matches(v, label.positive_class) for v in values):
        return [
            f"label.positive_class: {label.positive_class!r} is not a value the suite allows for label column "
            f"{label.column!r} ({values}); no row would be positive: set positive_class to one of them"
        ]
    return []


class _TuningSpecMethods(_Methods):
    """TuningSpec's behaviour (the pydantic model's and the cached view's)."""

    def plan(self) -> dict[str, Any] | None:
        """What ``TrainModelOperator(tuning=...)`` takes: the settings as a plain mapping; None when disabled."""
        if not self.enabled:
            return None
        # Field by field, not model_dump(): a spec from the cache has no serializer built (and needs none).
        data = {key: _plain(value) for key, value in self}
        data["search_space"] = {
            name: {k: _plain(v) for k, v in search if v is not None and not (k == "log" and v is False)}
            for name, search in self.search_space.items()
        }
        return data


def _plain(value: Any) -> Any:
    """A copy of a section's value as plain data (lists and dicts copied, as ``model_dump()`` copies them)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _TrainingSpecMethods(_Methods):
    """TrainingSpec's behaviour (the pydantic model's and the cached view's)."""

    def assembly_arguments(self) -> dict[str, Any]:
        """``TrainingSetAssemblyOperator``'s arguments."""
        return {"window_days": self.window_days, "min_partitions": self.min_days}


class _GateSpecMethods(_Methods):
    """GateSpec's behaviour (the pydantic model's and the cached view's)."""

    def rules(self, segment_column: str | None) -> dict[str, Any]:
        """The rules as :func:`mlops_provider.ml.scoring.decide` reads them."""
        return {
            "primary_metric": self.primary_metric,
            "min_improvement": self.min_improvement,
            "floors": dict(self.floors),
            "lower_is_better": list(self.lower_is_better),
            "segment_column": segment_column,
            "segment_metric": self.segment_metric or self.primary_metric,
            "max_segment_regression": self.max_segment_regression,
            "require_behaviour_tests": self.behaviour_tests is not None,
            "threshold": self.threshold,
        }

    def shadow_arguments(self) -> dict[str, Any]:
        """``ShadowCheckOperator``'s arguments."""
        return {"p95_ms": self.shadow_p95_ms}

    def approval_arguments(self) -> dict[str, Any]:
        """``PromotionApprovalOperator``'s arguments."""
        return {"response_timeout": dt.timedelta(hours=self.approval_timeout_hours)}


class _EndpointSpecMethods(_Methods):
    """EndpointSpec's behaviour (the pydantic model's and the cached view's)."""

    def ports(self) -> dict[str, Any]:
        """The endpoint's ports, shifted by ``$MLOPS_ENDPOINT_PORT_OFFSET`` (the tests and a demo on other ports)."""
        import os

        offset = int(os.environ.get(ENDPOINT_PORT_OFFSET_ENV) or 0)
        return {"port": self.port + offset, "admin_port": None if self.admin_port is None else self.admin_port + offset}

    def routing(self) -> dict[str, Any]:
        """The serving tasks' Celery queue, ``$MLOPS_SERVING_QUEUE`` ({} unset: the default queue). The endpoint's
        processes, its state and its Prometheus target files are local to the machine that started them, so on
        several workers every task that operates the endpoint must run on the one serving worker."""
        import os

        queue = os.environ.get(SERVING_QUEUE_ENV)
        return {"queue": queue} if queue else {}


#: Added to every spec's ``serving.endpoint`` ports (the tests and a second demo on one machine set it).
ENDPOINT_PORT_OFFSET_ENV = "MLOPS_ENDPOINT_PORT_OFFSET"
#: The Celery queue of the tasks that operate an endpoint (deploy, canary_rollout, serve_champion): the queue only the
#: serving worker takes (distributed mode; the embedded LocalExecutor ignores queues).
SERVING_QUEUE_ENV = "MLOPS_SERVING_QUEUE"


class _CaptureSpecMethods(_Methods):
    """CaptureSpec's behaviour (the pydantic model's and the cached view's)."""

    def capture_arguments(self, key_column: str | None) -> dict[str, Any]:
        """The backends' capture settings (:class:`mlops_provider.ml.capture.CaptureSettings` as a dict)."""
        return {"fraction": self.fraction, "flush_rows": self.flush_rows, "flush_seconds": self.flush_seconds,
                "buffer_rows": self.buffer_rows, "retention_days": self.retention_days,
                "key_column": key_column}  # fmt: skip


class _ServingSpecMethods(_Methods):
    """ServingSpec's behaviour (the pydantic model's and the cached view's)."""

    def deploy_arguments(self) -> dict[str, Any]:
        """``DeployModelVersionOperator``'s arguments (and ``ServeVersionOperator``'s): the endpoint's ports and the
        serving queue."""
        assert self.endpoint is not None
        return {**self.endpoint.ports(), **self.endpoint.routing()}

    def rollout_arguments(self) -> dict[str, Any]:
        """``CanaryRolloutOperator``'s arguments: the ports, the canary's steps and thresholds, versions kept, the
        serving queue."""
        assert self.endpoint is not None
        canary = self.endpoint.canary
        return {
            **self.endpoint.ports(),
            **self.endpoint.routing(),
            "steps": list(canary.steps),
            "bake_seconds": canary.bake_seconds,
            "poll_seconds": canary.poll_seconds,
            "thresholds": dict(canary.thresholds),  # flat floats and ints (as model_dump() gives them)
            "keep_versions": self.endpoint.keep_versions,
        }


class _MonitoringSpecMethods(_Methods):
    """MonitoringSpec's behaviour (the pydantic model's and the cached view's)."""

    def drift_arguments(self) -> dict[str, Any]:
        """``DriftReportOperator``'s arguments from the monitoring section (the columns: ``FeaturesSpec``)."""
        return {
            "drift_share_threshold": self.drift_share,
            "reference": self.reference,
            "reference_days": self.reference_days,
            "season_days": self.season_days,
            "signal": self.drift_signal,
            "weighted_drift_threshold": self.weighted_drift_threshold,
            "learned_drift_threshold": self.learned_drift_threshold,
            "learned_drift_k": self.learned_drift_k,
            "drift_calibration_days": self.drift_calibration_days,
            "max_rows": self.sample_rows,
            "min_served_rows": self.min_served_rows,
            "prediction_drift_threshold": self.prediction_drift_threshold,
        }

    def performance_arguments(self) -> dict[str, Any]:
        """``ModelPerformanceOperator``'s arguments from the monitoring section (the floor: ``ModelSpec``)."""
        return {
            "metric": self.metric,
            "estimate": self.estimate,
            "trigger_on_estimate": self.trigger_on_estimate,
            "estimate_calibration": self.estimate_calibration,
            "estimate_alarm": self.estimate_alarm,
            "prediction_drift": self.prediction_drift,
            "prediction_drift_threshold": self.prediction_drift_threshold,
            "trigger_on_prediction_drift": self.trigger_on_prediction_drift,
            "label_window_days": self.label_window_days,
            "min_labelled_rows": self.min_labelled_rows,
            "performance_alarm": self.performance_alarm,
            "consecutive_days": self.consecutive_days,
        }


class _RetrainingSpecMethods(_Methods):
    """RetrainingSpec's behaviour (the pydantic model's and the cached view's)."""

    def rails_arguments(self) -> dict[str, Any]:
        """``ScheduledRetrainingRailsOperator``'s arguments: the rails a scheduled training passes."""
        return {
            "cooldown_days": self.cooldown_days,
            "max_per_week": self.max_per_week,
            "max_per_real_week": self.max_per_real_week,
        }

    def trigger_arguments(self) -> dict[str, Any]:
        """``TriggerRetrainingOperator``'s arguments: the rails, and the backfill's own budget."""
        return {
            **self.rails_arguments(),
            "max_backfill_per_real_week": self.max_backfill_per_real_week,
            "backfill_lag_days": self.backfill_lag_days,
        }

    def review_arguments(self) -> dict[str, Any]:
        """``RetrainingApprovalOperator``'s arguments."""
        return {"response_timeout": dt.timedelta(hours=self.review_timeout_hours)}


NOTIFICATION_EVENTS = ("quarantine", "drift", "retraining", "gate_rejection", "shadow_check_failure", "promotion",
                       "rollback", "canary_rollback")  # fmt: skip


class _NotificationsSpecMethods(_Methods):
    """NotificationsSpec's behaviour (the pydantic model's and the cached view's)."""

    def wants(self, event: str) -> bool:
        """Whether ``event`` is mailed."""
        return bool(self.email) and event in self.events


class _RetentionSpecMethods(_Methods):
    """RetentionSpec's behaviour (the pydantic model's and the cached view's)."""

    def retention_arguments(self) -> dict[str, Any]:
        """``RetentionOperator``'s arguments."""
        return {"days": self.days}


class _ModelSpecMethods(_Methods):
    """ModelSpec's behaviour (the pydantic model's and the cached view's)."""

    @property
    def monitoring_current(self) -> str:
        """The drift check's current data: ``monitoring.current``, else ``served`` when the model has a live
        endpoint (``serving.endpoint``), else ``ingested``."""
        if self.monitoring.current is not None:
            return self.monitoring.current
        return "served" if self.serving.endpoint is not None else "ingested"

    def capture_arguments(self) -> dict[str, Any]:
        """``DeployModelVersionOperator(capture=...)``: ``serving.capture`` with the dataset's key column as the
        rows' request id."""
        return self.serving.capture.capture_arguments(self.dataset.key_column)

    @property
    def split_key(self) -> str:
        return self.split.key or self.dataset.key_column

    @property
    def holdout(self) -> dict[str, Any]:
        """The split as the operators take it (``TrainModelOperator(holdout=...)``)."""
        if self.split.method == "out_of_time":
            return {
                "method": "out_of_time",
                "holdout_days": self.split.holdout_days,
                "time_column": self.split.time_column or self.dataset.timestamp_column,
            }
        return {"key": self.split_key, "fraction": self.split.fraction, "seed": self.split.seed}

    @property
    def performance_floor(self) -> float:
        floor = self.monitoring.floor
        return float(self.gate.floors[self.monitoring.metric] if floor is None else floor)

    @property
    def experiment(self) -> str:
        return self.training.experiment or self.name

    def entrypoint_schema(self) -> dict[str, Any]:
        """What the training entrypoint receives as ``--schema``."""
        return {
            "label": self.label.column,
            "positive_class": self.label.positive_class,
            "numerical": list(self.features.numerical),
            "categorical": list(self.features.categorical),
            "key": self.split_key,
            "segments": list(self.segments),
        }

    def dag_id(self, stage: str) -> str:
        """DAG ids are prefixed by the model: ``<model>__<stage>``."""
        return f"{self.name}__{stage}"

    def validate_arguments(self) -> dict[str, Any]:
        """``GreatExpectationsValidateOperator``'s arguments: the suite and the dataset's columns."""
        return {"suite_path": str(self.resolve(self.validation)), **self.dataset.validate_arguments()}

    def train_arguments(self) -> dict[str, Any]:
        """``TrainModelOperator``'s arguments."""
        return {
            "entrypoint": str(self.resolve(self.training.entrypoint)),
            "model_schema": self.entrypoint_schema(),
            "holdout": self.holdout,
            "hyperparameter_spec": str(self.resolve(self.training.hyperparameters)),
            "experiment_name": self.experiment,
            "runner": self.training.runner,
            "image": self.training.image,
            "execution_timeout": dt.timedelta(minutes=self.training.timeout_minutes),
            "tuning": self.training.tuning.plan(),
        }

    def evaluate_arguments(self) -> dict[str, Any]:
        """``EvaluateModelOperator``'s arguments: the gate's rules, the behaviour tests, the label."""
        behaviour = self.gate.behaviour_tests
        return {
            "gate_rules": self.gate.rules(self.segments[0] if self.segments else None),
            "behaviour_tests": str(self.resolve(behaviour)) if behaviour else None,
            **self.label.score_arguments(),
        }

    def package_arguments(self) -> dict[str, Any]:
        """``PackageModelOperator``'s arguments."""
        return {
            "serving_dir": str(self.resolve(self.serving.directory)),
            "requirements": str(self.resolve(self.serving.requirements)),
        }

    def performance_arguments(self) -> dict[str, Any]:
        """``ModelPerformanceOperator``'s arguments: the monitoring section's, the label's, the floor and the
        gate's probability threshold."""
        return {
            **self.monitoring.performance_arguments(),
            **self.label.performance_arguments(),
            "floor": self.performance_floor,
            "threshold": self.gate.threshold,
            "served_key_column": self.dataset.key_column if self.monitoring_current == "served" else None,
        }

    def files(self) -> dict[str, Path]:
        """The files the spec names, by key."""
        files = {
            "validation": self.validation,
            "training.entrypoint": self.training.entrypoint,
            "training.hyperparameters": self.training.hyperparameters,
        }
        files["serving.requirements"] = self.serving.requirements
        files["serving.directory/Dockerfile"] = self.serving.directory / "Dockerfile"
        if self.gate.behaviour_tests is not None:
            files["gate.behaviour_tests"] = self.gate.behaviour_tests
        return files

    def resolve(self, relative: Path) -> Path:
        """A path of the spec, relative to the spec file's folder."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return relative if relative.is_absolute() else (base / relative).resolve()
