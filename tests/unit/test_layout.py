"""The vocabulary's rules: a gate verdict in model version tags (append-only, the first verdict stays), the runner
chosen by configuration, and the defaults that live here so a DAG parse needs no hook or estimation module."""

from __future__ import annotations

import pytest

from mlops_provider.layout import gate_verdict_tags

pytestmark = pytest.mark.unit


def verdict(decision: str, attempt: str) -> dict[str, str]:
    return {"decision": decision, "reason": f"{decision} because", "ledger": attempt}


def test_the_first_evaluation_is_the_version_verdict():
    assert gate_verdict_tags({"data.rev": "abc"}, verdict("promote", "a-try1")) == {
        "gate.decision": "promote", "gate.reason": "promote because", "gate.ledger": "a-try1",
    }  # fmt: skip


def test_a_later_evaluation_adds_a_numbered_slot_and_changes_no_recorded_tag():
    first = gate_verdict_tags({}, verdict("promote", "a-try1"))
    second = gate_verdict_tags(first, verdict("reject", "b-try1"), first=verdict("promote", "a-try1"))
    assert second == {
        "gate.reevaluation.1.decision": "reject", "gate.reevaluation.1.reason": "reject because",
        "gate.reevaluation.1.ledger": "b-try1", "gate.reevaluations": "1",
    }  # fmt: skip
    third = gate_verdict_tags({**first, **second}, verdict("reject", "c-try1"), first=verdict("promote", "a-try1"))
    assert third["gate.reevaluation.2.ledger"] == "c-try1" and third["gate.reevaluations"] == "2"
    assert not set(third) & set(first) - {"gate.reevaluations"}


def test_the_same_attempt_recording_again_fills_its_own_slot():
    tags = gate_verdict_tags({}, verdict("promote", "a-try1"))
    assert gate_verdict_tags(tags, verdict("promote", "a-try1")) == tags  # the first, again
    tags |= gate_verdict_tags(tags, verdict("reject", "b-try1"), first=verdict("promote", "a-try1"))
    tags |= gate_verdict_tags(tags, verdict("reject", "c-try1"), first=verdict("promote", "a-try1"))
    again = gate_verdict_tags(tags, verdict("reject", "b-try1"), first=verdict("promote", "a-try1"))
    assert again["gate.reevaluation.1.ledger"] == "b-try1" and again["gate.reevaluations"] == "2"


def test_a_first_verdict_missing_from_the_tags_is_taken_from_its_ledger():
    # The first evaluation wrote its ledger and died before its tags: the next one records both.
    tags = gate_verdict_tags({}, verdict("reject", "b-try1"), first=verdict("promote", "a-try1"))
    assert tags["gate.decision"] == "promote" and tags["gate.ledger"] == "a-try1"
    assert tags["gate.reevaluation.1.decision"] == "reject" and tags["gate.reevaluations"] == "1"


def test_the_runner_is_local_unless_configured(monkeypatch):
    from mlops_provider.layout import RUNNERS, default_runner

    monkeypatch.delenv("MLOPS_TRAINING_RUNNER", raising=False)
    assert default_runner() == "local" and RUNNERS == ("local", "docker")
    monkeypatch.setenv("MLOPS_TRAINING_RUNNER", "docker")
    assert default_runner() == "docker"


def test_an_unknown_runner_is_refused_naming_the_variable(monkeypatch):
    from mlops_provider.layout import default_runner

    monkeypatch.setenv("MLOPS_TRAINING_RUNNER", "kubernetes")
    with pytest.raises(ValueError, match="MLOPS_TRAINING_RUNNER='kubernetes' is not one of local, docker"):
        default_runner()


def test_the_operators_default_connections_are_the_hooks_defaults():
    """The defaults live in layout so a DAG parse needs no hook module; the hooks name the same ids."""
    from mlops_provider.hooks.docker_engine import DEFAULT_DOCKER_URL as ENGINE_URL
    from mlops_provider.hooks.dvc import DvcHook
    from mlops_provider.hooks.mlflow import MlflowHook
    from mlops_provider.layout import DEFAULT_DOCKER_URL, DVC_DEFAULT_CONN_ID, MLFLOW_DEFAULT_CONN_ID

    assert (DvcHook.default_conn_name, MlflowHook.default_conn_name) == (DVC_DEFAULT_CONN_ID, MLFLOW_DEFAULT_CONN_ID)
    assert ENGINE_URL == DEFAULT_DOCKER_URL == "unix://var/run/docker.sock"


def test_the_calibrations_the_operator_checks_are_the_estimations():
    from mlops_provider.layout import CALIBRATIONS
    from mlops_provider.ml import estimation

    assert estimation.CALIBRATIONS is CALIBRATIONS and CALIBRATIONS == ("auto", "isotonic", "sigmoid", "none")
