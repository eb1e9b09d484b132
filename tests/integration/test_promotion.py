"""Promotion with a real MLflow registry and real models: the gate's decisions and ledgers, compare-and-set
promotion (also under a race), idempotent re-runs, and rollback."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops_provider.demo.churn_source import SourceSpec, generate_day
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.operators.promotion import (
    EvaluateModelOperator,
    ModelGateOperator,
    PromoteModelOperator,
    RollbackModelOperator,
)
from tests.helpers import PROJECT_ROOT, task_context
from tests.integration.models import BEHAVIOUR, SPEC, copy_version

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(trained, monkeypatch, request):
    """A fresh registered model (named after the test) whose versions come from the trained runs."""
    monkeypatch.setenv("MLOPS_HOME", str(trained["home"]))
    hook = MlflowHook()
    name = "m_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:60]

    def register(key: str) -> str:
        return copy_version(hook, "pool", trained["runs"][key]["version"], name)

    return name, register, hook


def rules_file(tmp_path: Path, name: str, **overrides) -> str:
    """The churn spec's gate rules with ``overrides``, as a JSON file (the operator also takes the dict itself)."""
    rules = SPEC.gate.rules(SPEC.segments[0])
    path = tmp_path / f"{name}.gate.json"
    path.write_text(json.dumps({**rules, **overrides}))
    return str(path)


def evaluate(name: str, version: str, rules: str, tests: str = str(BEHAVIOUR)) -> dict:
    return EvaluateModelOperator(
        task_id="evaluate",
        model_name=name,
        challenger_version=version,
        gate_rules=rules,
        behaviour_tests=tests,
        label_column=SPEC.label.column,
    ).execute(task_context(None, dag_id="promotion", run_id="r", task_id="evaluate"))


def promote(name: str, verdict: dict) -> dict:
    return PromoteModelOperator(
        task_id="promote",
        model_name=name,
        version=verdict["challenger_version"],
        expected_champion=verdict["champion_version"],
    ).execute(task_context(None, dag_id="promotion", run_id="r", task_id="promote"))


def ledger(verdict: dict) -> dict:
    return json.loads(Path(verdict["ledger_path"]).read_text())


def failed(verdict: dict) -> list[str]:
    return [c["check"] for c in ledger(verdict)["checks"] if not c["passed"]]


def test_first_model_then_a_better_challenger_is_promoted(registry, tmp_path):
    name, register, hook = registry
    # The weak model fails the shipped behaviour tests (checked below); this model's rules do not require them.
    rules = rules_file(tmp_path, name, floors={"roc_auc": 0.5}, require_behaviour_tests=False)
    weak = register("weak")
    first = evaluate(name, weak, rules)
    assert first["decision"] == "promote" and first["champion_version"] is None
    assert ledger(first)["reason"].startswith("no champion yet")
    assert promote(name, first)["changed"] is True

    good = register("good")
    verdict = evaluate(name, good, rules)
    assert verdict["decision"] == "promote", verdict
    improvement = next(c for c in ledger(verdict)["checks"] if c["check"] == "improvement")
    assert improvement["challenger"] > improvement["champion"] and improvement["delta"] > 0.002
    result = promote(name, verdict)
    assert (result["champion"], result["previous"]) == (good, weak)
    assert hook.alias_version(name, "champion") == good and hook.alias_version(name, "previous") == weak
    client = hook.get_client()
    assert client.get_model_version(name, good).tags["gate.decision"] == "promote"
    assert client.get_model_version(name, good).tags["promotion.replaced"] == weak
    artifact_path = f"gate/ledgers/{ledger(verdict)['attempt']}.json"
    artifact = client.download_artifacts(client.get_model_version(name, good).run_id, artifact_path, str(tmp_path))
    assert json.loads(Path(artifact).read_text())["decision"] == "promote"

    # Re-running the finished promotion changes nothing.
    again = promote(name, verdict)
    assert again["changed"] is False and hook.alias_version(name, "previous") == weak

    # Rollback restores the previous champion and records why.
    rolled = RollbackModelOperator(task_id="rollback", model_name=name, reason="bad predictions in prod").execute(
        task_context(None)
    )
    assert rolled["champion"] == weak and hook.alias_version(name, "champion") == weak
    assert client.get_model_version(name, good).tags["rollback.reason"] == "bad predictions in prod"
    rerun = RollbackModelOperator(task_id="rollback", model_name=name, reason="bad predictions in prod")
    assert rerun.execute(task_context(None))["rolled_back"] is None  # a cleared rollback changes nothing
    assert hook.alias_version(name, "champion") == weak
    with pytest.raises(AirflowFailException, match="no 'previous' version"):  # a second, new rollback
        RollbackModelOperator(task_id="rollback", model_name=name, reason="again").execute(
            task_context(None, run_id="another_rollback")
        )


