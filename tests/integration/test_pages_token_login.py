"""Issue 30, item 9: headless access to the plugin's pages, exactly as docs/pages.md says: the shell block of its
section "Scripts and screenshots" runs verbatim against a real ``airflow api-server`` (a free port, a home of its
own): a token from ``POST /auth/token`` with the simple auth manager's user and password, then the Bearer header
on the plugin's pages."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration

SECTION = "## Scripts and screenshots: a token instead of the sign-in page"


def documented_script() -> str:
    """The first ```bash block of the section (the doc's own words, nothing added)."""
    page = (PROJECT_ROOT / "docs" / "pages.md").read_text()
    assert SECTION in page, f"docs/pages.md has no section {SECTION!r}"
    section = page.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)\n```", section, re.S)
    assert block, "the section shows no ```bash block"
    return block.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_documented_token_login_reads_the_plugin_pages(tmp_path, monkeypatch):
    import json

    from mlops_provider.hooks.mlflow import MlflowHook

    script = documented_script()
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "mlops"))
    MlflowHook().get_or_create_registered_model("churn_classifier")  # a model for the pages to show
    port = free_port()
    home = tmp_path / "airflow"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        MLOPS_HOME=str(tmp_path / "mlops"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path / "dags"),
        AIRFLOW__API__PORT=str(port),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    log = open(tmp_path / "api-server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [airflow, "api-server", "--port", str(port), "--host", "127.0.0.1", "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if status_of(url + "/api/v2/monitor/health") == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        else:
            pytest.fail("the api-server never answered:\n" + (tmp_path / "api-server.log").read_text()[-3000:])
        assert status_of(url + "/mlops/health.json?model=churn_classifier") == 401  # without the token: refused

        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path, env={**env, "AIRFLOW_URL": url, "MODEL": "churn_classifier"},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout)["model_name"] == "churn_classifier"  # the health page's JSON
        assert "<title>Model health: churn_classifier</title>" in (tmp_path / "health.html").read_text()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        log.close()
