"""The Docker provider's real DockerOperator runs a container on the engine and streams its output."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def test_docker_operator_runs_a_container_and_reports_failure(base_image):
    from airflow.providers.docker.exceptions import DockerContainerFailedException
    from airflow.providers.docker.operators.docker import DockerOperator

    ok = DockerOperator(
        task_id="hello",
        image=base_image,
        command=["python3", "-c", "import json; print(json.dumps({'answer': 6 * 7}))"],
        network_mode="none",
        auto_remove="success",
    )
    assert ok.execute(context={}) == '{"answer": 42}'

    failing = DockerOperator(
        task_id="fails",
        image=base_image,
        command=["python3", "-c", "import sys; print('about to fail'); sys.exit(3)"],
        network_mode="none",
        auto_remove="force",
    )
    with pytest.raises(DockerContainerFailedException, match="'StatusCode': 3"):
        failing.execute(context={})
