"""Ingest + validate + version one partition: in chunks (the default) vs the whole partition in one frame.

For each size, a SQLite source holds one day of N rows. Both sides run SqlToParquetOperator,
GreatExpectationsValidateOperator and DvcVersionOperator. "ours" uses the default ``chunk_rows`` (250,000 rows
fetched, written and validated at a time); the baseline is the whole-frame path that was the only one before
issue 18 (one fetch of every row, one GX run on one DataFrame: ``chunk_rows=None`` for validation). Both must pass
the suite; their verdicts are compared by tests/integration/test_validation.py. Each measurement runs in a fresh
process (interpreter start and imports included, as a task pays them); wall time is the median of the runs
(3 below 10M rows, 1 from 10M) with the spread, memory is the process's peak RSS. Prints numbers, never fails on
a timing. A baseline projected not to fit in memory is not run.

Each stage's own peak RSS is printed too (extract, validate, version: the kernel's peak is reset between them).

``--validate-only`` measures the validation stage alone, in batches, on a parquet file written straight from the
generator (the same rows, columns and dtypes the extract writes, row groups of 250,000 rows, seeded in pieces with
disjoint ids like the SQLite source): seeding a 50M-row SQLite source row by row takes hours on a loaded machine,
and validation is the stage whose memory must stay flat in rows. It prints the peak RSS, the wall time and the RSS
over time (sampled every few seconds), so growth with the rows read can be seen.

``--validate-only`` options: ``--data DIR`` keeps the seeded files in DIR (``day-<rows>.parquet``) and reuses them
in a later run; ``--generated-pieces K`` generates only the first K pieces of 5M rows and writes the others as
copies of them with their ids moved to the piece's own disjoint range (``piece_of_day``'s scheme; the same
values otherwise: seeding 50M rows through the generator takes 40+ min on a loaded machine, a copy seconds);
``--compare REF`` validates each file with REF's ``src`` too (a detached ``git worktree``, this virtual
environment), alternating REF and this checkout ``--rounds N`` times (default 1): the before/after of a change in
the same run.

Usage: python bench/bench_ingest.py [--chunks-only | --validate-only [--data DIR] [--generated-pieces K]
[--compare REF [--rounds N]]] [ROWS ...]     (default: 100000 1000000; --chunks-only skips the whole-frame baseline)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import does_not_fit, record  # noqa: E402

SUITE = PROJECT_ROOT / "include" / "gx" / "expectations" / "customer_activity.json"
DAY = dt.date(2026, 11, 1)
SEED_PIECE = 5_000_000  # rows generated at a time when seeding (a 10M piece took 6.5 GB to generate and insert)
WHOLE = "whole"

OURS = """
import sys
sys.path.insert(0, sys.argv[2])
from tests.helpers import task_context
from mlops_provider.operators.sql import SqlToParquetOperator
from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
from mlops_provider.operators.dvc import DvcVersionOperator
import datetime as dt, json, resource
def stage_peak():  # this process's peak RSS (MB) since the last reset, then reset it (clear_refs 5: VmHWM)
    with open("/proc/self/status") as handle:
        peak = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return round(peak)
peaks = {"imports": stage_peak()}
day = dt.date.fromisoformat(sys.argv[1])
chunk = None if sys.argv[4] == "whole" else int(sys.argv[4])
staged = SqlToParquetOperator(task_id="extract", conn_id="mlops_source", table="customer_activity",
    timestamp_column="event_ts", parse_dates=["event_ts", "signup_date"], dataset="customer_activity",
    chunk_rows=chunk or 10**12,
).execute(task_context(day))
peaks["extract"] = stage_peak()
GreatExpectationsValidateOperator(task_id="validate", data_path=staged["path"], suite_path=sys.argv[3],
    dataset="customer_activity", partition=str(day), chunk_rows=chunk).execute(task_context(day))
