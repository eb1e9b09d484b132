"""TrainModelOperator with real DVC, MLflow (SQLite store) and XGBoost: one run and one version per task,
lineage tags, the challenger alias, bad inputs caught before training, and reproduction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlops_provider.cli.reproduce import reproduce_run
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.layout import training_set_path
from mlops_provider.operators.training import challenger_alias
from tests.helpers import PROJECT_ROOT, task_context
from tests.integration.models import FAST, SPEC, TAG, TRAINING, context, train_op

pytestmark = pytest.mark.integration


def test_training_twice_for_one_airflow_run_gives_one_run_and_one_version(training_set, mlops_home):
    import mlflow

    first = train_op().execute(context())
    second = train_op().execute(context(try_number=2))
    assert second["run_id"] == first["run_id"] and second["version"] == first["version"] == "1"
    assert second["resumed"] is True and first["resumed"] is False
    json.dumps(first)

    hook = MlflowHook()
    client = hook.get_client()
    experiment = client.get_experiment_by_name("churn")
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert len(client.search_model_versions("name = 'churn_classifier'")) == 1
    tags = client.get_run(first["run_id"]).data.tags
    assert tags["data.rev"] == training_set["rev"] and tags["data.md5"] == training_set["md5"]
    assert tags["data.path"] == training_set_path("churn_classifier")
    assert tags["airflow.dag_id"] == "training" and tags["airflow.run_id"] == "manual__1"
    assert tags["trigger.reason"] == "manual" and tags["training.runner"] == "local"
    assert json.loads(tags["training.params"])["max_depth"] == 4
    assert 0.6 < first["metrics"]["roc_auc"] < 1.0
    assert hook.alias_version("churn_classifier", "challenger") == "1"

    with hook.scoped_environment():
        model = mlflow.pyfunc.load_model("models:/churn_classifier@challenger")
    example = model.input_example
    predictions = model.predict(example)
    assert len(predictions) == len(example) and all(0.0 <= p <= 1.0 for p in predictions)


def test_a_new_airflow_run_makes_a_new_version_and_moves_the_alias(training_set):
    train_op().execute(context())
    other = train_op().execute(task_context(None, dag_id="training", run_id="manual__2", task_id="train"))
    assert other["version"] == "2"
    assert MlflowHook().alias_version("churn_classifier", "challenger") == "2"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_dept": 3}, "hyperparameters.max_dept: unknown hyperparameter"),
        ({"max_depth": "deep"}, "hyperparameters.max_depth: expected int, got str"),
        ({"learning_rate": 7.0}, r"hyperparameters.learning_rate: 7.0 is outside"),
        ('{"max_depth": ', "hyperparameters: not a JSON object"),
    ],
)
def test_bad_hyperparameters_fail_before_training(training_set, overrides, message):
    with pytest.raises(AirflowFailException, match=message):
        train_op(hyperparameters=overrides).execute(context())
    assert not (Path(MlflowHook().tracking_uri.removeprefix("sqlite:///"))).exists()  # nothing reached MLflow


def test_unknown_dataset_rev_fails_naming_the_field(training_set):
    with pytest.raises(AirflowFailException, match="dataset_rev: revision 'training-set/nope' does not exist"):
        train_op(dataset_rev="training-set/nope").execute(context())


def test_unreachable_tracking_server_names_the_endpoint(training_set, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DOWN", json.dumps({"conn_type": "mlflow", "host": "http://127.0.0.1:9"}))
    monkeypatch.setattr("mlops_provider.hooks.mlflow.time.sleep", lambda _: None)
    with pytest.raises(AirflowException, match=r"http://127.0.0.1:9 is not reachable after 3 attempts"):
        train_op(mlflow_conn_id="mlflow_down").execute(context())


def test_failing_entrypoint_marks_the_run_failed_with_its_output(training_set, tmp_path):
    broken = tmp_path / "train.py"
    broken.write_text("import sys\nprint('loading data...')\nraise SystemExit('feature store unavailable')\n")
    with pytest.raises(AirflowException, match="(?s)exited with 1.*feature store unavailable"):
        train_op(entrypoint=str(broken)).execute(context())
    client = MlflowHook().get_client()
    runs = client.search_runs([client.get_experiment_by_name("churn").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    # The retry (same task, working code) reuses that run.
    result = train_op().execute(context(try_number=2))
    assert result["run_id"] == runs[0].info.run_id


def test_reproduce_gives_equal_metrics(training_set):
    result = train_op().execute(context())
    report = reproduce_run(result["run_id"])
    assert report["equal"], report["metrics"]
    assert report["max_abs_diff"] <= 1e-9 and report["run_id"] != result["run_id"]
    assert len(report["metrics"]) > 10
    tags = MlflowHook().get_client().get_run(report["run_id"]).data.tags
    assert tags["mlops.reproduces"] == result["run_id"] and tags["data.rev"] == training_set["rev"]


def test_credentials_are_scoped_to_the_call(monkeypatch):
    import os

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_TOKEN",
        json.dumps({"conn_type": "mlflow", "host": "http://127.0.0.1:9", "password": "tok"}),
    )
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    hook = MlflowHook(mlflow_conn_id="mlflow_token")
    with hook.scoped_environment():
        assert os.environ["MLFLOW_TRACKING_TOKEN"] == "tok"
        assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9"
    assert "MLFLOW_TRACKING_TOKEN" not in os.environ


def test_training_dag_with_a_conf_registers_a_challenger_and_emits_the_asset(airflow_db, training_set):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py")).get_dag("churn_classifier__training")
    run = dag.test(run_conf={"dataset_rev": TAG, "hyperparameters": FAST, "reason": "manual", "detail": {"by": "test"}})
    assert run.state == "success"
    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
    assert [e.extra["version"] for e in events] == ["1"]
    run_id = events[0].extra["run_id"]
    tags = MlflowHook().get_client().get_run(run_id).data.tags
    assert tags["trigger.reason"] == "manual" and json.loads(tags["trigger.detail"]) == {"by": "test"}
    assert tags["airflow.dag_id"] == "churn_classifier__training" and tags["airflow.run_id"] == run.run_id

    bad = dag.test(run_conf={"dataset_rev": TAG, "hyperparameters": {"depth": 3}})
    assert bad.state == "failed"
    assert len(MlflowHook().get_client().search_model_versions("name = 'churn_classifier'")) == 1


def test_a_rerun_of_a_judged_version_neither_moves_the_alias_nor_announces_it_again(training_set):
    """Clearing an old training task at 2 AM must not make its old version the challenger again, nor run
    promotion again for a version the gate already judged."""
    from airflow.sdk import Asset

    challenger = Asset(name="churn_classifier_challenger", uri="x-mlops://model/churn_classifier/challenger")
    first_context = context()
    first = train_op(model_asset=challenger).execute(first_context)
    alias = challenger_alias(challenger)
    assert [(a, e["version"]) for a, e in first_context["outlet_events"][alias].added] == [(challenger, "1")]

    newer = train_op().execute(task_context(None, dag_id="training", run_id="manual__2", task_id="train"))
    hook = MlflowHook()
    with hook.scoped_environment():
        hook.get_client().set_model_version_tag("churn_classifier", first["version"], "gate.decision", "reject")

    again_context = context(try_number=2)
    again = train_op(model_asset=challenger).execute(again_context)
    assert again["version"] == first["version"] and again["resumed"] is True
    assert again_context["outlet_events"][alias].added == []
    assert hook.alias_version("churn_classifier", "challenger") == newer["version"] == "2"


def test_extra_links_point_at_plugin_pages_that_show_the_run_the_version_and_the_data(training_set):
    from mlops_provider.links.extra_links import (
        DvcVersionLink,
        MlflowModelVersionLink,
        MlflowRunLink,
        dvc_version_url,
        mlflow_run_url,
        model_version_url,
    )
    from mlops_provider.web import records

    ctx = context()
    result = train_op().execute(ctx)
    pushed = ctx["ti"].pushed
    assert (
        pushed[MlflowRunLink().xcom_key] == mlflow_run_url(result["run_id"]) == f"/mlops/mlflow/runs/{result['run_id']}"
    )
    version_url = model_version_url("churn_classifier", result["version"])
    assert (
        pushed[MlflowModelVersionLink().xcom_key]
        == version_url
        == f"/mlops/mlflow/models/churn_classifier/versions/{result['version']}"
    )
    assert pushed[DvcVersionLink().xcom_key] == dvc_version_url(training_set["rev"])

    run = records.mlflow_run(result["run_id"])
    assert run["tags"]["data.rev"] == training_set["rev"] and run["params"]["max_depth"] == "4"
    assert run["versions"] == [{"name": "churn_classifier", "version": result["version"]}]
    assert run["mlflow_ui"] is None  # a local store: no MLflow UI to send the user to
    page = records.render_run(run)
    assert result["run_id"] in page and "roc_auc" in page and f"churn_classifier v{result['version']}" in page

    version = records.model_version("churn_classifier", result["version"])
    assert version["aliases"] == ["challenger"] and version["run_id"] == result["run_id"]
    assert mlflow_run_url(result["run_id"]) in records.render_model_version(version)

    data = records.dvc_version(training_set["rev"])
    assert data["tags"] == [TAG] and data["rev"] == training_set["rev"]
    assert data["files"] == [
        {"path": training_set_path("churn_classifier"), "md5": training_set["md5"], "size": training_set["size"]}
    ]
    assert TAG in records.render_dvc_version(data)

    with pytest.raises(records.RecordNotFound, match="no MLflow run 'nope'"):
        records.mlflow_run("nope")
    with pytest.raises(records.RecordNotFound, match="99"):
        records.model_version("churn_classifier", "99")
    with pytest.raises(records.RecordNotFound, match="does not exist"):
        records.dvc_version("0" * 40)


def as_airflow_runs(task, conf: dict) -> dict:
    """The context of ``task`` in a run triggered with ``conf``, as Airflow's task runner builds it: the run's conf
    merged into ``params`` (``dag_run_conf_overrides_params``, the default), the templates rendered from it."""
    from types import SimpleNamespace

    from airflow.sdk.definitions.param import process_params

    ctx = context()
    ctx.update(dag=task.dag, dag_run=SimpleNamespace(conf=conf, run_type="manual"),
               params=process_params(task.dag, task, conf, suppress_exception=False))  # fmt: skip
    task.render_template_fields(ctx)
    return ctx


def test_a_misspelt_conf_key_a_branch_and_a_rev_that_is_not_a_training_set_are_refused(training_set, tmp_path):
    """Finding 8 and issue 27: `datset_rev` was silently ignored (training ran on the newest data) because the run's
    conf is merged into params, so the check never saw the unknown key; `dataset_rev: main` (a branch, which moves)
    trained and was recorded as the version's data name; a partition tag as dataset_rev trained on an unrelated,
    older training set while the lineage named the partition. The factory's training task, its context built as
    Airflow builds it."""
    from mlops_provider.loop.factory import build_dags

    def train_task():
        return build_dags(SPEC)[SPEC.dag_id("training")].get_task("train")

    allowed = r"allowed: \['dataset_rev', 'detail', 'hyperparameters', 'reason'\]"
    for conf in ({"datset_rev": TAG}, {"hyperparameter": {"max_depth": 2}}):
        unknown = next(iter(conf))
        task = train_task()
        ctx = as_airflow_runs(task, conf)
        assert unknown in ctx["params"]  # what made the old check blind
        refused = rf"unknown key\(s\) \['{unknown}'\] in the run's conf; {allowed}"
        with pytest.raises(AirflowFailException, match=refused):
            task.execute(ctx)

    branch = DvcHook()._git("symbolic-ref", "--short", "HEAD").stdout.strip()  # its head is the training set's commit
    task = train_task()
    moving = rf"dataset_rev: {branch!r} is a branch of the data registry \(it moves\); allowed: a training-set tag "
    with pytest.raises(AirflowFailException, match=moving + rf"\(training-set/churn_classifier/\*, e.g. {TAG}\)"):
        task.execute(as_airflow_runs(task, {"dataset_rev": branch}))
    assert MlflowHook().get_client().search_model_versions("name = 'churn_classifier'") == []

    partition = tmp_path / "partition.parquet"
    partition.write_bytes(b"a later day " * 100)
    DvcHook().version_file(partition, "data/customer_activity/partitions/2026-11-06.parquet",
                           "partition/customer_activity/2026-11-06", {})  # fmt: skip
    with pytest.raises(AirflowFailException, match="is not a version of data/churn_classifier/training_set.parquet"):
        train_op(dataset_rev="partition/customer_activity/2026-11-06").execute(context())
    assert MlflowHook().get_client().search_model_versions("name = 'churn_classifier'") == []


BREAKS = {
    "result file": ("train.py", "os.replace(tmp, args.output)", "pass"),
    "model_id": ("train.py", 'result = {"model_id": info.model_id, ', "result = {"),
    "run tags": ("train.py", "mlflow.set_tags({**json.loads(args.tags), ", "mlflow.set_tags({"),
    "signature": (
        "train.py",
        'signature=model_signature(example, predictions, features["numerical"]),\n            input_example=example,\n',
        "",
    ),
    "predict output": ("tabular_model.py", "self.categories))[:, 1]", "self.categories))"),
}


@pytest.mark.parametrize("item", list(BREAKS))
def test_an_entrypoint_that_breaks_the_contract_fails_naming_the_item(training_set, tmp_path, item):
    """The template entrypoint with one thing broken: no result file, no model id, the given tags dropped, no
    signature, predict returning both class columns. Each fails the task (no retry: the code is wrong) with the
    item named, and the MLflow run is marked failed; nothing is registered."""
    import shutil

    for name in ("train.py", "tabular_model.py", "hyperparameters.json"):
        shutil.copy(TRAINING / name, tmp_path / name)
    file, old, new = BREAKS[item]
    code = (tmp_path / file).read_text()
    assert old in code, f"the template changed: {old!r} is not in {file}"
    (tmp_path / file).write_text(code.replace(old, new))
    with pytest.raises(AirflowFailException, match=f"training entrypoint contract, {item}:"):
        train_op(entrypoint=str(tmp_path / "train.py")).execute(context())
    client = MlflowHook().get_client()
    runs = client.search_runs([client.get_experiment_by_name("churn").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert client.search_model_versions("name = 'churn_classifier'") == []


def test_the_entrypoint_gets_training_rows_and_holdout_rows_apart_and_the_split_is_recorded(training_set):
    """The provider owns the split: the training rows and the holdout rows share no key, and the run and the
    version record the split that evaluation and the performance check read back."""
    import pandas as pd

    from mlops_provider.ml.split import HoldoutSplit
    from mlops_provider.utils.paths import mlops_home

    result = train_op().execute(context())
    work = mlops_home() / "training" / result["run_id"]
    train_rows, holdout_rows = pd.read_parquet(work / "train.parquet"), pd.read_parquet(work / "holdout.parquet")
    assert not set(train_rows["customer_id"]) & set(holdout_rows["customer_id"])
    assert len(train_rows) + len(holdout_rows) == len(DvcHook().read_frame(training_set_path("churn_classifier"), TAG))
    version_tags = MlflowHook().model_version_tags("churn_classifier", result["version"])
    split = HoldoutSplit.from_tags(version_tags)
    assert split == HoldoutSplit.from_mapping(SPEC.holdout)
    assert split.mask(holdout_rows).all() and not split.mask(train_rows).any()
    run = MlflowHook().get_client().get_run(result["run_id"])
    assert HoldoutSplit.from_tags(run.data.tags) == split
    assert json.loads(run.data.tags["training.schema"])["label"] == "churned"


def test_the_holdout_curves_and_calibrations_are_those_of_the_enforced_predict(training_set):
    """The provider scores the whole holdout without MLflow's per-value schema enforcement (the model's own
    implementation, checked against the enforced ``predict`` on the contract's sample); the scores, the curves and the
    calibrations it logs are exactly those of the enforced ``predict`` on every holdout row."""
    import mlflow
    import numpy as np
    import pandas as pd

    from mlops_provider.ml.curves import CURVES_ARTIFACT, holdout_curves
    from mlops_provider.ml.estimation import CALIBRATION_ARTIFACT, fit_calibrations
    from mlops_provider.ml.scoring import binary_labels, schema_predictor, unenforced_predict
    from mlops_provider.runtime.runners import MODEL_ID_TAG, holdout_predictor
    from mlops_provider.utils.paths import mlops_home

    result = train_op().execute(context())
    hook = MlflowHook()
    run = hook.get_client().get_run(result["run_id"])
    model = hook.load_model(f"models:/{run.data.tags[MODEL_ID_TAG]}")
    holdout = pd.read_parquet(mlops_home() / "training" / result["run_id"] / "holdout.parquet")
    rows = holdout.drop(columns=["churned"])
    assert unenforced_predict(model) is not None  # the fast path is the one taken for the template's model
    enforced = np.asarray(schema_predictor(model)(rows), dtype=float)
    fast = np.asarray(holdout_predictor(model, rows.head(50))(rows), dtype=float)
    assert np.array_equal(fast, enforced)
    labels = binary_labels(holdout["churned"], 1)
    mlflow.set_tracking_uri(hook.tracking_uri)
    logged_curves = mlflow.artifacts.load_dict(f"runs:/{result['run_id']}/{CURVES_ARTIFACT}")
    assert logged_curves == json.loads(json.dumps(holdout_curves(labels, enforced, threshold=0.5)))
    logged_calibrations = mlflow.artifacts.load_dict(f"runs:/{result['run_id']}/{CALIBRATION_ARTIFACT}")
    assert logged_calibrations == json.loads(
        json.dumps({**fit_calibrations(labels, enforced), "fitted_at": "training"})
    )


def test_the_holdout_is_scored_by_the_enforced_predict_when_the_implementation_disagrees_on_the_sample(
    training_set, monkeypatch
):
    """When the unenforced call gives other scores than the enforced ``predict`` on the sample (here: a stand-in
    for it, off by a factor), the whole holdout is scored by the enforced ``predict``."""
    import numpy as np
    import pandas as pd

    from mlops_provider.ml import scoring
    from mlops_provider.ml.scoring import schema_predictor
    from mlops_provider.runtime.runners import MODEL_ID_TAG, holdout_predictor
    from mlops_provider.utils.paths import mlops_home

    result = train_op().execute(context())
    hook = MlflowHook()
    model = hook.load_model(f"models:/{hook.get_client().get_run(result['run_id']).data.tags[MODEL_ID_TAG]}")
    rows = pd.read_parquet(mlops_home() / "training" / result["run_id"] / "holdout.parquet").drop(columns=["churned"])
    implementation = scoring.unenforced_predict(model)
    assert implementation is not None
    monkeypatch.setattr(scoring, "unenforced_predict", lambda model: lambda frame: implementation(frame) * 0.5)
    chosen = holdout_predictor(model, rows.head(50))
    assert np.array_equal(np.asarray(chosen(rows), dtype=float), np.asarray(schema_predictor(model)(rows), dtype=float))


def _in_a_uv_project(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work in ``folder``, made a uv project (as an Airflow deployment's directory may be)."""
    folder.mkdir()
    (folder / "uv.lock").write_text("version = 1\n# the Airflow deployment's lock, not the model's\n")
    (folder / "pyproject.toml").write_text('[project]\nname = "airflow-deployment"\nversion = "0"\n')
    monkeypatch.chdir(folder)


