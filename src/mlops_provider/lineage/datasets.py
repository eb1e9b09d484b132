"""OpenLineage for the data-moving operators: what each task read and wrote, as datasets with the versions this
project already knows (DVC path, rev, tag and md5; the GX verdict; the MLflow run and model version).

Each operator keeps its result in ``execute()`` (``record_lineage``) and describes it as a :class:`Lineage` here,
in plain data: no OpenLineage import, so every rule is unit-tested without the extra. The OpenLineage provider's
listener calls ``get_openlineage_facets_on_complete`` after a task succeeds; only then are the OpenLineage classes
imported (:mod:`mlops_provider.lineage.facets`, extra ``openlineage``). Without that provider, or with no
transport configured, nothing is sent and nothing here runs.

Dataset naming (the OpenLineage naming conventions where they define one):

- a SQL table: namespace ``<conn type>://<host>:<port>`` (SQLite: ``sqlite://<file>``), name ``<database>.<table>``;
- a local file: namespace ``file``, name the absolute path; a file on object storage: namespace
  ``<scheme>://<bucket>``, name its key;
- a file in the DVC data registry: namespace ``dvc+<registry git URL, or file://<workspace>>``, name its path in
  the registry (``data/<dataset>/partitions/<day>.parquet``), version the md5 of its content;
- a registered MLflow model: namespace ``mlflow+<registry URI>``, name ``models/<name>``, version the model version.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

#: facet kinds of a dataset or a run, converted by mlops_provider.lineage.facets
Facets = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class LineageDataset:
    """A dataset as OpenLineage names it, with facets by kind (``version``, ``dvc``, ``mlflow_model``, ...)."""

    namespace: str
    name: str
    facets: Facets = field(default_factory=dict)


@dataclass(frozen=True)
class Lineage:
    """What one task run read (``inputs``) and wrote (``outputs``), and facets of the run itself."""

    inputs: list[LineageDataset] = field(default_factory=list)
    outputs: list[LineageDataset] = field(default_factory=list)
    run_facets: Facets = field(default_factory=dict)


def sql_table(conn_type: str, host: str | None, port: int | None, database: str | None, table: str) -> LineageDataset:
    """A source table of a SQL connection."""
    if conn_type == "sqlite":
        return LineageDataset(f"sqlite://{host or database or ''}", table)
    authority = f"{host or 'localhost'}:{port}" if port else (host or "localhost")
    name = f"{database}.{table}" if database else table
    return LineageDataset(f"{conn_type}://{authority}", name)


def local_file(path: str, *, md5: str | None = None, rows: int | None = None) -> LineageDataset:
    """A file on the worker's disk (a staged partition, a report)."""
    facets: Facets = {}
    if md5:
        facets["version"] = {"datasetVersion": md5}
    if rows is not None:
        facets["output_statistics"] = {"rowCount": rows}
    return LineageDataset("file", path, facets)


def stored_file(where: str, *, md5: str | None = None, rows: int | None = None) -> LineageDataset:
    """A file tasks hand to each other (``mlops_provider.utils.storage``): a local path, or an object-storage URL
    (namespace ``<scheme>://<bucket>``, name the key, as OpenLineage names S3 objects; the connection id is not
    part of the name)."""
    from urllib.parse import urlsplit

    if "://" not in where:
        return local_file(where, md5=md5, rows=rows)
    url = urlsplit(where)
    dataset = local_file(url.path.lstrip("/"), md5=md5, rows=rows)
    return LineageDataset(f"{url.scheme}://{url.netloc.rpartition('@')[2]}", dataset.name, dataset.facets)


def dvc_file(
    registry: str,
    path: str,
    *,
    rev: str | None = None,
    tag: str | None = None,
    md5: str | None = None,
    rows: int | None = None,
) -> LineageDataset:
    """A file versioned in the DVC data registry ``registry`` (its git URL, or ``file://<workspace>``)."""
    facets: Facets = {"dvc": {"registry": registry, "path": path, "rev": rev or "", "tag": tag or "", "md5": md5 or ""}}
    if md5:
        facets["version"] = {"datasetVersion": md5}
    if rows is not None:
        facets["output_statistics"] = {"rowCount": rows}
    return LineageDataset(f"dvc+{registry}", path, facets)


def mlflow_model(registry_uri: str, model_name: str, version: str, *, run_id: str | None = None) -> LineageDataset:
    """A version of a registered MLflow model."""
    return LineageDataset(
        f"mlflow+{registry_uri}",
        f"models/{model_name}",
        {
            "version": {"datasetVersion": str(version)},
            "mlflow_model": {
                "registryUri": registry_uri,
                "modelName": model_name,
                "version": str(version),
                "modelUri": f"models:/{model_name}/{version}",
                "runId": run_id or "",
            },
        },
    )


def mlflow_run(tracking_uri: str, run_id: str) -> Facets:
    """The run facet naming an MLflow run (empty when there is no run)."""
    return {"mlflow_run": {"trackingUri": tracking_uri, "runId": run_id}} if run_id else {}


def gx_assertions(result: dict[str, Any], limit: int = 200) -> list[dict[str, Any]]:
    """The expectations of a GX 1.x validation result as OpenLineage assertions (type, success, column)."""
    assertions = []
    for item in result.get("results", [])[:limit]:
        config = item.get("expectation_config") or {}
        column = (config.get("kwargs") or {}).get("column")
        assertions.append(
            {"assertion": str(config.get("type", "unknown")), "success": bool(item.get("success")), "column": column}
        )
    return assertions


def gx_validation(
    summary: dict[str, Any], assertions: list[dict[str, Any]], rows: int | None, suite_path: str
) -> Lineage:
    """A validation: the checked file with its assertions and row count; the verdict as a run facet. A DataFrame
    validated in Python (no ``data_path``) names no dataset."""
    stats = summary.get("statistics") or {}
    verdict = {
        "suite": suite_path,
        "success": bool(summary.get("success")),
        "evaluated": int(stats.get("evaluated", 0) or 0),
        "successful": int(stats.get("successful", 0) or 0),
        "resultPath": str(summary.get("result_path", "")),
        "dataset": str(summary.get("dataset", "")),
        "partition": str(summary.get("partition", "")),
    }
    if not summary.get("data_path"):
        return Lineage(run_facets={"gx_validation": verdict})
    facets: Facets = {"data_quality_assertions": {"assertions": assertions}}
    if rows is not None:
        facets["data_quality_metrics"] = {"rowCount": rows}
    return Lineage(
        inputs=[replace(stored_file(str(summary["data_path"])), facets=facets)], run_facets={"gx_validation": verdict}
    )
