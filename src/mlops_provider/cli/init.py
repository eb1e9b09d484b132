"""``mlops init``: set up an installed deployment for the loop (docs/adopt.md, "Adopt in your Airflow").

What it does, each step idempotent and reported on a line of its own:

1. writes the DAG file (three lines: the DAG factory over the models folder) into Airflow's dags folder, and refuses
   to overwrite a different file of that name;
2. creates the two pools the loop's tasks use (:data:`POOLS`, the numbers of the repository's ``config/pools.json``);
   a pool that exists is kept as it is (its slots may have been tuned), and said so when they differ;
3. checks the settings a component needs to work beside others (a second Airflow on this machine, or workers on
   another): the execution API URL against the API server's port, the log-server and health-check ports, the
   storage (``MLOPS_HOME`` writable; ``MLOPS_STORAGE_URL`` and the executor), and the models folder (the specs in it
   checked as the DAG factory reads them).

A problem is printed as ``PROBLEM`` with what to do, and the exit code is 1; a ``warning`` does not fail. With
``--check`` nothing is written (for a worker or a second component: the same checks, no changes).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: The loop's pools: name -> (slots, description, include_deferred). ``config/pools.json`` holds the same
#: (tests/repo/test_pools.py); the DAG factory names them on its tasks.
POOLS: dict[str, tuple[int, str, bool]] = {
    "dvc_workspace": (1, "Serializes writes to the DVC data registry (DVC and git lock their repository).", False),
    "model_promotion": (1, "Serializes champion promotions in the MLflow registry.", False),
}

#: The DAG file's name in the dags folder.
DAG_FILE_NAME = "mlops_models.py"

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def dag_file_text(models_dir: Path) -> str:
    """The DAG file: the factory's DAGs of every spec in ``models_dir``."""
    return (
        '"""The MLOps loop: five DAGs per model spec in the models folder (written by `mlops init`)."""\n'
        "from mlops_provider.loop.factory import build_all\n"
        f"globals().update(build_all({str(models_dir)!r}))\n"
    )


