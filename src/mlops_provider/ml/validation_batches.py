"""Validate a partition batch by batch and merge the results into exactly the verdict of a whole-frame run.

Great Expectations validates one DataFrame in memory, so a whole-frame run needs memory in proportion to the
partition. Here GX runs on each batch (a slice of rows) and the per-batch results are merged by the rule of
each expectation type:

- **row-wise** expectations (a row passes or fails on its own: not null, in set, between, regex, type of an
  ``object`` column, a column pair): element, missing and unexpected counts are summed and ``mostly`` is judged on
  the sums with GX's own formula, so the verdict and the counts equal a whole-frame run's;
- **schema** expectations (columns, column count, the dtype of a typed column) see the same thing in every batch:
  they pass when every batch passes;
- **aggregates** are recomputed from partial statistics kept per batch: row count (a sum), mean and sum (sums and
  non-null counts; floats may differ from a whole-frame run in the last bits of the summation order), min and max,
  distinct-value sets (a union) and uniqueness (an 8-byte key a row of the column: numbers compared exactly, text
  by a 64-bit hash, see :func:`_unique`; a small partition's keys are held in one array and sorted once at the
  end, a large one's are spilled to hash-bucket files on disk and counted a bucket at a time, so memory stays
  flat in the partition's rows, see :class:`KeyColumn`).

An expectation type not listed here (a median, a quantile, a standard deviation, an order across rows) has no
exact merge: :func:`unmergeable` names it, and the caller validates the whole frame instead.

Pure rules on JSON-shaped results and pandas frames; no GX import.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ROW_WISE = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_match_like_pattern",
        "expect_column_values_to_not_match_like_pattern",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_to_be_in_set",
        "expect_multicolumn_sum_to_equal",
        "expect_select_column_values_to_be_unique_within_record",
    }
)
# The dtype of a typed column is the same in every batch (see batch_dtypes); an ``object`` column is checked
# value by value and merges as a row-wise expectation. The result's shape says which of the two GX did.
TYPE_CHECKS = frozenset({"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"})
SCHEMA = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_column_to_exist",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)
ROW_COUNT = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
COLUMN_STATS = {
    "expect_column_mean_to_be_between": "mean",
    "expect_column_sum_to_be_between": "sum",
    "expect_column_min_to_be_between": "min",
    "expect_column_max_to_be_between": "max",
}
DISTINCT = frozenset(
    {
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
        "expect_column_unique_value_count_to_be_between",
    }
)
UNIQUE = frozenset({"expect_column_values_to_be_unique"})
MERGEABLE = ROW_WISE | TYPE_CHECKS | SCHEMA | ROW_COUNT | frozenset(COLUMN_STATS) | DISTINCT | UNIQUE
PARTIAL_LIST_LENGTH = 20  # GX's SUMMARY format keeps 20 unexpected values


def unmergeable(expectations: list[dict[str, Any]]) -> list[str]:
    """The expectation types of a suite that have no exact merge across batches (sorted, each once)."""
    return sorted({str(e.get("type")) for e in expectations} - MERGEABLE)


def is_between(value: Any, kwargs: dict[str, Any]) -> bool:
    """GX's bound check of an aggregate: ``min_value``/``max_value`` (None: open), ``strict_min``/``strict_max``."""
    if value is None:
        return False
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and not (value > low if kwargs.get("strict_min") else value >= low):
        return False
    return not (high is not None and not (value < high if kwargs.get("strict_max") else value <= high))


def mostly_success(considered: int, unexpected: int, mostly: float) -> bool:
    """GX's ``mostly`` rule (vacuously true when no row is considered)."""
    if considered == 0:
        return True
    return (float(considered) - float(unexpected)) / float(considered) >= mostly


def map_result(
    element: int, unexpected: int, missing: int | None, partial: list[Any], mostly: float
) -> tuple[bool, dict[str, Any]]:
    """Success and SUMMARY-shaped result of a row-wise expectation from whole-partition counts.

    ``missing`` is None for expectations that consider every row (``not_be_null``), as GX does."""
    considered = element if missing is None else element - missing
    success = True if element == 0 else mostly_success(considered, unexpected, mostly)
    total_pct = unexpected / element * 100 if element else None
    if missing is None:
        nonmissing_pct = total_pct
    else:
        nonmissing_pct = unexpected / considered * 100 if element and considered > 0 else None
    counts = Counter(_hashable(v) for v in partial)
    result: dict[str, Any] = {
        "element_count": element,
        "unexpected_count": unexpected,
        "unexpected_percent": nonmissing_pct,
        "partial_unexpected_list": partial[:PARTIAL_LIST_LENGTH],
        "partial_unexpected_counts": [
            {"value": value, "count": count} for value, count in counts.most_common(PARTIAL_LIST_LENGTH)
        ],
    }
    if missing is not None:
        result.update(
            missing_count=missing,
            missing_percent=missing / element * 100 if element else None,
            unexpected_percent_total=total_pct,
            unexpected_percent_nonmissing=nonmissing_pct,
        )
    return success, result


