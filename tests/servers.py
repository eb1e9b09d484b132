"""Servers the tests start on 127.0.0.1: a ``git daemon`` serving a data registry and moto's S3-protocol server (what
workers without a common disk share), and Debian's Prometheus following file_sd target files. Context managers (and
a class with ``stop``), so module- and function-scoped fixtures can use them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextmanager
def git_daemon_serving(base: Path) -> Iterator[tuple[str, Path]]:
    """An empty bare registry ``<base>/registry.git`` served by a real ``git daemon`` (pushes enabled): its git URL
    and its folder."""
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(base / "registry.git")],
                   check=True)  # fmt: skip
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", f"--base-path={base}",
         "--listen=127.0.0.1", f"--port={port}", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_port(port, "git daemon")
        yield f"git://127.0.0.1:{port}/registry.git", base / "registry.git"
    finally:
        daemon.terminate()
        daemon.wait(10)


@dataclass(frozen=True)
class S3Server:
    """An S3-protocol server on 127.0.0.1 with one bucket, and how Airflow and DVC reach it."""

    endpoint: str
    bucket: str
    key_id: str = "testing"
    secret: str = "testing"

    def aws_connection(self) -> str:
        """An Airflow ``aws`` connection (JSON, for an ``AIRFLOW_CONN_*`` variable) to this server."""
        return json.dumps({
            "conn_type": "aws", "login": self.key_id, "password": self.secret,
            "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        })  # fmt: skip

    def dvc_connection(self, git_url: str, prefix: str) -> str:
        """A ``dvc`` connection (JSON): the registry at ``git_url``, its DVC remote under ``prefix`` here."""
        return json.dumps({
            "conn_type": "dvc", "host": git_url, "login": self.key_id, "password": self.secret,
            "extra": {"remote_url": f"s3://{self.bucket}/{prefix}", "remote_options": {"endpointurl": self.endpoint}},
        })  # fmt: skip

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key_id,
                            aws_secret_access_key=self.secret, region_name="us-east-1")  # fmt: skip

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@contextmanager
def s3_serving(log: Path, bucket: str = "mlops-test") -> Iterator[S3Server]:
    """moto's server mode (the S3 protocol over HTTP) on a free port, with ``bucket`` created; its log at ``log``."""
    port = free_port()
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, f"moto_server (log: {log})")
        s3 = S3Server(endpoint=f"http://127.0.0.1:{port}", bucket=bucket)
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.terminate()
        server.wait(10)


class Prometheus:
    """Debian's ``prometheus`` on a free port with a temporary TSDB in ``folder``, scraping the endpoints of the file_sd
    ``target_files`` (globs) every second (the project's scrape job, :func:`metrics_targets.prometheus_config`)."""

    def __init__(self, folder: Path, target_files: list[str]) -> None:
        import yaml

        from mlops_provider.runtime.metrics_targets import prometheus_config

        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = prometheus_config(target_files, scrape_interval="1s")
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(folder / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self._ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"prometheus not ready in 60 s (log: {folder / 'prometheus.log'})")
            time.sleep(0.3)

    def _ready(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's vector (``[{"metric": {labels}, "value": float}]``)."""
        from mlops_provider.runtime.live_metrics import prometheus_query

        return prometheus_query(self.url, promql)

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets (``scrapeUrl``, ``health``, ``labels``...)."""
        import urllib.request

        with urllib.request.urlopen(self.url + "/api/v1/targets?state=active", timeout=5) as response:
            return list(json.loads(response.read())["data"]["activeTargets"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextmanager
def prometheus_serving(folder: Path, target_files: list[str]) -> Iterator[Prometheus]:
    """:class:`Prometheus` for the ``with`` block (stopped whatever happens in it)."""
    prometheus = Prometheus(folder, target_files)
    try:
        yield prometheus
    finally:
        prometheus.stop()
