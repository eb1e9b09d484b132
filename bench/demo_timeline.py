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
        (dag, run, task, state, _ts(q), _ts(s), _ts(e), tries)
        for dag, run, task, state, q, s, e, tries in con.execute(
            "SELECT dag_id, run_id, task_id, state, queued_dttm, start_date, end_date, try_number FROM task_instance"
        )
    ]
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


if __name__ == "__main__":
    raise SystemExit(main())
