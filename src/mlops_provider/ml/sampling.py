"""Bounded, seeded samples of Parquet files: memory grows with the sample, not with the files.

The sampling rule (:func:`sample_positions`): the files are taken in the order given as one sequence of rows; when
it holds more than ``max_rows`` rows, ``max_rows`` row numbers of the sequence are drawn uniformly without
replacement by ``numpy.random.default_rng(seed)`` (the same row counts and seed always give the same rows), else
every row is kept. The files are then read one record batch at a time, with only the needed columns, and only the
drawn rows of each batch are kept, so the peak memory is one batch plus the sample, however many rows the files hold.
A single file sampled alone gets the same rows as the same file sampled as the only part of a sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Rows of one record batch read at a time.
BATCH_ROWS = 65_536


def sample_positions(counts: Sequence[int], max_rows: int, seed: int = 0) -> list[np.ndarray]:
    """The rows kept of each part of a sequence of parts holding ``counts`` rows: per part, the sorted positions
    within it (int64). Every row when the parts hold at most ``max_rows`` rows in all, else ``max_rows`` rows drawn
    uniformly over the whole sequence with ``seed`` (a part gets rows in proportion to its size, on average)."""
    import numpy as np

    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    sizes = [int(c) for c in counts]
    if any(c < 0 for c in sizes):
        raise ValueError(f"row counts must be >= 0, got {sizes}")
    total = sum(sizes)
    if total <= max_rows:
        return [np.arange(c, dtype=np.int64) for c in sizes]
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=max_rows, replace=False)).astype(np.int64)
    bounds = np.cumsum([0, *sizes])
    cuts = np.searchsorted(chosen, bounds)
    return [chosen[cuts[i] : cuts[i + 1]] - bounds[i] for i in range(len(sizes))]


@dataclass
class Sample:
    """A bounded sample of a sequence of Parquet files.

    :param frame: the sampled rows (the columns asked for that the files have).
    :param rows: the rows the files hold in all (not only the sampled ones).
    :param counts: ``{value: rows}`` of ``count_column`` over **all** rows (empty without ``count_column``).
    :param file_rows: rows of each file, in the order given.
    """

    frame: pd.DataFrame
    rows: int
    counts: dict[str, int] = field(default_factory=dict)
    file_rows: list[int] = field(default_factory=list)


def sample_parquet_files(
    paths: Sequence[str | Path],
    columns: Sequence[str],
    max_rows: int,
    seed: int = 0,
    count_column: str | None = None,
    required: bool = False,
) -> Sample:
    """At most ``max_rows`` rows of ``columns`` of the Parquet files ``paths`` taken as one sequence (the rule of
    :func:`sample_positions`), read a record batch at a time. A file lacking some of ``columns`` contributes the
    ones it has (the others are missing values in its rows); with ``required`` a missing column raises ValueError
    naming the file and the columns. ``count_column`` (read for every row, a batch at a time) is counted by value
    over all rows: the sample's denominators."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    sizes = [pq.read_metadata(p).num_rows for p in paths]  # the footers only
    positions = sample_positions(sizes, max_rows, seed)
    pieces: list[pd.DataFrame] = []
    counts: dict[str, int] = {}
    for path, keep in zip(paths, positions, strict=True):
        parquet = pq.ParquetFile(path)  # one file open at a time
        try:
            names = parquet.schema_arrow.names
            missing = [c for c in columns if c not in names]
            if missing and required:
                raise ValueError(f"{path}: columns missing: {', '.join(missing)}")
            present = [c for c in columns if c in names]
            wanted = [*present, *([count_column] if count_column in names and count_column not in present else [])]
            if len(keep) == parquet.metadata.num_rows:  # every row of the file: read as pandas wrote it
                table = parquet.read(columns=wanted)
                _count(table, count_column, counts)
                pieces.append(table.select(present).to_pandas())
                continue
            taken: list[Any] = []
            offset = 0
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
                _count(batch, count_column, counts)
                lo, hi = keep.searchsorted([offset, offset + batch.num_rows])
                if hi > lo:
                    taken.append(batch.select(present).take(pa.array(keep[lo:hi] - offset)))
                offset += batch.num_rows
        finally:
            parquet.close()
        if taken:
            pieces.append(pa.Table.from_batches(taken).to_pandas())
    if not pieces:
        frame = pd.DataFrame(columns=list(columns))
    elif len(pieces) == 1:
        frame = pieces[0]
    else:
        frame = pd.concat(pieces, ignore_index=True, sort=False)
    return Sample(frame=frame, rows=sum(sizes), counts=counts, file_rows=sizes)


def _count(data: Any, column: str | None, counts: dict[str, int]) -> None:
    """Add the value counts of ``column`` of a record batch or table to ``counts`` (nothing without it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column is None or column not in data.schema.names:
        return
    for item in pc.value_counts(data.column(column).cast(pa.string())).to_pylist():
        key = str(item["values"])
        counts[key] = counts.get(key, 0) + int(item["counts"])


def sample_parquet(path: str | Path, columns: Sequence[str], max_rows: int, seed: int = 0) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``columns`` of one Parquet file, chosen uniformly with ``seed``
    (:func:`sample_parquet_files` of the one file). A file with at most ``max_rows`` rows is returned whole. Raises
    ValueError naming the columns the file lacks."""
    return sample_parquet_files([path], columns, max_rows, seed, required=True).frame
