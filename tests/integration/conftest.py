"""Fixtures shared by integration test modules (no test module imports another): a versioned training set, and a
pool of trained models registered once per module that uses it. Plain helpers are in ``models.py``; the git daemon
and S3 server fixtures are in ``tests/conftest.py``."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlops_provider.demo.churn_source import SourceSpec, generate_day
from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.layout import training_set_path
from mlops_provider.ml.split import HoldoutSplit
from tests.helpers import task_context
from tests.integration.models import DATA_PATH, SPEC, TAG, train_op


@pytest.fixture
def training_set(mlops_home, tmp_path) -> dict:
    """Five days of the demo source, versioned in the data registry as the ingest DAG versions a training set."""
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(5)]
    frame = pd.concat([generate_day(d, SourceSpec(rows_per_day=800)) for d in days], ignore_index=True)
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    path = tmp_path / "training_set.parquet"
    frame.to_parquet(path, index=False)
    return DvcHook().version_file(path, training_set_path("churn_classifier"), TAG, {})


@pytest.fixture(scope="module")
def trained(trained_pool, tmp_path_factory) -> dict:
    """The pool of trained models in a home of this module's own: a copy of the session's pool (its MLflow store,
    data registry and files), so what one module registers or promotes is not seen by another. The copy's runs
    keep their artifacts where the pool put them (read, never rewritten)."""
    import shutil

    home = tmp_path_factory.mktemp("pool-copy") / "mlops"
    shutil.copytree(trained_pool["home"], home, symlinks=True)
    for name in ("clean.parquet", "noisy.parquet"):
        shutil.copy(trained_pool["home"].parent / name, home.parent / name)
    return {"home": home, "runs": trained_pool["runs"]}


@pytest.fixture(scope="session")
def trained_pool(tmp_path_factory) -> dict:
    """Four runs trained once per session: weak, good, good again (same data and params), and one taught inverted
    premium labels."""
    home = tmp_path_factory.mktemp("promotion") / "mlops"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(home))
        days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(6)]
        frame = pd.concat([generate_day(d, SourceSpec(rows_per_day=1500)) for d in days], ignore_index=True)
        frame["signup_date"] = pd.to_datetime(frame["signup_date"])
        # Premium labels inverted on the training side only: the holdout (evaluation) keeps the true labels.
        noisy = frame.copy()
        premium = (noisy["plan"] == "premium") & ~HoldoutSplit.from_mapping(SPEC.holdout).mask(noisy)
        noisy.loc[premium, "churned"] = 1 - noisy.loc[premium, "churned"]
        revs = {}
        for name, data in (("clean", frame), ("noisy", noisy)):
            path = home.parent / f"{name}.parquet"
            data.to_parquet(path, index=False)
            revs[name] = DvcHook().version_file(path, DATA_PATH, f"training-set/{name}", {})["rev"]
        runs = {}
        for key, rev, params in (
            ("weak", "clean", {"n_estimators": 2, "max_depth": 1}),
            ("good", "clean", {"n_estimators": 120, "max_depth": 4}),
            ("good_again", "clean", {"n_estimators": 120, "max_depth": 4}),
            ("noisy_premium", "noisy", {"n_estimators": 120, "max_depth": 4}),
        ):
            op = train_op(dataset_path=DATA_PATH, dataset_rev=revs[rev], hyperparameters=params, model_name="pool")
            runs[key] = op.execute(task_context(None, dag_id="training", run_id=key, task_id="train"))
    return {"home": home, "runs": runs}
