"""The churn model as MLflow serves it: raw customer-activity columns in, churn probability out.

Kept apart from ``train.py`` and logged as the model's code ("models from code"), so
``mlflow.pyfunc.load_model`` and the serving container load it without the training code. Imports only
pandas and XGBoost (and MLflow's base class).
"""

from __future__ import annotations

from typing import Any

import mlflow.models
import mlflow.pyfunc

LABEL = "churned"
SEGMENT = "plan"
CATEGORIES = {
    "plan": ["basic", "standard", "premium"],
    "region": ["north", "south", "east", "west"],
    "device": ["mobile", "desktop", "tablet", "smart_tv"],
    "payment_method": ["card", "bank_transfer", "paypal"],
}
NUMERIC = [
    "tenure_days",
    "monthly_charges",
    "total_charges",
    "sessions_7d",
    "avg_session_minutes",
    "support_tickets_30d",
    "payment_failures_90d",
    "discount_pct",
    "last_login_days_ago",
]
FEATURES = NUMERIC + list(CATEGORIES)


def features(frame: Any) -> Any:
    """Model inputs with a fixed schema: float numerics and categoricals with fixed category lists."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for column in NUMERIC:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column, categories in CATEGORIES.items():
        out[column] = pd.Categorical(frame[column], categories=categories)
    return out


class ChurnClassifier(mlflow.pyfunc.PythonModel):
    """Wraps the XGBoost booster: applies :func:`features` to the input frame, returns P(churn) per row."""

    def load_context(self, context: Any) -> None:
        import xgboost as xgb

        self.model = xgb.XGBClassifier()
        self.model.load_model(context.artifacts["xgboost_model"])

    # No type hints here: MLflow reads them to convert the input, and a plain DataFrame is what is wanted.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [c for c in FEATURES if c not in frame.columns]
        if missing:
            raise ValueError(f"input lacks feature columns: {', '.join(missing)}")
        return self.model.predict_proba(features(frame))[:, 1]


# Models from code: MLflow executes this file to load the model (no pickled Python object is stored).
mlflow.models.set_model(ChurnClassifier())
