"""The training operator's input rules that need no service: the run's conf may only carry declared params (checked
against the declared names, not the params Airflow merged the conf into), and dataset_rev must name a fixed
version (a tag or a commit id, never a branch)."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest
from airflow.sdk.definitions.param import process_params
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.loop.factory import build_dags
from mlops_provider.loop.spec import load_spec
from mlops_provider.operators.training import dataset_rev_problem, unknown_conf_problem
from tests.helpers import PROJECT_ROOT, task_context

pytestmark = pytest.mark.unit

SPEC = load_spec(PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml")
DECLARED = ["dataset_rev", "detail", "hyperparameters", "reason"]


def test_unknown_conf_keys_are_named_with_the_allowed_ones():
    assert unknown_conf_problem({"dataset_rev": "t", "reason": "manual"}, DECLARED) is None
    assert unknown_conf_problem({"datset_rev": "t", "hyperparameter": {}}, DECLARED) == (
        "conf: unknown key(s) ['datset_rev', 'hyperparameter'] in the run's conf; allowed: "
        "['dataset_rev', 'detail', 'hyperparameters', 'reason']. Trigger again with the right names."
    )
    assert unknown_conf_problem({"anything": 1}, []) is None  # a DAG that declares no params is not checked


def test_the_factory_training_task_refuses_a_misspelt_key_although_airflow_merged_it_into_params():
    """Airflow merges the run's conf into ``params`` before the task runs: the check must not read them."""
    task = build_dags(SPEC)[SPEC.dag_id("training")].get_task("train")
    conf = {"datset_rev": "training-set/churn_classifier/2026-11-05"}
    params = process_params(task.dag, task, conf, suppress_exception=False)  # as the task runner builds them
    assert "datset_rev" in params
    context = {**task_context(None, dag_id=task.dag_id, run_id="manual__1", task_id="train"),
               "dag": task.dag, "dag_run": SimpleNamespace(conf=conf), "params": params}  # fmt: skip
    with pytest.raises(AirflowFailException, match=r"unknown key\(s\) \['datset_rev'\] in the run's conf; allowed: "
                       r"\['dataset_rev', 'detail', 'hyperparameters', 'reason'\]"):  # fmt: skip
        task.execute(context)


@pytest.mark.parametrize("kind", ["tag", "commit"])
def test_a_tag_or_a_commit_id_is_a_fixed_version(kind):
    assert dataset_rev_problem("x", kind, "training-set/m/*") is None


def test_a_branch_or_a_moving_name_is_refused_naming_the_key_the_value_and_what_is_allowed():
    assert dataset_rev_problem("main", "branch", "training-set/m/*", "training-set/m/2026-11-05") == (
        "dataset_rev: 'main' is a branch of the data registry (it moves); allowed: a training-set tag "
        "(training-set/m/*, e.g. training-set/m/2026-11-05) or a commit id (7-40 hex digits) of the data registry, "
        "or empty for the newest training set."
    )
    assert dataset_rev_problem("HEAD~1", "expression", None) == (
        "dataset_rev: 'HEAD~1' is not a tag or a commit id; allowed: a tag or a commit id (7-40 hex digits) of the "
        "data registry, or empty for the newest training set."
    )


def test_rev_kind_tells_tags_branches_commits_and_expressions_apart(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    git("init", "--quiet", "--initial-branch", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty", "-m", "one")
    git("tag", "training-set/m/2026-11-05")
    sha = git("rev-parse", "HEAD").strip()
    hook = DvcHook(dvc_conn_id="none", workspace=str(tmp_path))
    hook.__dict__["_settings"] = {}
    kinds = {rev: hook.rev_kind(rev) for rev in ("training-set/m/2026-11-05", "main", sha, sha[:7], "HEAD", "main~0")}
    assert kinds == {"training-set/m/2026-11-05": "tag", "main": "branch", sha: "commit", sha[:7]: "commit",
                     "HEAD": "expression", "main~0": "expression"}  # fmt: skip
