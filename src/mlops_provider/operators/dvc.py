"""Operators that version files in the DVC data registry and read them back at a revision."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator

from mlops_provider.hooks.mixins import DvcHookMixin, UpstreamResultMixin
from mlops_provider.layout import run_metadata
from mlops_provider.lineage.mixin import OpenLineageMixin
from mlops_provider.links.extra_links import DvcVersionLink, dvc_version_url

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context, XComArg

    from mlops_provider.lineage.datasets import Lineage


class DvcVersionOperator(UpstreamResultMixin, OpenLineageMixin, DvcHookMixin, BaseOperator):
    """Add, push and commit a file to the DVC data registry, and tag that version.

    Re-running with identical content is a no-op (no commit, no push, the tag stays); changed content makes
    exactly one new version and moves the tag. The commit message carries the Airflow run as git trailers
    (``Airflow-Dag-Id``, ``Airflow-Run-Id``, ``Airflow-Logical-Date``, ``Airflow-Try-Number``). Use a pool of
    one slot (the project's ``dvc_workspace`` pool) when many runs write one workspace; the hook also takes a
    file lock.

    :param source_path: file to version: a local path or an object-storage URL (``mlops_provider.utils.storage``;
        downloaded to this worker's disk first); or the extract's result (its ``path``) (templated).
    :param target_path: path of the file inside the data registry, e.g. ``data/sales/2026-01-01.parquet``
        (templated).
    :param tag: git tag of this version, e.g. ``partition/sales/2026-01-01`` (templated).
    :param asset: Asset to emit an event of (added to ``outlets``), with ``extra = {"partition", "tag", "rev", "md5",
        "path"}``: a dataset's partition Asset (the factory's shared ingest announces each day on it, for lineage).
    :param partition: the day the version holds (templated), the event's ``partition``; needed with ``asset``.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``dvc_conn_id``.

    XCom (return value): ``{"path", "rev", "tag", "md5", "size", "remote", "workspace", "created"}``.
    """

    upstream_fields = {"source_path": "path"}  # the extract's result
    template_fields: Sequence[str] = ("source_path", "target_path", "tag", "partition")
    operator_extra_links = (DvcVersionLink(),)
    ui_color = "#f3e8fd"

    def __init__(
        self,
        *,
        source_path: str | XComArg,
        target_path: str,
        tag: str,
        asset: Asset | None = None,
        partition: str | None = None,
        **kwargs: Any,
    ) -> None:
        if asset is not None:
            if partition is None:
                raise ValueError("DvcVersionOperator: an asset event needs the partition it announces (partition=)")
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), asset]
        super().__init__(**kwargs)
        self.source_path = cast("str", source_path)  # an upstream result is picked when rendered
        self.target_path = target_path
        self.tag = tag
        self.asset = asset
        self.partition = partition

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.utils.storage import local_copy, stored

        with local_copy(stored(self.source_path)) as source:
            result = self.dvc_hook.version_file(source, self.target_path, self.tag, metadata=run_metadata(context))
        DvcVersionLink.persist(context, dvc_version_url(result["rev"]))
        state = "new version" if result["created"] else "unchanged"
        self.log.info("%s: %s at %s (%s, md5 %s)", self.target_path, state, self.tag, result["rev"][:10], result["md5"])
        if self.asset is not None:  # also on an unchanged re-run: the consumers' assembly of the day is a no-op then
            context["outlet_events"][self.asset].extra = {
                "partition": self.partition, "tag": self.tag, "rev": result["rev"], "md5": result["md5"],
                "path": result["path"],
            }  # fmt: skip
        return self.record_lineage(result, registry=self.dvc_hook.registry)

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the source file. Wrote: the versioned file in the registry (rev, tag, md5)."""
        from mlops_provider.lineage.datasets import Lineage, dvc_file, stored_file

        return Lineage(
            inputs=[stored_file(str(self.source_path), md5=result["md5"])],
            outputs=[
                dvc_file(result["registry"], result["path"], rev=result["rev"], tag=result["tag"], md5=result["md5"])
            ],
        )


class DvcGetOperator(DvcHookMixin, BaseOperator):
    """Write a versioned file of the data registry at a revision (tag, branch or sha) to a local path.

    The bytes are checked against the md5 recorded in the ``.dvc`` file at that revision.

    :param path: path of the file inside the data registry (templated).
    :param rev: tag, branch or commit (templated).
    :param output_path: where to write it (templated).

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``dvc_conn_id``.

    XCom (return value): ``{"path", "rev", "md5", "size", "output_path"}``.
    """

    template_fields: Sequence[str] = ("path", "rev", "output_path")

    def __init__(
        self,
        *,
        path: str,
        rev: str,
        output_path: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.rev = rev
        self.output_path = output_path

    def execute(self, context: Context) -> dict[str, Any]:
        result = self.dvc_hook.read_to(self.path, self.rev, Path(self.output_path))
        result["output_path"] = str(self.output_path)
        return result
