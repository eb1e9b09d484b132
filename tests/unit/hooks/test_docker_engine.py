"""The Docker engine helper names the URL and what to do when no engine answers."""

from __future__ import annotations

import pytest

from mlops_provider.hooks.docker_engine import DockerEngineError, docker_client

pytestmark = pytest.mark.unit


def test_no_engine_at_the_url_names_it(tmp_path) -> None:
    url = f"unix://{tmp_path}/no-engine.sock"
    with pytest.raises(
        DockerEngineError, match=f"PackageModelOperator needs a Docker engine, but none answers at {url}"
    ):
        docker_client(docker_url=url, docker_conn_id=None, timeout=5, user="PackageModelOperator")
