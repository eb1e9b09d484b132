"""Sensor on the model registry: wait until a registered model has a champion."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlops_provider.hooks.mixins import MlflowHookMixin
from mlops_provider.layout import CHAMPION_ALIAS, GATE_DECISION_TAG
from mlops_provider.utils.compat import AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context


class ChampionSensor(MlflowHookMixin, BaseSensorOperator):
    """Wait until ``model_name`` has the alias ``alias`` (default ``champion``): the loop's first model went
    through training and the promotion gate.

    Returns at once when the alias exists. Otherwise it pokes in ``reschedule`` mode (no worker slot held between
    pokes). It ends as **skipped**, naming the version, when the newest version was rejected by the gate while
    there is still no champion: waiting longer would not help; train again by hand.

    :param model_name: the registered model (templated).
    :param alias: the alias to wait for.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``.

    XCom (return value): the champion's version.
    """

    template_fields: Sequence[str] = ("model_name",)

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = CHAMPION_ALIAS,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 10)
        kwargs.setdefault("timeout", timedelta(hours=2).total_seconds())
        super().__init__(**kwargs)
        self.model_name = model_name
        self.alias = alias

    def poke(self, context: Context) -> PokeReturnValue | bool:
        version = self.mlflow_hook.alias_version(self.model_name, self.alias)
        if version is not None:
            return PokeReturnValue(is_done=True, xcom_value=version)

        versions = self.mlflow_hook.model_versions(self.model_name)
        newest = max(versions, key=lambda v: int(v.version), default=None)
        if newest is not None and (newest.tags or {}).get(GATE_DECISION_TAG) == "reject":
            raise AirflowSkipException(
                f"{self.model_name} has no {self.alias!r} and its newest version v{newest.version} was rejected by the "
                f"gate ({(newest.tags or {}).get('gate.reason', '')[:200]}); trigger training by hand"
            )
        self.log.info("%s has no %r yet (newest version: %s); waiting", self.model_name, self.alias,
                      newest.version if newest else "none")  # fmt: skip
        return False
