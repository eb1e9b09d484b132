"""Re-train a logged MLflow run from its recorded data rev, hyperparameters, code and image; compare metrics."""

from __future__ import annotations

import json
import logging
import math
import uuid
from pathlib import Path
from typing import Any

from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.layout import DATA_MD5_TAG, DATA_PATH_TAG, DATA_REV_TAG
from mlops_provider.ml.split import split_from_tags
from mlops_provider.runtime.runners import DockerRunner, LocalRunner, TrainingRunError, run_training
from mlops_provider.utils.paths import mlops_home, training_work_dir

REQUIRED_TAGS = (
    DATA_REV_TAG, DATA_PATH_TAG, DATA_MD5_TAG, "training.params", "training.schema", "training.runner",
    "training.entrypoint",
)  # fmt: skip
LINEAGE_TAGS = (DATA_REV_TAG, "data.rev_name", DATA_PATH_TAG, DATA_MD5_TAG, "data.registry", "code.version")


def reproduce_run(
    run_id: str,
    *,
    mlflow_conn_id: str = MlflowHook.default_conn_name,
    dvc_conn_id: str = DvcHook.default_conn_name,
    tolerance: float = 1e-9,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Train again exactly as ``run_id`` was trained, into a new run tagged ``mlops.reproduces``.

    Returns ``{"original_run_id", "run_id", "equal", "max_abs_diff", "metrics": [[name, original, new, diff]]}``;
    ``equal`` is true when every metric of the original is within ``tolerance``.
    """
    log = log or logging.getLogger("mlops.reproduce")
    hook = MlflowHook(mlflow_conn_id=mlflow_conn_id)
    original = hook.get_run(run_id)
    tags = original.data.tags
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        raise ValueError(
            f"run {run_id} lacks the lineage tags {', '.join(missing)}: it was not logged by TrainModelOperator"
        )

    work = training_work_dir(f"reproduce-{run_id}")
    work.mkdir(parents=True, exist_ok=True)
    dataset = work / "dataset.parquet"
    fetched = DvcHook(dvc_conn_id=dvc_conn_id).read_to(tags[DATA_PATH_TAG], tags[DATA_REV_TAG], dataset)
    if fetched["md5"] != tags[DATA_MD5_TAG]:
        raise ValueError(f"data at {tags['data.rev']} has md5 {fetched['md5']}, the run recorded {tags['data.md5']}")

    runner: LocalRunner | DockerRunner
    if tags["training.runner"] == "docker":
        runner = DockerRunner(
            image=tags["training.image"],
            mount_root=mlops_home(),
            run_key=f"reproduce/{run_id}/{uuid.uuid4().hex}",
            try_number=1,
            log=log,
        )
        runner.check()
        digest = runner.describe()["image.digest"]
        if tags.get("training.image.digest") and digest != tags["training.image.digest"]:
            raise TrainingRunError(
                f"image {tags['training.image']} is now {digest}, the run used {tags['training.image.digest']}: "
                "rebuild or retag the original image to reproduce"
            )
    else:
        runner = LocalRunner(Path(tags["training.entrypoint"]), log)

    split = split_from_tags(tags)
    if split is None:
        raise ValueError(f"run {run_id} lacks the split tags (split.*): it was not logged by TrainModelOperator")
    new_tags = {k: tags[k] for k in LINEAGE_TAGS if k in tags}
    new_tags.update(
        {"mlops.reproduces": run_id, "trigger.reason": "reproduce", "trigger.detail": json.dumps({"run_id": run_id})}
    )
    new_run_id = hook.create_run(original.info.experiment_id, f"reproduce-{run_id[:8]}", {"mlops.reproduces": run_id})
    result = run_training(
        runner,
        hook,
        dataset=dataset,
        split=split,
        schema=json.loads(tags["training.schema"]),
        mlflow_run_id=new_run_id,
        params=json.loads(tags["training.params"]),
        tags=new_tags,
        work_dir=work,
    )
    rows = []
    for name, before in sorted(original.data.metrics.items()):
        after = result["metrics"].get(name)
        diff = math.inf if after is None else abs(float(after) - float(before))
        rows.append([name, before, after, diff])
    max_diff = max((r[3] for r in rows), default=0.0)
    return {
        "original_run_id": run_id,
        "run_id": new_run_id,
        "equal": max_diff <= tolerance,
        "max_abs_diff": max_diff,
        "metrics": rows,
    }
