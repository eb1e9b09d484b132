"""The starter files `mlops new-model` copies (mlops_provider.cli.scaffold): found in the repository (one copy in
git: include/training and include/serving) as in the wheel (mlops_provider/cli/starter/, force-included)."""

from __future__ import annotations

import pytest

from mlops_provider.cli import scaffold
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit


def test_the_starter_files_are_found_from_the_repository():
    training, serving = scaffold.starter_dir("training"), scaffold.starter_dir("serving")
    assert training == PROJECT_ROOT / "include" / "training" and serving == PROJECT_ROOT / "include" / "serving"
    assert all((training / name).is_file() for name in scaffold.STARTER_TRAINING_FILES)
    assert (serving / "Dockerfile").is_file()


def test_the_wheel_puts_the_starter_files_where_the_scaffold_looks():
    import tomllib

    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    included = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    packaged = {target for target in included.values() if "/starter/" in target}
    expected = {f"mlops_provider/cli/starter/training/{name}" for name in scaffold.STARTER_TRAINING_FILES}
    assert packaged == expected | {"mlops_provider/cli/starter/serving/Dockerfile"}
    assert {source.removeprefix("include/") for source in included} == {
        target.removeprefix("mlops_provider/cli/starter/") for target in packaged
    }
    with pytest.raises(ValueError, match="no starter files 'docs'"):
        scaffold.starter_dir("docs")
