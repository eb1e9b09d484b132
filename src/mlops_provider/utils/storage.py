"""How a file is written to and read from the storage root: the local disk or object storage, chosen by
configuration.

Owns the choice of the storage root (:func:`storage_root`) and the mechanics: atomic publication, uploads and
downloads, locations as XCom and records name them. It names no folder under the root: the layout (reports,
ledgers, staging, quarantine, notifications, ...) is :mod:`mlops_provider.utils.records`; the worker's own folders
are :mod:`mlops_provider.utils.paths`.

Tasks of one DAG run may run on different workers, and the plugin's pages run in the api-server. A file one task
hands to the next (a staged partition, a quarantined one) and every report and record (``reports/``: validation
results and Data Docs, drift and performance reports, verdict ledgers, alarm reviews, retraining records) is put
under one root read through Airflow's :class:`~airflow.sdk.ObjectStoragePath`:

* ``MLOPS_STORAGE_URL`` unset (the embedded default): ``MLOPS_HOME`` on the local disk. Locations are plain paths
  and a file is published by a rename, as before.
* ``MLOPS_STORAGE_URL=s3://<bucket>/<prefix>`` (or any scheme a provider registers with Airflow's object storage:
  ``s3`` needs ``apache-airflow-providers-amazon[s3fs]``, the ``s3`` extra), with the connection
  ``MLOPS_STORAGE_CONN_ID`` (an ``aws`` connection; its extra ``endpoint_url`` points at any S3-compatible store).
  Locations are URLs that name the connection (``s3://<conn_id>@<bucket>/<key>``), so a task on another worker
  reads the same object with the same credentials. An object is written in one upload: readers never see half
  of it.

Work files stay on the worker's own disk (``MLOPS_HOME``): chunk parts, downloads to read, the DVC workspace, the
Data Docs site GX builds before it is published.

One process runs without Airflow: a live serving backend in its container (the ``docker`` serving runner,
:mod:`mlops_provider.runtime.backend_container`; the serving image holds the model's dependencies, not Airflow's).
There the local root is a :class:`LocalStoredPath` (the same folder, mounted at the same path); an object-storage
root needs Airflow, so such a backend does not capture (the deployment refuses that combination, saying so).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_provider.utils.files import atomic_path
from mlops_provider.utils.paths import mlops_home, work_dir

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Environment variable: the root URL of the files tasks hand to each other (unset: ``MLOPS_HOME``).
STORAGE_URL = "MLOPS_STORAGE_URL"
#: Environment variable: the Airflow connection that ``MLOPS_STORAGE_URL`` is read with.
STORAGE_CONN_ID = "MLOPS_STORAGE_CONN_ID"
LOCAL_PROTOCOLS = ("file", "local", "")
#: URL scheme -> the extra of this provider that makes Airflow's object storage read it.
SCHEME_EXTRAS = {"s3": "s3", "s3a": "s3"}


def storage_url() -> str | None:
    """The configured root URL, or None for the local default."""
    return os.environ.get(STORAGE_URL, "").strip().rstrip("/") or None


class LocalStoredPath(type(Path())):  # type: ignore[misc]
    """A local path that answers as a local :class:`~airflow.sdk.ObjectStoragePath` does (``protocol``, ``path``):
    the storage root of a process without Airflow (a serving container; see the module's docstring)."""

    protocol = "file"

    @property
    def path(self) -> str:
        return str(self)


def storage_root() -> ObjectStoragePath:
    """The root under which tasks hand files to each other (see the module's docstring)."""
    url = storage_url()
    try:
        from airflow.sdk import ObjectStoragePath
    except ImportError:  # a serving container: the model's dependencies, no Airflow
        if url is None:
            return LocalStoredPath(mlops_home().absolute())  # type: ignore[return-value]
        raise
    if url is None:
        return ObjectStoragePath(str(mlops_home().absolute()), protocol="file")
    if "://" not in url:
        raise ValueError(f"{STORAGE_URL}={url!r} is not a URL: give a scheme, e.g. s3://bucket/prefix")
    _require_scheme(url, f"{STORAGE_URL}={url}")
    return ObjectStoragePath(url, conn_id=os.environ.get(STORAGE_CONN_ID) or None)


def _require_scheme(url: str, user: str) -> None:
    """Fail with the pip command when the extra that reads ``url``'s scheme is not installed."""
    from mlops_provider.utils.extras import require

    extra = SCHEME_EXTRAS.get(url.split("://", 1)[0].lower())
    if extra:
        require(extra, user=user)


def is_local(path: ObjectStoragePath) -> bool:
    return path.protocol in LOCAL_PROTOCOLS


def location(path: ObjectStoragePath) -> str:
    """How a stored file is named in XCom, logs and messages: a plain path on the local disk, else its URL (with
    the connection id, so that :func:`stored` reads it back with the same credentials)."""
    return path.path if is_local(path) else str(path)


def stored(where: str | os.PathLike[str] | ObjectStoragePath) -> ObjectStoragePath:
    """The stored file named by ``where``: a URL (``s3://conn@bucket/key``), a local path, or a stored path."""
    from airflow.sdk import ObjectStoragePath

    if isinstance(where, ObjectStoragePath):
        return where
    text = os.fspath(where)
    if "://" in text:
        _require_scheme(text, f"the stored file {text}")
        return ObjectStoragePath(text)
    return ObjectStoragePath(str(Path(text).absolute()), protocol="file")


def publish(local: Path, target: ObjectStoragePath) -> None:
    """Put the finished file ``local`` at ``target`` in one step, and remove ``local``.

    On the local disk a rename (readers see the old file or the whole new one); on object storage one upload (an
    object appears only when complete). ``local`` must be on the same disk as a local ``target`` (use
    :func:`staging_file`)."""
    if is_local(target):
        destination = Path(target.path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, destination)
        return
    try:
        stored(local).copy(target)
    finally:
        local.unlink(missing_ok=True)


@contextmanager
def staging_file(target: ObjectStoragePath) -> Iterator[Path]:
    """A temporary local file to write ``target``'s content to; published at ``target`` when the block ends
    without error, removed otherwise (``target`` is then left as it was). On the local disk this is
    :func:`mlops_provider.utils.files.atomic_path`."""
    if is_local(target):
        with atomic_path(Path(target.path)) as tmp:
            yield tmp
        return
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=work_dir("uploads"))
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def local_copy(source: ObjectStoragePath) -> Iterator[Path]:
    """A path on this worker's disk to read ``source`` from: the file itself on the local disk, else a download
    (same name, in a temporary folder) removed when the block ends. Raises FileNotFoundError when it is absent."""
    if is_local(source):
        yield Path(source.path)
        return
    if not source.exists():
        raise FileNotFoundError(location(source))
    folder = Path(tempfile.mkdtemp(prefix="download.", dir=work_dir("downloads")))
    try:
        copy = folder / source.name
        source.copy(stored(copy))
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_text(target: ObjectStoragePath, text: str) -> ObjectStoragePath:
    """Write ``text`` to ``target`` whole or not at all (see :func:`publish`); returns ``target``."""
    with staging_file(target) as tmp:
        tmp.write_text(text)
    return target


def publish_tree(local: Path, target: ObjectStoragePath) -> None:
    """Copy every file under the local folder ``local`` to the same relative place under ``target`` (nothing to do
    when ``target`` is that folder, on local storage)."""
    if is_local(target) and Path(target.path).resolve() == local.resolve():
        return
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        stored(path).copy(target.joinpath(*path.relative_to(local).parts))


def scratch_for(target: ObjectStoragePath) -> Path:
    """The folder on this worker's disk where a tool that only writes local files (GX's Data Docs) builds what is
    then published at ``target``: ``target`` itself on local storage, else its place under ``MLOPS_HOME``."""
    if is_local(target):
        return Path(target.path)
    return work_dir("scratch") / target.path.removeprefix(storage_root().path).strip("/")


def move(source: ObjectStoragePath, target: ObjectStoragePath) -> None:
    """Move a stored file (a rename on the local disk; copy then delete on object storage)."""
    if is_local(source) and is_local(target):
        Path(target.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source.path, target.path)
        return
    source.move(target)
