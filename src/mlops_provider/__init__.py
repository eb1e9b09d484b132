"""airflow-provider-mlops: Airflow 3 operators, hooks, sensors and triggers for the whole MLOps loop.

Importing this package is cheap: it pulls in no ML library. Heavy imports (mlflow, great_expectations,
evidently, xgboost, dvc, pandas, docker) happen inside the operators' ``execute()`` methods.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
