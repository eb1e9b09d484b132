"""``[core] hostname_callable`` of the distributed mode's Celery workers on one machine (imported by the workers at
run time, so it stays in the installed package)."""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """``MLOPS_WORKER_NAME`` when set (each Celery worker gets its own, so the UI and the API show which worker ran a
    task), else the machine's name as Airflow's default gives it."""
    return os.environ.get("MLOPS_WORKER_NAME") or socket.getfqdn()
