"""DvcHook and the DVC operators with real git and DVC: versions, no-op reruns, concurrency, clones, reads."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
from pathlib import Path

import dvc.api
import pytest

from mlops_provider.hooks.dvc import DvcError, DvcHook, RevisionNotFound
from mlops_provider.operators.dvc import DvcGetOperator, DvcVersionOperator
from tests.helpers import task_context

pytestmark = pytest.mark.integration

PATH = "data/sales/partitions/2026-11-01.parquet"
TAG = "partition/sales/2026-11-01"


def git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True, check=True).stdout.strip()


def remote_files(remote: Path) -> int:
    return sum(1 for p in remote.rglob("*") if p.is_file())


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "part.parquet"
    path.write_bytes(b"first version " * 1000)
    return path


def test_version_commit_tag_trailers_and_read_back(mlops_home, source):
    context = task_context(None, dag_id="ingest", run_id="scheduled__2026-11-01", task_id="version")
    result = DvcVersionOperator(task_id="version", source_path=str(source), target_path=PATH, tag=TAG).execute(context)
    workspace = mlops_home / "data-registry"
    assert result["created"] is True
    assert result["rev"] == git(workspace, "rev-parse", TAG + "^{commit}")
    assert result["remote"] == str(mlops_home / "dvc-remote")
    assert result["size"] == source.stat().st_size
    json.dumps(result)
    message = git(workspace, "log", "-1", "--format=%B", TAG)
    assert "Airflow-Dag-Id: ingest" in message and "Airflow-Run-Id: scheduled__2026-11-01" in message
    assert "Airflow-Try-Number: 1" in message and f"Data-Md5: {result['md5']}" in message
    assert dvc.api.read(PATH, repo=str(workspace), rev=TAG, mode="rb") == source.read_bytes()
    # The data file itself is never committed to git, only its .dvc pointer.
    assert PATH not in git(workspace, "ls-files").split()
    assert remote_files(mlops_home / "dvc-remote") == 1


def test_identical_rerun_is_a_no_op(mlops_home, source):
    hook = DvcHook()
    first = hook.version_file(source, PATH, TAG, {})
    workspace = hook.workspace
    commits = git(workspace, "rev-list", "--count", "HEAD")
    pushed = remote_files(mlops_home / "dvc-remote")
    again = hook.version_file(source, PATH, TAG, {})
    assert again["created"] is False and again["rev"] == first["rev"]
    assert git(workspace, "rev-list", "--count", "HEAD") == commits
    assert remote_files(mlops_home / "dvc-remote") == pushed


def test_changed_content_makes_exactly_one_new_version(mlops_home, source):
    hook = DvcHook()
    first = hook.version_file(source, PATH, TAG, {})
    commits = int(git(hook.workspace, "rev-list", "--count", "HEAD"))
    source.write_bytes(b"second version " * 1000)
    second = hook.version_file(source, PATH, TAG, {})
    assert second["created"] is True and second["rev"] != first["rev"] and second["md5"] != first["md5"]
    assert int(git(hook.workspace, "rev-list", "--count", "HEAD")) == commits + 1
    assert hook.resolve_rev(TAG) == second["rev"]
    # The earlier version stays in the history, readable by its commit.
    assert dvc.api.read(PATH, repo=str(hook.workspace), rev=first["rev"], mode="rb") == b"first version " * 1000


def test_a_version_collects_the_registrys_stages_once_however_many_days_it_holds(mlops_home, tmp_path, monkeypatch):
    """A year of daily partitions is ~365 ``.dvc`` files: every full collection of the registry's stages parses all
    of them (~3 ms each). ``dvc add`` needs one (the overlap check); the push of the new version reads its own
    ``.dvc`` file only, so a version's cost does not grow twice with the registry (issue 31, year backfill)."""
    from dvc.repo.index import Index

    hook = DvcHook()
    for day in range(1, 4):
        part = tmp_path / f"{day}.parquet"
        part.write_bytes(f"day {day} ".encode() * 1000)
        hook.version_file(part, f"data/sales/partitions/2026-11-0{day}.parquet", f"partition/sales/2026-11-0{day}", {})
    collections = []
    original = Index.from_repo.__func__

    def counted(cls, repo, *args, **kwargs):
        collections.append(repo.root_dir)
        return original(cls, repo, *args, **kwargs)

    monkeypatch.setattr(Index, "from_repo", classmethod(counted))
    pushed = remote_files(mlops_home / "dvc-remote")
    part = tmp_path / "4.parquet"
    part.write_bytes(b"day 4 " * 1000)
    result = hook.version_file(part, "data/sales/partitions/2026-11-04.parquet", "partition/sales/2026-11-04", {})
    assert result["created"] is True and len(collections) == 1
    assert remote_files(mlops_home / "dvc-remote") == pushed + 1  # the new version is on the remote
    assert dvc.api.read(result["path"], repo=str(hook.workspace), rev=result["tag"], mode="rb") == b"day 4 " * 1000