def _hashable(value: Any) -> Any:
    """A value of an unexpected list as a counter key (a column pair's values come as a list, rows as dicts)."""
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def batch_dtypes(schema: Any, null_counts: dict[str, int]) -> dict[str, str]:
    """The pandas dtypes a whole-file read gives the columns whose batch dtype can differ from it.

    Arrow integers and booleans become ``int64``/``bool`` in a batch without nulls but ``float64``/``object`` in
    a whole-file read when any row of the file is null: such columns are cast on every batch. ``schema`` is the
    file's ``pyarrow.Schema``; ``null_counts`` the nulls per column over the whole file."""
    import pyarrow as pa

    dtypes: dict[str, str] = {}
    for field in schema:
        if not null_counts.get(field.name):
            continue
        if pa.types.is_integer(field.type):
            dtypes[field.name] = "float64"
        elif pa.types.is_boolean(field.type):
            dtypes[field.name] = "object"
    return dtypes


SPILL_KEYS = 2_000_000  # a unique column's keys held in memory (16 MB) before they go to bucket files on disk
BUCKET_KEYS = 1_000_000  # the keys a bucket file is sized for (8 MB): the merge sorts one bucket at a time
UNKNOWN_ROWS_BUCKETS = 256  # buckets when the partition's row count is not known (1M keys each at 256M rows)
STREAMED_BUCKET = 4  # a bucket over this many times BUCKET_KEYS (one value repeated a lot) is counted in chunks
_MIX = 0x9E3779B97F4A7C15  # Fibonacci hashing: spreads numbers that are close (ids, counts) over the buckets


