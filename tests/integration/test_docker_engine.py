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


def test_engine_access_goes_through_the_docker_connection(base_image, monkeypatch):
    """``docker_client`` uses the Docker provider's hook: the engine at ``docker_url``, the registry login of
    ``docker_conn_id`` (a registry that does not answer fails the call and the message names the connection)."""
    from mlops_provider.hooks.docker_engine import DEFAULT_DOCKER_URL, DockerEngineError, docker_client

    client = docker_client(docker_url=DEFAULT_DOCKER_URL, docker_conn_id=None, timeout=30, user="test")
    assert client.images.get(base_image).id

    monkeypatch.setenv(
        "AIRFLOW_CONN_PRIVATE_REGISTRY",
        '{"conn_type": "docker", "host": "127.0.0.1:9", "login": "robot", "password": "secret"}',
    )
    with pytest.raises(DockerEngineError, match="connection 'private_registry'"):
        docker_client(docker_url=DEFAULT_DOCKER_URL, docker_conn_id="private_registry", timeout=30, user="test")


def test_a_retry_removes_the_serving_container_an_earlier_try_left(base_image):
    """A container is run by the engine, not the task: a task killed mid-check leaves it. The next try of the same
    server (same key, another name) removes every container labelled with the key before it starts its own."""
    import uuid

    import docker

    from mlops_provider.runtime.model_servers import SERVER_KEY_LABEL, DockerModelServer

    client = docker.from_env()
    key = f"test-shadow-{uuid.uuid4().hex[:8]}"
    left = client.containers.run(  # what try 1 left running when its task process was killed
        base_image, ["sleep", "300"], name=f"{key}-try1", detach=True, network_mode="none",
        labels={SERVER_KEY_LABEL: key},
    )  # fmt: skip
    other = client.containers.run(  # another task's server: not ours to remove
        base_image, ["sleep", "300"], name=f"{key}-other", detach=True, network_mode="none",
        labels={SERVER_KEY_LABEL: f"{key}-other"},
    )  # fmt: skip
    server = DockerModelServer(image=base_image, name=f"{key}-try2", key=key)
    try:
        server.start()
        labelled = client.containers.list(all=True, filters={"label": f"{SERVER_KEY_LABEL}={key}"})
        assert [c.name for c in labelled] == [f"{key}-try2"]
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(left.id)
        assert client.containers.get(other.id).status in ("running", "created")
    finally:
        server.stop()
        other.remove(force=True)
        try:
            left.remove(force=True)
        except docker.errors.NotFound:
            pass
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(f"{key}-try2")
