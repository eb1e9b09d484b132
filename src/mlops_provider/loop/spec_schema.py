"""The model spec's schema: the pydantic models of a spec's sections, their validators and :func:`parse_spec`.

Read a spec through :mod:`mlops_provider.loop.spec` (``load_spec``, ``check_folder``, ``mlops spec check``), which
imports this module only to validate (a DAG file's parse of cached specs defines none of these models, issue 31);
its names are also served there (``from mlops_provider.loop.spec import ModelSpec``). A section's behaviour (its
``*_arguments()`` methods and derived values) is in :mod:`mlops_provider.loop.spec_sections`
(``_<Section>Methods``), shared with the cached view. Every key, its default and what is allowed:
``docs/model-spec.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_provider.exceptions import SpecError
from mlops_provider.layout import DEFAULT_CHUNK_ROWS
from mlops_provider.loop.spec_sections import (
    DRIFT_METHODS,
    NAME,
    NOTIFICATION_EVENTS,
    _CaptureSpecMethods,
    _DatasetSpecMethods,
    _EndpointSpecMethods,
    _FeaturesSpecMethods,
    _GateSpecMethods,
    _LabelSpecMethods,
    _ModelSpecMethods,
    _MonitoringSpecMethods,
    _NotificationsSpecMethods,
    _RetentionSpecMethods,
    _RetrainingSpecMethods,
    _ServingSpecMethods,
    _TrainingSpecMethods,
    _TuningSpecMethods,
    feature_name_problem,
    label_problems,
)


class _Section(BaseModel):
    # defer_build: a section's validator (its pydantic-core schema) is built on its first validation, not when the
    # class is defined: a parse whose specs all come from the validated-spec cache (:func:`load_spec`) never builds
    # one (issue 31). Defaults of a section type are factories for the same reason (an instance built at class
    # definition would be validated there).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class DatasetSpec(_DatasetSpecMethods, _Section):
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


class LabelSpec(_LabelSpecMethods, _Section):
    """The label and when it becomes known."""

    column: str
    positive_class: int | str | bool = Field(default=1, description="the label value of the positive class")
    delay_days: int = Field(default=0, ge=0, le=365, description="days until a day's labels are known (late labels)")


class ColumnDriftSpec(_Section):
    """Per-column drift settings (default: Evidently's choice for the column type and data size)."""

    method: Literal[DRIFT_METHODS] | None = None  # type: ignore[valid-type]
    threshold: float | None = Field(default=None, gt=0)
    exclude: bool = False


class FeaturesSpec(_FeaturesSpecMethods, _Section):
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


class TuningSpec(_TuningSpecMethods, _Section):
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


class TrainingSpec(_TrainingSpecMethods, _Section):
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


class GateSpec(_GateSpecMethods, _Section):
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


class EndpointSpec(_EndpointSpecMethods, _Section):
    """The model's live endpoint (Caddy in front of one backend per version, on 127.0.0.1)."""

    port: int = Field(default=8600, ge=1024, le=65000, description="the endpoint's port on 127.0.0.1")
    admin_port: int | None = Field(default=None, ge=1024, le=65535, description="Caddy's admin API (none: port + 1)")
    keep_versions: int = Field(default=2, ge=1, description="versions kept running after a rollout")
    canary: CanarySpec = Field(default_factory=CanarySpec)


class CaptureSpec(_CaptureSpecMethods, _Section):
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


class ServingSpec(_ServingSpecMethods, _Section):
    """How a promoted model is packaged (the shadow check runs the package before promotion) and, with
    ``endpoint``, served live."""

    directory: Path = Field(description="folder with the serving Dockerfile (MLflow's scoring server)")
    requirements: Path = Field(description="pinned requirements of the model, copied into the image")
    endpoint: EndpointSpec | None = Field(default=None, description="serve the champion live (none: no endpoint)")
    capture: CaptureSpec = Field(default_factory=CaptureSpec)


class MonitoringSpec(_MonitoringSpecMethods, _Section):
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


class RetrainingSpec(_RetrainingSpecMethods, _Section):
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


class NotificationsSpec(_NotificationsSpecMethods, _Section):
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


class RetentionSpec(_RetentionSpecMethods, _Section):
    """How long heavy stored artefacts (drift reports, validation Data Docs, quarantined data) are kept."""

    days: int | None = Field(
        default=None, ge=0, description="data days kept; none: $MLOPS_RETENTION_DAYS, else 90; 0: keep forever"
    )


class ScheduleSpec(_Section):
    """When the nightly DAGs run."""

    ingest: str = "@daily"
    start_date: dt.date = Field(description="first data day (catchup runs every day from here)")
    end_date: dt.date | None = Field(default=None, description="last data day (no ingest or monitoring run after it)")
    catchup: bool = True
    max_active_ingest_runs: int = Field(default=4, ge=1)


class ModelSpec(_ModelSpecMethods, _Section):
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


def shape_of(annotation: Any) -> Any:
    """What the validated-spec cache needs to rebuild a value of type ``annotation`` from its JSON form as a
    :class:`mlops_provider.loop.spec.SpecView`: ``None`` (plain JSON), ``"path"``, ``"date"``, ``{"list": shape}``,
    ``{"dict": shape}`` or ``{"section": name, "fields": {field: shape}}`` (in the schema's field order)."""
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            fields = {name: shape_of(field.annotation) for name, field in annotation.model_fields.items()}
            return {"section": annotation.__name__, "fields": fields}
        if annotation is Path:
            return "path"
        if annotation is dt.date:
            return "date"
        return None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        item = shape_of(args[0])
        return None if item is None else {"list": item}
    if origin is dict:
        item = shape_of(args[1])
        return None if item is None else {"dict": item}
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return shape_of(options[0]) if len(options) == 1 else None
    return None
