"""The OpenLineage side of :mod:`mlops_provider.lineage`: our plain :class:`~mlops_provider.lineage.Lineage` as the
OpenLineage provider's ``OperatorLineage``, with standard facets where the spec has one (dataset version, output
statistics, data-quality assertions and metrics) and three facets of this provider for what it has none of (the
DVC version, the MLflow model version, the MLflow run, the GX verdict).

Imported only by the OpenLineage listener's call (extra ``openlineage``), never at parse time.
"""

from __future__ import annotations

from typing import Any

import attr
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    output_statistics_output_dataset,
)

from mlops_provider.lineage import Lineage, LineageDataset

SCHEMA = "urn:airflow-provider-mlops:facets"  # documented in docs/howto/lineage.md


@attr.define
class DvcVersionDatasetFacet(DatasetFacet):
    """The version of a file in a DVC data registry: its git ``rev`` and ``tag`` and the content's ``md5``."""

    registry: str
    path: str
    rev: str
    tag: str
    md5: str

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA}#dvc"


@attr.define
class MlflowModelVersionDatasetFacet(DatasetFacet):
    """A registered MLflow model version and the run that logged it."""

    registryUri: str  # noqa: N815 - OpenLineage facets use camelCase
    modelName: str  # noqa: N815
    version: str
    modelUri: str  # noqa: N815
    runId: str  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA}#mlflow_model"


@attr.define
class MlflowRunFacet(RunFacet):
    """The MLflow run a task wrote its parameters, metrics and artifacts to."""

    trackingUri: str  # noqa: N815
    runId: str  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA}#mlflow_run"


@attr.define
class GreatExpectationsValidationRunFacet(RunFacet):
    """The verdict of a GX validation: suite, success, checks evaluated and passed, the full result's file."""

    suite: str
    success: bool
    evaluated: int
    successful: int
    resultPath: str  # noqa: N815
    dataset: str
    partition: str

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA}#gx_validation"


def _dataset_facets(facets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "version" in facets:
        out["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(**facets["version"])
    if "dvc" in facets:
        out["mlops_dvc"] = DvcVersionDatasetFacet(**facets["dvc"])
    if "mlflow_model" in facets:
        out["mlops_mlflow_model"] = MlflowModelVersionDatasetFacet(**facets["mlflow_model"])
    return out


def _input(dataset: LineageDataset) -> InputDataset:
    input_facets: dict[str, Any] = {}
    if "data_quality_assertions" in dataset.facets:
        input_facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[
                data_quality_assertions_dataset.Assertion(**item)
                for item in dataset.facets["data_quality_assertions"]["assertions"]
            ]
        )
    if "data_quality_metrics" in dataset.facets:
        input_facets["dataQualityMetrics"] = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            columnMetrics={}, **dataset.facets["data_quality_metrics"]
        )
    return InputDataset(
        namespace=dataset.namespace,
        name=dataset.name,
        facets=_dataset_facets(dataset.facets),
        inputFacets=input_facets,
    )


def _output(dataset: LineageDataset) -> OutputDataset:
    output_facets: dict[str, Any] = {}
    if "output_statistics" in dataset.facets:
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            **dataset.facets["output_statistics"]
        )
    return OutputDataset(
        namespace=dataset.namespace,
        name=dataset.name,
        facets=_dataset_facets(dataset.facets),
        outputFacets=output_facets,
    )


def operator_lineage(lineage: Lineage) -> OperatorLineage:
    """The provider's ``OperatorLineage`` of ``lineage``."""
    run_facets: dict[str, Any] = {}
    if "mlflow_run" in lineage.run_facets:
        run_facets["mlops_mlflow_run"] = MlflowRunFacet(**lineage.run_facets["mlflow_run"])
    if "gx_validation" in lineage.run_facets:
        run_facets["mlops_gx_validation"] = GreatExpectationsValidationRunFacet(**lineage.run_facets["gx_validation"])
    return OperatorLineage(
        inputs=[_input(d) for d in lineage.inputs],
        outputs=[_output(d) for d in lineage.outputs],
        run_facets=run_facets,
    )
