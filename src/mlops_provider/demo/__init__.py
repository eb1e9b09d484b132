"""What only the repository's demo and tests use: the deterministic demo source generators (``churn_source``,
``transactions_source``), deliberately bad model versions (``bad_models``) and the embedded-Airflow harness
(``embedded``). Excluded from the wheel
(``pyproject.toml``): an installed provider does not carry them; a clone of the repository (``uv sync``) does."""

from __future__ import annotations

from mlops_provider.demo.churn_source import CHURN, SourceSpec, SourceTable, dates_between, parse_bad_dates, seed_range
from mlops_provider.demo.transactions_source import TRANSACTIONS

#: The demo source tables by name (``mlops seed-source --table``).
SOURCES: dict[str, SourceTable] = {source.table: source for source in (CHURN, TRANSACTIONS)}
DEFAULT_SOURCE = CHURN.table
__all__ = ["DEFAULT_SOURCE", "SOURCES", "SourceSpec", "SourceTable", "dates_between", "parse_bad_dates", "seed_range"]
