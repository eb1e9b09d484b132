"""The sampling rule of bounded reads (mlops_provider.ml.sampling): seeded, exact size, uniform over the sequence of
files, the same rows however the rows are split into files and batches, and the same rows as reading everything
and drawing afterwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_provider.ml import sampling
from mlops_provider.ml.sampling import sample_parquet, sample_parquet_files, sample_positions

pytestmark = pytest.mark.unit


def test_every_row_is_kept_when_the_parts_hold_at_most_max_rows():
    kept = sample_positions([3, 0, 2], max_rows=5, seed=1)
    assert [k.tolist() for k in kept] == [[0, 1, 2], [], [0, 1]]


def test_the_rule_draws_max_rows_distinct_rows_the_same_way_for_the_same_seed():
    counts = [5000, 1200, 0, 7000]
    first = sample_positions(counts, max_rows=1000, seed=7)
    again = sample_positions(counts, max_rows=1000, seed=7)
    other = sample_positions(counts, max_rows=1000, seed=8)
    assert sum(len(k) for k in first) == 1000
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    for keep, count in zip(first, counts, strict=True):
        assert np.all(np.diff(keep) > 0) and (len(keep) == 0 or (keep[0] >= 0 and keep[-1] < count))


def test_the_rule_is_the_draw_over_the_whole_sequence_so_the_split_into_files_does_not_matter():
    whole = sample_positions([10_000], max_rows=300, seed=3)[0]
    split = sample_positions([2500, 2500, 5000], max_rows=300, seed=3)
    offsets = [0, 2500, 5000]
    assert np.array_equal(np.concatenate([k + o for k, o in zip(split, offsets, strict=True)]), whole)


def test_each_part_gets_rows_in_proportion_to_its_size():
    counts = [900_000, 100_000]  # a champion and a 10% canary, one file each
    kept = sample_positions(counts, max_rows=100_000, seed=0)
    assert abs(len(kept[1]) - 10_000) < 600  # binomial sd ~95: far inside


def test_max_rows_must_be_positive():
    with pytest.raises(ValueError, match="max_rows"):
        sample_positions([5], max_rows=0)


def write(path: Path, frame: pd.DataFrame, row_group_size: int) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)
    return path


def frame(start: int, n: int, version: str) -> pd.DataFrame:
    return pd.DataFrame({"i": np.arange(start, start + n), "x": np.arange(start, start + n) * 0.5,
                         "unused": ["u"] * n, "v": [version] * n})  # fmt: skip


def test_files_read_batch_by_batch_give_the_rows_of_the_rule_with_only_the_columns_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(sampling, "BATCH_ROWS", 1000)  # several batches a file
    parts = [frame(0, 4000, "1"), frame(4000, 2500, "2"), frame(6500, 3500, "1")]
    paths = [write(tmp_path / f"{n}.parquet", p, 700) for n, p in enumerate(parts)]
    sample = sample_parquet_files(paths, ["i", "x"], max_rows=900, seed=11, count_column="v")
    assert list(sample.frame.columns) == ["i", "x"]  # "unused" never read; "v" counted, not kept
    assert sample.rows == 10_000 and sample.file_rows == [4000, 2500, 3500]
    assert sample.counts == {"1": 7500, "2": 2500}  # every row counted, not only the sampled ones
    everything = pd.concat(parts, ignore_index=True)
    chosen = np.sort(np.random.default_rng(11).choice(len(everything), size=900, replace=False))
    assert sample.frame["i"].tolist() == everything["i"].iloc[chosen].tolist()  # read whole, then drawn: same rows
    again = sample_parquet_files(paths, ["i", "x"], max_rows=900, seed=11)
    pd.testing.assert_frame_equal(sample.frame, again.frame)


def test_a_file_lacking_a_column_contributes_the_ones_it_has_unless_they_are_required(tmp_path):
    a = write(tmp_path / "a.parquet", frame(0, 10, "1"), 5)
    b = write(tmp_path / "b.parquet", frame(10, 10, "1").drop(columns=["x"]), 5)
    sample = sample_parquet_files([a, b], ["i", "x"], max_rows=100)
    assert sample.frame["i"].tolist() == list(range(20)) and sample.frame["x"].isna().sum() == 10
    with pytest.raises(ValueError, match="b.parquet: columns missing: x"):
        sample_parquet_files([a, b], ["i", "x"], max_rows=100, required=True)
    with pytest.raises(ValueError, match="columns missing: x"):
        sample_parquet(b, ["i", "x"], max_rows=5)
