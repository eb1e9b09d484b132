"""Test harness: the embedded configuration in a throw-away Airflow home, markers, and the Docker gate.

The environment comes from ``config/embedded.env`` (sourced by bash, so the file keeps one meaning), then
``AIRFLOW_HOME``, the metadata DB and ``MLOPS_HOME`` are pointed at a temporary folder of this session so the
tests never touch the user's embedded Airflow or data. This happens before anything imports Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROJECT_ROOT  # noqa: E402 (one definition of the repository root)

VENV_BIN = Path(sys.executable).parent
KNOWN_KINDS = ("unit", "integration", "e2e", "consumer")


def embedded_environment(project_root: Path, modes: tuple[str, ...] = ("embedded",), base: dict | None = None) -> dict:
    """The environment after bash sources ``config/<mode>.env`` for each mode in order (``("distributed",
    "embedded")`` is the distributed mode: its file first, the embedded one fills in the rest), on ``base``."""
    sources = " ".join(f'. "$1/config/{mode}.env";' for mode in modes)
    script = f'set -a; MLOPS_PROJECT_ROOT="$1"; {sources} env -0'
    out = subprocess.run(
        ["bash", "-c", script, "bash", str(project_root)], check=True, capture_output=True,
        env=dict(os.environ if base is None else base),
    ).stdout  # fmt: skip
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def _configure_session_environment() -> Path:
    session_dir = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
    env = embedded_environment(PROJECT_ROOT)
    env.update(
        AIRFLOW_HOME=str(session_dir / "airflow"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{session_dir / 'airflow' / 'airflow.db'}",
        MLOPS_HOME=str(session_dir / "mlops"),
        AIRFLOW_CONN_MLOPS_SOURCE=f'{{"conn_type": "sqlite", "host": "{session_dir / "mlops" / "source.db"}"}}',
        MLOPS_TEST_SESSION_DIR=str(session_dir),
    )
    os.environ.update(env)
    (session_dir / "airflow").mkdir(parents=True)
    (session_dir / "mlops").mkdir(parents=True)
    return session_dir


SESSION_DIR = _configure_session_environment()
# Airflow puts the DAGs folder on sys.path in every component (as the tests do: DAG files may import from it).
sys.path.insert(0, os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(k) for k in KNOWN_KINDS)]
    if unmarked:
        listing = "\n  ".join(unmarked)
        raise pytest.UsageError(f"every test needs one of the markers {', '.join(KNOWN_KINDS)}; unmarked:\n  {listing}")
    for item in items:
        if item.get_closest_marker("docker"):
            item.fixturenames.insert(0, "docker_engine")


# `make test` runs two pytest-xdist workers in lanes: the tests that drive a real scheduler (one Airflow at a time)
# and the consumer tests (fresh virtual environments) share one worker, the integration tests (one session-scoped
# pool of trained models) the other, and unit tests fill in wherever a worker is free. Since the live-serving and
# capture tests the integration lane is the longer one (it set the 2,684 s of the CI of 2026-12-06; the
# scheduler lane ~1,800 s): the consumer tests (~400-500 s) moved to the scheduler lane.
XDIST_LANES = {"tests/e2e/": "scheduler", "tests/consumer/": "scheduler", "tests/integration/": "integration"}


def xdist_lane(nodeid: str) -> str:
    """The work unit of a test under xdist: its lane's name, or the test itself (a unit test goes anywhere)."""
    return next((lane for prefix, lane in XDIST_LANES.items() if nodeid.startswith(prefix)), nodeid)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown when it is not loaded
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Schedule by lane (pytest-xdist's own ``loadgroup`` renames node ids, which pytest 9 no longer allows)."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_lane(nodeid)

    return LaneScheduling(config, log)


def docker_engine_problem() -> str | None:
    """None when a Docker engine answers at the default socket, else why not."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip (or, with MLOPS_REQUIRE_DOCKER=1, fail) a ``docker`` test when no engine runs."""
    problem = docker_engine_problem()
    if problem is None:
        return
    reason = f"no Docker engine reachable ({problem})"
    if os.environ.get("MLOPS_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{reason}, and MLOPS_REQUIRE_DOCKER=1 requires one", pytrace=False)
    pytest.skip(f"{reason}; set MLOPS_REQUIRE_DOCKER=1 to make this a failure")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata DB in the session's Airflow home (needed by ``dag.test()``), with the project pools."""
    airflow = str(VENV_BIN / "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)
    subprocess.run(
        [airflow, "pools", "import", str(PROJECT_ROOT / "config" / "pools.json")], check=True, capture_output=True
    )
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture
def mlops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh MLOPS_HOME (and source DB connection) for one test."""
    home = tmp_path / "mlops"
    home.mkdir()
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SOURCE", f'{{"conn_type": "sqlite", "host": "{home / "source.db"}"}}')
    yield home


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    """The local ``python:3.11-slim`` stand-in (built once per machine by include/docker/build-base-image.sh)."""
    tag = "python:3.11-slim"
    subprocess.run(["bash", str(PROJECT_ROOT / "include" / "docker" / "build-base-image.sh"), tag], check=True)
    return tag


@contextmanager
def fresh_databases(*kinds: str) -> Iterator[dict[str, str]]:
    """Fresh PostgreSQL databases on the local server (127.0.0.1:5432, trust auth), dropped afterwards:
    kind -> database name."""
    import uuid

    import psycopg2

    suffix = uuid.uuid4().hex[:10]
    names = {kind: f"mlops_test_{kind}_{suffix}" for kind in kinds}
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        for name in names.values():
            cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        with admin.cursor() as cur:
            for name in names.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, dropped afterwards."""
    with fresh_databases("db") as names:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{names['db']}"


@pytest.fixture(scope="session")
def training_image(base_image: str) -> str:
    """The real training image, built from include/training/Dockerfile on the local engine."""
    tag = "mlops-training:latest"
    context = PROJECT_ROOT / "include" / "training"
    subprocess.run(
        ["docker", "build", "--network", "host", "-q", "-t", tag, "-f", str(context / "Dockerfile"), str(context)],
        check=True,
        capture_output=True,
    )
    return tag


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An empty data registry served by a real ``git daemon``: the git remote workers without a common disk share."""
    from tests.servers import git_daemon_serving

    with git_daemon_serving(tmp_path / "served") as served:
        yield served


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """moto's S3 server with the bucket ``mlops-test``, for the session (tests use their own prefixes)."""
    from tests.servers import s3_serving

    with s3_serving(tmp_path_factory.mktemp("moto") / "server.log") as s3:
        yield s3
