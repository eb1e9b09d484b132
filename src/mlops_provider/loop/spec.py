"""The model spec: one YAML file per model holding everything model-specific, validated against a schema.

The DAG factory (:func:`mlops_provider.loop.factory.build_dags`) turns a spec into the five DAGs of a model's loop;
``mlops spec check FILE`` validates one. Every key, its default and what is allowed: ``docs/model-spec.md``.
Paths in a spec (suite, entrypoint, hyperparameters, behaviour tests) are relative to the spec file's folder.

**Spec -> operator arguments, one rule.** A spec value reaches an operator only through a ``<task>_arguments()``
method that returns the operator's keyword arguments (named as the operator's parameters): on the section that
holds the values (``spec.monitoring.drift_arguments()``), or on :class:`ModelSpec` when the task reads several
sections or a path the spec resolves (``spec.train_arguments()``). The factory spreads them and adds only the
loop's wiring (task and DAG ids, assets, model and dataset names, templates, upstream results, pools, callbacks).
A new option touches its section (field + arguments), its row in ``docs/model-spec.md`` and its operator.

Imports pydantic and PyYAML only (both come with Airflow), so DAG files may load specs at parse time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_provider.exceptions import SpecError
from mlops_provider.layout import DEFAULT_CHUNK_ROWS

NAME = r"^[a-z][a-z0-9_]{1,62}$"
#: Characters XGBoost (3.2, ``DMatrix.feature_names``) refuses in a feature name: it raises at training time.
XGBOOST_FORBIDDEN = ("[", "]", "<")
DRIFT_METHODS = ("wasserstein", "jensenshannon", "psi", "kl_div", "ks", "chisquare", "z", "hellinger")


class _Section(BaseModel):
    # defer_build: a section's validator (its pydantic-core schema) is built on its first validation, not when the
    # class is defined: a parse whose specs all come from the validated-spec cache (:func:`load_spec`) never builds
    # one (issue 31). Defaults of a section type are factories for the same reason (an instance built at class
    # definition would be validated there).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class DatasetSpec(_Section):
    """Where the model's data comes from and what identifies a row."""

    name: str = Field(pattern=NAME, description="dataset name: data registry paths and tags")
    connection: str = Field(default="mlops_source", description="Airflow connection of the source database")
    table: str = Field(description="source table; each run selects the rows of its data interval")
    timestamp_column: str = Field(description="event time column; each run extracts its own data interval")
    key_column: str = Field(description="entity key: the holdout split hashes it")
    parse_dates: list[str] = Field(default_factory=list, description="columns to parse as datetimes")
    chunk_rows: int = Field(
        default=DEFAULT_CHUNK_ROWS, ge=1, description="rows extracted and validated at a time (sets peak memory)"
    )
    on_empty: Literal["fail", "skip"] = Field(
        default="fail", description="a day without rows: fail the extract, or skip the day (nothing is versioned)"
    )

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


class LabelSpec(_Section):
    """The label and when it becomes known."""

    column: str
    positive_class: int | str | bool = Field(default=1, description="the label value of the positive class")
    delay_days: int = Field(default=0, ge=0, le=365, description="days until a day's labels are known (late labels)")

    def score_arguments(self) -> dict[str, Any]:
        """The label as the operators that score a model take it (``EvaluateModelOperator``,
        ``ModelPerformanceOperator``)."""
        return {"label_column": self.column, "positive_class": self.positive_class}

    def performance_arguments(self) -> dict[str, Any]:
        """``ModelPerformanceOperator``'s arguments from the label."""
        return {**self.score_arguments(), "label_delay_days": self.delay_days}


class ColumnDriftSpec(_Section):
    """Per-column drift settings (default: Evidently's choice for the column type and data size)."""

    method: Literal[DRIFT_METHODS] | None = None  # type: ignore[valid-type]
    threshold: float | None = Field(default=None, gt=0)
    exclude: bool = False


class FeaturesSpec(_Section):
    """Model inputs by type; optional per-column drift settings."""

    numerical: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    drift: dict[str, ColumnDriftSpec] = Field(default_factory=dict)

    @field_validator("numerical", "categorical")
    @classmethod
    def _xgboost_names(cls, value: list[str]) -> list[str]:
        for name in value:
            problem = feature_name_problem(name)
            if problem:
                raise ValueError(problem)
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"{twice} listed twice (XGBoost refuses duplicate feature names)")
        return value

    @model_validator(mode="after")
    def _columns(self) -> FeaturesSpec:
        if not self.numerical and not self.categorical:
            raise ValueError("name at least one numerical or categorical feature")
        both = sorted(set(self.numerical) & set(self.categorical))
        if both:
            raise ValueError(f"{both} are listed as both numerical and categorical")
        unknown = sorted(set(self.drift) - set(self.numerical) - set(self.categorical))
        if unknown:
            raise ValueError(f"drift settings for {unknown}, which are not features")
        return self

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


