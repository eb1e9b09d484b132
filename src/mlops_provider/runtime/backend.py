"""A live serving backend: one model version's MLflow pyfunc model behind a small ASGI app with Prometheus metrics.

Why not MLflow's own scoring server (``mlflow models serve``, the shadow check's server): live traffic needs
(1) metrics per request labelled with the version, (2) bad input answered with a 4xx naming the column and
counted apart from the server's own 5xx (MLflow's schema enforcement drops unknown columns silently and reports
some type errors as 500), and (3) the answering version in a response header for the client's log. Wrapping
MLflow's app would mean reaching into its private request parsing; this app is small, speaks the same protocol
(``GET /ping``, ``POST /invocations`` with ``dataframe_split``/``dataframe_records``, ``{"predictions": [...]}``)
and loads the same artifacts with ``mlflow.pyfunc.load_model``.

Endpoints: ``/ping`` (200 once the model is loaded), ``/invocations``, ``/metrics`` (Prometheus text):

* ``mlops_serving_requests_total{model, version, status_class}``: ``/invocations`` answers by ``2xx/4xx/5xx``;
* ``mlops_serving_request_duration_seconds{model, version}``: latency histogram of ``/invocations``;
* ``mlops_serving_prediction{model, version}``: histogram of the predicted values (buckets: ``--prediction-buckets``,
  default tenths of 0..1, a classifier's probability);
* ``mlops_serving_model_info{model, version}``: 1;
* ``mlops_serving_traffic_weight{model, version}``: the percent of the endpoint's traffic the deployment record gives
  this version, read from ``--weights-file`` at each scrape (:mod:`mlops_provider.runtime.metrics_targets` writes
  it); absent without the file.

With data capture (``--capture`` JSON of :class:`~mlops_provider.ml.capture.CaptureSettings`, the spec's
``serving.capture``), every answered row is handed to a :class:`~mlops_provider.runtime.capture.CaptureWriter`
(bounded buffer, flushed to the storage root by a thread; never blocks a request), and:

* ``mlops_capture_rows_total{model, version}``: rows written to capture files;
* ``mlops_capture_dropped_rows_total{model, version, reason}``: rows dropped (``buffer_full``, ``store_failed``,
  ``unmatched_output``: a model output that is not one value, or one value per class, per row);
* ``mlops_capture_buffer_rows{model, version}``: rows waiting in memory.

Every answer carries ``X-Model-Version``; ``/invocations`` answers carry ``X-Request-Id`` (the caller's own
``X-Request-Id`` when it sent a plain one, else a generated id): a row's request id is its key column's value when
the spec names one (the column is then not passed to the model unless the model takes it), else this id
(``<id>-<row>`` for a request of several rows). Run as
``python -m mlops_provider.runtime.backend --model-dir D --model M --version V --port P``; :class:`BackendProcess`
starts it detached from the task (it outlives the task: the deployment record names it, and any later task
reconciles it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops_provider.exceptions import BackendError
from mlops_provider.ml.canary import INFO_METRIC, LATENCY_METRIC, PREDICTION_METRIC, REQUESTS_METRIC, WEIGHT_METRIC
from mlops_provider.ml.capture import CaptureSettings
from mlops_provider.runtime.processes import child_environment

VERSION_HEADER = "X-Model-Version"
REQUEST_ID_HEADER = "X-Request-Id"
#: Metric names of data capture.
CAPTURE_ROWS_METRIC = "mlops_capture_rows"
CAPTURE_DROPPED_METRIC = "mlops_capture_dropped_rows"
CAPTURE_BUFFER_METRIC = "mlops_capture_buffer_rows"
_PLAIN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PREDICTION_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
#: Words of a backend's command line that identify it (with its port): a recorded pid is only trusted with them.
MODULE = "mlops_provider.runtime.backend"


def signature_of(model: Any) -> list[tuple[str, str, bool]]:
    """``(name, type, required)`` of each input column of a pyfunc model's signature (empty: no signature; an
    ``any`` column typed by the model's metadata ``input_types``: see
    :func:`mlops_provider.ml.request_check.input_signature`)."""
    from mlops_provider.ml.request_check import input_signature

    return input_signature(model)


def create_app(
    model_dir: str | Path,
    model_name: str,
    version: str,
    prediction_buckets: tuple[float, ...] = (),
    weights_file: str | Path | None = None,
    capture: CaptureSettings | None = None,
) -> Any:
    """The ASGI app serving the pyfunc model in ``model_dir`` (loaded here, before the app answers); with
    ``weights_file``, it exports the traffic weight the deployment gives it; with ``capture``, the rows it answers
    are captured (see the module's docstring)."""
    import contextlib
    import uuid

    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from mlops_provider.ml.request_check import RequestError, check_request, request_rows

    model = mlflow.pyfunc.load_model(str(model_dir))
    signature = signature_of(model)
    kinds = {name: kind for name, kind, _ in signature}
    registry = CollectorRegistry()
    labels = {"model": model_name, "version": str(version)}
    requests = Counter(REQUESTS_METRIC, "Prediction requests by status class", ["model", "version", "status_class"],
                       registry=registry)  # fmt: skip
    latency = Histogram(LATENCY_METRIC, "Prediction request latency", ["model", "version"], buckets=LATENCY_BUCKETS,
                        registry=registry).labels(**labels)  # fmt: skip
    buckets = prediction_buckets or PREDICTION_BUCKETS
    predicted = Histogram(PREDICTION_METRIC, "Predicted values", ["model", "version"], buckets=buckets,
                          registry=registry).labels(**labels)  # fmt: skip
    Gauge(INFO_METRIC, "The model version this backend serves", ["model", "version"],
          registry=registry).labels(**labels).set(1)  # fmt: skip
    if weights_file:
        registry.register(WeightCollector(Path(weights_file), model_name, str(version)))
    for status in ("2xx", "4xx", "5xx"):
        requests.labels(status_class=status, **labels)  # exported at 0 from the start
    header = {VERSION_HEADER: str(version)}
    feature_names = set(kinds)

    def frame_of(columns: list[str], rows: list[list[Any]]) -> Any:
        frame = pd.DataFrame(rows, columns=columns)
        for name in columns:
            kind = kinds.get(name)
            if kind in ("double", "float"):
                frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            elif kind in ("long", "integer"):
                frame[name] = frame[name].astype("int64")
            elif kind == "boolean":
                frame[name] = frame[name].astype(bool)
        return frame

    writer, key_column = _capture_writer(model_name, str(version), capture, registry, labels, kinds)

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        status = 200
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _PLAIN_ID.match(given) else uuid.uuid4().hex
        answer = {**header, REQUEST_ID_HEADER: request_id}
        try:
            keys: list[Any] | None = None
            try:
                columns, rows = request_rows(json.loads(await request.body()))
                if key_column is not None and key_column in columns:
                    at = columns.index(key_column)
                    keys = [row[at] for row in rows]
                    if key_column not in feature_names and signature:  # the request's id, not a feature
                        columns = columns[:at] + columns[at + 1 :]
                        rows = [row[:at] + row[at + 1 :] for row in rows]
                if signature:
                    check_request(signature, columns, rows)
            except (RequestError, json.JSONDecodeError, UnicodeDecodeError, IndexError, TypeError) as exc:
                status = 422 if isinstance(exc, RequestError) else 400
                column = getattr(exc, "column", None)
                return JSONResponse({"error": str(exc), "column": column}, status_code=status, headers=answer)
            try:
                frame = frame_of(columns, rows)
                output = model.predict(frame)
                values = np.asarray(output.values if hasattr(output, "values") else output, dtype=float).ravel()
            except Exception as exc:  # the model's fault: a 5xx, what a canary is judged on
                status = 500
                return JSONResponse({"error": f"{type(exc).__name__}: {exc}"[:500]}, status_code=500, headers=answer)
            for value in values:
                predicted.observe(float(value))
            predictions = values.tolist()
            if writer is not None and capture is not None:
                _capture(writer, capture, columns, rows, predictions, request_id, keys)
            return JSONResponse({"predictions": predictions}, headers=answer)
        finally:
            latency.observe(time.perf_counter() - started)
            requests.labels(status_class=f"{status // 100}xx", **labels).inc()

    async def ping(request: Request) -> Response:
        return Response("\n", headers=header)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST, headers=header)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        if writer is not None:
            writer.start()
        try:
            yield
        finally:
            if writer is not None:
                writer.stop()  # what waits is written before the process exits (SIGTERM)

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
    )


