"""The DAG factory: the five DAGs of a model's loop, built from its spec (Airflow's dynamic DAG pattern).

``build_dags(spec)`` returns ``{dag_id: DAG}`` for ingest, training, promotion, drift monitoring and rollback,
every id prefixed by the model (``<model>__ingest`` ...). ``build_all(folder)`` does it for every spec of a
folder; a DAG file puts the result in its globals. Everything model-specific comes from the spec; what is keyed by
the model (so two models, even on one dataset, never collide): DAG ids, training-set path and tags
(``data/<model>/training_set.parquet``, ``training-set/<model>/<day>``), drift, performance and retraining
records, MLflow experiment, registered model and aliases, Asset names. Shared on purpose: a dataset's versioned
partitions (``partition/<dataset>/<day>``; models on one dataset must agree on its source and suite, which
``check_folder`` checks) and the pools ``dvc_workspace`` (one data registry, one writer) and ``model_promotion``.

Imports only the Task SDK and the operator modules (no heavy library at parse time).
"""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider import runbooks
from mlops_provider.spec import ModelSpec, SpecError, SpecProblem, check_folder

if TYPE_CHECKING:
    from airflow.sdk import DAG

STAGES = ("ingest", "training", "promotion", "drift_monitoring", "rollback")
#: Overrides every spec's ``schedule.start_date`` (the demo and the tests set it).
START_DATE_ENV = "MLOPS_START_DATE"

log = logging.getLogger(__name__)


def _start_date(spec: ModelSpec):  # noqa: ANN202 (a pendulum DateTime)
    import pendulum

    configured = os.environ.get(START_DATE_ENV)
    return pendulum.parse(configured or spec.schedule.start_date.isoformat(), tz="UTC")


def _retries(count: int, **extra: object) -> dict[str, object]:
    return {"retries": count, "retry_delay": timedelta(seconds=30), **extra}


