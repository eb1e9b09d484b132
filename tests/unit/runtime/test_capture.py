"""The capture writer (mlops_provider.runtime.capture) in process: a flush per file, rows across midnight in two
days' folders, a full buffer and a failing store drop and count rows without raising, readers skip unfinished files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_provider.ml.capture import CAPTURED_AT, PREDICTION, REQUEST_ID, VERSION, CaptureSettings
from mlops_provider.runtime.capture import CaptureWriter, capture_files, read_day
from mlops_provider.utils.storage import stored

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "mlops"))
    monkeypatch.delenv("MLOPS_STORAGE_URL", raising=False)
    return tmp_path / "mlops"


def rows(n: int, start: int = 0) -> tuple[pd.DataFrame, list[float], list[str]]:
    return (
        pd.DataFrame({"x": [float(i) for i in range(start, start + n)]}),
        [0.5] * n,
        [f"k{i}" for i in range(start, start + n)],
    )


def test_each_flush_writes_one_new_file_and_readers_skip_unfinished_ones(home: Path) -> None:
    drops: list[tuple[str, int]] = []
    writer = CaptureWriter(
        "m", "3", CaptureSettings(flush_rows=2, buffer_rows=10), on_drop=lambda r, n: drops.append((r, n))
    )
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    for start in (0, 3):
        frame, predictions, ids = rows(3, start)
        assert writer.add(frame, predictions, ids, f"req{start}")
        assert writer.flush() == 3
    files = capture_files("m", day)
    assert len(files) == 2 and files[0].name < files[1].name
    (Path(files[0].path).parent / f".{files[1].name}.abc.tmp").write_bytes(b"PAR1 torn")  # a crashed writer's
    frame, read = read_day("m", day, ["x"])
    assert len(read) == 2 and list(frame["x"]) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert set(frame[VERSION]) == {"3"} and list(frame[REQUEST_ID]) == [f"k{i}" for i in range(6)]
    assert list(frame[PREDICTION]) == [0.5] * 6 and drops == [] and writer.flush() == 0  # nothing waits


def test_rows_answered_on_two_days_go_to_two_folders(home: Path) -> None:
    writer = CaptureWriter("m", "1", CaptureSettings())
    before, after = (
        dt.datetime(2026, 12, 6, 23, 59, 59, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 12, 7, 0, 0, 1, tzinfo=dt.timezone.utc),
    )
    for at, start in ((before, 0), (after, 1)):
        frame, predictions, ids = rows(1, start)
        assert writer.add_rows(list(frame.columns), frame.values.tolist(), predictions, ids, "r", at=at)
    assert writer.flush() == 2
    assert [len(capture_files("m", d)) for d in ("2026-12-06", "2026-12-07")] == [1, 1]
    frame, _ = read_day("m", "2026-12-07")
    assert list(frame["x"]) == [1.0] and frame[CAPTURED_AT].iloc[0] == pd.Timestamp(after)


def test_a_full_buffer_drops_and_counts_and_a_failing_store_too(home: Path) -> None:
    drops: list[tuple[str, int]] = []
    blocked = stored(str(home / "not-a-folder"))
    home.mkdir(parents=True)
    Path(blocked.path).write_text("a file where a folder should be")
    writer = CaptureWriter("m", "1", CaptureSettings(flush_rows=5, buffer_rows=5),
                           on_drop=lambda r, n: drops.append((r, n)), folder_for=lambda day: blocked / day)  # fmt: skip
    assert writer.add(*rows(4), "r1")
    assert not writer.add(*rows(2, 4), "r2")  # 6 > 5: dropped whole, counted
    assert writer.buffered == 4
    assert writer.flush() == 0  # the store fails: the rows go, counted; nothing raises
    assert drops == [("buffer_full", 2), ("store_failed", 4)]
    assert writer.dropped == {"buffer_full": 2, "store_failed": 4, "unmatched_output": 0} and writer.buffered == 0


def test_a_day_is_sampled_while_read_counted_whole_per_version_and_found_by_request_id(home: Path) -> None:
    from mlops_provider.runtime.capture import capture_days, describe_day, find_request, sample_day

    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    for version, start, n in (("1", 0, 30), ("2", 30, 10), ("1", 40, 20)):
        writer = CaptureWriter("m", version, CaptureSettings())
        frame, predictions, ids = rows(n, start)
        assert writer.add(frame, predictions, ids, f"req{start}") and writer.flush() == n
    (Path(capture_files("m", day)[0].path).parent / ".torn.abc.tmp").write_bytes(b"PAR1 torn")
    sample = sample_day("m", day, ["x"], max_rows=25, seed=3)
    assert sample.rows == 60 and sample.versions == {"1": 50, "2": 10} and sample.sampled
    assert len(sample.frame) == 25 and sample.frame[REQUEST_ID].is_unique and len(sample.files) == 3
    assert list(sample.frame.columns) == ["x", REQUEST_ID, "mlops_request", PREDICTION, VERSION, CAPTURED_AT]
    again = sample_day("m", day, ["x"], max_rows=25, seed=3)
    assert again.frame[REQUEST_ID].tolist() == sample.frame[REQUEST_ID].tolist()  # seeded: the same rows
    whole = sample_day("m", day, ["x"], max_rows=1000)
    assert not whole.sampled and whole.frame["x"].tolist() == read_day("m", day, ["x"])[0]["x"].tolist()
    described = describe_day("m", day)
    assert described["rows"] == 60 and described["versions"] == {"1": 50, "2": 10}
    assert [f["rows"] for f in described["files"]] == [30, 10, 20] and capture_days("m") == [day]
    (hit,) = find_request("m", "k35")
    assert hit["version"] == "2" and hit["request"] == "req30" and hit["day"] == day
    assert find_request("m", "nobody") == [] and find_request("m", "k35", ["2001-01-01"]) == []


def test_a_day_joined_to_its_labels_a_batch_at_a_time_equals_the_whole_read_join(home: Path) -> None:
    """join_day reads three columns a record batch at a time and joins each batch before the next: the same rows,
    in the same order, as join_labels over the whole day read at once (read_day); its realised metric is the same."""
    from mlops_provider.ml.capture import join_labels, label_lookup, realised_by_version
    from mlops_provider.runtime.capture import join_day

    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    rng = np.random.default_rng(7)
    for version, start, n in (("1", 0, 700), ("2", 500, 450), ("1", 900, 333), ("10", 1200, 5)):
        writer = CaptureWriter("m", version, CaptureSettings(flush_rows=n, buffer_rows=n))
        frame, _, ids = rows(n, start)  # ids overlap between files: a key asked twice is scored each time
        assert writer.add(frame, rng.random(n).tolist(), ids, f"req-{version}-{start}")
        assert writer.flush() == n
    keys = [f"k{i}" for i in range(0, 1400, 2)]  # half the keys labelled, some never served
    labels = pd.DataFrame({"key": keys, "y": rng.integers(0, 2, len(keys)), "noise": 1.0})
    labels.loc[3, "y"] = None  # not labelled yet: not scored
    whole, files = read_day("m", day, [])
    expected = join_labels(whole, labels, "key", "y")
    # ... which is the inner merge on request id (the definition, written out)
    right = labels[["key", "y"]].dropna(subset=["y"]).astype({"key": str}).drop_duplicates("key", keep="last")
    left = whole[[REQUEST_ID, PREDICTION, VERSION]].astype({REQUEST_ID: str, VERSION: str})
    merged = pd.merge(left, right.rename(columns={"key": REQUEST_ID}), on=REQUEST_ID, how="inner")
    pd.testing.assert_frame_equal(expected, merged)
    calls: list[int] = []

    def lookup() -> pd.DataFrame:
        calls.append(1)
        return label_lookup(labels, "key", "y")

    joined = join_day("m", day, lookup, batch_rows=64)
    assert calls == [1] and joined.files == files and joined.rows == len(whole) == 1488
    assert joined.joined is not None and 0 < len(joined.joined) < len(whole)
    pd.testing.assert_frame_equal(joined.joined, expected)
    realised = realised_by_version(joined.joined, "y", 1, "roc_auc", 0.5)
    assert realised == realised_by_version(expected, "y", 1, "roc_auc", 0.5) and set(realised) == {"1", "2", "10"}
    # No labels: nothing joined, the day's rows still counted; no captured rows: the labels are never read.
    assert join_day("m", day, lambda: None) == type(joined)(joined=None, files=files, rows=1488)
    empty = join_day("m", "2026-01-01", lambda: pytest.fail("labels read for a day with no capture"))
    assert empty.joined is None and empty.rows == 0 and empty.files == []
    # Labels that match nothing: an empty join with the join's columns.
    none = join_day("m", day, lambda: label_lookup(labels.assign(key="nobody"), "key", "y"))
    assert none.joined is not None and len(none.joined) == 0 and list(none.joined.columns) == list(expected.columns)


def test_a_flush_types_columns_as_the_signature_says_and_unions_the_columns_of_different_requests(home: Path) -> None:
    import pyarrow.parquet as pq

    kinds = {"x": "double", "n": "long", "ok": "boolean", "s": "string"}
    writer = CaptureWriter("m", "2", CaptureSettings(), kinds=kinds)
    assert writer.add_rows(["x", "n", "ok", "s"], [[1, 2, True, "a"], [2.5, 3, False, None]], [0.1, 0.2],
                           ["i1", "i2"], "r1")  # fmt: skip
    assert writer.add_rows(["x", "extra"], [[3, 7]], [0.3], ["i3"], "r2")  # another request's columns
    assert writer.flush() == 3
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    (path,) = capture_files("m", day)
    schema = pq.read_schema(path.path)
    assert schema.names == ["x", "n", "ok", "s", REQUEST_ID, "mlops_request", PREDICTION, VERSION, CAPTURED_AT,
                            "extra"]  # fmt: skip
    assert [str(schema.field(c).type) for c in ("x", "n", "ok", "s", PREDICTION, VERSION, CAPTURED_AT)] == [
        "double", "int64", "bool", "string", "double", "string", "timestamp[ns, tz=UTC]"]  # fmt: skip
    frame, _ = read_day("m", day)
    assert frame["x"].tolist() == [1.0, 2.5, 3.0] and frame["n"].tolist()[:2] == [2, 3]
    assert frame[REQUEST_ID].tolist() == ["i1", "i2", "i3"] and frame["mlops_request"].tolist() == ["r1", "r1", "r2"]
    assert frame[VERSION].tolist() == ["2"] * 3 and frame[PREDICTION].tolist() == [0.1, 0.2, 0.3]
    assert frame["extra"].tolist()[2] == 7 and pd.isna(frame["extra"].tolist()[0])
    assert str(frame[CAPTURED_AT].dtype) == "datetime64[ns, UTC]"


def test_a_number_column_with_a_value_that_is_not_a_number_is_written_with_a_null(home: Path) -> None:
    writer = CaptureWriter("m", "1", CaptureSettings(), kinds={"x": "double"})
    assert writer.add_rows(["x"], [[1.5], ["oops"]], [0.1, 0.2], ["i1", "i2"], "r1")
    assert writer.flush() == 2 and writer.dropped["store_failed"] == 0
    frame, _ = read_day("m", dt.datetime.now(dt.timezone.utc).date().isoformat())
    assert frame["x"].tolist()[0] == 1.5 and pd.isna(frame["x"].tolist()[1])


def test_rows_a_table_cannot_be_built_of_are_dropped_and_counted_and_the_others_written(home: Path) -> None:
    drops: list[tuple[str, int]] = []
    writer = CaptureWriter("m", "1", CaptureSettings(), on_drop=lambda r, n: drops.append((r, n)))
    assert writer.add_rows(["x", "y"], [[1.0, 2.0], [3.0]], [0.1, 0.2], ["i1", "i2"], "r1")  # a short row
    assert writer.add_rows(["x"], [[4.0]], [0.3], ["i3"], "r2")
    assert writer.flush() == 1  # never raises: the flushing thread must outlive a bad request
    assert drops == [("store_failed", 2)] and writer.dropped["store_failed"] == 2
    frame, _ = read_day("m", dt.datetime.now(dt.timezone.utc).date().isoformat())
    assert frame["x"].tolist() == [4.0]
