"""The hyperparameter search before a training (spec ``training.tuning``): an Optuna study whose trials run the
user's entrypoint, each a nested MLflow run under the training run.

Each trial calls the entrypoint through the same runner and contract as the training itself (docs/training-
entrypoint.md), with ``--train`` the training rows less a validation part and ``--holdout`` that validation part
(:func:`mlops_provider.ml.tuning.validation_split`): the gate's holdout is never handed to a trial. The trial's value
is the result's ``tuning.metric``. With ``pruning: median`` the entrypoint may append ``{"step", "value"}`` lines to
the file named by ``$MLOPS_TUNING_REPORT`` while it trains; a trial whose values fall below the median of earlier
trials at the same step is stopped (its nested run ends ``KILLED``, the trial ``PRUNED``).

The study's storage is a journal under the storage root (``<root>/studies/<training run id>/``, see
:class:`StorageRootJournal`), not the metadata database: Airflow 3 tasks do not talk to the metadata database, and
Optuna's tables would share Airflow's ``alembic_version`` table there. Every worker reaches the storage root (a
shared disk, or object storage with ``MLOPS_STORAGE_URL``), so a retry on any worker loads the study by the training
run's id (which a retry reuses) and runs only the trials left: trials a killed try left ``RUNNING`` become ``FAIL``
(their nested runs ``KILLED``) and do not count.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.layout import RUN_KEY_TAG
from mlops_provider.ml.tuning import (
    COUNTED,
    METRIC_ENV,
    REPORT_ENV,
    STUDY_ARTIFACT,
    Tuning,
    best_so_far,
    remaining_budget,
    validation_split,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from mlops_provider.ml.split import Split

TRIAL_TAG = "tuning.trial"
STUDY_TAG = "tuning.study"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag: the UI nests the run under its parent
POLL_SECONDS = 0.2


def journal_folder(parent_run_id: str) -> ObjectStoragePath:
    """Where the study of a training run keeps its journal: ``<storage root>/studies/<run id>``."""
    from mlops_provider.utils.records import study_journal

    return study_journal(parent_run_id)


def _journal_backend_base() -> type:
    from optuna.storages.journal import BaseJournalBackend

    return BaseJournalBackend


def storage_root_journal(folder: ObjectStoragePath) -> Any:
    """A :class:`StorageRootJournal` over ``folder`` (Optuna is imported here, not at module import)."""

    class StorageRootJournal(_journal_backend_base()):  # type: ignore[misc]
        """Optuna's journal as append-only chunks under ``folder``: each append is one new object
        ``<first log number>.jsonl`` (written in one step: a rename on a disk, one upload on object storage), so it
        works where a file cannot be appended to or locked (S3). Chunks never change once written, so each is read
        once. One writer per study (the training task; a retry starts after the earlier try's process is gone):
        a second writer that finds its chunk name taken fails rather than interleave."""

        def __init__(self) -> None:
            self.folder = folder
            self.folder.mkdir(parents=True, exist_ok=True)
            self._read: dict[str, list[dict[str, Any]]] = {}

        def _chunks(self) -> list[tuple[int, Any]]:
            try:
                paths = list(self.folder.iterdir())
            except (FileNotFoundError, NotADirectoryError):  # object storage: no "folder" before its first object
                return []
            found = [(int(p.name.split(".")[0]), p) for p in paths if p.name.endswith(".jsonl")]
            return sorted(found, key=lambda item: item[0])

        def _logs(self) -> Iterator[tuple[int, dict[str, Any]]]:
            for first, path in self._chunks():
                if path.name not in self._read:
                    self._read[path.name] = [json.loads(line) for line in path.read_text().splitlines() if line]
                for i, log in enumerate(self._read[path.name]):
                    yield first + i, log

        def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
            return (log for number, log in list(self._logs()) if number >= log_number_from)

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            from mlops_provider.utils.storage import write_text

            count = sum(1 for _ in self._logs())
            target = self.folder / f"{count:012d}.jsonl"
            if target.exists():
                raise RuntimeError(f"tuning journal {target}: written by another process; one writer per study")
            write_text(target, "".join(json.dumps(log, sort_keys=True) + "\n" for log in logs))

    return StorageRootJournal()


class _PruneWatch:
    """Reads the trial's report file while the entrypoint runs; stops the entrypoint when the pruner says so."""

    def __init__(self, trial: Any, report: Path, runner: Any) -> None:
        self.trial, self.report, self.runner = trial, report, runner
        self.pruned_at: int | None = None
        self._done = threading.Event()
        self._seen = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _PruneWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        if self.pruned_at is None:
            self._poll()  # the last lines written before the entrypoint exited

    def _watch(self) -> None:
        while not self._done.wait(POLL_SECONDS) and self.pruned_at is None:
            self._poll()

    def _poll(self) -> None:
        if not self.report.is_file():
            return
        text = self.report.read_text()
        lines = text.splitlines()
        complete = lines if text.endswith("\n") else lines[:-1]  # the last line may be half written
        for line in complete[self._seen :]:
            self._seen += 1
            try:
                point = json.loads(line)
                step, value = int(point["step"]), float(point["value"])
            except (ValueError, KeyError, TypeError):
                continue  # a line the tuner cannot read is not a reason to stop the trial
            self.trial.report(value, step)
            if self.pruned_at is None and self.trial.should_prune():
                self.pruned_at = step
                self.runner.kill()
                return


def _seconds(trial: Any) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def trial_record(trial: Any) -> dict[str, Any]:
    """A trial as the study summary lists it (JSON)."""
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value if trial.state.name == "COMPLETE" else None,
        "params": dict(trial.params),
        "start": trial.datetime_start.isoformat() if trial.datetime_start else None,
        "end": trial.datetime_complete.isoformat() if trial.datetime_complete else None,
        "seconds": round(_seconds(trial), 3),
        "mlflow_run_id": trial.user_attrs.get("mlflow_run_id"),
        "pruned_at_step": trial.user_attrs.get("pruned_at_step"),
    }


