"""The provider's errors, on the ground floor: one definition each, all derived from :class:`MlopsError`.

``except MlopsError`` catches every failure the provider raises on purpose. Each error also keeps the built-in
base it always had (``ValueError``, ``RuntimeError``, ``LookupError``), so code that caught that still does. The
modules that raise an error import it from here, and it stays importable from them under the same name
(``from mlops_provider.loop.spec import SpecError`` works as before).

One error lives elsewhere because it must also be an Airflow exception: :class:`mlops_provider.utils.extras.
MissingExtraError` (an ``AirflowFailException``: a missing extra is not fixed by a retry) derives from
:class:`MlopsError` too. This module imports nothing, so the pure rules (``ml/``) may raise these errors without
importing Airflow.
"""

from __future__ import annotations

#: Where the training entrypoint's contract is written down (named by :class:`EntrypointContractError`).
ENTRYPOINT_CONTRACT_DOC = "docs/training-entrypoint.md"


class MlopsError(Exception):
    """Base of every error the provider raises on purpose."""


# -- the model spec (loop/spec) -------------------------------------------------------------------------------------


class SpecError(MlopsError, ValueError):
    """A spec that cannot be used: names the file, the key and what is allowed."""


# -- the data registry, the model registry, the Docker engine (hooks/) ---------------------------------------------


class DvcError(MlopsError, RuntimeError):
    """A DVC or git operation on the data registry failed; the message says which and in which workspace."""


class RevisionNotFound(DvcError):
    """The revision (tag, branch or sha) does not exist in the data registry, or is not a revision at all."""


class MlflowConnectionError(MlopsError, RuntimeError):
    """The tracking server did not answer; the message names the endpoint."""


class DockerEngineError(MlopsError, RuntimeError):
    """No Docker engine answers at the configured URL (or the connection's registry login failed)."""


# -- training and serving (ml/contract, runtime/) ------------------------------------------------------------------


class EntrypointContractError(MlopsError, RuntimeError):
    """The entrypoint ran but broke the contract; ``item`` names what (``result file``, ``model_id``, ...)."""

    def __init__(self, item: str, detail: str) -> None:
        self.item = item
        super().__init__(f"training entrypoint contract, {item}: {detail} (see {ENTRYPOINT_CONTRACT_DOC})")


class TrainingRunError(MlopsError, RuntimeError):
    """The entrypoint failed; the message carries the tail of its output."""


class TrainingDataError(TrainingRunError):
    """The training set cannot be split as the spec asks (too few days for the out-of-time holdout, unreadable
    timestamps): the same data fails the same way again, so a retry does not help."""


class ModelServerError(MlopsError, RuntimeError):
    """The server did not start or answered with an error; the message carries its output."""


class StaleProcessError(MlopsError, RuntimeError):
    """A process an earlier try left running did not stop."""


# -- validation, mail, the plugin's pages, the demo ----------------------------------------------------------------


class UnreadableFileError(MlopsError):
    """The partition file cannot be read (truncated, corrupt, not parquet)."""


class MailNotSent(MlopsError):
    """Every attempt failed; ``error`` is the last one."""

    def __init__(self, attempts: int, error: str) -> None:
        super().__init__(f"not sent after {attempts} attempt(s): {error}")
        self.attempts = attempts
        self.error = error


class RecordNotFound(MlopsError, LookupError):
    """The run, version or revision does not exist (the route answers 404 with this message)."""


class EmbeddedAirflowError(MlopsError, RuntimeError):
    """Raised when the embedded Airflow does not start or answers with an error."""


# -- live serving (ml/request_check, runtime/backend, proxy, deployment) ---------------------------------------------


class RequestError(MlopsError, ValueError):
    """A request that does not fit the signature; ``column`` names the column (None: the request's shape)."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class BackendError(MlopsError, RuntimeError):
    """A backend did not start, died, or its port is taken; the message carries its log's tail."""


class DeploymentError(MlopsError, RuntimeError):
    """The endpoint cannot be brought to its recorded state (port taken, another host, unknown version)."""


class ProxyError(MlopsError, RuntimeError):
    """The proxy did not start, refused a configuration, or its port is taken."""
