"""``mlops`` command line: project chores that are not tasks (seeding the demo source)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def _seed_source(args: argparse.Namespace) -> int:
    try:
        from mlops_provider.demo.churn_source import SourceSpec, dates_between, parse_bad_dates, seed_range
    except ModuleNotFoundError:
        print(
            "mlops seed-source: the demo source generator is not part of the installed package; run it from a clone "
            "of the repository (uv sync; .venv/bin/mlops seed-source ...)",
            file=sys.stderr,
        )
        return 2

    if args.url:
        from sqlalchemy import create_engine

        engine = create_engine(args.url)
    else:
        from airflow.sdk import BaseHook

        engine = BaseHook.get_hook(args.conn_id).get_sqlalchemy_engine()
    spec = SourceSpec(
        seed=args.seed,
        rows_per_day=args.rows_per_day,
        drift_from=dt.date.fromisoformat(args.drift_from) if args.drift_from else None,
        bad_dates=parse_bad_dates(args.bad),
    )
    days = dates_between(dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end))
    written = seed_range(engine, days, spec)
    for day, rows in written.items():
        marks = []
        if spec.drift_from and day >= spec.drift_from:
            marks.append("drift")
        if day in spec.bad_dates:
            marks.append(f"bad:{spec.bad_dates[day]}")
        print(f"{day}  {rows:>7} rows  {' '.join(marks)}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    import logging

    from mlops_provider.reproduce import reproduce_run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = reproduce_run(
        args.run_id, mlflow_conn_id=args.mlflow_conn_id, dvc_conn_id=args.dvc_conn_id, tolerance=args.tolerance
    )
    print(f"original run {report['original_run_id']} -> reproduction {report['run_id']}")
    print(f"{'metric':<36} {'original':>14} {'reproduced':>14} {'|diff|':>10}")
    for name, before, after, diff in report["metrics"]:
        shown = "missing" if after is None else f"{after:14.9f}"
        print(f"{name:<36} {before:14.9f} {shown:>14} {diff:10.2e}")
    verdict = "equal" if report["equal"] else "DIFFERENT"
    print(f"{verdict}: max |diff| {report['max_abs_diff']:.3e} (tolerance {args.tolerance:g})")
    return 0 if report["equal"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description="airflow-provider-mlops commands")
    sub = parser.add_subparsers(dest="command", required=True)

    seed = sub.add_parser("seed-source", help="fill the demo churn source for a date range (idempotent)")
    target = seed.add_mutually_exclusive_group()
    target.add_argument("--conn-id", default="mlops_source", help="Airflow connection of the source database")
    target.add_argument("--url", help="SQLAlchemy URL of the source database instead of a connection")
    seed.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    seed.add_argument("--end", required=True, help="last date (inclusive), YYYY-MM-DD")
    seed.add_argument("--drift-from", help="first date with drifted data, YYYY-MM-DD")
    seed.add_argument("--bad", action="append", default=[], metavar="DATE=KIND", help="bad data on a date")
    seed.add_argument("--rows-per-day", type=int, default=2000)
    seed.add_argument("--seed", type=int, default=42)
    seed.set_defaults(func=_seed_source)

    rep = sub.add_parser("reproduce", help="re-train an MLflow run from its logged data rev, config and image")
    rep.add_argument("run_id", help="MLflow run id of a TrainModelOperator run")
    rep.add_argument("--mlflow-conn-id", default="mlflow_default")
    rep.add_argument("--dvc-conn-id", default="dvc_default")
    rep.add_argument("--tolerance", type=float, default=1e-9, help="largest metric difference that counts as equal")
    rep.set_defaults(func=_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"mlops {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
