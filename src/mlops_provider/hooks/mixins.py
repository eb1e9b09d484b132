"""What the provider's operators and sensors share: the hooks of their connections, created once per task
(``cached_property``) from the ``*_conn_id`` the task was given, as Airflow's own providers do (``AwsBaseOperator``).
Imports no heavy library: the hooks import their tools inside their methods."""

from __future__ import annotations

from functools import cached_property

from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook


class DvcHookMixin:
    """Gives a task ``dvc_hook``: the data registry of its ``dvc_conn_id`` (connection type ``dvc``)."""

    dvc_conn_id: str

    @cached_property
    def dvc_hook(self) -> DvcHook:
        return DvcHook(dvc_conn_id=self.dvc_conn_id)


class MlflowHookMixin:
    """Gives a task ``mlflow_hook``: the tracking server and model registry of its ``mlflow_conn_id``."""

    mlflow_conn_id: str

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)
