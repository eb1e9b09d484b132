"""``bench/bench_backfill.py --models 2`` (issue 31 item 4, two models on one dataset): the spec folder it writes
builds what it backfills (one dataset-level ingest, each model's training-set and monitoring DAGs, no model ingest),
the one-model folder still builds churn's own ingest, and its once-a-day check of the shared ingest says no when a
task ran twice for a day or on a second try."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys

import pytest

from mlops_provider.loop.factory import build_all
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

FIRST, LAST = dt.date(2025, 1, 1), dt.date(2025, 1, 10)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_backfill", PROJECT_ROOT / "bench" / "bench_backfill.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # the bench puts bench/ and src/ first
    return module


def test_two_models_share_the_datasets_ingest_and_each_has_its_own_set_and_monitoring(bench, tmp_path):
    dags = build_all(bench.bench_spec(tmp_path / "models", FIRST, LAST, models=2))
    models = bench.model_names(2)
    assert models == ["churn_classifier", "churn_twin"] and bench.ingest_dag(2) == "customer_activity__ingest"
    for dag_id in [
        bench.ingest_dag(2),
        *(f"{m}__{stage}" for m in models for stage in ("training_set", "drift_monitoring")),
    ]:
        assert dag_id in dags
    assert not {f"{m}__ingest" for m in models} & set(dags)
    assert [t.task_id for t in dags[bench.ingest_dag(2)].tasks] == [
        *bench.SHARED_TASKS, *(f"trigger_training_set__{m}" for m in models)
    ]  # fmt: skip
    assert dags[bench.ingest_dag(2)].end_date.date() == LAST  # the backfill makes every run
    assert dags["churn_twin__training"].get_task("train").experiment_name == "churn_twin"


def test_one_model_keeps_its_own_ingest(bench, tmp_path):
    dags = build_all(bench.bench_spec(tmp_path / "models", FIRST, LAST))
    assert bench.ingest_dag(1) == "churn_classifier__ingest" and "churn_classifier__ingest" in dags
    assert not any(d.startswith("customer_activity__") for d in dags)


def rows(*extra, sets=("d1", "d2")):
    """Task-instance rows as the bench reads them (dag, task, state, start, end, run, ..., try, logical date): the
    shared ingest's of two days, and each model's assembly of the days ``sets``."""
    ingest = [("customer_activity__ingest", task, "success", 10.0, 11.0, f"backfill__{day}", 9.0, 9.5, 9.0, 1, day)
              for day in ("d1", "d2") for task in ("extract", "validate", "version_partition")]  # fmt: skip
    assembly = [(f"{model}__training_set", "assemble_training_set", "success", 12.0, 13.0, f"ingest__{day}", 11.0,
                 11.5, 11.0, 1, day) for model in ("churn_classifier", "churn_twin") for day in sets]  # fmt: skip
    return ingest + assembly + list(extra)


def test_the_once_a_day_check(bench, capsys):
    assert bench.shared_ingest(rows(), 0.0, ["churn_classifier", "churn_twin"]) is True
    twice = ("customer_activity__ingest", "validate", "success", 12.0, 13.0, "manual__d1", 9.0, 9.5, 9.0, 1, "d1")
    assert bench.shared_ingest(rows(twice), 0.0, ["churn_classifier", "churn_twin"]) is False
    retried = rows()
    retried[1] = (*retried[1][:9], 2, "d1")  # validate of d1 on its second try
    assert bench.shared_ingest(retried, 0.0, ["churn_classifier", "churn_twin"]) is False
    own = ("churn_twin__ingest", "extract", "success", 10.0, 11.0, "backfill__d1", 9.0, 9.5, 9.0, 1, "d1")
    assert bench.shared_ingest(rows(own), 0.0, ["churn_classifier", "churn_twin"]) is False
    assert "NOT once a day" in capsys.readouterr().out
    # a model whose set of a day was never assembled (the stranded Asset events of Airflow 3.3 did this)
    assert bench.shared_ingest(rows(sets=("d1",)), 0.0, ["churn_classifier", "churn_twin"]) is False
    assert "NOT one a day" in capsys.readouterr().out
