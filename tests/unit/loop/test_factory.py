"""The DAG factory: five DAGs per spec, everything model-specific from the spec, nothing shared between two models
on one dataset except the dataset's partitions."""

from __future__ import annotations

import pytest
import yaml

from mlops_provider.loop.factory import STAGES, build_dags
from mlops_provider.loop.spec import load_spec, parse_spec
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

MODELS = PROJECT_ROOT / "include" / "models"


def twin_of(name: str, **changes):
    """The churn spec under another model name (same dataset), with ``changes`` applied to its YAML data."""
    path = MODELS / "churn_classifier.yaml"
    data = yaml.safe_load(path.read_text())
    data["name"] = name
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        data.setdefault(section, {})[leaf] = value
    return parse_spec(data, path)  # same folder: the relative paths resolve


def task(dags, model: str, stage: str, task_id: str):
    return dags[f"{model}__{stage}"].get_task(task_id)


def test_five_dags_per_spec_prefixed_by_the_model():
    spec = load_spec(MODELS / "card_fraud.yaml")
    dags = build_dags(spec)
    assert sorted(dags) == sorted(f"card_fraud__{s}" for s in STAGES)
    train = task(dags, "card_fraud", "training", "train")
    assert train.model_name == "card_fraud" and train.model_schema["label"] == "is_fraud"
    assert train.split.key == "card_id" and train.split.fraction == 0.25
    check = task(dags, "card_fraud", "drift_monitoring", "performance_check")
    assert (check.label_column, check.label_delay_days, check.floor) == ("is_fraud", 3, 0.68)
    drift = task(dags, "card_fraud", "drift_monitoring", "drift_report")
    assert "card_present" not in drift.numerical_columns  # excluded from drift in the spec
    assert drift.column_methods == {"hour_of_day": "psi"} and drift.column_thresholds == {"hour_of_day": 0.2}
    trigger = task(dags, "card_fraud", "drift_monitoring", "trigger_training")
    assert trigger.trigger_dag_id == "card_fraud__training" and (trigger.cooldown_days, trigger.max_per_week) == (1, 3)
    evaluate = task(dags, "card_fraud", "promotion", "evaluate")
    assert evaluate.gate_rules["segment_column"] == "channel" and evaluate.gate_rules["floors"] == {"roc_auc": 0.7}


def test_two_models_on_one_dataset_share_only_its_partitions():
    first, second = build_dags(twin_of("churn_a")), build_dags(twin_of("churn_b"))
    assert not set(first) & set(second)
    a, b = (task(d, m, "ingest", "assemble_training_set") for d, m in ((first, "churn_a"), (second, "churn_b")))
    assert (a.dataset, b.dataset) == ("customer_activity", "customer_activity")  # the same partitions
    assert (a.training_set, b.training_set) == ("churn_a", "churn_b")  # their own training sets
    assert a.asset.name != b.asset.name
    train_a, train_b = task(first, "churn_a", "training", "train"), task(second, "churn_b", "training", "train")
    assert train_a.dataset_path != train_b.dataset_path and train_a.model_asset.name != train_b.model_asset.name
    sensor_a = task(first, "churn_a", "drift_monitoring", "wait_for_training_set")
    assert sensor_a.tag.startswith("training-set/churn_a/")
    boot_b = task(second, "churn_b", "drift_monitoring", "bootstrap_training")
    assert boot_b.trigger_dag_id == "churn_b__training"


def test_an_optional_retraining_schedule_schedules_the_training_dag_with_reason_schedule():
    plain = build_dags(twin_of("churn_a"))["churn_a__training"]
    weekly = build_dags(twin_of("churn_w", **{"retraining.schedule": "@weekly"}))["churn_w__training"]
    assert type(plain.timetable).__name__ == "NullTimetable"  # triggered only (drift, bootstrap, by hand)
    assert type(weekly.timetable).__name__ == "CronTriggerTimetable" and weekly.timetable._expression == "0 0 * * 0"
    assert "'schedule' if dag_run.run_type == 'scheduled'" in weekly.get_task("train").trigger_reason
    rails = weekly.get_task("retraining_rails")
    assert rails.downstream_task_ids == {"train"} and rails.trigger_dag_id == "churn_w__training"


