"""The embedded-Airflow harness: a start that never gets healthy leaves no process behind; a REST GET without an
answer is tried again, a POST is not."""

from __future__ import annotations

import http.server
import os
import threading
import time

import pytest

from mlops_provider.demo.embedded import EmbeddedAirflow, EmbeddedAirflowError

pytestmark = pytest.mark.unit


def test_a_start_that_never_gets_healthy_stops_its_process_group(tmp_path):
    # A component that lives on but never answers the health endpoint, as a scheduler that misses the deadline.
    airflow = EmbeddedAirflow(
        airflow_bin="/bin/true", airflow_home=tmp_path, port=18799, env=dict(os.environ),
        components=[["sleep", "300"]],
    )  # fmt: skip
    with pytest.raises(EmbeddedAirflowError, match="not healthy within 2 s"):
        airflow.start(timeout=2)
    assert airflow.process is not None
    with pytest.raises(ProcessLookupError):  # the whole group is gone
        os.killpg(airflow.process.pid, 0)


class _SlowFirstAnswers(http.server.BaseHTTPRequestHandler):
    """Answers every request after the first ``slow`` ones; those it holds past the client's timeout."""

    slow = 0
    seen: list[str] = []

    def _answer(self) -> None:
        type(self).seen.append(self.command)
        if len(type(self).seen) <= type(self).slow:
            time.sleep(0.6)
        body = b'{"ok": true}'
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on this one
            pass

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowFirstAnswers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _SlowFirstAnswers.seen = []
    yield server
    server.shutdown()
    server.server_close()


def _client(server, tmp_path) -> EmbeddedAirflow:
    return EmbeddedAirflow(
        airflow_bin="/bin/true", airflow_home=tmp_path, port=server.server_address[1], request_timeout=0.2
    )


def test_a_get_that_times_out_is_tried_again(slow_api, tmp_path):
    _SlowFirstAnswers.slow = 2  # two polls time out, the third is answered
    assert _client(slow_api, tmp_path)._request("GET", "/api/v2/dags", auth=False) == {"ok": True}
    assert _SlowFirstAnswers.seen == ["GET"] * 3


def test_a_get_without_answer_fails_naming_the_request_and_what_to_do(slow_api, tmp_path):
    _SlowFirstAnswers.slow = 10
    with pytest.raises(EmbeddedAirflowError, match=r"GET /api/v2/dags got no answer .* within 0.2 s \(3 tries\).*"
                       r"quieter machine"):  # fmt: skip
        _client(slow_api, tmp_path)._request("GET", "/api/v2/dags", auth=False)


def test_a_post_that_times_out_is_not_sent_again(slow_api, tmp_path):
    # A POST (trigger a run, unpause) may have been applied even without an answer: never repeated.
    _SlowFirstAnswers.slow = 1
    with pytest.raises(EmbeddedAirflowError, match=r"POST /api/v2/dags/d/dagRuns got no answer .* \(1 tries\)"):
        _client(slow_api, tmp_path)._request("POST", "/api/v2/dags/d/dagRuns", {"x": 1}, auth=False)
    assert _SlowFirstAnswers.seen == ["POST"]
