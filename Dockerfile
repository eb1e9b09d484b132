# The project image of the distributed stack (docker-compose.yaml): Airflow 3 with the provider installed, the
# DAGs and include/ assets, pinned from uv.lock; also runs the MLflow tracking server (extras `all` and `distributed`).
# Build: docker build -t airflow-provider-mlops:latest .   (BASE_IMAGE: any Debian python:3.11 image)
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    MLOPS_HOME=/opt/mlops \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/project/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/project/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# git: DVC's data registry is a git repository. uv installs exactly the locked versions.
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && python -m pip install "uv>=0.5,<1"

WORKDIR /opt/project
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra all --extra distributed --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev --extra all --extra distributed
COPY dags ./dags
COPY include ./include
COPY config ./config
COPY plugins ./plugins
# The project is installed editable (src/): compile it as a wheel install would, so a DAG parse loads byte code.
RUN python -m compileall -q src dags

# /srv/git: the data registry's git remote in docker-compose.yaml (service git-registry, its own volume).
RUN useradd --create-home --uid 50000 airflow && mkdir -p /opt/airflow /opt/mlops /srv/git \
    && chown -R airflow /opt/airflow /opt/mlops /srv/git
USER airflow
EXPOSE 8080 5000
CMD ["airflow", "version"]
