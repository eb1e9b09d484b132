"""The DAG factory: the five DAGs of a model's loop, built from its spec (Airflow's dynamic DAG pattern).

``build_dags(spec)`` returns ``{dag_id: DAG}`` for ingest, training, promotion, drift monitoring and rollback,
every id prefixed by the model (``<model>__ingest`` ...). ``build_all(folder)`` does it for every spec of a
folder; a DAG file puts the result in its globals. Everything model-specific comes from the spec; what is keyed by
the model (so two models, even on one dataset, never collide): DAG ids, training-set path and tags
(``data/<model>/training_set.parquet``, ``training-set/<model>/<day>``), drift, performance and retraining
records, MLflow experiment, registered model and aliases, Asset names. Shared on purpose: a dataset's versioned
partitions (``partition/<dataset>/<day>``; models on one dataset must agree on its source and suite, which
``check_folder`` checks) and the pools ``dvc_workspace`` (one data registry, one writer) and ``model_promotion``.

A dataset that two or more specs name is ingested once (:func:`build_dataset_ingest`): ``<dataset>__ingest``
(extract -> validate -> version_partition -> one ``trigger_training_set__<model>`` per model) versions each day,
announces it on the Asset ``x-mlops://partition/<dataset>`` (:func:`partition_asset`, lineage) and starts the run of
that day of each model's ``<model>__training_set`` (:func:`build_training_set`), in place of ``<model>__ingest``. A
dataset with one model keeps ``<model>__ingest`` exactly.

One builder per stage (:data:`STAGES`), each buildable and testable alone from a :class:`Loop`; one helper for
the arguments every DAG shares (:func:`loop_dag`); results go between tasks one way, as the upstream task's whole
result (``task.output``, the operator picks its field: :class:`mlops_provider.hooks.mixins.UpstreamResultMixin`);
spec values reach operators one way, through the spec's ``<task>_arguments()`` (:mod:`mlops_provider.loop.spec`).

Imports only the Task SDK and the operator modules (no heavy library at parse time).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mlops_provider.loop import runbooks
from mlops_provider.loop.spec import SpecError, SpecProblem, check_folder

if TYPE_CHECKING:
    from airflow.sdk import DAG, Asset

    from mlops_provider.loop.spec_schema import ModelSpec  # a cached spec is a SpecView of one (duck-typed)

#: Overrides every spec's ``schedule.start_date`` (the demo and the tests set it).
START_DATE_ENV = "MLOPS_START_DATE"

log = logging.getLogger(__name__)


def _start_date(spec: ModelSpec):  # noqa: ANN202 (a pendulum DateTime)
    import pendulum

    configured = os.environ.get(START_DATE_ENV)
    return pendulum.parse(configured or spec.schedule.start_date.isoformat(), tz="UTC")


def _end_date(spec: ModelSpec):  # noqa: ANN202 (a pendulum DateTime or None)
    """``schedule.end_date`` as the DAGs' end date (its day is the last data interval that runs), or None."""
    import pendulum

    end = spec.schedule.end_date
    return pendulum.datetime(end.year, end.month, end.day, tz="UTC") if end else None


def _retries(count: int, **extra: object) -> dict[str, object]:
    return {"retries": count, "retry_delay": timedelta(seconds=30), **extra}


def dataset_ingest_id(dataset: str) -> str:
    """The id of a shared dataset's ingest DAG: ``<dataset>__ingest``."""
    return f"{dataset}__ingest"


def partition_asset(dataset: str) -> Asset:
    """The Asset a shared dataset's ingest announces each versioned day on (``extra["partition"]``: the day)."""
    from airflow.sdk import Asset

    return Asset(name=f"{dataset}_partition", uri=f"x-mlops://partition/{dataset}")


def shared_datasets(specs: Sequence[ModelSpec]) -> dict[str, list[ModelSpec]]:
    """The datasets that two or more of ``specs`` name, with their specs (in the given order)."""
    by_dataset: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        by_dataset.setdefault(spec.dataset.name, []).append(spec)
    return {dataset: group for dataset, group in by_dataset.items() if len(group) > 1}