def test_the_real_time_and_backfill_budgets_reach_the_rails_under_their_spec_names():
    default = build_dags(twin_of("churn_d", **{"retraining.schedule": "@weekly"}))
    trigger = task(default, "churn_d", "drift_monitoring", "trigger_training")
    assert (trigger.max_per_real_week, trigger.max_backfill_per_real_week, trigger.backfill_lag_days) == (2, 2, 3)
    assert task(default, "churn_d", "training", "retraining_rails").max_per_real_week == 2  # max_per_week, as before
    keys = {"retraining.max_per_real_week": 4, "retraining.max_backfill_per_real_week": 0,
            "retraining.backfill_lag_days": 1.5, "retraining.schedule": "@weekly"}  # fmt: skip
    dags = build_dags(twin_of("churn_r", **keys))
    trigger = task(dags, "churn_r", "drift_monitoring", "trigger_training")
    assert (trigger.max_per_real_week, trigger.max_backfill_per_real_week, trigger.backfill_lag_days) == (4, 0, 1.5)
    assert task(dags, "churn_r", "training", "retraining_rails").max_per_real_week == 4


def test_asset_uris_use_a_custom_scheme_airflow_does_not_normalise():
    """Airflow normalises an Asset URI whose scheme it does not know by asking every installed provider for URI
    handlers (with the Amazon provider that imports boto3 at parse time); schemes starting with ``x-`` are reserved
    for custom use and skipped (``airflow.sdk.definitions.asset._sanitize_uri``)."""
    from airflow.sdk import Asset

    dags = build_dags(load_spec(MODELS / "churn_classifier.yaml"))
    uris = {  # every Asset the factory makes is some task's outlet (the DAGs scheduled on them name the same ones)
        asset.uri
        for dag in dags.values()
        for task in dag.tasks
        for asset in [*task.outlets, *task.inlets]
        if isinstance(asset, Asset)
    }
    assert uris, "the factory declares Assets"
    assert all(uri.split("://", 1)[0].startswith("x-") for uri in uris), sorted(uris)


def test_a_spec_that_mails_adds_the_outbox_sender_and_the_mail_down_runbook(tmp_path):
    from mlops_provider.loop.factory import build_all
    from mlops_provider.notifications.mail import OUTBOX_DAG_ID

    assert OUTBOX_DAG_ID not in build_all(MODELS)  # no spec mails: no sender
    text = (MODELS / "churn_classifier.yaml").read_text().replace("../", f"{MODELS.parent}/")
    (tmp_path / "churn_classifier.yaml").write_text(text + "\nnotifications:\n  email: [oncall@example.com]\n")
    dags = build_all(tmp_path)
    sender = dags[OUTBOX_DAG_ID]
    assert sender.max_active_runs == 1 and not sender.catchup and [t.task_id for t in sender.tasks] == ["send_outbox"]
    assert "notifications/outbox" in sender.doc_md
    assert all("Mail down" in dags[f"churn_classifier__{stage}"].doc_md for stage in STAGES)
    assert "Mail down" not in build_dags(load_spec(MODELS / "churn_classifier.yaml"))["churn_classifier__ingest"].doc_md