class WeightCollector:
    """``mlops_serving_traffic_weight``: this version's percent of the traffic, from the weights file at each scrape."""

    def __init__(self, path: Path, model_name: str, version: str) -> None:
        self.path, self.model_name, self.version = path, model_name, version

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        from mlops_provider.runtime.metrics_targets import read_weights

        weights = read_weights(self.path)
        if weights is None:
            return
        family = GaugeMetricFamily(WEIGHT_METRIC, "Percent of the endpoint's traffic the deployment gives this "
                                   "version", labels=["model", "version"])  # fmt: skip
        family.add_metric([self.model_name, self.version], weights.get(self.version, 0.0))
        yield family


def _capture_writer(
    model_name: str,
    version: str,
    capture: CaptureSettings | None,
    registry: Any,
    labels: dict[str, str],
    kinds: dict[str, str] | None = None,
) -> tuple[Any, str | None]:
    """The backend's capture writer with its metrics (None when capture is off) and the key column; ``kinds``: the
    signature's ``{column: kind}`` (the captured columns' types)."""
    if capture is None or capture.fraction <= 0:
        return None, capture.key_column if capture is not None else None
    from prometheus_client import Counter, Gauge

    from mlops_provider.runtime.capture import DROP_REASONS, CaptureWriter

    written = Counter(CAPTURE_ROWS_METRIC, "Captured rows written to the storage root", ["model", "version"],
                      registry=registry).labels(**labels)  # fmt: skip
    dropped = Counter(CAPTURE_DROPPED_METRIC, "Captured rows dropped (buffer full, store failed)",
                      ["model", "version", "reason"], registry=registry)  # fmt: skip
    for reason in DROP_REASONS:
        dropped.labels(reason=reason, **labels)  # exported at 0 from the start
    writer = CaptureWriter(model_name, version, capture,
                           on_drop=lambda reason, rows: dropped.labels(reason=reason, **labels).inc(rows),
                           on_write=lambda rows, files: written.inc(rows), kinds=kinds)  # fmt: skip
    Gauge(CAPTURE_BUFFER_METRIC, "Captured rows waiting in memory", ["model", "version"],
          registry=registry).labels(**labels).set_function(lambda: writer.buffered)  # fmt: skip
    return writer, capture.key_column


