"""The source database of a dataset, opened one way: the Airflow SQL hook of its connection.

The extract task (``SqlToParquetOperator``) and the ``mlops`` commands that read the source (``new-model``,
``spec check``) resolve the connection here, so one connection works for all of them or fails for all of them
with the same message: a connection that is not defined, a connection type whose provider is not installed
(naming the package to install), a connection that is not a SQL database, or one whose hook cannot open it.
Imports nothing heavy at module level.
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from sqlalchemy.engine import Engine

#: Connection type -> the Airflow provider package whose SQL hook opens it (docs/install.md lists the same).
SQL_PROVIDERS: dict[str, str] = {
    "sqlite": "apache-airflow-providers-sqlite",
    "postgres": "apache-airflow-providers-postgres",
    "mysql": "apache-airflow-providers-mysql",
    "mssql": "apache-airflow-providers-microsoft-mssql",
    "oracle": "apache-airflow-providers-oracle",
    "snowflake": "apache-airflow-providers-snowflake",
    "redshift": "apache-airflow-providers-amazon",
    "gcpbigquery": "apache-airflow-providers-google",
    "databricks": "apache-airflow-providers-databricks",
    "trino": "apache-airflow-providers-trino",
    "presto": "apache-airflow-providers-presto",
    "vertica": "apache-airflow-providers-vertica",
    "exasol": "apache-airflow-providers-exasol",
    "teradata": "apache-airflow-providers-teradata",
    "odbc": "apache-airflow-providers-odbc",
    "jdbc": "apache-airflow-providers-jdbc",
}

#: What an Airflow SQLite connection looks like (the SQLAlchemy form ``sqlite:////abs/path`` is not one).
SQLITE_FORMS = (
    "an Airflow SQLite connection names the file in its host: URI sqlite:///abs/path/to/file.db (three slashes, "
    "then the absolute path without its leading slash) or JSON "
    '{"conn_type": "sqlite", "host": "/abs/path/to/file.db"}'
)


def missing_provider_message(conn_id: str, conn_type: str) -> str:
    """Why a connection's hook cannot be made: the provider package of its type is not installed (pure)."""
    package = SQL_PROVIDERS.get(conn_type)
    install = (
        f"install {package} (pip install {package}) in every Airflow component and where mlops runs"
        if package
        else "install the Airflow provider that defines this connection type"
    )
    return f"connection {conn_id!r} is of type {conn_type!r}, which no installed Airflow provider knows: {install}"


def source_hook(conn_id: str) -> DbApiHook:
    """The SQL hook of connection ``conn_id``, as the extract task uses it. Raises ``ValueError`` naming the
    connection when it is not defined, its type's provider is not installed, or it is not a SQL database."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    from mlops_provider.utils.compat import AirflowException, AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ValueError(
            f"connection {conn_id!r} is not defined (add it in Airflow, or as AIRFLOW_CONN_{conn_id.upper()})"
        ) from None
    conn_type = connection.conn_type or ""
    try:
        hook = connection.get_hook()
    except AirflowException as exc:
        if "Unknown hook type" in str(exc):
            raise ValueError(missing_provider_message(conn_id, conn_type)) from None
        raise ValueError(f"connection {conn_id!r} ({connection.conn_type}): {exc}") from None
    except ImportError as exc:  # the provider is registered but its driver is not importable
        package = SQL_PROVIDERS.get(conn_type, "its provider")
        raise ValueError(
            f"connection {conn_id!r} ({connection.conn_type}): the hook cannot be imported ({exc}); reinstall "
            f"{package} with its dependencies"
        ) from None
    if not isinstance(hook, DbApiHook):
        raise ValueError(
            f"connection {conn_id!r} is of type {connection.conn_type!r}, not a SQL database (its hook "
            f"{type(hook).__name__} is not a DbApiHook)"
        )
    return hook


def open_problem(conn_id: str, conn_type: str, exc: BaseException) -> str:
    """The message for a hook that could not open its database (pure)."""
    hint = f"; {SQLITE_FORMS}" if conn_type == "sqlite" else ""
    reason = f"{type(exc).__name__}: {exc}"
    return f"connection {conn_id!r} ({conn_type}) cannot be opened by its Airflow hook: {reason}{hint}"


def source_engine(conn_id: str) -> Engine:
    """A SQLAlchemy engine whose every connection is the hook's own DB-API connection (``hook.get_conn()``, what
    the extract task reads through), checked by opening one. Raises ``ValueError`` as :func:`source_hook` does,
    or naming the connection and the driver's error when the hook cannot open the database."""
    from pathlib import Path

    hook = source_hook(conn_id)
    conn_type = hook.get_connection(conn_id).conn_type or ""
    try:
        engine: Any = hook.get_sqlalchemy_engine(engine_kwargs={"creator": hook.get_conn})
        database = engine.url.database
        if conn_type == "sqlite" and database and database != ":memory:" and not Path(database).is_file():
            raise FileNotFoundError(f"database file {database} does not exist")  # connecting would create it
        with closing(hook.get_conn()) as conn:  # the extract's own call
            conn.cursor().close()
    except Exception as exc:  # noqa: BLE001 (whatever the driver raises, the message names the connection)
        raise ValueError(open_problem(conn_id, conn_type, exc)) from None
    return engine
