"""The contract check loads the logged model with MLflow's requirements scan (~0.4 s CPU a task: it reads every
installed distribution's metadata) only when the model was logged in another environment (the docker runner's
image); a model the local runner logged pinned this interpreter's own versions, so the scan could only agree."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from mlops_provider.ml.contract import EntrypointContractError
from mlops_provider.ml.split import HoldoutSplit
from mlops_provider.runtime.runners import run_training

pytestmark = pytest.mark.unit


class Hook:
    tracking_uri = "sqlite:///unused.db"

    def __init__(self) -> None:
        self.loads: list[tuple[str, bool]] = []
        self.tags: dict[str, str] = {}

    def credential_environment(self) -> dict[str, str]:
        return {}

    def log_params(self, run_id: str, params: dict) -> None:
        pass

    def terminate_run(self, run_id: str, status: str) -> None:
        pass

    def get_run(self, run_id: str) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(tags=self.tags))

    def load_model(self, uri: str, check_requirements: bool = True) -> None:
        self.loads.append((uri, check_requirements))
        raise RuntimeError("stop here: only the load is under test")


class Runner:
    def __init__(self, name: str, hook: Hook) -> None:
        self.name, self.hook = name, hook

    def describe(self) -> dict[str, str]:
        return {"runner": self.name}

    def run(self, job) -> None:  # the entrypoint: logs the tags, writes its result
        self.hook.tags = dict(job.tags)
        job.output.write_text(json.dumps({"model_id": "m-1", "metrics": {"roc_auc": 0.8}}))


@pytest.mark.parametrize(("runner", "scanned"), [("local", False), ("docker", True)])
def test_the_contract_check_scans_requirements_only_for_a_model_logged_elsewhere(tmp_path: Path, runner, scanned):
    frame = pd.DataFrame({"id": [f"k{i}" for i in range(200)], "x": range(200), "y": [i % 2 for i in range(200)]})
    dataset = tmp_path / "dataset.parquet"
    frame.to_parquet(dataset, index=False)
    hook = Hook()
    with pytest.raises(EntrypointContractError, match="model m-1 cannot be loaded"):
        run_training(Runner(runner, hook), hook, dataset=dataset, split=HoldoutSplit(key="id", fraction=0.3, seed=1),
                     schema={"label": "y", "positive_class": 1, "numerical": ["x"], "categorical": []},
                     mlflow_run_id="run-1", params={}, tags={}, work_dir=tmp_path)  # fmt: skip
    assert hook.loads == [("models:/m-1", scanned)]