def build_dags(spec: ModelSpec) -> dict[str, DAG]:
    """The five DAGs of ``spec``'s loop, by DAG id. They are not auto-registered: the DAG file registers what it puts
    in its globals, so a model whose DAGs fail to build leaves none behind (:func:`build_all`)."""
    from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param
    from airflow.timetables.trigger import CronTriggerTimetable

    from mlops_provider.layout import partition_path, partition_tag, training_set_path, training_set_tag
    from mlops_provider.operators.approval import PromotionApprovalOperator, RetrainingApprovalOperator
    from mlops_provider.operators.dvc import DvcVersionOperator
    from mlops_provider.operators.evidently import DriftReportOperator
    from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
    from mlops_provider.operators.performance import ModelPerformanceOperator
    from mlops_provider.operators.promotion import (
        EvaluateModelOperator,
        ModelGateOperator,
        PromoteModelOperator,
        RollbackModelOperator,
    )
    from mlops_provider.operators.retention import RetentionOperator
    from mlops_provider.operators.retraining import (
        BootstrapTrainingOperator,
        ScheduledRetrainingRailsOperator,
        TriggerRetrainingOperator,
    )
    from mlops_provider.operators.serving import PackageModelOperator, ShadowCheckOperator
    from mlops_provider.operators.sql import SqlToParquetOperator
    from mlops_provider.operators.training import TrainModelOperator
    from mlops_provider.operators.training_set import TrainingSetAssemblyOperator
    from mlops_provider.sensors.drift import DriftSensor
    from mlops_provider.sensors.dvc import DvcTagSensor
    from mlops_provider.sensors.mlflow import ChampionSensor
    from mlops_provider.templates import INTERVAL_DATE

    model, data = spec.name, spec.dataset
    ids = {stage: spec.dag_id(stage) for stage in STAGES}
    training_set = Asset(name=f"{model}_training_set", uri=f"x-mlops://training-set/{model}")
    challenger = Asset(name=f"{model}_challenger", uri=f"x-mlops://model/{model}/challenger")
    start = _start_date(spec)
    tags = ["mlops", model]
    owner = {"owner": spec.owner}
    daily = CronDataIntervalTimetable(spec.schedule.ingest, timezone="UTC")
    facts = runbooks.Facts.of(spec, ids, training_set.name, challenger.name)
    dags: dict[str, DAG] = {}

    with DAG(
        dag_id=ids["ingest"],
        auto_register=False,
        description=f"{model}: extract, validate and version one day of {data.name}; assemble the training set",
        schedule=daily,
        start_date=start,
        catchup=spec.schedule.catchup,
        max_active_runs=spec.schedule.max_active_ingest_runs,
        doc_md=runbooks.ingest(facts),
        tags=[*tags, "ingest"],
        default_args={**owner, **_retries(2, retry_exponential_backoff=True, max_retry_delay=timedelta(minutes=10))},
    ) as ingest:
        extract = SqlToParquetOperator(
            task_id="extract",
            conn_id=data.connection,
            table=data.table,
            timestamp_column=data.timestamp_column,
            parse_dates=data.parse_dates or [data.timestamp_column],
            dataset=data.name,
            chunk_rows=data.chunk_rows,
        )
        validate = GreatExpectationsValidateOperator(
            task_id="validate",
            data_path="{{ ti.xcom_pull(task_ids='extract')['path'] }}",
            suite_path=str(spec.resolve(spec.validation)),
            dataset=data.name,
            timestamp_column=data.timestamp_column,
            chunk_rows=data.chunk_rows,
            **_notify(spec, "quarantine"),
        )
        version_partition = DvcVersionOperator(
            task_id="version_partition",
            source_path="{{ ti.xcom_pull(task_ids='extract')['path'] }}",
            target_path=partition_path(data.name, INTERVAL_DATE),
            tag=partition_tag(data.name, INTERVAL_DATE),
            pool="dvc_workspace",
        )
        assemble = TrainingSetAssemblyOperator(
            task_id="assemble_training_set",
            dataset=data.name,
            training_set=model,
            window_days=spec.training.window_days,
            min_partitions=spec.training.min_days,
            first_day=start.date().isoformat(),
            asset=training_set,
            pool="dvc_workspace",
        )
        extract >> validate >> version_partition >> assemble
    dags[ingest.dag_id] = ingest

    retrain_schedule = spec.retraining.schedule
    with DAG(
        dag_id=ids["training"],
        auto_register=False,
        description=f"{model}: train, track and register a challenger",
        schedule=CronTriggerTimetable(retrain_schedule, timezone="UTC") if retrain_schedule else None,
        start_date=start,
        catchup=False,
        max_active_runs=1,
        doc_md=runbooks.training(facts),
        tags=[*tags, "training"],
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
        default_args={**owner, **_retries(2, retry_exponential_backoff=True)},
    ) as training:
        train = TrainModelOperator(
            task_id="train",
            dataset_path=training_set_path(model),
            dataset_rev="{{ params.dataset_rev or '' }}",
            dataset_tag_pattern=training_set_tag(model, "*"),
            entrypoint=str(spec.resolve(spec.training.entrypoint)),
            model_schema=spec.entrypoint_schema(),
            holdout=spec.holdout,
            hyperparameter_spec=str(spec.resolve(spec.training.hyperparameters)),
            hyperparameters="{{ params.hyperparameters | tojson }}",
            experiment_name=spec.experiment,
            model_name=model,
            trigger_reason="{{ 'schedule' if dag_run.run_type == 'scheduled' else params.reason }}",
            trigger_detail="{{ params.detail | tojson }}",
            runner=spec.training.runner,
            image=spec.training.image,
            model_asset=challenger,
            execution_timeout=timedelta(minutes=spec.training.timeout_minutes),
        )
        if retrain_schedule:  # a scheduled run goes through the same rails as a triggered one
            rails = ScheduledRetrainingRailsOperator(
                task_id="retraining_rails",
                trigger_dag_id=ids["training"],
                cooldown_days=spec.retraining.cooldown_days,
                max_per_week=spec.retraining.max_per_week,
                max_per_real_week=spec.retraining.max_per_real_week,
            )
            rails >> train
    dags[training.dag_id] = training

    evaluated = "{{ ti.xcom_pull(task_ids='evaluate')['%s'] }}"
    with DAG(
        dag_id=ids["promotion"],
        auto_register=False,
        description=f"{model}: evaluate the challenger, gate it, promote it to champion",
        schedule=[challenger],
        start_date=start,
        catchup=False,
        max_active_runs=1,
        doc_md=runbooks.promotion(facts),
        tags=[*tags, "promotion"],
        params={
            "version": Param(None, type=["null", "string"], description="version to evaluate; empty: alias challenger")
        },
        default_args={**owner, **_retries(1)},
    ) as promotion:
        behaviour = spec.gate.behaviour_tests
        evaluate = EvaluateModelOperator(
            task_id="evaluate",
            model_name=model,
            challenger_version="{{ params.version or '' }}",
            model_asset=challenger,
            gate_rules=spec.gate.rules(spec.segments[0] if spec.segments else None),
            behaviour_tests=str(spec.resolve(behaviour)) if behaviour else None,
            label_column=spec.label.column,
            positive_class=spec.label.positive_class,
            **_notify(spec, "gate_rejection"),
        )
        gate = ModelGateOperator(task_id="gate", evaluation=evaluate.output)
        package = PackageModelOperator(
            task_id="package",
            model_name=model,
            version=evaluated % "challenger_version",
            serving_dir=str(spec.resolve(spec.serving.directory)),
            requirements=str(spec.resolve(spec.serving.requirements)),
        )
        shadow_check = ShadowCheckOperator(
            task_id="shadow_check",
            package=package.output,
            dataset=data.name,
            p95_ms=spec.gate.shadow_p95_ms,
            ledger_path=evaluated % "ledger_path",
            **_notify(spec, "shadow_check_failure"),
        )
        promote = PromoteModelOperator(
            task_id="promote",
            model_name=model,
            version=evaluated % "challenger_version",
            expected_champion=evaluated % "champion_version",
            pool="model_promotion",
            **_notify(spec, "promotion"),
        )
        if spec.gate.human_approval:
            approve = PromotionApprovalOperator(
                task_id="approve",
                model_name=model,
                evaluation=evaluate.output,
                response_timeout=timedelta(hours=spec.gate.approval_timeout_hours),
            )
            evaluate >> gate >> package >> shadow_check >> approve >> promote
        else:
            evaluate >> gate >> package >> shadow_check >> promote
    dags[promotion.dag_id] = promotion

    with DAG(
        dag_id=ids["drift_monitoring"],
        auto_register=False,
        description=f"{model}: daily drift and late-label check of the champion; triggers (re)training",
        schedule=daily,
        # the first day with a training set (training.min_days of data): no run waits for a set that cannot exist
        start_date=start.add(days=spec.training.min_days - 1),
        catchup=spec.schedule.catchup,
        max_active_runs=1,
        doc_md=runbooks.drift_monitoring(facts),
        tags=[*tags, "monitoring"],
        default_args={**owner, **_retries(1)},
    ) as monitoring:
        wait_for_training_set = DvcTagSensor(
            task_id="wait_for_training_set",
            tag=training_set_tag(model, INTERVAL_DATE),
            abandon_paths=[f"quarantine/{data.name}/{INTERVAL_DATE}"],  # relative: under the storage root
            poll_interval=5,
        )
        bootstrap_training = BootstrapTrainingOperator(
            task_id="bootstrap_training",
            dataset=data.name,
            model_name=model,
            dataset_rev=training_set_tag(model, INTERVAL_DATE),
            trigger_dag_id=ids["training"],
        )
        wait_for_champion = ChampionSensor(task_id="wait_for_champion", model_name=model)
        drift_report = DriftReportOperator(
            task_id="drift_report",
            dataset=data.name,
            model_name=model,
            **spec.features.drift_arguments(),
            drift_share_threshold=spec.monitoring.drift_share,
            reference=spec.monitoring.reference,
            reference_days=spec.monitoring.reference_days,
            season_days=spec.monitoring.season_days,
            signal=spec.monitoring.drift_signal,
            weighted_drift_threshold=spec.monitoring.weighted_drift_threshold,
            learned_drift_threshold=spec.monitoring.learned_drift_threshold,
            learned_drift_k=spec.monitoring.learned_drift_k,
            drift_calibration_days=spec.monitoring.drift_calibration_days,
            max_rows=spec.monitoring.sample_rows,
        )
        performance_check = ModelPerformanceOperator(
            task_id="performance_check",
            dataset=data.name,
            model_name=model,
            metric=spec.monitoring.metric,
            floor=spec.performance_floor,
            label_column=spec.label.column,
            positive_class=spec.label.positive_class,
            label_delay_days=spec.label.delay_days,
            threshold=spec.gate.threshold,
            estimate=spec.monitoring.estimate,
            trigger_on_estimate=spec.monitoring.trigger_on_estimate,
            estimate_calibration=spec.monitoring.estimate_calibration,
            estimate_alarm=spec.monitoring.estimate_alarm,
            prediction_drift=spec.monitoring.prediction_drift,
            prediction_drift_threshold=spec.monitoring.prediction_drift_threshold,
            trigger_on_prediction_drift=spec.monitoring.trigger_on_prediction_drift,
            label_window_days=spec.monitoring.label_window_days,
            min_labelled_rows=spec.monitoring.min_labelled_rows,
            performance_alarm=spec.monitoring.performance_alarm,
            consecutive_days=spec.monitoring.consecutive_days,
        )
        drift_sensor = DriftSensor(
            task_id="drift_sensor",
            summary_path="{{ ti.xcom_pull(task_ids='drift_report')['summary_path'] }}",
            performance_path="{{ ti.xcom_pull(task_ids='performance_check')['summary_path'] }}",
            poll_interval=5,
            **_notify(spec, "drift"),
        )
        trigger_training = TriggerRetrainingOperator(
            task_id="trigger_training",
            dataset=data.name,
            decision=drift_sensor.output,
            dataset_rev=training_set_tag(model, INTERVAL_DATE),
            trigger_dag_id=ids["training"],
            cooldown_days=spec.retraining.cooldown_days,
            max_per_week=spec.retraining.max_per_week,
            max_per_real_week=spec.retraining.max_per_real_week,
            max_backfill_per_real_week=spec.retraining.max_backfill_per_real_week,
            backfill_lag_days=spec.retraining.backfill_lag_days,
            **_notify(spec, "retraining"),
        )
        # On its own (no upstream, no downstream): it never holds up the loop, and its failure shows on its own.
        RetentionOperator(task_id="retention", model_name=model, dataset=data.name, days=spec.retention.days)
        wait_for_training_set >> [bootstrap_training, wait_for_champion]
        wait_for_champion >> [drift_report, performance_check]
        if spec.retraining.human_review:
            review = RetrainingApprovalOperator(
                task_id="review_retraining",
                model_name=model,
                decision=drift_sensor.output,
                response_timeout=timedelta(hours=spec.retraining.review_timeout_hours),
            )
            [drift_report, performance_check] >> drift_sensor >> review >> trigger_training
        else:
            [drift_report, performance_check] >> drift_sensor >> trigger_training
    dags[monitoring.dag_id] = monitoring

    with DAG(
        dag_id=ids["rollback"],
        auto_register=False,
        description=f"{model}: restore the previous champion (manual, with a reason)",
        schedule=None,
        start_date=start,
        catchup=False,
        doc_md=runbooks.rollback(facts),
        tags=[*tags, "promotion", "rollback"],
        params={
            "reason": Param("", type="string", minLength=3, description="why roll back (recorded on the versions)")
        },
        default_args={**owner, **_retries(1)},
    ) as rollback:
        RollbackModelOperator(
            task_id="rollback",
            model_name=model,
            reason="{{ params.reason }}",
            pool="model_promotion",
            **_notify(spec, "rollback"),
        )
    dags[rollback.dag_id] = rollback
    if spec.notifications.email:
        for built in dags.values():
            built.doc_md = (built.doc_md or "") + runbooks.MAIL_DOWN
    return dags


