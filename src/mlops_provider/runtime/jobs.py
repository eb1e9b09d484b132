"""One invocation of the training entrypoint: what the runners (:mod:`.runners`) run, for a training and for each
trial of a tuning study (:mod:`.tuner`); how it fails is in :mod:`mlops_provider.exceptions`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainingJob:
    """One invocation of the training entrypoint (the contract: docs/training-entrypoint.md)."""

    train: Path
    holdout: Path
    schema: dict[str, Any]
    tracking_uri: str
    mlflow_run_id: str
    params: dict[str, Any]
    tags: dict[str, str]
    output: Path
    env: dict[str, str] = field(default_factory=dict)

    def arguments(self) -> list[str]:
        return [
            "--train",
            str(self.train),
            "--holdout",
            str(self.holdout),
            "--schema",
            json.dumps(self.schema, sort_keys=True),
            "--tracking-uri",
            self.tracking_uri,
            "--run-id",
            self.mlflow_run_id,
            "--params",
            json.dumps(self.params, sort_keys=True),
            "--tags",
            json.dumps(self.tags, sort_keys=True),
            "--output",
            str(self.output),
        ]
