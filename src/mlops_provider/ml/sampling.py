"""Bounded, seeded samples of Parquet files: memory grows with the sample, not with the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def sample_parquet(path: str | Path, columns: Sequence[str], max_rows: int, seed: int = 0) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``columns`` of a Parquet file, chosen uniformly with ``seed``.

    The row numbers are drawn first (the same file, columns and seed always give the same rows); the file is
    then read one record batch at a time and only the chosen rows of each batch are kept, so the peak memory
    is one batch plus the sample. A file with at most ``max_rows`` rows is returned whole. Raises ValueError
    naming the columns a file lacks.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    missing = [c for c in columns if c not in parquet.schema_arrow.names]
    if missing:
        raise ValueError(f"{path}: columns missing: {', '.join(missing)}")
    total = parquet.metadata.num_rows
    if total <= max_rows:
        return parquet.read(columns=list(columns)).to_pandas()
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=max_rows, replace=False))
    pieces = []
    offset = 0
    for batch in parquet.iter_batches(batch_size=65_536, columns=list(columns)):
        lo, hi = np.searchsorted(chosen, [offset, offset + batch.num_rows])
        if hi > lo:
            pieces.append(batch.take(pa.array(chosen[lo:hi] - offset)))
        offset += batch.num_rows
    return pa.Table.from_batches(pieces).to_pandas() if pieces else pd.DataFrame(columns=list(columns))
