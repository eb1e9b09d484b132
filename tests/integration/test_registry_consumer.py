"""Issue 30, item 8: a registered model called as a consumer of the registry would call it (no provider code in
between): ``mlflow.pyfunc.load_model("models:/<name>/<n>")`` and MLflow's scoring server, with raw integer columns
where the model's features are floats (a source table's INTEGER columns). Ints are accepted; a string where a
number belongs is refused with an error naming the column, as the live backend's request check refuses it."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import pandas as pd
import pytest

from mlops_provider.demo.churn_source import SourceSpec, generate_day
from mlops_provider.hooks.mlflow import MlflowHook
from tests.integration.models import SPEC, context, train_op

pytestmark = pytest.mark.integration

NUMERICAL = SPEC.entrypoint_schema()["numerical"]
CATEGORICAL = SPEC.entrypoint_schema()["categorical"]


def consumer_rows() -> pd.DataFrame:
    """Rows as a consumer reads them from the source: every numeric feature an int64 column."""
    frame = generate_day(dt.date(2026, 11, 9), SourceSpec(rows_per_day=60))[[*NUMERICAL, *CATEGORICAL]]
    for column in NUMERICAL:
        frame[column] = frame[column].fillna(0).round().astype("int64")
    return frame


@pytest.fixture
def registered(training_set) -> str:
    """The model trained and registered through the real entrypoint (include/training/train.py): its URI."""
    result = train_op().execute(context())
    return f"models:/churn_classifier/{result['version']}"


def post(url: str, body: dict) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_a_registry_consumer_calls_the_model_with_int_columns_and_is_told_which_column_is_wrong(registered):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from mlops_provider.exceptions import RequestError
    from mlops_provider.ml.request_check import check_request
    from mlops_provider.runtime.backend import signature_of

    rows = consumer_rows()
    assert all(str(rows[c].dtype) == "int64" for c in NUMERICAL)
    with MlflowHook().scoped_environment():
        model = mlflow.pyfunc.load_model(registered)
        local_dir = mlflow.artifacts.download_artifacts(registered)
    from_ints = [float(p) for p in model.predict(rows)]
    from_floats = [float(p) for p in model.predict(rows.astype({c: "float64" for c in NUMERICAL}))]
    assert len(from_ints) == len(rows) and all(0.0 <= p <= 1.0 for p in from_ints)
    assert from_ints == from_floats  # an int is the same number as its float

    wrong = rows.astype({"tenure_days": object})
    wrong.loc[wrong.index[3], "tenure_days"] = "twelve"
    with pytest.raises(MlflowException, match="tenure_days"):
        model.predict(wrong)

    # The live backend's request check reads the same signature: ints pass, the string is a 422 naming the column.
    signature = signature_of(model)
    assert {name: kind for name, kind, _ in signature if name in NUMERICAL} == dict.fromkeys(NUMERICAL, "double")
    records = json.loads(rows.head(5).to_json(orient="split", index=False))
    check_request(signature, records["columns"], records["data"])
    bad = [list(row) for row in records["data"]]
    bad[1][records["columns"].index("tenure_days")] = "twelve"
    with pytest.raises(RequestError, match="tenure_days") as refused:
        check_request(signature, records["columns"], bad)
    assert refused.value.column == "tenure_days"

    # MLflow's own scoring server (what `mlflow models serve` and the serving image run) with the int rows.
    from mlops_provider.runtime.model_servers import LocalModelServer

    server = LocalModelServer(local_dir)
    server.start()
    try:
        server.wait_ready()
        status, body = post(server.url + "/invocations", {"dataframe_split": records})
        assert status == 200, body
        assert json.loads(body)["predictions"] == pytest.approx(from_ints[:5])
        status, body = post(server.url + "/invocations",
                            {"dataframe_split": {"columns": records["columns"], "data": bad}})  # fmt: skip
        assert status == 400 and "tenure_days" in body, (status, body)
    finally:
        server.stop()
