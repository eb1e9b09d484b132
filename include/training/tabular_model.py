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


def _is_number(value: Any) -> bool:
    """An int or a float (numpy's too) or a missing value; not a bool, not a string."""
    import numbers

    import numpy as np
    import pandas as pd

    if isinstance(value, (bool, np.bool_, str, bytes)):
        return False
    return isinstance(value, numbers.Number) or value is None or value is pd.NA


def numbers(values: Any, column: str) -> Any:
    """A numeric feature column as float64: ints (any width, nullable too) and floats are cast safely, missing
    values stay missing; anything else (a string, a bool) is refused naming the column and the row. The model's
    signature declares numeric columns ``any`` so that MLflow lets ints through to this check (its own schema
    enforcement refuses int64 for a double column); the intended type is in the model's metadata
    ``input_types``."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64")
    fits = values.map(_is_number).astype(bool)
    if not fits.all():
        position = int((~fits).to_numpy().argmax())
        value = values.iloc[position]
        raise MlflowException.invalid_parameter_value(
            f"column {column!r} expects numbers (int or float), got {type(value).__name__} {str(value)[:40]!r} in "
            f"row {position}"
        )
    return pd.to_numeric(values.astype(object).where(values.notna(), None)).astype("float64")


def encode(frame: Any, numerical: list[str], categories: dict[str, list[str]]) -> Any:
    """Model inputs with a fixed schema: float numerics (ints cast safely, strings refused: :func:`numbers`) and
    categoricals with the training category lists (a value never seen in training becomes missing, which XGBoost
    handles)."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for column in numerical:
        out[column] = numbers(frame[column], column)
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