class Loop(NamedTuple):
    """What every stage builder of one model reads: the spec, the DAG ids by stage, the two Assets that connect
    the stages (training set: ingest -> training's inputs; challenger: training -> promotion) and the runbooks'
    facts. ``shared``: the model's dataset is shared with other models: ``ids["ingest"]`` is the dataset's ingest
    DAG, ``ids["training_set"]`` the model's training-set DAG, which the dataset's ingest starts for each day it
    versions (and announces on ``partition``)."""

    spec: ModelSpec
    ids: dict[str, str]
    training_set: Asset
    challenger: Asset
    facts: runbooks.Facts
    shared: bool = False
    partition: Asset | None = None

    @classmethod
    def of(cls, spec: ModelSpec, shared: bool = False) -> Loop:
        from airflow.sdk import Asset

        model = spec.name
        ids = {stage: spec.dag_id(stage) for stage in STAGES}
        if shared:
            ids["ingest"] = dataset_ingest_id(spec.dataset.name)
            ids[TRAINING_SET] = spec.dag_id(TRAINING_SET)
        training_set = Asset(name=f"{model}_training_set", uri=f"x-mlops://training-set/{model}")
        challenger = Asset(name=f"{model}_challenger", uri=f"x-mlops://model/{model}/challenger")
        facts = runbooks.Facts.of(spec, ids, training_set.name, challenger.name)
        return cls(
            spec, ids, training_set, challenger, facts, shared, partition_asset(spec.dataset.name) if shared else None
        )

    def stages(self) -> dict[str, Callable[[Loop], DAG]]:
        """The model's own stages: :data:`STAGES`, with ``training_set`` in place of ``ingest`` when shared."""
        if not self.shared:
            return STAGES
        return {(TRAINING_SET if stage == "ingest" else stage): build for stage, build in SHARED_STAGES.items()}

    def notify(self, event: str) -> dict[str, Any]:
        """The callback arguments that mail ``event`` per the spec's ``notifications`` ({} when not wanted)."""
        return _notify(self.spec, event)

    def daily(self) -> Any:
        """The nightly timetable (``schedule.ingest``): one run per data interval."""
        from mlops_provider.utils.compat import cron_data_interval_timetable

        return cron_data_interval_timetable(self.spec.schedule.ingest, timezone="UTC")


def loop_dag(
    loop: Loop,
    stage: str,
    *,
    description: str,
    schedule: Any,
    tags: list[str],
    default_args: dict[str, Any],
    runbook: Callable[[runbooks.Facts], str],
    catchup: bool = False,
    **extra: Any,
) -> DAG:
    """A DAG of the loop with the arguments every stage shares: id ``<model>__<stage>``, not auto-registered (the
    DAG file registers what it keeps, :func:`build_all`), the start date, tags ``mlops``, the model and the
    stage's, the spec's owner in ``default_args``, and the stage's runbook (+ the mail-down note when the spec
    mails)."""
    from airflow.sdk import DAG

    spec = loop.spec
    doc = runbook(loop.facts) + (runbooks.MAIL_DOWN if spec.notifications.email else "")
    return DAG(
        dag_id=loop.ids[stage],
        auto_register=False,
        description=f"{spec.name}: {description}",
        schedule=schedule,
        start_date=_start_date(spec),
        catchup=catchup,
        doc_md=doc,
        tags=["mlops", spec.name, *tags],
        default_args={"owner": spec.owner, **default_args},
        **extra,
    )


def build_ingest(loop: Loop) -> DAG:
    """``<model>__ingest``: extract -> validate -> version_partition -> assemble_training_set, nightly."""
    from mlops_provider.layout import partition_path, partition_tag
    from mlops_provider.operators.dvc import DvcVersionOperator
    from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
    from mlops_provider.operators.sql import SqlToParquetOperator
    from mlops_provider.operators.training_set import TrainingSetAssemblyOperator
    from mlops_provider.utils.templated_fields import INTERVAL_DATE

    spec, data = loop.spec, loop.spec.dataset
    with loop_dag(
        loop,
        "ingest",
        end_date=_end_date(spec),
        description=f"extract, validate and version one day of {data.name}; assemble the training set",
        schedule=loop.daily(),
        catchup=spec.schedule.catchup,
        max_active_runs=spec.schedule.max_active_ingest_runs,
        runbook=runbooks.ingest,
        tags=["ingest"],
        default_args=_retries(2, retry_exponential_backoff=True, max_retry_delay=timedelta(minutes=10)),
    ) as dag:
        extract = SqlToParquetOperator(task_id="extract", **data.extract_arguments())
        validate = GreatExpectationsValidateOperator(
            task_id="validate", data_path=extract.output, **spec.validate_arguments(), **loop.notify("quarantine")
        )
        version_partition = DvcVersionOperator(
            task_id="version_partition",
            source_path=extract.output,
            target_path=partition_path(data.name, INTERVAL_DATE),
            tag=partition_tag(data.name, INTERVAL_DATE),
            pool="dvc_workspace",
        )
        assemble = TrainingSetAssemblyOperator(
            task_id="assemble_training_set",
            dataset=data.name,
            training_set=spec.name,
            asset=loop.training_set,
            pool="dvc_workspace",
            **spec.training.assembly_arguments(),
        )
        extract >> validate >> version_partition >> assemble
    return dag


