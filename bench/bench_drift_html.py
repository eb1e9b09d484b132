"""The drift check's report step at the demo's size (issue 31): a calm day before (Evidently's report built and its
HTML written, as every day was) and after (the metrics only, :func:`drift_scores`, no report: the report is built
and rendered only on a flagged day or with MLOPS_DRIFT_HTML=always), measured in the same run on the same frames.

Frames: the churn demo's generator, ``--rows`` rows a day (default 1,000), a 7-day training-set reference and a
7-day current window (the demo's ``window_days``), the churn spec's declared columns. Each repetition runs in the
warm process (Evidently imported once, as in a task process forked from a preloading worker), the operator's own
``_run_evidently`` for the metrics, ``_report`` and ``save_html`` into a temp file for the report and its HTML.
Prints the medians and spread; never fails on a timing.

Usage: python bench/bench_drift_html.py [--rows N] [--repeats N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record, spread  # noqa: E402

NUMERICAL = ["tenure_days", "monthly_charges", "total_charges", "sessions_7d", "avg_session_minutes",
             "support_tickets_30d", "payment_failures_90d", "discount_pct", "last_login_days_ago"]  # fmt: skip
CATEGORICAL = ["plan", "region", "device", "payment_method"]
DAY = dt.date(2026, 11, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import pandas as pd

    from mlops_provider.demo.churn_source import SourceSpec, generate_day
    from mlops_provider.operators.evidently import DriftReportOperator

    spec = SourceSpec(seed=3, rows_per_day=args.rows)
    days = [DAY - dt.timedelta(days=i) for i in range(14)][::-1]
    reference = pd.concat([generate_day(d, spec) for d in days[:7]], ignore_index=True)
    current = pd.concat([generate_day(d, spec) for d in days[7:]], ignore_index=True)
    op = DriftReportOperator(task_id="drift_report", dataset="customer_activity", model_name="churn_classifier",
                             numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)  # fmt: skip
    op._report(reference, current)  # warm-up: Evidently's first report builds its registries
    op._run_evidently(reference, current)

    metrics, with_html, html_only, cpu_metrics, cpu_html = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            t, c = time.perf_counter(), time.process_time()
            summary = op._run_evidently(reference, current)
            metrics.append(time.perf_counter() - t)
            cpu_metrics.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            op._report(reference, current).save_html(str(Path(tmp) / f"{i}.html"))
            html_only.append(time.perf_counter() - t)
            cpu_html.append(time.process_time() - c)
            with_html.append(html_only[-1])  # the report holds the metrics: before, a day built it
        size_kb = (Path(tmp) / "0.html").stat().st_size / 1024
    columns = len(NUMERICAL) + len(CATEGORICAL)
    print(f"drift check at {args.rows} rows/day, {len(reference)} reference x {len(current)} current rows, "
          f"{columns} columns; calm day: dataset_drift={summary['dataset_drift']}")  # fmt: skip
    print(f"  before (metrics + HTML): {spread(with_html)}")
    print(f"  after  (metrics only):   {spread(metrics)}")
    print(f"  the report + its HTML:   {spread(html_only)}; {size_kb:.0f} KB a report")
    cpu_before = statistics.median(cpu_html)
    print(f"  CPU time (less sensitive to other load): before {cpu_before:.2f} s, after "
          f"{statistics.median(cpu_metrics):.2f} s")  # fmt: skip
    print(f"  saved per calm day: {statistics.median(with_html) - statistics.median(metrics):.2f} s "
          f"({1 - statistics.median(metrics) / statistics.median(with_html):.0%} of the step)")  # fmt: skip
    import os

    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    record("drift", "drift check, calm day: metrics only vs metrics + HTML (demo size)", metrics, with_html,
           baseline_name="metrics + HTML (every day, before issue 31)", rows=len(current))  # fmt: skip


if __name__ == "__main__":
    main()