def _end_stale(study: Any, mlflow_hook: Any, experiment_id: str, parent_run_id: str, log: Any) -> list[int]:
    """Trials an earlier try left RUNNING (it was killed) become FAIL, their nested runs KILLED; returns their
    numbers. They do not count against the budget."""
    from optuna.trial import TrialState

    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    client = mlflow_hook.get_client()
    with mlflow_hook.scoped_environment():
        running = client.search_runs(
            [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and attributes.status = 'RUNNING'"
        )
    for run in running:
        mlflow_hook.set_run_tags(run.info.run_id, {"tuning.state": "FAIL"})
        mlflow_hook.terminate_run(run.info.run_id, "KILLED")
    if stale:
        log.warning("Tuning: trial(s) %s were left running by an earlier try: marked failed, not counted",
                    [t.number for t in stale])  # fmt: skip
    return [t.number for t in stale]


def tune(
    runner: Any,
    mlflow_hook: Any,
    *,
    tuning: Tuning,
    train_part: Any,
    split: Split,
    schema: dict[str, Any],
    params: dict[str, Any],
    parent_run_id: str,
    tags: dict[str, str],
    work_dir: Path,
    log: Any,
) -> dict[str, Any]:
    """Run (or resume) the study of training run ``parent_run_id`` on ``train_part`` (the rows the model may train
    on; ``params`` are the fixed hyperparameters the search space overrides). Returns the study summary
    (``STUDY_ARTIFACT`` on the parent run): ``study``, ``storage``, ``metric``, ``direction``, ``budget``,
    ``best`` (``{"number", "value", "params"}``: ``params`` is every hyperparameter, the fixed ones and the best
    trial's), ``trials`` (:func:`trial_record`), ``importance`` (Optuna's parameter importances, empty with fewer than
    two complete trials), ``stopped`` (why no further trial started), ``stale`` (trials a killed try left)."""
    from mlops_provider.utils.extras import require

    require("tune", user="training.tuning")
    import optuna
    from optuna.trial import TrialState

    from mlops_provider.exceptions import TrainingDataError
    from mlops_provider.ml.contract import EntrypointContractError, check_result
    from mlops_provider.runtime.jobs import TrainingJob
    from mlops_provider.utils.storage import location

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = work_dir / "tuning"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fit_part, validation = validation_split(split, tuning.validation_fraction).split(train_part)
    except ValueError as exc:
        raise TrainingDataError(f"training.tuning: the training rows cannot be split for validation: {exc}") from exc
    if fit_part.empty or validation.empty:
        raise TrainingDataError(
            f"training.tuning: carving validation rows leaves {len(fit_part)} rows to fit and {len(validation)} to "
            f"score of {len(train_part)} training rows; raise validation_fraction or train on more data"
        )
    fit_file, validation_file = folder / "train.parquet", folder / "validation.parquet"
    fit_part.to_parquet(fit_file, index=False)
    validation.to_parquet(validation_file, index=False)

    journal = journal_folder(parent_run_id)
    storage = optuna.storages.JournalStorage(storage_root_journal(journal))
    experiment_id = mlflow_hook.get_run(parent_run_id).info.experiment_id
    probe = optuna.create_study(study_name=parent_run_id, storage=storage, direction=tuning.direction,  # type: ignore[arg-type]
                                load_if_exists=True)  # fmt: skip
    stale = _end_stale(probe, mlflow_hook, experiment_id, parent_run_id, log)
    history = probe.get_trials(deepcopy=False)
    counted = [t for t in history if t.state.name in COUNTED]
    trials_left, seconds_left, stopped = remaining_budget(tuning, len(counted), sum(_seconds(t) for t in counted))
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=3) if tuning.pruning == "median" else optuna.pruners.NopPruner()
    )
    # The sampler's seed moves on with the history: a resumed study does not draw the first trials' points again.
    sampler = optuna.samplers.TPESampler(seed=tuning.seed + len(history))
    study = optuna.load_study(study_name=parent_run_id, storage=storage, sampler=sampler, pruner=pruner)
    if history:
        log.info("Tuning: resuming study %s: %d trial(s) counted, %s left", parent_run_id, len(counted),
                 stopped or f"{trials_left} trial(s) / {seconds_left} s")  # fmt: skip

    def objective(trial: Any) -> float:
        chosen = {}
        for name, search in tuning.search_space.items():
            if search.choices is not None:
                chosen[name] = trial.suggest_categorical(name, list(search.choices))
            elif type(params.get(name)) is int:  # resolved parameters carry the hyperparameter file's type
                chosen[name] = trial.suggest_int(name, int(search.low or 0), int(search.high or 0),
                                                 step=int(search.step or 1), log=search.log)  # fmt: skip
            else:
                chosen[name] = trial.suggest_float(name, float(search.low or 0), float(search.high or 0),
                                                   step=search.step, log=search.log)  # fmt: skip
        # Not the training run's key tag: a retry finds the training run by it, never a trial.
        trial_tags = {**{k: v for k, v in tags.items() if k != RUN_KEY_TAG}, PARENT_TAG: parent_run_id,
                      STUDY_TAG: parent_run_id, TRIAL_TAG: str(trial.number)}  # fmt: skip
        run_id = mlflow_hook.create_run(experiment_id, f"trial-{trial.number}", trial_tags)
        trial.set_user_attr("mlflow_run_id", run_id)
        trial_dir = folder / f"trial-{trial.number}"
        trial_dir.mkdir(exist_ok=True)
        report = trial_dir / "report.jsonl"
        report.unlink(missing_ok=True)
        job = TrainingJob(
            train=fit_file,
            holdout=validation_file,
            schema=schema,
            tracking_uri=mlflow_hook.tracking_uri,
            mlflow_run_id=run_id,
            params={**params, **chosen},
            tags=trial_tags,
            output=trial_dir / "result.json",
            env={**mlflow_hook.credential_environment(), REPORT_ENV: str(report), METRIC_ENV: tuning.metric},
        )
        job.output.unlink(missing_ok=True)
        watch = _PruneWatch(trial, report, runner)
        try:
            with watch:
                try:
                    runner.run(job)
                except Exception:
                    if watch.pruned_at is None:
                        raise
            if watch.pruned_at is not None:
                trial.set_user_attr("pruned_at_step", watch.pruned_at)
                mlflow_hook.set_run_tags(run_id, {"tuning.state": "PRUNED"})
                mlflow_hook.terminate_run(run_id, "KILLED")
                raise optuna.TrialPruned(f"pruned at step {watch.pruned_at}")
            metrics = check_result(job.output)["metrics"]
            if tuning.metric not in metrics:
                raise EntrypointContractError(
                    "metrics", f"the result has no {tuning.metric!r} (training.tuning.metric); it has {sorted(metrics)}"
                )
        except optuna.TrialPruned:
            raise
        except BaseException:
            mlflow_hook.set_run_tags(run_id, {"tuning.state": "FAIL"})
            mlflow_hook.terminate_run(run_id, "FAILED")
            raise
        value = float(metrics[tuning.metric])
        mlflow_hook.set_run_tags(run_id, {"tuning.state": "COMPLETE", "tuning.value": repr(value)})
        mlflow_hook.terminate_run(run_id, "FINISHED")
        log.info("Tuning: trial %d %s=%.5f %s", trial.number, tuning.metric, value, chosen)
        return value

    if stopped is None:
        started = time.monotonic()
        study.optimize(objective, n_trials=trials_left, timeout=seconds_left)
        if tuning.n_trials is not None and trials_left is not None and len(_counted(study)) >= tuning.n_trials:
            stopped = f"{tuning.n_trials} of n_trials={tuning.n_trials} trials finished"
        else:
            stopped = f"timeout_minutes={tuning.timeout_minutes:g} reached after {time.monotonic() - started:.0f} s"
    completed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not completed:
        raise EntrypointContractError("metrics", f"training.tuning: no trial of study {parent_run_id} completed")
    best = study.best_trial
    records = [trial_record(t) for t in study.get_trials(deepcopy=False)]
    summary: dict[str, Any] = {
        "study": parent_run_id,
        "storage": location(journal),
        "metric": tuning.metric,
        "direction": tuning.direction,
        "budget": {"n_trials": tuning.n_trials, "timeout_minutes": tuning.timeout_minutes},
        "search_space": {n: r.as_dict() for n, r in tuning.search_space.items()},
        "best": {"number": best.number, "value": best.value, "params": {**params, **best.params}},
        "trials": records,
        "importance": importances(study),
        "stopped": stopped,
        "stale": stale,
    }
    summary["best_so_far"] = best_so_far([t["value"] for t in records], tuning.direction)
    log_study(mlflow_hook, parent_run_id, summary, work_dir)
    return summary


