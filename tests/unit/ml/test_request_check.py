"""The check of a prediction request against the model's signature: every failure names its column."""

from __future__ import annotations

import pytest

from mlops_provider.ml.request_check import RequestError, check_request, request_rows

pytestmark = pytest.mark.unit

SIGNATURE = [("age", "long", True), ("spend", "double", True), ("plan", "string", True),
             ("premium", "boolean", True), ("signup", "datetime", True), ("note", "string", False)]  # fmt: skip
COLUMNS = ["age", "spend", "plan", "premium", "signup"]
ROW = [31, 12.5, "basic", False, "2026-11-01T00:00:00"]


def test_a_good_request_passes_in_both_formats():
    check_request(SIGNATURE, COLUMNS, [ROW, [40.0, 3, None, True, "2026-11-02"]])
    columns, rows = request_rows({"dataframe_records": [dict(zip(COLUMNS, ROW, strict=True))]})
    check_request(SIGNATURE, columns, rows)
    assert request_rows({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}}) == (COLUMNS, [ROW])


@pytest.mark.parametrize(
    ("columns", "row", "column", "message"),
    [
        (COLUMNS[1:], ROW[1:], "age", "'age' of the model's inputs is missing"),
        ([*COLUMNS, "extra"], [*ROW, 1], "extra", "'extra' is not an input"),
        (COLUMNS, ["31", *ROW[1:]], "age", "expects long, got str"),
        (COLUMNS, [31.5, *ROW[1:]], "age", "expects long"),
        (COLUMNS, [31, "12.5", *ROW[2:]], "spend", "expects double"),
        (COLUMNS, [31, True, *ROW[2:]], "spend", "expects double, got bool"),
        (COLUMNS, [*ROW[:3], "yes", ROW[4]], "premium", "expects boolean"),
        (COLUMNS, [*ROW[:4], "yesterday"], "signup", "expects datetime"),
        (COLUMNS, [None, *ROW[1:]], "age", "null in row 0"),
    ],
)
def test_a_bad_request_names_its_column(columns, row, column, message):
    with pytest.raises(RequestError, match=message) as raised:
        check_request(SIGNATURE, columns, [row])
    assert raised.value.column == column


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "JSON object"),
        ({"instances": []}, "unknown request format"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, "rows of 1 values"),
        ({"dataframe_records": [1]}, "list of objects"),
    ],  # fmt: skip
)
def test_a_request_of_another_shape_is_refused(payload, message):
    with pytest.raises(RequestError, match=message):
        request_rows(payload)


def test_an_empty_request_is_refused():
    with pytest.raises(RequestError, match="no rows"):
        check_request(SIGNATURE, COLUMNS, [])


def test_an_any_column_is_checked_by_the_type_the_model_metadata_declares():
    """Issue 30, item 8: the training template declares numeric features ``any`` (MLflow lets a consumer's ints
    through) and ``double`` in the metadata ``input_types``: the live backend still checks them as numbers."""
    from types import SimpleNamespace

    from mlflow.models import Model, ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from mlops_provider.ml.request_check import input_signature

    schema = Schema(
        [ColSpec(AnyType(), "spend"), ColSpec(AnyType(), "blob"), ColSpec("string", "plan", required=False)]
    )
    typed = SimpleNamespace(
        metadata=Model(signature=ModelSignature(inputs=schema), metadata={"input_types": {"spend": "double"}})
    )
    signature = input_signature(typed)
    assert signature == [("spend", "double", True), ("blob", "any", True), ("plan", "string", False)]
    check_request(signature, ["spend", "blob"], [[3, "anything"], [2.5, 7]])
    with pytest.raises(RequestError, match="column 'spend' expects double, got str") as refused:
        check_request(signature, ["spend", "blob"], [["twelve", 1]])
    assert refused.value.column == "spend"
    assert input_signature(SimpleNamespace(metadata=Model())) == []
