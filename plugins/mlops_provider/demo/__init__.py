"""What only the repository's demo and tests use: the deterministic demo source generator (``churn_source``) and the
embedded-Airflow harness (``embedded``). Excluded from the wheel (``pyproject.toml``): an installed provider does not
carry them; a clone of the repository (``uv sync``) does."""