peaks["validate"] = stage_peak()
DvcVersionOperator(task_id="version", source_path=staged["path"],
    target_path=f"data/customer_activity/partitions/{day}.parquet", tag=f"partition/customer_activity/{day}",
).execute(task_context(day))
peaks["version"] = stage_peak()
# ru_maxrss is the kernel's peak, reset with it between the stages: the process's peak is the largest stage's
print(json.dumps({"max": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, *peaks.values()), **peaks}))
"""

VALIDATE_ONLY = """
import sys, threading, time
sys.path.insert(0, sys.argv[2])
from tests.helpers import task_context
from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
import datetime as dt, json, resource
def rss():
    with open("/proc/self/status") as handle:
        return round(next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024)
samples, start, done = [], time.perf_counter(), threading.Event()
def sample():  # the RSS over time: flat or growing with the batches read
    while not done.wait(float(sys.argv[5])):
        samples.append((round(time.perf_counter() - start), rss()))
imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
threading.Thread(target=sample, daemon=True).start()
day = dt.date.fromisoformat(sys.argv[1])
summary = GreatExpectationsValidateOperator(task_id="validate", data_path=sys.argv[4], suite_path=sys.argv[3],
    dataset="customer_activity", partition=str(day), chunk_rows=250000).execute(task_context(day))
done.set()
import mlops_provider
print(json.dumps({"max": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "imports": imports,
    "seconds": time.perf_counter() - start, "batches": summary["batches"], "success": summary["success"],
    "failed": summary["failed_expectations"], "samples": samples, "cpu": time.process_time(),
    "src": mlops_provider.__file__}))
"""


def seed_parquet(path: Path, rows: int, piece_rows: int = SEED_PIECE, generated: int | None = None) -> None:
    """One day of about ``rows`` rows as the extract writes it (``event_ts``, ``signup_date`` as timestamps, row
    groups of 250,000 rows), generated in a child process ``piece_rows`` rows at a time (pieces of
    ``churn_source.piece_of_day``: disjoint ids), one piece in memory at a time.

    With ``generated`` only the first ``generated`` pieces come from the generator (or from the file of exactly
    those pieces, ``day-<generated x piece_rows>.parquet`` beside ``path``, when it exists); piece k after them is
    a copy of piece ``k % generated`` with its ids moved as ``piece_of_day`` moves piece k's (event ids prefixed
    ``k-``, customer numbers shifted into ``[k * span, (k + 1) * span)``), so the day still passes the uniqueness
    checks. The copies are made a row group at a time (generating a 5M piece takes ~6 GB; nothing more is held)."""
    pieces = -(-rows // piece_rows)
    if not generated or generated >= pieces:
        _generate(path, rows, piece_rows)
        return
    base = path.parent / f"day-{generated * piece_rows}.parquet"
    made = not base.exists()
    if made:
        base = path.with_suffix(".base")
        _generate(base, generated * piece_rows, piece_rows)
    code = (
        "import sys, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq\n"
        "from mlops_provider.demo.churn_source import PIECE_ID_SPAN\n"
        "path, base, generated, pieces = sys.argv[1], pq.ParquetFile(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])\n"
        "def piece_of(table):  # piece 0's event ids have no prefix, piece k's start with 'k-'\n"
        "    head = table['event_id'][0].as_py().split('-', 1)[0]\n"
        "    return int(head) if len(head) < 4 else 0\n"
        "def moved(table, base, piece):\n"
        "    event = table['event_id']\n"
        "    event = (pc.utf8_replace_slice(event, start=0, stop=len(str(base)), replacement=str(piece)) if base\n"
        "             else pc.binary_join_element_wise(f'{piece}-', event, ''))\n"
        "    number = pc.add(pc.cast(pc.utf8_slice_codeunits(table['customer_id'], start=1), pa.int64()),\n"
        "                    (piece - base) * PIECE_ID_SPAN)\n"
        "    customer = pc.binary_join_element_wise('C', pc.cast(number, pa.string()), '')\n"
        "    table = table.set_column(table.schema.get_field_index('event_id'), 'event_id', event)\n"
        "    return table.set_column(table.schema.get_field_index('customer_id'), 'customer_id', customer)\n"
        "writer = pq.ParquetWriter(path, base.schema_arrow)\n"
        "for piece in range(pieces):\n"
        "    for group in range(base.num_row_groups):\n"
        "        table = base.read_row_group(group)\n"
        "        source = piece_of(table)\n"
        "        if source == piece % generated:\n"
        "            writer.write_table(table if source == piece else moved(table, source, piece))\n"
        "writer.close()\n"
    )
    try:
        subprocess.run([sys.executable, "-c", code, str(path), str(base), str(generated), str(pieces)], check=True)
    finally:
        if made:
            base.unlink(missing_ok=True)


def _generate(path: Path, rows: int, piece_rows: int) -> None:
    code = (
        "import sys, datetime as dt, pandas as pd, pyarrow as pa, pyarrow.parquet as pq\n"
        "from mlops_provider.demo.churn_source import piece_of_day\n"
        "path, day, rows, size = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])\n"
        "writer = None\n"
        "for piece, start in enumerate(range(0, rows, size)):\n"
        "    frame = piece_of_day(day, min(size, rows - start), piece)\n"
        "    for column in ('event_ts', 'signup_date'):\n"
        "        frame[column] = pd.to_datetime(frame[column], errors='coerce')\n"
        "    table = pa.Table.from_pandas(frame, preserve_index=False)\n"
        "    del frame\n"
        "    writer = writer or pq.ParquetWriter(path, table.schema)\n"
        "    writer.write_table(table.cast(writer.schema), row_group_size=250000)\n"
        "    del table\n"
        "writer.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), DAY.isoformat(), str(rows), str(piece_rows)], check=True)


def validate_only(
    sizes: list[int],
    data: Path | None = None,
    generated: int | None = None,
    compare: str | None = None,
    rounds: int = 1,
) -> None:
    """Validation alone, in batches of 250,000 rows, on a parquet file of each size (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        roots: list[tuple[str, Path]] = [("HEAD", PROJECT_ROOT)]
        if compare:
            base = Path(tmp) / "base"
            subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "add", "-q", "--detach", str(base), compare],
                           check=True)  # fmt: skip
            roots = [(compare[:12], base), *roots]
        try:
            for rows in sizes:
                folder = data or Path(tmp)
                folder.mkdir(parents=True, exist_ok=True)
                path, seeded = folder / f"day-{rows}.parquet", 0.0
                if not path.exists():
                    start = time.perf_counter()
                    seed_parquet(path.with_suffix(".tmp"), rows, generated=generated)
                    path.with_suffix(".tmp").rename(path)
                    seeded = time.perf_counter() - start
                    print(f"{rows:>9} seeded in {seeded:.0f} s ({path})", flush=True)
                suite = suite_for(rows, Path(tmp))
                for turn in range(rounds):
                    for name, root in roots:
                        validate_file(rows, path, suite, name, root, Path(tmp) / f"home-{rows}-{turn}-{len(name)}")
        finally:
            if compare:
                subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "remove", "--force", str(roots[0][1])])


