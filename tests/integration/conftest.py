"""Fixtures shared by integration test modules (no test module imports another): a versioned training set, a
pool of trained models registered once per module that uses it, a git daemon serving a data registry and an
S3-protocol server (moto). Plain helpers are in ``models.py``."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mlops_provider.demo.churn_source import SourceSpec, generate_day
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.layout import training_set_path
from mlops_provider.split import HoldoutSplit
from tests.helpers import task_context
from tests.integration.models import DATA_PATH, SPEC, TAG, train_op


@pytest.fixture
def training_set(mlops_home, tmp_path) -> dict:
    """Five days of the demo source, versioned in the data registry as the ingest DAG versions a training set."""
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(5)]
    frame = pd.concat([generate_day(d, SourceSpec(rows_per_day=800)) for d in days], ignore_index=True)
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    path = tmp_path / "training_set.parquet"
    frame.to_parquet(path, index=False)
    return DvcHook().version_file(path, training_set_path("churn_classifier"), TAG, {})


@pytest.fixture(scope="module")
def trained(trained_pool, tmp_path_factory) -> dict:
    """The pool of trained models in a home of this module's own: a copy of the session's pool (its MLflow store,
    data registry and files), so what one module registers or promotes is not seen by another. The copy's runs
    keep their artifacts where the pool put them (read, never rewritten)."""
    import shutil

    home = tmp_path_factory.mktemp("pool-copy") / "mlops"
    shutil.copytree(trained_pool["home"], home, symlinks=True)
    for name in ("clean.parquet", "noisy.parquet"):
        shutil.copy(trained_pool["home"].parent / name, home.parent / name)
    return {"home": home, "runs": trained_pool["runs"]}


@pytest.fixture(scope="session")
def trained_pool(tmp_path_factory) -> dict:
    """Four runs trained once per session: weak, good, good again (same data and params), and one taught inverted
    premium labels."""
    home = tmp_path_factory.mktemp("promotion") / "mlops"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(home))
        days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(6)]
        frame = pd.concat([generate_day(d, SourceSpec(rows_per_day=1500)) for d in days], ignore_index=True)
        frame["signup_date"] = pd.to_datetime(frame["signup_date"])
        # Premium labels inverted on the training side only: the holdout (evaluation) keeps the true labels.
        noisy = frame.copy()
        premium = (noisy["plan"] == "premium") & ~HoldoutSplit.from_mapping(SPEC.holdout).mask(noisy)
        noisy.loc[premium, "churned"] = 1 - noisy.loc[premium, "churned"]
        revs = {}
        for name, data in (("clean", frame), ("noisy", noisy)):
            path = home.parent / f"{name}.parquet"
            data.to_parquet(path, index=False)
            revs[name] = DvcHook().version_file(path, DATA_PATH, f"training-set/{name}", {})["rev"]
        runs = {}
        for key, rev, params in (
            ("weak", "clean", {"n_estimators": 2, "max_depth": 1}),
            ("good", "clean", {"n_estimators": 120, "max_depth": 4}),
            ("good_again", "clean", {"n_estimators": 120, "max_depth": 4}),
            ("noisy_premium", "noisy", {"n_estimators": 120, "max_depth": 4}),
        ):
            op = train_op(dataset_path=DATA_PATH, dataset_rev=revs[rev], hyperparameters=params, model_name="pool")
            runs[key] = op.execute(task_context(None, dag_id="training", run_id=key, task_id="train"))
    return {"home": home, "runs": runs}


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


@pytest.fixture
def git_daemon(tmp_path):
    """An empty bare registry served by a real ``git daemon`` on 127.0.0.1 (pushes enabled): the git remote two
    workers without a common disk share."""
    base = tmp_path / "served"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(base / "registry.git")],
                   check=True)  # fmt: skip
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", f"--base-path={base}",
         "--listen=127.0.0.1", f"--port={port}", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    wait_for_port(port, "git daemon")
    yield f"git://127.0.0.1:{port}/registry.git", base / "registry.git"
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

    def client(self):  # noqa: ANN201 (a boto3 client)
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key_id,
                            aws_secret_access_key=self.secret, region_name="us-east-1")  # fmt: skip

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """moto's server mode (the S3 protocol over HTTP) on a free port, with the bucket ``mlops-test``: object storage
    that two workers without a common disk share. Fresh per test session; tests use their own prefixes."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, f"moto_server (log: {log})")
        s3 = S3Server(endpoint=f"http://127.0.0.1:{port}", bucket="mlops-test")
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.terminate()
        server.wait(10)
