"""How the shadow check names its servers: the same for every try of one task, so a retry finds an earlier try's."""

from __future__ import annotations

import pytest

from mlops_provider.operators.serving import server_key
from mlops_provider.utils.paths import server_pid_file
from tests.helpers import RecordingTaskInstance

pytestmark = pytest.mark.unit


def test_a_server_key_is_the_same_for_every_try_and_differs_per_task_and_role(monkeypatch, tmp_path):
    first, retry = RecordingTaskInstance(try_number=1), RecordingTaskInstance(try_number=2)
    assert server_key(first, "candidate") == server_key(retry, "candidate")
    assert server_key(first, "candidate") != server_key(first, "champion")
    assert server_key(first, "candidate") != server_key(RecordingTaskInstance(run_id="other"), "candidate")
    assert server_key(first, "candidate") != server_key(RecordingTaskInstance(map_index=3), "candidate")
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    assert server_pid_file(server_key(first, "candidate")).parent == tmp_path / "serving" / "servers"
