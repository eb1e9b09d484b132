"""Locks for read-compare-set sequences on shared state (the model registry's aliases)."""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager

from mlops_provider.utils.paths import locks_dir


@contextmanager
def registry_lock(model_name: str) -> Iterator[None]:
    """Exclusive lock per registered model, held across processes on this machine (``$MLOPS_HOME/locks``).

    Across machines, the ``model_promotion`` Airflow pool (one slot) serializes the same operators.
    """
    folder = locks_dir()
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)
    with open(folder / f"registry-{safe}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