def label_problems(label: LabelSpec, suite: Any) -> list[str]:
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


class SplitSpec(_Section):
    """The holdout split the provider makes: rows the model never trains on, on which the gate scores it.

    ``key_hash``: rows whose key hashes below ``fraction``. ``out_of_time``: the last ``holdout_days`` days of the
    training set (recommended for time-ordered data: a key-hash holdout shares its days with the training rows, so
    day-level effects leak and flatter the model)."""

    key: str | None = Field(default=None, description="column hashed for the split (default: dataset.key_column)")
    fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = Field(default=0, ge=0)
    method: Literal["key_hash", "out_of_time"] = Field(
        default="key_hash", description="key_hash: hash of split.key; out_of_time: the last split.holdout_days days"
    )
    holdout_days: int = Field(
        default=1, ge=1, description="out_of_time: newest days of the training set held out (< training.window_days)"
    )
    time_column: str | None = Field(
        default=None, description="out_of_time: column whose UTC date is a row's day (default: the timestamp column)"
    )


class SearchRangeSpec(_Section):
    """One hyperparameter's search range: ``low``..``high`` of the hyperparameter file's type (``log`` scale,
    ``step``), or ``choices``; within what the hyperparameter file allows (checked with the spec)."""

    low: int | float | None = Field(
        default=None, description="lowest value searched (int hyperparameters: a whole number)"
    )
    high: int | float | None = Field(default=None, description="highest value searched; must be more than low")
    log: bool = Field(default=False, description="search on a log scale (low > 0)")
    step: int | float | None = Field(default=None, description="grid step of the range (not with log)")
    choices: list[Any] | None = Field(default=None, description="the values to choose from, instead of a range")


def _default_tuning_on() -> list[str]:
    from mlops_provider.ml.tuning import DEFAULT_ON

    return list(DEFAULT_ON)


class TuningSpec(_Section):
    """Hyperparameter search before training (Optuna; off by default): trials train on the training rows less a
    validation part and are scored on it (never on the gate's holdout); the best trial's hyperparameters train the
    model that is registered and gated as always."""

    enabled: bool = Field(default=False, description="tune before training")
    on: list[str] = Field(
        default_factory=_default_tuning_on,
        description="trigger reasons that tune (others: fixed hyperparameters)",
    )
    n_trials: int | None = Field(default=20, ge=1, description="finished trials (complete or pruned) per study")
    timeout_minutes: float | None = Field(default=None, gt=0, description="no trial starts after this much trial time")
    metric: str = Field(default="roc_auc", description="result metric of the entrypoint the study optimises")
    direction: Literal["maximize", "minimize"] = "maximize"
    pruning: Literal["none", "median"] = Field(
        default="none", description="median: stop a trial whose reported values fall below the median of earlier ones"
    )
    seed: int = Field(default=0, ge=0, description="seed of the sampler (TPE)")
    validation_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="share of the training rows' keys the trials are scored on (key_hash)"
    )
    search_space: dict[str, SearchRangeSpec] = Field(
        default_factory=dict, description="hyperparameter name -> its range or choices"
    )

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


class TrainingSpec(_Section):
    """How a model is trained."""

    entrypoint: Path = Field(description="training script (the entrypoint contract: docs/training-entrypoint.md)")
    hyperparameters: Path = Field(description="JSON spec of the hyperparameters (names, types, ranges, defaults)")
    runner: Literal["local", "docker"] | None = Field(default=None, description="default: MLOPS_TRAINING_RUNNER")
    image: str = "mlops-training:latest"
    experiment: str | None = Field(default=None, description="MLflow experiment (default: the model name)")
    window_days: int = Field(default=7, ge=1, le=3660, description="calendar days of data in a training set")
    min_days: int = Field(default=1, ge=1, description="fewest versioned days a training set may have")
    timeout_minutes: int = Field(default=30, ge=1)
    tuning: TuningSpec = Field(default_factory=TuningSpec)

    @model_validator(mode="after")
    def _min_days(self) -> TrainingSpec:
        if self.min_days > self.window_days:
            raise ValueError(f"min_days {self.min_days} is more than window_days {self.window_days}")
        return self

    def assembly_arguments(self) -> dict[str, Any]:
        """``TrainingSetAssemblyOperator``'s arguments."""
        return {"window_days": self.window_days, "min_partitions": self.min_days}


