"""MLflow 3 tracking and registry access through an Airflow connection of type ``mlflow``."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mlops_provider.exceptions import MlflowConnectionError
from mlops_provider.hooks.connections import MLFLOW_FIELD_BEHAVIOUR, optional_connection
from mlops_provider.layout import MLFLOW_DEFAULT_CONN_ID
from mlops_provider.utils.extras import require
from mlops_provider.utils.paths import mlflow_store_dir

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion


_CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
_SCOPED_VARIABLES = (*_CREDENTIAL_VARIABLES, "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def embedded_tracking_uri() -> str:
    """The local store of the embedded default: SQLite under ``$MLOPS_HOME/mlflow``."""
    return f"sqlite:///{mlflow_store_dir() / 'mlflow.db'}"


_INITIALIZED: set[str] = set()


def _initialize_sqlite_store(uri: str) -> None:
    """Create (migrate) a SQLite store once, under a file lock: tasks that start together on a fresh store would
    otherwise run MLflow's schema migrations concurrently and fail ("Online migration expected to match one
    row"). A marker file beside the database records that it is ready."""
    import fcntl

    if uri in _INITIALIZED:
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    marker = db.with_name(db.name + ".ready")
    if not marker.exists():
        with open(db.with_name(db.name + ".init.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not marker.exists():
                    from mlflow import MlflowClient

                    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
                    client.search_experiments(max_results=1)
                    client.search_registered_models(max_results=1)
                    marker.touch()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    _INITIALIZED.add(uri)


def embedded_artifact_root() -> Path:
    """Where experiments of the embedded store keep their artifacts."""
    return mlflow_store_dir() / "artifacts"


class MlflowHook(BaseHook):
    """Client for an MLflow tracking server and model registry.

    Connection (type ``mlflow``): ``host`` is the tracking URI (``http://mlflow:5000``; empty: the embedded
    SQLite store in ``$MLOPS_HOME/mlflow``); ``password`` alone is a bearer token, ``login`` + ``password`` are
    basic auth; extras: ``registry_uri`` (default: the tracking URI), ``artifact_root`` (artifact location of
    experiments the hook creates). Without a connection (default id absent) the embedded store is used.

    MLflow reads credentials from environment variables; the hook sets them only for the duration of a call
    (``with hook.scoped_environment():``) and restores the environment afterwards, so they never outlive the call.

    :param mlflow_conn_id: Airflow connection id.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = MLFLOW_DEFAULT_CONN_ID
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        require("mlflow", user=f"{type(self).__name__} ({mlflow_conn_id})")
        self.mlflow_conn_id = mlflow_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return MLFLOW_FIELD_BEHAVIOUR

    @cached_property
    def _settings(self) -> dict[str, Any]:
        conn = optional_connection(self, self.mlflow_conn_id)
        if conn is None:
            return {}
        extra = conn.extra_dejson
        host = conn.host or ""
        if host and "://" not in host:
            scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
            host = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        return {
            "tracking_uri": host or None,
            "registry_uri": extra.get("registry_uri"),
            "artifact_root": extra.get("artifact_root"),
            "login": conn.login or None,
            "password": conn.password or None,
        }

    @property
    def tracking_uri(self) -> str:
        return str(self._settings.get("tracking_uri") or embedded_tracking_uri())

    @property
    def registry_uri(self) -> str:
        return str(self._settings.get("registry_uri") or self.tracking_uri)

    def credential_environment(self) -> dict[str, str]:
        """The MLflow credential variables of the connection (for a child process or container)."""
        login, password = self._settings.get("login"), self._settings.get("password")
        if login and password:
            return {"MLFLOW_TRACKING_USERNAME": str(login), "MLFLOW_TRACKING_PASSWORD": str(password)}
        if password:
            return {"MLFLOW_TRACKING_TOKEN": str(password)}
        return {}

    @contextmanager
    def scoped_environment(self) -> Iterator[None]:
        """Set the connection's credentials and URIs in the environment for the block only, then restore it.

        MLflow reads credentials only from the environment, and some of its internals (the SQL registry store
        resolving a logged model) open their own client on the default tracking URI; both are covered here.
        """
        saved = {name: os.environ.get(name) for name in _SCOPED_VARIABLES}
        for name in _CREDENTIAL_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(self.credential_environment())
        os.environ.update(MLFLOW_TRACKING_URI=self.tracking_uri, MLFLOW_REGISTRY_URI=self.registry_uri)
        # A URI set earlier in this process with mlflow.set_tracking_uri() would win over the environment.
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        saved_registry = registry_utils._registry_uri
        try:
            with tracking_utils._use_tracking_uri(self.tracking_uri):
                registry_utils._registry_uri = self.registry_uri  # type: ignore[assignment]
                yield
        finally:
            registry_utils._registry_uri = saved_registry
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def get_client(self) -> MlflowClient:
        """A client bound to this connection's tracking and registry URIs (no global MLflow state)."""
        from mlflow import MlflowClient

        if self.tracking_uri.startswith("sqlite:///"):
            _initialize_sqlite_store(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def wait_until_reachable(self, attempts: int = 3, delay: float = 2.0) -> None:
        """Check the tracking server answers, retrying a bounded number of times; raise naming the endpoint."""
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                with self.scoped_environment():
                    self.get_client().search_experiments(max_results=1)
                return
            except Exception as exc:
                last = exc
                self.log.warning(
                    "MLflow at %s did not answer (attempt %d/%d): %s", self.tracking_uri, attempt, attempts, exc
                )
                if attempt < attempts:
                    time.sleep(delay * attempt)
        raise MlflowConnectionError(
            f"MLflow tracking server {self.tracking_uri} is not reachable after {attempts} attempts "
            f"(connection {self.mlflow_conn_id!r}): {type(last).__name__}: {str(last)[:300]}"
        )

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.wait_until_reachable(attempts=1)
        except MlflowConnectionError as exc:
            return False, str(exc)
        return True, f"MLflow at {self.tracking_uri} answered"

    # -- get-or-create -----------------------------------------------------------------------------------

    def get_or_create_experiment(self, name: str) -> str:
        """The id of experiment ``name``, created (with the configured artifact root) when missing."""
        from mlflow.exceptions import MlflowException

        client = self.get_client()
        with self.scoped_environment():
            existing = client.get_experiment_by_name(name)
            if existing is not None:
                return str(existing.experiment_id)
            root = self._settings.get("artifact_root")
            if root is None and not self.tracking_uri.startswith(("http://", "https://")):
                root = (embedded_artifact_root() / name).as_uri()
            try:
                return str(client.create_experiment(name, artifact_location=root))
            except MlflowException:
                # Created concurrently by another task: use that one.
                again = client.get_experiment_by_name(name)
                if again is None:
                    raise
                return str(again.experiment_id)

    def get_or_create_registered_model(self, name: str) -> None:
        """Create registered model ``name`` unless it exists."""
        from mlflow.exceptions import MlflowException

        client = self.get_client()
        with self.scoped_environment():
            try:
                client.get_registered_model(name)
            except MlflowException:
                try:
                    client.create_registered_model(name)
                except MlflowException:
                    client.get_registered_model(name)  # created concurrently

    def find_run_by_tag(self, experiment_id: str, key: str, value: str) -> Run | None:
        """The newest run of the experiment whose tag ``key`` equals ``value`` (deleted runs excluded)."""
        client = self.get_client()
        escaped = value.replace("'", "\\'")
        with self.scoped_environment():
            runs = client.search_runs(
                [experiment_id], filter_string=f"tags.`{key}` = '{escaped}'", order_by=["attributes.start_time DESC"]
            )
        return runs[0] if runs else None

    def run_for_key(self, experiment_name: str, key_tag: str, key: str, run_name: str) -> str:
        """The id of the run tagged ``key_tag=key`` in the experiment, created when there is none (re-runs reuse it)."""
        experiment_id = self.get_or_create_experiment(experiment_name)
        existing = self.find_run_by_tag(experiment_id, key_tag, key)
        if existing:
            return str(existing.info.run_id)
        with self.scoped_environment():
            return str(self.get_client().create_run(experiment_id, run_name=run_name, tags={key_tag: key}).info.run_id)

    def model_version_of_run(self, model_name: str, run_id: str) -> ModelVersion | None:
        """The registered version of ``model_name`` created from ``run_id``, if any."""
        client = self.get_client()
        with self.scoped_environment():
            versions = client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
        return min(versions, key=lambda v: int(v.version)) if versions else None

    def aliases_by_version(self, model_name: str) -> dict[str, list[str]]:
        """The aliases of each version of a registered model (version -> sorted aliases), read from the registered
        model: search results do not carry aliases in every store. Raises MlflowException for an unknown model."""
        client = self.get_client()
        with self.scoped_environment():
            aliases = client.get_registered_model(model_name).aliases or {}
        by_version: dict[str, list[str]] = {}
        for alias, version in sorted(aliases.items()):
            by_version.setdefault(str(version), []).append(alias)
        return by_version

    def model_version_tags(self, model_name: str, version: str) -> dict[str, str]:
        """The tags of a model version; LookupError naming it when the version does not exist."""
        from mlflow.exceptions import MlflowException

        client = self.get_client()
        with self.scoped_environment():
            try:
                return dict(client.get_model_version(model_name, str(version)).tags or {})
            except MlflowException as exc:
                raise LookupError(f"{model_name} v{version} is not in the registry {self.registry_uri}") from exc

    # -- runs ------------------------------------------------------------------------------------------------

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
        """A new run of the experiment; returns its id."""
        with self.scoped_environment():
            return str(self.get_client().create_run(experiment_id, run_name=run_name, tags=tags).info.run_id)

    def get_run(self, run_id: str) -> Run:
        """A run (MlflowException when it does not exist)."""
        with self.scoped_environment():
            return self.get_client().get_run(run_id)

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Set tags on a run."""
        client = self.get_client()
        with self.scoped_environment():
            for key, value in tags.items():
                client.set_tag(run_id, key, value)

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        """Log params on a run (MLflow params are write-once: logging the same value again is fine, another value
        fails)."""
        from mlflow.entities import Param

        with self.scoped_environment():
            self.get_client().log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_dated_metric(self, run_id: str, key: str, value: float, day: dt.date) -> None:
        """Log ``key`` at ``day`` (timestamp midnight, step the day's ordinal), so a series plots by data date."""
        timestamp = int(time.mktime(day.timetuple()) * 1000)
        with self.scoped_environment():
            self.get_client().log_metric(run_id, key, value, timestamp=timestamp, step=day.toordinal())

    def log_dict(self, run_id: str, data: dict[str, Any], artifact_file: str) -> None:
        """Log ``data`` as a JSON artifact of the run."""
        with self.scoped_environment():
            self.get_client().log_dict(run_id, data, artifact_file)

    def load_run_dict(self, run_id: str, artifact_file: str) -> dict[str, Any] | None:
        """The JSON artifact ``artifact_file`` of a run, or None when the run has no such artifact."""
        import mlflow
        from mlflow.exceptions import MlflowException

        with self.scoped_environment():
            folder = artifact_file.rpartition("/")[0] or None
            names = {f.path for f in self.get_client().list_artifacts(run_id, folder)}
            if artifact_file not in names:
                return None
            try:
                data = mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact_file}")
            except (MlflowException, ValueError, OSError):
                return None
        return data if isinstance(data, dict) else None

    def log_artifact(self, run_id: str, path: Path, artifact_path: str) -> None:
        """Log a local file as an artifact of the run."""
        with self.scoped_environment():
            self.get_client().log_artifact(run_id, str(path), artifact_path)

    def terminate_run(self, run_id: str, status: str = "FINISHED") -> None:
        """End the run with ``status`` (FINISHED, FAILED, KILLED)."""
        with self.scoped_environment():
            self.get_client().set_terminated(run_id, status)

    # -- registry -------------------------------------------------------------------------------------------

    def model_version(self, model_name: str, version: str | int) -> ModelVersion:
        """A registered model version (MlflowException when it does not exist)."""
        with self.scoped_environment():
            return self.get_client().get_model_version(model_name, str(version))

    def model_versions(self, model_name: str) -> list[ModelVersion]:
        """Every version of a registered model ([] when the model does not exist)."""
        from mlflow.exceptions import MlflowException

        with self.scoped_environment():
            try:
                return list(self.get_client().search_model_versions(f"name = '{model_name}'"))
            except MlflowException:
                return []

    def create_model_version(
        self, model_name: str, *, source: str, run_id: str, model_id: str | None, tags: dict[str, str]
    ) -> str:
        """Register a version of ``model_name``; returns its number."""
        with self.scoped_environment():
            created = self.get_client().create_model_version(
                model_name, source=source, run_id=run_id, model_id=model_id, tags=tags
            )
        return str(created.version)

    def set_version_tags(self, model_name: str, version: str | int, tags: dict[str, str]) -> None:
        """Set tags on a model version."""
        client = self.get_client()
        with self.scoped_environment():
            for key, value in tags.items():
                client.set_model_version_tag(model_name, str(version), key, value)

    def record_gate_verdict(
        self, model_name: str, version: str | int, verdict: dict[str, str], first: dict[str, str] | None = None
    ) -> dict[str, str]:
        """Record an evaluation's verdict in the version's tags, append-only (the rule:
        :func:`~mlops_provider.layout.gate_verdict_tags`): the first verdict stays ``gate.*``, a re-evaluation adds
        ``gate.reevaluation.<n>.*``. Read and written under the model's registry lock; returns the tags set."""
        from mlops_provider.layout import gate_verdict_tags

        with self.alias_lock(model_name):
            tags = gate_verdict_tags(self.model_version_tags(model_name, str(version)), verdict, first)
            self.set_version_tags(model_name, version, tags)
        return tags

    def alias_lock(self, model_name: str) -> AbstractContextManager[None]:
        """Hold this around a read-compare-set of the model's aliases or tags (a file lock on this machine; run the
        tasks in the ``model_promotion`` pool across workers)."""
        from mlops_provider.utils.locks import registry_lock

        return registry_lock(model_name)

    def set_aliases(self, model_name: str, aliases: dict[str, str | None]) -> None:
        """Point each alias at its version, in order; ``None`` removes the alias. Callers that read, compare and
        then set hold ``alias_lock`` around the whole sequence."""
        client = self.get_client()
        with self.scoped_environment():
            for alias, version in aliases.items():
                if version is None:
                    client.delete_registered_model_alias(model_name, alias)
                else:
                    client.set_registered_model_alias(model_name, alias, str(version))

    def run_record(self, run_id: str) -> tuple[Run, Any, list[str], list[ModelVersion]]:
        """A run with its experiment, top-level artifact paths ([] when unreadable) and registered versions;
        MlflowException when the run does not exist."""
        from mlflow.exceptions import MlflowException

        client = self.get_client()
        with self.scoped_environment():
            run = client.get_run(run_id)
            experiment = client.get_experiment(run.info.experiment_id)
            try:
                artifacts = [a.path for a in client.list_artifacts(run_id)]
            except (MlflowException, OSError):
                artifacts = []
            versions = list(client.search_model_versions(f"run_id = '{run_id}'"))
        return run, experiment, artifacts, versions

    def registered_model_names(self) -> list[str]:
        """Names of every registered model, sorted."""
        with self.scoped_environment():
            return sorted(m.name for m in self.get_client().search_registered_models())

    def load_model(self, model_uri: str, check_requirements: bool = True) -> Any:
        """The pyfunc model at ``model_uri`` (``models:/<name>/<version>``, ``runs:/...``).

        :param check_requirements: warn when the model's requirements or Python version do not match this
            environment (MLflow's check, ~1.5 s a load: it scans every installed distribution). A task that loads
            the promoted champion every day passes False: its promotion checked it.
        """
        import mlflow

        with self.scoped_environment():
            return mlflow.pyfunc.load_model(model_uri, suppress_warnings=not check_requirements)

    def download_model(self, model_uri: str, dst_path: Path) -> str:
        """Download the model's artifacts into ``dst_path``; returns the local folder."""
        import mlflow

        with self.scoped_environment():
            return str(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(dst_path)))

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """The version an alias points to, or None (read with get_model_version_by_alias, which is reliable)."""
        from mlflow.exceptions import MlflowException

        client = self.get_client()
        with self.scoped_environment():
            try:
                return str(client.get_model_version_by_alias(model_name, alias).version)
            except MlflowException:
                return None
