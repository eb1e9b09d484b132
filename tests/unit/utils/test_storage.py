"""Where tasks hand files to each other (mlops_provider.utils.storage): the local default, URLs with their connection,
publication in one step, and the message when the storage's extra is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlops_provider.lineage.datasets import stored_file
from mlops_provider.utils.extras import MissingExtraError
from mlops_provider.utils.storage import local_copy, location, staging_file, storage_root, stored

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "mlops"))
    monkeypatch.delenv("MLOPS_STORAGE_URL", raising=False)
    return tmp_path / "mlops"


def test_the_default_root_is_mlops_home_and_locations_stay_plain_paths(home: Path) -> None:
    root = storage_root()
    assert root.protocol == "file"
    target = root / "staging" / "sales" / "2026-01-01.parquet"
    assert location(target) == str(home / "staging" / "sales" / "2026-01-01.parquet")
    assert location(stored(location(target))) == location(target)  # a plain path reads back as the same file
    assert location(stored(home / "a b.parquet")) == str(home / "a b.parquet")  # no %20


def test_a_url_keeps_its_connection_and_a_root_without_scheme_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    where = "s3://unit_only_conn@bucket/prefix/staging/x.parquet"  # no such connection: nothing is reached
    path = stored(where)
    assert (path.protocol, path.conn_id, path.name) == ("s3", "unit_only_conn", "x.parquet")
    assert location(path) == where
    monkeypatch.setenv("MLOPS_STORAGE_URL", "s3://bucket/prefix/")
    monkeypatch.setenv("MLOPS_STORAGE_CONN_ID", "unit_only_conn")
    assert location(storage_root() / "staging" / "x.parquet") == where
    monkeypatch.setenv("MLOPS_STORAGE_URL", "bucket/prefix")
    with pytest.raises(ValueError, match=r"MLOPS_STORAGE_URL='bucket/prefix' is not a URL"):
        storage_root()


def test_object_storage_without_its_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airflow.providers.amazon", None)
    monkeypatch.setenv("MLOPS_STORAGE_URL", "s3://bucket/prefix")
    with pytest.raises(MissingExtraError, match=r"MLOPS_STORAGE_URL=s3://bucket/prefix needs the 's3' extra.*"
                       r"pip install 'airflow-provider-mlops\[s3\]'"):  # fmt: skip
        storage_root()
    with pytest.raises(MissingExtraError, match="the stored file s3://c@bucket/x"):
        stored("s3://c@bucket/x")


def test_a_file_is_published_whole_or_not_at_all(home: Path) -> None:
    target = storage_root() / "staging" / "d" / "p.parquet"
    with staging_file(target) as tmp:
        tmp.write_text("first")
        assert not Path(target.path).exists()  # not visible before the block ends
    assert Path(target.path).read_text() == "first"
    with pytest.raises(RuntimeError), staging_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer died")
    assert Path(target.path).read_text() == "first"  # the earlier file is untouched
    assert [p.name for p in Path(target.path).parent.iterdir()] == ["p.parquet"]  # no temporary file left
    with local_copy(stored(target.path)) as path:
        assert path == Path(target.path)  # local storage is read in place, not copied


def test_lineage_names_an_object_by_bucket_and_key_without_the_connection() -> None:
    dataset = stored_file("s3://mlops_storage@bucket/prefix/staging/x.parquet", md5="m", rows=3)
    assert (dataset.namespace, dataset.name) == ("s3://bucket", "prefix/staging/x.parquet")
    assert dataset.facets["version"] == {"datasetVersion": "m"}
    local = stored_file("/data/x.parquet")
    assert (local.namespace, local.name) == ("file", "/data/x.parquet")


def test_without_airflow_the_local_root_is_a_plain_path_that_publishes_the_same_way(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serving container holds the model's dependencies, not Airflow: its backend captures to the mounted root."""
    from mlops_provider.runtime.capture import default_folder

    monkeypatch.setitem(sys.modules, "airflow.sdk", None)  # `from airflow.sdk import ...` raises ImportError
    root = storage_root()
    assert root.protocol == "file" and root.path == str(home.absolute())
    target = default_folder("m", "2026-12-06") / "part.txt"
    assert location(target) == str(home.absolute() / "captures" / "m" / "2026-12-06" / "part.txt")
    with staging_file(target) as tmp:
        tmp.write_text("rows")
    assert Path(target.path).read_text() == "rows"
    monkeypatch.setenv("MLOPS_STORAGE_URL", "s3://bucket/prefix")
    with pytest.raises(ImportError):  # object storage needs Airflow: the deployment refuses capture there
        storage_root()
