"""The operators' side of lineage: ``OpenLineageMixin`` keeps a task's result and hands the OpenLineage listener
the :class:`~mlops_provider.lineage.datasets.Lineage` derived from it (converted by
:mod:`mlops_provider.lineage.facets`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_provider.lineage.datasets import Lineage


class OpenLineageMixin:
    """Gives an operator ``get_openlineage_facets_on_complete``: the :class:`Lineage` its ``lineage()`` derives
    from the result it kept with ``record_lineage`` in ``execute()``."""

    _lineage_result: dict[str, Any] | None = None

    def record_lineage(self, result: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Keep ``result`` (and ``extra`` facts that are not in the XCom) for lineage; returns ``result``."""
        self._lineage_result = {**result, **extra}
        return result

    def lineage(self, result: dict[str, Any]) -> Lineage:
        raise NotImplementedError

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The OpenLineage ``OperatorLineage`` of the finished task (called by the OpenLineage listener)."""
        if self._lineage_result is None:
            return None
        from mlops_provider.lineage.facets import operator_lineage

        return operator_lineage(self.lineage(self._lineage_result))