def establish(name: str, register, key: str, rules: str) -> str:
    version = register(key)
    promote(name, evaluate(name, version, rules))
    return version


def test_worse_challenger_is_rejected_and_the_gate_skips(registry, tmp_path):
    name, register, hook = registry
    rules = rules_file(tmp_path, name, floors={"roc_auc": 0.5})
    champion = establish(name, register, "good", rules)
    verdict = evaluate(name, register("weak"), rules)
    assert verdict["decision"] == "reject" and "improvement" in failed(verdict)
    assert "improvement(roc_auc)" in verdict["reason"]
    with pytest.raises(AirflowSkipException, match="rejected: .*improvement"):
        ModelGateOperator(task_id="gate", evaluation=json.dumps(verdict)).execute(task_context(None))
    assert hook.alias_version(name, "champion") == champion


def test_challenger_inside_the_margin_is_rejected(registry, tmp_path):
    name, register, _ = registry
    rules = rules_file(tmp_path, name, floors={"roc_auc": 0.5}, min_improvement=0.002)
    establish(name, register, "good", rules)
    verdict = evaluate(name, register("good_again"), rules)  # same data, same params: identical scores
    check = next(c for c in ledger(verdict)["checks"] if c["check"] == "improvement")
    assert check["delta"] == pytest.approx(0.0, abs=1e-12) and check["threshold"] == 0.002
    assert verdict["decision"] == "reject" and failed(verdict) == ["improvement"]


def test_segment_regression_is_rejected(registry, tmp_path):
    name, register, _ = registry
    rules = rules_file(tmp_path, name, floors={"roc_auc": 0.5}, min_improvement=-0.2, max_segment_regression=0.03)
    establish(name, register, "good", rules)
    verdict = evaluate(name, register("noisy_premium"), rules)
    assert verdict["decision"] == "reject"
    assert "segment:premium" in failed(verdict) and "improvement" not in failed(verdict)
    premium = next(c for c in ledger(verdict)["checks"] if c["check"] == "segment:premium")
    assert premium["champion"] - premium["challenger"] > 0.03


def test_failing_behaviour_test_is_rejected(registry, tmp_path):
    name, register, _ = registry
    rules = rules_file(tmp_path, name, floors={"roc_auc": 0.5})
    tests = json.loads(BEHAVIOUR.read_text())
    tests["directional"].append(
        {
            "name": "more sessions raise churn (wrong on purpose)",
            "feature": "sessions_7d",
            "values": [1, 10, 40],
            "direction": "increasing",
            "tolerance": 0.0,
        }
    )
    path = tmp_path / "tests.json"
    path.write_text(json.dumps(tests))
    verdict = evaluate(name, register("good"), rules, tests=str(path))
    assert verdict["decision"] == "reject"
    behaviour = [c for c in ledger(verdict)["checks"] if c["check"].startswith("behaviour")]
    assert [c["metric"] for c in behaviour if not c["passed"]] == ["more sessions raise churn (wrong on purpose)"]


def test_demo_model_passes_the_shipped_behaviour_tests(registry, tmp_path):
    name, register, _ = registry
    verdict = evaluate(name, register("good"), str(rules_file(tmp_path, name)))
    behaviour = [c for c in ledger(verdict)["checks"] if c["check"].startswith("behaviour")]
    assert behaviour and all(c["passed"] for c in behaviour), behaviour