def _version_in_another_process(args: tuple[str, str, int]) -> str:
    mlops_home, source_dir, day = args
    os.environ["MLOPS_HOME"] = mlops_home
    source = Path(source_dir) / f"{day}.bin"
    source.write_bytes(f"partition {day} ".encode() * 5000)
    result = DvcHook().version_file(
        source, f"data/sales/partitions/2026-11-{day:02d}.bin", f"partition/sales/{day}", {}
    )
    return result["rev"]


def test_four_concurrent_writers_all_land(mlops_home, tmp_path):
    ctx = multiprocessing.get_context("spawn")  # separate processes, like four task runs
    with ctx.Pool(4) as pool:
        revs = pool.map(_version_in_another_process, [(str(mlops_home), str(tmp_path), d) for d in range(1, 5)])
    workspace = mlops_home / "data-registry"
    assert len(set(revs)) == 4
    assert git(workspace, "tag", "--list", "partition/sales/*").split() == [f"partition/sales/{d}" for d in range(1, 5)]
    for day in range(1, 5):
        data = dvc.api.read(
            f"data/sales/partitions/2026-11-{day:02d}.bin", repo=str(workspace), rev=f"partition/sales/{day}", mode="rb"
        )
        assert data == f"partition {day} ".encode() * 5000
    assert git(workspace, "status", "--porcelain") == ""


def test_get_operator_and_bad_revisions(mlops_home, source, tmp_path):
    DvcHook().version_file(source, PATH, TAG, {})
    out = tmp_path / "out" / "copy.parquet"
    result = DvcGetOperator(task_id="get", path=PATH, rev=TAG, output_path=str(out)).execute(task_context(None))
    assert out.read_bytes() == source.read_bytes() and result["output_path"] == str(out)
    with pytest.raises(DvcError, match="revision 'partition/sales/1999-01-01' does not exist"):
        DvcHook().read_to(PATH, "partition/sales/1999-01-01", out)
    with pytest.raises(DvcError, match="is not versioned"):
        DvcHook().read_to("data/other.parquet", TAG, out)
    with pytest.raises(DvcError, match="must be relative"):
        DvcHook().version_file(source, "../outside.parquet", "x", {})


def test_a_revision_that_cannot_exist_is_not_found_before_any_git_call(mlops_home, source):
    """A NUL byte made git's subprocess raise ValueError (a 500 on /mlops/dvc/versions/%00); an option-like
    revision reached git's argument list; a registry with no versions yet made git run in a missing folder."""
    with pytest.raises(RevisionNotFound, match="has no versions"):
        DvcHook().resolve_rev("main")
    DvcHook().version_file(source, PATH, TAG, {})
    for bad in ("\x00", "a\x00b", "--all", "-n1", ""):
        with pytest.raises(RevisionNotFound, match="is not a revision"):
            DvcHook().resolve_rev(bad)


