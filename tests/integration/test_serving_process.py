"""The shadow check's model server dies with its task (issue 27 item 6): a kill -9 of the task process takes
`mlflow models serve` and its uvicorn with it, and a retry removes a server an earlier try left running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_provider.runtime.model_servers import LocalModelServer

pytestmark = pytest.mark.integration

#: Stands in for the shadow-check task: starts the model server, says where it is, then stays busy.
RUN_TASK = """
import sys, time
from pathlib import Path
from mlops_provider.runtime.model_servers import LocalModelServer
model_dir, pid_file, ready = sys.argv[1:4]
server = LocalModelServer(Path(model_dir), **({"pid_file": Path(pid_file)} if pid_file != "-" else {}))
server.start()
server.wait_ready()
Path(ready + ".tmp").write_text(f"{server.process.pid} {server.port}")
Path(ready + ".tmp").rename(ready)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group(pgid: int) -> dict[int, str]:
    """The live processes of process group ``pgid``: pid -> command line."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members[int(entry.name)] = cmdline
    return members


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small scikit-learn model saved as an MLflow model folder (what the package step downloads)."""
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("served") / "model"
    features = np.arange(40, dtype=float).reshape(20, 2)
    mlflow.sklearn.save_model(LogisticRegression().fit(features, [0, 1] * 10), folder, pip_requirements=[])
    return folder


def start_task(model_dir: Path, pid_file: Path | str, tmp_path: Path) -> tuple[subprocess.Popen, int, int, dict]:
    """The stand-in task with its server up: (task, server pid, port, the server's process group)."""
    ready = tmp_path / "ready"
    task = subprocess.Popen(
        [sys.executable, "-c", RUN_TASK, str(model_dir), str(pid_file), str(ready)], start_new_session=True
    )
    if not wait_for(ready.exists, 180):
        task.kill()
        pytest.fail("the model server never answered")
    pid, port = (int(x) for x in ready.read_text().split())
    tree = group(os.getpgid(pid))
    assert any("mlflow models serve" in c for c in tree.values()), tree
    assert any("uvicorn" in c for c in tree.values()), tree  # the scoring server mlflow starts
    return task, pid, port, tree


def test_a_kill_9_of_the_task_takes_the_whole_server_with_it(model_dir, tmp_path):
    task, _, port, tree = start_task(model_dir, "-", tmp_path)
    try:
        os.kill(task.pid, signal.SIGKILL)  # the task process only (an OOM kill): the server has its own session
        task.wait()
        assert wait_for(lambda: not any(alive(p) for p in tree), 20), {p: c for p, c in tree.items() if alive(p)}
        assert not listening(port)
    finally:
        for pid in tree:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_retry_removes_the_server_an_earlier_try_left_running(model_dir, tmp_path):
    pid_file = tmp_path / "servers" / "shadow-candidate.pid"
    # The earlier try hangs (its task process lives on, so its server does too) and Airflow starts try 2.
    hung, _, port, tree = start_task(model_dir, pid_file, tmp_path)
    retry = LocalModelServer(model_dir, pid_file=pid_file)
    try:
        retry.start()
        assert not any(alive(p) for p in tree), {p: c for p, c in tree.items() if alive(p)}
        assert not listening(port)
        retry.wait_ready()
        assert retry.invoke({"columns": ["0", "1"], "data": [[0.0, 1.0]]})[0] in ([0.0], [1.0])
    finally:
        retry.stop()
        hung.kill()
        hung.wait()
    assert not alive(retry.process.pid)
    # A pid file naming some other process (a reused pid) is left alone.
    pid_file.write_text(f"{os.getpid()}\n--port 1 \n")
    other = LocalModelServer(model_dir, pid_file=pid_file)
    other.start()
    other.stop()
    assert alive(os.getpid())
