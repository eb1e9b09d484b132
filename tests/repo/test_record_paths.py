"""One address for every record: only ``utils/records.py`` spells a folder of the storage root (``reports/``,
its kinds, ``staging/``, ``quarantine/``, ``notifications/``) and only ``utils/paths.py`` builds a folder of
``MLOPS_HOME``. Every other module asks them (a function or the ``FOLDERS`` tables), so the layout changes in
one place and no two modules can disagree on where a record lives.

A "path literal" is a folder name written where a path is built: an operand of ``/``, an argument of
``joinpath``, a string or f-string that starts with a storage-root folder and a slash (``"reports/drift"``,
``f"quarantine/{dataset}"``), a tuple of path parts that starts with ``"reports"`` or a record folder
(``("reports", "drift", model)``), any literal joined onto ``storage_root()``, ``reports_root()`` or
``mlops_home()``, and a coined folder name (``"alarm-reviews"``, ``"drift-thresholds"``, ``"data-docs"``)
anywhere. Docstrings, messages (text with spaces) and the same word used as a value (an event named ``"drift"``)
are not paths.
"""

from __future__ import annotations

import ast

import pytest

from mlops_provider.utils import paths, records
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

PACKAGE = PROJECT_ROOT / "src" / "mlops_provider"
OWNERS = {PACKAGE / "utils" / "records.py", PACKAGE / "utils" / "paths.py"}
#: Names of folders under the storage root (each segment of records.FOLDERS, and the folders inside records).
STORAGE_NAMES = records.folder_names()
#: The folders at the top of the storage root: a string that starts with one and a slash is a path under it.
TOP = frozenset(rel for rel in records.FOLDERS.values() if "/" not in rel)
#: Folder names that are no word of anything else ("alarm-reviews", "drift-thresholds", "data-docs"): spelled
#: anywhere, they name the folder.
COINED = frozenset(name for name in STORAGE_NAMES if "-" in name)
#: Functions that return a root: any literal joined onto one names a folder under it.
ROOTS = frozenset({"storage_root", "reports_root", "mlops_home"})


def _called_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return None


def _leftmost(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        node = node.left
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "joinpath":
        node = _leftmost(node.func.value)
    return node


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _names_a_folder(text: str) -> bool:
    return bool(set(text.strip("/").split("/")) & STORAGE_NAMES) and " " not in text


def _starts_under_top(text: str) -> bool:
    return " " not in text and "/" in text and text.split("/", 1)[0] in TOP


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and _text(first.value) is not None:
                found.add(id(first.value))
    return found


def spelled_folders(source: str) -> list[str]:
    """Every place in ``source`` that spells a record folder as a path literal: ``"line: what"``."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        parts: list[ast.AST] = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            parts = [node.left, node.right]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "joinpath":
            parts = list(node.args)
        if parts:
            rooted = _called_name(_leftmost(node)) in ROOTS
            for part in parts:
                text = _text(part)
                if text is not None and (rooted or _names_a_folder(text)):
                    flag(part, f"{text!r} joined into a path")
                elif rooted and isinstance(part, ast.JoinedStr):
                    flag(part, "an f-string joined onto a root")
        elif isinstance(node, ast.Constant) and id(node) not in docstrings:
            text = _text(node)
            if text is not None and _starts_under_top(text):
                flag(node, f"{text!r} is a path under the storage root")
            elif text in COINED:
                flag(node, f"{text!r} is a record folder's name")
        elif isinstance(node, ast.JoinedStr) and node.values:
            text = _text(node.values[0])
            if text is not None and _starts_under_top(text):
                flag(node, f"f{text!r}... is a path under the storage root")
        elif isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) >= 2:
            head, second = _text(node.elts[0]), node.elts[1]
            nested = f"{head}/{_text(second)}" in records.FOLDERS.values()
            if head in TOP and (nested or head == records.REPORTS and not isinstance(second, ast.Constant)):
                flag(node, f"path parts starting with {head!r}")
    # A JoinedStr's literal parts are Constants too: flag each place once.
    return sorted(set(found), key=lambda f: (int(f.split(":")[0]) if f[0].isdigit() else 0, f))


def test_only_the_owners_spell_a_record_folder():
    spelled = {
        str(path.relative_to(PACKAGE)): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in OWNERS and (hits := spelled_folders(path.read_text()))
    }
    assert spelled == {}, "ask mlops_provider.utils.records (or utils.paths for MLOPS_HOME) instead"


@pytest.mark.parametrize(
    "source",
    [
        'reports_root() / "performance" / model / day',
        'storage_root() / "quarantine" / dataset',
        'mlops_home() / "serving" / name',
        'mlops_home() / f"cache-{name}"',
        'base / "alarm-reviews" / model',
        'root.joinpath("ledgers", model)',
        'for sub in (f"reports/drift/{model}", f"quarantine/{dataset}"): pass',
        'FOLDER = "reports/retention"',
        'drift = ("reports", "drift", model_name)',
        'paths = [f"quarantine/{name}/{day}"]',
        'listing = ("reports", kind, model)',
        'LEARNED_THRESHOLDS = "drift-thresholds"',
    ],
)
def test_the_guard_finds_a_folder_spelled_as_a_path(source):
    assert spelled_folders(source), source


@pytest.mark.parametrize(
    "source",
    [
        '"""Summaries under ``reports/drift/<model>/<day>/``."""',
        'NOTIFICATION_EVENTS = ("quarantine", "drift", "retraining")',
        'hook.log_artifact(run_id, html, "drift")',
        'reason = "drift" if drifted else "performance"',
        'log.info("wrote reports/drift/x as asked")',
        'folder / "serving"',  # a project folder the scaffold writes, not MLOPS_HOME
        'work_dir("drift")',
        'target_dir / "validation_result.json"',
        'key = ("quarantine", rel)',  # an artefact kind, not a path
    ],
)
def test_the_guard_leaves_values_messages_and_docstrings_alone(source):
    assert spelled_folders(source) == [], source


def test_the_storage_root_and_mlops_home_tables_share_no_name():
    """On the local disk the storage root is ``MLOPS_HOME``: a folder name in both tables would mix records with
    the worker's own files."""
    assert {rel.split("/")[0] for rel in records.FOLDERS.values()} & set(paths.FOLDERS.values()) == set()