def _logged_files(version: str) -> list[str]:
    import mlflow

    with MlflowHook().scoped_environment():
        local = Path(mlflow.artifacts.download_artifacts(f"models:/churn_classifier/{version}"))
    return sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())


def test_a_worker_in_a_uv_project_does_not_copy_its_lock_file_into_the_model(training_set, tmp_path, monkeypatch):
    """The logged model holds the entrypoint's files and its pinned requirements, never the lock file of the
    project the worker happens to run in (MLflow copies ``uv.lock`` and ``pyproject.toml`` of the working
    directory into every model it logs, unless told otherwise): the local runner tells it."""
    _in_a_uv_project(tmp_path / "deployment", monkeypatch)

    logged = _logged_files(train_op().execute(context())["version"])

    assert "MLmodel" in logged and "requirements.txt" in logged
    assert [name for name in logged if Path(name).name in ("uv.lock", "pyproject.toml")] == []


def test_the_demo_s_bad_version_carries_no_lock_file_of_the_directory_it_was_made_in(training_set, tmp_path,
                                                                                    monkeypatch):  # fmt: skip
    """``make demo`` registers its deliberately bad version from the repository's root, a uv project: the version
    wraps the good one's model and holds nothing of that project."""
    from mlops_provider.demo.bad_models import register_live_regression

    good = train_op().execute(context())["version"]
    _in_a_uv_project(tmp_path / "repository", monkeypatch)

    bad = register_live_regression(MlflowHook(), "churn_classifier", good, tmp_path / "bad", kind="constant")

    logged = _logged_files(bad)
    assert "MLmodel" in logged and any(name.startswith("artifacts/inner/") for name in logged)
    assert [name for name in logged if Path(name).name in ("uv.lock", "pyproject.toml")] == []
