"""TrainingSetAssemblyOperator: newest validated partitions only, versioned, announced as an Asset event."""

from __future__ import annotations

import io
import subprocess

import dvc.api
import pandas as pd
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.operators.training_set import (
    TrainingSetAssemblyOperator,
    partition_path,
    partition_tag,
    training_set_tag,
)
from tests.helpers import task_context

pytestmark = pytest.mark.integration

DATASET = "sales"
ASSET = Asset(name="sales_training_set", uri="mlops://training-set/sales")


def version_partitions(tmp_path, days: list[str]) -> None:
    hook = DvcHook()
    for day in days:
        source = tmp_path / f"{day}.parquet"
        pd.DataFrame({"day": [day] * 3, "value": [1, 2, 3]}).to_parquet(source, index=False)
        hook.version_file(source, partition_path(DATASET, day), partition_tag(DATASET, day), {})


def assemble(day: str, **kwargs) -> tuple[dict, dict]:
    op = TrainingSetAssemblyOperator(task_id="assemble", dataset=DATASET, partition=day, asset=ASSET, **kwargs)
    context = task_context(None)
    return op.execute(context), context


def test_window_of_validated_partitions_versioned_with_asset_event(mlops_home, tmp_path):
    # 2026-11-04 was quarantined: it has no tag and must not be used.
    version_partitions(tmp_path, ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-05", "2026-11-06"])
    result, context = assemble("2026-11-05", window=3)
    assert result["partitions"] == ["2026-11-02", "2026-11-03", "2026-11-05"]
    assert result["rows"] == 9 and result["created"] is True
    assert context["outlet_events"][ASSET].extra == {k: v for k, v in result.items() if k != "created"}
    workspace = mlops_home / "data-registry"
    data = dvc.api.read(result["path"], repo=str(workspace), rev=training_set_tag(DATASET, "2026-11-05"), mode="rb")
    frame = pd.read_parquet(io.BytesIO(data))
    assert frame["day"].drop_duplicates().tolist() == result["partitions"]
    message = subprocess.run(
        ["git", "log", "-1", "--format=%B", result["tag"]], cwd=workspace, capture_output=True, text=True
    ).stdout
    assert "Training-Set-Partitions: 2026-11-02,2026-11-03,2026-11-05" in message

    again, _ = assemble("2026-11-05", window=3)
    assert again["created"] is False and again["rev"] == result["rev"]


def test_unvalidated_partition_and_too_few_partitions(mlops_home, tmp_path):
    version_partitions(tmp_path, ["2026-11-01"])
    with pytest.raises(AirflowFailException, match="2026-11-04 of 'sales' is not versioned"):
        assemble("2026-11-04")
    with pytest.raises(AirflowFailException, match="Only 1 validated partition"):
        assemble("2026-11-01", window=5, min_partitions=2)
    with pytest.raises(ValueError, match="min_partitions"):
        TrainingSetAssemblyOperator(task_id="x", dataset=DATASET, window=2, min_partitions=3)