class GateSpec(_Section):
    """The promotion gate: rules a challenger must pass against the champion."""

    primary_metric: str = "roc_auc"
    min_improvement: float = 0.0
    floors: dict[str, float] = Field(default_factory=dict)
    lower_is_better: list[str] = Field(default_factory=lambda: ["log_loss"])
    segment_metric: str | None = None
    max_segment_regression: float = Field(default=1.0, ge=0)
    threshold: float = Field(default=0.5, gt=0, lt=1, description="probability threshold of the positive class")
    behaviour_tests: Path | None = Field(default=None, description="JSON file of behaviour tests (none: no tests)")
    shadow_p95_ms: float = Field(default=500.0, gt=0)
    human_approval: bool = Field(default=False, description="a human approves each promotion (after the shadow check)")
    approval_timeout_hours: float = Field(default=24.0, gt=0, description="no answer by then: rejected")

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


class CanaryThresholdsSpec(_Section):
    """When a canary step fails (:class:`mlops_provider.ml.canary.Thresholds`; the same names and defaults)."""

    max_error_rate_increase: float = Field(default=0.01, ge=0, description="canary 5xx rate above the baseline's")
    max_latency_ratio: float = Field(default=1.5, ge=0, description="canary p95 / baseline p95")
    min_latency_increase_ms: float = Field(default=5.0, ge=0, description="a p95 increase below this never alarms")
    max_prediction_shift: float = Field(default=0.3, ge=0, le=1, description="Jensen-Shannon distance of predictions")
    min_requests: int = Field(
        default=200, ge=0, description="judged requests each side needs per step (0: a step without traffic passes)"
    )


class CanarySpec(_Section):
    """How a new champion is rolled out on the endpoint: traffic steps, each judged live over a baking period."""

    steps: list[int] = Field(default_factory=lambda: [5, 25, 100], description="traffic percentages, ending at 100")
    bake_seconds: float = Field(default=60.0, gt=0, description="baking period of each step")
    poll_seconds: float = Field(default=2.0, gt=0, description="how often a step's live metrics are read")
    thresholds: CanaryThresholdsSpec = Field(default_factory=CanaryThresholdsSpec)

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[int]) -> list[int]:
        from mlops_provider.ml.canary import rollout_steps

        return rollout_steps(value)


class EndpointSpec(_Section):
    """The model's live endpoint (Caddy in front of one backend per version, on 127.0.0.1)."""

    port: int = Field(default=8600, ge=1024, le=65000, description="the endpoint's port on 127.0.0.1")
    admin_port: int | None = Field(default=None, ge=1024, le=65535, description="Caddy's admin API (none: port + 1)")
    keep_versions: int = Field(default=2, ge=1, description="versions kept running after a rollout")
    canary: CanarySpec = Field(default_factory=CanarySpec)

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


class CaptureSpec(_Section):
    """``serving.capture``: what a live endpoint's backends capture of the traffic they answer (issue 33)."""

    fraction: float = Field(default=1.0, ge=0, le=1, description="share of answered rows captured (0: off)")
    flush_rows: int = Field(default=5_000, ge=1, description="rows waiting that start a flush to storage")
    flush_seconds: float = Field(default=10.0, gt=0, description="seconds the oldest waiting row waits at most")
    buffer_rows: int = Field(
        default=100_000, ge=1, description="rows held in memory at most; more are dropped and counted"
    )
    retention_days: int = Field(default=30, ge=0, description="captured days kept (0: forever)")

    @model_validator(mode="after")
    def _buffer(self) -> CaptureSpec:
        if self.buffer_rows < self.flush_rows:
            raise ValueError(f"buffer_rows ({self.buffer_rows}) must be >= flush_rows ({self.flush_rows})")
        return self

    def capture_arguments(self, key_column: str | None) -> dict[str, Any]:
        """The backends' capture settings (:class:`mlops_provider.ml.capture.CaptureSettings` as a dict)."""
        return {"fraction": self.fraction, "flush_rows": self.flush_rows, "flush_seconds": self.flush_seconds,
                "buffer_rows": self.buffer_rows, "retention_days": self.retention_days,
                "key_column": key_column}  # fmt: skip


class ServingSpec(_Section):
    """How a promoted model is packaged (the shadow check runs the package before promotion) and, with
    ``endpoint``, served live."""

    directory: Path = Field(description="folder with the serving Dockerfile (MLflow's scoring server)")
    requirements: Path = Field(description="pinned requirements of the model, copied into the image")
    endpoint: EndpointSpec | None = Field(default=None, description="serve the champion live (none: no endpoint)")
    capture: CaptureSpec = Field(default_factory=CaptureSpec)

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


