"""The reference docs build without a warning (mkdocs --strict), quote the packaged example DAGs, and document
every operator, sensor, trigger and hook the provider metadata lists."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_provider.get_provider_info import get_provider_info
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_docs_build_strict_and_cover_the_provider(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    reference = "".join(page.read_text() for page in (site / "reference").rglob("index.html"))
    info = get_provider_info()
    for kind in ("operators", "sensors", "triggers", "hooks"):
        for entry in info[kind]:
            for module_name in entry["python-modules"]:
                module = importlib.import_module(module_name)
                for name, cls in vars(module).items():
                    if inspect.isclass(cls) and cls.__module__ == module_name and not name.startswith("_"):
                        assert f'id="{module_name}.{name}"' in reference, f"{module_name}.{name} is not documented"

    # The how-to pages quote the example DAGs (snippets resolved, not left as markers).
    ingest = (site / "howto" / "ingest" / "index.html").read_text()
    assert "orders_db" in ingest and "--8&lt;--" not in ingest
    example = PROJECT_ROOT / "src/mlops_provider/example_dags/example_promotion.py"
    assert "howto_operator_promote_model" in example.read_text()
    assert "PromoteModelOperator" in (site / "howto" / "mlflow" / "index.html").read_text()
