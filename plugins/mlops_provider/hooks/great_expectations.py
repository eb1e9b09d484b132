"""Great Expectations 1.x: an ephemeral context with a file Data Docs site, and suite loading from JSON files."""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from airflow.sdk import BaseHook

from mlops_provider.extras import require

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.data_context import AbstractDataContext

DOCS_SITE_NAME = "mlops"


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
        # GX logs ~200 INFO lines when imported after airflow.sdk; they say nothing useful.
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
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

    def validate_dataframe(
        self, frame: pd.DataFrame, suite_path: Path, run_name: str, batch_parameters: dict[str, Any] | None = None
    ) -> tuple[Any, str | None]:
        """Validate ``frame`` against the suite; returns the GX validation result and its Data Docs page path."""
        import great_expectations as gx

        suite_data = self.read_suite_file(suite_path)
        context = self.context
        suite = context.suites.add_or_update(gx.ExpectationSuite(**suite_data))
        batch_definition = (
            context.data_sources.add_or_update_pandas("pandas")
            .add_dataframe_asset(suite.name)
            .add_batch_definition_whole_dataframe("whole")
        )
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{suite.name}-validation", data=batch_definition, suite=suite)
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"{suite.name}-checkpoint",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE_NAME])],
                result_format={"result_format": "SUMMARY"},
            )
        )
        params = dict(batch_parameters or {})
        params["dataframe"] = frame
        checkpoint_result = checkpoint.run(batch_parameters=params, run_id=gx.RunIdentifier(run_name=run_name))
        identifier, result = next(iter(checkpoint_result.run_results.items()))
        docs_page = None
        for site in context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE_NAME):
            url = site.get("site_url") or ""
            if url.startswith("file://"):
                docs_page = unquote(url.removeprefix("file://"))
        return result, docs_page