@dataclass
class Report:
    """What ``mlops init`` did and found, printed as it goes."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def done(self, what: str, message: str) -> None:
        print(f"{what:<8} {message}")

    def problem(self, message: str) -> None:
        self.problems.append(message)
        print(f"PROBLEM  {message}")

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        print(f"warning  {message}")


def write_dag_file(dags_folder: Path, models_dir: Path, report: Report, *, check: bool) -> None:
    path = dags_folder / DAG_FILE_NAME
    text = dag_file_text(models_dir)
    if path.exists():
        if path.read_text() == text:
            report.done("ok", f"DAG file {path} (the factory over {models_dir})")
        else:
            report.problem(
                f"{path} exists and is not the file mlops init writes (for models folder {models_dir}): left as it "
                f"is. Remove or rename it and run mlops init again, or make it:\n{text}"
            )
        return
    if check:
        report.problem(f"no DAG file {path}: run `mlops init` (without --check) where the dags folder is written")
        return
    if not dags_folder.is_dir():
        dags_folder.mkdir(parents=True, exist_ok=True)
        report.done("created", f"dags folder {dags_folder}")
    from mlops_provider.utils.files import write_atomic

    def write(tmp: Path) -> None:
        tmp.write_text(text)
        tmp.chmod(0o644)  # readable by every component (mkstemp makes it 0600)

    write_atomic(path, write)
    report.done("wrote", f"DAG file {path} (the factory over {models_dir})")


def create_pools(report: Report, *, check: bool) -> None:
    try:
        from airflow.models.pool import Pool

        existing = {name: Pool.get_pool(name) for name in POOLS}
    except Exception as exc:  # noqa: BLE001 - any failure to reach the DB is reported, with the fix
        report.problem(
            f"cannot read Airflow's pools ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}): is the metadata "
            "database initialised? Run `airflow db migrate` with this configuration first"
        )
        return
    for name, (slots, description, include_deferred) in POOLS.items():
        pool = existing[name]
        if pool is not None:
            if pool.slots == slots:
                report.done("ok", f"pool {name} ({slots} slot)")
            else:
                report.warning(f"pool {name} has {pool.slots} slots (the loop's default is {slots}): kept as it is")
            continue
        if check:
            report.problem(f"no pool {name}: run `mlops init` (without --check) to create it")
            continue
        Pool.create_or_update_pool(name, slots, description, include_deferred)
        report.done("created", f"pool {name} ({slots} slot): {description}")


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def check_ports(conf: Any, report: Report) -> None:
    """The execution API URL and the ports every component listens on (a second Airflow on one machine collides)."""
    api_port = conf.getint("api", "port", fallback=8080)
    base_url = conf.get("api", "base_url", fallback=None) or f"http://localhost:{api_port}"
    configured = conf.get("core", "execution_api_server_url", fallback=None)
    url = configured or f"{base_url.rstrip('/')}/execution/"
    parts = urlsplit(url)
    url_port = parts.port or (443 if parts.scheme == "https" else 80)
    fix = f"AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:{api_port}/execution/"
    if (parts.hostname or "") in LOOPBACK and url_port != api_port:
        report.problem(
            f"execution API URL {url} calls port {url_port} but this Airflow's API server listens on {api_port}: "
            f"tasks would call another instance (error 'Invalid auth token'). Set {fix}"
        )
    elif not parts.path.rstrip("/").endswith("/execution"):
        report.warning(f"execution API URL {url} does not end in /execution/ (tasks call {url}...)")
    else:
        report.done("ok", f"execution API URL {url} (API server port {api_port})")

    ports = {
        "API server ([api] port, AIRFLOW__API__PORT)": api_port,
        "worker log server (AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT)": conf.getint(
            "logging", "worker_log_server_port", fallback=8793
        ),
        "trigger log server (AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT)": conf.getint(
            "logging", "trigger_log_server_port", fallback=8794
        ),
        "scheduler health check (AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT)": conf.getint(
            "scheduler", "scheduler_health_check_server_port", fallback=8974
        ),
    }
    by_port: dict[int, list[str]] = {}
    for what, port in ports.items():
        by_port.setdefault(port, []).append(what)
    for port, users in by_port.items():
        if len(users) > 1:
            report.problem(f"port {port} is set for {' and '.join(users)}: give each its own port")
    defaults = {8793, 8794, 8974}
    if api_port != 8080 and defaults & set(ports.values()):
        report.warning(
            f"the API server is on port {api_port}, not 8080, while the log-server or health-check ports keep their "
            f"defaults ({', '.join(str(p) for p in sorted(defaults & set(ports.values())))}): a second Airflow on this "
            "machine must move them too, or they collide with the first one's (the variables named below)"
        )
    busy = [f"{port} ({what.split(' (')[0]})" for what, port in ports.items() if _port_in_use(port)]
    shown = ", ".join(f"{port} {what.split(' (')[0]}" for what, port in ports.items())
    report.done("ok", f"ports: {shown}")
    if busy:
        report.warning(
            f"in use now on 127.0.0.1: {', '.join(busy)}. Fine if this Airflow is running; if another Airflow on this "
            "machine holds them, give this one its own ports (the variables named above)"
        )


def check_storage(conf: Any, report: Report) -> None:
    from mlops_provider.utils.extras import missing_modules
    from mlops_provider.utils.paths import mlops_home

    home = mlops_home()
    where = "MLOPS_HOME" if os.environ.get("MLOPS_HOME") else "MLOPS_HOME unset: $AIRFLOW_HOME/mlops"
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".mlops-init-"):
            pass
    except OSError as exc:
        report.problem(f"MLOPS_HOME {home} ({where}) is not writable ({exc}): set MLOPS_HOME to a folder it can write")
        return
    report.done("ok", f"MLOPS_HOME {home} ({where}) is writable")
    storage_url = os.environ.get("MLOPS_STORAGE_URL", "")
    executor = conf.get("core", "executor", fallback="")
    if storage_url:
        scheme = urlsplit(storage_url).scheme
        if scheme == "s3" and missing_modules("s3"):
            report.problem(
                f"MLOPS_STORAGE_URL {storage_url} needs the 's3' extra: pip install 'airflow-provider-mlops[s3]'"
            )
        else:
            report.done("ok", f"storage root {storage_url} (MLOPS_STORAGE_URL)")
    elif any(name in executor for name in ("Celery", "Kubernetes", "Edge")):
        report.warning(
            f"executor {executor} may run tasks on other machines, and the storage root is this machine's disk "
            f"({home}): set MLOPS_STORAGE_URL (e.g. s3://bucket/prefix) in every component (docs/distributed.md)"
        )
    else:
        report.done("ok", f"storage root {home} (local disk; executor {executor or 'default'})")


def check_models(models_dir: Path, report: Report, *, check: bool) -> None:
    from mlops_provider.loop.spec import SpecError, check_folder

    if not models_dir.is_dir():
        if check:
            report.problem(f"no models folder {models_dir}: run `mlops init` or create it")
            return
        models_dir.mkdir(parents=True, exist_ok=True)
        report.done("created", f"models folder {models_dir}")
    try:
        checked = check_folder(models_dir)
    except SpecError as exc:
        report.problem(str(exc))
        return
    for problem in checked.problems:
        report.problem(problem.message)
    names = ", ".join(spec.name for spec in checked.specs)
    if checked.specs:
        report.done("ok", f"models folder {models_dir}: {len(checked.specs)} model spec(s) ({names})")
    else:
        report.warning(
            f"models folder {models_dir} holds no model spec yet: `mlops new-model NAME --table ... --out {models_dir}`"
        )


def default_models_dir() -> Path:
    configured = os.environ.get("MLOPS_MODELS_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))) / "models"


def run_init(args: argparse.Namespace) -> int:
    from airflow.configuration import conf

    report = Report()
    dags_folder = Path(args.dags_folder or conf.get("core", "dags_folder")).expanduser().resolve()
    models_dir = Path(args.models_dir or default_models_dir()).expanduser().resolve()
    check_models(models_dir, report, check=args.check)
    write_dag_file(dags_folder, models_dir, report, check=args.check)
    if not args.no_pools:
        create_pools(report, check=args.check)
    check_ports(conf, report)
    check_storage(conf, report)
    if report.problems:
        print(f"mlops init: {len(report.problems)} problem(s), {len(report.warnings)} warning(s)", file=sys.stderr)
        return 1
    print(f"mlops init: ready ({len(report.warnings)} warning(s)); next: docs/adopt.md")
    return 0


def add_parser(sub: Any) -> None:
    init = sub.add_parser(
        "init", help="set up an installed Airflow for the loop: DAG file, pools, and a check of the settings"
    )
    init.add_argument("--dags-folder", help="Airflow's dags folder (default: [core] dags_folder of this Airflow)")
    init.add_argument(
        "--models-dir", help="folder of the model specs (default: $MLOPS_MODELS_DIR, else $AIRFLOW_HOME/models)"
    )
    init.add_argument("--no-pools", action="store_true", help="do not create the pools")
    init.add_argument("--check", action="store_true", help="write nothing: check only (exit 1 on a problem)")
    init.set_defaults(func=run_init)
