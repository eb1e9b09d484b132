"""Model specs: every spec in the repository is valid; a bad one fails naming its file, the key and what is
allowed; a folder of specs is checked as one deployment."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from mlops_provider.cli.main import main
from mlops_provider.loop.spec import SpecError, load_spec, load_specs
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.unit

MODELS = PROJECT_ROOT / "include" / "models"
SPECS = sorted(MODELS.glob("*.yaml"))
CHURN = MODELS / "churn_classifier.yaml"


def test_the_repository_has_at_least_two_model_specs():
    assert len(SPECS) >= 2, [p.name for p in SPECS]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_spec_in_the_repository_is_valid(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    for key, value in spec.files().items():
        assert spec.resolve(value).is_file(), key


def test_the_specs_of_the_repository_form_one_valid_deployment():
    specs = load_specs(MODELS)
    assert len({s.name for s in specs}) == len(specs)


def write(tmp_path: Path, change) -> Path:
    """A copy of the churn spec in ``tmp_path`` (with the files it names), changed by ``change(data)``."""
    data = yaml.safe_load(CHURN.read_text())
    change(data)
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    for folder in ("gx", "training", "promotion", "serving"):
        if not (tmp_path / folder).exists():
            shutil.copytree(MODELS.parent / folder, tmp_path / folder)
    path = models / f"{data.get('name', 'spec')}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


def test_an_unknown_key_is_named_with_the_keys_allowed_there(tmp_path):
    path = write(tmp_path, lambda d: d["label"].update(delay=3))
    message = error_of(path)
    assert str(path) in message
    assert "label.delay: unknown key; allowed here: column, delay_days, positive_class" in message


def test_a_missing_required_key_is_named(tmp_path):
    path = write(tmp_path, lambda d: d["dataset"].pop("key_column"))
    assert f"{path}: dataset.key_column: required key is missing" in error_of(path)


def test_a_wrong_value_names_the_key_and_what_is_allowed(tmp_path):
    path = write(tmp_path, lambda d: d["training"].update(runner="kubernetes"))
    message = error_of(path)
    assert "training.runner" in message and "'local'" in message and "'docker'" in message and "kubernetes" in message
    path = write(tmp_path, lambda d: d["split"].update(fraction=1.5))
    assert "split.fraction" in error_of(path)


def test_rules_across_keys_are_checked(tmp_path):
    path = write(tmp_path, lambda d: d["features"]["categorical"].append("tenure_days"))
    assert "listed as both numerical and categorical" in error_of(path)
    path = write(tmp_path, lambda d: d.update(segments=["country"]))
    assert "segments ['country'] are not features" in error_of(path)
    path = write(tmp_path, lambda d: d["features"].update(drift={"nope": {"threshold": 0.2}}))
    assert "drift settings for ['nope']" in error_of(path)
    path = write(tmp_path, lambda d: d["training"].update(window_days=3, min_days=5))
    assert "min_days 5 is more than window_days 3" in error_of(path)


def test_a_file_the_spec_names_must_exist(tmp_path):
    path = write(tmp_path, lambda d: d.update(validation="../gx/expectations/missing.json"))
    assert f"{path}: validation: file" in error_of(path) and "missing.json does not exist" in error_of(path)


def test_not_yaml_or_not_a_mapping_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    assert f"{bad}: not valid YAML" in error_of(bad)
    bad.write_text("- a\n- b\n")
    assert "must be a mapping" in error_of(bad)


def test_two_models_on_one_dataset_must_agree_on_its_source(tmp_path):
    write(tmp_path, lambda d: None)
    write(tmp_path, lambda d: d.update(name="churn_two"))
    assert [s.name for s in load_specs(tmp_path / "models")] == ["churn_classifier", "churn_two"]
    write(tmp_path, lambda d: (d.update(name="churn_three"), d["dataset"].update(table="other_table")))
    with pytest.raises(SpecError, match="share dataset 'customer_activity' but differ"):
        load_specs(tmp_path / "models")


def test_mlops_spec_check_exits_nonzero_and_prints_the_problem(tmp_path, capsys):
    assert main(["spec", "check", str(CHURN)]) == 0
    assert "ok (model churn_classifier" in capsys.readouterr().out
    path = write(tmp_path, lambda d: d["gate"].update(floor=0.7))
    assert main(["spec", "check", str(path)]) == 1
    assert "gate.floor: unknown key" in capsys.readouterr().err


def keys_of(model, prefix: str = "") -> list[str]:
    """Every key of a spec section, dotted (``features.drift.<column>.method`` for per-column settings)."""
    from pydantic import BaseModel

    found = []
    for name, field in model.model_fields.items():
        if name == "path":
            continue
        key = f"{prefix}{name}"
        args = [field.annotation, *getattr(field.annotation, "__args__", ())]
        section = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if name == "drift":
            found += keys_of(args[-1], f"{key}.<column>.")
        elif name == "search_space":
            found += keys_of(args[-1], f"{key}.<parameter>.")
        elif section is not None:
            found += keys_of(section, f"{key}.")
        else:
            found.append(key)
    return found


def test_the_spec_reference_documents_every_key():
    from mlops_provider.loop.spec import ModelSpec

    documented = set(re.findall(r"^\| `([\w.<>]+)` \|", (PROJECT_ROOT / "docs" / "model-spec.md").read_text(), re.M))
    keys = keys_of(ModelSpec)
    assert len(keys) > 40
    assert sorted(set(keys) - documented) == [], "keys missing from docs/model-spec.md"
    assert sorted(documented - set(keys)) == [], "documented keys the spec does not have"


def test_the_provider_names_no_domain_of_the_demo_outside_the_demo_generators():
    """No churn names in the installed provider: no operator default, runbook or helper that belongs to the demo."""
    pattern = re.compile(r"customer_id|churned|customer_activity|churn|\bplan\b")
    package = PROJECT_ROOT / "plugins" / "mlops_provider"
    hits = [
        f"{path.relative_to(package)}:{n}"
        for path in package.rglob("*.py")
        if "demo" not in path.relative_to(package).parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


# -- what would fail at training time fails the spec check (issue 27) ----------------------------------------------


@pytest.mark.parametrize("char", ["<", "[", "]"])
def test_a_feature_name_xgboost_refuses_is_named_with_the_character(tmp_path, char):
    name = f"tenure{char}days"
    path = write(tmp_path, lambda d: d["features"]["categorical"].append(name))
    message = error_of(path)
    assert "features.categorical" in message and f"{name!r}" in message and f"{char!r}" in message, message
    assert "XGBoost" in message


def change_suite(tmp_path: Path, value_set: list) -> None:
    """Set the label's value set in the copied churn suite (``write`` copies it to tmp_path/gx)."""
    suite_path = tmp_path / "gx" / "expectations" / "customer_activity.json"
    suite = json.loads(suite_path.read_text())
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_column_values_to_be_in_set" and expectation["kwargs"]["column"] == "churned":
            expectation["kwargs"]["value_set"] = value_set
    suite_path.write_text(json.dumps(suite))