def validate_file(rows: int, path: Path, suite: Path, name: str, root: Path, home: Path) -> None:
    """One measured validation of ``path`` by the ``src`` of ``root`` in a fresh process (MLOPS_HOME ``home``)."""
    env = dict(os.environ, MLOPS_HOME=str(home), PYTHONPATH=str(root / "src"))
    every = "5" if rows < 10_000_000 else "20"
    load = os.getloadavg()[0]
    args = [sys.executable, "-c", VALIDATE_ONLY, DAY.isoformat(), str(PROJECT_ROOT), str(suite), str(path), every]
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out["src"].startswith(str(root / "src")):
        raise SystemExit(f"{name}: the child ran {out['src']}, not {root / 'src'}")
    curve = ", ".join(f"{t}s {mb}" for t, mb in out["samples"])
    load = f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    growth = growth_per_row(out["samples"], out["seconds"], rows)
    print(
        f"{rows:>9} {name} validate only: {out['seconds']:.1f} s wall, {out['cpu']:.1f} s CPU,"
        f" {out['batches']} batches, peak RSS {out['max']:.0f} MB (imports {out['imports']:.0f} MB), {growth},"
        f" success {out['success']} ({load})",
        flush=True,
    )
    if not out["success"]:
        print(f"{rows:>9} failed: {json.dumps(out['failed'])[:1000]}")
    print(f"{rows:>9} {name} RSS over time (MB): {curve}", flush=True)
    record(
        "ingest-validate",
        f"validate in batches of 250,000 rows (parquet written by the generator), {name}",
        [out["seconds"]],
        None,
        ours_mb=out["max"],
        rows=rows,
        note=f"{out['batches']} batches, success {out['success']}, {load}; RSS over time (s, MB): {out['samples']}",
    )