def test_connection_clones_an_existing_registry_and_pushes_to_it(mlops_home, source, tmp_path, monkeypatch):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(origin)], check=True)
    seed = DvcHook(workspace=str(tmp_path / "seed"))
    seed.ensure_workspace()
    git(seed.workspace, "remote", "add", "origin", str(origin))
    git(seed.workspace, "push", "--quiet", "origin", "main")
    remote = tmp_path / "shared-remote"
    conn = {
        "conn_type": "dvc",
        "host": str(origin),
        "extra": {"workspace": str(tmp_path / "clone"), "remote_url": str(remote)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_REGISTRY", json.dumps(conn))
    hook = DvcHook(dvc_conn_id="registry")
    result = hook.version_file(source, PATH, TAG, {})
    assert hook.workspace == tmp_path / "clone"
    assert result["remote"] == str(remote) and remote_files(remote) == 1
    assert git(origin, "rev-parse", TAG + "^{commit}") == result["rev"]  # commit and tag reached the origin
    ok, message = hook.test_connection()
    assert ok, message


def test_remote_credentials_stay_out_of_git(mlops_home, tmp_path, monkeypatch):
    conn = {
        "conn_type": "dvc",
        "login": "AKIAEXAMPLE",
        "password": "s3cr3t-value",
        "extra": {"remote_url": "s3://bucket/dvc", "remote_options": {"endpointurl": "http://127.0.0.1:9"}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_S3_REGISTRY", json.dumps(conn))
    hook = DvcHook(dvc_conn_id="s3_registry")
    hook.ensure_workspace()
    assert "s3cr3t-value" in (hook.workspace / ".dvc" / "config.local").read_text()
    assert "endpointurl = http://127.0.0.1:9" in (hook.workspace / ".dvc" / "config").read_text()
    assert "s3cr3t-value" not in git(hook.workspace, "log", "-p", "--all")
    assert ".dvc/config.local" not in git(hook.workspace, "ls-files").split()
    assert "s3cr3t-value" not in hook.remote_url

    conn["extra"] = {"remote_url": str(tmp_path / "folder")}
    monkeypatch.setenv("AIRFLOW_CONN_S3_REGISTRY", json.dumps(conn))
    with pytest.raises(DvcError, match="is a local folder: login/password fill the credentials"):
        DvcHook(dvc_conn_id="s3_registry").ensure_workspace()


class _BasicAuthStore:
    """A DVC HTTP remote over a folder: GET/HEAD read a file, POST/PUT write one (chunked or not); every request
    without ``Authorization: Basic user:password`` is refused with 401 (and counted). ``written`` and ``served``
    list the files stored and read."""

    def __init__(self, folder: Path, user: str, password: str) -> None:
        import base64
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        store = self
        self.refused = 0
        self.written: list[str] = []
        self.served: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _file(self) -> Path | None:
                if self.headers.get("Authorization") != expected:
                    store.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="dvc"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return folder / self.path.lstrip("/")

            def do_HEAD(self, body: bool = False) -> None:
                path = self._file()
                if path is None:
                    return
                data = path.read_bytes() if path.is_file() else None
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                if body and data:
                    self.wfile.write(data)
                    store.served.append(self.path)

            def do_GET(self) -> None:
                self.do_HEAD(body=True)

            def do_POST(self) -> None:
                path = self._file()
                if path is None:
                    return
                if self.headers.get("Transfer-Encoding") == "chunked":
                    data = b""
                    while size := int(self.rfile.readline().strip(), 16):
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                store.written.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_credentials_in_the_remote_url_never_reach_a_commit_and_push_and_pull_still_work(
    mlops_home, source, tmp_path, monkeypatch
):
    """Finding 8 of the on-call review: ``remote_url: https://user:pw@host/...`` went into the committed
    ``.dvc/config`` (the password in the registry's history for good), and ``.dvc/config.local`` was 0644."""
    password = "p@ss-w0rd-123"
    store = _BasicAuthStore(tmp_path / "http-remote", "deploy", password)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(origin)], check=True)
    conn = {
        "conn_type": "dvc",
        "host": str(origin),
        "extra": {
            "workspace": str(tmp_path / "writer"),
            "remote_url": f"http://deploy:p%40ss-w0rd-123@127.0.0.1:{store.port}/dvc",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_HTTP_REGISTRY", json.dumps(conn))
    writer = DvcHook(dvc_conn_id="http_registry")
    result = writer.version_file(source, PATH, TAG, {})
    assert result["created"] and len(store.written) == 1  # pushed, with the credentials
    assert result["remote"] == f"http://127.0.0.1:{store.port}/dvc" == writer.remote_url

    reader = DvcHook(dvc_conn_id="http_registry", workspace=str(tmp_path / "reader"))  # another worker: a clone
    out = tmp_path / "read.parquet"
    assert reader.read_to(PATH, TAG, out)["md5"] == result["md5"] and out.read_bytes() == source.read_bytes()

    for hook in (writer, reader):
        local = hook.workspace / ".dvc" / "config.local"
        assert password in local.read_text() and oct(local.stat().st_mode & 0o777) == "0o600"
        assert password not in (hook.workspace / ".dvc" / "config").read_text()
    history = git(origin, "log", "-p", "--all")
    assert "Configure DVC remote" in history and f"127.0.0.1:{store.port}/dvc" in history
    assert password not in history and "p%40ss" not in history and "deploy@" not in history
    assert store.served and store.refused == 0  # the reader pulled from the remote, every request authenticated


def test_missing_named_connection_is_an_error(mlops_home):
    from airflow.sdk.exceptions import AirflowNotFoundException

    with pytest.raises(AirflowNotFoundException):
        _ = DvcHook(dvc_conn_id="no_such_registry").workspace


_VERSION_SCRIPT = """
import sys
from pathlib import Path
from mlops_provider.hooks.dvc import DvcHook
DvcHook().version_file(Path(sys.argv[1]), sys.argv[2], sys.argv[3], {"Airflow-Run-Id": "killed"})
"""


def test_a_write_killed_mid_commit_leaves_a_registry_the_retry_completes_with_provenance(mlops_home, source, tmp_path):
    """Finding 1 of the on-call review: a kill of the task's process group while git commits left index.lock,
    which wedged every later write; the retry then committed the partition inside the remote configuration commit."""
    import signal
    import sys
    import time

    hook = DvcHook()
    hook.ensure_workspace()
    workspace = hook.workspace
    started = tmp_path / "commit-started"
    pre_commit = workspace / ".git" / "hooks" / "pre-commit"
    pre_commit.write_text(f"#!/bin/sh\ntouch {started}\nsleep 600\n")
    pre_commit.chmod(0o755)
    child = subprocess.Popen(
        [sys.executable, "-c", _VERSION_SCRIPT, str(source), PATH, TAG], start_new_session=True, env=dict(os.environ)
    )
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    assert started.exists(), "the versioning child never reached git commit"
    os.killpg(child.pid, signal.SIGKILL)  # what an OOM kill or a node crash does to the task and its git child
    child.wait()
    assert (workspace / ".git" / "index.lock").exists()
    pre_commit.unlink()

    other = tmp_path / "other.parquet"
    other.write_bytes(b"another day " * 1000)
    other_path, other_tag = "data/sales/partitions/2026-11-02.parquet", "partition/sales/2026-11-02"
    second = hook.version_file(other, other_path, other_tag, {"Airflow-Run-Id": "next-day"})
    changed = git(workspace, "diff-tree", "--no-commit-id", "--name-only", "-r", second["rev"]).split()
    assert f"{other_path}.dvc" in changed and f"{PATH}.dvc" not in changed  # nothing of the killed write slipped in

    retry = hook.version_file(source, PATH, TAG, {"Airflow-Run-Id": "retry"})
    assert retry["created"] is True
    message = git(workspace, "log", "-1", "--format=%B", TAG)
    assert message.startswith(f"Version {PATH}") and "Airflow-Run-Id: retry" in message
    assert f"Data-Md5: {retry['md5']}" in message
    for subject_and_files in git(workspace, "log", "--format=>%s", "--name-only").split(">")[1:]:
        subject, *files = subject_and_files.split("\n")
        if subject.startswith(("Configure", "Initialise")):
            assert not [f for f in files if f.startswith("data/")], subject_and_files
    assert not (workspace / ".git" / "index.lock").exists()
    assert git(workspace, "status", "--porcelain", "--untracked-files=no") == ""


def test_credentials_of_any_remote_kind_go_only_to_the_local_config(mlops_home, monkeypatch):
    conn = {
        "conn_type": "dvc",
        "login": "deploy",
        "password": "webdav-pass-123",
        "extra": {
            "remote_url": "webdavs://dav.example.invalid/dvc",
            "remote_options": {"timeout": "30", "password": "ignored-in-favour-of-login"},
            "remote_secret_options": {"key_path": "/secrets/dav.key"},
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_DAV", json.dumps(conn))
    hook = DvcHook(dvc_conn_id="dav")
    hook.ensure_workspace()
    local = (hook.workspace / ".dvc" / "config.local").read_text()
    tracked = (hook.workspace / ".dvc" / "config").read_text()
    assert "user = deploy" in local and "password = webdav-pass-123" in local and "key_path = /secrets/dav.key" in local
    assert "timeout = 30" in tracked
    history = git(hook.workspace, "log", "-p", "--all")
    for secret in ("webdav-pass-123", "ignored-in-favour-of-login", "/secrets/dav.key"):
        assert secret not in tracked and secret not in history


def test_immutable_tags_never_move_a_rebuilt_version_gets_the_next_revision_tag(mlops_home, source):
    hook = DvcHook()
    set_path, set_tag = "data/sales/training_set.parquet", "training-set/sales/2026-11-05"
    first = hook.version_file(source, set_path, set_tag, {}, immutable_tag=True)
    again = hook.version_file(source, set_path, set_tag, {}, immutable_tag=True)
    assert again["created"] is False and again["tag"] == set_tag and again["rev"] == first["rev"]
    source.write_bytes(b"rebuilt with a late day " * 1000)
    rebuilt = hook.version_file(source, set_path, set_tag, {}, immutable_tag=True)
    assert rebuilt["created"] is True and rebuilt["tag"] == f"{set_tag}.r2"
    assert hook.resolve_rev(set_tag) == first["rev"]  # what a model trained on it cites still holds
    assert hook.revision_tags(set_tag) == [set_tag, f"{set_tag}.r2"]
    assert hook.version_file(source, set_path, set_tag, {}, immutable_tag=True)["tag"] == f"{set_tag}.r2"


def worker_hook(name: str, url: str, tmp_path: Path, monkeypatch, cls=DvcHook) -> DvcHook:
    """A worker's registry hook: its own workspace (its own disk), the shared git URL and DVC remote."""
    conn = {
        "conn_type": "dvc",
        "host": url,
        "extra": {"workspace": str(tmp_path / name / "registry"), "remote_url": str(tmp_path / "dvc-remote")},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps(conn))  # fmt: skip
    return cls(dvc_conn_id=name)


def test_workers_without_a_common_disk_publish_through_the_git_remote_and_retry_when_beaten(
    mlops_home, tmp_path, monkeypatch, git_daemon
):
    """Issue 18: two workers with their own workspaces share the registry through git daemon. A worker that
    committed on a stale state has its push rejected and publishes again on top of the winner; an immutable tag
    the other worker created first makes the loser's version the next revision tag; each worker reads what the
    other published, with nothing read from the other's directory."""
    url, origin = git_daemon
    files = {}
    for name in ("a1", "a2", "b1", "b2", "ts_a", "ts_b"):
        files[name] = tmp_path / f"{name}.parquet"
        files[name].write_bytes(name.encode() * 5000)

    b = worker_hook("worker_b", url, tmp_path, monkeypatch)
    beaten: list[str] = []

    class RacedHook(DvcHook):
        """Worker A; worker B publishes while A sits between its commit and its push (once per pending race)."""

        def _before_push(self) -> None:
            if races:
                beaten.append(races.pop(0)())

    races = [lambda: b.version_file(files["b1"], "data/b/1.parquet", "partition/b/1", {})["tag"]]
    a = worker_hook("worker_a", url, tmp_path, monkeypatch, cls=RacedHook)
    first = a.version_file(files["a1"], "data/a/1.parquet", "partition/a/1", {"Run": "a"})
    assert beaten == ["partition/b/1"] and a.push_attempts == 2  # rejected once (non-fast-forward), then landed
    log = git(origin, "log", "--format=%s", "main").splitlines()
    assert sum("data/a/1.parquet" in s for s in log) == 1 and sum("data/b/1.parquet" in s for s in log) == 1
    assert git(origin, "rev-parse", "partition/a/1^{commit}") == first["rev"]

    # An immutable tag both build: B creates it while A is about to push; A's version becomes <tag>.r2.
    def build(name: str, hook: DvcHook) -> dict:
        return hook.version_file(files[name], "data/ts.parquet", "training-set/x/1", {}, immutable_tag=True)

    races = [lambda: build("ts_b", b)["tag"]]
    mine = build("ts_a", a)
    assert mine["tag"] == "training-set/x/1.r2" and beaten[-1] == "training-set/x/1"
    assert git(origin, "tag", "--list", "training-set/*").split() == ["training-set/x/1", "training-set/x/1.r2"]

    # Each worker reads the other's versions (fetched from the remote, bytes from the DVC remote).
    shutil.rmtree(tmp_path / "worker_a")  # A's disk is gone: B must not need it
    reader = worker_hook("worker_b2", url, tmp_path, monkeypatch)
    assert reader.tags("partition/*") == ["partition/a/1", "partition/b/1"]
    reader.read_to("data/a/1.parquet", "partition/a/1", tmp_path / "got.parquet")
    assert (tmp_path / "got.parquet").read_bytes() == files["a1"].read_bytes()
    assert b.tags("training-set/*") == ["training-set/x/1"]  # B's instance fetched before A's last push
    assert b.resolve_rev("training-set/x/1.r2") == mine["rev"]  # a revision it does not know: fetched again
    assert DvcHook(dvc_conn_id="worker_b").tags("training-set/*") == ["training-set/x/1", "training-set/x/1.r2"]


def test_the_tag_sensor_and_its_trigger_ask_the_git_remote_from_a_host_without_a_clone(
    mlops_home, tmp_path, monkeypatch, git_daemon
):
    """Issue 18: the deferred wait for a version runs in the triggerer, whose host has no clone that anything keeps
    fresh. With a git remote the sensor and its trigger ask the remote: a tag another worker publishes while the
    trigger waits is found (its commit, not the tag object), and no workspace is made for it."""
    import asyncio

    from mlops_provider.sensors.dvc import DvcTagSensor
    from mlops_provider.triggers.dvc import DvcTagTrigger

    url, _ = git_daemon
    publisher = worker_hook("worker_a", url, tmp_path, monkeypatch)
    worker_hook("triggerer", url, tmp_path, monkeypatch)  # its connection; its workspace is never made
    tag = "partition/sales/2026-11-20"
    sensor = DvcTagSensor(task_id="wait", tag=tag, dvc_conn_id="triggerer")
    assert sensor._check() is None
    kind, kwargs = DvcTagTrigger(str(tmp_path / "triggerer" / "registry"), tag, poll_interval=0.2,
                                 dvc_conn_id="triggerer", settle_seconds=0).serialize()  # fmt: skip
    assert kind == "mlops_provider.triggers.dvc.DvcTagTrigger" and kwargs["dvc_conn_id"] == "triggerer"
    source = tmp_path / "day.parquet"
    source.write_bytes(b"rows" * 1000)

    async def wait_while_another_worker_publishes():
        waiting = asyncio.ensure_future(DvcTagTrigger(**kwargs).run().__anext__())
        await asyncio.sleep(1.0)
        assert not waiting.done()  # nothing published yet
        await asyncio.to_thread(publisher.version_file, source, "data/sales/2026-11-20.parquet", tag, {})
        return await asyncio.wait_for(waiting, 30)

    event = asyncio.run(wait_while_another_worker_publishes())
    commit = publisher.resolve_rev(tag)
    assert event.payload == {"status": "found", "tag": tag, "sha": commit}
    assert DvcTagSensor(task_id="wait", tag=tag, dvc_conn_id="triggerer")._check() == {"tag": tag, "sha": commit}
    assert not (tmp_path / "triggerer" / "registry").exists()


def test_a_read_copies_the_local_cache_object_or_fetches_it_from_the_remote(mlops_home, source, tmp_path):
    """A version whose object is in the workspace's DVC cache is copied from it (no DVC repo opened for each read:
    the monitoring tasks read ~10 partitions a day, issue 31); one whose object is gone from the cache (another
    machine's version, a cleaned cache) is fetched from the remote; a corrupt cache object is named, with the fix."""
    hook = DvcHook()
    first = hook.version_file(source, PATH, TAG, {})
    expected = source.read_bytes()
    cached = hook.workspace / ".dvc" / "cache" / "files" / "md5" / first["md5"][:2] / first["md5"][2:]
    assert cached.is_file()

    assert hook.read_to(PATH, TAG, tmp_path / "a")["md5"] == first["md5"]
    assert (tmp_path / "a").read_bytes() == expected

    cached.unlink()  # not in this workspace's cache: DVC fetches it from the remote
    assert hook.read_to(PATH, TAG, tmp_path / "b")["md5"] == first["md5"]
    assert (tmp_path / "b").read_bytes() == expected

    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"bit rot")
    with pytest.raises(DvcError, match=r"local DVC cache object .* is corrupt.*delete it") as error:
        hook.read_to(PATH, TAG, tmp_path / "c")
    assert str(cached) in str(error.value)
    assert not (tmp_path / "c").exists()  # nothing half-read left behind
