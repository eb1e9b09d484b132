"""The worker's own folders under MLOPS_HOME (mlops_provider.utils.paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_provider.utils import paths

pytestmark = pytest.mark.unit


def test_every_worker_folder_keeps_its_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    assert {
        paths.dvc_workspace_dir(): "data-registry",
        paths.dvc_remote_dir(): "dvc-remote",
        paths.mlflow_store_dir(): "mlflow",
        paths.serving_copy_dir("churn", 3): "serving/churn/v3/model",
        paths.server_pid_file("k-shadow"): "serving/servers/k-shadow.pid",
        paths.training_work_dir("run1"): "training/run1",
        paths.locks_dir(): "locks",
    } == {tmp_path / rel: rel for rel in ("data-registry", "dvc-remote", "mlflow", "serving/churn/v3/model",
                                          "serving/servers/k-shadow.pid", "training/run1", "locks")}  # fmt: skip
    assert not (tmp_path / "training").exists()  # only work_dir creates its folder
    assert paths.work_dir("uploads") == tmp_path / "work" / "uploads" and (tmp_path / "work" / "uploads").is_dir()
    assert paths.home_folder("cache") == tmp_path / "cache"  # the validated-spec cache's folder
    with pytest.raises(KeyError, match="no MLOPS_HOME folder 'scratch'"):
        paths.home_folder("scratch")


def test_mlops_home_defaults_under_airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_HOME", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert paths.mlops_home() == tmp_path / "mlops"
