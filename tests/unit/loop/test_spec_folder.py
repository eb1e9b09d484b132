"""A folder of model specs as the DAG factory reads it: each spec on its own, so one bad file costs only its own
model's DAGs (a placeholder DAG names the file and the key); the rules across files (unique names, one definition of
a shared dataset) keep the healthy model; ``mlops spec check`` reads the same files the same way."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import yaml

from mlops_provider.cli.main import main
from mlops_provider.loop.factory import STAGES, build_all
from mlops_provider.loop.spec import SpecError, check_folder, load_specs
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

INCLUDE = PROJECT_ROOT / "include"


def dag_ids(model: str) -> list[str]:
    return [f"{model}__{stage}" for stage in STAGES]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """``tmp_path/models`` with copies of both repository specs and, beside it, the files they name."""
    for folder in ("gx", "training", "promotion", "serving"):
        shutil.copytree(INCLUDE / folder, tmp_path / folder)
    shutil.copytree(INCLUDE / "models", tmp_path / "models")
    return tmp_path / "models"


def edit(path: Path, change) -> Path:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return path


def break_fraud(models: Path) -> Path:
    """The incident's one-line typo."""
    path = models / "card_fraud.yaml"
    text = path.read_text()
    assert "  positive_class: 1\n" in text
    path.write_text(text.replace("  positive_class: 1\n", "  positive_clas: 1\n"))
    return path


def test_a_bad_spec_is_a_problem_of_its_own_file_and_the_others_stay_usable(models):
    fraud = break_fraud(models)
    checked = check_folder(models)
    assert [s.name for s in checked.specs] == ["churn_classifier"]
    (problem,) = checked.problems
    assert problem.path == fraud.resolve()
    assert f"{fraud.resolve()}: label.positive_clas: unknown key" in problem.message
    with pytest.raises(SpecError, match="label.positive_clas"):  # the strict reading still refuses the folder
        load_specs(models)


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_build_all_keeps_the_healthy_models_dags_and_a_placeholder_names_the_bad_file(models):
    fraud = break_fraud(models)
    recorder = Recorder()  # on the logger itself: Airflow may reconfigure the root's handlers while it loads
    logging.getLogger("mlops_provider.loop.factory").addHandler(recorder)
    try:
        dags = build_all(models)
    finally:
        logging.getLogger("mlops_provider.loop.factory").removeHandler(recorder)
    assert sorted(dags) == sorted([*dag_ids("churn_classifier"), "card_fraud__spec_error"])
    placeholder = dags["card_fraud__spec_error"]
    assert placeholder.schedule is None and "spec_error" in placeholder.tags
    assert f"{fraud.resolve()}: label.positive_clas: unknown key" in placeholder.doc_md
    assert f"mlops spec check {models.resolve()}" in placeholder.doc_md
    assert placeholder.description.startswith("BROKEN model spec card_fraud.yaml: label.positive_clas")
    (task,) = placeholder.tasks
    assert task.retries == 0
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="label.positive_clas: unknown key"):
        task.python_callable()
    (record,) = recorder.records
    assert record.levelno == logging.ERROR
    assert "card_fraud.yaml" in record.getMessage() and "label.positive_clas" in record.getMessage()


def test_bad_yaml_and_a_missing_named_file_are_isolated_too(models):
    (models / "card_fraud.yaml").write_text((models / "card_fraud.yaml").read_text() + "label: [unclosed\n")
    edit(models / "churn_classifier.yaml", lambda d: d.update(validation="../gx/expectations/gone.json"))
    (models / "third.yaml").write_text((INCLUDE / "models" / "churn_classifier.yaml").read_text())
    edit(models / "third.yaml", lambda d: d.update(name="third"))
    dags = build_all(models)
    assert sorted(dags) == sorted([*dag_ids("third"), "card_fraud__spec_error", "churn_classifier__spec_error"])
    assert "not valid YAML" in dags["card_fraud__spec_error"].doc_md
    assert "validation: file" in dags["churn_classifier__spec_error"].doc_md


def test_a_duplicate_name_keeps_the_file_named_after_the_model(models):
    # A copy that sorts first but keeps the name: the original (named after the model) keeps its DAGs.
    copy = models / "a_copy.yaml"
    shutil.copy(models / "churn_classifier.yaml", copy)
    checked = check_folder(models)
    assert [s.path.name for s in checked.specs] == ["card_fraud.yaml", "churn_classifier.yaml"]
    (problem,) = checked.problems
    assert problem.path == copy.resolve() and problem.others == ((models / "churn_classifier.yaml").resolve(),)
    assert f"{copy.resolve()}: name: model 'churn_classifier' is also defined in" in problem.message
    assert str((models / "churn_classifier.yaml").resolve()) in problem.message
    assert sorted(build_all(models)) == sorted([*dag_ids("card_fraud"), *dag_ids("churn_classifier"),
                                                "a_copy__spec_error"])  # fmt: skip


