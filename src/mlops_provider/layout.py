"""The provider's vocabulary, on the ground floor: where data lives in the data registry, the tag and alias names
every stage reads and writes, and the run metadata a version carries. Imports nothing heavy and nothing of the
provider, so every module (hooks, operators, sensors, the web app, DAG files) may import it.
"""

# ruff: noqa: I002  (no `from __future__ import annotations` here: the XCom shapes below are TypedDicts, which
# compile every string annotation at import, ~1 ms of each DAG parse, issue 31; their types are evaluated instead)
import os
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from airflow.sdk import Context

# -- connections: the default ids and engine URL (here so an operator's signature needs no hook module at parse time)

#: The DVC connection an operator uses by default (``DvcHook.default_conn_name``: the embedded workspace).
DVC_DEFAULT_CONN_ID = "dvc_default"
#: The MLflow connection an operator uses by default (``MlflowHook.default_conn_name``).
MLFLOW_DEFAULT_CONN_ID = "mlflow_default"
#: The Docker engine the runners, servers and operators talk to by default.
DEFAULT_DOCKER_URL = "unix://var/run/docker.sock"

# -- training and serving runners ------------------------------------------------------------------------------------

#: Where training runs and a model is served: a local process or a Docker container.
RUNNERS = ("local", "docker")


def default_runner() -> str:
    """The configured runner: ``MLOPS_TRAINING_RUNNER`` (``local`` when unset)."""
    import os

    runner = os.environ.get("MLOPS_TRAINING_RUNNER", "local")
    if runner not in RUNNERS:
        raise ValueError(f"MLOPS_TRAINING_RUNNER={runner!r} is not one of {', '.join(RUNNERS)}")
    return runner


#: The calibrations of a performance estimate (:mod:`mlops_provider.ml.estimation`; here so that the monitoring
#: operator checks its argument at parse time without loading the estimation module).
CALIBRATIONS = ("auto", "isotonic", "sigmoid", "none")

# Rows an ingest step holds at a time (the extract's fetch and parquet row group, validation's batch): peak memory
# of ingest grows with it, not with the partition (docs/benchmarks.md measures both).
DEFAULT_CHUNK_ROWS = 250_000

#: The learned drift's defaults (:mod:`mlops_provider.ml.learned_drift`: ``DEFAULT_K``, ``DEFAULT_LINE``): a
#: column's learned bound is k robust deviations above its calm days' scores; the learned drift that alarms. Here so
#: the drift operator's signature needs no ``ml`` module when a DAG file is parsed (issue 31).
LEARNED_DRIFT_K = 3.0
#: The drift signals a drift report may decide on (:mod:`mlops_provider.ml.drift_signals`); here so an operator
#: checks its argument at parse time without loading the signal rules.
DRIFT_SIGNALS = ("share", "weighted", "learned")
#: The performance alarm rules and the default confidence level of a metric's interval
#: (:mod:`mlops_provider.ml.label_check`); here for the same reason.
PERFORMANCE_ALARM_RULES = ("point", "interval")
DEFAULT_INTERVAL_LEVEL = 0.95
LEARNED_DRIFT_LINE = 0.3