class KeyColumn:
    """The 8-byte uniqueness keys (:func:`_compact`) of one column over all batches, and their count of repeated
    rows.

    Up to ``spill_keys`` keys are held in one int64 array (a small partition never touches the disk). With
    ``capacity`` (the partition's row count, an upper bound of its non-null values) that array is allocated once
    and each batch's keys are written into it; without it the array grows by doubling. Past ``spill_keys`` (or from
    the first batch when ``capacity`` is over it) the keys are **spilled**: each batch's keys are split by a hash
    of the key into bucket files (raw int64) in a temporary folder under ``spill_dir``. Equal keys always land in
    the same bucket, so the repeated rows are counted bucket by bucket (:meth:`repeated`): memory is one batch's
    keys while adding and one bucket (about ``bucket_keys`` keys) while counting, flat in the partition's rows
    (issue 31 item 5: 16 bytes a row with the demo suite's two unique columns before, 800 MB at 50M rows). A
    bucket far over its size (one value repeated a great many times) is counted in chunks by distinct value.
    """

    def __init__(
        self,
        capacity: int | None = None,
        *,
        spill_dir: str | Path | None = None,
        spill_keys: int = SPILL_KEYS,
        bucket_keys: int = BUCKET_KEYS,
    ) -> None:
        import numpy as np

        self.spill_dir, self.spill_keys, self.bucket_keys = spill_dir, int(spill_keys), max(int(bucket_keys), 1)
        capacity = max(int(capacity or 0), 0)
        if capacity:
            wanted = -(-capacity // self.bucket_keys)
            self.buckets = min(max(1 << (wanted - 1).bit_length(), 16), 1024)  # a power of two
        else:
            self.buckets = UNKNOWN_ROWS_BUCKETS
        self.array = np.empty(capacity if capacity <= self.spill_keys else 0, dtype="int64")
        self.size = 0  # keys held in ``array``
        self.spilled_keys = 0  # keys written to bucket files
        self._folder: Any = None  # tempfile.TemporaryDirectory once spilled
        if capacity > self.spill_keys:
            self._spill_start()

    @property
    def spilled(self) -> bool:
        """Whether the keys are in bucket files (past ``spill_keys``) rather than in memory."""
        return self._folder is not None

    def __len__(self) -> int:
        """The keys added so far (the column's non-null values)."""
        return self.size + self.spilled_keys

    def append(self, part: np.ndarray) -> None:
        """Add one batch's keys."""
        import numpy as np

        if self.spilled:
            self._spill(part)
            return
        need = self.size + len(part)
        if need > self.spill_keys:
            self._spill_start()
            self._spill(self.array[: self.size])
            self.array, self.size = np.empty(0, dtype="int64"), 0
            self._spill(part)
            return
        if need > len(self.array):
            grown = np.empty(max(need, 2 * len(self.array)), dtype="int64")
            grown[: self.size] = self.array[: self.size]
            self.array = grown
        self.array[self.size : need] = part
        self.size = need

    def keys(self) -> np.ndarray:
        """The keys held in memory (a view of the array, not a copy; empty once spilled)."""
        return self.array[: self.size]

    def repeated(self) -> int:
        """The rows whose key occurs more than once (GX's ``duplicated(keep=False)``). The keys held in memory are
        sorted in place; spilled keys are counted one bucket at a time, and their files removed."""
        if not self.spilled:
            return _repeated(self.keys())
        try:
            return sum(self._bucket_repeated(path) for path in sorted(Path(self._folder.name).iterdir()))
        finally:
            self.close()

    def close(self) -> None:
        """Remove the bucket files (the keys are gone: the column cannot be counted again)."""
        if self._folder is not None:
            self._folder.cleanup()

    def _spill_start(self) -> None:
        import tempfile

        if self.spill_dir is not None:
            Path(self.spill_dir).mkdir(parents=True, exist_ok=True)
        self._folder = tempfile.TemporaryDirectory(prefix="unique-keys.", dir=self.spill_dir)

    def _spill(self, part: np.ndarray) -> None:
        """Append one batch's keys to the bucket files, each key to the bucket of its hash."""
        import numpy as np

        if not len(part):
            return
        shift = np.uint64(64 - (self.buckets.bit_length() - 1))
        bucket = part.view("uint64") * np.uint64(_MIX)
        bucket >>= shift  # the top bits of the mixed key: 0 .. buckets - 1
        bucket = bucket.view("int64")
        ends = np.cumsum(np.bincount(bucket, minlength=self.buckets))
        ordered = part[np.argsort(bucket, kind="stable")]
        del bucket
        folder, begin = Path(self._folder.name), 0
        for index, end in enumerate(ends.tolist()):
            if end > begin:
                with open(folder / f"{index:04d}.i64", "ab") as handle:
                    ordered[begin:end].tofile(handle)
            begin = end
        self.spilled_keys += len(part)

    def _bucket_repeated(self, path: Path) -> int:
        import numpy as np

        count = path.stat().st_size // 8
        if count <= STREAMED_BUCKET * self.bucket_keys:
            return _repeated(np.fromfile(path, dtype="int64"))
        # One value (or a few) repeated far more than a bucket holds: count by distinct value, a chunk at a time.
        values, counts = np.empty(0, dtype="int64"), np.empty(0, dtype="int64")
        with open(path, "rb") as handle:
            for _ in range(0, count, self.bucket_keys):
                chunk = np.fromfile(handle, dtype="int64", count=self.bucket_keys)
                chunk_values, chunk_counts = np.unique(chunk, return_counts=True)
                values, inverse = np.unique(np.concatenate([values, chunk_values]), return_inverse=True)
                counts = np.bincount(inverse, weights=np.concatenate([counts, chunk_counts]), minlength=len(values))
                counts = counts.astype("int64")
        return int(counts[counts > 1].sum())


class BatchMerger:
    """Accumulates per-batch GX results (JSON dicts, in suite order) and the partial statistics of the aggregate
    expectations, then gives the merged results of the whole partition.

    :param rows: the partition's row count when it is known (a parquet file's metadata): it sizes each unique
        column's keys (one array when they fit ``spill_keys``, else the number of bucket files; see
        :class:`KeyColumn`). A wrong count is still correct, only slower or with larger buckets.
    :param spill_dir: where a unique column's keys are spilled past ``spill_keys`` (a temporary folder is made
        in it and removed at the merge; default: the system's temporary folder).
    :param spill_keys: the keys a unique column holds in memory before they are spilled to bucket files.
    :param bucket_keys: the keys a bucket file is sized for (the merge holds one bucket at a time).
    """

    def __init__(
        self,
        rows: int | None = None,
        *,
        spill_dir: str | Path | None = None,
        spill_keys: int = SPILL_KEYS,
        bucket_keys: int = BUCKET_KEYS,
    ) -> None:
        self.items: list[dict[str, Any]] = []  # one accumulator per expectation, by position
        self.batches = 0
        self.rows = rows
        self.spill_dir, self.spill_keys, self.bucket_keys = spill_dir, spill_keys, bucket_keys
        self.keys: dict[int, KeyColumn] = {}  # uniqueness keys per expectation position, moved out of the batches

    def add(self, results: list[dict[str, Any]], frame: pd.DataFrame) -> None:
        """Fold one batch: ``results`` is the batch's ``to_json_dict()["results"]``, ``frame`` the batch itself."""
        if self.batches and len(results) != len(self.items):
            raise ValueError(f"batch {self.batches} has {len(results)} results, the first had {len(self.items)}")
        for index, item in enumerate(results):
            if self.batches == 0:
                self.items.append({"config": item["expectation_config"], "batches": []})
            folded = self._fold(item, frame)
            part = folded.pop("values", None)
            if part is not None:
                column = self.keys.get(index)
                if column is None:
                    column = self.keys[index] = KeyColumn(
                        self.rows, spill_dir=self.spill_dir, spill_keys=self.spill_keys, bucket_keys=self.bucket_keys
                    )
                column.append(part)
                del part
            self.items[index]["batches"].append(folded)
        self.batches += 1

    @staticmethod
    def _fold(item: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
        """What the merge needs of one batch's result: the item itself, and for aggregates a partial statistic."""
        config = item["expectation_config"]
        kind, kwargs = config["type"], config.get("kwargs") or {}
        column = kwargs.get("column")
        kept: dict[str, Any] = {
            "success": bool(item.get("success")),
            "result": item.get("result") or {},
            "exception_info": item.get("exception_info") or {},
        }
        if column is None or column not in frame.columns:
            return kept
        values = frame[column]
        if kind in COLUMN_STATS:
            present = values.dropna()
            kept["stats"] = {
                "sum": present.sum() if len(present) else 0,
                "count": int(len(present)),
                "min": present.min() if len(present) else None,
                "max": present.max() if len(present) else None,
            }
        elif kind in DISTINCT:
            kept["distinct"] = set(values.dropna().unique().tolist())
        elif kind in UNIQUE:
            kept["values"] = _compact(values.dropna())
            kept["rows"] = int(len(values))
        return kept

    def merged(self) -> list[dict[str, Any]]:
        """``[{"success", "result", "exception_info"}]`` per expectation, in suite order. Each unique column's keys
        are counted (sorted in place, or bucket by bucket from disk) and let go of once merged (merging twice is
        not supported)."""
        merged = []
        try:
            for index, item in enumerate(self.items):
                column = self.keys.pop(index, None)
                merged.append(self._merge(item["config"], item["batches"], column))
                del column
        finally:
            self.close()
        return merged

    def close(self) -> None:
        """Remove the spilled keys of every unique column not merged yet (a run that stops half way)."""
        for column in self.keys.values():
            column.close()
        self.keys.clear()

    @staticmethod
    def _merge(config: dict[str, Any], batches: list[dict[str, Any]], keys: KeyColumn | None = None) -> dict[str, Any]:
        kind, kwargs = config["type"], config.get("kwargs") or {}
        for batch in batches:  # an error in any batch (a missing column...) is the verdict, as in a whole frame
            if raised(batch["exception_info"]):
                return {"success": False, "result": batch["result"], "exception_info": batch["exception_info"]}
        results = [b["result"] for b in batches]
        mostly = float(kwargs.get("mostly", 1.0) if kwargs.get("mostly") is not None else 1.0)
        if kind in UNIQUE:
            return _merged(*_unique(batches, mostly, keys))
        if kind in ROW_WISE or (kind in TYPE_CHECKS and "unexpected_count" in results[0]):
            missing = [r.get("missing_count") for r in results]
            partial = [v for r in results for v in r.get("partial_unexpected_list") or []]
            return _merged(
                *map_result(
                    sum(int(r.get("element_count") or 0) for r in results),
                    sum(int(r.get("unexpected_count") or 0) for r in results),
                    None if any(m is None for m in missing) else sum(int(m) for m in missing),
                    partial,
                    mostly,
                )
            )
        if kind in SCHEMA or kind in TYPE_CHECKS:
            failing = [b for b in batches if not b["success"]]
            chosen = failing[0] if failing else batches[0]
            return _merged(not failing, chosen["result"])
        if kind in ROW_COUNT:
            rows = sum(int(r.get("observed_value") or 0) for r in results)
            ok = rows == kwargs.get("value") if kind.endswith("_to_equal") else is_between(rows, kwargs)
            return _merged(ok, {"observed_value": rows})
        if kind in COLUMN_STATS:
            observed = _column_stat(COLUMN_STATS[kind], [b["stats"] for b in batches])
            return _merged(is_between(observed, kwargs), {"observed_value": observed})
        if kind in DISTINCT:
            distinct: set[Any] = set().union(*(b["distinct"] for b in batches))
            return _merged(*_distinct(kind, kwargs, distinct))
        raise ValueError(f"{kind} has no exact merge across batches (see validation_batches.MERGEABLE)")


def raised(exception_info: dict[str, Any]) -> bool:
    """Whether a result's ``exception_info`` holds an error: GX puts ``raised_exception`` at the top, or one
    entry per failed metric (keyed by the metric's id)."""
    if exception_info.get("raised_exception"):
        return True
    return any(isinstance(v, dict) and v.get("raised_exception") for v in exception_info.values())


def _merged(success: bool, result: dict[str, Any]) -> dict[str, Any]:
    return {"success": bool(success), "result": result, "exception_info": None}


def _column_stat(name: str, stats: list[dict[str, Any]]) -> Any:
    count = sum(s["count"] for s in stats)
    if not count:
        return None
    if name in ("sum", "mean"):
        total = sum(s["sum"] for s in stats)
        value = total if name == "sum" else total / count
        return value.item() if hasattr(value, "item") else value
    present = [s[name] for s in stats if s[name] is not None]
    value = min(present) if name == "min" else max(present)
    return value.item() if hasattr(value, "item") and not hasattr(value, "tz_localize") else value


def _distinct(kind: str, kwargs: dict[str, Any], distinct: set[Any]) -> tuple[bool, dict[str, Any]]:
    try:
        observed: list[Any] = sorted(distinct)
    except TypeError:
        observed = sorted(distinct, key=repr)
    if kind == "expect_column_unique_value_count_to_be_between":
        return is_between(len(distinct), kwargs), {"observed_value": len(distinct)}
    value_set = set(kwargs.get("value_set") or [])
    if kind == "expect_column_distinct_values_to_be_in_set":
        ok = not kwargs.get("value_set") or distinct.issubset(value_set)
    elif kind == "expect_column_distinct_values_to_contain_set":
        ok = value_set.issubset(distinct)
    else:
        ok = distinct == value_set
    return ok, {"observed_value": observed}


def _compact(values: pd.Series) -> Any:
    """A batch's non-null values of one column as 8 bytes a row, kept apart from the batch frame: numbers and
    timestamps as their own 64-bit values (exact), anything else (text) as its 64-bit hash
    (``pandas.util.hash_array``: equal values always hash equal, so no duplicate is ever missed)."""
    import numpy as np
    import pandas as pd

    array = values.to_numpy()
    if array.dtype.kind in "iub":
        return array.astype("int64")
    if array.dtype.kind == "f":
        return (array + 0.0).view("int64")  # -0.0 counts as 0.0, as in pandas
    if array.dtype.kind == "M":
        return array.view("int64")
    return pd.util.hash_array(np.asarray(array, dtype=object), categorize=True).view("int64")


def _unique(batches: list[dict[str, Any]], mostly: float, keys: KeyColumn | None) -> tuple[bool, dict[str, Any]]:
    """Uniqueness over the whole partition: every non-null value that occurs more than once is unexpected in each
    of its rows (GX's ``duplicated(keep=False)``), counted on the 8-byte keys of :func:`_compact` (all batches',
    :class:`KeyColumn`: in memory, sorted in place, or spilled to hash-bucket files and counted a bucket at a time;
    the same count either way, since equal keys share a bucket).

    Text is compared by a 64-bit hash: a real duplicate is always counted; two different values whose hashes
    collide (odds about n**2 / 2**65: 3 in a million for 10 million distinct values) would be counted too. The
    partial list of unexpected values is left empty (the keys are not the values)."""
    rows = sum(b.get("rows", int(b["result"].get("element_count") or 0)) for b in batches)
    present = len(keys) if keys is not None else 0
    repeated = keys.repeated() if keys is not None else 0
    return map_result(rows, repeated, rows - present, [], mostly)


def _repeated(keys: np.ndarray) -> int:
    """The keys that occur more than once, each occurrence counted; ``keys`` is sorted in place (a byte a key of
    comparisons besides, no copy)."""
    import numpy as np

    keys.sort()
    same = keys[1:] == keys[:-1]
    # A row is repeated when it equals its left or right neighbour: the equal pairs plus one per run of equals.
    runs = int(np.count_nonzero(same[1:] & ~same[:-1])) + int(bool(len(same)) and bool(same[0]))
    return int(np.count_nonzero(same)) + runs
