"""The source connection's messages (pure) and their documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_provider.hooks.sql_source import SQL_PROVIDERS, missing_provider_message, open_problem

pytestmark = pytest.mark.unit

INSTALL_DOC = Path(__file__).resolve().parents[3] / "docs" / "install.md"


def test_a_missing_provider_is_named_by_its_package():
    message = missing_provider_message("src", "sqlite")
    assert "connection 'src'" in message and "pip install apache-airflow-providers-sqlite" in message
    assert "install the Airflow provider" in missing_provider_message("src", "no_such_type")


def test_a_sqlite_connection_that_cannot_be_opened_shows_the_airflow_forms():
    message = open_problem("src", "sqlite", OSError("invalid uri authority: tmp"))
    assert "connection 'src' (sqlite)" in message and "invalid uri authority" in message
    assert "sqlite:///abs/path/to/file.db" in message
    assert "sqlite:///" not in open_problem("pg", "postgres", OSError("refused"))


def test_install_doc_lists_the_provider_of_every_source_connection_type():
    text = INSTALL_DOC.read_text()
    for conn_type, package in SQL_PROVIDERS.items():
        assert f"| `{conn_type}` | `{package}` |" in text, conn_type
