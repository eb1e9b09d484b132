"""Table and column names of a spec, written into SQL as the source database needs them.

A plain name (letters, digits and ``_``, not a reserved word) is written as it is, so a spec that worked before
reads the same tables (no quoting means no change of case folding: ``Events`` still finds ``events`` on
PostgreSQL). Any other name (a space, a ``-``, a reserved word such as ``order``) is quoted by the dialect's own
identifier preparer (SQLAlchemy: ``"card events"`` on PostgreSQL and SQLite, backticks on MySQL). A table name
with dots is ``schema.table``: each part is quoted on its own. A name already written with quotes is left alone.

Imports SQLAlchemy only inside functions (Airflow ships it).
"""

from __future__ import annotations

import re
from typing import Any

PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _reserved(dialect: Any | None) -> set[str]:
    if dialect is not None:
        return set(dialect.identifier_preparer.reserved_words)
    from sqlalchemy.sql.compiler import RESERVED_WORDS

    return set(RESERVED_WORDS)


def needs_quotes(name: str, dialect: Any | None = None) -> bool:
    """Whether ``name`` (a column, or a dotted table name) must be quoted to be read as one identifier."""
    if name[:1] in '"`[':
        return False  # quoted by the spec's author
    reserved = _reserved(dialect)
    return any(not PLAIN.fullmatch(part) or part.lower() in reserved for part in name.split("."))


def quote_column(name: str, dialect: Any) -> str:
    """A column name as ``dialect`` reads it (quoted only when it must be)."""
    if name[:1] in '"`[' or (PLAIN.fullmatch(name) and name.lower() not in _reserved(dialect)):
        return name
    return str(dialect.identifier_preparer.quote_identifier(name))


def quote_table(name: str, dialect: Any) -> str:
    """A table name (``table`` or ``schema.table``) as ``dialect`` reads it."""
    if name[:1] in '"`[':
        return name
    return ".".join(quote_column(part, dialect) for part in name.split("."))


def split_table(name: str) -> tuple[str | None, str]:
    """``schema.table`` -> (schema, table); ``table`` -> (None, table) (for SQLAlchemy's inspector)."""
    schema, _, table = name.rpartition(".")
    return schema or None, table
