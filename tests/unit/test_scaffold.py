"""`mlops new-model`'s spec: the settings the scenario suite recommends (issue 28), pure (no database)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlops_provider.scaffold import Source, infer_columns, spec_document, split_settings
from mlops_provider.spec import ModelSpec

pytestmark = pytest.mark.unit

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
