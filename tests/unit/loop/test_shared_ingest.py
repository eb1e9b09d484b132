"""One ingest per dataset shared by the models that read it (issue 31, item 3): which DAGs and tasks the factory
builds for one and for two models on a dataset, the partition Asset, the monitoring sensor's ingest DAG, the one
quarantine mail, the schedule check, and the rule that turns a run's partition events into the days it assembles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from mlops_provider.loop.factory import STAGES, build_all
from mlops_provider.loop.spec import check_folder
from mlops_provider.operators.training_set import event_partitions
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

INCLUDE = PROJECT_ROOT / "include"
DATASET = "customer_activity"


def project(tmp_path: Path, *twins: str, **changes: dict) -> Path:
    """``tmp_path/models`` with the churn spec and a copy of it per name of ``twins`` (same dataset), the files they
    name beside it; ``changes``: model name -> top-level section updates."""
    for folder in ("gx", "training", "promotion", "serving"):
        (tmp_path / folder).symlink_to(INCLUDE / folder)
    models = tmp_path / "models"
    models.mkdir()
    source = yaml.safe_load((INCLUDE / "models" / "churn_classifier.yaml").read_text())
    for name in ("churn_classifier", *twins):
        data = {**source, "name": name}
        for section, update in changes.get(name, {}).items():
            data[section] = {**data.get(section, {}), **update}
        (models / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return models


def graph(dag) -> dict[str, set[str]]:
    return {t.task_id: t.upstream_task_ids for t in dag.tasks}


def test_a_dataset_with_one_model_keeps_the_models_ingest_exactly(tmp_path):
    dags = build_all(project(tmp_path))
    assert sorted(dags) == sorted(f"churn_classifier__{stage}" for stage in STAGES)
    ingest = dags["churn_classifier__ingest"]
    assert list(graph(ingest)) == ["extract", "validate", "version_partition", "assemble_training_set"]
    assert ingest.get_task("version_partition").asset is None  # no partition Asset: nothing consumes it
    sensor = dags["churn_classifier__drift_monitoring"].get_task("wait_for_training_set")
    assert (sensor.ingest_dag_id, sensor.ingest_tag, sensor.assembly_dag_id) == ("churn_classifier__ingest", None, None)


def test_two_models_on_a_dataset_share_one_ingest_and_each_assembles_its_own_set(tmp_path):
    dags = build_all(project(tmp_path, "churn_twin"))
    expected = {f"{DATASET}__ingest"} | {
        f"{model}__{stage}"
        for model in ("churn_classifier", "churn_twin")
        for stage in ("training_set", "training", "promotion", "drift_monitoring", "rollback")
    }
    assert set(dags) == expected  # no <model>__ingest for a shared dataset
    ingest = dags[f"{DATASET}__ingest"]
    assert graph(ingest) == {
        "extract": set(),
        "validate": {"extract"},
        "version_partition": {"extract", "validate"},
        "trigger_training_set__churn_classifier": {"version_partition"},
        "trigger_training_set__churn_twin": {"version_partition"},
    }
    version = ingest.get_task("version_partition")
    assert version.asset.uri == f"x-mlops://partition/{DATASET}" and version.asset in version.outlets
    assert version.partition == "{{ data_interval_start | ds }}" and version.tag == f"partition/{DATASET}/" + (
        "{{ data_interval_start | ds }}"
    )
    assert ingest.tags >= {"mlops", "ingest", "churn_classifier", "churn_twin"}
    assert ingest.doc_md.lstrip().startswith(f"# {DATASET}__ingest") and "`churn_twin__training_set`" in ingest.doc_md
    for model in ("churn_classifier", "churn_twin"):
        assembly_dag = dags[f"{model}__training_set"]
        # Started by the dataset's ingest, one run a day with the ingest run's logical date (not scheduled on the
        # partition Asset: Airflow 3.3 strands events that come while the run is busy, apache/airflow#56050).
        assert assembly_dag.schedule is None and assembly_dag.max_active_runs == 1
        trigger = ingest.get_task(f"trigger_training_set__{model}")
        assert trigger.trigger_dag_id == f"{model}__training_set" and trigger.reset_dag_run
        assert trigger.logical_date == "{{ data_interval_start }}"
        assert trigger.trigger_run_id == "ingest__{{ data_interval_start | ds }}"
        (assemble,) = assembly_dag.tasks
        assert assemble.task_id == "assemble_training_set" and assemble.training_set == model
        assert assemble.partition == "{{ logical_date | ds }}"  # the day the run was started for
        assert assemble.partition_asset is None and assemble.ingest_dag_id == f"{DATASET}__ingest"
        assert assemble.asset.uri == f"x-mlops://training-set/{model}" and assemble.pool == "dvc_workspace"
        sensor = dags[f"{model}__drift_monitoring"].get_task("wait_for_training_set")
        assert sensor.ingest_dag_id == f"{DATASET}__ingest"  # gives up when the dataset's day failed
        assert sensor.ingest_tag == f"partition/{DATASET}/" + "{{ data_interval_start | ds }}"
        assert sensor.assembly_dag_id == f"{model}__training_set"  # gives up when the day's assembly failed
        assert sensor.tag.startswith(f"training-set/{model}/")
        assert f"`{DATASET}__ingest`" in assembly_dag.doc_md


def test_the_quarantine_mail_goes_once_to_every_recipient(tmp_path):
    mail = {
        "churn_classifier": {"notifications": {"email": ["a@example.com", "b@example.com"]}},
        "churn_twin": {"notifications": {"email": ["b@example.com", "c@example.com"]}},
        "churn_quiet": {"notifications": {"email": ["q@example.com"], "events": ["drift"]}},
    }
    dags = build_all(project(tmp_path, "churn_twin", "churn_quiet", **mail))
    validate = dags[f"{DATASET}__ingest"].get_task("validate")
    (notifier,) = validate.on_failure_callback
    assert notifier.event == "quarantine"
    assert notifier.to == ["a@example.com", "b@example.com", "c@example.com"]  # once each; not churn_quiet's


def test_specs_sharing_a_dataset_must_agree_on_its_ingest_schedule(tmp_path):
    models = project(tmp_path, "churn_twin", "churn_zz", **{"churn_zz": {"schedule": {"ingest": "0 3 * * *"}}})
    checked = check_folder(models)
    assert sorted(s.name for s in checked.specs) == ["churn_classifier", "churn_twin"]
    (problem,) = checked.problems
    assert problem.path.name == "churn_zz.yaml"
    assert "schedule.ingest" in problem.message and "'churn_classifier'" in problem.message
    assert "'churn_zz'" in problem.message and "'@daily' and '0 3 * * *'" in problem.message
    dags = build_all(models)
    assert "churn_zz__spec_error" in dags and f"{DATASET}__ingest" in dags


def test_a_model_named_like_a_shared_dataset_it_does_not_read_is_a_problem_of_its_own(tmp_path):
    models = project(tmp_path, "churn_twin")
    fraud = yaml.safe_load((INCLUDE / "models" / "card_fraud.yaml").read_text())
    (models / f"{DATASET}.yaml").write_text(yaml.safe_dump({**fraud, "name": DATASET}, sort_keys=False))
    dags = build_all(models)
    assert dags[f"{DATASET}__ingest"].get_task("extract").table == DATASET  # the shared dataset's, kept
    assert f"{DATASET}__spec_error" in dags and f"{DATASET}__training" not in dags
    assert "already the ingest DAG of the shared dataset 'customer_activity'" in dags[f"{DATASET}__spec_error"].doc_md


class Event:
    """An Asset event as a task sees it among ``triggering_asset_events`` (only what the rule reads)."""

    def __init__(self, extra: dict, source_run_id: str = "r") -> None:
        self.extra, self.source_dag_id, self.source_run_id = extra, f"{DATASET}__ingest", source_run_id


def test_each_triggering_event_is_assembled_once_oldest_first():
    assert event_partitions([Event({"partition": "2026-11-10"})]) == ["2026-11-10"]
    # Coalesced events of a backfill, queued out of order, one day announced twice (a cleared version_partition).
    events = [Event({"partition": day}) for day in ("2026-11-12", "2026-11-10", "2026-11-11", "2026-11-12")]
    assert event_partitions(events) == ["2026-11-10", "2026-11-11", "2026-11-12"]
    assert event_partitions([]) == []
    with pytest.raises(ValueError, match=r"from customer_activity__ingest/bad carries no partition day"):
        event_partitions([Event({"partition": "2026-11-10"}), Event({"rows": 3}, source_run_id="bad")])


def test_the_rule_reads_the_events_airflow_hands_a_task():
    """The event type of ``triggering_asset_events`` (Task SDK), built as the task runner builds it."""
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    from mlops_provider.loop.factory import partition_asset

    asset = partition_asset(DATASET)
    now = dt.datetime(2026, 11, 13, tzinfo=dt.timezone.utc)
    events = [
        AssetEventDagRunReferenceResult(
            asset={"name": asset.name, "uri": asset.uri, "extra": {}},
            extra={"partition": day, "tag": f"partition/{DATASET}/{day}"},
            source_task_id="version_partition",
            source_dag_id=f"{DATASET}__ingest",
            source_run_id=f"run_{day}",
            source_map_index=-1,
            source_aliases=[],
            timestamp=now,
        )  # fmt: skip
        for day in ("2026-11-11", "2026-11-10")
    ]
    accessor = TriggeringAssetEventsAccessor.build(events)
    assert event_partitions(accessor[asset]) == ["2026-11-10", "2026-11-11"]
    assert accessor.get(partition_asset("other_dataset"), []) == []


def test_give_up_rule_of_a_shared_dataset_waits_for_the_assembly_after_the_ingest_succeeded():
    from mlops_provider.triggers.dvc import give_up_reason

    tag, dag_id, day = "training-set/churn_twin/2026-11-10", f"{DATASET}__ingest", "2026-11-10T00:00:00+00:00"
    success = {"success": 1, "all": 1}
    assert give_up_reason(tag, dag_id, day, success, 0, ingest_versioned=True) is None
    assert "without versioning the day's partition" in str(give_up_reason(tag, dag_id, day, success, 0, False))
    assert "failed" in str(give_up_reason(tag, dag_id, day, {"failed": 1, "all": 1}, 0, ingest_versioned=True))
    assert "succeeded without versioning it" in str(give_up_reason(tag, dag_id, day, success, 0))  # one model
    # The model's training-set run of the day (which the dataset's ingest started): still to run or running: wait;
    # failed: give up naming it; succeeded without the tag (warming up: too few versioned days): give up at once.
    assembly = "churn_twin__training_set"
    for pending in ({}, {"failed": 0, "success": 0}):
        assert give_up_reason(tag, dag_id, day, success, 0, True, (assembly, pending)) is None
    failed = str(give_up_reason(tag, dag_id, day, success, 0, True, (assembly, {"failed": 1})))
    assert f"the training-set run of {day} ({assembly}) failed" in failed
    warming = str(give_up_reason(tag, dag_id, day, success, 0, True, (assembly, {"success": 1})))
    assert f"({assembly}) succeeded without versioning it" in warming and "warming up" in warming
    # the dataset's own verdicts come first
    assert "ingest run" in str(give_up_reason(tag, dag_id, day, {"failed": 1}, 0, True, (assembly, {"success": 1})))


def test_the_sensor_and_trigger_carry_the_ingest_tag(tmp_path):
    from mlops_provider.triggers.dvc import DvcTagTrigger

    trigger = DvcTagTrigger(
        str(tmp_path), "t", ingest_dag_id="d", logical_date="2026-11-10", ingest_tag="p", assembly_dag_id="a"
    )
    path, kwargs = trigger.serialize()
    assert kwargs["ingest_tag"] == "p" and DvcTagTrigger(**kwargs).ingest_tag == "p"
    assert DvcTagTrigger(**kwargs).assembly_dag_id == "a"
