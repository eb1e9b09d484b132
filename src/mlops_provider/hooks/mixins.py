"""The bases of the provider's operators and sensors: each owns one connection, as Amazon's ``AwsBaseOperator`` +
``AwsBaseHookMixin`` do: the ``*_conn_id`` parameter (keyword-only, with its default), its assignment, its
template field and the hook built from it once per task (``cached_property``). An operator lists the bases of the
connections it uses and declares only what is its own::

    class DriftReportOperator(MlflowHookMixin, DvcHookMixin, BaseOperator):
        template_fields = ("dataset", "model_name", "partition")  # + mlflow_conn_id, dvc_conn_id (the bases')

        def __init__(self, *, dataset: str, **kwargs): ...  # mlflow_conn_id= and dvc_conn_id= reach the bases

The bases are plain classes, not ``BaseOperator`` subclasses: Airflow wraps the ``__init__`` of every
``BaseOperator`` class in the MRO with ``apply_defaults``, and each layer copies ``default_args`` and deep-copies the
DAG's params, which a DAG file pays per task at every parse (issue 31). A base still takes its parameter from the
DAG's (or task group's) ``default_args`` when the task does not give it (a DAG's
``default_args={"mlflow_conn_id": ...}`` reaches every task that uses MLflow): Airflow hands the merged
``default_args`` to the operator's ``__init__``, which passes them on. They combine with any operator class
(``BaseSensorOperator``, ``TriggerDagRunOperator``, ``ApprovalOperator``): list them first, before the operator class.

Imports no heavy library: the hooks import their tools inside their methods.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from mlops_provider.layout import DEFAULT_DOCKER_URL, DVC_DEFAULT_CONN_ID, MLFLOW_DEFAULT_CONN_ID

if TYPE_CHECKING:  # the hook modules load with the first task that uses one, not at DAG parse time
    from mlops_provider.hooks.dvc import DvcHook
    from mlops_provider.hooks.mlflow import MlflowHook


class _Unset:
    """The default of a base's parameter: the DAG's ``default_args`` value when it has one, else the base's default."""

    def __repr__(self) -> str:
        return "<default_args, else the default>"


UNSET: Any = _Unset()


def _param_names(*names: str):  # noqa: ANN202 (a decorator)
    """Declare a base's parameters the way Airflow's ``apply_defaults`` declares a ``BaseOperator``'s, so
    ``partial()``/``expand()`` of an operator accept them."""

    def mark(init: Any) -> Any:
        init._BaseOperatorMeta__param_names = set(names)
        return init

    return mark