def build_dataset_ingest(specs: Sequence[ModelSpec]) -> DAG:
    """``<dataset>__ingest``: extract -> validate -> version_partition -> ``trigger_training_set__<model>`` of a
    dataset that several specs name (they agree on its source, suite and ``schedule.ingest``: ``check_folder``),
    nightly; ``version_partition`` emits an event of :func:`partition_asset` with the day (lineage), and each trigger
    starts the run of that day (the same logical date) of ``<model>__training_set``, which assembles the model's set.
    One run per model and day, never lost: Airflow 3.3's asset-triggered runs leave behind events that arrive while
    the consumer's run is at ``max_active_runs`` or between two scheduler loops (apache/airflow#56050), and the
    factory scheduled the training sets on the Asset before; a cleared trigger re-runs that day's assembly (a no-op
    when the partition is unchanged). Start date:
    the earliest of the specs', end date: the latest (none when one has none), catchup when one catches up, run slots:
    the fewest. The ``quarantine`` mail goes once, to every recipient of the specs that want it."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sdk import DAG

    from mlops_provider.layout import partition_path, partition_tag
    from mlops_provider.operators.dvc import DvcVersionOperator
    from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
    from mlops_provider.operators.sql import SqlToParquetOperator
    from mlops_provider.utils.compat import cron_data_interval_timetable
    from mlops_provider.utils.templated_fields import INTERVAL_DATE

    first, data = specs[0], specs[0].dataset
    models = [spec.name for spec in specs]
    ends = [_end_date(spec) for spec in specs]
    mails = any(spec.notifications.email for spec in specs)
    doc = runbooks.dataset_ingest(data.name, models, str(first.resolve(first.validation)))
    with DAG(
        dag_id=dataset_ingest_id(data.name),
        auto_register=False,
        description=f"{data.name}: extract, validate and version one day (shared by {', '.join(models)})",
        schedule=cron_data_interval_timetable(first.schedule.ingest, timezone="UTC"),
        start_date=min(_start_date(spec) for spec in specs),
        end_date=None if None in ends else max(end for end in ends if end is not None),
        catchup=any(spec.schedule.catchup for spec in specs),
        max_active_runs=min(spec.schedule.max_active_ingest_runs for spec in specs),
        doc_md=doc + (runbooks.MAIL_DOWN if mails else ""),
        tags=["mlops", "ingest", "dataset", *models],
        default_args={
            "owner": first.owner,
            **_retries(2, retry_exponential_backoff=True, max_retry_delay=timedelta(minutes=10)),
        },
    ) as dag:
        extract = SqlToParquetOperator(task_id="extract", **data.extract_arguments())
        validate = GreatExpectationsValidateOperator(
            task_id="validate", data_path=extract.output, **first.validate_arguments(), **_notify_dataset(specs)
        )
        version_partition = DvcVersionOperator(
            task_id="version_partition",
            source_path=extract.output,
            target_path=partition_path(data.name, INTERVAL_DATE),
            tag=partition_tag(data.name, INTERVAL_DATE),
            asset=partition_asset(data.name),
            partition=INTERVAL_DATE,
            pool="dvc_workspace",
        )
        extract >> validate >> version_partition
        for spec in specs:
            version_partition >> TriggerDagRunOperator(
                task_id=f"trigger_training_set__{spec.name}",
                trigger_dag_id=spec.dag_id(TRAINING_SET),
                trigger_run_id=f"ingest__{INTERVAL_DATE}",
                logical_date="{{ data_interval_start }}",
                reset_dag_run=True,  # a cleared trigger re-runs the day's assembly
                fail_when_dag_is_paused=False,
            )
    return dag


def build_training_set(loop: Loop) -> DAG:
    """``<model>__training_set`` (a shared dataset): ``assemble_training_set`` of the run's day; the dataset's ingest
    starts one run a day (logical date: the day, as the ingest run's), after it versioned the day."""
    from mlops_provider.operators.training_set import TrainingSetAssemblyOperator
    from mlops_provider.utils.templated_fields import LOGICAL_DATE

    spec, data = loop.spec, loop.spec.dataset
    with loop_dag(
        loop,
        TRAINING_SET,
        description=f"assemble the training set of a day {loop.ids['ingest']} versioned (it starts the run)",
        schedule=None,
        max_active_runs=1,
        runbook=runbooks.training_set,
        tags=["ingest"],
        default_args=_retries(2, retry_exponential_backoff=True, max_retry_delay=timedelta(minutes=10)),
    ) as dag:
        TrainingSetAssemblyOperator(
            task_id="assemble_training_set",
            dataset=data.name,
            training_set=spec.name,
            asset=loop.training_set,
            partition=LOGICAL_DATE,  # the day the ingest started the run for (its data interval is "now")
            ingest_dag_id=loop.ids["ingest"],
            pool="dvc_workspace",
            **spec.training.assembly_arguments(),
        )
    return dag


def build_training(loop: Loop) -> DAG:
    """``<model>__training``: train (after ``retraining_rails`` when the spec schedules retraining), triggered."""
    from airflow.sdk import Param

    from mlops_provider.layout import training_set_path, training_set_tag
    from mlops_provider.operators.retraining import ScheduledRetrainingRailsOperator
    from mlops_provider.operators.training import TrainModelOperator

    spec, model = loop.spec, loop.spec.name
    retrain_schedule = spec.retraining.schedule
    with loop_dag(
        loop,
        "training",
        description="train, track and register a challenger",
        schedule=_cron_trigger(retrain_schedule) if retrain_schedule else None,
        max_active_runs=1,
        runbook=runbooks.training,
        tags=["training"],
        params={
            "reason": Param(
                "manual",
                enum=["manual", "bootstrap", "drift", "performance", "prediction_drift", "schedule"],
                description="why train now",
            ),
            "dataset_rev": Param(
                None,
                type=["null", "string"],
                description=f"data registry tag ({training_set_tag(model, '<day>')}) or commit id, not a branch; "
                "empty: the newest training set",
            ),
            "hyperparameters": Param({}, type="object", description='overrides, e.g. {"max_depth": 6}'),
            "detail": Param({}, type="object", description="context of the reason (drift summary, report location)"),
        },
        default_args=_retries(2, retry_exponential_backoff=True),
    ) as dag:
        train = TrainModelOperator(
            task_id="train",
            dataset_path=training_set_path(model),
            dataset_rev="{{ params.dataset_rev or '' }}",
            dataset_tag_pattern=training_set_tag(model, "*"),
            hyperparameters="{{ params.hyperparameters | tojson }}",
            model_name=model,
            trigger_reason="{{ 'schedule' if dag_run.run_type == 'scheduled' else params.reason }}",
            trigger_detail="{{ params.detail | tojson }}",
            model_asset=loop.challenger,
            **spec.train_arguments(),
        )
        if retrain_schedule:  # a scheduled run goes through the same rails as a triggered one
            rails = ScheduledRetrainingRailsOperator(
                task_id="retraining_rails", trigger_dag_id=loop.ids["training"], **spec.retraining.rails_arguments()
            )
            rails >> train
    return dag


def _cron_trigger(cron: str) -> Any:
    """A cron trigger timetable (imported only for a spec that schedules retraining: parse time)."""
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone="UTC")


