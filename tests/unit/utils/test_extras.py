"""The provider's extras: a missing one fails the task at run time (not at parse) with the pip command."""

from __future__ import annotations

import sys

import pytest
import tomllib

from mlops_provider.utils.extras import EXTRAS, MissingExtraError, install_command, missing_modules, require
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit


def test_every_integration_extra_of_the_package_is_checked() -> None:
    extras = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) - {"all", "distributed"} == set(EXTRAS)
    assert set(EXTRAS) <= set(extras["all"][0].split("[")[1].rstrip("]").split(","))


def test_installed_extra_passes_and_missing_one_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    require("mlflow", user="x")  # the repository's environment has every extra
    monkeypatch.setitem(sys.modules, "evidently", None)  # what a failed import leaves behind
    assert missing_modules("evidently") == ["evidently"]
    with pytest.raises(MissingExtraError) as err:
        require("evidently", user="DriftReportOperator")
    message = str(err.value)
    assert "DriftReportOperator" in message and "'evidently'" in message
    assert install_command("evidently") == "pip install 'airflow-provider-mlops[evidently]'"
    assert install_command("evidently") in message


def test_unknown_extra_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="unknown extra 'sql'"):
        missing_modules("sql")


def test_operator_parses_without_its_extra_and_its_hook_fails_when_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_provider.operators.dvc import DvcVersionOperator

    monkeypatch.setitem(sys.modules, "dvc", None)
    # parse time: fine
    task = DvcVersionOperator(task_id="version", source_path="x.parquet", target_path="data/x.parquet", tag="x")
    with pytest.raises(MissingExtraError, match=r"pip install 'airflow-provider-mlops\[dvc\]'"):
        _ = task.dvc_hook