def _capture(
    writer: Any,
    capture: CaptureSettings,
    columns: list[str],
    rows_in: list[list[Any]],
    predictions: list[float],
    request_id: str,
    keys: Any,
) -> None:
    """Hand a request's answered rows, sampled, to the writer (never raises: capture must not fail a request)."""
    from mlops_provider.ml.capture import row_ids, sampled

    try:
        rows = len(rows_in)
        if len(predictions) != rows:
            if rows and len(predictions) % rows == 0:  # one column per class: the last is the positive class's
                width = len(predictions) // rows
                predictions = predictions[width - 1 :: width]
            else:
                writer.dropped["unmatched_output"] += rows
                writer.on_drop("unmatched_output", rows)
                return
        ids = row_ids(request_id, rows, keys)
        if capture.fraction < 1.0:
            keep = [i for i, row_id in enumerate(ids) if sampled(row_id, capture.fraction)]
            if not keep:
                return
            if len(keep) < len(ids):
                rows_in = [rows_in[i] for i in keep]
                predictions = [predictions[i] for i in keep]
                ids = [ids[i] for i in keep]
        writer.add_rows(columns, rows_in, predictions, ids, request_id)
    except Exception:  # noqa: BLE001 - counted as dropped; the caller gets its answer
        writer.dropped["store_failed"] += len(predictions)
        writer.on_drop("store_failed", len(predictions))


def main(argv: list[str] | None = None) -> None:
    """Serve one model version (the command :class:`BackendProcess` starts)."""
    import uvicorn

    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prediction-buckets", default="", help="comma-separated upper bounds")
    parser.add_argument("--weights-file", default="", help="the endpoint's weights file (metrics_targets)")
    parser.add_argument("--capture", default="", help="JSON of serving.capture (CaptureSettings); empty: off")
    args = parser.parse_args(argv)
    buckets = tuple(float(b) for b in args.prediction_buckets.split(",") if b.strip())
    capture = CaptureSettings.from_dict(json.loads(args.capture)) if args.capture else None
    app = create_app(args.model_dir, args.model, args.version, buckets, args.weights_file or None, capture)
    # keep-alive longer than the proxy's idle timeout (30 s): the proxy, not the backend, closes an idle connection
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, timeout_keep_alive=75)


# -- the process -------------------------------------------------------------------------------------------------


def port_in_use(port: int) -> bool:
    """Whether another socket holds 127.0.0.1:``port`` (a server's bind would fail)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT does not count
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def process_alive(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` runs (not a zombie) with ``marker`` in its command line: a recorded pid reused by another
    process does not count."""
    from mlops_provider.runtime.processes import group_members

    return pid is not None and bool(group_members(int(pid), marker))  # started in a session of its own: pgid == pid


