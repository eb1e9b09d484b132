"""The validated-spec cache (issue 31): the DAG factory's parse rebuilds a valid spec from ``MLOPS_HOME`` without
YAML or validation, and never from a stale entry (the spec, a file it names or the validating code changed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_provider.loop.spec import SpecError, check_folder, load_spec, spec_cache_file
from tests.unit.loop.test_spec import CHURN, SPECS, write

pytestmark = pytest.mark.unit


def entry_of(path: Path) -> Path:
    path = path.resolve()
    return spec_cache_file(path, path.read_text())


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_a_cached_spec_is_the_validated_spec(path, mlops_home):
    validated = load_spec(path)
    assert not entry_of(path).exists()  # only a cached read writes the cache
    first = load_spec(path, cached=True)
    assert entry_of(path).is_file()
    again = load_spec(path, cached=True)
    assert first == validated and again == validated
    assert repr(again) == repr(validated)
    assert again.path == validated.path
    for method in ("train_arguments", "evaluate_arguments", "package_arguments", "performance_arguments"):
        assert getattr(again, method)() == getattr(validated, method)(), method
    if validated.serving.endpoint is not None:
        assert again.serving.rollout_arguments() == validated.serving.rollout_arguments()


def test_a_hit_is_read_from_the_cache(tmp_path, mlops_home):
    """The second read comes from the entry (an entry changed by hand shows), not from the YAML."""
    path = write(tmp_path, lambda d: None)
    load_spec(path, cached=True)
    entry = entry_of(path)
    data = json.loads(entry.read_text())
    data["spec"]["description"] = "read from the cache"
    entry.write_text(json.dumps(data))
    assert load_spec(path, cached=True).description == "read from the cache"
    assert load_spec(path).description != "read from the cache"  # mlops spec check: always validates


def test_a_changed_spec_is_validated_again(tmp_path, mlops_home):
    path = write(tmp_path, lambda d: None)
    load_spec(path, cached=True)
    write(tmp_path, lambda d: d["gate"].update(floor=0.7))
    with pytest.raises(SpecError, match="gate.floor: unknown key"):
        load_spec(path, cached=True)


def test_a_changed_file_the_spec_names_refuses_the_entry(tmp_path, mlops_home):
    """The suite changed after the spec was cached: the entry is not used, the spec is validated again."""
    path = write(tmp_path, lambda d: None)
    spec = load_spec(path, cached=True)
    suite = spec.resolve(spec.validation)
    suite.write_text("{not json")
    with pytest.raises(SpecError, match="is not valid JSON"):
        load_spec(path, cached=True)
    suite.unlink()
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(path, cached=True)


def test_a_bad_spec_is_never_cached_and_fails_alike(tmp_path, mlops_home):
    path = write(tmp_path, lambda d: d["dataset"].update(bogus=1))
    with pytest.raises(SpecError) as plain:
        load_spec(path)
    for _ in range(2):
        with pytest.raises(SpecError) as cached:
            load_spec(path, cached=True)
        assert str(cached.value) == str(plain.value)
    assert not (mlops_home / "cache").exists()


@pytest.mark.parametrize("content", ["{torn", '{"spec": {"bogus": 1}, "files": {}}', "[]"])
def test_a_torn_or_foreign_entry_is_a_miss(tmp_path, mlops_home, content):
    path = write(tmp_path, lambda d: None)
    validated = load_spec(path)
    entry = entry_of(path)
    entry.parent.mkdir(parents=True)
    entry.write_text(content)
    assert load_spec(path, cached=True) == validated


def test_an_unwritable_cache_only_costs_the_validation(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("a file, not a folder")  # MLOPS_HOME/cache cannot be created
    monkeypatch.setenv("MLOPS_HOME", str(home))
    assert load_spec(CHURN, cached=True) == load_spec(CHURN)


def test_check_folder_reads_through_the_cache(tmp_path, mlops_home):
    path = write(tmp_path, lambda d: None)
    assert [s.name for s in check_folder(path.parent, cached=True).specs] == ["churn_classifier"]
    assert entry_of(path).is_file()
    assert check_folder(path.parent, cached=True) == check_folder(path.parent)


def test_the_key_covers_every_module_that_validates(tmp_path):
    """VALIDATING_MODULES lists every provider module a full validation runs (a validator's code change must make a
    miss): importing them, and validating a spec that tunes, loads no other provider module."""
    probe = (
        "import sys, json\n"
        "from mlops_provider.loop import spec\n"
        f"spec.load_spec({str(CHURN)!r})\n"
        "import mlops_provider.ml.tuning, mlops_provider.ml.canary, mlops_provider.ml.hyperparameters\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mlops_provider'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ), check=True
    )
    from mlops_provider.loop.spec import VALIDATING_MODULES

    listed = {"mlops_provider." + name.removesuffix(".py").replace("/", ".") for name in VALIDATING_MODULES}
    packages = {"mlops_provider", "mlops_provider.loop", "mlops_provider.ml"}
    assert set(json.loads(proc.stdout.strip().splitlines()[-1])) - packages <= listed


def test_a_tuned_spec_plans_alike_from_the_cache(tmp_path, mlops_home):
    search = {"max_depth": {"low": 2, "high": 8}, "learning_rate": {"low": 0.01, "high": 0.3, "log": True}}
    path = write(tmp_path, lambda d: d["training"].update(tuning={"enabled": True, "search_space": search}))
    validated = load_spec(path)
    load_spec(path, cached=True)
    plan = load_spec(path, cached=True).training.tuning.plan()
    assert (
        plan
        == validated.training.tuning.plan()
        == validated.training.tuning.model_dump()
        | {
            "search_space": {
                "max_depth": {"low": 2, "high": 8},
                "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
            }
        }
    )
    assert isinstance(plan["search_space"]["max_depth"]["low"], int)


def test_a_hit_is_a_read_only_view_with_the_models_behaviour(tmp_path, mlops_home):
    """Issue 31: a hit builds no pydantic model: a read-only view, equal to the validated spec (either side of
    ``==``), iterating as a model does, with every section's methods."""
    from mlops_provider.loop.spec import SpecView

    path = write(tmp_path, lambda d: None)
    validated = load_spec(path)
    load_spec(path, cached=True)
    view = load_spec(path, cached=True)
    assert isinstance(view, SpecView) and isinstance(view.dataset, SpecView)
    assert view == validated and validated == view and view.dataset == validated.dataset
    assert list(view.monitoring) == list(validated.monitoring)
    assert view.dataset.extract_arguments() == validated.dataset.extract_arguments()
    assert view.features.drift_arguments() == validated.features.drift_arguments()
    assert (view.schedule.start_date, view.validation) == (validated.schedule.start_date, validated.validation)
    with pytest.raises(TypeError, match="read-only"):
        view.name = "other"
    import copy
    import pickle

    assert copy.deepcopy(view) is view and pickle.loads(pickle.dumps(view.dataset)) == validated.dataset
    with pytest.raises(AttributeError, match="no attribute 'bogus'"):
        _ = view.dataset.bogus


def test_models_on_one_dataset_agree_whether_read_from_the_cache_or_validated(tmp_path, mlops_home):
    """A folder where one spec is a cache hit (a view) and the other is validated (a model) has no false conflict
    on their shared dataset."""
    first = write(tmp_path, lambda d: None)
    load_spec(first, cached=True)  # cached: the next read is a view
    write(tmp_path, lambda d: d.update(name="churn_second"))
    checked = check_folder(first.parent, cached=True)
    assert checked.problems == [] and [s.name for s in checked.specs] == ["churn_classifier", "churn_second"]
