"""Where a demo run's wall time went, from its Airflow metadata DB (read only; a copy works too).

    .venv/bin/python bench/demo_timeline.py [path/to/airflow.db] [--gaps N]

Default DB: ``$AIRFLOW_HOME/airflow.db`` (config/embedded.env: ``.airflow/airflow.db`` of the checkout). Prints the
start-up of Airflow (scheduler job start -> first task queued), per DAG its runs, task instances, task time, span
and the wait of its tasks in the queue, the task time per task (median), the share of the span with no task
running and the longest such gaps (with the task that ended before and the one that started after), and the
bad-version phase (the manual promotion run). ``demo_wall_seconds`` (written by the demo) is printed when present.
Numbers only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def _ts(value: object) -> dt.datetime | None:
    if value is None:
        return None
    text = str(value).replace("T", " ")
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _short(dag_id: str) -> str:
    return dag_id.split("__", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(os.environ.get("AIRFLOW_HOME", ".airflow")) / "airflow.db"
    parser.add_argument("db", nargs="?", type=Path, default=default, help=f"metadata DB (default {default})")
    parser.add_argument("--gaps", type=int, default=8, help="how many of the longest idle gaps to print")
    args = parser.parse_args(argv)
    if not args.db.exists():
        print(f"error: no metadata DB at {args.db}: pass the path of a demo run's airflow.db", file=sys.stderr)
        return 2
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    tis = [
        (dag, run, task, state, _ts(q), _ts(s), _ts(e), tries, _ts(sched))
        for dag, run, task, state, q, s, e, tries, sched in con.execute(
            "SELECT dag_id, run_id, task_id, state, queued_dttm, start_date, end_date, try_number, scheduled_dttm "
            "FROM task_instance"
        )
    ]
    run_starts = {(d, r): _ts(s) for d, r, s in con.execute("SELECT dag_id, run_id, start_date FROM dag_run")}
    ran = [t for t in tis if t[5] is not None and t[6] is not None]
    if not ran:
        print(f"no finished task instance in {args.db}")
        return 1
    jobs = {
        kind: _ts(start) for kind, start in con.execute("SELECT job_type, MIN(start_date) FROM job GROUP BY job_type")
    }
    first_queued = min(t[4] or t[5] for t in ran)
    first_start = min(t[5] for t in ran)
    last_end = max(t[6] for t in ran)
    span = (last_end - first_start).total_seconds()
    print(f"DB {args.db}")
    wall = args.db.parent / "demo_wall_seconds"
    if wall.exists():
        print(f"demo's own clock (demo_wall_seconds): {wall.read_text().strip()} s")
    origin = min([v for v in jobs.values() if v] + [first_queued])
    for kind, start in sorted(jobs.items(), key=lambda kv: kv[1] or origin):
        if start:
            print(f"  {kind:<22} started at +{(start - origin).total_seconds():6.1f} s")
    print(f"  first task queued      at +{(first_queued - origin).total_seconds():6.1f} s")
    print(f"  first task started     at +{(first_start - origin).total_seconds():6.1f} s")
    print(f"  last task ended        at +{(last_end - origin).total_seconds():6.1f} s")

    busy_total = sum((t[6] - t[5]).total_seconds() for t in ran)
    print(f"\n{len(ran)} task instances ran, {busy_total:.0f} s of task time over a {span:.0f} s span "
          f"(mean concurrency {busy_total / span:.2f})")  # fmt: skip
    print(f"\n{'dag':<18} {'runs':>4} {'TIs':>4} {'task s':>7} {'first':>7} {'last':>7} {'queue wait med/sum':>19}")
    per_dag: dict[str, list[tuple]] = defaultdict(list)
    for t in ran:
        per_dag[t[0]].append(t)
    for dag, rows in sorted(per_dag.items(), key=lambda kv: min(r[5] for r in kv[1])):
        # A resumed (deferred or rescheduled) task keeps its first start: queued after it, no wait to count.
        waits = [(r[5] - r[4]).total_seconds() for r in rows if r[4] and r[4] <= r[5]]
        print(
            f"{_short(dag):<18} {len({r[1] for r in rows}):>4} {len(rows):>4} "
            f"{sum((r[6] - r[5]).total_seconds() for r in rows):>7.0f} "
            f"{(min(r[5] for r in rows) - origin).total_seconds():>7.0f} "
            f"{(max(r[6] for r in rows) - origin).total_seconds():>7.0f} "
            f"{statistics.median(waits) if waits else 0:>9.1f} / {sum(waits):>6.0f}"
        )
    print(f"\n{'task (median s, n)':<44} {'median':>7} {'max':>7} {'sum':>7}")
    per_task: dict[str, list[float]] = defaultdict(list)
    for t in ran:
        per_task[f"{_short(t[0])}.{t[2]}"].append((t[6] - t[5]).total_seconds())
    for name, durations in sorted(per_task.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {name + f' ({len(durations)})':<42} {statistics.median(durations):>7.1f} {max(durations):>7.1f} "
              f"{sum(durations):>7.0f}")  # fmt: skip

    # Idle: moments of the span with no task running.
    events = sorted(ran, key=lambda t: t[5])
    gaps: list[tuple[float, tuple, tuple]] = []
    running_until, before = events[0][6], events[0]
    for t in events[1:]:
        if t[5] > running_until:
            gaps.append(((t[5] - running_until).total_seconds(), before, t))
        if t[6] > running_until:
            running_until, before = t[6], t
    idle = sum(g[0] for g in gaps)
    print(f"\nno task running: {idle:.0f} s of the {span:.0f} s span ({100 * idle / span:.0f}%), {len(gaps)} gaps; "
          "the longest:")  # fmt: skip
    for seconds, prev, nxt in sorted(gaps, key=lambda g: -g[0])[: args.gaps]:
        print(f"  {seconds:6.1f} s at +{(prev[6] - origin).total_seconds():6.0f}: after {_short(prev[0])}.{prev[2]} "
              f"({prev[1][:32]}) -> {_short(nxt[0])}.{nxt[2]} ({nxt[1][:32]}), "
              f"queued {((nxt[5] - nxt[4]).total_seconds() if nxt[4] else 0):.1f} s before start")  # fmt: skip

    _latency(ran, gaps, run_starts)

    manual = [t for t in ran if t[1].startswith("manual__bad_version")]
    if manual:
        start, end = min(t[4] or t[5] for t in manual), max(t[6] for t in manual)
        loop_end = max(t[6] for t in ran if not t[1].startswith("manual__bad_version"))
        print(f"\nbad-version phase: {(end - start).total_seconds():.0f} s (queued "
              f"+{(start - origin).total_seconds():.0f}, {(start - loop_end).total_seconds():.0f} s after the loop's "
              "last task ended)")  # fmt: skip
        for t in sorted(manual, key=lambda t: t[5]):
            print(f"  {t[2]:<16} {(t[6] - t[5]).total_seconds():6.1f} s  {t[3]}")
    return 0


def _spread(values: list[float]) -> str:
    if not values:
        return "n=0"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return (f"median {statistics.median(ordered):5.2f}  p90 {p90:5.2f}  max {ordered[-1]:6.2f}  "
            f"sum {sum(ordered):6.0f}  n={len(ordered)}")  # fmt: skip


def _latency(ran: list[tuple], gaps: list[tuple], run_starts: dict[tuple[str, str], dt.datetime | None]) -> None:
    """The idle gaps' distribution, the wait of each task from ready to start split by stage, and the hops between
    consecutive runs of a DAG."""
    sizes = [g[0] for g in gaps]
    edges = [0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0]
    counts = [
        sum(1 for g in sizes if lo <= g < hi) for lo, hi in zip([0.0, *edges], [*edges, float("inf")], strict=True)
    ]
    labels = [
        f"<{edges[0]:g}",
        *(f"{lo:g}-{hi:g}" for lo, hi in zip(edges, edges[1:], strict=False)),
        f">={edges[-1]:g}",
    ]
    print("\nidle gaps (s): " + _spread(sizes))
    print("  histogram: " + ", ".join(f"{label} s: {n}" for label, n in zip(labels, counts, strict=True)))
    by_run: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for t in ran:
        by_run[(t[0], t[1])].append(t)
    stages: dict[str, list[float]] = {"scheduler": [], "queue": [], "start-up": [], "total": []}
    totals: dict[str, list[float]] = defaultdict(list)  # per DAG
    for key, tis in by_run.items():
        ends = sorted(t[6] for t in tis)
        for t in tis:
            start, queued, scheduled = t[5], t[4], t[8]
            if scheduled is None or queued is None or queued > start:  # resumed (deferred/rescheduled): no hop
                continue
            before = [e for e in ends if e <= start]
            ready = before[-1] if before else (run_starts.get(key) or scheduled)
            ready = min(ready, scheduled)
            stages["scheduler"].append((scheduled - ready).total_seconds())
            stages["queue"].append(max(0.0, (queued - scheduled).total_seconds()))
            stages["start-up"].append(max(0.0, (start - queued).total_seconds()))
            stages["total"].append((start - ready).total_seconds())
            totals[_short(key[0])].append((start - ready).total_seconds())
    print("ready -> started, per task instance that ran (s):")
    for name, values in stages.items():
        print(f"  {name:<10} {_spread(values)}")
    for dag, values in sorted(totals.items()):
        print(f"  total of {dag:<18} {_spread(values)}")
    hops: dict[str, list[float]] = defaultdict(list)
    per_dag: dict[str, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for (dag, run), tis in by_run.items():
        if not run.startswith("manual__bad_version"):
            per_dag[dag].append((min(t[5] for t in tis), max(t[6] for t in tis)))
    for dag, spans in per_dag.items():
        spans.sort()
        hops[_short(dag)] = [
            (b[0] - a[1]).total_seconds() for a, b in zip(spans, spans[1:], strict=False) if b[0] >= a[1]
        ]
    print("between consecutive runs of a DAG (last task's end -> the next run's first start, s; runs that overlap "
          "are left out):")  # fmt: skip
    for dag, values in sorted(hops.items()):
        print(f"  {dag:<18} {_spread(values)}")


if __name__ == "__main__":
    raise SystemExit(main())