def build_promotion(loop: Loop) -> DAG:
    """``<model>__promotion``: evaluate -> gate -> package -> shadow_check [-> approve] [-> deploy ->
    canary_rollout] -> promote, on the challenger Asset. With ``serving.endpoint`` the challenger is deployed on the
    model's endpoint at weight 0 and rolled out as a canary; ``promote`` moves ``champion`` once it serves 100%, and a
    rolled-back canary fails ``canary_rollout`` (``promote`` does not run)."""
    from airflow.sdk import Param

    from mlops_provider.operators.promotion import EvaluateModelOperator, ModelGateOperator, PromoteModelOperator
    from mlops_provider.operators.rollout import CanaryRolloutOperator, DeployModelVersionOperator
    from mlops_provider.operators.serving import PackageModelOperator, ShadowCheckOperator

    spec, model = loop.spec, loop.spec.name
    with loop_dag(
        loop,
        "promotion",
        description="evaluate the challenger, gate it, promote it to champion",
        schedule=[loop.challenger],
        max_active_runs=1,
        runbook=runbooks.promotion,
        tags=["promotion"],
        params={
            "version": Param(None, type=["null", "string"], description="version to evaluate; empty: alias challenger")
        },
        default_args=_retries(1),
    ) as dag:
        evaluate = EvaluateModelOperator(
            task_id="evaluate",
            model_name=model,
            challenger_version="{{ params.version or '' }}",
            model_asset=loop.challenger,
            **spec.evaluate_arguments(),
            **loop.notify("gate_rejection"),
        )
        evaluation = evaluate.output  # every later task reads its fields from the evaluation
        gate = ModelGateOperator(task_id="gate", evaluation=evaluation)
        package = PackageModelOperator(
            task_id="package", model_name=model, version=evaluation, **spec.package_arguments()
        )
        shadow_check = ShadowCheckOperator(
            task_id="shadow_check",
            package=package.output,
            dataset=spec.dataset.name,
            ledger_path=evaluation,
            **spec.gate.shadow_arguments(),
            **loop.notify("shadow_check_failure"),
        )
        promote = PromoteModelOperator(
            task_id="promote",
            model_name=model,
            version=evaluation,
            expected_champion=evaluation,
            pool="model_promotion",
            **loop.notify("promotion"),
        )
        chain: list[Any] = [evaluate, gate, package, shadow_check]
        if spec.gate.human_approval:  # the approval operators (Airflow's HITL) load only for a spec that asks
            from mlops_provider.operators.approval import PromotionApprovalOperator

            chain.append(
                PromotionApprovalOperator(
                    task_id="approve", model_name=model, evaluation=evaluation, **spec.gate.approval_arguments()
                )
            )
        if spec.serving.endpoint is not None:
            deploy = DeployModelVersionOperator(
                task_id="deploy",
                model_name=model,
                version=evaluation,
                capture=spec.capture_arguments() if spec.serving.capture.fraction > 0 else None,
                **spec.serving.deploy_arguments(),
            )
            canary_rollout = CanaryRolloutOperator(
                task_id="canary_rollout",
                model_name=model,
                version=evaluation,
                ledger_path=evaluation,
                move_champion=False,  # promote moves it (compare-and-set, the promotion notice)
                **spec.serving.rollout_arguments(),
                **loop.notify("canary_rollback"),
            )
            chain += [deploy, canary_rollout]
        for upstream, downstream in zip(chain, [*chain[1:], promote], strict=True):
            upstream >> downstream
    return dag


