"""The local training runner's process dies with its task (finding 6 of the on-call review): a kill -9 of the task
process takes the entrypoint with it, and a retry first stops an entrypoint an earlier try left running."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_provider.runtime.runners import PID_FILE, LocalRunner, TrainingJob

pytestmark = pytest.mark.integration

#: Stands in for a training entrypoint that is busy for a long time: records its pid, then sleeps.
SLOW_ENTRYPOINT = """
import os, sys, time
out = sys.argv[sys.argv.index("--output") + 1]
open(out + ".started", "w").write(str(os.getpid()))
time.sleep(float(os.environ.get("SLEEP", "300")))
open(out, "w").write('{"model_id": "m-1", "metrics": {}}')
"""

RUN_TASK = """
import logging, sys
from pathlib import Path
from mlops_provider.runtime.runners import LocalRunner, TrainingJob
job = TrainingJob(train=Path("t"), holdout=Path("h"), schema={}, tracking_uri="sqlite://", mlflow_run_id=sys.argv[2],
                  params={}, tags={}, output=Path(sys.argv[3]))
LocalRunner(Path(sys.argv[1]), logging.getLogger("task")).run(job)
"""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def entrypoint(tmp_path) -> tuple[Path, Path]:
    """The slow entrypoint and the result file of its job (in the job's work folder)."""
    script = tmp_path / "train.py"
    script.write_text(SLOW_ENTRYPOINT)
    output = tmp_path / "work" / "result.json"
    output.parent.mkdir()
    return script, output


def test_a_kill_9_of_the_task_process_takes_the_training_process_with_it(entrypoint):
    entrypoint, output = entrypoint
    task = subprocess.Popen(
        [sys.executable, "-c", RUN_TASK, str(entrypoint), "run-abc", str(output)], start_new_session=True
    )
    started = Path(f"{output}.started")
    assert wait_for(started.exists), "the entrypoint never started"
    child = int(started.read_text())
    assert (output.parent / PID_FILE).read_text().strip() == str(child)
    os.kill(task.pid, signal.SIGKILL)  # the task process only (an OOM kill): the child is in its own session
    task.wait()
    assert wait_for(lambda: not alive(child), 10), f"training process {child} outlived its task"


def test_a_retry_stops_the_entrypoint_an_earlier_try_left_running(entrypoint, tmp_path):
    entrypoint, output = entrypoint
    # An earlier try's entrypoint that nothing killed (started without the parent-death signal, as older versions did).
    orphan = subprocess.Popen(
        [sys.executable, str(entrypoint), "--run-id", "run-xyz", "--output", str(tmp_path / "orphan.json")],
        start_new_session=True,
    )
    assert wait_for(Path(f"{tmp_path / 'orphan.json'}.started").exists)
    (output.parent / PID_FILE).write_text(f"{orphan.pid}\n")
    job = TrainingJob(train=Path("t"), holdout=Path("h"), schema={}, tracking_uri="sqlite://", mlflow_run_id="run-xyz",
                      params={}, tags={}, output=output, env={"SLEEP": "0"})  # fmt: skip
    LocalRunner(entrypoint, logging.getLogger("retry")).run(job)
    assert orphan.wait(timeout=15) is not None  # stopped before the retry started
    assert output.is_file()
    # A pid file naming some other process (a reused pid) is left alone.
    (output.parent / PID_FILE).write_text(f"{os.getpid()}\n")
    LocalRunner(entrypoint, logging.getLogger("retry")).run(job)
    assert alive(os.getpid())
