"""The consumer tests' shared fixture: the wheel and sdist built from this checkout, once per session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the package (pip install uv)"
    out = tmp_path_factory.mktemp("dist")
    # uv builds the sdist first and the wheel from it, so a file the sdist misses breaks the wheel.
    proc = subprocess.run([uv, "build", "--out-dir", str(out), str(PROJECT_ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"uv": Path(uv), "wheel": wheel, "sdist": sdist}