def _counted(study: Any) -> list[Any]:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name in COUNTED]


def importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) of the study; empty when there is too little to tell (fewer than two
    complete trials, or no parameter that varied)."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):
        return {}
    return {str(k): float(v) for k, v in found.items()}


def log_study(mlflow_hook: Any, run_id: str, summary: dict[str, Any], work_dir: Path) -> None:
    """The study on the training run: ``tuning/study.json``, ``plots/tuning_trials.svg`` and
    ``plots/tuning_importance.svg`` (when there are importances), tags ``tuning.*``."""
    from mlops_provider.render import plots

    mlflow_hook.log_dict(run_id, summary, STUDY_ARTIFACT)
    folder = work_dir / "plots"
    folder.mkdir(exist_ok=True)
    for name, fig in plots.study_figures(summary):
        path = folder / f"{name}.svg"
        path.write_text(str(plots.svg(fig)))
        mlflow_hook.log_artifact(run_id, path, "plots")
    finished = sum(1 for t in summary["trials"] if t["state"] in COUNTED)
    mlflow_hook.set_run_tags(run_id, {
        STUDY_TAG: summary["study"], "tuning.storage": summary["storage"], "tuning.metric": summary["metric"],
        "tuning.best_trial": str(summary["best"]["number"]), "tuning.best_value": repr(summary["best"]["value"]),
        "tuning.trials": str(finished), "tuning.stopped": summary["stopped"][:500],
    })  # fmt: skip
