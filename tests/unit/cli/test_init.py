"""``mlops init``'s steps that need no metadata database: the DAG file (written, kept, a different one refused), the
execution API URL and port checks (read from Airflow's real configuration), the models folder."""

from __future__ import annotations

import pytest

from mlops_provider.cli.init import DAG_FILE_NAME, Report, check_models, check_ports, dag_file_text, write_dag_file

pytestmark = pytest.mark.unit


def test_the_dag_file_is_three_lines_over_the_models_folder(tmp_path):
    text = dag_file_text(tmp_path / "models")
    assert len(text.splitlines()) == 3
    compile(text, DAG_FILE_NAME, "exec")
    assert f"build_all({str(tmp_path / 'models')!r})" in text


def test_the_dag_file_is_written_once_and_a_different_file_is_refused(tmp_path, capsys):
    dags, models = tmp_path / "dags", tmp_path / "models"
    report = Report()
    write_dag_file(dags, models, report, check=False)
    assert (dags / DAG_FILE_NAME).read_text() == dag_file_text(models) and not report.problems
    write_dag_file(dags, models, report, check=False)  # the same file: kept, no problem
    assert not report.problems and "ok" in capsys.readouterr().out.splitlines()[-1]
    write_dag_file(dags, tmp_path / "elsewhere", report, check=False)  # another models folder: refused
    assert len(report.problems) == 1 and "is not the file mlops init writes" in report.problems[0]
    assert (dags / DAG_FILE_NAME).read_text() == dag_file_text(models)  # untouched


def test_check_writes_nothing(tmp_path):
    report = Report()
    write_dag_file(tmp_path / "dags", tmp_path / "models", report, check=True)
    check_models(tmp_path / "models", report, check=True)
    assert not (tmp_path / "dags").exists() and not (tmp_path / "models").exists()
    assert len(report.problems) == 2


def test_an_execution_api_url_on_another_port_is_a_problem_naming_the_fix(monkeypatch):
    from airflow.configuration import conf

    for name, value in {"API__PORT": "18080", "LOGGING__WORKER_LOG_SERVER_PORT": "18081",
                        "LOGGING__TRIGGER_LOG_SERVER_PORT": "18082",
                        "SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "18083",
                        "CORE__EXECUTION_API_SERVER_URL": "http://localhost:8080/execution/"}.items():  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW__{name}", value)
    report = Report()
    check_ports(conf, report)
    assert len(report.problems) == 1, report.problems
    assert "calls port 8080" in report.problems[0]
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:18080/execution/" in report.problems[0]
    assert not any("keep their defaults" in w for w in report.warnings)

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "http://localhost:18080/execution/")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT", "8974")  # a second instance's trap
    report = Report()
    check_ports(conf, report)
    assert not report.problems and any("keep their defaults (8974)" in w for w in report.warnings), report.warnings

    monkeypatch.setenv("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", "18081")
    report = Report()
    check_ports(conf, report)
    assert len(report.problems) == 1 and "port 18081 is set for worker log server" in report.problems[0]


def test_an_empty_models_folder_is_a_warning_and_a_bad_spec_a_problem(tmp_path):
    report = Report()
    check_models(tmp_path, report, check=False)
    assert not report.problems and "no model spec yet" in report.warnings[0]
    (tmp_path / "m.yaml").write_text("name: m\n")
    report = Report()
    check_models(tmp_path, report, check=False)
    assert report.problems and "m.yaml" in report.problems[0]
