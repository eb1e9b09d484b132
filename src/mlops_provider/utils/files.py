"""File helpers shared by the operators: atomic publication and content hashes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target`` in one step.

    Readers see either the old file or the complete new one, never a half-written file. On error the
    temporary file is removed and ``target`` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(target: Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and publish the result at ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return target


def md5_of_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """MD5 of a file's bytes, read in chunks (the hash DVC uses for single files)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