def test_retention_runs_in_the_monitoring_dag_on_its_own_with_the_specs_window():
    from mlops_provider.loop.spec import SpecError

    monitoring = build_dags(twin_of("churn_r"))["churn_r__drift_monitoring"]
    retention = monitoring.get_task("retention")
    assert (retention.model_name, retention.dataset, retention.days) == ("churn_r", "customer_activity", None)
    # No upstream and no downstream: it never holds up the loop, and a failed check is not hidden behind it.
    assert retention.upstream_task_ids == set() and retention.downstream_task_ids == set()
    assert "| `retention` |" in monitoring.doc_md and "`$MLOPS_RETENTION_DAYS` (default 90)" in monitoring.doc_md
    kept = build_dags(twin_of("churn_k", **{"retention.days": 0}))["churn_k__drift_monitoring"]
    assert kept.get_task("retention").days == 0 and "0 data days (`retention.days`)" in kept.doc_md
    with pytest.raises(SpecError, match=r"retention\.days: Input should be greater than or equal to 0"):
        twin_of("churn_n", **{"retention.days": -5})
    for other in ("ingest", "training", "promotion", "rollback"):
        assert "retention" not in build_dags(twin_of("churn_r"))[f"churn_r__{other}"].task_ids


# -- one builder per stage ------------------------------------------------------------------------------------------