def growth_per_row(samples: list[list[int]], seconds: float, rows: int) -> str:
    """RSS growth in bytes a row between the first and last fifth of the run (rows read taken as proportional to
    the time: batches cost about the same)."""
    early = [mb for t, mb in samples if t <= seconds / 5]
    late = [mb for t, mb in samples if t >= 4 * seconds / 5]
    if not early or not late or seconds <= 0:
        return "growth n/a"
    mid_early = statistics.median(t for t, _ in samples if t <= seconds / 5)
    mid_late = statistics.median(t for t, _ in samples if t >= 4 * seconds / 5)
    span = (mid_late - mid_early) / seconds * rows
    if span <= 0:
        return "growth n/a"
    per_row = (max(late) - max(early)) * 1024 * 1024 / span
    return f"growth {per_row:.1f} bytes a row (max RSS of the first vs last fifth)"


def seed(db: Path, rows: int) -> None:
    """One day of ``rows`` rows in a SQLite source, written by child processes (so the memory of generating
    millions of rows is not held by this process while the measured ones run), 5M rows at a time: piece k has
    its own seed and ids disjoint from the other pieces' (``churn_source.piece_of_day``: event ids prefixed
    ``k-``, customer numbers in their own range), so a 50M-row day passes the suite's uniqueness checks."""
    code = (
        "import sys, datetime as dt; from sqlalchemy import create_engine\n"
        "from mlops_provider.demo.churn_source import create_table, piece_of_day\n"
        "engine, day, rows, piece = create_engine('sqlite:///' + sys.argv[1]), dt.date.fromisoformat(sys.argv[2]),"
        " int(sys.argv[3]), int(sys.argv[4])\n"
        "create_table(engine)\n"
        "piece_of_day(day, rows, piece).to_sql('customer_activity', engine, if_exists='append', index=False,"
        " chunksize=5000)\n"
    )
    for piece, start in enumerate(range(0, rows, SEED_PIECE)):
        size = min(SEED_PIECE, rows - start)
        subprocess.run([sys.executable, "-c", code, str(db), DAY.isoformat(), str(size), str(piece)], check=True)


def suite_for(rows: int, folder: Path) -> Path:
    """The demo suite with its row-count bound widened to admit ``rows`` (the bench measures cost at sizes the
    demo's business rule would quarantine; every other expectation is unchanged)."""
    suite = json.loads(SUITE.read_text())
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_table_row_count_to_be_between":
            kwargs = expectation["kwargs"]
            kwargs["max_value"] = max(int(kwargs.get("max_value") or 0), 2 * rows)
    path = folder / SUITE.name
    path.write_text(json.dumps(suite))
    return path


