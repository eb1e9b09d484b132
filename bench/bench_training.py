"""Training costs: MLflow model logging (default vs ours) and training through TrainModelOperator vs bare XGBoost.

1. ``log_model``: ``mlflow.xgboost.log_model`` with MLflow's default pip-requirement inference vs the training
   entrypoint's ``log_model`` (pyfunc from code, pinned requirements), same fitted model, same local store.
2. Training wall time at 100k and 1M rows: TrainModelOperator (local runner; docker runner when an engine and
   the ``mlops-training:latest`` image exist) — data fetch from DVC, MLflow run, entrypoint process, logging,
   registration — vs a fresh process that reads the same parquet and runs bare ``xgboost.train`` with the same
   hyperparameters; and the same entrypoint started by hand on the rows the operator wrote (``entrypoint``: what
   the runner itself adds). Median of 3 with the spread. Prints numbers, never fails on a timing.

``--compare REF``: also train through the local runner with REF's ``include/training`` (the entrypoint as it was at
that git revision), interleaved with this tree's in each repeat, so both see the same load.

Usage: python bench/bench_training.py [--compare REF] [ROWS ...]    (default: 100000 1000000)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record, spread  # noqa: E402

TRAINING = PROJECT_ROOT / "include" / "training"
REPEATS = int(os.environ.get("MLOPS_BENCH_REPEATS", "3"))

SPEC_FILE = PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml"

BARE = """
import json, sys, pandas as pd, xgboost as xgb
sys.path.insert(0, sys.argv[3])
import train
schema = json.loads(sys.argv[4])
params = json.loads(sys.argv[2])
frame = pd.read_parquet(sys.argv[1])
features = train.features_of(schema, frame)
x = train.encode(frame, features["numerical"], features["categories"])
dtrain = xgb.DMatrix(x, label=train.labels(frame, schema), enable_categorical=True)
xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_depth": params["max_depth"],
    "eta": params["learning_rate"], "subsample": params["subsample"], "colsample_bytree": params["colsample_bytree"],
    "min_child_weight": params["min_child_weight"], "lambda": params["reg_lambda"], "seed": params["seed"],
    "nthread": params["nthread"]}, dtrain, num_boost_round=params["n_estimators"])
"""

LOG_MODEL = """
import sys, time, tempfile, pandas as pd, mlflow, mlflow.xgboost
sys.path.insert(0, sys.argv[2])
import json
import train
schema = json.loads(sys.argv[4])
frame = pd.read_parquet(sys.argv[1]).head(20000)
params = {"n_estimators": 20, "max_depth": 4, "learning_rate": 0.1, "subsample": 1.0, "colsample_bytree": 1.0,
          "min_child_weight": 1.0, "reg_lambda": 1.0, "threshold": 0.5, "seed": 1, "nthread": 2}
model, metrics, features = train.train(frame.iloc[4000:], frame.iloc[:4000], schema, params)
mlflow.set_tracking_uri("sqlite:///" + tempfile.mkdtemp() + "/m.db")
with mlflow.start_run():
    t = time.perf_counter()
    if sys.argv[3] == "default":
        mlflow.xgboost.log_model(model, name="model")
    else:
        train.log_model(model, features, train.model_input(frame.head(5), features))
    print(time.perf_counter() - t)
"""


def schema() -> dict:
    """The churn demo spec's schema (what the entrypoint gets as --schema)."""
    from mlops_provider.loop.spec import load_spec

    return load_spec(SPEC_FILE).entrypoint_schema()


def make_training_set(rows: int, path: Path) -> None:
    import pandas as pd

    from mlops_provider.demo.churn_source import SourceSpec, generate_day

    frame = generate_day(dt.date(2026, 11, 1), SourceSpec(rows_per_day=rows))
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    frame.to_parquet(path, index=False)


def bench_log_model(dataset: Path) -> None:
    print("\nMLflow model logging (one fitted model, local SQLite store):")
    measured: dict[str, list[float]] = {}
    for mode in ("default", "ours"):
        times = measured.setdefault(mode, [])
        for _ in range(REPEATS):
            out = subprocess.run(
                [sys.executable, "-c", LOG_MODEL, str(dataset), str(TRAINING), mode, json.dumps(schema())],
                capture_output=True,
                text=True,
                check=True,
                cwd=tempfile.gettempdir(),
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
        print(f"  {mode:<8} {spread(times)}")
    record("mlflow", "log the model (pyfunc from code, pinned requirements)", measured["ours"], measured["default"],
           baseline_name="mlflow.xgboost.log_model default", rows=100_000)  # fmt: skip


def docker_ready() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).images.get("mlops-training:latest")
    except Exception:
        return False
    return True