def test_a_duplicate_name_in_files_not_named_after_it_keeps_the_first_by_path(models):
    for stem in ("b_model", "a_model"):
        shutil.copy(models / "churn_classifier.yaml", models / f"{stem}.yaml")
        edit(models / f"{stem}.yaml", lambda d: d.update(name="shared_name"))
    checked = check_folder(models)
    assert "a_model.yaml" in [s.path.name for s in checked.specs]
    (problem,) = checked.problems
    assert problem.path.name == "b_model.yaml" and "it comes first by file name" in problem.message


def test_models_on_one_dataset_that_disagree_keep_the_version_most_agree_on(models):
    for name in ("aa_first", "zz_second"):
        shutil.copy(models / "churn_classifier.yaml", models / f"{name}.yaml")
        edit(models / f"{name}.yaml", lambda d, name=name: d.update(name=name))
    # The first file by path disagrees with the two others: it is the one left out.
    edit(models / "aa_first.yaml", lambda d: d["dataset"].update(table="other_table"))
    checked = check_folder(models)
    assert sorted(s.name for s in checked.specs) == ["card_fraud", "churn_classifier", "zz_second"]
    (problem,) = checked.problems
    assert problem.path.name == "aa_first.yaml"
    assert "share dataset 'customer_activity' but differ in its source or validation suite" in problem.message
    assert "churn_classifier.yaml" in problem.message


def test_a_yml_file_is_reported_not_silently_ignored(models, capsys):
    yml = models / "tx_risk.yml"
    shutil.copy(models / "churn_classifier.yaml", yml)
    edit(yml, lambda d: d.update(name="tx_risk"))
    checked = check_folder(models)
    assert sorted(s.name for s in checked.specs) == ["card_fraud", "churn_classifier"]
    (problem,) = checked.problems
    assert "the DAG factory reads only *.yaml files; rename it to tx_risk.yaml" in problem.message
    assert "tx_risk_yml__spec_error" in build_all(models)
    assert main(["spec", "check", str(yml)]) == 1
    assert "rename it to tx_risk.yaml" in capsys.readouterr().err
    yml.rename(models / "tx_risk.yaml")
    assert main(["spec", "check", str(models / "tx_risk.yaml")]) == 0


def test_spec_check_of_a_file_applies_the_rules_across_its_folder(models, capsys):
    copy = models / "churn_v2.yaml"
    shutil.copy(models / "churn_classifier.yaml", copy)  # copied, name not changed yet
    assert main(["spec", "check", str(copy)]) == 1
    captured = capsys.readouterr()
    assert "ok" not in captured.out
    assert "name: model 'churn_classifier' is also defined in" in captured.err
    # The file that keeps its DAGs is not "ok" either while another file claims its name.
    assert main(["spec", "check", str(models / "churn_classifier.yaml")]) == 1
    assert "ok" not in capsys.readouterr().out
    # A sibling's own problem is not this file's.
    copy.unlink()
    break_fraud(models)
    assert main(["spec", "check", str(models / "churn_classifier.yaml")]) == 0
    assert "churn_classifier.yaml: ok (model churn_classifier" in capsys.readouterr().out


def test_spec_check_of_a_folder_checks_every_spec_as_the_factory_does(models, capsys):
    assert main(["spec", "check", str(models)]) == 0
    out = capsys.readouterr().out
    assert "card_fraud.yaml: ok" in out and "churn_classifier.yaml: ok" in out
    fraud = break_fraud(models)
    assert main(["spec", "check", str(models)]) == 1
    captured = capsys.readouterr()
    assert "churn_classifier.yaml: ok" in captured.out
    assert f"{fraud.resolve()}: label.positive_clas: unknown key" in captured.err
    assert main(["spec", "check", str(models / "nowhere")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    empty = models.parent / "empty"
    empty.mkdir()
    assert main(["spec", "check", str(empty)]) == 1
    assert "no model spec (*.yaml) in this folder" in capsys.readouterr().err


def test_a_spec_whose_dags_do_not_build_leaves_no_dag_behind_in_the_dag_file(models, monkeypatch):
    """Through Airflow's own loader: a bad cron fails only when the DAG is validated, after the model's first DAG
    was made; nothing of that model is registered, its placeholder names the key, the other model loads."""
    from airflow.dag_processing.dagbag import DagBag

    edit(models / "card_fraud.yaml", lambda d: d["retraining"].update(schedule="@weekky"))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py"))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted([*dag_ids("churn_classifier"), "card_fraud__spec_error"])
    doc = bag.dags["card_fraud__spec_error"].doc_md
    assert "card_fraud.yaml: retraining.schedule: not a valid cron expression or preset" in doc


def test_a_missing_models_folder_is_an_error_not_zero_models(tmp_path):
    with pytest.raises(SpecError, match="models folder does not exist"):
        build_all(tmp_path / "nowhere")