def _notify(spec: ModelSpec, event: str) -> dict[str, Any]:
    """The callback arguments that mail ``event`` per the spec's ``notifications`` ({} when not wanted)."""
    settings = spec.notifications
    if not settings.wants(event):
        return {}
    from mlops_provider.notifications import callbacks

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
    used (:func:`mlops_provider.spec.check_folder`: bad YAML, a bad key, a missing file it names, a name another
    file has, a dataset another model defines differently, DAGs that do not build) is logged at ERROR and becomes
    one placeholder DAG, :func:`spec_error_dag`, while every other model's DAGs load as before. A missing folder
    raises (no model can load)."""
    checked = check_folder(folder)
    dags: dict[str, DAG] = {}
    problems = list(checked.problems)
    mailing = []
    for spec in checked.specs:
        try:
            built = build_dags(spec)
            for stage in STAGES:
                _validate(stage, built[spec.dag_id(stage)])
        except Exception as exc:
            message = (
                str(exc) if isinstance(exc, SpecError) else f"the DAGs could not be built: {type(exc).__name__}: {exc}"
            )
            problems.append(SpecProblem(_spec_path(spec), f"{spec.path}: {message}"))
        else:
            dags.update(built)
            if spec.notifications.email:
                mailing.append(spec)
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
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)


def build_outbox_dag(start_date: Any) -> DAG:
    """The DAG that sends the on-call mail a notifier could not send (mail was down), hourly, one run at a time.

    A scheduled sender rather than a flush inside the next notification: events can be days apart, a flush inside a
    task callback would spend the few seconds Airflow gives callbacks, and two callbacks flushing at once could send
    a mail twice; one sender at a time, visible in the UI (red while mail is down), cannot."""
    from airflow.sdk import DAG

    from mlops_provider.notifications import OUTBOX_DAG_ID
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