def build_drift_monitoring(loop: Loop) -> DAG:
    """``<model>__drift_monitoring``: the loop's controller, nightly: waits for the day's training set and a
    champion, checks drift and late-label performance, decides, triggers (re)training; ``retention`` beside it."""
    from airflow.sdk import Param

    from mlops_provider.layout import partition_tag, training_set_tag
    from mlops_provider.operators.evidently import CURRENTS, DriftReportOperator
    from mlops_provider.operators.performance import ModelPerformanceOperator
    from mlops_provider.operators.retention import RetentionOperator
    from mlops_provider.operators.retraining import (
        BootstrapTrainingOperator,
        ChampionBranchOperator,
        TriggerRetrainingOperator,
    )
    from mlops_provider.sensors.drift import DriftSensor, PreviousRunSensor
    from mlops_provider.sensors.dvc import DvcTagSensor
    from mlops_provider.sensors.mlflow import ChampionSensor
    from mlops_provider.utils.records import quarantine_relative
    from mlops_provider.utils.templated_fields import INTERVAL_DATE

    spec, model, dataset = loop.spec, loop.spec.name, loop.spec.dataset.name
    day_set = training_set_tag(model, INTERVAL_DATE)
    with loop_dag(
        loop,
        "drift_monitoring",
        end_date=_end_date(spec),
        description="daily drift and late-label check of the champion; triggers (re)training",
        schedule=loop.daily(),
        catchup=spec.schedule.catchup,
        max_active_runs=1,
        runbook=runbooks.drift_monitoring,
        tags=["monitoring"],
        default_args=_retries(1),
        params={
            "current": Param(
                spec.monitoring_current,
                enum=list(CURRENTS),
                description="the drift check's current data for this run: 'served' (the rows the live endpoint "
                "captured on the run's day, its data interval) or 'ingested' (the day's validated partition); "
                "the default is the spec's monitoring.current",
            ),
        },
    ) as dag:
        wait_for_training_set = DvcTagSensor(
            task_id="wait_for_training_set",
            tag=day_set,
            abandon_paths=[quarantine_relative(dataset, INTERVAL_DATE)],  # relative: under the storage root
            # gives up when the day's ingest run failed, versioned nothing or is missing; a shared dataset's ingest
            # versions the partition, and the model's training-set DAG the tag after it
            ingest_dag_id=loop.ids["ingest"],
            ingest_tag=partition_tag(dataset, INTERVAL_DATE) if loop.shared else None,
            assembly_dag_id=loop.ids[TRAINING_SET] if loop.shared else None,
            poll_interval=5,
            start_from_trigger=True,  # checked and ended in the triggerer from the start: no task process a day
        )
        bootstrap_training = BootstrapTrainingOperator(
            task_id="bootstrap_training",
            dataset=dataset,
            model_name=model,
            dataset_rev=day_set,
            trigger_dag_id=loop.ids["training"],
        )
        wait_for_champion = ChampionSensor(task_id="wait_for_champion", model_name=model)
        # The checks run after the fork (a day with a champion: bootstrap_training and wait_for_champion are skipped
        # without running) or after the champion sensor (the cold start): whichever of the two ran.
        after_fork = "none_failed_min_one_success"
        champion_check = ChampionBranchOperator(
            task_id="champion_check",
            model_name=model,
            with_champion=["drift_report", "performance_check"],
            without_champion=["bootstrap_training", "wait_for_champion", "drift_report", "performance_check"],
        )
        drift_report = DriftReportOperator(
            task_id="drift_report",
            trigger_rule=after_fork,
            dataset=dataset,
            model_name=model,
            **spec.features.drift_arguments(),
            **spec.monitoring.drift_arguments(),
            current="{{ params.current }}",  # the spec's monitoring.current unless the run's conf says otherwise
        )
        performance_check = ModelPerformanceOperator(
            task_id="performance_check",
            dataset=dataset,
            model_name=model,
            trigger_rule=after_fork,
            **spec.performance_arguments(),
        )
        if spec.monitoring.consecutive_days > 1:
            # The alarm reads the earlier days' performance records: the check waits for the previous run's own
            # (a backfill that overlaps days still scores them in date order); no upstream: it waits from the start.
            performance_check << PreviousRunSensor(
                task_id="previous_performance_check", task_ids=["performance_check"], poll_interval=2
            )
        drift_sensor = DriftSensor(
            task_id="drift_sensor",
            summary_path=drift_report.output,
            performance_path=performance_check.output,
            poll_interval=5,
            # its inputs are there when it is ready: decided in the triggerer, no task process (a spec that mails on
            # drift keeps it on a worker, where its success callback runs)
            start_from_trigger=not loop.notify("drift"),
            **loop.notify("drift"),
        )
        # The days decide in date order (the rails count the triggers of the days before): a day's trigger waits
        # for the previous run's; the checks before it may overlap when a backfill runs several days at once.
        previous_decision = PreviousRunSensor(
            task_id="previous_decision", task_ids=["trigger_training"], poll_interval=2
        )
        trigger_training = TriggerRetrainingOperator(
            task_id="trigger_training",
            dataset=dataset,
            decision=drift_sensor.output,
            dataset_rev=day_set,
            trigger_dag_id=loop.ids["training"],
            **spec.retraining.trigger_arguments(),
            **loop.notify("retraining"),
        )
        # On its own (no upstream, no downstream): it never holds up the loop, and its failure shows on its own.
        RetentionOperator(
            task_id="retention",
            model_name=model,
            dataset=dataset,
            **spec.retention.retention_arguments(),
            capture_days=spec.serving.capture.retention_days,
        )
        wait_for_training_set >> champion_check >> [bootstrap_training, wait_for_champion]
        champion_check >> [drift_report, performance_check]
        wait_for_champion >> [drift_report, performance_check]
        if spec.retraining.human_review:
            from mlops_provider.operators.approval import RetrainingApprovalOperator

            review = RetrainingApprovalOperator(
                task_id="review_retraining",
                model_name=model,
                decision=drift_sensor.output,
                **spec.retraining.review_arguments(),
            )
            [drift_report, performance_check] >> drift_sensor >> review >> previous_decision >> trigger_training
        else:
            [drift_report, performance_check] >> drift_sensor >> previous_decision >> trigger_training
    return dag


