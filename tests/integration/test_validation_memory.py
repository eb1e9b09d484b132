"""Batched validation holds one batch at a time (issue 31): GX lets go of each frame before the next is read, the
results store keeps one result per run, and each batch's uniqueness keys go into one array per column as the batch
is added (sized from the partition's row count when it is known), so the merge sorts them where they are."""

from __future__ import annotations

import datetime as dt
import gc
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import pytest

from mlops_provider.demo.churn_source import piece_of_day
from mlops_provider.hooks.great_expectations import GreatExpectationsHook
from mlops_provider.operators.great_expectations import normalize_types, parquet_batches
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration

SUITE = PROJECT_ROOT / "include" / "gx" / "expectations" / "customer_activity.json"
BATCH_ROWS = 300


def traced_merge(merger: Any, item: dict, frames: Iterable[pd.DataFrame]) -> tuple[dict, int, int, int]:
    """Add each frame to ``merger`` as one batch of ``item``'s expectation, then merge, under tracemalloc: the merged
    result, the memory held after the last batch (nothing of it referenced here any more), the peak while adding
    and the peak while merging."""
    import tracemalloc

    tracemalloc.start()
    try:
        for frame in frames:
            merger.add([item], frame)
        del frame  # the last batch is the merger's to keep or drop, not this loop's
        held, adding_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        (merged,) = merger.merged()
        _, merge_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return merged, held, adding_peak, merge_peak


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


def test_no_batch_keeps_its_own_uniqueness_keys():
    from mlops_provider.ml.validation_batches import BatchMerger

    kind = "expect_column_values_to_be_unique"
    item = {"expectation_config": {"type": kind, "kwargs": {"column": "id"}}, "success": True,
            "result": {"element_count": 2, "unexpected_count": 0, "missing_count": 0}}  # fmt: skip
    merger = BatchMerger()
    for values in (["a", "b"], ["c", "a"]):
        merger.add([item], pd.DataFrame({"id": values}))
    held = merger.items[0]["batches"]
    assert not any("values" in b for b in held)  # moved into the column's one array as each batch was added
    (merged,) = merger.merged()
    assert merged["result"]["unexpected_count"] == 2


@pytest.mark.parametrize("hint", [True, False])
def test_the_merge_sorts_the_keys_where_they_are(hint):
    """Issue 31: at 50M rows the keys of a unique column are 400 MB; the merge used to copy them into a new array
    (the old 400 MB not yet returned to the system while the new one filled). With the partition's row count the
    keys are written into one array as batches come and the merge allocates only its comparisons (a byte a row).
    Without it the array grows by doubling (a copy at each growth, none at the merge)."""

    import numpy as np

    from mlops_provider.ml.validation_batches import BatchMerger

    kind = "expect_column_values_to_be_unique"
    rows, batch = 1_000_000, 250_000
    item = {"expectation_config": {"type": kind, "kwargs": {"column": "n"}}, "success": True,
            "result": {"element_count": batch, "unexpected_count": 0, "missing_count": 0}}  # fmt: skip
    merger = BatchMerger(rows=rows if hint else None)
    frames = (pd.DataFrame({"n": np.arange(s, s + batch, dtype="int64")[::-1]}) for s in range(0, rows, batch))
    merged, held, adding_peak, merge_peak = traced_merge(merger, item, frames)
    assert merged["success"] is True and merged["result"]["unexpected_count"] == 0
    keys = 8 * rows
    assert held < 1.2 * keys  # the keys once, nothing per batch besides
    assert merge_peak - held < 0.5 * keys  # comparisons only: no second copy of the keys
    if hint:
        assert adding_peak < 1.2 * keys + 3 * 8 * batch  # one batch's frame and keys beside the array, no growth


def test_a_parquet_file_is_read_one_row_group_at_a_time(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"n": list(range(1000)), "flag": [i % 7 == 0 for i in range(1000)]}), path,
                   row_group_size=500)  # fmt: skip
    sizes = [len(frame) for frame in parquet_batches(path, 200)]
    assert sizes == [200, 200, 100, 200, 200, 100]  # never more than one row group in memory, never over 200 rows


def test_a_large_partitions_uniqueness_keys_stay_on_disk_and_are_counted_a_bucket_at_a_time(tmp_path):
    """Issue 31 item 5: past ``SPILL_KEYS`` keys a unique column's keys go to hash-bucket files as each batch is
    added, so memory while adding is one batch's keys and at the merge about one bucket's, flat in the rows (the
    in-memory array was 8 bytes a row: 400 MB a unique column at 50M rows)."""

    import numpy as np

    from mlops_provider.ml.validation_batches import SPILL_KEYS, BatchMerger

    kind = "expect_column_values_to_be_unique"
    batch = 250_000
    rows = 2 * SPILL_KEYS
    item = {"expectation_config": {"type": kind, "kwargs": {"column": "n"}}, "success": True,
            "result": {"element_count": batch, "unexpected_count": 0, "missing_count": 0}}  # fmt: skip
    merger = BatchMerger(rows=rows, spill_dir=tmp_path)

    def frames():
        for start in range(0, rows, batch):
            values = np.arange(start, start + batch, dtype="int64")[::-1].copy()
            values[0] = 5  # 5 in every batch (and its own row in the first): 17 rows of one value
            yield pd.DataFrame({"n": values})
            del values

    merged, held, adding_peak, merge_peak = traced_merge(merger, item, frames())
    keys = 8 * rows
    assert merged["success"] is False and merged["result"]["unexpected_count"] == rows // batch + 1
    assert merged["result"]["element_count"] == rows and merged["result"]["missing_count"] == 0
    assert held < 0.05 * keys  # nothing grows with the rows: the keys are on disk
    assert adding_peak < 8 * 8 * batch  # a few copies of one batch's keys (frame, keys, buckets, order), no more
    assert merge_peak - held < 0.2 * keys  # one bucket and its comparisons, not the column
    assert list(tmp_path.iterdir()) == []  # the bucket files are removed once merged
