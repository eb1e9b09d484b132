"""The model as MLflow serves it: raw columns in, probability of the positive class out (one per row).

Logged as the model's code ("models from code") beside the booster and ``features.json`` (the feature names,
types and the category lists seen in training), so ``mlflow.pyfunc.load_model`` and the serving container load it
without the training code. Imports only pandas and XGBoost (and MLflow's base class). Works for any model spec:
the columns come from ``features.json``, nothing here names a dataset.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.models
import mlflow.pyfunc


def encode(frame: Any, numerical: list[str], categories: dict[str, list[str]]) -> Any:
    """Model inputs with a fixed schema: float numerics and categoricals with the training category lists
    (a value never seen in training becomes missing, which XGBoost handles)."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for column in numerical:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column, values in categories.items():
        out[column] = pd.Categorical(frame[column].astype("string"), categories=values)
    return out


class TabularClassifier(mlflow.pyfunc.PythonModel):
    """Wraps the XGBoost booster: encodes the input frame, returns P(positive class) per row (1-D)."""

    def load_context(self, context: Any) -> None:
        import xgboost as xgb

        with open(context.artifacts["features"]) as handle:
            features = json.load(handle)
        self.numerical = list(features["numerical"])
        self.categories = {k: list(v) for k, v in features["categories"].items()}
        self.model = xgb.XGBClassifier()
        self.model.load_model(context.artifacts["xgboost_model"])

    # No type hints here: MLflow reads them to convert the input, and a plain DataFrame is what is wanted.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [c for c in [*self.numerical, *self.categories] if c not in frame.columns]
        if missing:
            raise ValueError(f"input lacks feature columns: {', '.join(missing)}")
        return self.model.predict_proba(encode(frame, self.numerical, self.categories))[:, 1]


# Models from code: MLflow executes this file to load the model (no pickled Python object is stored).
mlflow.models.set_model(TabularClassifier())
