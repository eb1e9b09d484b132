"""DAG file parse cost as Airflow 3's dag processor pays it, against a floor of as many plain DAGs and tasks.

The measure of ``/work/shared/tools/parse-ratio`` (issue 31): a process loads the dag-processing manager, then
forks one child per parse; the child fills a ``DagBag`` from ``dags/mlops_models.py`` (fastest of REPEATS forks:
load only adds). The floor is a file parsed the same way in the same run holding as many DAGs with as many tasks
(Airflow's own EmptyOperator chained, one TriggerDagRunOperator per DAG). Rows: the repository's 2 models, then
10 and 50 generated specs (copies of the churn spec under other names in a temp folder), and the growth per added
model (between 10 and 50) of ours and of the floor.

Two byte-code states, each its own interpreter: ``no .pyc`` (PYTHONDONTWRITEBYTECODE and no cache: every module the
parse imports is compiled again, as on this machine's venv and for the project's src in the image) and ``.pyc``
(a byte-code cache filled by a first parse, as a deployment that compiles its packages has). Wall and CPU time of
the child. Prints numbers, never fails on a timing.

Usage: python bench/bench_parse.py [--compare BASE_REF] [N ...]   (default: 10 50 generated specs)

``--compare BASE_REF`` measures BASE_REF's ``src``/``dags`` too (a detached ``git worktree`` in a temp folder, run by
this virtual environment), in the same run, before ours: the before/after of a change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

REPEATS = int(os.environ.get("MLOPS_BENCH_REPEATS", "7"))

CHILD = r"""
import json, logging, os, sys, tempfile, time
logging.disable(logging.INFO)
import airflow.dag_processing.manager, airflow.dag_processing.processor  # noqa: F401 (the manager's state)
from airflow.dag_processing.dagbag import DagBag
dag_file, folders, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])

def parse(path, models_dir=None):
    best = None
    for _ in range(repeats):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            if models_dir:
                os.environ["MLOPS_MODELS_DIR"] = models_dir
            wall, cpu = time.perf_counter(), time.process_time()
            bag = DagBag(dag_folder=path)
            out = [time.perf_counter() - wall, time.process_time() - cpu,
                   [len(d.tasks) for d in bag.dags.values()], len(bag.import_errors)]
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.waitpid(pid, 0)
        wall, cpu, tasks, errors = json.loads(data)
        if best is None or wall < best[0]:
            best = (wall, min(cpu, best[1]) if best else cpu, tasks, errors)
        else:
            best = (best[0], min(cpu, best[1]), tasks, errors)
    return best

def floor_file(task_counts):
    body = ["import pendulum", "from airflow.sdk import DAG, chain",
            "from airflow.providers.standard.operators.empty import EmptyOperator",
            "from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator"]
    for i, n in enumerate(task_counts):
        body += [f"with DAG('floor{i}', schedule='@daily', start_date=pendulum.datetime(2026, 1, 1)):",
                 f"    chain(*[EmptyOperator(task_id=f't{{j}}') for j in range({max(n - 1, 0)})], "
                 "TriggerDagRunOperator(task_id='trigger', trigger_dag_id='x'))"]
    path = os.path.join(tempfile.mkdtemp(), "floor_dags.py")
    open(path, "w").write("\n".join(body) + "\n")
    return path

rows = []
for label, folder in folders:
    wall, cpu, tasks, errors = parse(dag_file, folder)
    f_wall, f_cpu, _, _ = parse(floor_file(tasks or [7]))
    rows.append({"label": label, "dags": len(tasks), "tasks": sum(tasks), "errors": errors,
                 "wall": wall, "cpu": cpu, "floor_wall": f_wall, "floor_cpu": f_cpu,
                 "heavy": [m for m in ("mlflow", "great_expectations", "evidently", "xgboost", "dvc", "pandas",
                                       "sklearn", "docker") if m in sys.modules]})