class MonitoringSpec(_Section):
    """The daily drift and late-label performance check."""

    drift_share: float = Field(
        default=0.3, gt=0, le=1, description="share of drifted columns that calls for retraining"
    )
    reference: Literal["champion", "rolling", "seasonal"] = Field(
        default="champion", description="what a day is compared with (see DriftReportOperator)"
    )
    reference_days: int = Field(default=7, ge=1, description="days of a rolling reference")
    season_days: int = Field(default=365, ge=1, description="shift of a seasonal reference (365: a year, 7: a week)")
    drift_signal: Literal["share", "weighted", "learned"] = Field(
        default="learned",
        description="what decides drift: the learned signal (each column against how far calm days lie from the "
        "reference, excesses counted up to 1 and summed by importance; the share decides when nothing is learnable), "
        "the share of drifted columns, or the importance-weighted share",
    )
    weighted_drift_threshold: float = Field(
        default=0.3, gt=0, le=1, description="share of the champion's feature importance on drifted columns"
    )
    metric: str = Field(default="roc_auc", description="metric of the late-label check")
    floor: float | None = Field(default=None, description="default: the gate's floor for metric")
    sample_rows: int = Field(default=100_000, ge=100)
    estimate: bool = Field(default=True, description="estimate the metric from probabilities before labels arrive")
    trigger_on_estimate: bool = Field(default=False, description="an estimate below the floor calls for retraining")
    prediction_drift: bool = Field(default=True, description="compare each day's predictions with the holdout's")
    prediction_drift_threshold: float = Field(default=0.1, gt=0, description="normed Wasserstein distance line")
    trigger_on_prediction_drift: bool = Field(default=False, description="drifted predictions call for retraining")
    estimate_calibration: Literal["auto", "isotonic", "sigmoid", "none"] = Field(
        default="auto",
        description="calibration of the champion's scores on its holdout before estimating: auto keeps the one "
        "whose cross-fitted Brier score on the holdout beats the raw scores', else none (a fit the holdout is too "
        "small for falls back: isotonic -> sigmoid -> none)",
    )
    estimate_alarm: Literal["interval", "point"] = Field(
        default="interval",
        description="when the estimate is below the floor: its interval's upper bound (interval) or the estimate",
    )
    label_window_days: int = Field(
        default=3,
        ge=1,
        description="days of late labels the performance check pools (the labelled day and those before)",
    )
    min_labelled_rows: int = Field(
        default=200, ge=1, description="fewer labelled holdout rows in the window: too_few_labels, no decision"
    )
    performance_alarm: Literal["point", "interval"] = Field(
        default="interval", description="the floor is crossed when the value is under it, or its whole interval is"
    )
    consecutive_days: int = Field(default=1, ge=1, description="days in a row the floor must be crossed to alarm")
    learned_drift_threshold: float = Field(
        default=0.3,
        gt=0,
        description="line of the learned signal: importance-weighted excess over learned bounds, each counted up to 1",
    )
    learned_drift_k: float = Field(
        default=3.0, ge=0, description="a column's learned bound: mean + k * std of its calm days' scores"
    )
    drift_calibration_days: int = Field(
        default=21, ge=0, description="days before the reference window also scored as calm days (learned signal)"
    )
    current: Literal["served", "ingested"] | None = Field(
        default=None,
        description="the drift check's current data: the rows the endpoint captured that day (served) or the day's "
        "ingested partition; default: served when the model has a live endpoint, else ingested",
    )
    min_served_rows: int = Field(
        default=200, ge=1, description="fewer captured rows on a day: too_few_served_rows, not judged"
    )

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


class RetrainingSpec(_Section):
    """Rails of drift- and performance-triggered retraining, and an optional time schedule."""

    cooldown_days: int = Field(default=2, ge=0)
    max_per_week: int = Field(default=2, ge=1)
    schedule: str | None = Field(default=None, description="cron or preset (e.g. @weekly) of scheduled retraining")
    human_review: bool = Field(default=False, description="a human approves each alarm's retraining first")
    review_timeout_hours: float = Field(default=24.0, gt=0, description="no answer by then: no retraining")
    max_per_real_week: int | None = Field(
        default=None,
        ge=1,
        description="trainings real-time alarms and schedules start per 7 days of real time (none: max_per_week)",
    )
    max_backfill_per_real_week: int | None = Field(
        default=None,
        ge=0,
        description="trainings backfill alarms start per 7 days of real time, a pool of their "
        "own that real alarms never share (none: max_per_week; 0: a backfill never retrains)",
    )
    backfill_lag_days: float = Field(
        default=3.0,
        ge=0,
        description="a monitoring run whose data interval ended more than this many days ago is a "
        "backfill (as is every run of type backfill)",
    )

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


