"""Report pages served by the plugin's app: markup that came with source data stays inert in a real browser,
every answer carries a Content Security Policy, and odd paths are a 404 (finding 2 and 8 of the on-call review)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range
from mlops_provider.operators.great_expectations import SUMMARY_XCOM_KEY, GreatExpectationsValidateOperator
from mlops_provider.operators.sql import SqlToParquetOperator
from mlops_provider.web.app import REPORT_POLICY, SCRIPTED_REPORT_POLICY, checked_parameters, create_app
from tests.e2e.browser import Browser, chromium_binary
from tests.helpers import PROJECT_ROOT, task_context

pytestmark = pytest.mark.integration

SUITE = PROJECT_ROOT / "include" / "gx" / "expectations" / "customer_activity.json"
DAY = dt.date(2026, 11, 5)
#: What whoever can write source rows could put in a category: script in an admin's Airflow session.
INJECTED = "<img src=x onerror=\"document.title='XSS:'+document.cookie\">"
INJECTED_SCRIPT = (
    "</script><script>try{document.title='XSS:'+document.cookie}catch(e){document.title='blocked:'+e.name}</script>"
)


def unauthenticated_app():
    """The real app with Airflow's sign-in dependency lifted (the browser here has no Airflow to sign in to)."""
    app = create_app()
    for dependency in app.router.dependencies:
        if dependency.dependency is not checked_parameters:  # the app's own checks stay
            app.dependency_overrides[dependency.dependency] = lambda: None
    return app


@pytest.fixture
def data_docs_with_markup(mlops_home) -> str:
    """A quarantined partition whose Data Docs page shows a category value carrying markup; its URL."""
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [DAY], SourceSpec(seed=5))
    extracted = SqlToParquetOperator(
        task_id="extract", conn_id="mlops_source", table="customer_activity", timestamp_column="event_ts",
        parse_dates=["event_ts", "signup_date"], dataset="customer_activity",
    ).execute(task_context(DAY))  # fmt: skip
    frame = pd.read_parquet(extracted["path"])
    frame.loc[:9, "device"] = INJECTED
    frame.to_parquet(extracted["path"], index=False)
    context = task_context(DAY)
    with pytest.raises(AirflowFailException, match="expect_column_values_to_be_in_set"):
        GreatExpectationsValidateOperator(
            task_id="validate", data_path=extracted["path"], suite_path=str(SUITE), dataset="customer_activity",
            partition=str(DAY),
        ).execute(context)  # fmt: skip
    docs = Path(context["ti"].pushed[SUMMARY_XCOM_KEY]["docs_path"])
    assert "onerror" in docs.read_text()  # GX writes the value into its page unescaped: the threat is real
    return context["ti"].pushed["_link_DataDocsLink"].removeprefix("/mlops")


