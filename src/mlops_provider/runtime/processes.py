"""Child processes that die with their task: the one parent-death rule of the training runner and the model servers.

A child starts in a session of its own (its process group is named by its pid) and the kernel signals it when the
task process dies (``PR_SET_PDEATHSIG``), also on ``kill -9`` or an OOM kill of the task. A child that starts
processes of its own (``mlflow models serve`` starts uvicorn, which may start workers) runs under a small guard
that takes its whole process group down when the task dies or the group is asked to stop. The child's pid and a
marker (words of its command line) go into a pid file, so a retry stops what an earlier try left running and
never a process that merely reuses the pid.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops_provider.exceptions import StaleProcessError

PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: The database URL Airflow's task supervisor puts in a task's environment to block the metadata database.
BLOCKED_DATABASE_URL = "airflow-db-not-allowed:///"
_DATABASE_URL_VARIABLES = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN")


def child_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a long-lived child a task starts (a serving backend): the task's, less the database block
    Airflow's task supervisor sets (``airflow-db-not-allowed:///``). The child never opens the metadata database, but
    it may import Airflow (object storage for the storage root), whose settings refuse to parse that URL."""
    environ = dict(os.environ if environ is None else environ)
    for name in _DATABASE_URL_VARIABLES:
        if environ.get(name) == BLOCKED_DATABASE_URL:
            del environ[name]
    return environ


#: The guard of a process group: on SIGTERM (its parent died, or a stop) it SIGKILLs the whole group, itself
#: included; otherwise it waits for its command and exits with its code. Inline, so it needs no import path.
GROUP_GUARD = (
    "import os, signal, subprocess, sys\n"
    "signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))\n"
    "sys.exit(subprocess.call(sys.argv[1:]))\n"
)


def signal_on_parent_death(sig: int = signal.SIGKILL) -> None:  # pragma: no cover - runs between fork and exec
    """Ask the kernel to send ``sig`` to this process when its parent (the task process) dies, however it dies."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def start_bound(
    command: Sequence[str], *, pid_file: Path, marker: str = "", whole_group: bool = False, **popen: Any
) -> subprocess.Popen[Any]:
    """Start ``command`` in its own session, bound to this process's life, and record it in ``pid_file``.

    :param command: the command line.
    :param pid_file: where its pid (its process group) is written, with ``marker`` on a second line when given.
    :param marker: words of the command line that identify it (a retry checks them before it stops anything).
    :param whole_group: run it under :data:`GROUP_GUARD`, so the processes it starts die with it too; otherwise
        the kernel SIGKILLs the command itself when the task dies.
    :param popen: further ``subprocess.Popen`` arguments (stdout, env, text, ...).
    """
    linux = sys.platform.startswith("linux")
    if whole_group:
        command = [sys.executable, "-c", GROUP_GUARD, *command]
    death_signal = signal.SIGTERM if whole_group else signal.SIGKILL
    process = subprocess.Popen(
        list(command),
        start_new_session=True,
        preexec_fn=functools.partial(signal_on_parent_death, death_signal) if linux else None,
        **popen,
    )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{process.pid}\n" + (f"{marker}\n" if marker else ""))
    return process


def _runs_with(pid: int, words: list[str]) -> bool:
    """Whether process ``pid`` runs (not a zombie) with ``words`` in a row in its command line."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (OSError, IndexError):
        return False
    return any(argv[i : i + len(words)] == words for i in range(len(argv)))


def group_members(pgid: int, marker: str) -> list[int]:
    """The live processes of process group ``pgid`` whose command line carries ``marker``."""
    words = marker.split()
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            group = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, IndexError, ValueError):
            continue
        if group == pgid and _runs_with(int(entry.name), words):
            members.append(int(entry.name))
    return members


def stop_earlier(pid_file: Path, log: Any, what: str, marker: str = "", grace: float = 10.0) -> int | None:
    """Stop the process group an earlier try recorded in ``pid_file`` when it still runs with ``marker`` (default:
    the marker recorded in the file): SIGTERM, then SIGKILL. Returns its pid, or None when nothing of it runs.

    :raises StaleProcessError: it did not stop.
    """
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0].split()[0])
    except (OSError, ValueError, IndexError):
        return None
    marker = marker or (lines[1].strip() if len(lines) > 1 else "")
    if not marker or not group_members(pid, marker):
        return None
    log.warning("The %s of an earlier attempt (process group %s, %s) still runs: stopping it first", what, pid, marker)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and group_members(pid, marker):
            time.sleep(0.1)
        if not group_members(pid, marker):
            return pid
    raise StaleProcessError(f"the {what} of an earlier attempt (process group {pid}, {marker}) did not stop")


def stop_group(process: subprocess.Popen[Any], grace: float = 20.0) -> None:
    """Stop a child started by :func:`start_bound` and everything in its process group: SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
