"""Connection types of the provider and how the Airflow UI shows their fields (one definition, used by the
hooks' ``get_ui_field_behaviour`` and by ``get_provider_info``). Imports nothing heavy: the providers manager
reads it in every Airflow process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import BaseHook, Connection

DVC_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {
        "host": "Data registry git URL (optional)",
        "login": "Remote login (S3 access key id, SSH/HTTP/WebDAV user, Azure account)",
        "password": "Remote secret (S3 secret key, password, Azure account key)",
    },
    "placeholders": {
        "host": "https://git.example.com/data/registry.git (empty: a local workspace)",
        "extra": '{"workspace": "/data/registry", "remote_url": "s3://bucket/dvc", '
        '"remote_options": {"endpointurl": "http://minio:9000"}, "remote_secret_options": {}}',
    },
}

MLFLOW_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {"host": "Tracking URI", "login": "Username (basic auth)", "password": "Password or token"},
    "placeholders": {
        "host": "http://mlflow:5000 (empty: embedded SQLite store)",
        "extra": '{"registry_uri": "http://mlflow:5000", "artifact_root": "s3://mlflow/artifacts"}',
    },
}

# Form fields for the connections' ``extra`` (the ``conn-fields`` of the provider info; JSON schema per field).
DVC_EXTRA_FIELDS: dict[str, Any] = {
    "workspace": {
        "label": "Workspace",
        "schema": {"type": ["string", "null"]},
        "description": "Local folder of the data registry's git workspace (default: $MLOPS_HOME/data-registry).",
    },
    "remote_url": {
        "label": "DVC remote URL",
        "schema": {"type": ["string", "null"]},
        "description": "Where DVC pushes the data: s3://bucket/prefix, gs://, azure://, ssh://, a folder.",
    },
    "remote_options": {
        "label": "Remote options",
        "schema": {"type": ["object", "null"]},
        "description": "Non-secret options of the remote, as `dvc remote modify` names them (e.g. endpointurl).",
    },
    "remote_secret_options": {
        "label": "Remote secret options",
        "schema": {"type": ["object", "null"]},
        "description": "Secret options of the remote; written to the workspace's local config only.",
    },
    "git_password": {
        "label": "Git password or token",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "Credential for the registry's git URL (the connection's login is the remote's).",
    },
}

MLFLOW_EXTRA_FIELDS: dict[str, Any] = {
    "registry_uri": {
        "label": "Registry URI",
        "schema": {"type": ["string", "null"]},
        "description": "Model registry, when it is not the tracking server.",
    },
    "artifact_root": {
        "label": "Artifact root",
        "schema": {"type": ["string", "null"]},
        "description": "Default artifact location of new experiments (e.g. s3://mlflow/artifacts).",
    },
}

CONNECTION_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "dvc": ("mlops_provider.hooks.dvc.DvcHook", DVC_FIELD_BEHAVIOUR),
    "mlflow": ("mlops_provider.hooks.mlflow.MlflowHook", MLFLOW_FIELD_BEHAVIOUR),
}


def provider_connection_types() -> list[dict[str, Any]]:
    """The ``connection-types`` entries of the provider info (kebab-case, as provider.yaml spells them)."""
    return [
        {
            "hook-class-name": hook_class,
            "connection-type": conn_type,
            "ui-field-behaviour": {
                "hidden-fields": behaviour["hidden_fields"],
                "relabeling": behaviour["relabeling"],
                "placeholders": behaviour["placeholders"],
            },
            "conn-fields": CONNECTION_EXTRA_FIELDS[conn_type],
        }
        for conn_type, (hook_class, behaviour) in CONNECTION_TYPES.items()
    ]


CONNECTION_EXTRA_FIELDS: dict[str, dict[str, Any]] = {"dvc": DVC_EXTRA_FIELDS, "mlflow": MLFLOW_EXTRA_FIELDS}


def optional_connection(hook: BaseHook, conn_id: str) -> Connection | None:
    """The hook's connection, or None when its *default* id is not defined (the embedded default then applies);
    a connection id the user named must exist (AirflowNotFoundException)."""
    from mlops_provider.utils.compat import AirflowNotFoundException

    try:
        return hook.get_connection(conn_id)
    except AirflowNotFoundException:
        if conn_id != getattr(hook, "default_conn_name", None):
            raise
        return None
