"""Shared by the monitoring-signal benchmarks: an example model trained on a window of calm days of its own demo
source, and the calm and drifted days that follow (deterministic: the generators' seed and dates)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "plugins"))
sys.path.insert(0, str(PROJECT_ROOT / "include" / "training"))

START = dt.date(2026, 11, 1)
WINDOW, CALM_DAYS, DRIFT_DAYS = 7, 5, 5


@dataclass
class Example:
    """The spec, the frames by day, the first drifted day, the split, and the template's model trained on the
    first ``WINDOW`` days (with the feature description it encodes inputs by)."""

    spec: Any
    frames: dict[dt.date, Any]
    drift_from: dt.date
    split: Any
    model: Any
    features: dict[str, Any]

    @property
    def later_days(self) -> list[dt.date]:
        return sorted(self.frames)[WINDOW:]


def example(spec_name: str) -> Example:
    import pandas as pd
    import train as template

    from mlops_provider.demo import SOURCES, SourceSpec
    from mlops_provider.spec import load_spec
    from mlops_provider.split import HoldoutSplit

    spec = load_spec(PROJECT_ROOT / "include" / "models" / f"{spec_name}.yaml")
    drift_from = START + dt.timedelta(days=WINDOW + CALM_DAYS)
    days = [START + dt.timedelta(days=i) for i in range(WINDOW + CALM_DAYS + DRIFT_DAYS)]
    source = SOURCES[spec.dataset.table]
    frames = {d: source.generate(d, SourceSpec(drift_from=drift_from)) for d in days}
    split = HoldoutSplit.from_mapping(spec.holdout)
    reference = pd.concat([frames[d] for d in days[:WINDOW]], ignore_index=True)
    params = {k: v["default"] for k, v in json.loads(spec.resolve(spec.training.hyperparameters).read_text()).items()}
    model, _, features = template.train(*split.split(reference), spec.entrypoint_schema(), params)
    return Example(spec, frames, drift_from, split, model, features)
