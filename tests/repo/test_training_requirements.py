"""The training image's requirements are the lock file's pins (regenerate with `make training-requirements`)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit


def test_requirements_txt_matches_uv_lock():
    uv = shutil.which("uv")
    assert uv, "uv is needed to check the export (the Makefile installs it)"
    exported = subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--only-group",
            "training",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements-txt",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (PROJECT_ROOT / "include" / "training" / "requirements.txt").read_text()
    assert committed == exported, "include/training/requirements.txt is stale: run `make training-requirements`"
    assert "mlflow==" in committed and "xgboost==" in committed
