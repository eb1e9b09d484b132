"""The operator tables of docs/operators.md list every parameter that has no default (what a DAG author must
give), and only parameters the class has."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

ROW = re.compile(r"^\| `(mlops_provider\.[\w.]+)` \| (.*)$", re.M)


def rows() -> list[tuple[str, list[str]]]:
    text = (PROJECT_ROOT / "docs" / "operators.md").read_text()
    return [(m.group(1), m.group(2).split(" | ")) for m in ROW.finditer(text)]


def parameters(path: str) -> tuple[list[str], list[str]]:
    """The class's keyword parameters: its own ``__init__``'s, then those of the provider's bases it derives from
    (``mlops_provider.hooks.mixins`` owns the ``*_conn_id`` parameters), in that order."""
    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    keyword: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass.__module__.startswith("mlops_provider.") and "__init__" in vars(klass):
            for p in inspect.signature(vars(klass)["__init__"]).parameters.values():
                if p.kind == p.KEYWORD_ONLY:
                    keyword.setdefault(p.name, p)
    values = list(keyword.values())
    return [p.name for p in values if p.default is p.empty], [p.name for p in values if p.default is not p.empty]


def test_the_tables_cover_every_operator_and_sensor():
    listed = {path.rsplit(".", 1)[1] for path, _ in rows()}
    assert len(listed) >= 19, sorted(listed)


@pytest.mark.parametrize(("path", "cells"), rows(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_row_lists_exactly_the_required_parameters_and_real_optional_ones(path, cells):
    required, optional = parameters(path)
    assert re.findall(r"`(\w+)`", cells[1]) == required, f"{path}: the required column must be {required}"
    named = re.findall(r"`(\w+)`", cells[2])
    assert set(named) <= set(optional), f"{path}: {sorted(set(named) - set(optional))} are not optional parameters"