class NotificationsSpec(_Section):
    """Mail on-call about the loop's own decisions (no ``email``: no mail)."""

    email: list[str] = Field(default_factory=list, description="recipients")
    events: list[str] = Field(default_factory=lambda: list(NOTIFICATION_EVENTS), description="which events to mail")
    smtp_conn_id: str = "smtp_default"
    from_email: str | None = None

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(NOTIFICATION_EVENTS))
        if unknown:
            raise ValueError(f"unknown event(s) {unknown}; allowed: {', '.join(NOTIFICATION_EVENTS)}")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if "@" not in address]
        if bad:
            raise ValueError(f"not an email address: {bad}")
        return value

    def wants(self, event: str) -> bool:
        """Whether ``event`` is mailed."""
        return bool(self.email) and event in self.events


class RetentionSpec(_Section):
    """How long heavy stored artefacts (drift reports, validation Data Docs, quarantined data) are kept."""

    days: int | None = Field(
        default=None, ge=0, description="data days kept; none: $MLOPS_RETENTION_DAYS, else 90; 0: keep forever"
    )

    def retention_arguments(self) -> dict[str, Any]:
        """``RetentionOperator``'s arguments."""
        return {"days": self.days}


class ScheduleSpec(_Section):
    """When the nightly DAGs run."""

    ingest: str = "@daily"
    start_date: dt.date = Field(description="first data day (catchup runs every day from here)")
    end_date: dt.date | None = Field(default=None, description="last data day (no ingest or monitoring run after it)")
    catchup: bool = True
    max_active_ingest_runs: int = Field(default=4, ge=1)


class ModelSpec(_Section):
    """One model's loop. ``path`` is the file it was read from (set by :func:`load_spec`)."""

    name: str = Field(pattern=NAME, description="registered model name; prefix of the model's DAG ids")
    description: str = ""
    owner: str = "mlops"
    dataset: DatasetSpec
    label: LabelSpec
    features: FeaturesSpec
    segments: list[str] = Field(default_factory=list, description="columns the gate compares per value")
    split: SplitSpec = Field(default_factory=SplitSpec)
    validation: Path = Field(description="Great Expectations suite (JSON) of the dataset")
    training: TrainingSpec
    gate: GateSpec = Field(default_factory=GateSpec)
    serving: ServingSpec
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    retraining: RetrainingSpec = Field(default_factory=RetrainingSpec)
    notifications: NotificationsSpec = Field(default_factory=NotificationsSpec)
    retention: RetentionSpec = Field(default_factory=RetentionSpec)
    schedule: ScheduleSpec
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("segments")
    @classmethod
    def _segments(cls, value: list[str]) -> list[str]:
        if len(value) > 1:
            raise ValueError("one segment column is supported")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        columns = set(self.features.columns)
        if self.label.column in columns:
            raise ValueError(f"label {self.label.column!r} is also a feature")
        missing = [s for s in self.segments if s not in columns]
        if missing:
            raise ValueError(f"segments {missing} are not features (a segment must be a model input)")
        if self.monitoring.floor is None and self.monitoring.metric not in self.gate.floors:
            raise ValueError(f"monitoring.floor is not set and gate.floors has no {self.monitoring.metric!r}")
        if self.split.method == "out_of_time" and self.split.holdout_days >= self.training.window_days:
            raise ValueError(
                f"split.holdout_days {self.split.holdout_days} must be less than training.window_days "
                f"{self.training.window_days}: the out-of-time holdout is the last split.holdout_days days of the "
                "window, and the model trains on the days before"
            )
        return self

    # -- derived values --------------------------------------------------------------------------------------------

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

    # -- operator arguments of tasks that read several sections or a path of the spec ------------------------------

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


def _key(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("function-")) or "(top level)"