#: The task graph of each stage (task -> its direct upstream tasks) for the churn spec, which has no retraining
#: schedule, human approval or review: the e2e tests and docs rely on these ids.
GRAPHS = {
    "ingest": {
        "extract": set(),
        "validate": {"extract"},
        "version_partition": {"extract", "validate"},  # the extract's result, after validation
        "assemble_training_set": {"version_partition"},
    },
    "training": {"train": set()},
    "promotion": {
        "evaluate": set(),
        "gate": {"evaluate"},
        "package": {"evaluate", "gate"},
        "shadow_check": {"evaluate", "package"},
        "deploy": {"evaluate", "shadow_check"},  # the churn spec serves live (serving.endpoint)
        "canary_rollout": {"evaluate", "deploy"},
        "promote": {"evaluate", "canary_rollout"},
    },
    "drift_monitoring": {
        "wait_for_training_set": set(),
        "champion_check": {"wait_for_training_set"},  # the fork: a day with a champion skips the next two
        "bootstrap_training": {"champion_check"},
        "wait_for_champion": {"champion_check"},
        "drift_report": {"champion_check", "wait_for_champion"},
        "performance_check": {"champion_check", "wait_for_champion"},
        "drift_sensor": {"drift_report", "performance_check"},
        "previous_decision": {"drift_sensor"},  # the days decide in date order (a backfill may overlap the checks)
        "trigger_training": {"drift_sensor", "previous_decision"},
        "retention": set(),
    },
    "rollback": {"rollback": set(), "serve_champion": {"rollback"}},
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_builds_alone_with_the_shared_dag_arguments(stage):
    from mlops_provider.loop.factory import Loop, _start_date

    spec = load_spec(MODELS / "churn_classifier.yaml")
    dag = STAGES[stage](Loop.of(spec))
    assert dag.dag_id == f"churn_classifier__{stage}"
    assert {t.task_id: t.upstream_task_ids for t in dag.tasks} == GRAPHS[stage]
    assert dag.tags >= {"mlops", "churn_classifier"} and dag.start_date == _start_date(spec)
    assert dag.doc_md.lstrip().startswith(f"# churn_classifier__{stage}") and dag.description.startswith("churn_")
    assert all(t.owner == spec.owner and t.retries >= 1 for t in dag.tasks if t.task_id != "validate")
    assert list(STAGES) == ["ingest", "training", "promotion", "drift_monitoring", "rollback"]


def test_the_stages_schedules_and_run_limits():
    dags = build_dags(load_spec(MODELS / "churn_classifier.yaml"))
    ingest, training, promotion, monitoring, rollback = (dags[f"churn_classifier__{s}"] for s in STAGES)
    assert type(ingest.timetable).__name__ == type(monitoring.timetable).__name__ == "CronDataIntervalTimetable"
    assert ingest.catchup and monitoring.catchup and (ingest.max_active_runs, monitoring.max_active_runs) == (4, 1)
    assert [asset.name for asset in promotion.timetable.asset_condition.objects] == ["churn_classifier_challenger"]
    assert type(training.timetable).__name__ == type(rollback.timetable).__name__ == "NullTimetable"
    assert (ingest.default_args["retries"], promotion.default_args["retries"]) == (2, 1)


def test_results_go_between_tasks_as_whole_upstream_results_never_xcom_pull_strings():
    """One way: ``task.output`` (an XComArg of the whole result); the operator takes its field when it renders."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    dags = build_dags(twin_of("churn_x", **{"gate.human_approval": True, "retraining.human_review": True}))
    for dag in dags.values():
        for t in dag.tasks:
            for field in t.template_fields:
                assert "xcom_pull" not in repr(getattr(t, field, None)), f"{t.task_id}.{field}"
    wired = {
        ("ingest", "validate", "data_path"): "extract",
        ("ingest", "version_partition", "source_path"): "extract",
        ("promotion", "gate", "evaluation"): "evaluate",
        ("promotion", "package", "version"): "evaluate",
        ("promotion", "shadow_check", "package"): "package",
        ("promotion", "shadow_check", "ledger_path"): "evaluate",
        ("promotion", "approve", "evaluation"): "evaluate",
        ("promotion", "promote", "version"): "evaluate",
        ("promotion", "promote", "expected_champion"): "evaluate",
        ("promotion", "deploy", "version"): "evaluate",
        ("promotion", "canary_rollout", "version"): "evaluate",
        ("promotion", "canary_rollout", "ledger_path"): "evaluate",
        ("rollback", "serve_champion", "version"): "rollback",
        ("drift_monitoring", "drift_sensor", "summary_path"): "drift_report",
        ("drift_monitoring", "drift_sensor", "performance_path"): "performance_check",
        ("drift_monitoring", "review_retraining", "decision"): "drift_sensor",
        ("drift_monitoring", "trigger_training", "decision"): "drift_sensor",
    }
    for (stage, task_id, field), upstream in wired.items():
        value = getattr(task(dags, "churn_x", stage, task_id), field)
        assert isinstance(value, XComArg) and [(o.task_id, k) for o, k in value.iter_references()] == [
            (upstream, "return_value")
        ], (task_id, field)


def operator_parameters(cls) -> set[str]:
    """Keyword parameters of ``cls`` and of every class it derives from (the provider's bases, Airflow's)."""
    import inspect

    return {
        name
        for klass in cls.__mro__
        if "__init__" in vars(klass)
        for name, p in inspect.signature(vars(klass)["__init__"]).parameters.items()
        if p.kind == p.KEYWORD_ONLY
    }


def spec_arguments(spec):
    """Every ``<task>_arguments()`` of the spec, by the task that takes it."""
    return {
        "extract": [spec.dataset.extract_arguments()],
        "validate": [spec.validate_arguments()],
        "assemble_training_set": [spec.training.assembly_arguments()],
        "train": [spec.train_arguments()],
        "retraining_rails": [spec.retraining.rails_arguments()],
        "evaluate": [spec.evaluate_arguments()],
        "package": [spec.package_arguments()],
        "shadow_check": [spec.gate.shadow_arguments()],
        "approve": [spec.gate.approval_arguments()],
        "drift_report": [spec.features.drift_arguments(), spec.monitoring.drift_arguments()],
        "performance_check": [spec.performance_arguments()],
        "trigger_training": [spec.retraining.trigger_arguments()],
        "review_retraining": [spec.retraining.review_arguments()],
        "retention": [spec.retention.retention_arguments()],
        "deploy": [spec.serving.deploy_arguments()],
        "canary_rollout": [spec.serving.rollout_arguments()],
        "serve_champion": [spec.serving.deploy_arguments()],
    }


def test_spec_arguments_are_named_as_the_operators_parameters_and_reach_the_tasks():
    """The one rule spec -> operator: each ``<task>_arguments()`` returns keyword arguments of that task's operator,
    and the built task holds them (where the operator keeps a parameter under its own name)."""
    spec = twin_of("churn_all", **{"gate.human_approval": True, "retraining.human_review": True,
                                   "retraining.schedule": "@weekly"})  # fmt: skip
    tasks = {t.task_id: t for dag in build_dags(spec).values() for t in dag.tasks}
    for task_id, arguments in spec_arguments(spec).items():
        t = tasks[task_id]
        for kwargs in arguments:
            unknown = set(kwargs) - operator_parameters(type(t))
            assert not unknown, f"{task_id}: {sorted(unknown)} are not parameters of {type(t).__name__}"
            # None: the operator applies its default rule (e.g. max_per_real_week None -> max_per_week)
            kept = {k: v for k, v in kwargs.items() if k in vars(t) and v is not None}
            assert {k: getattr(t, k) for k in kept} == kept, task_id
    assert tasks["train"].execution_timeout.total_seconds() == 60 * spec.training.timeout_minutes


def test_the_monitoring_defaults_are_the_recommended_policy():
    """Issue 28: the defaults chosen from the scenario suite's evidence reach the operators (a spec that sets no
    monitoring key): the learned drift signal, 3 days of labels pooled, the interval rule on 1 day, the auto
    calibration."""
    data = yaml.safe_load((MODELS / "churn_classifier.yaml").read_text())
    data["name"] = "churn_defaults"
    data["monitoring"] = {}
    dags = build_dags(parse_spec(data, MODELS / "churn_classifier.yaml"))
    drift = task(dags, "churn_defaults", "drift_monitoring", "drift_report")
    check = task(dags, "churn_defaults", "drift_monitoring", "performance_check")
    assert drift.signal == "learned" and drift.learned_drift_threshold == 0.3
    assert (check.label_window_days, check.performance_alarm, check.consecutive_days) == (3, "interval", 1)
    assert check.estimate_calibration == "auto"


def test_without_an_endpoint_the_loop_is_as_before_and_with_one_the_challenger_is_canaried_before_promote(
    monkeypatch,
):
    data = yaml.safe_load((MODELS / "churn_classifier.yaml").read_text())
    data["name"] = "churn_plain"
    del data["serving"]["endpoint"]
    plain = build_dags(parse_spec(data, MODELS / "churn_classifier.yaml"))
    assert sorted(plain["churn_plain__promotion"].task_ids) == ["evaluate", "gate", "package", "promote",
                                                                "shadow_check"]  # fmt: skip
    assert plain["churn_plain__rollback"].task_ids == ["rollback"]
    assert "canary" not in plain["churn_plain__promotion"].doc_md

    monkeypatch.setenv("MLOPS_ENDPOINT_PORT_OFFSET", "1000")
    spec = twin_of("churn_live", **{"gate.human_approval": True})
    dags = build_dags(spec)
    promotion = dags["churn_live__promotion"]
    assert promotion.get_task("deploy").upstream_task_ids == {"approve", "evaluate"}
    rollout = promotion.get_task("canary_rollout")
    assert (rollout.port, rollout.steps, rollout.bake_seconds, rollout.move_champion) == (9600, [25, 100], 10, False)
    assert rollout.thresholds["min_requests"] == 0 and rollout.keep_versions == 2
    assert not rollout.on_failure_callback  # the churn spec mails nobody
    assert "`canary_rollout`" in promotion.doc_md and "http://127.0.0.1:9600/invocations" in promotion.doc_md
    assert "`serve_champion`" in dags["churn_live__rollback"].doc_md


def test_the_tasks_that_operate_the_endpoint_go_to_the_serving_queue(monkeypatch):
    # Distributed mode: the endpoint's processes and target files are on the serving worker, the only one taking
    # $MLOPS_SERVING_QUEUE; every other task keeps the default queue. Unset (embedded): no task names a queue.
    serving = {("promotion", "deploy"), ("promotion", "canary_rollout"), ("rollback", "serve_champion")}
    default = build_dags(twin_of("churn_routed"))
    monkeypatch.setenv("MLOPS_SERVING_QUEUE", "serving")
    routed = build_dags(twin_of("churn_routed"))
    for dag_id, dag in routed.items():
        stage = dag_id.split("__")[1]
        for task_id in dag.task_ids:
            queue = dag.get_task(task_id).queue
            assert queue == ("serving" if (stage, task_id) in serving else default[dag_id].get_task(task_id).queue), (
                dag_id,
                task_id,
            )
    assert {t for d in default.values() for t in (d.get_task(i).queue for i in d.task_ids)} == {"default"}


def test_serve_champion_restarts_a_retired_backend_with_the_capture_deploy_gives_it():
    """A rollback to a retired champion starts its backend again: with the spec's capture, as ``deploy`` does (it
    started without any: the served days after a rollback had no captured rows to monitor)."""
    dags = build_dags(twin_of("churn_live"))
    deploy = task(dags, "churn_live", "promotion", "deploy")
    serve = task(dags, "churn_live", "rollback", "serve_champion")
    assert deploy.capture is not None and deploy.capture["fraction"] > 0
    assert serve.capture == deploy.capture


def test_endpoint_keys_are_checked_and_named(tmp_path):
    from mlops_provider.loop.spec import SpecError

    data = yaml.safe_load((MODELS / "churn_classifier.yaml").read_text())
    data["serving"]["endpoint"]["canary"]["steps"] = [25, 50]
    data["serving"]["endpoint"]["canary"]["thresholds"]["max_errors"] = 1
    with pytest.raises(SpecError) as raised:
        parse_spec(data, MODELS / "churn_classifier.yaml")
    message = str(raised.value)
    assert "serving.endpoint.canary.steps: the last rollout step must be 100" in message
    assert "serving.endpoint.canary.thresholds.max_errors: unknown key; allowed here: max_error" in message
    data["serving"]["endpoint"] = {}
    spec = parse_spec(data, MODELS / "churn_classifier.yaml")
    assert spec.serving.rollout_arguments()["steps"] == [5, 25, 100]
    assert spec.serving.rollout_arguments()["thresholds"]["min_requests"] == 200


def test_monitoring_days_decide_in_date_order_while_their_checks_may_overlap():
    """Only the decision waits for the previous run (issue 31 item 4): the checks have no such upstream, so a
    backfill with ``max_active_runs`` > 1 overlaps them; with ``consecutive_days`` > 1 the performance check (whose
    alarm reads the earlier days' records) waits for the previous run's too."""
    from mlops_provider.sensors.drift import PreviousRunSensor

    monitoring = build_dags(load_spec(MODELS / "churn_classifier.yaml"))["churn_classifier__drift_monitoring"]
    waits = {t.task_id: t for t in monitoring.tasks if isinstance(t, PreviousRunSensor)}
    assert list(waits) == ["previous_decision"] and waits["previous_decision"].task_ids == ["trigger_training"]
    assert waits["previous_decision"].mode == "reschedule"  # a waiting day holds no worker slot
    assert monitoring.get_task("trigger_training").upstream_task_ids >= {"previous_decision"}
    for check in ("drift_report", "performance_check", "drift_sensor"):
        assert not monitoring.get_task(check).get_flat_relative_ids(upstream=True) & set(waits), check
    assert not any(t.depends_on_past for t in monitoring.tasks)  # Airflow refuses such a backfill without reprocess

    consecutive = build_dags(twin_of("churn_c", **{"monitoring.consecutive_days": 3}))["churn_c__drift_monitoring"]
    perf_wait = consecutive.get_task("previous_performance_check")
    assert isinstance(perf_wait, PreviousRunSensor) and perf_wait.task_ids == ["performance_check"]
    assert consecutive.get_task("performance_check").upstream_task_ids == {
        "champion_check",
        "wait_for_champion",
        "previous_performance_check",
    }
    assert not consecutive.get_task("drift_report").get_flat_relative_ids(upstream=True) & {perf_wait.task_id}
