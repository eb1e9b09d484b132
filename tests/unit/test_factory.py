"""The DAG factory: five DAGs per spec, everything model-specific from the spec, nothing shared between two models
on one dataset except the dataset's partitions."""

from __future__ import annotations

import pytest
import yaml

from mlops_provider.factory import STAGES, build_dags
from mlops_provider.spec import load_spec, parse_spec
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
    from mlops_provider.factory import build_all
    from mlops_provider.notifications import OUTBOX_DAG_ID

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
    from mlops_provider.spec import SpecError

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


def test_the_monitoring_dag_starts_on_the_first_day_a_training_set_can_hold_min_days():
    """Issue 28: `mlops new-model` writes an out-of-time split with training.min_days 3 for time-ordered data. A
    loop's first two days cannot hold a 3-day training set: their assembly skips (not fails) and no monitoring run
    waits for a set that cannot exist (the monitoring DAG starts on the third day)."""
    from mlops_provider.operators.training_set import first_full_day

    spec = twin_of("churn_oot", **{"split.method": "out_of_time", "split.holdout_days": 2, "training.min_days": 3})
    dags = build_dags(spec)
    ingest, monitoring = dags["churn_oot__ingest"], dags["churn_oot__drift_monitoring"]
    start = ingest.start_date.date()
    assert (monitoring.start_date.date() - start).days == 2
    assemble = ingest.get_task("assemble_training_set")
    assert assemble.min_partitions == 3 and assemble.first_day == start.isoformat()
    assert first_full_day(start.isoformat(), 3) == monitoring.start_date.date().isoformat()
    assert first_full_day("2026-11-01", 1) == "2026-11-01"
    plain = build_dags(twin_of("churn_plain"))  # min_days 1: both start on the spec's day
    assert plain["churn_plain__drift_monitoring"].start_date == plain["churn_plain__ingest"].start_date


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