def check_chunk_rows(value: object) -> int:
    """``value`` when it is a positive number of rows; else a ValueError naming it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"chunk_rows must be a positive number of rows, got {value!r}")
    return value


# -- the data registry (DVC + git) ---------------------------------------------------------------------------------


def partition_tag(dataset: str, partition: str) -> str:
    """Git tag of a validated, versioned partition."""
    return f"partition/{dataset}/{partition}"


def partition_path(dataset: str, partition: str) -> str:
    """Path of a partition inside the data registry."""
    return f"data/{dataset}/partitions/{partition}.parquet"


def training_set_tag(training_set: str, partition: str) -> str:
    """Git tag of the training set named ``training_set`` assembled for a partition date (immutable; a rebuilt set
    is ``<tag>.rN``). A training set is named by the model it trains in the DAG factory (several models may read
    one dataset), by its dataset when assembled alone (``TrainingSetAssemblyOperator`` without ``training_set``)."""
    return f"training-set/{training_set}/{partition}"


def training_set_path(training_set: str) -> str:
    """Path of the training set named ``training_set`` inside the data registry (one path, one version per
    assembly; see :func:`training_set_tag` for its name)."""
    return f"data/{training_set}/training_set.parquet"


def run_metadata(context: "Context") -> dict[str, str]:
    """Git trailers that tie a data version to the Airflow task try that made it."""
    ti = context["ti"]
    logical_date = context.get("logical_date")
    interval_start = context.get("data_interval_start")
    return {
        "Airflow-Dag-Id": ti.dag_id,
        "Airflow-Run-Id": ti.run_id,
        "Airflow-Task-Id": ti.task_id,
        "Airflow-Logical-Date": logical_date.isoformat() if logical_date else "none",
        "Airflow-Data-Interval-Start": interval_start.isoformat() if interval_start else "none",
        "Airflow-Try-Number": str(ti.try_number),
    }


# -- the model registry (MLflow) -----------------------------------------------------------------------------------

#: MLflow run tag holding ``dag_id/run_id/task_id``: a task's re-run finds and reuses its run by it.
RUN_KEY_TAG = "airflow.run_key"
#: Model version (and run) tags naming the training set a version was trained on.
DATA_PATH_TAG = "data.path"
DATA_REV_TAG = "data.rev"
DATA_MD5_TAG = "data.md5"
#: Model version tag of the promotion gate's first verdict on the version (its verdict of record).
GATE_DECISION_TAG = "gate.decision"
#: Model version tag counting the evaluations of the version after its first (``gate.reevaluation.<n>.*``).
GATE_REEVALUATIONS_TAG = "gate.reevaluations"


def gate_verdict_tags(
    existing: dict[str, str], verdict: dict[str, str], first: dict[str, str] | None = None
) -> dict[str, str]:
    """The model version tags that record one evaluation's ``verdict`` (``decision``, ``reason``, ``ledger`` (its
    attempt), ...), append-only: the version's first evaluation is ``gate.<key>``; each later one adds
    ``gate.reevaluation.<n>.<key>`` (n = 1, 2, ...) and sets ``gate.reevaluations`` to n. Nothing already recorded
    is changed, except that the same attempt (``ledger``) recording again fills its own slot again.

    :param existing: the version's tags now.
    :param verdict: this evaluation's verdict, by key (``ledger`` required).
    :param first: the verdict of an earlier evaluation when one exists (its ledger was found); it becomes
        ``gate.*`` when the tags lack a first verdict (a crash between the ledger and the tags).
    """
    attempt = verdict["ledger"]
    recorded = existing.get("gate.ledger")
    if first is None and recorded in (None, attempt):
        return {f"gate.{key}": value for key, value in verdict.items()}
    tags = {f"gate.{key}": value for key, value in first.items()} if first is not None and recorded is None else {}
    slots = {
        int(key.split(".")[2]): value
        for key, value in existing.items()
        if key.startswith("gate.reevaluation.") and key.endswith(".ledger") and key.split(".")[2].isdigit()
    }
    n = next((slot for slot, ledger in slots.items() if ledger == attempt), max(slots, default=0) + 1)
    tags.update({f"gate.reevaluation.{n}.{key}": value for key, value in verdict.items()})
    tags[GATE_REEVALUATIONS_TAG] = str(max([n, *slots]))
    return tags


#: Aliases of a registered model.
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
PREVIOUS_ALIAS = "previous"
#: The version a canary rollout is shifting traffic to (set while the rollout runs; ``champion`` serves 100%).
CANARY_ALIAS = "canary"


# -- the monitoring records (written by the drift and performance checks, read by the sensor, the retraining
#    trigger, the model health page and the demo) -------------------------------------------------------------


class ColumnDrift(TypedDict):
    """One column of a drift summary."""

    method: str
    score: float
    threshold: float
    drifted: bool


class DriftSummary(TypedDict, total=False):
    """What ``DriftReportOperator`` writes (``reports/drift/<dataset>/<day>/<attempt>.json``) and returns."""

    dataset_drift: bool
    drift_share: float
    threshold: float
    signal: str  # what decided dataset_drift: "share", "weighted" or "learned"
    signal_note: str | None
    weighted_drift: float | None  # share of the champion's feature importance on drifted columns
    weighted_threshold: float
    learned_drift: float | None  # importance-weighted excess over learned bounds (signal "learned" only)
    learned_threshold: float
    learned_thresholds: dict[str, Any]  # the learned per-column thresholds and the numbers they came from
    importance_source: str | None
    columns: dict[str, ColumnDrift]
    dataset: str
    partition: str
    window: list[str]
    reference: dict[str, Any]
    sample_rows: dict[str, int]
    attempt: str
    recorded_at: str
    recheck: bool
    first_attempt: str | None
    first_recorded_at: str | None
    report_path: str
    report_url: str
    summary_path: str
    mlflow_run_id: str


class PerformanceSummary(TypedDict, total=False):
    """What ``ModelPerformanceOperator`` writes (``reports/performance/<dataset>/<day>/<attempt>.json``)."""

    status: str  # "scored", "no_labels" (no day of the window versioned) or "too_few_labels"
    reason: str  # why nothing was decided (rows per day, window, minimum)
    dataset: str
    model_name: str
    partition: str
    labelled_day: str
    metric: str
    floor: float
    value: float
    model_version: str
    below_floor: bool  # the alarm: crossed by the rule on consecutive_days days (what the drift sensor reads)
    labelled_rows: int  # pooled over the window
    label_window_days: int
    label_days: list[dict[str, Any]]  # [{day, versioned, labelled_rows}], oldest first
    min_labelled_rows: int
    interval: dict[str, Any]  # {lower, upper, level, method, rows, positives, negatives[, se]}
    crossed: bool  # today's score crossed the floor by the rule
    point_below_floor: bool
    alarm: dict[str, Any]  # {rule, consecutive_days, crossed, previous, reason}
    verdict: str
    recheck: bool
    attempt: str
    recorded_at: str
    summary_path: str
    mlflow_run_id: str
    holdout: dict[str, Any]
    excluded_training_rows: int
    # before labels (CBPE): {day, metric, value, low, high, uncalibrated, rows, interval, calibration, assumption,
    # method, alarm, verdict}
    estimated: dict[str, Any] | None
    estimated_below_floor: bool  # by the estimate's alarm rule (its upper bound, or the estimate, under the floor)
    trigger_on_estimate: bool
    estimate_then: dict[str, Any]  # the estimate made for the labelled day, when it was the run's day
    estimate_error: float  # realised - estimated, when the same version made both
    estimate_covered: bool  # the realised value within that estimate's interval (False: its assumption failed)
    prediction_drift: dict[str, Any]  # {method, score, threshold, drifted, positive_rate_reference/current, ...}
    trigger_on_prediction_drift: bool


class RetrainingDecision(TypedDict):
    """What ``DriftSensor`` returns when retraining is called for; ``TriggerRetrainingOperator`` acts on it."""

    reason: str  # "drift", "performance" or "prediction_drift"
    drift_share: float
    threshold: float | None
    signal: str
    weighted_drift: float | None
    weighted_threshold: float | None
    learned_drift: float | None
    learned_threshold: float | None
    partition: str | None
    report_url: str | None
    report_path: str | None
    drifted_columns: list[str]
    performance: PerformanceSummary | None
    recheck: bool
    first_recorded_at: str | None
    summary_path: str | None


#: The drift signals a drift record (:class:`DriftSummary`) can be decided by: its value and line fields, and the
#: name drawn for it.
SIGNAL_FIELDS = {
    "learned": ("learned_drift", "learned_threshold", "learned drift"),
    "weighted": ("weighted_drift", "weighted_threshold", "weighted drift"),
    "share": ("drift_share", "threshold", "drift share"),
}


def deciding_signal(point: dict[str, Any], default_line: float = 0.3) -> dict[str, Any]:
    """The signal that decided a day's drift verdict: ``{"signal", "name", "value", "line"}``. The record's
    ``signal`` is the one that decided (the learned drift when the spec's signal is ``learned`` and thresholds were
    learned; the share when the record fell back to it); a record without the signal's value or line (written
    before they were recorded) falls back to the drift share and ``default_line``."""
    signal = point.get("signal") or "share"
    value_key, line_key, name = SIGNAL_FIELDS.get(signal, SIGNAL_FIELDS["share"])
    if point.get(value_key) is None:
        signal, (value_key, line_key, name) = "share", SIGNAL_FIELDS["share"]
    line = point.get(line_key)
    return {"signal": signal, "name": name, "value": float(point.get(value_key) or 0.0),
            "line": float(default_line if line is None else line)}  # fmt: skip


# -- retention (here so the retention operator checks its arguments at parse time without loading the retention
# rules, :mod:`mlops_provider.utils.retention`; issue 31) ---------------------------------------------------------

#: Environment variable: the retention window in data days of every model whose spec does not set
#: ``retention.days`` (0: keep forever).
RETENTION_DAYS_ENV = "MLOPS_RETENTION_DAYS"
#: The window when neither the spec nor the environment sets one.
DEFAULT_RETENTION_DAYS = 90


def retention_days(configured: int | None) -> int:
    """The window in data days: ``configured`` when given, else ``$MLOPS_RETENTION_DAYS``, else 90. 0 keeps
    everything forever. A ValueError names the setting when it is not a whole number of days >= 0."""
    if configured is None:
        text = os.environ.get(RETENTION_DAYS_ENV, "").strip()
        if not text:
            return DEFAULT_RETENTION_DAYS
        try:
            configured = int(text)
        except ValueError:
            raise ValueError(f"{RETENTION_DAYS_ENV}={text!r} is not a whole number of days (0: keep forever)") from None
        where = RETENTION_DAYS_ENV
    else:
        where = "days"
    if isinstance(configured, bool) or not isinstance(configured, int) or configured < 0:
        raise ValueError(f"{where} must be a whole number of days >= 0 (0: keep forever), got {configured!r}")
    return configured
