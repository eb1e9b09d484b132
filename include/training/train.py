"""Training entrypoint: an XGBoost classifier for any model spec, logged to MLflow as a pyfunc model.

This is the user's own code in a real project, and the template ``mlops new-model`` copies. It follows the entrypoint
contract (docs/training-entrypoint.md): the provider has already fetched the training set at its DVC rev, checked its
md5 and split it by the spec's split (key hash or out of time), so this script gets the rows it may train on
(``--train``) and the holdout rows it may only score (``--holdout``); it never splits by itself. It imports no Airflow:
only pandas, scikit-learn, XGBoost and MLflow, so it runs the same in a subprocess (``local`` runner) and in the
training container (``docker`` runner).

    python train.py --train FILE --holdout FILE --schema JSON --tracking-uri URI --run-id RUN --params JSON \
        --tags JSON --output FILE
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tabular_model import encode  # noqa: E402 (the model's own code, logged beside it)


def evaluate(y_true: Any, proba: Any, threshold: float) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

    predicted = (proba >= threshold).astype(int)
    metrics = {
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "rows": float(len(y_true)),
    }
    if len(set(y_true)) == 2:
        metrics["roc_auc"] = float(roc_auc_score(y_true, proba))
    return metrics


def features_of(schema: dict[str, Any], train: Any) -> dict[str, Any]:
    """Feature names and types from the schema; category lists from the training rows (sorted, so stable)."""
    categories = {column: sorted(str(v) for v in train[column].dropna().unique()) for column in schema["categorical"]}
    return {"numerical": list(schema["numerical"]), "categories": categories}


def labels(frame: Any, schema: dict[str, Any]) -> Any:
    """1 for the positive class, else 0."""
    positive = schema["positive_class"]
    column = frame[schema["label"]]
    if isinstance(positive, bool) or isinstance(positive, (int, float)):
        return (column.astype(float) == float(positive)).astype(int).to_numpy()
    return (column.astype(str) == str(positive)).astype(int).to_numpy()


#: XGBoost's name of the metrics a tuning study may report while training (for pruning).
XGB_METRICS = {"roc_auc": "auc", "log_loss": "logloss"}


def progress_reporter(report: str, metric: str, every: int = 10) -> Any:
    """An XGBoost callback appending ``{"step", "value"}`` (the metric on the ``--holdout`` rows after every ``every``
    boosting rounds) to ``report``: a tuning study with ``pruning: median`` stops a trial that falls behind
    (``$MLOPS_TUNING_REPORT``; docs/training-entrypoint.md)."""
    import xgboost as xgb

    class Report(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if (epoch + 1) % every == 0:
                value = evals_log["validation_0"][XGB_METRICS[metric]][-1]
                with open(report, "a") as out:
                    out.write(json.dumps({"step": epoch + 1, "value": float(value)}) + "\n")
            return False

    return Report()


def train(train_part: Any, holdout: Any, schema: dict[str, Any], params: dict[str, Any]) -> tuple[Any, dict, Any]:
    """Fit on the training rows, score on the holdout; returns the model, metrics and the feature description."""
    import xgboost as xgb

    features = features_of(schema, train_part)
    report, metric = os.environ.get("MLOPS_TUNING_REPORT"), os.environ.get("MLOPS_TUNING_METRIC", "")
    reporting = bool(report) and metric in XGB_METRICS  # a tuning trial: report progress for pruning
    model = xgb.XGBClassifier(
        n_estimators=int(params["n_estimators"]),
        max_depth=int(params["max_depth"]),
        learning_rate=float(params["learning_rate"]),
        subsample=float(params["subsample"]),
        colsample_bytree=float(params["colsample_bytree"]),
        min_child_weight=float(params["min_child_weight"]),
        reg_lambda=float(params["reg_lambda"]),
        random_state=int(params["seed"]),
        n_jobs=int(params["nthread"]),
        tree_method="hist",
        enable_categorical=True,
        eval_metric=XGB_METRICS[metric] if reporting else "logloss",
        callbacks=[progress_reporter(str(report), metric)] if reporting else None,
    )
    x_train = encode(train_part, features["numerical"], features["categories"])
    if reporting:  # the metric on the rows the trial is scored on, as it trains (they do not change the model)
        x_holdout = encode(holdout, features["numerical"], features["categories"])
        model.fit(x_train, labels(train_part, schema), eval_set=[(x_holdout, labels(holdout, schema))], verbose=False)
    else:
        model.fit(x_train, labels(train_part, schema))
    threshold = float(params["threshold"])
    proba = model.predict_proba(encode(holdout, features["numerical"], features["categories"]))[:, 1]
    y_holdout = labels(holdout, schema)
    metrics = evaluate(y_holdout, proba, threshold)
    metrics["train_rows"] = float(len(train_part))
    for segment_column in schema.get("segments") or []:
        values = holdout[segment_column].astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            for name, metric in evaluate(y_holdout[mask], proba[mask], threshold).items():
                metrics[f"segment.{value}.{name}"] = metric
    return model, metrics, features


def pinned_requirements() -> list[str]:
    """Exact versions of what the model needs to load (MLflow's own inference would cost 8-12 s)."""
    return [f"{name}=={version(name)}" for name in ("mlflow", "xgboost", "pandas", "pyarrow", "cloudpickle")]


#: At most this many holdout rows (a seeded sample) are explained for the importances. XGBoost's exact SHAP
#: (``pred_contribs``) costs about as much per row as the trees are deep and many: on the whole holdout of 100k rows
#: it took as much CPU as the training itself (20k rows: 12-17 s); 1,000 rows take ~0.6 s and moved no feature's share
#: of the total by more than 0.007 there (2,000 rows: 0.003, twice the CPU); the tests hold it within 0.01
#: (docs/benchmarks.md, issue 31 item 6).
IMPORTANCE_ROWS = 1000
IMPORTANCE_SEED = 0


def importance_rows(holdout: Any, limit: int = IMPORTANCE_ROWS) -> Any:
    """The holdout rows the importances explain: all of them up to ``limit``, else a seeded sample of ``limit``
    (the same rows for the same holdout)."""
    return holdout if len(holdout) <= limit else holdout.sample(n=limit, random_state=IMPORTANCE_SEED)


def importances(model: Any, holdout: Any, features: dict[str, Any]) -> dict[str, float]:
    """Mean absolute SHAP contribution of each feature on the holdout rows (XGBoost's ``pred_contribs``; on a seeded
    sample of ``IMPORTANCE_ROWS`` of them when the holdout is larger): what the drift monitor weighs drifted
    columns by. Unlike split gain, a noise column the trees split on by chance gets little."""
    import numpy as np
    import xgboost as xgb

    x = encode(importance_rows(holdout), features["numerical"], features["categories"])
    contributions = model.get_booster().predict(xgb.DMatrix(x, enable_categorical=True), pred_contribs=True)
    mean_abs = np.abs(contributions[:, :-1]).mean(axis=0)  # the last column is the bias
    return {column: float(value) for column, value in zip(x.columns, mean_abs, strict=True)}


def log_model(model: Any, features: dict[str, Any], example: Any) -> Any:
    """Log the pyfunc model (booster + features.json + tabular_model.py) with signature, example and pinned
    requirements."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        booster = Path(tmp) / "model.ubj"
        model.save_model(booster)
        features_file = Path(tmp) / "features.json"
        features_file.write_text(json.dumps(features, indent=2))
        predictions = model.predict_proba(encode(example, features["numerical"], features["categories"]))[:, 1]
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(HERE / "tabular_model.py"),
            artifacts={"xgboost_model": str(booster), "features": str(features_file)},
            signature=model_signature(example, predictions, features["numerical"]),
            input_example=example,
            metadata={"input_types": dict.fromkeys(features["numerical"], "double")},
            pip_requirements=pinned_requirements(),
        )


def model_signature(example: Any, predictions: Any, numerical: list[str]) -> Any:
    """The model's signature: inferred from the example, except that numeric feature columns are declared ``any``
    so that a registry consumer may pass ints where the features are floats (MLflow's schema enforcement refuses
    int64 for a double column); the model casts them safely and refuses anything else naming the column
    (``tabular_model.numbers``). Their intended type, ``double``, is the model's metadata ``input_types``."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    inferred = infer_signature(example, predictions)
    inputs = [
        ColSpec(AnyType(), spec.name, required=spec.required) if spec.name in numerical else spec
        for spec in inferred.inputs.inputs
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=inferred.outputs)


def model_input(frame: Any, features: dict[str, Any]) -> Any:
    """The raw feature columns as the model is called with them (numerics as float)."""
    columns = [*features["numerical"], *features["categories"]]
    out = frame[columns].copy()
    out[features["numerical"]] = out[features["numerical"]].astype("float64")
    for column in features["categories"]:
        out[column] = out[column].astype(str)
    return out


def parse_arguments(argv: list[str] | None, description: str | None = __doc__) -> argparse.Namespace:
    """The entrypoint contract's arguments (docs/training-entrypoint.md)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, type=Path, help="parquet file of the rows to train on")
    parser.add_argument("--holdout", required=True, type=Path, help="parquet file of the holdout rows (score only)")
    parser.add_argument("--schema", required=True, help="JSON: label, positive_class, numerical, categorical, ...")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--run-id", required=True, help="MLflow run to log into")
    parser.add_argument("--params", required=True, help="JSON object of all hyperparameters")
    parser.add_argument("--tags", default="{}", help="JSON object of run tags (the run must carry them)")
    parser.add_argument("--output", required=True, type=Path, help="where to write the JSON result")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)

    import mlflow
    import pandas as pd

    started = time.perf_counter()
    schema, params = json.loads(args.schema), json.loads(args.params)
    train_part, holdout = pd.read_parquet(args.train), pd.read_parquet(args.holdout)
    model, metrics, features = train(train_part, holdout, schema, params)

    mlflow.set_tracking_uri(args.tracking_uri)
    with mlflow.start_run(run_id=args.run_id):
        mlflow.log_params({**params, "features": ",".join([*features["numerical"], *features["categories"]])})
        mlflow.log_metrics(metrics)
        mlflow.set_tags({**json.loads(args.tags), "training.python": sys.version.split()[0]})
        mlflow.log_dict(importances(model, holdout, features), "feature_importance.json")
        info = log_model(model, features, model_input(holdout.head(5), features))
    result = {"model_id": info.model_id, "metrics": metrics, "seconds": round(time.perf_counter() - started, 3)}
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.output)
    print(json.dumps({"run_id": args.run_id, "roc_auc": metrics.get("roc_auc"), "f1": metrics["f1"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