@pytest.fixture
def drift_report_with_markup(mlops_home) -> str:
    """An Evidently drift report over a category value that breaks out of the report's own script tag; its URL."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference = pd.DataFrame({"x": range(200), "device": ["mobile", "desktop"] * 100})
    definition = DataDefinition(numerical_columns=["x"], categorical_columns=["device"])
    folder = mlops_home / "reports" / "drift" / "customer_activity"
    folder.mkdir(parents=True)
    for name, device in (("2026-11-04", "mobile"), ("2026-11-05", INJECTED_SCRIPT)):
        current = pd.DataFrame({"x": range(100, 300), "device": [device] * 200})
        snapshot = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )
        snapshot.save_html(str(folder / f"{name}.html"))
    assert INJECTED_SCRIPT in (folder / "2026-11-05.html").read_text()  # Evidently embeds values unescaped
    return "/reports/drift/customer_activity/2026-11-05.html"


def test_every_answer_has_a_policy_and_odd_paths_are_a_404(data_docs_with_markup, drift_report_with_markup):
    client = TestClient(unauthenticated_app())
    docs = client.get(data_docs_with_markup)
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == REPORT_POLICY
    assert REPORT_POLICY.startswith("sandbox;") and "script-src" not in REPORT_POLICY
    assert docs.headers["x-content-type-options"] == "nosniff"
    drift = client.get(drift_report_with_markup)
    assert drift.headers["content-security-policy"] == SCRIPTED_REPORT_POLICY
    assert "connect-src 'none'" in SCRIPTED_REPORT_POLICY and "allow-same-origin" not in SCRIPTED_REPORT_POLICY
    for odd in ("/reports/%00", "/reports/a%00b.html", "/reports/../../etc/passwd", "/reports/%2e%2e/secret"):
        assert client.get(odd).status_code == 404, odd
    missing = client.get("/mlflow/models/none/versions/1")  # one of the app's own pages (404 page included)
    assert "default-src 'none'" in missing.headers["content-security-policy"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served_app() -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(unauthenticated_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_injected_markup_is_inert_in_a_real_browser(
    data_docs_with_markup, drift_report_with_markup, served_app, tmp_path
):
    if chromium_binary() is None:
        if os.environ.get("MLOPS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (MLOPS_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with Browser() as browser:
        docs = browser.visit(
            served_app + data_docs_with_markup, token="session-cookie-value",
            expect=["Expectation Validation Result", "device"],
            screenshot=tmp_path / "data_docs.png",
        )  # fmt: skip
        assert not str(docs["title"]).startswith("XSS"), docs["title"]  # the onerror handler never ran
        clean = browser.visit(  # the sandbox still lets Evidently's own script draw an ordinary report
            served_app + drift_report_with_markup.replace("2026-11-05", "2026-11-04"), token="session-cookie-value",
            expect=["Dataset Drift"], screenshot=tmp_path / "drift_clean.png",
        )  # fmt: skip
        assert "Drift" in clean["text"]
        drift = browser.visit(
            served_app + drift_report_with_markup, token="session-cookie-value", expect=["current_distribution"],
            screenshot=tmp_path / "drift.png",
        )  # fmt: skip
        # The report's own script draws it; the injected script runs in the sandbox, where the Airflow cookie and
        # the origin's session are out of reach.
        assert "session-cookie-value" not in str(drift["title"]), drift["title"]
        assert str(drift["title"]).startswith("blocked:SecurityError"), drift["title"]


#: Values no route may answer 500 to, nor echo a server path for: a NUL byte, the parent folder, an overlong
#: value, and a well-formed value that names nothing.
BAD_VALUES = ("\x00", "..", "x" * 5000, "nothing-by-this-name")
ENCODED = {"\x00": "%00", "..": "%2e%2e"}


def _bad_requests() -> list[tuple[str, str]]:
    """(URL, the bad value in it) for every route of the app that takes a parameter, one parameter at a time."""
    requests = []
    for bad in BAD_VALUES:
        raw = ENCODED.get(bad, bad)
        requests += [
            (f"/dvc/versions/{raw}", bad),
            (f"/mlflow/runs/{raw}", bad),
            (f"/mlflow/models/{raw}/versions/1", bad),
            (f"/mlflow/models/churn/versions/{raw}", bad),
            (f"/ledgers/{raw}/v1/a1", bad),
            (f"/ledgers/churn/{raw}/a1", bad),
            (f"/ledgers/churn/v1/{raw}", bad),
            (f"/reports/{raw}", bad),
            (f"/reports/ledgers/{raw}/v1/a1.json", bad),
            (f"/health?model={raw}", bad),
            (f"/health.json?model={raw}", bad),
        ]
    return requests


@pytest.mark.parametrize("registry", ["absent", "present"])
def test_bad_parameters_are_a_4xx_that_names_the_input_and_no_server_path(mlops_home, tmp_path, registry):
    """Finding 8 of the on-call review: ``/mlops/dvc/versions/%00`` answered 500, and 404 messages showed the data
    registry's folder and the MLflow store's path on the server."""
    from mlops_provider.hooks.dvc import DvcHook

    if registry == "present":
        source = tmp_path / "part.bin"
        source.write_bytes(b"a version")
        DvcHook().version_file(source, "data/x/part.bin", "partition/x/2026-11-01", {})
    client = TestClient(unauthenticated_app(), raise_server_exceptions=False)
    wrong = []
    for url, bad in _bad_requests():
        answer = client.get(url)
        detail = answer.json().get("detail", "") if answer.headers["content-type"] == "application/json" else ""
        if not 400 <= answer.status_code < 500:
            wrong.append((url[:60], answer.status_code, answer.text[:200]))
        elif repr(bad)[1:-1][:40] not in str(detail):  # the message names what was asked for (escaped, maybe cut)
            wrong.append((url[:60], "does not name the input", detail))
        elif str(tmp_path) in answer.text or str(mlops_home) in answer.text:
            wrong.append((url[:60], "shows a server path", detail))
    assert not wrong, "\n".join(map(str, wrong))
