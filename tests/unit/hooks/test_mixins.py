"""The bases own their connections: the ``*_conn_id`` parameter, its default, its template field and the hook; an
operator declares only what is its own."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from mlops_provider.hooks import mixins
from mlops_provider.hooks.mixins import ConnectionBase, DockerEngineMixin, DvcHookMixin, MlflowHookMixin

pytestmark = pytest.mark.unit

BASES = (DvcHookMixin, MlflowHookMixin, DockerEngineMixin)


def tasks_with_a_base() -> list[type]:
    found = []
    for folder in ("operators", "sensors"):
        package = importlib.import_module(f"mlops_provider.{folder}")
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            found += [
                cls
                for cls in vars(module).values()
                if inspect.isclass(cls) and cls.__module__ == module.__name__ and issubclass(cls, ConnectionBase)
            ]
    return found


def test_the_operators_and_sensors_that_use_a_connection_derive_from_its_base():
    names = {cls.__name__ for cls in tasks_with_a_base()}
    assert len(names) >= 14, sorted(names)
    assert {"TrainModelOperator", "DvcTagSensor", "ChampionSensor", "ShadowCheckOperator"} <= names


@pytest.mark.parametrize("cls", tasks_with_a_base(), ids=lambda c: c.__name__)
def test_a_task_declares_none_of_its_bases_fields_and_templates_all_of_them(cls):
    owned = [field for base in BASES if issubclass(cls, base) for field in base.connection_fields]
    own = inspect.signature(vars(cls)["__init__"]).parameters if "__init__" in vars(cls) else {}
    assert not set(owned) & set(own), f"{cls.__name__} re-declares {sorted(set(owned) & set(own))}"
    assert set(owned) <= set(cls.template_fields), cls.template_fields
    assert len(set(cls.template_fields)) == len(cls.template_fields), f"{cls.__name__}: a template field twice"


def test_defaults_explicit_values_and_dag_default_args_reach_the_base():
    from airflow.sdk import DAG

    from mlops_provider.sensors.dvc import DvcTagSensor
    from mlops_provider.sensors.mlflow import ChampionSensor

    plain = ChampionSensor(task_id="plain", model_name="m")
    assert plain.mlflow_conn_id == "mlflow_default"
    assert ChampionSensor(task_id="given", model_name="m", mlflow_conn_id="other").mlflow_conn_id == "other"
    with DAG("d", schedule=None, default_args={"mlflow_conn_id": "shared", "dvc_conn_id": "registry"}):
        champion = ChampionSensor(task_id="champion", model_name="m")
        tag = DvcTagSensor(task_id="tag", tag="t")
    assert (champion.mlflow_conn_id, tag.dvc_conn_id) == ("shared", "registry")


def test_the_hook_is_built_once_per_task_from_the_conn_id():
    from mlops_provider.sensors.mlflow import ChampionSensor

    sensor = ChampionSensor(task_id="c", model_name="m", mlflow_conn_id="other")
    assert sensor.mlflow_hook is sensor.mlflow_hook and sensor.mlflow_hook.mlflow_conn_id == "other"


def test_a_base_adds_its_fields_after_the_ones_a_class_declares():
    class Probe(mixins.MlflowHookMixin, mixins.DvcHookMixin):
        template_fields = ("model_name", "dvc_conn_id")

    assert Probe.template_fields == ("model_name", "dvc_conn_id", "mlflow_conn_id")


def test_an_upstream_result_gives_its_field_and_a_plain_value_stays():
    from airflow.sdk.exceptions import AirflowFailException

    from mlops_provider.hooks.mixins import upstream_field

    assert upstream_field({"challenger_version": "3", "ledger_path": "x"}, "challenger_version", "version") == "3"
    assert upstream_field("7", "challenger_version", "version") == "7"
    assert upstream_field(None, "champion_version", "expected_champion") is None
    with pytest.raises(AirflowFailException, match=r"^version: the upstream result has no field 'challenger_v"):
        upstream_field({"decision": "promote"}, "challenger_version", "version")


def test_the_field_is_taken_when_the_templates_render():
    from mlops_provider.operators.promotion import PromoteModelOperator

    promote = PromoteModelOperator(
        task_id="promote",
        model_name="{{ params.model }}",
        version={"challenger_version": "4", "champion_version": None},
        expected_champion={"challenger_version": "4", "champion_version": "2"},
    )
    promote.render_template_fields({"params": {"model": "m"}})
    assert (promote.model_name, promote.version, promote.expected_champion) == ("m", "4", "2")


def test_the_bases_add_no_apply_defaults_layer():
    """Issue 31: Airflow wraps the ``__init__`` of every ``BaseOperator`` class in an operator's MRO with
    ``apply_defaults`` (each layer copies default_args and deep-copies the DAG's params, per task and parse); the
    bases are plain classes, so an operator pays only its own classes' layers."""
    from airflow.sdk import BaseOperator

    assert not any(issubclass(base, BaseOperator) for base in (ConnectionBase, *BASES))
    for cls in tasks_with_a_base():
        layers = [k for k in cls.__mro__ if "__init__" in vars(k) and hasattr(vars(k)["__init__"], "__wrapped__")]
        assert not set(layers) & {ConnectionBase, *BASES}, cls.__name__


def test_default_args_reach_every_base_and_an_explicit_value_wins():
    from airflow.sdk import DAG

    from mlops_provider.operators.serving import ShadowCheckOperator

    shared = {"mlflow_conn_id": "m", "dvc_conn_id": "d", "docker_url": "tcp://engine:2375", "docker_conn_id": "reg"}
    with DAG("d", schedule=None, default_args=shared):
        from_dag = ShadowCheckOperator(task_id="s", package="/p", dataset="y")
        explicit = ShadowCheckOperator(task_id="t", package="/p", dataset="y",
                                       docker_conn_id=None, mlflow_conn_id="own")  # fmt: skip
    assert [getattr(from_dag, f) for f in shared] == list(shared.values())
    assert (explicit.docker_conn_id, explicit.mlflow_conn_id, explicit.dvc_conn_id) == (None, "own", "d")
    plain = ShadowCheckOperator(task_id="p", package="/p", dataset="y")
    assert (plain.docker_conn_id, plain.dvc_conn_id) == (None, "dvc_default")


def test_an_operator_without_its_own_init_still_takes_default_args_and_xcom_dependencies():
    from airflow.sdk import DAG, BaseOperator

    class Probe(MlflowHookMixin, BaseOperator):
        template_fields = ("value",)
        value = None

    with DAG("d", schedule=None, default_args={"mlflow_conn_id": "shared"}):
        upstream = Probe(task_id="up")
        down = Probe(task_id="down")
        down.value = upstream.output
    assert (upstream.mlflow_conn_id, down.upstream_task_ids) == ("shared", {"up"})
