"""The provider metadata lists every module, link and the plugin, and Airflow's own schema accepts it."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import pytest
import tomllib
from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink
from airflow.triggers.base import BaseTrigger

import mlops_provider
from mlops_provider.get_provider_info import get_provider_info
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

KINDS = {"operators": BaseOperator, "sensors": BaseOperator, "triggers": BaseTrigger, "hooks": BaseHook}


def listed(info: dict, kind: str) -> set[str]:
    return {module for entry in info.get(kind, []) for module in entry["python-modules"]}


def test_airflow_schema_accepts_the_provider_info() -> None:
    import jsonschema

    airflow_dir = Path(importlib.import_module("airflow").__file__).parent  # type: ignore[arg-type]
    schema = json.loads((airflow_dir / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_module_of_a_kind_is_listed(kind: str) -> None:
    """Every module of the kind's folder that defines a class of the kind is listed (and nothing else): the
    folder's helpers (``hooks.connections``, ``hooks.mixins``, ``triggers.settle``) define none."""
    package = importlib.import_module(f"mlops_provider.{kind}")
    modules = {f"mlops_provider.{kind}.{m.name}" for m in pkgutil.iter_modules(package.__path__)}
    defining = {
        module
        for module in sorted(modules)
        for cls in vars(importlib.import_module(module)).values()
        if inspect.isclass(cls) and issubclass(cls, KINDS[kind]) and cls.__module__ == module
    }
    assert defining, kind
    assert listed(get_provider_info(), kind) == defining


def test_every_extra_link_and_the_plugin_are_listed() -> None:
    import mlops_provider.links.extra_links as links

    info = get_provider_info()
    declared = {
        f"{links.__name__}.{name}"
        for name, cls in vars(links).items()
        if inspect.isclass(cls) and issubclass(cls, BaseOperatorLink) and cls.__module__ == links.__name__
    }
    concrete = {path for path in declared if not path.endswith(".XComUrlLink")}  # the shared base class
    assert set(info["extra-links"]) == concrete
    (notifier,) = info["notifications"]
    module, _, name = notifier.rpartition(".")
    assert getattr(importlib.import_module(module), name).__name__ == name
    (plugin,) = info["plugins"]
    module, _, name = plugin["plugin-class"].rpartition(".")
    assert getattr(importlib.import_module(module), name).name == plugin["name"]


def test_connection_types_have_form_fields_for_what_their_hooks_read() -> None:
    info = get_provider_info()
    for conn in info["connection-types"]:
        module, _, name = conn["hook-class-name"].rpartition(".")
        source = inspect.getsource(importlib.import_module(module))
        for field in conn["conn-fields"]:
            assert f'extra.get("{field}")' in source, (conn["connection-type"], field)


def test_one_version_source() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/mlops_provider/__init__.py"
    assert get_provider_info()["versions"] == [mlops_provider.__version__]
    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    assert f"## {mlops_provider.__version__}" in changelog


def test_how_to_pages_exist() -> None:
    for integration in get_provider_info()["integrations"]:
        for url in integration["how-to-guide"]:
            page = url.lstrip("/")
            assert (PROJECT_ROOT / page).is_file(), (integration["integration-name"], page)
