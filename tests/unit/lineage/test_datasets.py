"""Dataset naming and facets of the lineage rules (mlops_provider.lineage.datasets) and their OpenLineage form."""

from __future__ import annotations

import pytest

from mlops_provider.lineage.datasets import (
    Lineage,
    dvc_file,
    gx_assertions,
    gx_validation,
    local_file,
    mlflow_model,
    mlflow_run,
    sql_table,
)
from mlops_provider.lineage.mixin import OpenLineageMixin

pytestmark = pytest.mark.unit


def test_sql_tables_are_named_by_connection() -> None:
    assert sql_table("postgres", "db.internal", 5432, "shop", "public.orders") == sql_table(
        "postgres", "db.internal", 5432, "shop", "public.orders"
    )
    pg = sql_table("postgres", "db.internal", 5432, "shop", "public.orders")
    assert (pg.namespace, pg.name) == ("postgres://db.internal:5432", "shop.public.orders")
    lite = sql_table("sqlite", "/data/source.db", None, None, "orders")
    assert (lite.namespace, lite.name) == ("sqlite:///data/source.db", "orders")
    assert sql_table("mysql", None, None, None, "t").namespace == "mysql://localhost"


def test_versioned_files_carry_rev_tag_and_md5() -> None:
    ds = dvc_file("file:///reg", "data/x/partitions/2026-01-01.parquet", rev="a" * 40, tag="partition/x/2026-01-01",
                  md5="m", rows=3)  # fmt: skip
    assert ds.namespace == "dvc+file:///reg"
    assert ds.facets["version"] == {"datasetVersion": "m"}
    assert ds.facets["dvc"] == {"registry": "file:///reg", "path": ds.name, "rev": "a" * 40,
                                "tag": "partition/x/2026-01-01", "md5": "m"}  # fmt: skip
    assert ds.facets["output_statistics"] == {"rowCount": 3}
    assert "version" not in dvc_file("r", "p", tag="t").facets  # a partition named by tag only: no content version
    assert local_file("/tmp/a.json").facets == {}


def test_model_versions_and_runs() -> None:
    model = mlflow_model("sqlite:///m.db", "churn", "7", run_id="r1")
    assert (model.namespace, model.name) == ("mlflow+sqlite:///m.db", "models/churn")
    assert model.facets["version"] == {"datasetVersion": "7"}
    assert model.facets["mlflow_model"]["modelUri"] == "models:/churn/7"
    assert mlflow_run("http://t", "") == {}
    assert mlflow_run("http://t", "r1") == {"mlflow_run": {"trackingUri": "http://t", "runId": "r1"}}


def test_gx_results_become_assertions_and_a_verdict() -> None:
    result = {
        "results": [
            {"success": True, "expectation_config": {"type": "expect_column_values_to_not_be_null",
                                                     "kwargs": {"column": "id"}}},
            {"success": False, "expectation_config": {"type": "expect_table_row_count_to_be_between", "kwargs": {}}},
        ]
    }  # fmt: skip
    assertions = gx_assertions(result)
    assert assertions == [
        {"assertion": "expect_column_values_to_not_be_null", "success": True, "column": "id"},
        {"assertion": "expect_table_row_count_to_be_between", "success": False, "column": None},
    ]
    summary = {"success": False, "statistics": {"evaluated": 2, "successful": 1}, "data_path": "/s/d.parquet",
               "dataset": "d", "partition": "2026-01-01", "result_path": "/r.json"}  # fmt: skip
    lineage = gx_validation(summary, assertions, 10, "/suite.json")
    (checked,) = lineage.inputs
    assert checked.name == "/s/d.parquet" and checked.facets["data_quality_metrics"] == {"rowCount": 10}
    assert lineage.run_facets["gx_validation"]["success"] is False
    assert gx_validation({**summary, "data_path": None}, assertions, None, "/suite.json").inputs == []


def test_the_openlineage_form_serializes_with_standard_and_own_facets() -> None:
    from openlineage.client.serde import Serde

    from mlops_provider.lineage.facets import operator_lineage

    lineage = Lineage(
        inputs=[dvc_file("file:///reg", "data/t.parquet", rev="r", tag="t", md5="m")],
        outputs=[mlflow_model("sqlite:///m.db", "churn", "2", run_id="run")],
        run_facets=mlflow_run("sqlite:///m.db", "run"),
    )
    ol = operator_lineage(lineage)
    data = Serde.to_dict(ol.inputs[0])
    assert data["facets"]["version"]["datasetVersion"] == "m"
    assert data["facets"]["mlops_dvc"]["rev"] == "r" and data["facets"]["mlops_dvc"]["_schemaURL"]
    assert Serde.to_dict(ol.outputs[0])["facets"]["mlops_mlflow_model"]["version"] == "2"
    assert Serde.to_dict(ol.run_facets["mlops_mlflow_run"])["runId"] == "run"


def test_an_operator_without_a_result_reports_nothing() -> None:
    class Op(OpenLineageMixin):
        def lineage(self, result):  # noqa: ANN001, ANN202
            return Lineage(outputs=[local_file(result["path"])])

    op = Op()
    assert op.get_openlineage_facets_on_complete(None) is None
    assert op.record_lineage({"path": "/a"}, extra=1) == {"path": "/a"}
    assert op.get_openlineage_facets_on_complete(None).outputs[0].name == "/a"