def measure(code: str, env: dict[str, str], *args: str) -> tuple[float, float, dict[str, float]]:
    """(wall seconds of the whole process, its peak RSS in MB, the peak RSS of each stage in MB): a fresh
    interpreter, imports included."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    peaks = json.loads(proc.stdout.strip().splitlines()[-1])
    return wall, float(peaks.pop("max")), peaks


def recorded_peaks() -> dict[str, dict[int, float]]:
    """Peaks of earlier ingest rows in docs/benchmarks.json (this machine's last full run): a size run alone (50M)
    is still projected from the smaller ones, so a side that cannot fit is not started."""
    peaks: dict[str, dict[int, float]] = {"ours": {}, "whole": {}}
    recorded = PROJECT_ROOT / "docs" / "benchmarks.json"
    for row in json.loads(recorded.read_text()) if recorded.exists() else []:
        if row.get("stage") == "ingest" and row.get("rows"):
            for side, key in (("ours", "ours_mb"), ("whole", "baseline_mb")):
                if row.get(key):
                    peaks[side][int(row["rows"])] = float(row[key])
    return peaks


def main(sizes: list[int], chunks_only: bool = False) -> None:
    print(f"{'rows':>9} {'chunks s':>9} {'whole s':>8} {'ratio':>6} {'chunks MB':>10} {'whole MB':>9}   spread")
    peaks = recorded_peaks()
    for rows in sizes:
        skip = {side: does_not_fit(peaks[side], rows) for side in peaks}
        if chunks_only:
            skip["whole"] = "not run (--chunks-only)"
        if skip["ours"]:
            print(f"{rows:>9} chunks {skip['ours']}")
            record("ingest", "extract + validate + version", [], None, rows=rows, note=f"ours {skip['ours']}")
            continue
        repeats = 3 if rows < 10_000_000 else 1
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            home = Path(tmp)
            seed(home / "source.db", rows)
            suite = suite_for(rows, home)
            env = dict(
                os.environ,
                MLOPS_HOME=str(home),
                AIRFLOW_CONN_MLOPS_SOURCE=json.dumps({"conn_type": "sqlite", "host": str(home / "source.db")}),
            )
            times: dict[str, list[float]] = {"ours": [], "whole": []}
            mbs: dict[str, list[float]] = {"ours": [], "whole": []}
            stages: dict[str, dict[str, float]] = {"ours": {}, "whole": {}}
            for _ in range(repeats):
                for side, chunk in (("ours", "250000"), ("whole", WHOLE)):
                    if skip[side]:
                        continue
                    # Clear the tag so the same partition is versioned again (a new day would need new data).
                    subprocess.run(
                        ["git", "-C", str(home / "data-registry"), "tag", "-d", f"partition/customer_activity/{DAY}"],
                        capture_output=True,
                    )
                    w, m, by_stage = measure(OURS, env, str(DAY), str(PROJECT_ROOT), str(suite), chunk)
                    for stage, mb in by_stage.items():
                        stages[side][stage] = max(mb, stages[side].get(stage, 0.0))
                    times[side].append(w)
                    mbs[side].append(m)
        for side, by_stage in stages.items():
            if by_stage:
                shown = ", ".join(f"{k} {v:.0f}" for k, v in by_stage.items())
                print(f"{rows:>9} {side} peak RSS by stage (MB): {shown}")
        ours, whole = times["ours"], times["whole"]
        peaks["ours"][rows] = max(mbs["ours"])
        mo = statistics.median(ours)
        if whole:
            peaks["whole"][rows] = max(mbs["whole"])
            mw = statistics.median(whole)
            print(
                f"{rows:>9} {mo:>9.2f} {mw:>8.2f} {mo / mw:>5.2f}x {max(mbs['ours']):>10.0f} {max(mbs['whole']):>9.0f}"
                f"   chunks {min(ours):.2f}-{max(ours):.2f}, whole {min(whole):.2f}-{max(whole):.2f}"
            )
        else:
            print(f"{rows:>9} {mo:>9.2f} {'-':>8} {'-':>6} {max(mbs['ours']):>10.0f}   whole frame {skip['whole']}")
        record("ingest", "extract + validate + version", ours, whole or None,
               baseline_name="whole frame (chunk_rows=None, before issue 18)", ours_mb=max(mbs["ours"]),
               baseline_mb=max(mbs["whole"]) if mbs["whole"] else None, rows=rows,
               note="; ".join(filter(None, [f"whole frame {skip['whole']}" if skip["whole"] else "",
                                            "peak MB by stage: " + json.dumps(stages["ours"])])))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--chunks-only", action="store_true")
    parser.add_argument("--validate-only", action="store_true")
    parser.add_argument("--data", type=Path, help="--validate-only: keep and reuse the seeded files in DIR")
    parser.add_argument("--generated-pieces", type=int, help="--validate-only: pieces from the generator, then copies")
    parser.add_argument("--compare", metavar="REF", help="--validate-only: also validate with REF's src (first)")
    parser.add_argument("--rounds", type=int, default=1, help="--validate-only: alternations of REF and ours")
    args = parser.parse_args()
    if args.validate_only:
        validate_only(args.sizes, args.data, args.generated_pieces, args.compare, args.rounds)
    else:
        main(args.sizes, chunks_only=args.chunks_only)
