"""`mlops new-model` (mlops_provider.cli.scaffold): the starter files it copies, found in the repository (one copy in
git: include/training and include/serving) as in the wheel (mlops_provider/cli/starter/, force-included); the sampled
range and the bounds learned from per-day worst cases."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlops_provider.cli import scaffold
from mlops_provider.cli.scaffold import (
    NULL_FACTOR,
    NULL_SLACK,
    Source,
    infer_columns,
    null_rate_bound,
    row_count_bounds,
    sample_range,
    spec_document,
    split_settings,
)
from mlops_provider.loop.spec import ModelSpec
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


D = dt.date


def test_sample_range_is_start_to_end_or_days_from_one_of_them_or_the_newest():
    assert sample_range(7, D(2026, 1, 1), D(2026, 1, 31)) == (D(2026, 1, 1), D(2026, 1, 31))
    assert sample_range(5, None, D(2026, 1, 10)) == (D(2026, 1, 6), D(2026, 1, 10))
    assert sample_range(5, D(2026, 1, 10), None) == (D(2026, 1, 10), D(2026, 1, 14))
    assert sample_range(5, None, None) == (None, None)
    with pytest.raises(ValueError, match="--start 2026-01-02 is after --end 2026-01-01"):
        sample_range(5, D(2026, 1, 2), D(2026, 1, 1))
    with pytest.raises(ValueError, match="--days 0"):
        sample_range(0, None, None)


def test_null_rate_bound_is_the_worst_ordinary_day_with_a_margin_not_the_average():
    rates = {f"d{i}": (0.2 if i % 5 == 4 else 0.01) for i in range(20)}  # a regular 1-day-in-5 pattern
    allowed, incidents = null_rate_bound(rates)
    assert incidents == [] and allowed == pytest.approx(0.2 * NULL_FACTOR + NULL_SLACK)
    assert allowed > max(rates.values())


def test_a_mostly_null_day_among_clean_days_is_an_incident_that_sets_no_bound():
    rates = {"d1": 0.0, "d2": 0.01, "d3": 0.02, "d4": 0.9}
    allowed, incidents = null_rate_bound(rates)
    assert incidents == ["d4"] and allowed == pytest.approx(0.02 * NULL_FACTOR + NULL_SLACK)
    assert null_rate_bound({"d1": 0.0, "d2": 0.0}) == (0.0, [])
    assert null_rate_bound({"d1": 0.6, "d2": 0.7, "d3": 0.9})[1] == []  # a mostly-null column: no day is unusual


def test_row_count_bounds_come_from_the_smallest_and_largest_ordinary_day():
    low, high, incidents = row_count_bounds({"mon": 1000, "tue": 1200, "sun": 400, "partial": 30, "double": 9000})
    assert incidents == ["double", "partial"]
    assert low == 200 and high == 1200 * 3 + 10


SOURCE = Source(table="events", timestamp_column="ts", key_column="user_id", label="y")


def sample(timestamps) -> pd.DataFrame:
    return pd.DataFrame({"ts": timestamps, "user_id": [f"u{i}" for i in range(4)], "amount": [1.0, 2.0, 3.0, 4.0],
                         "y": [0, 1, 0, 1]})  # fmt: skip


def test_time_ordered_data_gets_an_out_of_time_holdout_and_enough_days_to_split():
    columns = infer_columns(sample(pd.date_range("2026-11-01", periods=4, freq="D")), SOURCE)
    split, training = split_settings(SOURCE, columns)
    assert split == {"method": "out_of_time", "holdout_days": 2}
    assert training == {"window_days": 7, "min_days": 3}  # no training set too short to hold 2 days out
    document = spec_document("mdl", SOURCE, columns, dt.date(2026, 11, 1), "mdl")
    assert "monitoring" not in document  # its defaults are the recommended settings
    spec = ModelSpec.model_validate(document)
    assert spec.holdout == {"method": "out_of_time", "holdout_days": 2, "time_column": "ts"}
    assert (spec.monitoring.drift_signal, spec.monitoring.label_window_days) == ("learned", 3)
    assert (spec.monitoring.performance_alarm, spec.monitoring.estimate_calibration) == ("interval", "auto")


def test_a_timestamp_column_that_holds_no_times_keeps_the_key_hash_holdout():
    columns = infer_columns(sample(["a", "b", "c", "d"]), SOURCE)
    split, training = split_settings(SOURCE, columns)
    assert split == {"key": "user_id", "fraction": 0.2, "seed": 0} and training == {"window_days": 7}
    spec = ModelSpec.model_validate(spec_document("mdl", SOURCE, columns, dt.date(2026, 11, 1), "mdl"))
    assert spec.split.method == "key_hash"
