"""Great Expectations 1.x: one ephemeral context per process for validation, a file Data Docs site rendered on
request, and suite loading from JSON files."""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from airflow.sdk import BaseHook

from mlops_provider.utils.extras import require

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd
    from great_expectations.data_context import AbstractDataContext

DOCS_SITE_NAME = "mlops"

#: The process's validation context and its validation definitions by suite text (see
#: :meth:`GreatExpectationsHook.validation_context`).
_SHARED: dict[str, Any] = {}


def _quiet_context(gx: Any) -> AbstractDataContext:
    """A new ephemeral context without progress bars."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


class GreatExpectationsHook(BaseHook):
    """Builds the GX context the validation operator runs in.

    Suites are plain JSON files (``{"name", "expectations": [{"type", "kwargs"}], "meta"}``) kept in the
    repository, so a suite change is reviewed like code. Validation runs in an ephemeral context (nothing is
    written to a GX project); the Data Docs site is a folder.

    :param docs_dir: folder of the Data Docs site (index.html and one page per validation).
    """

    def __init__(self, docs_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        require("gx", user=type(self).__name__)
        self.docs_dir = Path(docs_dir)

    @cached_property
    def context(self) -> AbstractDataContext:
        """A new ephemeral context with the Data Docs site of ``docs_dir`` (renders pages; validation runs in
        :meth:`validation_context`)."""
        # GX logs ~200 INFO lines when imported after airflow.sdk; they say nothing useful.
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx

        context = _quiet_context(gx)
        context.add_data_docs_site(
            site_name=DOCS_SITE_NAME,
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.docs_dir)},
            },
        )
        return context

    @staticmethod
    def validation_context() -> AbstractDataContext:
        """The process's ephemeral context that validations run in: made once per process (a worker that forks
        tasks after preloading keeps paying for it once per task process; ``dag.test()`` and a long-lived process
        once). Its validation definitions are kept by suite text, so a suite file is registered once per process
        (GX compares every expectation of a suite registered again: ~1 s for the demo suite); each result is taken
        out of its store once read, so the process holds none."""
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx

        if "context" not in _SHARED:
            _SHARED.update(context=_quiet_context(gx), definitions={}, names={})
        return _SHARED["context"]

    @staticmethod
    def read_suite_file(suite_path: Path) -> dict[str, Any]:
        """Load a suite JSON file; a clear error names the file when it is missing or malformed."""
        try:
            data = json.loads(Path(suite_path).read_text())
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"expectation suite file {suite_path} does not exist") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"expectation suite file {suite_path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or "name" not in data or not isinstance(data.get("expectations"), list):
            raise ValueError(f"expectation suite file {suite_path} needs a 'name' and an 'expectations' list")
        return data

    def _validation_definition(self, suite_path: Path) -> Any:
        """The suite (from its file) on a whole-dataframe batch definition, registered once per process in
        :meth:`validation_context` (a file whose text changed in the process's life: in a new context)."""
        import hashlib

        import great_expectations as gx

        data = self.read_suite_file(suite_path)
        key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
        self.validation_context()
        if _SHARED["names"].get(data["name"], key) != key:
            _SHARED.clear()  # a suite file changed in this process's life: start over in a new context
        context = self.validation_context()
        definitions: dict[str, Any] = _SHARED["definitions"]
        if key in definitions:
            return definitions[key]
        suite = context.suites.add(gx.ExpectationSuite(**data))
        # One pandas datasource holds every suite's asset: add_or_update would replace it and drop the assets of the
        # suites registered before (their definitions then fail: "Could not find asset").
        datasource = context.data_sources.all().get("pandas") or context.data_sources.add_pandas("pandas")
        batch_definition = datasource.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe("whole")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite.name}-validation", data=batch_definition, suite=suite)
        )
        definitions[key] = definition
        _SHARED["names"][data["name"]] = key
        return definition

    @staticmethod
    def _take_result(run_name: str) -> Any:
        """The identifier of run ``run_name``'s result in the process's store; every result of the run (one a batch)
        leaves the store."""
        store = GreatExpectationsHook.validation_context().validation_results_store
        keys: list[Any] = [key for key in store.list_keys() if key.run_id.run_name == run_name]  # type: ignore[attr-defined]
        for key in keys:
            store.remove_key(key)
        return keys[0]

    def render_docs(self, result: Any, identifier: Any) -> str | None:
        """Render the Data Docs page of ``result`` (with its site index) into ``docs_dir``; its path."""
        self.context.validation_results_store.set(identifier, result)
        self.context.build_data_docs(site_names=[DOCS_SITE_NAME], resource_identifiers=[identifier])
        return self._docs_page(identifier)

    @staticmethod
    def _run_keys(run_name: str) -> set[Any]:
        """Keys of the validation results stored under ``run_name`` in the process's validation context."""
        store = GreatExpectationsHook.validation_context().validation_results_store
        return {key for key in store.list_keys() if key.run_id.run_name == run_name}  # type: ignore[attr-defined]

    @staticmethod
    def _release_batch_data(definition: Any) -> None:
        """Drop the references of ``definition``'s pandas execution engine to the last validated frame (GX keeps
        the loaded batch and its data in the engine's batch cache until the next batch replaces them)."""
        engine = definition.batch_definition.data_asset.datasource.get_execution_engine()
        engine.batch_manager.batch_data_cache.clear()
        engine.batch_manager.reset_batch_cache()

    def _docs_page(self, identifier: Any) -> str | None:
        for site in self.context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE_NAME):
            url = site.get("site_url") or ""
            if url.startswith("file://"):
                return unquote(url.removeprefix("file://"))
        return None

    def validate_dataframe(
        self,
        frame: pd.DataFrame,
        suite_path: Path,
        run_name: str,
        batch_parameters: dict[str, Any] | None = None,
        *,
        data_docs: bool = True,
    ) -> tuple[Any, Any]:
        """Validate ``frame`` against the suite; returns the GX validation result and its Data Docs page path
        (``data_docs``), or its result identifier (not ``data_docs``: :meth:`render_docs` renders the page
        later, e.g. only for a failed validation)."""
        import great_expectations as gx

        definition = self._validation_definition(suite_path)
        params = dict(batch_parameters or {})
        params["dataframe"] = frame
        result = definition.run(
            batch_parameters=params,
            result_format={"result_format": "SUMMARY"},
            run_id=gx.RunIdentifier(run_name=run_name),
        )
        identifier = self._take_result(run_name)
        return result, (self.render_docs(result, identifier) if data_docs else identifier)

    def dry_run(self, frames: dict[str, pd.DataFrame], suite_path: Path) -> dict[str, Any]:
        """Validate each frame (name -> DataFrame) against the suite, writing no Data Docs: name -> GX validation
        result (``mlops new-model``'s per-day dry run of the suite it wrote)."""
        logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
        import uuid

        import great_expectations as gx

        definition = self._validation_definition(suite_path)
        results = {}
        for name, frame in frames.items():
            run_name = f"dry-run-{uuid.uuid4().hex}"
            results[name] = definition.run(batch_parameters={"dataframe": frame}, result_format="BOOLEAN_ONLY",
                                           run_id=gx.RunIdentifier(run_name=run_name))  # fmt: skip
            self._take_result(run_name)  # the process's store keeps no result
        return results

    def validate_batches(
        self,
        batches: Iterable[pd.DataFrame],
        suite_path: Path,
        run_name: str,
        batch_parameters: dict[str, Any] | None = None,
        *,
        data_docs: bool = True,
        rows: int | None = None,
    ) -> tuple[Any, Any]:
        """Validate a partition given as successive batches (DataFrames of the same columns and dtypes) in memory
        of one batch; the result is the whole partition's (see :mod:`mlops_provider.ml.validation_batches`), with
        its Data Docs page. Returns what :meth:`validate_dataframe` returns. ``rows``, the partition's row count
        when known, sizes the uniqueness keys' arrays once (the merge then sorts them without a copy).

        Raises ``ValueError`` naming the expectation types of the suite that have no exact merge across batches:
        validate such a suite with :meth:`validate_dataframe`."""
        import great_expectations as gx

        from mlops_provider.ml.validation_batches import BatchMerger, unmergeable
        from mlops_provider.utils.paths import work_dir

        suite_data = self.read_suite_file(suite_path)
        unsupported = unmergeable(suite_data["expectations"])
        if unsupported:
            names = ", ".join(unsupported)
            raise ValueError(f"expectation suite {suite_path}: {names} cannot be merged exactly across batches")
        definition = self._validation_definition(suite_path)
        run_id = gx.RunIdentifier(run_name=run_name)
        store = self.validation_context().validation_results_store  # where definition.run() stores its results
        # A large partition's uniqueness keys spill to bucket files on this worker's disk, removed at the merge
        # (or here, when a batch fails).
        merger, first, kept = BatchMerger(rows=rows, spill_dir=work_dir("validation")), None, set()
        try:
            for frame in batches:
                params = {**(batch_parameters or {}), "dataframe": frame}
                result = definition.run(batch_parameters=params, result_format={"result_format": "SUMMARY"},
                                        run_id=run_id)  # fmt: skip
                merger.add(result.to_json_dict()["results"], frame)
                if first is None:
                    first, kept = result, set(self._run_keys(run_name))
                # Memory stays that of one batch: the store keeps the first batch's result only (the merged one
                # replaces it below) and GX lets go of this frame before the next one is read.
                for key in self._run_keys(run_name) - kept:
                    store.remove_key(key)
                self._release_batch_data(definition)
                del frame, params, result
            if first is None:
                raise ValueError("validate_batches needs at least one batch (an empty partition is one empty frame)")
            merged_results = merger.merged()
        finally:
            merger.close()
        for item, merged in zip(first.results, merged_results, strict=True):
            item.success, item.result = merged["success"], merged["result"]
            if merged["exception_info"]:
                item.exception_info = merged["exception_info"]
        evaluated = len(first.results)
        successful = sum(1 for item in first.results if item.success)
        first.success = successful == evaluated
        first.statistics.update(
            evaluated_expectations=evaluated,
            successful_expectations=successful,
            unsuccessful_expectations=evaluated - successful,
            success_percent=100.0 * successful / evaluated if evaluated else None,
        )
        first.meta["batches"] = merger.batches
        # The results store kept the last batch's result under this run's identifier: the merged one is the page.
        identifier = self._take_result(run_name)
        return first, (self.render_docs(first, identifier) if data_docs else identifier)