def test_two_racing_promotions_leave_one_champion_and_one_clear_failure(registry, tmp_path):
    name, register, hook = registry
    rules = rules_file(tmp_path, name, floors={"roc_auc": 0.5}, require_behaviour_tests=False)
    a, b = register("weak"), register("good")
    verdicts = [evaluate(name, a, rules), evaluate(name, b, rules)]  # both saw "no champion"
    outcomes: list = []
    barrier = threading.Barrier(2)

    def race(verdict: dict) -> None:
        barrier.wait()
        try:
            outcomes.append(("ok", promote(name, verdict)))
        except AirflowFailException as exc:
            outcomes.append(("failed", str(exc)))

    threads = [threading.Thread(target=race, args=(v,)) for v in verdicts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ["failed", "ok"]
    winner = next(r for kind, r in outcomes if kind == "ok")["champion"]
    message = next(r for kind, r in outcomes if kind == "failed")
    assert f"champion is v{winner} now but was vNone" in message and "Re-run the evaluation" in message
    assert hook.alias_version(name, "champion") == winner


def test_promotion_dag_promotes_then_rerun_changes_nothing(trained, airflow_db, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from mlops_provider.runtime.deployment import Endpoint
    from tests.integration.test_rollout import free_base_port

    monkeypatch.setenv("MLOPS_HOME", str(trained["home"]))
    port = free_base_port()  # the churn spec serves live (serving.endpoint): its endpoint on free ports
    monkeypatch.setenv("MLOPS_ENDPOINT_PORT_OFFSET", str(port - 8600))
    hook = MlflowHook()
    client = hook.get_client()
    version = copy_version(hook, "pool", trained["runs"]["good"]["version"], "churn_classifier")
    # The newest validated partition is what the shadow check replays.
    day = generate_day(dt.date(2026, 11, 7), SourceSpec(rows_per_day=500))
    day["signup_date"] = pd.to_datetime(day["signup_date"])
    day.to_parquet(trained["home"].parent / "partition.parquet", index=False)
    DvcHook().version_file(
        trained["home"].parent / "partition.parquet",
        "data/customer_activity/partitions/2026-11-07.parquet",
        "partition/customer_activity/2026-11-07",
        {},
    )
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py")).get_dag("churn_classifier__promotion")
    first = dag.test(run_conf={"version": str(version)})
    assert first.state == "success"
    assert hook.alias_version("churn_classifier", "champion") == str(version)
    assert client.get_model_version("churn_classifier", str(version)).tags["shadow.passed"] == "True"
    second = dag.test(run_conf={"version": str(version)})
    assert second.state == "success"
    promote_ti = next(ti for ti in second.get_task_instances() if ti.task_id == "promote")
    assert promote_ti.state == "success"
    assert hook.alias_version("churn_classifier", "previous") is None  # nothing moved on the re-run
    endpoint = Endpoint("churn_classifier", port)
    assert {v: w for v, w in endpoint.load()["weights"].items() if w} == {str(version): 100}  # the first champion
    endpoint.shutdown()


def test_a_past_promotion_run_cleared_later_judges_and_keeps_its_own_version(registry, tmp_path):
    """Finding 5: clearing a past `promote` failed it ("champion is v3 now but was v1"), and re-evaluating judged
    the current challenger (another version) and overwrote that version's ledger."""
    from types import SimpleNamespace

    from airflow.sdk import Asset

    name, register, hook = registry
    rules = rules_file(tmp_path, name)
    asset = Asset(name=f"{name}_challenger", uri=f"x-mlops://model/{name}/challenger")

    def run_context(run_id: str, task_id: str, version: str | None = None, try_number: int = 1) -> dict:
        context = task_context(None, dag_id="promotion", run_id=run_id, task_id=task_id, try_number=try_number)
        if version is not None:
            event = SimpleNamespace(extra={"model_name": name, "version": version}, timestamp=dt.datetime.now(dt.UTC))
            context["triggering_asset_events"] = {asset: [event]}
        return context

    def evaluate_run(run_id: str, version: str, try_number: int = 1) -> dict:
        return EvaluateModelOperator(
            task_id="evaluate", model_name=name, model_asset=asset, gate_rules=rules,
            behaviour_tests=str(BEHAVIOUR), label_column=SPEC.label.column,
        ).execute(run_context(run_id, "evaluate", version, try_number))  # fmt: skip

    def promote_run(run_id: str, version: str, expected: str | None) -> dict:
        return PromoteModelOperator(
            task_id="promote", model_name=name, version=version, expected_champion=expected
        ).execute(run_context(run_id, "promote"))

    v1 = register("weak")
    promote_run("first", v1, None)
    v2 = register("good")
    verdict = evaluate_run("run_a", v2)
    assert verdict["challenger_version"] == v2 and verdict["decision"] == "promote"
    assert promote_run("run_a", v2, verdict["champion_version"])["changed"] is True
    v3 = register("good_again")
    with hook.scoped_environment():
        hook.get_client().set_registered_model_alias(name, "challenger", v3)  # training moved on
    promote_run("run_b", v3, v2)
    assert hook.alias_version(name, "champion") == v3

    # On-call clears run A's promote: a no-op, the champion stays v3.
    again = promote_run("run_a", v2, verdict["champion_version"])
    assert again["changed"] is False and hook.alias_version(name, "champion") == v3
    # ...and run A's evaluate: it judges run A's version (from its triggering event), not the challenger alias.
    first_ledger = Path(verdict["ledger_path"]).read_text()
    rejudged = evaluate_run("run_a", v2, try_number=2)
    assert rejudged["challenger_version"] == v2 and rejudged["ledger_path"] != verdict["ledger_path"]
    assert Path(verdict["ledger_path"]).read_text() == first_ledger  # the first verdict is kept as it was
    ledgers = sorted((trained_home(hook) / "reports" / "ledgers" / name / f"v{v2}").glob("*.json"))
    assert len(ledgers) == 2 and json.loads(ledgers[0].read_text())["version_from"].startswith("event of")
    assert not (trained_home(hook) / "reports" / "ledgers" / name / f"v{v3}").exists()  # v3 was never judged
    assert "gate.decision" not in hook.model_version_tags(name, v3)


def trained_home(hook: MlflowHook) -> Path:
    import os

    return Path(os.environ["MLOPS_HOME"])


def test_a_re_evaluation_adds_to_the_record_and_keeps_the_first_verdict(registry, tmp_path):
    """Issue 27 item 5: re-evaluating a promoted version (after the champion moved on) overwrote its `gate.*` tags,
    so the health page showed the promoted version as "reject"."""
    from mlops_provider.web import health

    name, register, hook = registry
    rules = rules_file(tmp_path, name, floors={"roc_auc": 0.5})

    def evaluate_run(run_id: str, version: str) -> dict:
        return EvaluateModelOperator(
            task_id="evaluate", model_name=name, challenger_version=version, gate_rules=rules,
            behaviour_tests=str(BEHAVIOUR), label_column=SPEC.label.column,
        ).execute(task_context(None, dag_id="promotion", run_id=run_id, task_id="evaluate"))  # fmt: skip

    good = register("good")
    first = evaluate_run("first", good)
    assert first["decision"] == "promote"
    promote(name, first)
    later = register("good_again")  # same scores: promoted over it by hand, then `good` is judged again against it
    PromoteModelOperator(task_id="promote", model_name=name, version=later, expected_champion=good).execute(
        task_context(None, dag_id="promotion", run_id="later", task_id="promote")
    )
    again = evaluate_run("re_evaluation", good)
    assert again["decision"] == "reject" and again["champion_version"] == later

    tags = hook.model_version_tags(name, good)
    first_attempt, again_attempt = ledger(first)["attempt"], ledger(again)["attempt"]
    assert (tags["gate.decision"], tags["gate.ledger"], tags["gate.champion_version"]) == (
        "promote",
        first_attempt,
        "none",
    )
    assert tags["gate.reason"] == first["reason"][:500]
    assert tags["gate.reevaluations"] == "1"
    assert tags["gate.reevaluation.1.decision"] == "reject" and tags["gate.reevaluation.1.ledger"] == again_attempt
    assert tags["gate.reevaluation.1.champion_version"] == later
    assert ledger(again)["reevaluation_of"] == first_attempt and ledger(first).get("reevaluation_of") is None
    assert Path(first["ledger_path"]).is_file() and Path(again["ledger_path"]).is_file()

    # The same attempt running again (a crash after the tags) fills the same slot: no second re-evaluation.
    evaluate_run("re_evaluation", good)
    tags = hook.model_version_tags(name, good)
    assert tags["gate.reevaluations"] == "1" and "gate.reevaluation.2.decision" not in tags

    row = next(h for h in health.collect(name)["history"] if h["version"] == good)
    assert (row["decision"], row["reason"]) == ("promote", first["reason"][:500])
    assert [(r["attempt"], r["decision"]) for r in row["reevaluations"]] == [(again_attempt, "reject")]
    page = health.render(health.collect(name))
    assert "re-evaluated 1 time" in page
