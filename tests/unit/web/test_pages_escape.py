"""Every page of the plugin escapes what came with a record (a category, a tag, a run name, a commit message):
the templates autoescape, so markup in any value is shown as text, never as markup."""

from __future__ import annotations

import markupsafe
import pytest

from mlops_provider.web.health import render as render_health
from mlops_provider.web.records import render_capture_day, render_dvc_version, render_model_version, render_run

pytestmark = pytest.mark.unit

MARKUP = "<img src=x onerror=\"alert('x')\">"
SHOWN = str(markupsafe.escape(MARKUP))  # what the template engine writes


def assert_escaped(page: str, expected_count: int) -> None:
    assert MARKUP not in page and "<img" not in page
    assert page.count(SHOWN) >= expected_count, page


def test_run_page() -> None:
    page = render_run({
        "mlflow_ui": None, "run_id": "r1", "run_name": MARKUP, "experiment": MARKUP, "status": "FINISHED",
        "start": "2026-11-01", "end": "2026-11-01", "tracking_uri": "sqlite:///m.db",
        "versions": [{"name": MARKUP, "version": "1"}],
        "metrics": {MARKUP: 0.5}, "params": {"max_depth": MARKUP}, "tags": {MARKUP: MARKUP}, "artifacts": [MARKUP],
    })  # fmt: skip
    assert_escaped(page, 8)  # title, heading, name, experiment, link text, metric, param, tag key/value, artifact
    assert 'href="/mlops/mlflow/models/' in page  # the registered version is still a link


def test_model_version_page() -> None:
    page = render_model_version({
        "mlflow_ui": "http://mlflow.example/", "name": "m", "version": "2", "aliases": [MARKUP], "status": "READY",
        "created": "2026-11-01", "run_id": "r1", "source": MARKUP, "description": MARKUP, "tags": {"segment": MARKUP},
    })  # fmt: skip
    assert_escaped(page, 4)
    assert '<a href="http://mlflow.example/">Open in the MLflow UI</a>' in page


def test_data_version_page() -> None:
    page = render_dvc_version({
        "rev": "a" * 40, "tags": [MARKUP], "date": "2026-11-01", "subject": MARKUP, "workspace": "/w", "remote": "/r",
        "files": [{"path": MARKUP, "md5": "m", "size": 1}],
        "trailers": {"Airflow-Dag-Id": MARKUP, "Airflow-Run-Id": "run"},
    })  # fmt: skip
    assert_escaped(page, 5)
    assert "/dags/%3Cimg" in page  # the DAG id is URL-quoted in the link and escaped in its text


def test_health_page() -> None:
    page = render_health({
        "model_name": MARKUP, "champion": {"version": "1"}, "lineage": {"training set": MARKUP},
        "history": [{"version": "1", "aliases": ["champion"], "trigger_reason": MARKUP, "training_set": MARKUP,
                     "decision": "promote", "promoted_at": None, "reason": MARKUP}],
        "drift": [{"day": "2026-11-01", "drift_share": 0.4, "dataset_drift": True, "reference_version": MARKUP}],
        "performance": [{"day": "2026-11-01", "metric": MARKUP, "value": 0.7}],
        "rebuilt_training_sets": [{"tag": MARKUP, "rebuilt_for": "2026-11-01", "partitions": MARKUP}],
    })  # fmt: skip
    assert_escaped(page, 9)
    assert page.count('class="drift"') == 1 and page.count('class="auc"') == 1


def test_capture_day_page() -> None:
    """The captured-traffic page: the model name, the folder, a version and a file's location and times come from
    the storage (a version label is whatever the backend wrote); each is text, and the version stays a link."""
    page = render_capture_day({
        "model_name": MARKUP, "day": "2026-11-01", "folder": MARKUP, "rows": 4, "versions": {MARKUP: 3, "2": 1},
        "files": [{"name": MARKUP, "location": MARKUP, "rows": 4, "bytes": 10, "versions": {MARKUP: 3, "2": 1},
                   "first_at": MARKUP, "last_at": MARKUP}],
    })  # fmt: skip
    # title, heading, model, folder, lineage hint, the version's link text, file location, its versions, first/last
    assert_escaped(page, 10)
    assert 'href="/mlops/mlflow/models/' in page and "%3Cimg" in page  # the version link, its path URL-quoted
