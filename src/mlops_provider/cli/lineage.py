"""``mlops lineage <model> <request-id>``: from one captured prediction back to what made it.

The live endpoint captured the row (:mod:`mlops_provider.runtime.capture`: its request id, the version that answered,
the prediction returned, when); the registry knows that version's training run, whose tags name the training set
(data registry path, rev, md5), the training code's version and the Airflow run that trained it. Nothing is
re-computed: every value is read from the capture file and the registry.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mlops_provider.layout import DATA_MD5_TAG, DATA_PATH_TAG, DATA_REV_TAG, RUN_KEY_TAG

#: Registry tags of a version's training, by the key the lineage gives them.
TRAINING_SET = (("path", DATA_PATH_TAG), ("rev", DATA_REV_TAG), ("md5", DATA_MD5_TAG), ("name", "data.rev_name"),
                ("registry", "data.registry"))  # fmt: skip


def prediction_lineage(
    model_name: str, request_id: str, day: str | None = None, mlflow_conn_id: str | None = None
) -> dict[str, Any]:
    """The lineage of every captured prediction of ``model_name`` with request id ``request_id`` (searched on
    ``day``, else on the captured days newest first, stopping at the first day with a match):
    ``{"model_name", "request_id", "days_searched", "predictions": [{"day", "file", "captured_at", "request",
    "prediction", "version", "aliases", "run_id", "training_set" {"path", "rev", "md5", "name", "registry"},
    "code_version", "airflow_run", "trigger_reason", "links" {...}, "note"}]}``. Raises LookupError naming what was
    searched when no captured row has that id."""
    from mlops_provider.hooks.mlflow import MlflowHook
    from mlops_provider.runtime.capture import capture_days, find_request

    days = [day] if day else capture_days(model_name)
    found = find_request(model_name, request_id, [day] if day else None)
    if not found:
        where = f"on {day}" if day else f"on any of the {len(days)} captured day(s)"
        raise LookupError(
            f"no captured prediction of {model_name!r} has request id {request_id!r} {where}: check the id (the "
            "caller's key column value, or the X-Request-Id answer header, '-<row>' for a row of a batch), the day "
            "(UTC), and that capture was on (serving.capture.fraction > 0) and kept (serving.capture.retention_days)"
        )
    hook = MlflowHook(**({"mlflow_conn_id": mlflow_conn_id} if mlflow_conn_id else {}))
    try:
        aliases = hook.aliases_by_version(model_name)
    except Exception:  # noqa: BLE001 - a registry without aliases
        aliases = {}
    versions: dict[str, dict[str, Any]] = {}
    predictions = []
    for row in found:
        version = row["version"]
        if version not in versions:
            versions[version] = _version_lineage(hook, model_name, str(version), aliases)
        predictions.append({**row, **versions[version]})
    return {
        "model_name": model_name,
        "request_id": request_id,
        "days_searched": days if day else days[: days.index(found[0]["day"]) + 1],
        "predictions": predictions,
    }


def _version_lineage(hook: Any, model_name: str, version: str, aliases: dict[str, list[str]]) -> dict[str, Any]:
    """What the registry says about ``version``: its run, training set, code version, Airflow run, and links to the
    plugin's pages (a version gone from the registry: a note, the captured values stand)."""
    from mlops_provider.links.extra_links import dvc_version_url, mlflow_run_url, model_version_url

    try:
        mv = hook.model_version(model_name, version)
    except Exception as exc:  # noqa: BLE001 - deleted from the registry since it answered
        return {"aliases": [], "run_id": None, "training_set": None, "code_version": None, "airflow_run": None,
                "note": f"{model_name} v{version} is not in the registry any more: {exc}"[:300]}  # fmt: skip
    tags = dict(mv.tags or {})
    if mv.run_id:
        try:
            tags = {**dict(hook.get_run(mv.run_id).data.tags), **tags}
        except Exception:  # noqa: BLE001 - the run was deleted: the version's own tags stand
            pass
    training_set = {key: tags.get(tag) for key, tag in TRAINING_SET}
    links = {"model_version": model_version_url(model_name, version)}
    if mv.run_id:
        links["run"] = mlflow_run_url(mv.run_id)
    if training_set["rev"]:
        links["training_set"] = dvc_version_url(str(training_set["rev"]))
    missing = [tag for key, tag in TRAINING_SET[:3] if not training_set[key]]
    return {
        "aliases": aliases.get(version, []),
        "run_id": mv.run_id,
        "training_set": training_set,
        "code_version": tags.get("code.version"),
        "airflow_run": tags.get(RUN_KEY_TAG),
        "trigger_reason": tags.get("trigger.reason"),
        "links": links,
        "note": f"v{version}'s run lacks the lineage tags {missing} (not trained by TrainModelOperator)"
        if missing
        else None,
    }


def run(args: argparse.Namespace) -> int:
    """``mlops lineage``: print the lineage as JSON; exit 1 (the reason on stderr) when the id was not captured."""
    try:
        found = prediction_lineage(args.model, args.request_id, args.day, args.mlflow_conn_id)
    except LookupError as exc:
        print(f"mlops lineage: {exc.args[0]}", file=sys.stderr)
        return 1
    print(json.dumps(found, indent=2, default=str))
    return 0


def add_parser(sub: Any) -> None:
    """The ``lineage`` sub-command."""
    parser = sub.add_parser(
        "lineage", help="from a captured prediction (request id) to its model version, training set, code and run"
    )
    parser.add_argument("model", help="registered model name")
    parser.add_argument("request_id", help="the row's request id: the caller's key column value, or X-Request-Id")
    parser.add_argument("--day", help="the UTC day it was answered, YYYY-MM-DD (default: search newest first)")
    parser.add_argument("--mlflow-conn-id", default=None, help="MLflow connection (default: mlflow_default)")
    parser.set_defaults(func=run)