def build_rollback(loop: Loop) -> DAG:
    """``<model>__rollback``: restore the previous champion (manual, with a reason) [-> serve_champion: the
    endpoint's traffic moves to it, with ``serving.endpoint``]."""
    from airflow.sdk import Param

    from mlops_provider.operators.promotion import RollbackModelOperator
    from mlops_provider.operators.rollout import ServeVersionOperator

    with loop_dag(
        loop,
        "rollback",
        description="restore the previous champion (manual, with a reason)",
        schedule=None,
        runbook=runbooks.rollback,
        tags=["promotion", "rollback"],
        params={
            "reason": Param("", type="string", minLength=3, description="why roll back (recorded on the versions)")
        },
        default_args=_retries(1),
    ) as dag:
        rollback = RollbackModelOperator(
            task_id="rollback",
            model_name=loop.spec.name,
            reason="{{ params.reason }}",
            pool="model_promotion",
            **loop.notify("rollback"),
        )
        if loop.spec.serving.endpoint is not None:
            serve = ServeVersionOperator(
                task_id="serve_champion",
                model_name=loop.spec.name,
                version=rollback.output,
                reason="rollback: {{ params.reason }}",
                pool="model_promotion",
                capture=loop.spec.capture_arguments() if loop.spec.serving.capture.fraction > 0 else None,
                **loop.spec.serving.deploy_arguments(),
            )
            rollback >> serve
    return dag


#: The stages of a model's loop and their builders, in the order the loop runs them (the DAG ids end in the key).
STAGES: dict[str, Callable[[Loop], DAG]] = {
    "ingest": build_ingest,
    "training": build_training,
    "promotion": build_promotion,
    "drift_monitoring": build_drift_monitoring,
    "rollback": build_rollback,
}


