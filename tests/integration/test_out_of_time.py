"""The gate's out-of-time holdout, with real DVC, MLflow and XGBoost training: on data with day-level effects a
key-hash holdout flatters a challenger that memorised its training days, an out-of-time holdout reads the margin
the models show on the days after the window."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.demo.day_effects import KEY_COLUMN, LABEL_COLUMN, NUMERICAL, TIMESTAMP_COLUMN, day_effect_days
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.ml.scoring import schema_predictor, score
from mlops_provider.operators.promotion import EvaluateModelOperator
from tests.helpers import task_context
from tests.integration.models import train_op

pytestmark = pytest.mark.integration

START = dt.date(2026, 11, 1)
WINDOW, FOLLOWING, HOLDOUT_DAYS = 6, 4, 2
SCHEMA = {"label": LABEL_COLUMN, "positive_class": 1, "numerical": list(NUMERICAL), "categorical": [],
          "key": KEY_COLUMN}  # fmt: skip
SPLITS = {
    "key_hash": {"key": KEY_COLUMN, "fraction": 0.2, "seed": 0},
    "out_of_time": {"method": "out_of_time", "holdout_days": HOLDOUT_DAYS, "time_column": TIMESTAMP_COLUMN},
}
RULES = {"primary_metric": "roc_auc", "min_improvement": 0.0, "floors": {}, "lower_is_better": ["log_loss"],
         "segment_column": None, "segment_metric": "roc_auc", "max_segment_regression": 1.0,
         "require_behaviour_tests": False, "threshold": 0.5}  # fmt: skip
PARAMS = {"n_estimators": 100, "max_depth": 4}


def day(index: int) -> str:
    return (START + dt.timedelta(days=index)).isoformat()


def version_set(frame, model: str, tag_day: str, tmp_path) -> str:
    path = tmp_path / f"{model}-{tag_day}.parquet"
    frame.to_parquet(path, index=False)
    return DvcHook().version_file(path, f"data/{model}/training_set.parquet", f"training-set/{model}/{tag_day}", {})[
        "rev"
    ]


def train(model: str, rev: str, run_id: str, split: dict) -> dict:
    op = train_op(dataset_path=f"data/{model}/training_set.parquet", dataset_rev=rev, model_schema=SCHEMA,
                  holdout=split, hyperparameters=PARAMS, model_name=model, experiment_name=model)  # fmt: skip
    return op.execute(task_context(None, dag_id="training", run_id=run_id, task_id="train"))


def test_the_out_of_time_margin_is_the_one_the_following_days_show_and_the_key_hash_one_is_not(mlops_home, tmp_path):
    """Champion trained on days 0-5, challenger on days 6-11, both judged by the gate; days 12-15 follow. The day
    effects (sd 1 on the log-odds) can be learnt through the slowly rising ``weather`` column."""
    frame = day_effect_days(START, 2 * WINDOW + FOLLOWING, rows_per_day=600, seed=1)
    days = frame[TIMESTAMP_COLUMN].dt.date
    champion_set = frame[days < START + dt.timedelta(days=WINDOW)]
    challenger_set = frame[(days >= START + dt.timedelta(days=WINDOW)) & (days < START + dt.timedelta(days=2 * WINDOW))]
    following = frame[days >= START + dt.timedelta(days=2 * WINDOW)].reset_index(drop=True)
    hook = MlflowHook()
    margins = {}
    for method, split in SPLITS.items():
        model = f"dayfx_{method}"
        champion = train(model, version_set(champion_set, model, day(WINDOW - 1), tmp_path), "champion", split)
        hook.set_aliases(model, {"champion": champion["version"]})
        challenger = train(
            model, version_set(challenger_set, model, day(2 * WINDOW - 1), tmp_path), "challenger", split
        )
        verdict = EvaluateModelOperator(
            task_id="evaluate", model_name=model, challenger_version=challenger["version"], gate_rules=RULES,
            behaviour_tests=None, label_column=LABEL_COLUMN,
        ).execute(task_context(None, dag_id="promotion", run_id="r", task_id="evaluate"))  # fmt: skip
        ledger = json.loads(open(verdict["ledger_path"]).read())
        chall, champ = ledger["challenger_metrics"]["overall"], ledger["champion_metrics"]["overall"]
        assert chall["rows"] == champ["rows"] == ledger["evaluation_data"]["rows"]  # the same rows for both
        assert ledger["evaluation_data"]["holdout"][0]["method"] == method
        after = {
            v: score(schema_predictor(hook.load_model(f"models:/{model}/{v}")), following, label=LABEL_COLUMN,
                     segment=None, threshold=0.5)["overall"]["roc_auc"]
            for v in (challenger["version"], champion["version"])
        }  # fmt: skip
        margins[method] = {
            "gate": chall["roc_auc"] - champ["roc_auc"],
            "following": after[challenger["version"]] - after[champion["version"]],
            "rows": ledger["evaluation_data"]["rows"],
        }
        run = hook.get_run(challenger["run_id"])
        assert run.data.params["split.method"] == method == challenger["split"]["split.method"]
        if method == "out_of_time":
            # the last two days of the challenger's window, which neither model trained on; the record says so
            held_out = [day(2 * WINDOW - 2), day(2 * WINDOW - 1)]
            assert ledger["evaluation_data"]["days"] == held_out
            assert ledger["evaluation_data"]["rows"] == 2 * 600
            assert run.data.params["split.holdout_from"] == held_out[0] == challenger["split"]["split.holdout_from"]
            assert hook.model_version_tags(model, champion["version"])["split.holdout_from"] == day(WINDOW - 2)
            assert run.data.metrics["train_rows"] == (WINDOW - HOLDOUT_DAYS) * 600
    print(f"ROC AUC margin challenger - champion (pytest -s shows it): {margins}")
    key_hash, out_of_time = margins["key_hash"], margins["out_of_time"]
    assert key_hash["gate"] - key_hash["following"] > 0.05, margins  # the key-hash holdout flatters the challenger
    assert abs(out_of_time["gate"] - out_of_time["following"]) <= 0.02, margins  # the goal


def test_an_out_of_time_split_on_too_few_days_fails_naming_the_keys_and_numbers(mlops_home, tmp_path):
    frame = day_effect_days(START, 2, rows_per_day=100, seed=0)
    rev = version_set(frame, "dayfx_short", day(1), tmp_path)
    with pytest.raises(AirflowFailException) as caught:
        train("dayfx_short", rev, "short", {**SPLITS["out_of_time"], "holdout_days": 2})
    message = str(caught.value)
    assert "split.holdout_days=2 needs at least 3 days in the training set" in message
    assert f"'event_ts' has 2 ({day(0)}, {day(1)})" in message
    hook = MlflowHook()
    (run,) = hook.get_client().search_runs([hook.get_client().get_experiment_by_name("dayfx_short").experiment_id])
    assert run.info.status == "FAILED"
