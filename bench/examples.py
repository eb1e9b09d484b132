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


WEATHER = ("temperature_c", "daylight_hours", "humidity_pct", "rain_mm", "wind_kmh", "uv_index", "cloud_pct")


def with_weather(frame: Any, day: dt.date, seed: int = 0) -> Any:
    """``frame`` plus seven weather columns that follow the season (day of year) and do not affect the label: the
    kind of columns that move every day of a season change while the model barely uses them."""
    import math

    import numpy as np

    rng = np.random.default_rng(seed + day.toordinal())
    season = math.sin(2 * math.pi * (day.timetuple().tm_yday - 110) / 365)  # +1 late July, -1 late January
    n = len(frame)
    out = frame.copy()
    out["temperature_c"] = 12 + 12 * season + rng.normal(0, 3, n)
    out["daylight_hours"] = 12 + 4 * season + rng.normal(0, 0.3, n)
    out["humidity_pct"] = 65 - 12 * season + rng.normal(0, 8, n)
    out["rain_mm"] = rng.exponential(2.5 - 1.5 * season, n)
    out["wind_kmh"] = 18 - 6 * season + rng.normal(0, 5, n)
    out["uv_index"] = np.clip(4 + 3.5 * season + rng.normal(0, 1, n), 0, None)
    out["cloud_pct"] = np.clip(55 - 20 * season + rng.normal(0, 15, n), 0, 100)
    return out


def seasonal_example(spec_name: str = "card_fraud") -> Example:
    """The seasonal test case: the spec's features plus ``WEATHER``; trained on 7 July days; later days are calm
    January days, then January days with the generator's drift."""
    import pandas as pd
    import train as template

    from mlops_provider.demo import SOURCES, SourceSpec
    from mlops_provider.loop.spec import load_spec
    from mlops_provider.ml.split import HoldoutSplit

    spec = load_spec(PROJECT_ROOT / "include" / "models" / f"{spec_name}.yaml")
    data = spec.model_dump()
    data["features"]["numerical"] = [*spec.features.numerical, *WEATHER]
    spec = type(spec).model_validate({**data, "path": spec.path})
    july = [dt.date(2026, 7, 1) + dt.timedelta(days=i) for i in range(WINDOW)]
    january = [dt.date(2027, 1, 10) + dt.timedelta(days=i) for i in range(CALM_DAYS + DRIFT_DAYS)]
    drift_from = january[CALM_DAYS]
    source = SOURCES[spec.dataset.table]
    frames = {d: with_weather(source.generate(d, SourceSpec(drift_from=drift_from)), d) for d in [*july, *january]}
    split = HoldoutSplit.from_mapping(spec.holdout)
    reference = pd.concat([frames[d] for d in july], ignore_index=True)
    params = {k: v["default"] for k, v in json.loads(spec.resolve(spec.training.hyperparameters).read_text()).items()}
    model, _, features = template.train(*split.split(reference), spec.entrypoint_schema(), params)
    return Example(spec, frames, drift_from, split, model, features)


def example(spec_name: str) -> Example:
    import pandas as pd
    import train as template

    from mlops_provider.demo import SOURCES, SourceSpec
    from mlops_provider.loop.spec import load_spec
    from mlops_provider.ml.split import HoldoutSplit

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
