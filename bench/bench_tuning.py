"""Tuning (spec ``training.tuning``): what a study buys on the two example models, and what it costs.

For each example model (churn_classifier, card_fraud), a training set of the model's demo generator (``DAYS`` days)
is versioned in a fresh data registry; then TrainModelOperator (local runner) trains it twice: with the fixed
hyperparameters of include/training/hyperparameters.json, and with a study of ``TRIALS`` trials over the search
space below (validation rows carved from the training rows). Printed and recorded: the gate's holdout ROC AUC of
both registered models, the best trial's validation value, trials and wall time. One run each (a study is long):
compare the two sides of a row, not rows of different days. Prints numbers, never fails on a timing.

Usage: python bench/bench_tuning.py [TRIALS [ROWS_PER_DAY]]    (default: 15 trials, 2000 rows a day)
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(PROJECT_ROOT))
from common import record  # noqa: E402

TRAINING = PROJECT_ROOT / "include" / "training"
MODELS = PROJECT_ROOT / "include" / "models"
DAYS = 7
SEARCH_SPACE = {
    "n_estimators": {"low": 50, "high": 400},
    "max_depth": {"low": 2, "high": 8},
    "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
    "min_child_weight": {"low": 0.5, "high": 20.0, "log": True},
    "subsample": {"low": 0.5, "high": 1.0},
    "colsample_bytree": {"low": 0.5, "high": 1.0},
}


def training_set(model: str, rows_per_day: int, path: Path) -> None:
    import pandas as pd

    from mlops_provider.demo import churn_source, transactions_source
    from mlops_provider.demo.churn_source import SourceSpec

    generator = {"churn_classifier": churn_source, "card_fraud": transactions_source}[model]
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(DAYS)]
    frame = pd.concat([generator.generate_day(d, SourceSpec(rows_per_day=rows_per_day)) for d in days],
                      ignore_index=True)  # fmt: skip
    for column in ("signup_date", "tx_ts"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column])
    frame.to_parquet(path, index=False)


def bench_model(model: str, trials: int, rows_per_day: int) -> None:
    from mlops_provider.hooks.dvc import DvcHook
    from mlops_provider.loop.spec import load_spec
    from mlops_provider.operators.training import TrainModelOperator
    from tests.helpers import task_context

    spec = load_spec(MODELS / f"{model}.yaml")
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as tmp:
        os.environ["MLOPS_HOME"] = tmp
        data = Path(tmp) / "training_set.parquet"
        training_set(model, rows_per_day, data)
        DvcHook().version_file(data, f"data/{model}/training_set.parquet", "bench", {})
        results = {}
        for mode in ("fixed", "tuned"):
            tuning = {"n_trials": trials, "seed": 7, "search_space": SEARCH_SPACE} if mode == "tuned" else None
            op = TrainModelOperator(
                task_id="train", dataset_path=f"data/{model}/training_set.parquet", dataset_rev="bench",
                entrypoint=str(TRAINING / "train.py"), model_schema=spec.entrypoint_schema(), holdout=spec.holdout,
                hyperparameter_spec=str(TRAINING / "hyperparameters.json"), experiment_name=model, model_name=model,
                runner="local", tuning=tuning,
            )  # fmt: skip
            start = time.perf_counter()
            result = op.execute(task_context(None, dag_id="bench", run_id=mode, task_id="train"))
            results[mode] = {**result, "seconds": time.perf_counter() - start}
    fixed, tuned = results["fixed"], results["tuned"]
    study = tuned["tuning"]
    print(f"\n{model}: {DAYS} days x ~{rows_per_day} rows; holdout ROC AUC of the registered model")
    print(f"  fixed hyperparameters   {fixed['metrics']['roc_auc']:.4f}   {fixed['seconds']:.1f} s")
    print(f"  tuned ({study['trials']} trials)      {tuned['metrics']['roc_auc']:.4f}   {tuned['seconds']:.1f} s"
          f"   best trial {study['best_trial']}: validation {study['metric']} {study['best_value']:.4f}")  # fmt: skip
    print(f"  best parameters: { {k: study['params'][k] for k in SEARCH_SPACE} }")
    record(
        "tuning",
        f"{model}: tune {study['trials']} trials, then train (holdout roc_auc {tuned['metrics']['roc_auc']:.4f} vs "
        f"{fixed['metrics']['roc_auc']:.4f} fixed; best trial's validation {study['best_value']:.4f})",
        [tuned["seconds"]],
        [fixed["seconds"]],
        baseline_name="training with the fixed hyperparameters",
        rows=int(fixed["metrics"].get("train_rows", 0)) or None,
    )


def main(trials: int, rows_per_day: int) -> None:
    for model in ("churn_classifier", "card_fraud"):
        bench_model(model, trials, rows_per_day)


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:]]
    main(*(arguments + [15, 2000][len(arguments) :])[:2])
