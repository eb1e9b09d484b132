"""The runbooks (``doc_md``) of the factory's DAGs, filled with the model's own names and numbers.

Each says what every task does, when it fails or skips and what to do, and what a re-run (clear) does. What a
re-run does comes from one table, :data:`RERUNS` (stage -> task -> :class:`Rerun`), which the tests compare with
the built tasks (every task has a row; the retries it states are the task's; the operator's docstring says the
same) and whose rows cite the integration tests that re-run the task and check it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from mlops_provider.loop.spec_schema import ModelSpec


class Rerun(NamedTuple):
    """What a re-run (clear, or Airflow's retry) of one task does.

    ``does``: the runbook's words (``{f.<fact>}`` is filled from :class:`Facts`). ``retries``: the task's own
    retries when its operator sets them (``None``: the DAG's ``default_args``). ``operator_says``: the words of
    the operator's docstring that promise the same. ``shown_by``: the tests (``path::name``) that re-run the task
    and check what the row says."""

    does: str
    retries: int | None = None
    operator_says: str = ""
    shown_by: tuple[str, ...] = ()


ANSWER_KEPT = """An answer given is never lost nor asked twice. Airflow 3.3.2 may re-run the task by itself when
the answer came within seconds of the question (try 2; the log says "state attribute is queued"). That try, like a
clear, does not ask again: after about 10 s it takes the answer the earlier try received and records it **once**
(who, when, the note). Only a question that ended with the timeout (no answer), or whose request is gone, is asked
again. To ask again about an answered version, trigger this DAG for that version (field `version`)."""

_APPROVAL_RACE = (
    "tests/integration/test_approval_race.py::test_an_answer_given_before_the_scheduler_re_runs_the_task_is_honoured_"
    "and_recorded_once",
    "tests/integration/test_approval_race.py::test_a_clear_after_the_answer_was_recorded_honours_it_again_without_a_"
    "second_record",
    "tests/integration/test_approval_race.py::test_a_clear_after_the_timeout_asks_again",
)
_RECHECK = (
    "tests/integration/test_monitoring.py::test_a_recheck_of_a_past_day_keeps_its_record_uses_its_champion_and_never_"
    "triggers",
)

#: What a re-run of each task of the factory's DAGs does: the one source of the runbooks' re-run statements.
RERUNS: dict[str, dict[str, Rerun]] = {
    "ingest": {
        "extract": Rerun(
            "Reads the interval again and replaces the staged file (nothing versioned is touched).",
            shown_by=("tests/integration/test_extract.py::test_same_interval_gives_identical_bytes",),
        ),
        "validate": Rerun(
            "Validates again as a new attempt beside the earlier ones, none is overwritten.",
            retries=0,  # a data failure does not go away by retrying
            operator_says="a second failure of the same partition never overwrites the first",
            shown_by=(
                "tests/integration/test_validation.py::test_every_failed_attempt_keeps_its_quarantined_file_and_result",
            ),
        ),
        "version_partition": Rerun(
            "Identical data: no new commit. Changed data (the day was fixed): one new commit, the tag moves to it, the "
            "old version stays in the history.",
            operator_says="Re-running with identical content is a no-op",
            shown_by=(
                "tests/integration/test_dvc.py::test_identical_rerun_is_a_no_op",
                "tests/integration/test_dvc.py::test_a_write_killed_mid_commit_leaves_a_registry_the_retry_completes_"
                "with_provenance",
            ),
        ),
        "assemble_training_set": Rerun(
            "Same window, same data: nothing changes. A different result (a day of the window was fixed since): a new "
            "version tagged `training-set/{f.model}/<ds>.r2` (`.r3`...); the tag a model was trained on never moves. "
            "When the day was quarantined before and is fixed now, the later sets built without it are rebuilt with "
            "it (`.rN`, listed on the model health page; nothing retrains by itself).",
            operator_says="re-running with the same result is a no-op",
            shown_by=(
                "tests/integration/test_training_set.py::test_a_rebuilt_set_gets_a_new_tag_and_the_old_one_never_moves",
                "tests/integration/test_training_set.py::test_a_fixed_day_is_added_to_the_later_sets_built_without_it_"
                "old_versions_kept",
            ),
        ),
    },
    "training": {
        "retraining_rails": Rerun(
            "A re-run of `retraining_rails` finds its own record and passes again.",
            operator_says="A re-run of the same run finds its own record and passes again",
        ),
        "train": Rerun(
            "Clearing `train` after it succeeded changes nothing: the finished MLflow run and its model version are "
            "reused; a version the gate already judged keeps its aliases and is not announced again. A try that was "
            "killed takes its training process with it (parent-death signal), and the retry stops any training "
            "process an earlier try left running, so one MLflow run never has two writers.",
            operator_says="Re-running is safe",
            shown_by=(
                "tests/integration/test_training.py::test_training_twice_for_one_airflow_run_gives_one_run_and_one_"
                "version",
                "tests/integration/test_training.py::test_a_rerun_of_a_judged_version_neither_moves_the_alias_nor_"
                "announces_it_again",
                "tests/integration/test_training_process.py::test_a_retry_stops_the_entrypoint_an_earlier_try_left_"
                "running",
            ),
        ),
    },
    "promotion": {
        "evaluate": Rerun(
            "`evaluate` judges the same version again and writes a new ledger beside the earlier ones; the version's "
            "tags `gate.*` keep its **first** verdict (what the health page shows), the re-evaluation is added as "
            "`gate.reevaluation.<n>.*` (`gate.reevaluations` counts them; its ledger names the first in "
            "`reevaluation_of`)",
            operator_says="adds ``gate.reevaluation.<n>.*``",
            shown_by=(
                "tests/integration/test_promotion.py::test_a_re_evaluation_adds_to_the_record_and_keeps_the_first_"
                "verdict",
                "tests/integration/test_promotion.py::test_a_past_promotion_run_cleared_later_judges_and_keeps_its_own_"
                "version",
            ),
        ),
        "gate": Rerun("this run's `gate` follows this run's evaluation"),
        "package": Rerun(
            "`package` reuses the built image", operator_says="An existing image with the same labels is reused"
        ),
        "shadow_check": Rerun(
            "`shadow_check` appends its numbers to the ledger of this run's evaluation",
            operator_says="retry first stops the servers an earlier try left",
            shown_by=(
                "tests/integration/test_serving_process.py::test_a_retry_removes_the_server_an_earlier_try_left_running",
                "tests/integration/test_docker_engine.py::test_a_retry_removes_the_serving_container_an_earlier_try_"
                "left",
            ),
        ),
        "approve": Rerun(ANSWER_KEPT, shown_by=_APPROVAL_RACE),
        "deploy": Rerun(
            "`deploy` finds the version's backend running (the deployment record names it) and only checks its health "
            "again: never a second backend; a killed proxy or backend is started again as recorded",
            operator_says="A version already running is left as it is",
            shown_by=(
                "tests/integration/test_serve_loop.py::test_a_good_challenger_is_canaried_to_100_percent_and_promoted_"
                "with_no_failed_client_request",
            ),
        ),
        "canary_rollout": Rerun(
            "`canary_rollout` reconciles the endpoint with its record first and never shifts twice: a version already "
            "serving 100% is promoted again (a no-op), a rollout cleared mid-way resumes at the step its recorded "
            "weight is in (that step bakes again); after a rollback the canary's backend is gone: clear `deploy` "
            "too to try the version again",
            operator_says="never shifts twice",
            shown_by=(
                "tests/integration/test_serve_loop.py::test_a_good_challenger_is_canaried_to_100_percent_and_promoted_"
                "with_no_failed_client_request",
            ),
        ),
        "promote": Rerun(
            "`promote` changes nothing when the version is the champion or **was promoted by this run**, even if the "
            "champion moved on since (a re-run never moves the champion back)",
            operator_says="a re-run never moves the champion back",
            shown_by=("tests/integration/test_promotion.py::test_promotion_dag_promotes_then_rerun_changes_nothing",),
        ),
    },
    "drift_monitoring": {
        "wait_for_training_set": Rerun("wait again; return at once when the tag / champion is there"),
        "wait_for_champion": Rerun("wait again; return at once when the tag / champion is there"),
        "champion_check": Rerun(
            "asks the registry again: with a champion now, the cold-start tasks are skipped, else they run (the "
            "bootstrap never twice: see `bootstrap_training`)"
        ),
        "bootstrap_training": Rerun(
            "never a second bootstrap (run id `bootstrap__{f.dataset}`)",
            operator_says="never triggers a second one",
            shown_by=(
                "tests/integration/test_monitoring.py::test_without_a_champion_the_loop_bootstraps_one_training_run",
            ),
        ),
        "drift_report": Rerun(
            "a **re-check**: compares the day with the champion **its first check recorded**, writes a new record "
            "beside the first, never over it",
            operator_says="is a **re-check**: it is written beside the first (never over it)",
            shown_by=_RECHECK,
        ),
        "performance_check": Rerun("the same: scores the version the first check scored, beside the first record"),
        "drift_sensor": Rerun(
            "decides again on the re-check's results and marks them `recheck`",
            operator_says="are a re-check of a day that was already checked",
            shown_by=_RECHECK,
        ),
        "previous_decision": Rerun(
            "checks again whether the previous run has decided (its `trigger_training` in a final state, or the run "
            "ended); it changes nothing",
            operator_says="Wait until the previous run of this DAG has decided",
        ),
        "previous_performance_check": Rerun(
            "checks again whether the previous run's `performance_check` has finished; it changes nothing",
            operator_says="Wait until the previous run of this DAG has decided",
        ),
        "trigger_training": Rerun(
            "never triggers twice for a day, nor for a re-check made more than 6 h after the day's first check",
            operator_says="re-running the monitoring run never triggers twice",
            shown_by=(
                "tests/integration/test_monitoring.py::test_monitoring_dag_triggers_one_training_run_per_window_behind_"
                "its_rails",
                *_RECHECK,
            ),
        ),
        "retention": Rerun(
            "removes only what is still there and old enough for **this run's** day (usually nothing), and writes its "
            "own record beside the earlier one; a try killed midway is finished by the re-run",
            operator_says="A re-run removes only what is still there (usually nothing) and writes its own record beside "
            "the earlier one",
            shown_by=(
                "tests/integration/test_retention.py::test_old_uncited_reports_go_cited_and_recent_ones_stay_and_the_"
                "record_lists_them",
            ),
        ),
        "review_retraining": Rerun(
            "an answer given is never lost nor asked twice: as `approve` in the promotion DAG, a retry (Airflow's own, "
            '"state attribute is queued") or a clear takes the answer the earlier try received and records it once '
            "beside the alarm; only a question that ended with the timeout is asked again. To train after an answered "
            "Reject, trigger training by hand (reason `manual`)"
        ),
    },
    "rollback": {
        "rollback": Rerun(
            "nothing changes; a new rollback needs a new run",
            operator_says="Re-running a rollback that happened (tag ``rollback.restored_by`` names this run) is a no-op",
        ),
        "serve_champion": Rerun(
            "finds the champion at 100% and changes nothing",
            operator_says="A re-run finds the version at 100% and changes nothing",
            shown_by=("tests/integration/test_serve_loop.py::test_the_rollback_dag_moves_the_traffic_back",),
        ),
    },
}


def rerun(f: Facts, stage: str, task: str) -> str:
    """The runbook's words for a re-run of ``task`` of ``stage`` (:data:`RERUNS`)."""
    return RERUNS[stage][task].does.format(f=f)


class Facts(NamedTuple):
    """What the runbooks quote."""

    model: str
    dataset: str
    ids: dict[str, str]
    training_set_asset: str
    challenger_asset: str
    window_days: int
    label: str
    label_delay: int
    metric: str
    floor: float
    drift_share: float
    cooldown: int
    budget: int
    segment: str
    suite: str
    key: str
    fraction: float
    p95_ms: float
    retention: str
    human_approval: bool = False
    approval_hours: float = 24
    human_review: bool = False
    label_window: int = 1
    min_labelled_rows: int = 200
    performance_alarm: str = "interval"
    consecutive_days: int = 1
    real_budget: int = 2
    backfill_budget: int = 2
    backfill_lag: float = 3
    split: str = ""  # how train splits the set, after "**splits it**"
    scheduled: bool = False  # retraining.schedule is set: the training DAG has retraining_rails
    drift_signal: str = "learned"
    drift_line: float = 0.3  # the line of drift_signal
    endpoint: bool = False  # serving.endpoint is set: deploy and canary_rollout, serve_champion
    endpoint_port: int = 8600
    canary_steps: str = "5% -> 25% -> 100%"
    bake_seconds: float = 60
    min_requests: int = 200
    keep_versions: int = 2
    current: str = "ingested"  # monitoring.current (the spec's default: served with a live endpoint)
    min_served_rows: int = 200
    capture_fraction: float = 1.0
    capture_days: int = 30  # serving.capture.retention_days (0: forever)

    @classmethod
    def of(cls, spec: ModelSpec, ids: dict[str, str], training_set_asset: str, challenger_asset: str) -> Facts:
        return cls(
            model=spec.name,
            dataset=spec.dataset.name,
            ids=ids,
            training_set_asset=training_set_asset,
            challenger_asset=challenger_asset,
            window_days=spec.training.window_days,
            label=spec.label.column,
            label_delay=spec.label.delay_days,
            metric=spec.monitoring.metric,
            floor=spec.performance_floor,
            drift_share=spec.monitoring.drift_share,
            drift_signal=spec.monitoring.drift_signal,
            drift_line={
                "learned": spec.monitoring.learned_drift_threshold,
                "share": spec.monitoring.drift_share,
                "weighted": spec.monitoring.weighted_drift_threshold,
            }[spec.monitoring.drift_signal],  # fmt: skip
            cooldown=spec.retraining.cooldown_days,
            budget=spec.retraining.max_per_week,
            segment=", ".join(f"`{s}`" for s in spec.segments) or "(none)",
            suite=str(spec.validation),
            key=spec.split_key,
            fraction=spec.split.fraction,
            split=(
                f"by time: the last {spec.split.holdout_days} day(s) of the window (the UTC day of "
                f"`{spec.split.time_column or spec.dataset.timestamp_column}`; `split.method: out_of_time`) are the "
                "holdout; the model trains on the days before, and the gate scores it and the champion on those days"
                if spec.split.method == "out_of_time"
                else f"by the hash of `{spec.split_key}` (holdout fraction {spec.split.fraction}: those keys are never "
                "trained on, by any version)"
            ),
            p95_ms=spec.gate.shadow_p95_ms,
            retention=(
                "`$MLOPS_RETENTION_DAYS` (default 90) data days"
                if spec.retention.days is None
                else f"{spec.retention.days} data days (`retention.days`)"
            ),
            human_approval=spec.gate.human_approval,
            approval_hours=spec.gate.approval_timeout_hours,
            human_review=spec.retraining.human_review,
            label_window=spec.monitoring.label_window_days,
            min_labelled_rows=spec.monitoring.min_labelled_rows,
            performance_alarm=spec.monitoring.performance_alarm,
            consecutive_days=spec.monitoring.consecutive_days,
            real_budget=spec.retraining.max_per_real_week or spec.retraining.max_per_week,
            backfill_budget=(
                spec.retraining.max_per_week
                if spec.retraining.max_backfill_per_real_week is None
                else spec.retraining.max_backfill_per_real_week
            ),
            backfill_lag=spec.retraining.backfill_lag_days,
            scheduled=spec.retraining.schedule is not None,
            **_endpoint_facts(spec),
            current=spec.monitoring_current,
            min_served_rows=spec.monitoring.min_served_rows,
            capture_fraction=spec.serving.capture.fraction,
            capture_days=spec.serving.capture.retention_days,
        )


def _endpoint_facts(spec: ModelSpec) -> dict[str, Any]:
    endpoint = spec.serving.endpoint
    if endpoint is None:
        return {}
    return {
        "endpoint": True,
        "endpoint_port": endpoint.ports()["port"],
        "canary_steps": " -> ".join(f"{p}%" for p in endpoint.canary.steps),
        "bake_seconds": endpoint.canary.bake_seconds,
        "min_requests": endpoint.canary.thresholds.min_requests,
        "keep_versions": endpoint.keep_versions,
    }


def ingest(f: Facts) -> str:
    return f"""
# {f.ids["ingest"]}: nightly {f.dataset} for model {f.model}

Built from the model spec by the DAG factory. Every night this DAG takes **exactly its own data interval**
(`data_interval_start` to `data_interval_end`) from the source table, so a backfill of past days is correct.
Runs of different days may run in parallel; writes to the data registry are serialized by the `dvc_workspace`
pool (and a lock in the registry hook).

| task | what it does | when it fails | what a re-run (clear) does |
|---|---|---|---|
| `extract` | rows of the interval -> `<storage root>/staging/{f.dataset}/<ds>.parquet` (atomic; the root is `MLOPS_STORAGE_URL`, else `$MLOPS_HOME`) | No rows: the source was not loaded for that day; load it, clear the task. Connection errors: check the spec's `dataset.connection`. | {rerun(f, "ingest", "extract")} |
| `validate` | Great Expectations suite `{f.suite}` (the spec's `validation`), plus every timestamp inside the run's interval | Data is bad: the partition goes to `<storage root>/quarantine/{f.dataset}/<ds>/<attempt>/` with `validation_result.json`; the log and the *GX Data Docs* link name the failed checks. Fix the source, then **clear `extract` with downstream**. It does not retry by itself. | {rerun(f, "ingest", "validate")} |
| `version_partition` | DVC add + push + git commit (run metadata as trailers), tag `partition/{f.dataset}/<ds>` (shared by every model of the dataset) | Lock/remote errors: see the message. A task killed mid-commit leaves nothing to clean by hand: the next write clears git's stale locks and half-staged files first. | {rerun(f, "ingest", "version_partition")} |
| `assemble_training_set` | the validated partitions of the **{f.window_days} days** up to `<ds>` -> `data/{f.model}/training_set.parquet`, tag `training-set/{f.model}/<ds>`, Asset event `{f.training_set_asset}`; quarantined or missing days are left out and named in the event and the commit | Fails when that day's partition is not versioned (it was quarantined). **Waits** (up for reschedule, its pool slot freed) while another day of its window is still being ingested, and fails after 2 h naming that day. | {rerun(f, "ingest", "assemble_training_set")} |

A day that failed validation is never used for training: only tagged (validated) partitions are.
"""


def dataset_ingest(dataset: str, models: list[str], suite: str) -> str:
    """The runbook of a shared dataset's ingest DAG (``<dataset>__ingest``); its re-run rows are the model ingest's
    (:data:`RERUNS` ``ingest``: the same tasks)."""
    again = {task: RERUNS["ingest"][task].does for task in ("extract", "validate", "version_partition")}
    names = ", ".join(f"`{model}`" for model in models)
    sets = ", ".join(f"`{model}__training_set`" for model in models)
    return f"""
# {dataset}__ingest: nightly {dataset}, shared by models {names}

Built by the DAG factory because several model specs name dataset `{dataset}` (they agree on its source, its suite
and `schedule.ingest`). Every night it takes **exactly its own data interval** from the source table, validates it
once and versions it once for every model; `version_partition` announces the day on the Asset
`x-mlops://partition/{dataset}` (`extra.partition`, lineage), then one `trigger_training_set__<model>` a model starts
that day's run (same logical date) of its training-set DAG ({sets}), which assembles its own training set. A day quarantined here is quarantined for every model; the `quarantine` mail goes once, to
every recipient of those models.

| task | what it does | when it fails | what a re-run (clear) does |
|---|---|---|---|
| `extract` | rows of the interval -> `<storage root>/staging/{dataset}/<ds>.parquet` (atomic; the root is `MLOPS_STORAGE_URL`, else `$MLOPS_HOME`) | No rows: the source was not loaded for that day; load it, clear the task. Connection errors: check the specs' `dataset.connection`. | {again["extract"]} |
| `validate` | Great Expectations suite `{suite}` (the specs' `validation`), plus every timestamp inside the run's interval | Data is bad: the partition goes to `<storage root>/quarantine/{dataset}/<ds>/<attempt>/` with `validation_result.json`; the log and the *GX Data Docs* link name the failed checks. Fix the source, then **clear `extract` with downstream**. It does not retry by itself. | {again["validate"]} |
| `version_partition` | DVC add + push + git commit (run metadata as trailers), tag `partition/{dataset}/<ds>`, Asset event `{dataset}_partition` with the day | Lock/remote errors: see the message. A task killed mid-commit leaves nothing to clean by hand: the next write clears git's stale locks and half-staged files first. | {again["version_partition"]} The Asset event is emitted again. |
| `trigger_training_set__<model>` | starts the model's training-set run of the day (run id `ingest__<ds>`) | The model's training-set DAG is missing (its spec became a placeholder DAG: fix the spec). | Clears and re-runs that day's assembly (a no-op for an unchanged day). |

A day that failed validation is never used for training: only tagged (validated) partitions are. The models'
drift monitoring gives up on a day whose run here failed (the sensor looks at this DAG).
"""


def training_set(f: Facts) -> str:
    return f"""
# {f.ids["training_set"]}: the training set of model {f.model}

Built from the model spec by the DAG factory for a dataset that several models share: `{f.ids["ingest"]}` extracts,
validates and versions each day once, then starts this DAG's run of that day (run id `ingest__<ds>`, the same
logical date), which assembles the day's set: one run a day, in the order the days were versioned. It has no schedule
of its own: to build a day's set again, clear this DAG's run of that day (or the day's `trigger_training_set__{f.model}`
in `{f.ids["ingest"]}`).

| task | what it does | when it fails | what a re-run (clear) does |
|---|---|---|---|
| `assemble_training_set` | the validated partitions of the **{f.window_days} days** up to `<ds>` -> `data/{f.model}/training_set.parquet`, tag `training-set/{f.model}/<ds>`, Asset event `{f.training_set_asset}`; quarantined or missing days are left out and named in the event and the commit | Fails when that day's partition is not versioned (it was quarantined, or the run was started by hand for a day not ingested yet). **Waits** (up for reschedule, its pool slot freed) while another day of its window is still being ingested, and fails after 2 h naming that day. | {rerun(f, "ingest", "assemble_training_set")} |
"""


def training(f: Facts) -> str:
    return f"""
# {f.ids["training"]}: train model {f.model}

`{f.ids["drift_monitoring"]}` triggers it (reason `bootstrap` when there is no champion yet, `drift` or
`performance` when the champion's world changed), a time schedule may (reason `schedule`, the spec's
`retraining.schedule`; `retraining_rails` first holds a scheduled run back within {f.cooldown} day(s) of the last
training or past {f.real_budget} in 7 days of real time, and says so in a WARNING line and on the model health page), or you do with **Trigger DAG w/ config** (fields: `reason`, `dataset_rev`,
`hyperparameters`, `detail`; any other key fails the run). `dataset_rev` is a tag `training-set/{f.model}/<day>`
(assembled by `{f.ids.get("training_set", f.ids["ingest"])}`) or a commit id, never a branch (it moves, so the version would name data that
later means other data); empty trains on the newest training set.

`train` fetches the training set at its DVC rev (md5-checked), **splits it** {f.split}, runs the spec's training entrypoint
through the configured runner (`local` subprocess or `docker` container) with the training rows and the holdout
rows apart, **checks the entrypoint contract** (result file, model id, run tags, signature, one probability per
row), registers model `{f.model}` once per run and points alias `challenger` at it. It then emits Asset
`{f.challenger_asset}`, on which promotion is scheduled.

| failure | meaning | what to do |
|---|---|---|
| `hyperparameters.<name>: ...` | the conf names an unknown hyperparameter, a wrong type or a value out of range | trigger again with a corrected conf |
| `dataset_rev: revision ... does not exist` | the conf's `dataset_rev` is not a tag/commit of the data registry | list tags: `git -C $MLOPS_HOME/data-registry tag -l 'training-set/{f.model}/*'` |
| `dataset_rev: '...' is a branch of the data registry` / `is not a tag or a commit id` | the conf names a branch (`main`) or an expression (`HEAD~1`), which moves | name a `training-set/{f.model}/<day>` tag (the message names the newest) or its commit id, or leave it empty for the newest |
| `dataset_rev: ... is not a version of data/...training_set.parquet` | the rev names another commit (a partition tag) | name a `training-set/{f.model}/<day>` tag (or `.rN` revision) or its commit |
| `conf: unknown key(s) [...]` | a misspelt conf key (e.g. `datset_rev`, `hyperparameter`), which would otherwise be ignored (Airflow accepts any key) | trigger again with the allowed names the message lists |
| `training entrypoint contract, <item>: ...` | the entrypoint ran but broke the contract (docs/training-entrypoint.md): no result file, no model id, tags dropped, no signature, a predict output that is not one probability per row | fix the entrypoint; the task does not retry by itself |
| `MLflow tracking server ... is not reachable` | the server is down; retried 3 times with backoff, then the task retries | check the `mlflow_default` connection / the server |
| `training image ... does not exist` / `needs a Docker engine` | docker runner without its image or engine | `make training-image`, or set `MLOPS_TRAINING_RUNNER=local` |
| `training entrypoint exited with ...` | the training code failed; the error shows the last lines of its output | fix the code; clear the task (it reuses the same MLflow run) |
| `the training set cannot be split: split.holdout_days=N needs at least N+1 days ...` | an out-of-time split on a training set with too few days (quarantined or missing days); no retry | backfill the missing days and re-assemble, or set `training.min_days` to at least `split.holdout_days + 1` so assembly refuses such a set |

{rerun(f, "training", "train")}{_rails_rerun(f)} Reproduce a run: `mlops reproduce <mlflow run id>`.
"""


def _rails_rerun(f: Facts) -> str:
    return " " + rerun(f, "training", "retraining_rails") if f.scheduled else ""


def _approve_row(f: Facts) -> str:
    if not f.human_approval:
        return ""
    return (
        "| `approve` | asks a human (Airflow's *Required actions*, or `PATCH .../taskInstances/approve/-1/hitlDetails`), "
        "showing the ledger's summary; the answer (who, when, the note) is appended to the ledger (`human_approvals`, "
        "`human`) and tagged on the version (`approval.*`) | waits up to "
        f"{f.approval_hours:g} h; no answer by then: the default, Reject, and `promote` is **skipped**; Reject: "
        "skipped |\n"
    )


def _approval_rerun(f: Facts) -> str:
    return f"\n**`approve` and a re-run**: {rerun(f, 'promotion', 'approve')}\n" if f.human_approval else ""


_PROMOTION_RERUN = ("evaluate", "gate", "package", "shadow_check", "promote")
_SERVING_RERUN = ("deploy", "canary_rollout")


def _serving_rows(f: Facts) -> str:
    if not f.endpoint:
        return ""
    too_few = (
        "a side that got no traffic passes with the reason `no traffic to judge` (`min_requests: 0`)"
        if not f.min_requests
        else f"fewer than {f.min_requests} judged requests on either side is `insufficient_traffic`: a rollback"
    )
    return (
        f"| `deploy` | starts the challenger's serving backend behind the endpoint `http://127.0.0.1:{f.endpoint_port}"
        "/invocations` at **weight 0** (the deployment record `<storage root>/reports/deployments/"
        f"{f.model}/deployment.json` names every backend, its port and weight) and health-checks it (`/ping`, the "
        "model's serving example) | port taken, backend does not start or fails its health check: the message names "
        "it; nothing receives traffic |\n"
        f"| `canary_rollout` | the first champion gets 100% at once; otherwise alias `canary` -> the challenger and "
        f"traffic steps {f.canary_steps}, each baked {f.bake_seconds:g} s while a deferred analysis compares canary "
        "and champion on their live `/metrics` (5xx rate, p95 latency, prediction distribution; 4xx bad input never "
        f"counts; {too_few}). At 100% the versions beyond the newest {f.keep_versions} are retired (the old champion "
        "keeps running at weight 0). Verdicts: `<storage root>/reports/deployments/"
        f"{f.model}/verdicts/v<N>-<attempt>.json`, the evaluation's ledger (`canary`, `canaries`), tags `canary.*` | "
        "**fails** on an alarm after rolling back: the champion at 100% again, the canary's backend stopped, alias "
        "`canary` removed, the message names the alarm and both sides' numbers (mail `canary_rollback`); the "
        "challenger is **not** promoted. Read the verdict; fix the model or the thresholds "
        "(`serving.endpoint.canary`), then trigger this DAG for the version again |\n"
    )


def _promote_when(f: Facts) -> str:
    return " once `canary_rollout` gave it 100% (the alias names the version serving 100%)" if f.endpoint else ""


def promotion(f: Facts) -> str:
    return f"""
# {f.ids["promotion"]}: champion / challenger gate of {f.model}

Runs when training registers a challenger (Asset `{f.challenger_asset}`), or by hand (field `version`).

| task | what it does | when it fails or skips |
|---|---|---|
| `evaluate` | judges **the version this run was triggered for** (the Asset event's `version`, or the `version` field; only a manual run without one takes alias `challenger`): scores it and the champion on the **holdout rows** of its training set (the keys its split held out, or with `split.method: out_of_time` its last days, listed in the ledger's `evaluation_data.days`; and the champion's holdout too if it had another split: no model is scored on rows it trained on), overall and per segment {f.segment}; runs the spec's behaviour tests; applies the spec's `gate` rules; writes a **verdict ledger** per evaluation (link *Verdict ledger*; `<reports root>/ledgers/{f.model}/v<N>/<attempt>.json`, MLflow artifact `gate/ledgers/<attempt>.json`; tags `gate.*` on the version hold its **first** verdict) | fails on unreadable behaviour tests or a version without lineage or split tags |
| `gate` | lets promotion go ahead only on `promote` | **skipped** when the challenger is rejected: read the skip message or the ledger |
| `package` | downloads the version's artifacts; with `MLOPS_TRAINING_RUNNER=docker` builds the serving image `<model>-serving:v<N>` | engine or build errors: the message has the build log's tail |
| `shadow_check` | starts the candidate's server, replays the newest validated partition of `{f.dataset}`, compares with the registry model's predictions; needs 0 errors, max difference <= 1e-6, p95 <= {f.p95_ms:g} ms; numbers go into the ledger. Its local server dies with the task (also on `kill -9`), and a retry first stops a server or container an earlier try left (pid files `$MLOPS_HOME/serving/servers/`, container label `mlops.server-key`) | fails with the numbers; the champion does not move |
{_approve_row(f)}{_serving_rows(f)}| `promote` | `champion` -> challenger{_promote_when(f)}, old champion -> `previous` (compare-and-set, pool `model_promotion`) | "champion is vX now but was vY when ... was evaluated": another promotion or a rollback happened (with an endpoint the challenger serves 100% then: trigger `{f.ids["rollback"]}` or this DAG again); trigger this DAG again for the same version |

**What a re-run (clear) does**: {"; ".join(rerun(f, "promotion", t) for t in _PROMOTION_RERUN[:-1] + (_SERVING_RERUN if f.endpoint else ()) + _PROMOTION_RERUN[-1:])}.
{_approval_rerun(f)}
**Roll back**: trigger DAG `{f.ids["rollback"]}` with a reason.
"""


def _review_rerun(f: Facts) -> str:
    rows = ""
    if f.consecutive_days > 1:
        rows += f"| `previous_performance_check` | {rerun(f, 'drift_monitoring', 'previous_performance_check')} |\n"
    if f.human_review:
        rows += f"| `review_retraining` | {rerun(f, 'drift_monitoring', 'review_retraining')} |\n"
    return rows


def _previous_performance_row(f: Facts) -> str:
    if f.consecutive_days <= 1:
        return ""
    return (
        "| `previous_performance_check` | reschedule-mode sensor, from the run's start: waits until the previous "
        "run's `performance_check` has finished (the alarm reads the earlier days' records, "
        f"`monitoring.consecutive_days` {f.consecutive_days}), so days overlapped by a backfill still score in date "
        "order | fails after 6 h of waiting (a backfill run backwards, or an earlier run stuck) |\n"
    )


_MONITORING_RERUN = (
    "wait_for_training_set", "champion_check", "wait_for_champion", "bootstrap_training", "drift_report", "performance_check",
    "drift_sensor", "previous_decision", "trigger_training", "retention",
)  # fmt: skip


def _rerun_rows(f: Facts, stage: str, tasks: tuple[str, ...]) -> str:
    """Table rows ``| `task` | re-run |``, tasks whose re-run reads the same in one row."""
    rows: dict[str, list[str]] = {}
    for task in tasks:
        rows.setdefault(rerun(f, stage, task), []).append(f"`{task}`")
    return "".join(f"| {', '.join(names)} | {does} |\n" for does, names in rows.items())


def _capture_window(f: Facts) -> str:
    if f.capture_days == 0:
        return f"`captures/{f.model}/<day>/`, kept forever: `serving.capture.retention_days` 0"
    return f"`captures/{f.model}/<day>/` older than {f.capture_days} day(s): `serving.capture.retention_days`"


def _served_section(f: Facts) -> str:
    """What changes when the drift check's current data is the live endpoint's captured traffic."""
    if f.current != "served":
        return ""
    kept = "kept forever" if f.capture_days == 0 else f"kept {f.capture_days} day(s)"
    return f"""
**Served traffic** (`monitoring.current: served`): `drift_report` compares the rows the live endpoint **captured** on
the run's day (UTC; `<storage root>/captures/{f.model}/<day>/`, one parquet file per backend flush, a share
`serving.capture.fraction` {f.capture_fraction:g} of the rows, {kept}: `serving.capture.retention_days`), not the
ingested partition. Only the declared columns and the capture columns are read, one file and batch at a time, and a
seeded sample of at most `max_rows` rows is kept while reading (a day of 1M rows stays within the memory of the
sample). The record names every capture file read (`current.capture_files`), the rows per answering version over the
whole day, and `served`: per version (a canary day has two) its column drift, its importance-weighted drift (by
**that version's** feature importances), its learned drift (against the champion's learned thresholds), the verdict
of `monitoring.drift_signal`, and the drift of the predictions it really returned.

- **skipped**, recorded with `status: too_few_served_rows` and `dataset_drift: null` (not judged: *not* "no drift"),
  when the day has fewer than {f.min_served_rows} captured rows (`monitoring.min_served_rows`): little traffic, the
  endpoint was down, or capture is off. Lower `monitoring.min_served_rows`, raise `serving.capture.fraction`, or
  monitor the ingested data (`monitoring.current: ingested`).
- **fails** naming the declared columns the captured rows lack: the callers do not send them; fix the requests or
  monitor the ingested data.
- `performance_check` also joins the late labels to the captured predictions by request id (`{f.key}`): the metric
  each version **realised on what it served** (`served` in its record).
- `retention` removes captured days older than the capture window, except a capture file a kept decision's drift or
  performance record names. A re-check of a served day reads the capture files still there.
- **Which model answered a request, and what made it**: `mlops lineage {f.model} <request-id> [--day <day>]` prints
  the version, its training set (data rev and md5), code version and run as JSON; the health page links each captured
  day's page (capture files, rows per version).
"""


def drift_monitoring(f: Facts) -> str:
    return f"""
# {f.ids["drift_monitoring"]}: drift and late-label check of {f.model}

One run per day (its data interval), in order (`max_active_runs=1`, catchup on: a backfill checks every past
day exactly once, against the champion of that moment). A backfill may run several days at once
(`--max-active-runs`): their checks overlap, their decisions (`previous_decision`) stay in date order. This DAG is the loop's controller: it is what
triggers `{f.ids["training"]}`.

| task | what it does | when it skips or fails |
|---|---|---|
| `wait_for_training_set` | deferrable: waits for tag `training-set/{f.model}/<day>` (ingest of the day finished) | **skipped** when the day was quarantined: nothing to check |
| `champion_check` | the fork on the champion: with one (every day after the cold start) it follows `drift_report` and `performance_check`, and `bootstrap_training` and `wait_for_champion` are skipped **without running**; without one it follows all four | skipped when `wait_for_training_set` was |
| `bootstrap_training` | cold start: no champion yet -> triggers `{f.ids["training"]}` once (run id `bootstrap__{f.dataset}`, reason `bootstrap`) | skipped by `champion_check` when there is a champion; skips itself when the bootstrap run exists |
| `wait_for_champion` | cold start only: reschedule-mode sensor, goes on once `{f.model}` has a champion | skipped by `champion_check` when there is a champion; skipped when the bootstrap challenger was rejected: trigger training by hand |
| `drift_report` | Evidently `DataDriftPreset`: the day vs the **champion's training set**; the spec's feature types and per-column settings; each side sampled. Link *Drift report*; records in `<reports root>/drift/{f.model}/<day>/<attempt>.json/.html`; metric `drift_share` in MLflow experiment `monitoring` | skipped when there is no champion yet |
| `performance_check` | the champion on the labels of day - {f.label_delay} (`{f.label}`) pooled with the {f.label_window - 1} day(s) before it (`monitoring.label_window_days` {f.label_window}; the record lists each day's rows), **holdout rows only** (rows the champion may have trained on are excluded, so a fresh retrain on that day cannot inflate it; with an out-of-time split every day after its training window counts whole): {f.metric} with its 95% confidence interval (DeLong for ROC AUC, a seeded bootstrap otherwise) vs the floor {f.floor:g}; the day crosses the floor by the `{f.performance_alarm}` rule (`interval`: the whole interval is under it; `point`: the value is), and calls for retraining when it did on {f.consecutive_days} day(s) in a row (`verdict` in the record says which and why); metrics `labelled_{f.metric}` (and `_lower`, `_upper`) in `monitoring`; also, without labels: {f.metric} estimated from the probabilities on the day itself, calibrated on the champion's holdout, with a 95% interval (`estimated_{f.metric}`, `_low`, `_high`; it assumes the features still relate to the label as on the holdout, so it misses concept change) and the drift of the predictions vs the champion's holdout (`prediction_drift`) | no decision: `no_labels` when no day of the window is versioned yet, `too_few_labels` when the window holds fewer than {f.min_labelled_rows} labelled holdout rows (`reason` gives the rows per day, the window and the minimum: raise `monitoring.label_window_days` or lower `monitoring.min_labelled_rows`) |
{_previous_performance_row(f)}| `drift_sensor` | deferrable: waits for both results; goes on with reason `drift` when the drift report says drifted by the spec's signal (`monitoring.drift_signal` `{f.drift_signal}`, line {f.drift_line:g}; `learned`: each column's excess over its learned calm-day threshold, counted up to 1 and weighted by importance, the record's `learned_thresholds`; while nothing is learnable, e.g. a champion trained on fewer than 2 days, the drift share >= {f.drift_share:g} decides and the record's `signal_note` says why; `share`: the drift share >= {f.drift_share:g}), or `performance` when the performance check called for it (its rule above) | **skipped** otherwise (the normal case); the skip message quotes the check's verdict (a value under the floor whose interval reaches over it is noise, no alarm) or why it decided nothing |
| `previous_decision` | reschedule-mode sensor: the days decide in date order. Goes on once the previous run has decided (its `trigger_training` succeeded, skipped or failed, or that run ended, or there is none): the rails below then count exactly the earlier days' triggers, also when a backfill checks several days at once. In the nightly run it passes at once | skipped when `drift_sensor` skipped (no alarm); fails after 6 h of waiting (a backfill run backwards, or an earlier run stuck) |
| `trigger_training` | triggers `{f.ids["training"]}` with run id `drift__{f.dataset}__<day>`, conf `reason`, `dataset_rev` = the day's training set, `detail` = the summaries | skipped when that day already triggered, a training run is queued or running, within the {f.cooldown}-day cooldown, over the budget of {f.budget} per 7 data days, or over the real-time budget ({f.real_budget} per 7 days of real time; a backfill's alarms spend their own {f.backfill_budget}). A held-back alarm logs a **WARNING** `... NOT triggered: held back ... by <rail>` with the trainings counted, when it frees up and what to do, and is listed on the model health page |
| `retention` | on its own, beside the loop (never holds it up): removes the heavy artefacts whose data day is more than {f.retention} before the run's day: drift report HTML of `{f.model}`, validation attempts (`reports/gx/{f.dataset}/...`: result and Data Docs) and quarantined data of `{f.dataset}` (its `validation_result.json` stays), and captured traffic of `{f.model}` ({_capture_window(f)}); **never** a file a retraining record, alarm review or verdict ledger cites, nor any ledger, summary or record. Writes `<reports root>/retention/{f.model}/<day>/<attempt>.json` (`status: started` with `to_remove` before removing, `done` with `removed`, `removed_bytes`, `kept_cited` after) | skipped when the window is 0 (keep forever) or the run has no data interval; fails naming a file it could not remove (the rest is removed and recorded) |

**Silencing a false alarm**: mark `trigger_training` of that run as skipped before it runs, or raise
the line of the spec's signal (`monitoring.learned_drift_threshold`, or `monitoring.drift_share` / a column's `features.drift` threshold for the share); when slowly moving (seasonal) columns "drift" on every calm day under the share, use `monitoring.drift_signal: learned`, the default (docs/drift-signals.md). **Forcing a retrain**: trigger
`{f.ids["training"]}` with reason `manual`.

**Checking a day on what the endpoint served** (param `current`, default `{f.current}` = `monitoring.current`): trigger
this DAG with conf `{{"current": "served"}}` (or pick it in the trigger form) and the day as the run's data interval
(logical date = that day 00:00 UTC, interval the day; REST: `data_interval_start`/`data_interval_end`). The run
processes exactly its own day: `drift_report` reads that day's capture (`captures/{f.model}/<day>/`) instead of its
ingested partition, and its record says so (`current.kind: served`, the capture files, rows and signals per version);
everything else is as in a scheduled run (it waits for the day's training set). `ingested` does the opposite for a
spec that monitors served traffic. Any other value is refused when the run is triggered.

**What a re-run (clear) of each task does** (history is append-only):

| task | re-run |
|---|---|
{_rerun_rows(f, "drift_monitoring", _MONITORING_RERUN)}{_review_rerun(f)}{_served_section(f)}

The real-time budget counts the records in `<reports root>/retraining/{f.ids["training"]}/` (held-back alarms:
`.../held/`), so a storm of re-runs cannot start more than {f.real_budget} trainings a week.

**Backfilling** (a run of type `backfill`, or a data interval that ended more than {f.backfill_lag:g} days ago, as in
catchup): its alarms spend their own real-time pool (`retraining.max_backfill_per_real_week`, {f.backfill_budget}
per 7 days; `0`: a backfill never retrains), never the nightly one, so a backfill's false alarms cannot hold back
tomorrow's real alarm; the cooldown and the data-day budget apply as in the nightly runs, and a training a backfill
started does not hold a nightly alarm back (its run queues behind). Backfill ingest first, then this DAG over the
same days; expect backfill alarms held back by `backfill_week_budget` on the health page. To train on the newest
data afterwards, trigger `{f.ids["training"]}` by hand with reason `manual`.

An old run's *Drift report*, *Validation result* or *GX Data Docs* link answers 404 once `retention` removed
the file; its record under `<reports root>/retention/{f.model}/` names it. To keep everything, set
`retention.days: 0` in the spec (or `MLOPS_RETENTION_DAYS=0`).
"""


def rollback(f: Facts) -> str:
    return f"""
# {f.ids["rollback"]}

Trigger with **Trigger DAG w/ config** and a `reason`. It points alias `champion` of `{f.model}` back at the
version held by alias `previous`, removes `previous` (so a second rollback cannot flip back by accident), and
records the reason in tags `rollback.*` of both versions.

Fails when there is no `previous` version: then pick a version in the MLflow UI and trigger
`{f.ids["promotion"]}` with field `version`. **Re-run (clear)** of a rollback that happened:
{rerun(f, "rollback", "rollback")}.
{_serve_champion(f)}"""


def _serve_champion(f: Facts) -> str:
    if not f.endpoint:
        return ""
    return f"""
`serve_champion` then moves the endpoint's traffic (`http://127.0.0.1:{f.endpoint_port}`) to the restored champion at
once, 100%, no canary: its backend is started again when it was retired, health-checked, given weight 100 (the
others 0, still running), alias `canary` removed. Skipped when the model never had an endpoint; fails naming the
version when its backend does not start or is unhealthy (the traffic stays where it was: the deployment record
says where). **Re-run (clear)**: {rerun(f, "rollback", "serve_champion")}.
"""


#: What every DAG's runbook says about mail when mail is down (the notifier's outbox).
MAIL_DOWN = """
**Mail down.** A notification the SMTP server refuses or does not answer (each operation bounded to a few seconds,
three attempts) is not lost: the task log has an ERROR line `Notification NOT sent: ...` naming the mail, the error
and the outbox file (`<storage root>/notifications/outbox/`), the model health page lists it as *unsent*, and the DAG
`mlops_notification_outbox` sends it once mail works (hourly; trigger it to send now). The task's own outcome is
unaffected.
"""


def notification_outbox() -> str:
    return """
# mlops_notification_outbox

Sends the on-call mail that could not go out when it happened (the SMTP server refused, or accepted and never
answered). Each waiting mail is a JSON file under `<storage root>/notifications/outbox/` (message, recipients, the
error, attempts); a mail is sent through the connection it was meant for and marked sent
(`<storage root>/notifications/<id>.json`), so it never goes out twice.

| task | does | fails when | then |
|---|---|---|---|
| `send_outbox` | sends each waiting mail, oldest first | a mail still cannot be sent (it stops at the first: mail is down) | fix the SMTP connection or server; the task's retries and the next hourly run send them, or trigger the DAG |

**Re-run (clear)**: sends only what is still unsent. The model health page lists unsent and sent mail with their
errors. Runs one at a time (two at once could send a mail twice).
"""


def spec_error(path: str, message: str) -> str:
    """The runbook of the placeholder DAG that stands for a spec file the factory could not use."""
    return f"""
# Model spec `{path.rsplit("/", 1)[-1]}` is broken: its model's DAGs are not loaded

```text
{message}
```

**What this means.** The DAG factory could not use `{path}` (the lines above name the file, the key and what is
allowed), so the DAGs of the model it defines are not loaded: their schedules stop and a run in flight waits (its
tasks cannot be found) until the spec is fixed. **Every other model's DAGs load and run as before**: their rollback,
promotion and ingest are not affected. This DAG only shows the problem; its one task fails with the message above.

**What to do.**

1. `mlops spec check {path.rsplit("/", 1)[0]}` prints the same problem and checks every other spec of the folder
   (names unique, models on one dataset agree).
2. Fix the key (or revert the edit: `git log -p {path}`) and check again until it says `ok`.
3. The next parse of the DAG file (`airflow dags reserialize` forces one) brings the model's DAGs back and this
   placeholder goes away; a run that waited continues where it stopped.
"""
