"""Batched validation holds one batch at a time (issue 31): GX lets go of each frame before the next is read, the
results store keeps one result per run, and the merge drops each batch's uniqueness keys as it moves them."""

from __future__ import annotations

import datetime as dt
import gc
import weakref
from collections.abc import Iterator

import pandas as pd
import pytest

from mlops_provider.demo.churn_source import piece_of_day
from mlops_provider.hooks.great_expectations import GreatExpectationsHook
from mlops_provider.operators.great_expectations import normalize_types, parquet_batches
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration

SUITE = PROJECT_ROOT / "include" / "gx" / "expectations" / "customer_activity.json"
BATCH_ROWS = 300


def test_each_batch_frame_is_released_before_the_next_is_read(tmp_path):
    hook = GreatExpectationsHook(docs_dir=tmp_path / "docs")
    released: list[bool] = []
    refs: list[weakref.ref[pd.DataFrame]] = []

    day = piece_of_day(dt.date(2026, 11, 1), 4 * BATCH_ROWS, 0)
    day["signup_date"] = pd.to_datetime(day["signup_date"])
    path = tmp_path / "day.parquet"
    day.to_parquet(path, index=False)
    del day

    def frames() -> Iterator[pd.DataFrame]:
        for batch in parquet_batches(path, BATCH_ROWS):  # as the operator reads a partition
            frame, _ = normalize_types(batch)
            del batch
            refs.append(weakref.ref(frame))
            yield frame
            del frame
            gc.collect()
            released.append(refs[-1]() is None)  # nothing outside this generator holds the batch any more

    result, page = hook.validate_batches(frames(), SUITE, run_name="memory")
    assert result.success, [r.expectation_config.type for r in result.results if not r.success]
    assert result.meta["batches"] == len(released) >= 4
    assert all(released)
    keys = [k for k in hook.context.validation_results_store.list_keys() if k.run_id.run_name == "memory"]
    assert len(keys) == 1  # the merged result, not one per batch
    assert page is not None


def test_merge_drops_each_batch_uniqueness_keys():
    from mlops_provider.ml.validation_batches import BatchMerger

    kind = "expect_column_values_to_be_unique"
    item = {"expectation_config": {"type": kind, "kwargs": {"column": "id"}}, "success": True,
            "result": {"element_count": 2, "unexpected_count": 0, "missing_count": 0}}  # fmt: skip
    merger = BatchMerger()
    for values in (["a", "b"], ["c", "a"]):
        merger.add([item], pd.DataFrame({"id": values}))
    held = merger.items[0]["batches"]
    assert all("values" in b for b in held)
    (merged,) = merger.merged()
    assert merged["result"]["unexpected_count"] == 2
    assert not any("values" in b for b in held)


def test_a_parquet_file_is_read_one_row_group_at_a_time(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"n": list(range(1000)), "flag": [i % 7 == 0 for i in range(1000)]}), path,
                   row_group_size=500)  # fmt: skip
    sizes = [len(frame) for frame in parquet_batches(path, 200)]
    assert sizes == [200, 200, 100, 200, 200, 100]  # never more than one row group in memory, never over 200 rows
