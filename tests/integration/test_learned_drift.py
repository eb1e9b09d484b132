"""Learned drift thresholds with real Evidently, MLflow and DVC (issue 28, item 1): a model that leans on slowly
moving (AR(1)) columns; its champion trained on a 7-day window. Calm days after the window "drift" under the
share of drifted columns (one day of an autocorrelated column is a narrow slice of a week), not under the learned
signal; a season shift of a column the model leans on does. The thresholds are learned once per champion."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from mlops_provider.hooks.dvc import DvcHook
from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.layout import partition_path, partition_tag
from mlops_provider.operators.evidently import DriftReportOperator
from mlops_provider.sensors.drift import DriftSensor
from tests.helpers import task_context

pytestmark = pytest.mark.integration

DATASET, MODEL = "weather_events", "weather_model"
EARLIER, WINDOW, AFTER, ROWS = 14, 7, 6, 900
FIRST = dt.date(2026, 6, 1)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(EARLIER + WINDOW + AFTER)]
TRAINING_DAYS = DAYS[EARLIER : EARLIER + WINDOW]
CALM_DAYS = DAYS[EARLIER + WINDOW : -1]
SEASON_DAY = DAYS[-1]  # temperature 3 std warmer: a season change in the column the model leans on most
NUMERICAL, CATEGORICAL = ["temperature", "humidity", "amount"], ["channel"]
IMPORTANCE = {"temperature": 0.6, "humidity": 0.1, "amount": 0.3, "channel": 0.0}


def days_of_data(seed: int = 5) -> dict[dt.date, pd.DataFrame]:
    """Temperature and humidity: rows around a daily mean that follows an AR(1); amount and channel: iid."""
    rng = np.random.default_rng(seed)
    means = {}
    for column, (phi, sigma) in {"temperature": (0.8, 0.3), "humidity": (0.9, 0.2)}.items():
        series = [rng.normal(0, sigma / math.sqrt(1 - phi**2))]
        for _ in DAYS[1:]:
            series.append(phi * series[-1] + rng.normal(0, sigma))
        means[column] = series
    frames = {}
    for i, day in enumerate(DAYS):
        frames[day] = pd.DataFrame({
            "temperature": means["temperature"][i] + rng.normal(0, 1, ROWS) + (3.3 if day == SEASON_DAY else 0.0),
            "humidity": means["humidity"][i] + rng.normal(0, 1, ROWS),
            "amount": rng.gamma(2.0, 20.0, ROWS),
            "channel": rng.choice(["web", "app", "store"], ROWS, p=[0.5, 0.3, 0.2]),
        })  # fmt: skip
    return frames


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> dict:
    """The days versioned as validated partitions; a training set of the 7 training days (as the training-set
    assembly versions it, with the partitions trailer); a champion registered on it with feature importances."""
    home = tmp_path_factory.mktemp("learned") / "mlops"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(home))
        files = home.parent / "files"
        files.mkdir()
        frames = days_of_data()
        dvc = DvcHook()
        for day, frame in frames.items():
            frame.to_parquet(files / f"{day}.parquet", index=False)
            dvc.version_file(
                files / f"{day}.parquet", partition_path(DATASET, str(day)), partition_tag(DATASET, str(day)), {}
            )
        pd.concat([frames[d] for d in TRAINING_DAYS], ignore_index=True).to_parquet(files / "train.parquet")
        training_set = dvc.version_file(
            files / "train.parquet", f"data/{MODEL}/training_set.parquet", f"training-set/{MODEL}/{TRAINING_DAYS[-1]}",
            {"Training-Set-Partitions": ",".join(str(d) for d in TRAINING_DAYS)},
        )  # fmt: skip
        hook = MlflowHook()
        client = hook.get_client()
        with hook.scoped_environment():
            experiment = client.create_experiment("weather", artifact_location=(home / "artifacts").as_uri())
            run = client.create_run(experiment)
            (files / "feature_importance.json").write_text(json.dumps(IMPORTANCE))
            client.log_artifact(run.info.run_id, str(files / "feature_importance.json"))
            client.set_terminated(run.info.run_id)
            client.create_registered_model(MODEL)
            version = client.create_model_version(
                MODEL, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                tags={"data.path": f"data/{MODEL}/training_set.parquet", "data.rev": training_set["rev"]},
            ).version  # fmt: skip
            client.set_registered_model_alias(MODEL, "champion", version)
    return {"home": home, "version": str(version)}


def check(champion: dict, day: dt.date, **kwargs) -> dict:
    context = task_context(day, dag_id="learned", run_id=f"r-{day}-{sorted(kwargs.items())}", task_id="drift_report")
    return DriftReportOperator(
        task_id="drift_report", dataset=DATASET, model_name=MODEL, partition=str(day),
        numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL, **kwargs,
    ).execute(context)  # fmt: skip


def test_calm_autocorrelated_days_drift_by_share_not_by_learned_thresholds_and_a_season_shift_does(
    champion, monkeypatch
):
    monkeypatch.setenv("MLOPS_HOME", str(champion["home"]))
    learned = [check(champion, day, signal="learned") for day in CALM_DAYS]
    # The fixed per-column line (reported beside the learned signal): a slowly moving column "drifts" on every calm
    # day, so the share of drifted columns alarms on every one of them at card_fraud's line of 0.25.
    assert all(s["columns"]["temperature"]["drifted"] or s["columns"]["humidity"]["drifted"] for s in learned)
    assert all(s["drift_share"] >= 0.25 for s in learned), [s["drift_share"] for s in learned]
    by_share = check(champion, CALM_DAYS[0], signal="share", drift_share_threshold=0.25)
    assert by_share["signal"] == "share" and by_share["dataset_drift"] is True
    # The learned thresholds: no calm day alarms; each record explains the verdict with its numbers.
    assert [s["dataset_drift"] for s in learned] == [False] * len(CALM_DAYS), [s["learned_drift"] for s in learned]
    first = learned[0]
    assert first["signal"] == "learned" and first["learned_threshold"] == 0.3 and first["signal_note"] is None
    thresholds = first["learned_thresholds"]
    assert thresholds["reference_days"] == [str(d) for d in TRAINING_DAYS]
    assert thresholds["calibration_days"] == [str(d) for d in DAYS[:EARLIER]]
    temperature = thresholds["columns"]["temperature"]
    assert temperature["n_days"] == EARLIER + WINDOW and temperature["threshold"] > 0.1  # wider than the fixed line
    assert set(temperature["quantiles"]) == {"p50", "p90", "max"} and len(temperature["scores"]) == EARLIER + WINDOW
    assert thresholds["columns"]["amount"]["threshold"] >= 0.1  # an iid column keeps at least the fixed line
    learned_temperature = first["columns"]["temperature"]["learned"]
    assert set(learned_temperature) == {"score", "threshold", "ratio", "excess", "counted", "past"}
    assert learned_temperature["counted"] == min(learned_temperature["excess"], 1.0)
    # Learned once per champion: the first check learned them, the later ones read them.
    assert first["learned_thresholds"]["computed_now"] is True
    assert all(s["learned_thresholds"]["computed_now"] is False for s in learned[1:])
    assert {s["learned_thresholds"]["path"] for s in learned} == {thresholds["path"]} and Path(
        thresholds["path"]
    ).is_file()
    with pytest.raises(AirflowSkipException, match="no retraining: learned drift"):
        DriftSensor(task_id="s", summary_path=first["summary_path"]).decide(first)
    history = MlflowHook().get_client().get_metric_history(first["mlflow_run_id"], "learned_drift")
    assert [m.value for m in history] == [pytest.approx(first["learned_drift"])]

    # Issue 28: learned is the operator's (and the spec's) default signal: a check that names none decides by it.
    by_default = check(champion, CALM_DAYS[1])
    assert by_default["signal"] == "learned" and by_default["dataset_drift"] is False
    assert by_default["learned_thresholds"]["path"] == thresholds["path"]

    season = check(champion, SEASON_DAY, signal="learned")
    assert season["dataset_drift"] is True and season["learned_drift"] >= 0.3, season["learned_drift"]
    assert season["columns"]["temperature"]["learned"]["past"] is True
    decision = DriftSensor(task_id="s", summary_path=season["summary_path"]).decide(season)
    assert decision["reason"] == "drift" and "temperature" in decision["drifted_columns"]
    assert decision["learned_drift"] == season["learned_drift"]


def test_without_the_training_days_the_share_decides_and_the_record_says_why(champion, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(champion["home"]))
    # A rolling reference of one day: leave-one-day-out needs two.
    summary = check(champion, CALM_DAYS[0], signal="learned", reference="rolling", reference_days=1)
    assert summary["signal"] == "share" and summary["learned_drift"] is None
    assert (
        "leave-one-day-out needs 2" in summary["signal_note"]
        and "share of drifted columns decided" in summary["signal_note"]
    )