def training_at(ref: str, folder: Path) -> Path:
    """``include/training`` as it was at git revision ``ref``, extracted into ``folder``."""
    listing = subprocess.run(["git", "ls-tree", "--name-only", ref, "include/training/"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    folder.mkdir(parents=True)
    for name in listing:
        blob = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=PROJECT_ROOT, capture_output=True, check=True)
        (folder / Path(name).name).write_bytes(blob.stdout)
    return folder


def bench_training(rows: int, compare: str | None = None) -> None:
    from mlops_provider.hooks.dvc import DvcHook
    from mlops_provider.loop.spec import load_spec
    from mlops_provider.ml.hyperparameters import load_hyperparameter_spec, resolve
    from mlops_provider.operators.training import TrainModelOperator

    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.helpers import task_context

    params = resolve(load_hyperparameter_spec(TRAINING / "hyperparameters.json"), {})
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        os.environ["MLOPS_HOME"] = tmp
        data = Path(tmp) / "training_set.parquet"
        make_training_set(rows, data)
        print(f"Training {rows} rows: load at the start {load()}", flush=True)
        DvcHook().version_file(data, "data/bench/training_set.parquet", "bench", {})
        results: dict[str, list[float]] = {"bare": []}
        cpu: dict[str, list[float]] = {"bare": []}
        runners = ["local"] + (["docker"] if docker_ready() and not os.environ.get("MLOPS_BENCH_NO_DOCKER") else [])
        entrypoints = {"local": TRAINING / "train.py", "docker": TRAINING / "train.py"}
        if compare:
            runners.insert(0, f"local@{compare}")
            entrypoints[runners[0]] = training_at(compare, Path(tmp) / "baseline-training") / "train.py"
        for i in range(REPEATS):
            start, start_cpu = time.perf_counter(), cpu_seconds()
            subprocess.run(
                [sys.executable, "-c", BARE, str(data), json.dumps(params), str(TRAINING), json.dumps(schema())],
                check=True,
            )
            results["bare"].append(time.perf_counter() - start)
            cpu["bare"].append(cpu_seconds() - start_cpu)
            order = list(runners)
            if compare and i % 2:  # alternate which entrypoint goes first (the first pays the task's own imports)
                order[0], order[1] = order[1], order[0]
            for runner in order:
                op = TrainModelOperator(
                    task_id="train",
                    dataset_path="data/bench/training_set.parquet",
                    dataset_rev="bench",
                    entrypoint=str(entrypoints[runner]),
                    model_schema=schema(),
                    holdout=load_spec(SPEC_FILE).holdout,
                    hyperparameter_spec=str(TRAINING / "hyperparameters.json"),
                    experiment_name="bench",
                    model_name="bench",
                    runner=runner.split("@")[0],
                )
                start, start_cpu = time.perf_counter(), cpu_seconds()
                run_id = f"{runner.replace('@', '-')}-{i}"
                result = op.execute(task_context(None, dag_id="bench", run_id=run_id, task_id="train"))
                results.setdefault(runner, []).append(time.perf_counter() - start)
                cpu.setdefault(runner, []).append(cpu_seconds() - start_cpu)
                if runner == "local":  # the same entrypoint on the same rows, started by hand
                    wall, seconds = entrypoint_alone(result["run_id"], params)
                    results.setdefault("entrypoint", []).append(wall)
                    cpu.setdefault("entrypoint", []).append(seconds)
    bare, bare_cpu = statistics.median(results["bare"]), statistics.median(cpu["bare"])
    print(f"\nTraining {rows} rows ({params['n_estimators']} trees, depth {params['max_depth']}), load {load()}:")
    for name, values in results.items():
        ratio = statistics.median(values) / bare
        cpu_ratio = statistics.median(cpu[name]) / bare_cpu
        print(f"  {name:<8} wall {spread(values)}   {ratio:.2f}x bare")
        print(f"  {'':<8} CPU  {spread(cpu[name])}   {cpu_ratio:.2f}x bare")
        if name == "local" and "entrypoint" in results:
            alone = statistics.median(values) / statistics.median(results["entrypoint"])
            alone_cpu = statistics.median(cpu[name]) / statistics.median(cpu["entrypoint"])
            print(f"  {'':<8} the runner alone: {alone:.2f}x wall, {alone_cpu:.2f}x CPU the entrypoint run by hand")
        if name not in ("bare", "entrypoint") and "@" not in name:
            record("training", f"train through TrainModelOperator ({name} runner)", values, results["bare"],
                   baseline_name="bare xgboost.train process", rows=rows)  # fmt: skip


def entrypoint_alone(trained_run_id: str, params: dict) -> tuple[float, float]:
    """Wall and CPU seconds of the template entrypoint run as a bare process on the train/holdout files the operator
    wrote for ``trained_run_id``, into a new MLflow run: what the training itself costs without the operator and its
    runner (the DVC read, the split, the contract check, the holdout curves, the registration)."""
    from mlops_provider.hooks.mlflow import MlflowHook
    from mlops_provider.runtime.jobs import TrainingJob
    from mlops_provider.runtime.runners import entrypoint_environment
    from mlops_provider.utils.paths import mlops_home

    hook = MlflowHook()
    work = mlops_home() / "training" / trained_run_id
    client = hook.get_client()
    run = client.create_run(client.get_experiment_by_name("bench").experiment_id)
    job = TrainingJob(train=work / "train.parquet", holdout=work / "holdout.parquet", schema=schema(),
                      tracking_uri=hook.tracking_uri, mlflow_run_id=run.info.run_id, params=params, tags={},
                      output=work.parent / f"alone-{run.info.run_id}.json", env={})  # fmt: skip
    env = entrypoint_environment(job)  # as the local runner starts it
    start, start_cpu = time.perf_counter(), cpu_seconds()
    subprocess.run([sys.executable, str(TRAINING / "train.py"), *job.arguments()], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start, cpu_seconds() - start_cpu


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its waited-for children so far: the steadier figure on a loaded
    machine (the docker runner's container is not a child, so its CPU is not counted)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main(sizes: list[int], compare: str | None = None) -> None:
    if not compare:
        with tempfile.TemporaryDirectory() as tmp:
            dataset = Path(tmp) / "ds.parquet"
            make_training_set(100_000, dataset)
            bench_log_model(dataset)
    for rows in sizes:
        bench_training(rows, compare)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="REF", help="git revision whose include/training to run beside this one")
    parser.add_argument("rows", nargs="*", type=int)
    arguments = parser.parse_args()
    main(arguments.rows or [100_000, 1_000_000], arguments.compare)
