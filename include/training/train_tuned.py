"""Training entrypoint that tunes itself in process: an Optuna study inside the script, then the usual training.

The in-process variant of tuning (docs/training-entrypoint.md, "Tuning inside the entrypoint"). The provider's own
tuning (``training.tuning`` in the spec) calls the entrypoint once per trial; this script instead receives the same
arguments as any training (the entrypoint contract), and before training:

1. carves validation rows out of ``--train`` (the keys whose hash falls below ``VALIDATION_FRACTION``): the trials
   are scored on them, never on ``--holdout``, which only the final model is scored on (the gate's holdout);
2. runs ``N_TRIALS`` Optuna trials in this process over ``SEARCH_SPACE`` (TPE, seeded by the ``seed``
   hyperparameter, so the same data gives the same study), each logged as a nested MLflow run of the training run
   (params, the validation metric, tag ``tuning.trial``);
3. trains on every ``--train`` row with the best trial's hyperparameters, exactly as ``train.py`` does (scored on
   ``--holdout``, logged model, result file), and tags the training run with ``tuning.best_params`` (the
   hyperparameters the model was really trained with), ``tuning.best_trial``, ``tuning.best_value``,
   ``tuning.trials``.

Point ``training.entrypoint`` at this file and leave ``training.tuning`` off (the two would search twice). Edit
``SEARCH_SPACE``, ``N_TRIALS`` and ``METRIC`` below: they are this model's code, versioned with it. It needs Optuna in
the training environment (the ``tune`` extra locally; add ``optuna`` to the training image's requirements for the
``docker`` runner).

    python train_tuned.py --train FILE --holdout FILE --schema JSON --tracking-uri URI --run-id RUN --params JSON \
        --tags JSON --output FILE
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train import importances, log_model, model_input, parse_arguments, train  # noqa: E402 (the template's training, unchanged)

#: What the study searches: hyperparameter -> (low, high, log scale); the others keep ``--params``' values.
SEARCH_SPACE: dict[str, tuple[float, float, bool]] = {
    "max_depth": (2, 8, False),
    "learning_rate": (0.01, 0.3, True),
    "min_child_weight": (0.5, 20.0, True),
    "subsample": (0.5, 1.0, False),
}
#: Trials of the study (each fits one model on the fit rows and scores it on the validation rows).
N_TRIALS = 12
#: The metric the study maximises, as ``train.evaluate`` names it (scored on the validation rows).
METRIC = "roc_auc"
#: Share of the training rows' keys (hashed) the trials are scored on.
VALIDATION_FRACTION = 0.2


def validation_mask(frame: Any, key: str | None, fraction: float) -> Any:
    """True for the rows the trials are scored on: the keys whose md5 falls below ``fraction`` (the row number
    when the spec names no key), so one key's rows never sit on both sides."""
    import numpy as np

    values = frame[key].astype(str) if key else frame.index.astype(str)
    buckets = [int(hashlib.md5(f"tuning:{v}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for v in values]
    return np.asarray(buckets) < fraction


def suggest(trial: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The trial's hyperparameters: ``params`` with the search space's names drawn by Optuna."""
    chosen = dict(params)
    for name, (low, high, log) in SEARCH_SPACE.items():
        if isinstance(params.get(name), int) and not isinstance(params.get(name), bool):
            chosen[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            chosen[name] = trial.suggest_float(name, float(low), float(high), log=log)
    return chosen


def search(train_part: Any, schema: dict[str, Any], params: dict[str, Any], run_id: str) -> tuple[dict, Any]:
    """Run the study on ``train_part`` (fit rows / validation rows carved from it); every trial a nested run of
    ``run_id``. Returns the best hyperparameters and the study."""
    import mlflow
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mask = validation_mask(train_part, schema.get("key"), VALIDATION_FRACTION)
    fit_rows, validation_rows = train_part[~mask], train_part[mask]
    if fit_rows.empty or validation_rows.empty:
        raise SystemExit(f"tuning: {len(fit_rows)} rows to fit and {len(validation_rows)} to score: too few rows")
    experiment_id = mlflow.get_run(run_id).info.experiment_id

    def objective(trial: Any) -> float:
        chosen = suggest(trial, params)
        _, metrics, _ = train(fit_rows, validation_rows, schema, chosen)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"trial-{trial.number}", nested=True,
            tags={"mlflow.parentRunId": run_id, "tuning.trial": str(trial.number)},
        ):  # fmt: skip
            mlflow.log_params({name: chosen[name] for name in SEARCH_SPACE})
            mlflow.log_metrics({f"validation.{k}": v for k, v in metrics.items() if not k.startswith("segment.")})
        return float(metrics[METRIC])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(params["seed"])))
    study.optimize(objective, n_trials=N_TRIALS)
    return {**params, **study.best_params}, study


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv, __doc__)

    import mlflow
    import pandas as pd

    started = time.perf_counter()
    schema, fixed = json.loads(args.schema), json.loads(args.params)
    train_part, holdout = pd.read_parquet(args.train), pd.read_parquet(args.holdout)
    mlflow.set_tracking_uri(args.tracking_uri)
    with mlflow.start_run(run_id=args.run_id):
        best, study = search(train_part, schema, fixed, args.run_id)  # the holdout is not read before this returns
        model, metrics, features = train(train_part, holdout, schema, best)
        mlflow.log_params({**best, "features": ",".join([*features["numerical"], *features["categories"]])})
        mlflow.log_metrics(metrics)
        mlflow.set_tags({
            **json.loads(args.tags), "training.python": sys.version.split()[0],
            "tuning.best_params": json.dumps(best, sort_keys=True), "tuning.best_trial": str(study.best_trial.number),
            "tuning.best_value": str(study.best_value), "tuning.trials": str(len(study.trials)),
        })  # fmt: skip
        mlflow.log_dict(importances(model, holdout, features), "feature_importance.json")
        info = log_model(model, features, model_input(holdout.head(5), features))
    result = {"model_id": info.model_id, "metrics": metrics, "seconds": round(time.perf_counter() - started, 3)}
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.output)
    print(json.dumps({"run_id": args.run_id, "best_trial": study.best_trial.number, METRIC: metrics.get(METRIC)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