print(json.dumps(rows))
"""


def base_checkout(ref: str, folder: Path) -> Path:
    """A detached worktree of ``ref`` under ``folder`` (removed by :func:`main` when done)."""
    target = folder / "base"
    subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "add", "-q", "--detach", str(target), ref], check=True)
    return target


def generated_specs(count: int, folder: Path) -> Path:
    """``count`` copies of the churn spec, each its own model (``churn_<i>``) on the churn dataset, with the
    paths it names made absolute (the copies live outside include/models)."""
    source = (PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml").read_text()
    include = PROJECT_ROOT / "include"
    source = source.replace("../", f"{include}/")
    target = folder / f"specs-{count}"
    target.mkdir()
    for i in range(count):
        text = source.replace("name: churn_classifier\n", f"name: churn_{i:03d}\n", 1)
        (target / f"churn_{i:03d}.yaml").write_text(text)
    return target


def measure(folders: list[tuple[str, str | None]], compiled: bool, cache: str, root: Path = PROJECT_ROOT) -> list[dict]:
    env = dict(os.environ, AIRFLOW__CORE__LOAD_EXAMPLES="False",
               PYTHONPATH=os.pathsep.join(str(root / p) for p in ("src", "plugins", "dags")))  # fmt: skip
    env["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="bench-parse-airflow-")
    if compiled:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-parse-empty-cache-")
    dag_file = str(root / "dags" / "mlops_models.py")
    args = [sys.executable, "-c", CHILD, dag_file]
    if compiled:  # fill the cache: one parse of every folder
        subprocess.run([*args, json.dumps(folders), "1"], env=env, capture_output=True, check=True)
    out = subprocess.run([*args, json.dumps(folders), str(REPEATS)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(counts: list[int], base: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folders: list[tuple[str, str | None]] = [("2 models (include/models)", None)]
        folders += [(f"{n} models (generated)", str(generated_specs(n, Path(tmp)))) for n in counts]
        print(f"DagBag of dags/mlops_models.py in a forked child vs a floor of as many plain DAGs and tasks "
              f"(fastest of {REPEATS}; cpu: the child's CPU time, least of them)")  # fmt: skip
        roots = [("HEAD", PROJECT_ROOT)]
        if base:
            roots.insert(0, (base, base_checkout(base, Path(tmp))))
        try:
            for name, root in roots:
                report(name, root, folders, counts, Path(tmp) / f"pycache-{len(name)}-{abs(hash(name))}")
        finally:
            if base:
                subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "remove", "--force", str(roots[0][1])])
        print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def report(name: str, root: Path, folders: list[tuple[str, str | None]], counts: list[int], cache: Path) -> None:
    """Print (and record) the rows of one checkout."""
    for compiled in (False, True):
        state = ".pyc" if compiled else "no .pyc"
        rows = measure(folders, compiled, str(cache), root)
        for row in rows:
            ratio, cpu_ratio = row["wall"] / row["floor_wall"], row["cpu"] / row["floor_cpu"]
            problems = (f" heavy: {row['heavy']}" if row["heavy"] else "") + (
                f" import errors: {row['errors']}" if row["errors"] else ""
            )
            print(
                f"  {name:>8} [{state:7}] {row['label']:<26} {row['dags']:>3} DAGs {row['tasks']:>4} tasks: "
                f"{row['wall']:.3f} s vs floor {row['floor_wall']:.3f} s = {ratio:.2f}x "
                f"(cpu {row['cpu']:.3f} vs {row['floor_cpu']:.3f} = {cpu_ratio:.2f}x){problems}"
            )
            record("parse", f"parse {row['label']} [{state}] {name} vs floor (DagBag, forked)", [row["wall"]],
                   [row["floor_wall"]], baseline_name="floor: as many plain DAGs and tasks")  # fmt: skip
        if len(rows) >= 3:
            lo, hi = rows[-2], rows[-1]
            models = counts[-1] - counts[-2]
            print(
                f"  {name:>8} [{state:7}] growth per added model ({counts[-2]} -> {counts[-1]}): "
                f"ours {1000 * (hi['wall'] - lo['wall']) / models:.1f} ms, "
                f"floor {1000 * (hi['floor_wall'] - lo['floor_wall']) / models:.1f} ms "
                f"(cpu ours {1000 * (hi['cpu'] - lo['cpu']) / models:.1f} ms, "
                f"floor {1000 * (hi['floor_cpu'] - lo['floor_cpu']) / models:.1f} ms)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="BASE_REF", help="also measure this git ref, before ours")
    parser.add_argument("counts", nargs="*", type=int, help="generated spec counts (default: 10 50)")
    args = parser.parse_args()
    main(args.counts or [10, 50], args.compare)