class ConnectionBase:
    """Adds the template fields of every connection base a class derives from (``connection_fields``) to the
    ``template_fields`` the class declares, so an operator declares only its own fields.

    A plain class (see the module's note): one ``apply_defaults`` layer fewer per base and task."""

    #: the fields this base owns (templated on every subclass)
    connection_fields: ClassVar[tuple[str, ...]] = ()
    #: the operator's (``BaseOperator.template_fields``)
    template_fields: Collection[str] = ()

    def __init_subclass__(cls, base_only: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in vars(cls) and not base_only and hasattr(type(cls), "_apply_defaults"):
            # An operator class without its own __init__ would take a base's plain one as its own, which Airflow's
            # apply_defaults does not wrap (no default_args, no XComArg dependencies): give it a wrapped one.
            # ``base_only=True``: an abstract base whose subclasses define __init__ (no extra layer for them).
            _pass_through_init(cls)
        declared = tuple(cls.template_fields)
        owned = [field for klass in cls.__mro__ for field in vars(klass).get("connection_fields", ())]
        cls.template_fields = (*declared, *(f for f in dict.fromkeys(owned) if f not in declared))

    @staticmethod
    def _resolved(value: Any, name: str, default: Any, kwargs: dict[str, Any]) -> Any:
        """``value`` as given, else the ``default_args`` Airflow handed to the operator's ``__init__``, else
        ``default``."""
        if value is not UNSET:
            return value
        return (kwargs.get("default_args") or {}).get(name, default)


def _pass_through_init(cls: type[Any]) -> None:
    """Give ``cls`` an ``__init__`` of its own that passes everything on (``BaseOperatorMeta`` wraps it)."""

    def __init__(self: Any, **kwargs: Any) -> None:
        super(cls, self).__init__(**kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = __init__  # type: ignore[misc]


class DvcHookMixin(ConnectionBase):
    """The data registry of ``dvc_conn_id`` (connection type ``dvc``): ``dvc_hook``.

    :param dvc_conn_id: connection of type ``dvc`` (default: the DAG's ``default_args``, else ``dvc_default``: the
        embedded workspace) (templated).
    """

    connection_fields: ClassVar[tuple[str, ...]] = ("dvc_conn_id",)
    template_fields: Collection[str] = connection_fields

    @_param_names("dvc_conn_id")
    def __init__(self, *, dvc_conn_id: str = UNSET, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dvc_conn_id = self._resolved(dvc_conn_id, "dvc_conn_id", DVC_DEFAULT_CONN_ID, kwargs)

    @cached_property
    def dvc_hook(self) -> DvcHook:
        from mlops_provider.hooks.dvc import DvcHook

        return DvcHook(dvc_conn_id=self.dvc_conn_id)


class MlflowHookMixin(ConnectionBase):
    """The tracking server and model registry of ``mlflow_conn_id`` (connection type ``mlflow``): ``mlflow_hook``.

    :param mlflow_conn_id: connection of type ``mlflow`` (default: the DAG's ``default_args``, else
        ``mlflow_default``) (templated).
    """

    connection_fields: ClassVar[tuple[str, ...]] = ("mlflow_conn_id",)
    template_fields: Collection[str] = connection_fields

    @_param_names("mlflow_conn_id")
    def __init__(self, *, mlflow_conn_id: str = UNSET, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = self._resolved(mlflow_conn_id, "mlflow_conn_id", MLFLOW_DEFAULT_CONN_ID, kwargs)

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        from mlops_provider.hooks.mlflow import MlflowHook

        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)


class DockerEngineMixin(ConnectionBase):
    """The Docker engine at ``docker_url`` with the registry login of ``docker_conn_id``
    (:func:`mlops_provider.hooks.docker_engine.docker_client` opens it where a task needs one).

    :param docker_url: Docker engine URL (default: the DAG's ``default_args``, else the local engine's socket)
        (templated).
    :param docker_conn_id: Docker provider connection (registry login, TLS); ``None``: none (default: the DAG's
        ``default_args``, else none) (templated).
    """

    connection_fields: ClassVar[tuple[str, ...]] = ("docker_url", "docker_conn_id")
    template_fields: Collection[str] = connection_fields

    @_param_names("docker_url", "docker_conn_id")
    def __init__(self, *, docker_url: str = UNSET, docker_conn_id: str | None = UNSET, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.docker_url = self._resolved(docker_url, "docker_url", DEFAULT_DOCKER_URL, kwargs)
        self.docker_conn_id = self._resolved(docker_conn_id, "docker_conn_id", None, kwargs)


class UpstreamResultMixin:
    """Hands results between tasks one way: a parameter named in ``upstream_fields`` takes an upstream task's whole
    result (``upstream.output``, an ``XComArg``; a dict once rendered) and reads its field, or a plain value::

        PromoteModelOperator(task_id="promote", version=evaluate.output, expected_champion=evaluate.output, ...)
        # upstream_fields = {"version": "challenger_version", "expected_champion": "champion_version"}

    The field is taken right after the templates are rendered, so ``execute()`` (and the *Rendered Template* view)
    sees the value. A result without the field fails the task naming the parameter and the field: retrying would
    not add it. List it before the operator class: ``class X(UpstreamResultMixin, BaseOperator)``.
    """

    #: parameter -> the field it reads from an upstream result
    upstream_fields: ClassVar[dict[str, str]] = {}

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        for parameter, field in self.upstream_fields.items():
            setattr(self, parameter, upstream_field(getattr(self, parameter), field, parameter))


def upstream_field(value: Any, field: str, parameter: str) -> Any:
    """``value[field]`` when ``value`` is an upstream task's result (a dict), else ``value`` as given."""
    if not isinstance(value, dict):
        return value
    if field not in value:
        from mlops_provider.utils.compat import AirflowFailException

        raise AirflowFailException(
            f"{parameter}: the upstream result has no field {field!r} (it has {sorted(value)}); pass the result of "
            "the task that returns it, or the value itself"
        )
    return value[field]