#: The stage of a model's training-set DAG (a shared dataset: it replaces ``ingest`` among the model's DAGs).
TRAINING_SET = "training_set"
#: The builders of a model whose dataset is shared: ``ingest`` builds the model's training-set DAG.
SHARED_STAGES: dict[str, Callable[[Loop], DAG]] = {**STAGES, "ingest": build_training_set}


def build_dags(spec: ModelSpec, shared: bool = False) -> dict[str, DAG]:
    """The five DAGs of ``spec``'s loop, by DAG id. They are not auto-registered: the DAG file registers what it puts
    in its globals, so a model whose DAGs fail to build leaves none behind (:func:`build_all`). ``shared``: other
    specs name its dataset: ``<model>__training_set`` in place of ``<model>__ingest`` (the dataset's ingest DAG is
    :func:`build_dataset_ingest`'s)."""
    loop = Loop.of(spec, shared)
    return {loop.ids[stage]: build(loop) for stage, build in loop.stages().items()}


def _notify_dataset(specs: Sequence[ModelSpec]) -> dict[str, Any]:
    """The callback arguments that mail ``quarantine`` once to every recipient of the specs that want it ({} when
    none does); the mail names the dataset's models, its settings (connection, sender) are the first such spec's."""
    wanting = [spec for spec in specs if spec.notifications.wants("quarantine")]
    if not wanting:
        return {}
    from mlops_provider.notifications.mail import callbacks

    recipients = list(dict.fromkeys(address for spec in wanting for address in spec.notifications.email))
    settings = wanting[0].notifications
    return callbacks(
        "quarantine",
        model_name=", ".join(spec.name for spec in specs),
        to=recipients,
        smtp_conn_id=settings.smtp_conn_id,
        from_email=settings.from_email,
    )


def _notify(spec: ModelSpec, event: str) -> dict[str, Any]:
    """The callback arguments that mail ``event`` per the spec's ``notifications`` ({} when not wanted)."""
    settings = spec.notifications
    if not settings.wants(event):
        return {}
    from mlops_provider.notifications.mail import callbacks

    return callbacks(
        event,
        model_name=spec.name,
        to=settings.email,
        smtp_conn_id=settings.smtp_conn_id,
        from_email=settings.from_email,
    )


#: The stage of the placeholder DAG that stands for a spec file the factory could not use.
SPEC_ERROR = "spec_error"
#: The spec key behind each DAG's timetable (a timetable error is named by its key).
_TIMETABLE_KEYS = {
    "ingest": "schedule.ingest",
    "drift_monitoring": "schedule.ingest",
    "training": "retraining.schedule",
}


def build_all(folder: str | Path) -> dict[str, DAG]:
    """The DAGs of every spec in ``folder`` (``*.yaml``), by DAG id, each spec on its own: a file that cannot be
    used (:func:`mlops_provider.loop.spec.check_folder`: bad YAML, a bad key, a missing file it names, a name another
    file has, a dataset another model defines differently, DAGs that do not build) is logged at ERROR and becomes
    one placeholder DAG, :func:`spec_error_dag`, while every other model's DAGs load as before. A missing folder
    raises (no model can load).

    A task process parses the file for one DAG (Airflow's parsing context names it, ``get_parsing_context()``):
    then only that DAG's model's DAGs (or its shared dataset's ingest) are built, the same as the DAG processor
    builds them; a DAG it cannot place that way (a placeholder, the outbox) gets every DAG."""
    from airflow.sdk import get_parsing_context

    wanted = get_parsing_context().dag_id
    if wanted:
        dags = _build(folder, only=wanted)
        if wanted in dags:
            return dags
    return _build(folder, only=None)


