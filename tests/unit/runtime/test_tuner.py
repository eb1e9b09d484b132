"""The study's journal under the storage root (local disk here; object storage in
tests/integration/test_tuning.py): a study read back by a new process-like storage has every trial, and a second
writer that finds its chunk taken fails instead of interleaving."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_a_study_in_the_journal_is_read_back_whole_and_resumed(tmp_path, monkeypatch) -> None:
    import optuna
    from airflow.sdk import ObjectStoragePath

    from mlops_provider.runtime.tuner import storage_root_journal

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = ObjectStoragePath(str(tmp_path / "tuning" / "run-1"), protocol="file")

    def study() -> optuna.Study:
        storage = optuna.storages.JournalStorage(storage_root_journal(folder))
        return optuna.create_study(study_name="run-1", storage=storage, direction="minimize", load_if_exists=True)

    first = study()
    first.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=3)
    again = study()  # a retry: a new storage over the same folder
    assert [t.params for t in again.trials] == [t.params for t in first.trials] and len(again.trials) == 3
    again.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=2)
    assert len(study().trials) == 5
    chunks = sorted(p.name for p in folder.iterdir())
    assert chunks[0] == "000000000000.jsonl" and all(name.endswith(".jsonl") for name in chunks)

    stale = storage_root_journal(folder)
    listing = stale._chunks()
    stale._chunks = lambda: listing  # it listed the folder just before another writer appended
    storage_root_journal(folder).append_logs([{"op_code": 0, "worker_id": "w"}])
    with pytest.raises(RuntimeError, match="written by another process; one writer per study"):
        stale.append_logs([{"op_code": 0, "worker_id": "w"}])
