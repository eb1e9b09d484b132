"""The OpenLineage side of :mod:`mlops_provider.lineage.datasets`: our plain
:class:`~mlops_provider.lineage.datasets.Lineage` as the OpenLineage provider's ``OperatorLineage``, with standard
facets where the spec has one (dataset version, output
statistics, data-quality assertions and metrics) and four facets of this provider for what it has none of (the
DVC version, the MLflow model version, the MLflow run, the GX verdict).

Used only by the OpenLineage listener's call; the module imports without the ``openlineage`` extra (the facet
classes are defined on first use).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from mlops_provider.lineage.datasets import Lineage, LineageDataset
from mlops_provider.utils.extras import require

SCHEMA = "urn:airflow-provider-mlops:facets"  # documented in docs/howto/lineage.md


@cache
def facet_classes() -> dict[str, type]:
    """This provider's facet classes, defined on first use: they subclass OpenLineage's, which only the
    ``openlineage`` extra installs (so this module imports everywhere, as every public module must)."""
    require("openlineage", user="OpenLineage lineage of the provider's operators")
    import attr
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

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

    return {
        "mlops_dvc": DvcVersionDatasetFacet,
        "mlops_mlflow_model": MlflowModelVersionDatasetFacet,
        "mlops_mlflow_run": MlflowRunFacet,
        "mlops_gx_validation": GreatExpectationsValidationRunFacet,
    }


def _dataset_facets(facets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from openlineage.client.facet_v2 import dataset_version_dataset

    own = facet_classes()
    out: dict[str, Any] = {}
    if "version" in facets:
        out["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(**facets["version"])
    if "dvc" in facets:
        out["mlops_dvc"] = own["mlops_dvc"](**facets["dvc"])
    if "mlflow_model" in facets:
        out["mlops_mlflow_model"] = own["mlops_mlflow_model"](**facets["mlflow_model"])
    return out


def _input(dataset: LineageDataset) -> Any:
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import data_quality_assertions_dataset, data_quality_metrics_input_dataset

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


def _output(dataset: LineageDataset) -> Any:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset

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


def operator_lineage(lineage: Lineage) -> Any:
    """The OpenLineage provider's ``OperatorLineage`` of ``lineage``."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    own = facet_classes()
    run_facets: dict[str, Any] = {}
    if "mlflow_run" in lineage.run_facets:
        run_facets["mlops_mlflow_run"] = own["mlops_mlflow_run"](**lineage.run_facets["mlflow_run"])
    if "gx_validation" in lineage.run_facets:
        run_facets["mlops_gx_validation"] = own["mlops_gx_validation"](**lineage.run_facets["gx_validation"])
    return OperatorLineage(
        inputs=[_input(d) for d in lineage.inputs],
        outputs=[_output(d) for d in lineage.outputs],
        run_facets=run_facets,
    )
