"""One definition per error, one base for all (mlops_provider.exceptions): every error class of the package is
defined in exceptions.py and derives from MlopsError, keeps the built-in base callers caught before, and is still
importable from the module that raises it."""

from __future__ import annotations

import ast
import builtins
import importlib

import pytest

from mlops_provider import exceptions
from mlops_provider.exceptions import MlopsError
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

PACKAGE = PROJECT_ROOT / "src" / "mlops_provider"
#: Errors defined outside exceptions.py, and why: they must also be an Airflow exception.
ELSEWHERE = {"mlops_provider.utils.extras": {"MissingExtraError"}}
#: Where each error was importable from before it moved (and still is), with the built-in base it keeps.
HOMES = {
    "SpecError": ("mlops_provider.loop.spec", ValueError),
    "DvcError": ("mlops_provider.hooks.dvc", RuntimeError),
    "RevisionNotFound": ("mlops_provider.hooks.dvc", RuntimeError),
    "MlflowConnectionError": ("mlops_provider.hooks.mlflow", RuntimeError),
    "DockerEngineError": ("mlops_provider.hooks.docker_engine", RuntimeError),
    "EntrypointContractError": ("mlops_provider.ml.contract", RuntimeError),
    "TrainingRunError": ("mlops_provider.runtime.runners", RuntimeError),
    "TrainingDataError": ("mlops_provider.runtime.runners", RuntimeError),
    "ModelServerError": ("mlops_provider.runtime.model_servers", RuntimeError),
    "StaleProcessError": ("mlops_provider.runtime.processes", RuntimeError),
    "UnreadableFileError": ("mlops_provider.operators.great_expectations", Exception),
    "MailNotSent": ("mlops_provider.notifications.mail", Exception),
    "RecordNotFound": ("mlops_provider.web.records", LookupError),
    "EmbeddedAirflowError": ("mlops_provider.demo.embedded", RuntimeError),
    "RequestError": ("mlops_provider.ml.request_check", ValueError),
    "BackendError": ("mlops_provider.runtime.backend", RuntimeError),
    "DeploymentError": ("mlops_provider.runtime.deployment", RuntimeError),
    "ProxyError": ("mlops_provider.runtime.proxy", RuntimeError),
}


def _error_classes(tree: ast.Module, known: set[str]) -> set[str]:
    """Classes in ``tree`` whose base is a built-in exception, an Airflow exception or an error named in
    ``known``."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = {
                b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in node.bases
            }
            builtin_errors = {b for b in bases if isinstance(getattr(builtins, b, None), type)
                              and issubclass(getattr(builtins, b), BaseException)}  # fmt: skip
            if (
                builtin_errors
                or bases & known
                or any(b.startswith("Airflow") and b.endswith("Exception") for b in bases)
            ):
                found.add(node.name)
    return found


def test_every_error_is_defined_in_exceptions_py():
    known = set(HOMES) | {"MlopsError"}
    defined = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        names = _error_classes(ast.parse(path.read_text()), known)
        if names and module != "mlops_provider.exceptions":
            defined[module] = names
    assert defined == ELSEWHERE


def test_every_error_derives_from_the_base_and_keeps_its_builtin_base():
    errors = {
        name: value
        for name, value in vars(exceptions).items()
        if isinstance(value, type) and issubclass(value, BaseException) and value is not MlopsError
    }
    assert set(errors) == set(HOMES)
    for name, (home, builtin) in HOMES.items():
        error = errors[name]
        assert issubclass(error, MlopsError) and issubclass(error, builtin), name
        assert getattr(importlib.import_module(home), name) is error, f"{home}.{name} is not the one definition"
    from airflow.sdk.exceptions import AirflowFailException

    from mlops_provider.utils.extras import MissingExtraError

    assert issubclass(MissingExtraError, MlopsError) and issubclass(MissingExtraError, AirflowFailException)


def test_errors_with_fields_keep_them():
    contract = exceptions.EntrypointContractError("model_id", "missing")
    assert contract.item == "model_id" and "training entrypoint contract, model_id: missing" in str(contract)
    assert "docs/training-entrypoint.md" in str(contract)
    mail = exceptions.MailNotSent(3, "refused")
    assert (mail.attempts, mail.error, str(mail)) == (3, "refused", "not sent after 3 attempt(s): refused")
    with pytest.raises(MlopsError):
        raise exceptions.RevisionNotFound("no tag x")
