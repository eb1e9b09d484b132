"""DAG file parse time: each file in dags/ vs a naive copy that imports its ML libraries at top level (the factory's
file builds five DAGs per model spec: ten for the two example models).

Measured as `airflow dags report` does: a fresh interpreter fills a DagBag from the one file; the time is the
DagBag's own parse duration for the file (interpreter start and `airflow` import excluded). Prints numbers,
never fails on a timing.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

HEAVY_IMPORTS = "import mlflow, great_expectations, xgboost, dvc.api, docker, evidently, pandas\n"
REPEATS = 3

PROBE = """
import sys
sys.path.insert(0, sys.argv[2])  # the DAGs folder (Airflow puts it on sys.path)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
stats = bag.dagbag_stats
assert not bag.import_errors, bag.import_errors
print(sum(s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else s.duration for s in stats))
"""


def parse_seconds(path: Path) -> float:
    dags = str(PROJECT_ROOT / "dags")
    out = subprocess.run([sys.executable, "-c", PROBE, str(path), dags], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"{'DAG file':<24} {'ours (s)':>10} {'naive (s)':>10} {'ratio':>8}   (median of {REPEATS}; spread)")
    for dag_file in sorted((PROJECT_ROOT / "dags").glob("[!_]*.py")):
        with tempfile.TemporaryDirectory() as tmp:
            naive = Path(tmp) / dag_file.name
            source = dag_file.read_text()
            head, sep, rest = source.partition("from __future__ import annotations\n")
            naive.write_text(head + sep + HEAVY_IMPORTS + rest)
            ours = [parse_seconds(dag_file) for _ in range(REPEATS)]
            bare = [parse_seconds(naive) for _ in range(REPEATS)]
        m_ours, m_bare = statistics.median(ours), statistics.median(bare)
        print(
            f"{dag_file.name:<24} {m_ours:>10.3f} {m_bare:>10.3f} {m_bare / m_ours:>7.0f}x"
            f"   ours {min(ours):.3f}-{max(ours):.3f}, naive {min(bare):.3f}-{max(bare):.3f}"
        )
        naive_name = "ML libraries imported at top level"
        record("parse", f"parse dags/{dag_file.name} (DagBag)", ours, bare, baseline_name=naive_name)


if __name__ == "__main__":
    main()
