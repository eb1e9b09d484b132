"""Data capture in a real serving backend process (issue 33): real HTTP, real parquet files under the storage root.

The round trip (what the client got is what was captured, by request id), a backend killed with SIGKILL in the
middle of a flush (no torn file is read, nothing written before is lost), and a full buffer (rows dropped and
counted, every request answered).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from mlops_provider.ml.capture import PREDICTION, REQUEST, REQUEST_ID, VERSION, is_unfinished
from mlops_provider.runtime.backend import REQUEST_ID_HEADER, BackendProcess, scrape
from mlops_provider.runtime.capture import capture_files, read_day
from mlops_provider.utils.records import capture_folder

pytestmark = pytest.mark.integration

MODEL = "captured_model"
FEATURES = ["a", "b"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small scikit-learn model with a signature (columns a, b), saved as an MLflow model folder."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    folder = tmp_path_factory.mktemp("served") / "model"
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (x["a"] + 0.5 * x["b"] > 0).astype(int)
    model = LinearRegression().fit(x, y)  # one number per row, like a classifier's probability
    mlflow.sklearn.save_model(model, folder, pip_requirements=[], signature=infer_signature(x, model.predict(x)))
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, payload: dict, timeout: float = 30) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url + "/invocations", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, json.loads(exc.read() or b"{}")


def backend(model_dir: Path, home: Path, version: str = "1", **capture) -> BackendProcess:
    settings = {"fraction": 1.0, "flush_rows": 50, "flush_seconds": 0.5, "buffer_rows": 10_000, **capture}
    process = BackendProcess(MODEL, version, free_port(), model_dir, home / f"backend-{version}.log", capture=settings)
    process.start()
    return process


def counter(snapshot_text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in snapshot_text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metrics_text(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        return response.read().decode()


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def test_round_trip_what_the_client_got_is_what_was_captured(model_dir, mlops_home):
    process = backend(model_dir, mlops_home, key_column="customer_id")
    client_log: dict[str, float] = {}
    try:
        for i in range(40):  # one row each, the key column names the row (not a model feature: passed aside)
            status, headers, body = post(process.url, {"dataframe_split": {
                "columns": ["customer_id", "a", "b"], "data": [[f"c{i}", i / 10 - 2, 1 - i / 20]]}})  # fmt: skip
            assert status == 200, body
            assert headers[REQUEST_ID_HEADER.lower()]
            client_log[f"c{i}"] = body["predictions"][0]
        status, headers, body = post(process.url, {"dataframe_records": [{"a": 0.1, "b": 0.2}, {"a": -1, "b": 3}]})
        assert status == 200, body
        generated = headers[REQUEST_ID_HEADER.lower()]  # no key column: the generated id, one per row
        client_log.update({f"{generated}-{i}": p for i, p in enumerate(body["predictions"])})
        assert scrape(process.url) is not None
    finally:
        process.stop()  # SIGTERM: what waits is flushed before the process exits
    frame, files = read_day(MODEL, today(), FEATURES)
    assert files and all(f.endswith(".parquet") for f in files)
    assert len(frame) == len(client_log) == 42
    captured = dict(zip(frame[REQUEST_ID].astype(str), frame[PREDICTION], strict=True))
    assert captured == pytest.approx(client_log)
    assert set(frame[VERSION]) == {"1"}
    assert set(frame.loc[frame[REQUEST_ID].str.startswith(generated), REQUEST]) == {generated}
    assert set(FEATURES) <= set(frame.columns) and "customer_id" not in frame.columns


def test_the_replay_clients_log_names_each_rows_key_and_prediction_as_captured(model_dir, mlops_home, tmp_path):
    """The client side of the join (issue 33): every line of ``replay``'s log holds the key of each row it sent and the
    prediction it got back, so the client log joined with the labels gives what the capture joined with them gives."""
    from mlops_provider.runtime.traffic import replay

    process = backend(model_dir, mlops_home, key_column="customer_id")
    rows = [[f"k{i}", i / 10 - 2, 1 - i / 20] for i in range(30)]
    log = tmp_path / "client.jsonl"
    try:
        summary = replay(f"{process.url}/invocations", ["customer_id", *FEATURES], rows, rate=40, count=15,
                         duration=30, batch=2, log_file=log, key_column="customer_id")  # fmt: skip
    finally:
        process.stop()
    assert summary.failed == 0 and summary.sent == 15
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 15 and all(len(x["keys"]) == len(x["predictions"]) == 2 for x in lines)
    client = {k: p for x in lines for k, p in zip(x["keys"], x["predictions"], strict=True)}
    assert sorted(client) == sorted(r[0] for r in rows)
    frame, _ = read_day(MODEL, today())
    assert dict(zip(frame[REQUEST_ID].astype(str), frame[PREDICTION], strict=True)) == pytest.approx(client)
    # A key column that is not sent is refused before anything is sent.
    with pytest.raises(ValueError, match="key column 'nope' is not one of the columns"):
        replay(f"{process.url}/invocations", FEATURES, [r[1:] for r in rows], rate=1, count=1, duration=1,
               key_column="nope")  # fmt: skip


def test_a_sampled_fraction_keeps_the_rows_whose_id_hash_falls_under_it(model_dir, mlops_home):
    from mlops_provider.ml.capture import sampled

    process = backend(model_dir, mlops_home, key_column="customer_id", fraction=0.3)
    try:
        rows = [[f"k{i}", 0.1 * i, -0.1 * i] for i in range(200)]
        status, _, _ = post(process.url, {"dataframe_split": {"columns": ["customer_id", "a", "b"], "data": rows}})
        assert status == 200
    finally:
        process.stop()
    frame, _ = read_day(MODEL, today())
    assert sorted(frame[REQUEST_ID]) == sorted(r[0] for r in rows if sampled(r[0], 0.3))
    assert 20 < len(frame) < 100


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_stopped(pid: int, timeout: float = 10.0) -> None:
    """Until every thread of ``pid`` is stopped (SIGSTOP delivered: state ``T`` in ``/proc``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except OSError:
                continue  # a thread that ended
        if states and all(state in ("T", "t") for state in states):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not stop within {timeout} s")


def test_a_backend_killed_mid_flush_leaves_no_torn_file_to_read_and_loses_nothing_written(model_dir, mlops_home):
    process = backend(model_dir, mlops_home, flush_rows=2_000, flush_seconds=60, buffer_rows=200_000)
    folder = Path(capture_folder(MODEL, today()).path)
    stop = threading.Event()
    answered = []

    def traffic() -> None:
        rows = [[0.01 * i, -0.02 * i] for i in range(1_000)]
        while not stop.is_set():
            try:
                answered.append(post(process.url, {"dataframe_split": {"columns": FEATURES, "data": rows}}, 10)[0])
            except OSError:
                return  # the backend is gone

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    before: dict[str, str] = {}
    torn = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and torn is None:
            names = os.listdir(folder) if folder.is_dir() else []
            unfinished = [n for n in names if is_unfinished(n)]
            if unfinished and len([n for n in names if n.endswith(".parquet")]) >= 2:
                # a file is being written now: freeze the backend, and kill it only if the flush is still unfinished
                # once frozen (the writer may have renamed the file between the listing and the signal)
                os.killpg(process.pid, signal.SIGSTOP)
                wait_stopped(process.pid)
                caught = [n for n in os.listdir(folder) if is_unfinished(n)]
                if caught:
                    os.killpg(process.pid, signal.SIGKILL)  # mid-flush
                    torn = caught[0]
                    break
                os.killpg(process.pid, signal.SIGCONT)  # the flush ended first: catch the next one
                continue
            for name in names:  # what was finished before the kill, and its bytes
                if name.endswith(".parquet") and not name.startswith(".") and name not in before:
                    before[name] = digest(folder / name)
            time.sleep(0.001)
    finally:
        stop.set()
        process.stop()
        sender.join(30)
    assert torn is not None, "never caught the writer mid-flush"
    assert answered and set(answered) == {200}
    assert (folder / torn).exists()  # the torn file is left where it was...
    names = [p.name for p in capture_files(MODEL, today())]
    assert torn not in names  # ...and no reader takes it
    for name, sha in before.items():  # nothing written before the kill is lost or changed
        assert name in names and digest(folder / name) == sha
    frame, files = read_day(MODEL, today())  # every finished file reads whole
    assert len(files) == len(names) >= 2
    assert len(frame) >= 2_000 * len(files) and len(frame) % 1_000 == 0  # whole requests, whole flushes


def test_a_full_buffer_drops_and_counts_rows_without_failing_a_request(model_dir, mlops_home):
    # flush only at 100 rows or after an hour: the first 60-row request waits, every later one finds the buffer full
    process = backend(model_dir, mlops_home, flush_rows=100, flush_seconds=3600, buffer_rows=100)
    try:
        rows = [[0.01 * i, 0.02 * i] for i in range(60)]
        statuses = [post(process.url, {"dataframe_split": {"columns": FEATURES, "data": rows}})[0] for _ in range(5)]
        assert statuses == [200] * 5
        text = metrics_text(process.url)
        assert counter(text, "mlops_capture_dropped_rows_total", reason="buffer_full") == 4 * 60
        assert counter(text, "mlops_capture_buffer_rows") == 60
    finally:
        process.stop()
    frame, _ = read_day(MODEL, today())
    assert len(frame) == 60  # what the buffer held is written at shutdown


def test_a_store_that_fails_drops_and_counts_rows_without_failing_a_request(model_dir, mlops_home):
    blocked = Path(capture_folder(MODEL, today()).path).parent
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("not a folder")  # every write under it fails
    process = backend(model_dir, mlops_home, flush_rows=10, flush_seconds=0.2)
    try:
        rows = [[0.1, 0.2]] * 10
        statuses = [post(process.url, {"dataframe_split": {"columns": FEATURES, "data": rows}})[0] for _ in range(3)]
        assert statuses == [200] * 3
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            dropped = counter(metrics_text(process.url), "mlops_capture_dropped_rows_total", reason="store_failed")
            if dropped == 30:
                break
            time.sleep(0.2)
        assert dropped == 30
    finally:
        process.stop()


def test_a_model_answering_one_value_per_class_is_captured_with_the_last_classs(tmp_path, mlops_home):
    """In process (the backend's app with its lifespan): a classifier served with ``predict_proba`` answers two
    values a row; the capture keeps one a row, the positive class's."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from starlette.testclient import TestClient

    from mlops_provider.ml.capture import CaptureSettings
    from mlops_provider.runtime.backend import create_app

    x = pd.DataFrame({"a": np.arange(40, dtype=float), "b": np.arange(40, dtype=float)[::-1]})
    model = LogisticRegression().fit(x, [0, 1] * 20)
    folder = tmp_path / "proba"
    mlflow.sklearn.save_model(model, folder, pip_requirements=[], pyfunc_predict_fn="predict_proba")
    with TestClient(create_app(folder, MODEL, "7", capture=CaptureSettings(flush_rows=1, flush_seconds=0.1))) as c:
        answer = c.post(
            "/invocations", json={"dataframe_split": {"columns": FEATURES, "data": [[1.0, 2.0], [3.0, 4.0]]}}
        )
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 4
    frame, _ = read_day(MODEL, today())
    assert list(frame[PREDICTION]) == pytest.approx(answer.json()["predictions"][1::2])


def test_a_backend_started_by_a_task_captures_although_the_task_may_not_reach_the_database(
    model_dir, mlops_home, monkeypatch
):
    """A task process carries Airflow's database block (``airflow-db-not-allowed:///``, set by the task supervisor);
    the backend it starts reads the storage root through Airflow's object storage, whose import must not fail on it."""
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN"):
        monkeypatch.setenv(name, "airflow-db-not-allowed:///")
    process = backend(model_dir, mlops_home)
    try:
        status, _, body = post(process.url, {"dataframe_records": [{"a": 0.1, "b": 0.2}]})
        assert status == 200, body
    finally:
        process.stop()
    frame, _ = read_day(MODEL, today(), FEATURES)
    assert len(frame) >= 1