def test_a_positive_class_the_suite_never_allows_is_named(tmp_path):
    path = write(tmp_path, lambda d: None)
    change_suite(tmp_path, ["no", "yes"])
    message = error_of(path)
    assert "label.positive_class: 1 is not a value the suite allows for label column 'churned'" in message, message
    assert "['no', 'yes']" in message
    path = write(tmp_path, lambda d: d["label"].update(positive_class="yes"))
    assert load_spec(path).label.positive_class == "yes"


def test_a_suite_that_allows_one_label_class_is_named(tmp_path):
    path = write(tmp_path, lambda d: None)
    change_suite(tmp_path, [0])
    message = error_of(path)
    assert "allows one value for label column 'churned' ([0])" in message, message


def test_mlops_spec_check_warns_on_a_missing_source_table_and_skips_an_unreachable_source(
    tmp_path, capsys, monkeypatch
):
    from sqlalchemy import create_engine, text

    path = write(tmp_path, lambda d: None)
    database = tmp_path / "source.db"
    with create_engine(f"sqlite:///{database}").begin() as conn:
        conn.execute(text("CREATE TABLE other (x INTEGER)"))
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SOURCE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    assert main(["spec", "check", str(path)]) == 0
    captured = capsys.readouterr()
    assert "ok (model churn_classifier" in captured.out
    assert "warning: table 'customer_activity' does not exist" in captured.err and "mlops_source" in captured.err
    with create_engine(f"sqlite:///{database}").begin() as conn:
        conn.execute(text("CREATE TABLE customer_activity (x INTEGER)"))
    assert main(["spec", "check", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "source.db"
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SOURCE", json.dumps({"conn_type": "sqlite", "host": str(missing)}))
    assert main(["spec", "check", str(path)]) == 0
    assert "source table check skipped" in capsys.readouterr().err
    assert not missing.exists()


def test_mlops_spec_check_warns_when_a_label_window_cannot_reach_the_minimum(tmp_path, capsys):
    # The churn suite lets a valid day hold 500 rows: 20 % holdout -> ~100 labelled rows a day, under 200.
    path = write(tmp_path, lambda d: d["monitoring"].update(label_window_days=1))
    assert main(["spec", "check", str(path)]) == 0  # a warning, not an error
    err = capsys.readouterr().err
    assert f"{path}: warning: monitoring: a day with the validation suite's minimum of 500 rows gives ~100" in err
    assert "under monitoring.min_labelled_rows 200" in err and "label_window_days to 2 or more" in err
    path = write(tmp_path, lambda d: d["monitoring"].update(label_window_days=1, min_labelled_rows=100))
    assert main(["spec", "check", str(path)]) == 0
    assert "min_labelled_rows" not in capsys.readouterr().err
    # An out-of-time split scores every row of a day after the training window: 500 labelled rows a day.
    path = write(tmp_path, lambda d: (d["monitoring"].update(label_window_days=1, min_labelled_rows=400),
                                      d["split"].update(method="out_of_time", holdout_days=2)))  # fmt: skip
    assert main(["spec", "check", str(path)]) == 0
    assert "min_labelled_rows" not in capsys.readouterr().err
    path = write(tmp_path, lambda d: (d["monitoring"].update(label_window_days=1, min_labelled_rows=600),
                                      d["split"].update(method="out_of_time", holdout_days=2)))  # fmt: skip
    assert main(["spec", "check", str(path)]) == 0
    err = capsys.readouterr().err
    assert "gives ~500 labelled holdout rows per 1-day label window (split.method out_of_time" in err
    assert "label_window_days to 2 or more" in err


def test_a_feature_listed_twice_is_named(tmp_path):
    path = write(tmp_path, lambda d: d["features"]["numerical"].append(d["features"]["numerical"][0]))
    assert "listed twice (XGBoost refuses duplicate feature names)" in error_of(path)


def test_an_out_of_time_holdout_as_long_as_the_window_is_refused_and_a_shorter_one_reaches_the_operator(tmp_path):
    path = write(tmp_path, lambda d: d["split"].update(method="out_of_time", holdout_days=7))
    assert "split.holdout_days 7 must be less than training.window_days 7" in error_of(path)
    path = write(tmp_path, lambda d: d["split"].update(method="hold_last"))
    assert "split.method" in error_of(path) and "'out_of_time'" in error_of(path)
    path = write(tmp_path, lambda d: d["split"].update(method="out_of_time", holdout_days=2))
    assert load_spec(path).holdout == {"method": "out_of_time", "holdout_days": 2, "time_column": "event_ts"}
    assert load_spec(CHURN).holdout == {"key": "customer_id", "fraction": 0.2, "seed": 0}  # the default: key hash


# -- training.tuning (issue 34) -----------------------------------------------------------------------------------

TUNING = {
    "enabled": True,
    "n_trials": 8,
    "search_space": {"max_depth": {"low": 2, "high": 8}, "learning_rate": {"low": 0.01, "high": 0.3, "log": True}},
}


def test_tuning_is_off_by_default_and_a_plan_when_enabled(tmp_path):
    assert load_spec(write(tmp_path, lambda d: None)).training.tuning.plan() is None
    spec = load_spec(write(tmp_path, lambda d: d["training"].update(tuning=TUNING)))
    plan = spec.training.tuning.plan()
    assert plan["search_space"] == {
        "max_depth": {"low": 2, "high": 8},
        "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
    }
    assert plan["on"] == ["drift", "schedule", "manual"] and plan["n_trials"] == 8
    assert isinstance(plan["search_space"]["max_depth"]["low"], int)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"max_dept": {"low": 2, "high": 4}}, "training.tuning.search_space.max_dept: unknown hyperparameter"),
        ({"max_depth": {"low": 6, "high": 6}}, "training.tuning.search_space.max_depth: empty range"),
        ({"max_depth": {"low": 2, "high": 99}}, "training.tuning.search_space.max_depth: high 99 outside"),
        ({}, "training.tuning.search_space: name at least one hyperparameter"),
    ],
)
def test_a_bad_search_space_is_a_spec_error_naming_the_key(tmp_path, space, message):
    path = write(tmp_path, lambda d: d["training"].update(tuning={**TUNING, "search_space": space}))
    assert message in error_of(path)


def test_serving_capture_and_monitoring_current_defaults(tmp_path):
    spec = load_spec(write(tmp_path, lambda data: None))
    capture = spec.serving.capture
    assert (capture.fraction, capture.flush_rows, capture.buffer_rows, capture.retention_days) == (
        1.0,
        5000,
        100000,
        30,
    )
    assert capture.capture_arguments("customer_id")["key_column"] == "customer_id"
    assert spec.monitoring_current == "ingested"  # no live endpoint: the ingested partitions
    assert spec.monitoring.drift_arguments()["min_served_rows"] == 200

    def served(data):
        data.setdefault("monitoring", {})["current"] = "served"
        data["serving"]["capture"] = {"fraction": 0.1, "flush_rows": 100, "buffer_rows": 1000}

    spec = load_spec(write(tmp_path, served))
    assert spec.monitoring_current == "served" and spec.serving.capture.fraction == 0.1


def test_a_capture_buffer_smaller_than_a_flush_is_refused(tmp_path):
    def bad(data):
        data["serving"]["capture"] = {"flush_rows": 100, "buffer_rows": 10}

    assert "buffer_rows" in error_of(write(tmp_path, bad))