def stop_process(pid: int | None, marker: str, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, the process group ``pid`` when it still runs with ``marker``."""
    import signal

    if pid is None or not process_alive(pid, marker):
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(int(pid), sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process_alive(pid, marker):
                _reap(int(pid))
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status when ``pid`` is our child (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def backend_command(backend: Any, python: str, model_dir: str) -> list[str]:
    """The command line of ``backend``'s serving process (a local process or a container's): its model, version,
    port, prediction buckets, weights file and capture settings, run by ``python`` on ``model_dir``."""
    command = [python, "-m", MODULE, "--model-dir", model_dir, "--model", backend.model_name,
               "--version", backend.version, "--port", str(backend.port)]  # fmt: skip
    if backend.prediction_buckets:
        command += ["--prediction-buckets", ",".join(str(b) for b in backend.prediction_buckets)]
    if backend.weights_file is not None:
        command += ["--weights-file", str(backend.weights_file)]
    if backend.capture is not None:
        command += ["--capture", json.dumps(backend.capture.to_dict())]
    return command


def answers_as(url: str, version: str, timeout: float = 2.0) -> bool:
    """The backend at ``url`` answers ``/ping`` as ``version`` (its version header)."""
    try:
        with urllib.request.urlopen(url + "/ping", timeout=timeout) as response:
            return response.headers.get(VERSION_HEADER) == version
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET ``url`` -> (status, body); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, ""


class BackendProcess:
    """One model version's backend as a local process on ``port``, detached from the task that starts it.

    :param model_name: registered model.
    :param version: its version.
    :param port: port on 127.0.0.1.
    :param model_dir: the version's artifacts on this machine.
    :param log_file: where its output goes.
    :param pid: the recorded pid of a running backend (from the deployment record), if any.
    :param capture: ``serving.capture`` (:class:`~mlops_provider.ml.capture.CaptureSettings` as a dict): capture
        the rows it answers; None: no capture.
    """

    #: The deployment record's key of what :meth:`start` returns.
    ID_KEY = "pid"

    def __init__(
        self,
        model_name: str,
        version: str,
        port: int,
        model_dir: str | Path,
        log_file: Path,
        pid: int | None = None,
        prediction_buckets: tuple[float, ...] = (),
        weights_file: Path | None = None,
        capture: dict[str, Any] | None = None,
    ) -> None:
        self.model_name = model_name
        self.capture = CaptureSettings.from_dict(capture) if capture is not None else None
        self.version = str(version)
        self.port = int(port)
        self.model_dir = Path(model_dir)
        self.log_file = Path(log_file)
        self.pid = pid
        self.prediction_buckets = prediction_buckets
        self.weights_file = weights_file

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def marker(self) -> str:
        return f"--port {self.port}"

    def running(self) -> bool:
        """The recorded process runs (a busy backend that answers slowly still runs: it is not started twice)."""
        return process_alive(self.pid, self.marker)

    def alive(self) -> bool:
        """The recorded process runs and answers ``/ping`` with this version."""
        return self.running() and answers_as(self.url, self.version)

    def start(self, timeout: float = 120.0) -> int:
        """Start it and wait until it answers; returns its pid. A BackendError when the port is taken (naming
        it), or the backend exits or does not answer in ``timeout`` seconds (with its log's tail)."""
        if port_in_use(self.port):
            raise BackendError(
                f"port {self.port} for {self.model_name} v{self.version} is taken by another process "
                "(choose another port range, or stop what listens there)"
            )
        command = backend_command(self, sys.executable, str(self.model_dir))
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                command, start_new_session=True, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=child_environment(),  # a task's database block would stop Airflow's import in the backend
            )  # fmt: skip
        self.pid = process.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BackendError(
                    f"backend of {self.model_name} v{self.version} exited with {process.returncode}:\n{self.tail()}"
                )
            if get(self.url + "/ping", timeout=1)[0] == 200:
                return process.pid
            time.sleep(0.2)
        self.stop()
        raise BackendError(
            f"backend of {self.model_name} v{self.version} not ready after {timeout:.0f} s:\n{self.tail()}"
        )

    def stop(self) -> None:
        stop_process(self.pid, self.marker)

    def tail(self, chars: int = 2000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""


def scrape(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The :func:`~mlops_provider.ml.canary.snapshot_from_text` of a backend's ``/metrics``; None when it does not
    answer."""
    from mlops_provider.ml.canary import snapshot_from_text

    status, text = get(url.rstrip("/") + "/metrics", timeout=timeout)
    return snapshot_from_text(text) if status == 200 else None


if __name__ == "__main__":
    main()
