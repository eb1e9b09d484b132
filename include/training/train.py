"""Training entrypoint: the user's own code in a real project. Trains the churn classifier and logs it to MLflow.

It runs the same way in a subprocess (``local`` runner) and in the training container (``docker`` runner), and it
imports no Airflow: only pandas, scikit-learn, XGBoost and MLflow. The caller (TrainModelOperator or
``mlops reproduce``) gives it the dataset already fetched from the data registry at a DVC rev and checked
against its md5, the MLflow run to log into (one run per Airflow task, so a retry reuses it), the full
hyperparameters and the tags that tie the run to its data, code, image and Airflow run. It writes a JSON result.

    python train.py --dataset FILE --data-md5 MD5 --tracking-uri URI --run-id RUN --params JSON --tags JSON \
        --output FILE
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from churn_model import CATEGORIES, FEATURES, LABEL, NUMERIC, SEGMENT, features

HERE = Path(__file__).resolve().parent
SPLIT = json.loads((HERE / "split.json").read_text())
VALIDATION_PERCENT = int(SPLIT["holdout_percent"])


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def split(frame: Any) -> tuple[Any, Any]:
    """Deterministic split by a hash of the customer id (split.json): the same customer is always on the same side."""
    buckets = frame[SPLIT["key"]].map(lambda key: int(hashlib.md5(str(key).encode()).hexdigest()[:8], 16) % 100)
    validation = buckets < VALIDATION_PERCENT
    return frame[~validation], frame[validation]


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


def train(frame: Any, params: dict[str, Any]) -> tuple[Any, dict[str, float], Any]:
    """Returns the fitted classifier, its metrics, and the raw validation rows (model input columns)."""
    import xgboost as xgb

    train_part, valid_part = split(frame)
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
        eval_metric="logloss",
    )
    x_valid = features(valid_part)
    model.fit(features(train_part), train_part[LABEL].astype(int))
    proba = model.predict_proba(x_valid)[:, 1]
    y_valid = valid_part[LABEL].astype(int).to_numpy()
    metrics = evaluate(y_valid, proba, float(params["threshold"]))
    metrics["train_rows"] = float(len(train_part))
    segments = valid_part[SEGMENT].to_numpy()
    for segment in CATEGORIES[SEGMENT]:
        mask = segments == segment
        if mask.sum() == 0:
            continue
        for name, value in evaluate(y_valid[mask], proba[mask], float(params["threshold"])).items():
            metrics[f"segment.{segment}.{name}"] = value
    raw_valid = valid_part[FEATURES].copy()
    raw_valid[NUMERIC] = raw_valid[NUMERIC].astype("float64")
    return model, metrics, raw_valid


def pinned_requirements() -> list[str]:
    """Exact versions of what the model needs to load (MLflow's own inference would cost 8-12 s)."""
    return [f"{name}=={version(name)}" for name in ("mlflow", "xgboost", "pandas", "pyarrow", "cloudpickle")]


def log_model(model: Any, example: Any) -> Any:
    """Log the pyfunc churn model (booster file + churn_model.py) with signature, example and pinned requirements."""
    import tempfile

    import mlflow
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        booster = Path(tmp) / "model.ubj"
        model.save_model(booster)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(HERE / "churn_model.py"),
            artifacts={"xgboost_model": str(booster)},
            signature=infer_signature(example, model.predict_proba(features(example))[:, 1]),
            input_example=example,
            pip_requirements=pinned_requirements(),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, type=Path, help="parquet file of the training set")
    parser.add_argument("--data-md5", required=True, help="md5 the dataset must have (from the DVC registry)")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--run-id", required=True, help="MLflow run to log into")
    parser.add_argument("--params", required=True, help="JSON object of all hyperparameters")
    parser.add_argument("--tags", default="{}", help="JSON object of run tags")
    parser.add_argument("--output", required=True, type=Path, help="where to write the JSON result")
    args = parser.parse_args(argv)

    import mlflow
    import pandas as pd

    started = time.perf_counter()
    actual = md5_of(args.dataset)
    if actual != args.data_md5:
        print(f"dataset {args.dataset} has md5 {actual}, expected {args.data_md5}", file=sys.stderr)
        return 2
    params = json.loads(args.params)
    frame = pd.read_parquet(args.dataset)
    model, metrics, x_valid = train(frame, params)

    mlflow.set_tracking_uri(args.tracking_uri)
    with mlflow.start_run(run_id=args.run_id):
        mlflow.log_params({**params, "validation_percent": VALIDATION_PERCENT, "features": ",".join(FEATURES)})
        mlflow.log_metrics(metrics)
        mlflow.set_tags({**json.loads(args.tags), "training.python": sys.version.split()[0]})
        info = log_model(model, x_valid.head(5))
    result = {
        "run_id": args.run_id,
        "model_id": info.model_id,
        "model_uri": info.model_uri,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 3),
    }
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.output)
    print(json.dumps({"run_id": args.run_id, "roc_auc": metrics.get("roc_auc"), "f1": metrics["f1"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