def _build(folder: str | Path, only: str | None) -> dict[str, DAG]:
    """:func:`build_all`'s DAGs; with ``only`` (a DAG id), only the units (a model's DAGs, a shared dataset's
    ingest) that may hold it, and no placeholder or outbox."""
    checked = check_folder(folder, cached=True)  # the validated-spec cache: every parse reads every spec
    dags: dict[str, DAG] = {}
    problems = list(checked.problems)
    mailing = []
    shared = shared_datasets(checked.specs)
    unbuilt: set[str] = set()  # shared datasets whose ingest could not be built
    ingest_ids = {dataset_ingest_id(d) for d in shared}  # a model must not take one of these DAG ids
    for dataset, group in shared.items():
        if only is not None and only != dataset_ingest_id(dataset):
            continue
        try:
            dag = build_dataset_ingest(group)
            _validate("ingest", dag)
        except Exception as exc:
            message = str(exc) if isinstance(exc, SpecError) else f"{type(exc).__name__}: {exc}"
            unbuilt.add(dataset)
            problems += [
                SpecProblem(_spec_path(spec), f"{spec.path}: the ingest DAG of dataset {dataset!r} could not be built: "
                            f"{message}")
                for spec in group
            ]  # fmt: skip
        else:
            dags[dag.dag_id] = dag
    for spec in checked.specs:
        if only is not None and not only.startswith(f"{spec.name}__"):
            continue
        if spec.dataset.name in unbuilt:
            continue  # its dataset's ingest could not be built: named above
        try:
            built = build_dags(spec, shared=spec.dataset.name in shared)
            for dag_id, dag in built.items():
                _validate(dag_id.rpartition("__")[2], dag)
            clash = sorted(set(built) & ingest_ids)
            if clash:
                raise SpecError(
                    f"name: model {spec.name!r} would build DAG {clash[0]}, which is already the ingest DAG of the "
                    f"shared dataset {clash[0].removesuffix('__ingest')!r}; give the model another name"
                )
        except Exception as exc:
            message = (
                str(exc) if isinstance(exc, SpecError) else f"the DAGs could not be built: {type(exc).__name__}: {exc}"
            )
            problems.append(SpecProblem(_spec_path(spec), f"{spec.path}: {message}"))
        else:
            dags.update(built)
            if spec.notifications.email:
                mailing.append(spec)
    if only is not None:
        return dags
    for problem in sorted(problems, key=lambda p: p.path):
        log.error("Model spec %s is not used; its model's DAGs are not loaded:\n%s", problem.path, problem.message)
        placeholder = spec_error_dag(problem)
        dags[placeholder.dag_id] = placeholder
    if mailing:
        outbox = build_outbox_dag(min(_start_date(spec) for spec in mailing))
        dags[outbox.dag_id] = outbox
    return dags


def _spec_path(spec: ModelSpec) -> Path:
    assert spec.path is not None  # set by load_spec
    return spec.path


def _validate(stage: str, dag: DAG) -> None:
    """What the DAG processor checks before it takes a DAG (so a bad cron fails here, naming its key)."""
    from airflow.exceptions import AirflowTimetableInvalid

    try:
        dag.validate()
    except AirflowTimetableInvalid as exc:
        key = _TIMETABLE_KEYS.get(stage, "schedule")
        raise SpecError(f"{key}: not a valid cron expression or preset ({exc}); DAG {dag.dag_id}") from None


def spec_error_dag(problem: SpecProblem) -> DAG:
    """The placeholder of a spec file the factory could not use: DAG ``<file stem>__spec_error`` (``<stem>_yml__...``
    for a ``*.yml``), schedule None, tags ``mlops`` and ``spec_error``, whose runbook quotes the problem and says
    what to do, and whose one task, ``spec_error``, fails with the message (no retries: only fixing the file helps)."""
    import functools

    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    path = problem.path
    stem = path.stem if path.suffix == ".yaml" else path.name
    first = problem.message.splitlines()[0].removeprefix(f"{path}: ")
    with DAG(
        dag_id=f"{re.sub(r'[^A-Za-z0-9_-]', '_', stem)}__{SPEC_ERROR}",
        description=f"BROKEN model spec {path.name}: {first}"[:480],
        schedule=None,
        start_date=None,
        catchup=False,
        doc_md=runbooks.spec_error(str(path), problem.message),
        tags=["mlops", SPEC_ERROR],
        default_args={"owner": "mlops", "retries": 0},
        auto_register=False,
    ) as dag:
        PythonOperator(task_id=SPEC_ERROR, python_callable=functools.partial(_fail, problem.message))
    return dag


def _fail(message: str) -> None:
    from mlops_provider.utils.compat import AirflowFailException

    raise AirflowFailException(message)


def build_outbox_dag(start_date: Any) -> DAG:
    """The DAG that sends the on-call mail a notifier could not send (mail was down), hourly, one run at a time.

    A scheduled sender rather than a flush inside the next notification: events can be days apart, a flush inside a
    task callback would spend the few seconds Airflow gives callbacks, and two callbacks flushing at once could send
    a mail twice; one sender at a time, visible in the UI (red while mail is down), cannot."""
    from airflow.sdk import DAG

    from mlops_provider.notifications.mail import OUTBOX_DAG_ID
    from mlops_provider.operators.notifications import SendNotificationOutboxOperator

    with DAG(
        dag_id=OUTBOX_DAG_ID,
        description="send the on-call mail that could not be sent when it happened (notification outbox)",
        schedule="@hourly",
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        doc_md=runbooks.notification_outbox(),
        tags=["mlops", "notifications"],
        default_args=_retries(2, retry_exponential_backoff=True, max_retry_delay=timedelta(minutes=10)),
    ) as dag:
        SendNotificationOutboxOperator(task_id="send_outbox")
    return dag