def _allowed(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where ``loc`` points (its parent section)."""
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return sorted(k for k in getattr(current, "model_fields", {}) if k != "path")


def _messages(path: Path, exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed(ModelSpec, loc))
            lines.append(f"{path}: {_key(loc)}: unknown key; allowed here: {allowed}")
        elif error["type"] == "missing":
            lines.append(f"{path}: {_key(loc)}: required key is missing")
        else:
            message = re.sub(r"^Value error, ", "", error["msg"])
            lines.append(f"{path}: {_key(loc)}: {message} (got {error.get('input')!r})")
    return lines


def parse_spec(data: Any, path: Path) -> ModelSpec:
    """Validate already-parsed YAML; raises :class:`SpecError` naming the file and every broken key."""
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the spec must be a mapping of keys (got {type(data).__name__})")
    try:
        spec = ModelSpec.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise SpecError("\n".join(_messages(path, exc))) from None
    missing = [
        f"{path}: {key}: file {spec.resolve(value)} does not exist"
        for key, value in spec.files().items()
        if not spec.resolve(value).is_file()
    ]
    if missing:
        raise SpecError("\n".join(missing))
    try:
        suite = json.loads(spec.resolve(spec.validation).read_text())
    except ValueError as exc:
        raise SpecError(f"{path}: validation: {spec.resolve(spec.validation)} is not valid JSON: {exc}") from None
    problems = label_problems(spec.label, suite) + tuning_problems(spec)
    if problems:
        raise SpecError("\n".join(f"{path}: {line}" for line in problems))
    return spec


def tuning_problems(spec: ModelSpec) -> list[str]:
    """What the tuner would refuse in ``training.tuning`` (when enabled): its own rules, and the search space against
    the hyperparameter file (an unknown hyperparameter, an empty range, a range or choice the file does not allow).
    Lines are ``key: problem``."""
    plan = spec.training.tuning.plan()
    if plan is None:
        return []
    from mlops_provider.ml.hyperparameters import load_hyperparameter_spec
    from mlops_provider.ml.tuning import Tuning

    try:
        tuning = Tuning.from_mapping(plan, "training.tuning")
        hyperparameters = load_hyperparameter_spec(spec.resolve(spec.training.hyperparameters))
    except ValueError as exc:
        return [str(exc)]
    return tuning.problems(hyperparameters, "training.tuning")


#: libyaml's safe loader when PyYAML was built with it (5x faster on a spec; the dag processor reads every spec on
#: every parse), else the pure-Python one. Both build only plain Python objects.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The suffix of a spec file. ``*.yml`` (and other cases of either) in a models folder is reported, not read.
SPEC_SUFFIX = ".yaml"


def load_spec(path: str | Path, *, cached: bool = False) -> ModelSpec:
    """Read and validate one spec file (a ``*.yaml``: the only files the DAG factory reads).

    ``cached``: use the validated-spec cache (:func:`cached_spec`; the DAG factory does, ``mlops spec check`` does
    not): a spec validated before, whose file, the files it names and the validating code are unchanged, is
    rebuilt from the cache without YAML or validation; any other is validated as always and, valid, cached."""
    path = Path(path).resolve()
    if path.suffix != SPEC_SUFFIX:
        raise SpecError(
            f"{path}: not read as a model spec: the DAG factory reads only *{SPEC_SUFFIX} files; "
            f"rename it to {path.stem}{SPEC_SUFFIX}"
        )
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc.strerror}") from None
    if cached and (spec := cached_spec(path, text)) is not None:
        return spec
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    spec = parse_spec(data, path)
    if cached:
        _cache_spec(path, text, spec)
    return spec


# -- the validated-spec cache (issue 31) ----------------------------------------------------------------------------
#
# The dag processor parses the DAG file again and again, and validating a spec means building the spec models'
# pydantic-core schemas (they are deferred), reading YAML and checking the files the spec names. A valid spec is
# therefore kept as JSON under MLOPS_HOME (``cache/specs/<key>.json``), keyed by the SHA-256 of the validating code,
# the spec's path and its text; the entry lists the files the spec names with their SHA-256, which a hit checks
# again (a changed or missing file, a changed spec, a changed validator: a miss, so never stale). Only valid specs
# are cached: a bad one is validated on every parse and gives the same message. Errors of the cache itself (a
# read-only or full disk, a torn or foreign entry) only make a miss.

#: The modules whose code decides whether a spec is valid (the key hashes their source; a test checks the list
#: against what importing them loads).
VALIDATING_MODULES = ("loop/spec.py", "layout.py", "exceptions.py", "ml/hyperparameters.py", "ml/split.py",
                      "ml/tuning.py", "ml/canary.py")  # fmt: skip
_CACHE_FORMAT = 1
log = logging.getLogger(__name__)
_code_digest: str | None = None


def _validating_code() -> str:
    """SHA-256 of the validating modules' source and the pydantic version (once per process)."""
    global _code_digest
    if _code_digest is None:
        import pydantic

        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256(f"{_CACHE_FORMAT} {pydantic.VERSION}".encode())
        for name in VALIDATING_MODULES:
            digest.update(name.encode() + b"\0" + (root / name).read_bytes())
        _code_digest = digest.hexdigest()
    return _code_digest


def spec_cache_file(path: Path, text: str) -> Path:
    """The cache entry of the spec at ``path`` (resolved) with content ``text``."""
    from mlops_provider.utils.paths import home_folder

    key = hashlib.sha256(f"{_validating_code()}\0{path}\0".encode() + text.encode()).hexdigest()
    return home_folder("cache", "specs", f"{key}.json")


def _file_digests(spec: ModelSpec) -> dict[str, str]:
    """SHA-256 of every file the spec names, by resolved path."""
    found = {}
    for value in spec.files().values():
        file = spec.resolve(value)
        found[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def cached_spec(path: Path, text: str) -> ModelSpec | None:
    """The spec at ``path`` with content ``text`` from the cache, or None (no entry, or a file it names changed)."""
    try:
        entry = json.loads(spec_cache_file(path, text).read_text())
        spec = _constructed(ModelSpec, entry["spec"], path=path)
        if _file_digests(spec) != entry["files"]:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return spec


def _cache_spec(path: Path, text: str, spec: ModelSpec) -> None:
    """Keep a valid spec (when the cache rebuilds it equal to the validated one)."""
    try:
        entry = {"spec": spec.model_dump(mode="json"), "files": _file_digests(spec)}
        if _constructed(ModelSpec, entry["spec"], path=path) != spec:
            log.debug("Model spec %s is not cached: the cache would not rebuild it as validated", path)
            return
        from mlops_provider.utils.files import write_atomic

        write_atomic(spec_cache_file(path, text), lambda tmp: tmp.write_text(json.dumps(entry)))
    except (OSError, ValueError, TypeError) as exc:
        log.debug("Model spec %s is not cached: %s", path, exc)


def _constructed(model: type[BaseModel], data: dict[str, Any], **extra: Any) -> Any:
    """``model`` rebuilt from its ``model_dump(mode="json")`` without validation (it was valid when dumped)."""
    if not isinstance(data, dict) or set(data) - set(model.model_fields):
        raise ValueError(f"not a {model.__name__}")
    values = {name: _revived(model.model_fields[name].annotation, value) for name, value in data.items()}
    return model.model_construct(**values, **extra)


def _revived(annotation: Any, value: Any) -> Any:
    """A value of a field of type ``annotation`` from its JSON form."""
    if value is None:
        return None
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return _constructed(annotation, value)
        if annotation is Path:
            return Path(value)
        if annotation is dt.date:
            return dt.date.fromisoformat(value)
        return value
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        return [_revived(args[0], v) for v in value]
    if origin is dict:
        return {k: _revived(args[1], v) for k, v in value.items()}
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _revived(options[0], value) if len(options) == 1 else value
    return value


@dataclass(frozen=True)
class SpecProblem:
    """A spec file that cannot be used. ``message`` names the file and the key (one line per broken key);
    ``others`` are the files it conflicts with when a rule across files broke."""

    path: Path
    message: str
    others: tuple[Path, ...] = ()

    def involves(self, path: Path) -> bool:
        """Whether ``path`` is the file of the problem or one it conflicts with."""
        return path == self.path or path in self.others


@dataclass(frozen=True)
class SpecFolder:
    """A folder of specs checked as the DAG factory reads it: the usable ``specs`` and the ``problems`` of the
    other files, one per file (a bad file never makes a good one unusable, except as a rule across files says)."""

    specs: list[ModelSpec]
    problems: list[SpecProblem]


def spec_files(folder: str | Path) -> list[Path]:
    """The files of ``folder`` that are specs (``*.yaml``) or look like one (``*.yml``, ``*.YAML``: reported as not
    read), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SpecError(f"{folder}: the models folder does not exist or is not a folder (MLOPS_MODELS_DIR)")
    return sorted(p.resolve() for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())


def check_folder(folder: str | Path, *, cached: bool = False) -> SpecFolder:
    """Every spec of ``folder``, each on its own, then the rules across files: model names are unique, and models
    that share a dataset agree on where it comes from and how it is validated (they share its versioned
    partitions). A file that breaks a rule becomes a problem; the others stay usable:

    - two files with one model name: the file named after the model (``<name>.yaml``) is kept, else the first by
      path; the other is the problem, naming both files;
    - models on one dataset that disagree: the version most of them agree on is kept (a tie: the one of the first
      file by path); each other model is a problem, naming the file it disagrees with.

    ``cached``: read each spec through the validated-spec cache (:func:`load_spec`).
    """
    specs, problems = [], []
    for path in spec_files(folder):
        try:
            specs.append(load_spec(path, cached=cached))
        except SpecError as exc:
            problems.append(SpecProblem(path, str(exc)))
    specs, conflicts = _unique_names(specs)
    problems += conflicts
    specs, conflicts = _shared_datasets(specs)
    problems += conflicts
    return SpecFolder(specs=specs, problems=sorted(problems, key=lambda p: p.path))


def _path(spec: ModelSpec) -> Path:
    assert spec.path is not None  # set by load_spec
    return spec.path


def _unique_names(specs: list[ModelSpec]) -> tuple[list[ModelSpec], list[SpecProblem]]:
    by_name: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        by_name.setdefault(spec.name, []).append(spec)
    kept, problems = [], []
    for name, group in by_name.items():
        keep = next((s for s in group if _path(s).stem == name), group[0])
        why = "its file is named after the model" if _path(keep).stem == name else "it comes first by file name"
        kept.append(keep)
        problems += [
            SpecProblem(
                _path(spec),
                f"{_path(spec)}: name: model {name!r} is also defined in {_path(keep)}, whose DAGs are kept ({why}); "
                "give this model a name of its own (and rename the file to match), or delete one of the two files",
                others=(_path(keep),),
            )
            for spec in group
            if spec is not keep
        ]
    return sorted(kept, key=_path), problems


def _shared_datasets(specs: list[ModelSpec]) -> tuple[list[ModelSpec], list[SpecProblem]]:
    by_dataset: dict[str, dict[tuple[str, Path], list[ModelSpec]]] = {}
    for spec in specs:  # sorted by path
        source = (repr(spec.dataset), spec.resolve(spec.validation))  # repr: every field (no serializer needed)
        by_dataset.setdefault(spec.dataset.name, {}).setdefault(source, []).append(spec)
    kept, problems = [], []
    for dataset, versions in by_dataset.items():
        agreed = max(versions.values(), key=len)  # a tie: the first seen, which holds the first file by path
        kept += agreed
        reference = agreed[0]
        problems += [
            SpecProblem(
                _path(spec),
                f"{_path(spec)}: dataset: models {reference.name!r} ({_path(reference)}) and {spec.name!r} share "
                f"dataset {dataset!r} but differ in its source or validation suite; models on one dataset share its "
                f"partitions, so give them the same dataset section and suite (the DAGs of {reference.name!r} are "
                "kept, this model's are not built until they agree)",
                others=(_path(reference),),
            )
            for version in versions.values()
            if version is not agreed
            for spec in version
        ]
    return _shared_schedules(sorted(kept, key=_path), problems)


def _shared_schedules(specs: list[ModelSpec], problems: list[SpecProblem]) -> tuple[list[ModelSpec], list[SpecProblem]]:
    """Models on one dataset share one ingest DAG (``<dataset>__ingest``), so they must agree on ``schedule.ingest``;
    the schedule most of them name is kept (a tie: the first file by path), the others are problems."""
    by_dataset: dict[str, dict[str, list[ModelSpec]]] = {}
    for spec in specs:  # sorted by path
        by_dataset.setdefault(spec.dataset.name, {}).setdefault(spec.schedule.ingest, []).append(spec)
    kept = []
    for dataset, schedules in by_dataset.items():
        agreed = max(schedules.values(), key=len)
        kept += agreed
        reference = agreed[0]
        problems += [
            SpecProblem(
                _path(spec),
                f"{_path(spec)}: schedule.ingest: models {reference.name!r} ({_path(reference)}) and {spec.name!r} "
                f"share dataset {dataset!r} but differ in schedule.ingest ({reference.schedule.ingest!r} and "
                f"{spec.schedule.ingest!r}); one ingest DAG, {dataset}__ingest, runs for a shared dataset, so give "
                f"them the same schedule.ingest (the DAGs of {reference.name!r} are kept, this model's are not built "
                "until they agree)",
                others=(_path(reference),),
            )
            for group in schedules.values()
            if group is not agreed
            for spec in group
        ]
    return sorted(kept, key=_path), problems


def load_specs(folder: str | Path) -> list[ModelSpec]:
    """Every spec of a folder, checked together (:func:`check_folder`); raises :class:`SpecError` naming every
    problem if any file is unusable. The DAG factory uses :func:`check_folder`, so one bad file costs only its
    own model's DAGs."""
    checked = check_folder(folder)
    if checked.problems:
        raise SpecError("\n".join(problem.message for problem in checked.problems))
    return checked.specs
