"""Assemble a training set from the newest versioned partitions, version it, and announce it as an Asset event."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.links import DvcVersionLink, dvc_version_url
from mlops_provider.operators.dvc import run_metadata
from mlops_provider.templates import INTERVAL_DATE

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


def partition_tag(dataset: str, partition: str) -> str:
    """Git tag of a validated, versioned partition."""
    return f"partition/{dataset}/{partition}"


def partition_path(dataset: str, partition: str) -> str:
    """Path of a partition inside the data registry."""
    return f"data/{dataset}/partitions/{partition}.parquet"


def training_set_tag(dataset: str, partition: str) -> str:
    """Git tag of the training set assembled for a partition date."""
    return f"training-set/{dataset}/{partition}"


def training_set_path(dataset: str) -> str:
    """Path of the training set inside the data registry (one path, one version per assembly)."""
    return f"data/{dataset}/training_set.parquet"


class TrainingSetAssemblyOperator(BaseOperator):
    """Concatenate the last ``window`` versioned partitions up to ``partition`` into one training set.

    Only partitions that passed validation have a ``partition/<dataset>/<date>`` tag, so quarantined days
    are never used. Each partition is read at its tag (the exact versioned bytes, md5-checked), the result is
    versioned under ``training-set/<dataset>/<partition>``, and an event of ``asset`` is emitted with
    ``extra = {"rev", "md5", "rows", "partitions", "tag", "path"}``; the training DAG schedules on it.

    :param dataset: dataset name (templated).
    :param partition: the newest partition to include (templated; default: the date of ``data_interval_start``).
    :param window: how many partitions at most (the newest ones up to ``partition``).
    :param min_partitions: fail when fewer validated partitions exist.
    :param asset: Asset to emit an event of (added to ``outlets``).
    :param dvc_conn_id: connection of type ``dvc``.

    XCom (return value): the same dict as the Asset event's ``extra`` plus ``created``.
    """

    template_fields: Sequence[str] = ("dataset", "partition")
    operator_extra_links = (DvcVersionLink(),)
    ui_color = "#e8fde9"

    def __init__(
        self,
        *,
        dataset: str,
        partition: str = INTERVAL_DATE,
        window: int = 7,
        min_partitions: int = 1,
        asset: Asset | None = None,
        dvc_conn_id: str = DvcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        if asset is not None:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), asset]
        super().__init__(**kwargs)
        if window < 1 or min_partitions < 1 or min_partitions > window:
            raise ValueError(
                f"need 1 <= min_partitions <= window, got min_partitions={min_partitions}, window={window}"
            )
        self.dataset = dataset
        self.partition = partition
        self.window = window
        self.min_partitions = min_partitions
        self.asset = asset
        self.dvc_conn_id = dvc_conn_id

    @cached_property
    def hook(self) -> DvcHook:
        return DvcHook(dvc_conn_id=self.dvc_conn_id)

    def select_partitions(self) -> list[str]:
        """Dates of the newest ``window`` validated partitions up to and including ``partition``."""
        prefix = partition_tag(self.dataset, "")
        dates = [tag.removeprefix(prefix) for tag in self.hook.tags(prefix + "*")]
        eligible = sorted(d for d in dates if d <= str(self.partition))
        if str(self.partition) not in eligible:
            raise AirflowFailException(
                f"Partition {self.partition} of {self.dataset!r} is not versioned (no tag "
                f"{partition_tag(self.dataset, str(self.partition))}): it failed validation or was not ingested. "
                "The training set is only built from validated partitions."
            )
        chosen = eligible[-self.window :]
        if len(chosen) < self.min_partitions:
            raise AirflowFailException(
                f"Only {len(chosen)} validated partition(s) of {self.dataset!r} up to {self.partition}; "
                f"min_partitions is {self.min_partitions}. Backfill earlier days first."
            )
        return chosen

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        self.hook.ensure_workspace()
        chosen = self.select_partitions()
        self.log.info("Assembling %s from %d partition(s): %s", self.dataset, len(chosen), ", ".join(chosen))
        with tempfile.TemporaryDirectory(prefix="training-set-") as tmp_dir:
            frames = []
            for day in chosen:
                local = Path(tmp_dir) / f"{day}.parquet"
                self.hook.read_to(partition_path(self.dataset, day), partition_tag(self.dataset, day), local)
                frames.append(pd.read_parquet(local))
            training_set = pd.concat(frames, ignore_index=True)
            out = Path(tmp_dir) / "training_set.parquet"
            training_set.to_parquet(out, index=False)
            version = self.hook.version_file(
                out,
                training_set_path(self.dataset),
                training_set_tag(self.dataset, str(self.partition)),
                metadata={**run_metadata(context), "Training-Set-Partitions": ",".join(chosen)},
            )
        extra = {
            "dataset": self.dataset,
            "rev": version["rev"],
            "md5": version["md5"],
            "rows": len(training_set),
            "partitions": chosen,
            "tag": version["tag"],
            "path": version["path"],
        }
        DvcVersionLink.persist(context, dvc_version_url(version["rev"]))
        if self.asset is not None:
            context["outlet_events"][self.asset].extra = extra
        return {**extra, "created": version["created"]}
