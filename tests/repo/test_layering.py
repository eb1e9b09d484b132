"""The package's floors: a folder imports only folders on a floor below its own, and no module imports itself
back through others (imports inside functions and under ``TYPE_CHECKING`` count: they are dependencies too).

Floors, bottom up (docs/layout.md says what lives in each folder):
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

PACKAGE = PROJECT_ROOT / "src" / "mlops_provider"

#: floor of each folder (and root module); a folder may import from a lower floor only
FLOORS: dict[str, int] = {
    "layout": 0,  # the vocabulary: names, tags, paths in the data registry, record shapes
    "exceptions": 0,
    "ml": 1,  # pure rules (no Airflow)
    "utils": 1,  # records, storage, paths, files, locks, evidence, extras, templated_fields
    "render": 1,  # Jinja2 pages and SVG plots
    "demo": 1,  # the demo's data generators and embedded-Airflow harness
    "hooks": 2,
    "lineage": 2,
    "links": 2,
    "runtime": 3,  # where training and model servers run
    "notifications": 3,
    "triggers": 3,
    "operators": 4,
    "sensors": 4,
    "loop": 5,  # model spec -> DAGs
    "example_dags": 5,
    "web": 6,
    "cli": 6,
    "get_provider_info": 6,
    "__init__": 0,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The ``mlops_provider`` modules ``path`` imports (a name imported from a package counts as its module when
    it is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mlops_provider":
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists():
                    found.add(candidate)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mlops_provider")
    return found - {"mlops_provider"}


def floor_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_folder_and_root_module_has_a_floor():
    assert {floor_of(m) for m in GRAPH} - set(FLOORS) == set()


def test_no_folder_imports_a_folder_on_its_floor_or_above():
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if floor_of(module) != floor_of(target) and FLOORS[floor_of(target)] >= FLOORS[floor_of(module)]
    )
    assert upward == []


def test_no_module_imports_itself_back():
    graph = {m: {t for t in targets if t in GRAPH and t != m} for m, targets in GRAPH.items()}
    circles: list[list[str]] = []
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state[target] == 1:
                circles.append([*path[path.index(target) :], target])
            elif state[target] == 0:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    assert circles == []
