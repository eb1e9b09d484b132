"""The plugin's URLs: every value from a run (model name, version, day, run id, rev, attempt) is quoted into its path
segment, so a query or fragment character in a value can never change which page a link opens."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from mlops_provider.links.extra_links import (
    CAPTURES_URL_PREFIX,
    DVC_VERSIONS_URL_PREFIX,
    LEDGERS_URL_PREFIX,
    MLFLOW_MODELS_URL_PREFIX,
    MLFLOW_RUNS_URL_PREFIX,
    capture_url,
    dvc_version_url,
    ledger_url,
    mlflow_run_url,
    model_version_url,
)

pytestmark = pytest.mark.unit

ODD = "a?b#c d%"


@pytest.mark.parametrize(
    ("url", "prefix", "segments"),
    [
        (model_version_url(ODD, ODD), MLFLOW_MODELS_URL_PREFIX, [ODD, "versions", ODD]),
        (model_version_url("churn", 3), MLFLOW_MODELS_URL_PREFIX, ["churn", "versions", "3"]),
        (capture_url(ODD, ODD), CAPTURES_URL_PREFIX, [ODD, ODD]),
        (dvc_version_url(ODD), DVC_VERSIONS_URL_PREFIX, [ODD]),
        (mlflow_run_url(ODD), MLFLOW_RUNS_URL_PREFIX, [ODD]),
        (ledger_url(ODD, ODD, ODD), LEDGERS_URL_PREFIX, [ODD, f"v{ODD}", ODD]),
    ],
    ids=["model_version", "model_version_int", "capture", "dvc_version", "mlflow_run", "ledger"],
)
def test_each_value_is_one_quoted_path_segment(url, prefix, segments):
    assert url.startswith(prefix + "/")
    rest = url[len(prefix) + 1 :]
    assert "?" not in rest and "#" not in rest and " " not in rest
    assert [unquote(s) for s in rest.split("/")] == segments
