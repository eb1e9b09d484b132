"""``mlops`` command line: project chores that are not tasks (checking specs, seeding the demo source, ...)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path


def _seed_source(args: argparse.Namespace) -> int:
    try:
        from mlops_provider.demo import DEFAULT_SOURCE, SOURCES, SourceSpec, dates_between, parse_bad_dates, seed_range
    except ModuleNotFoundError:
        print(
            "mlops seed-source: the demo source generator is not part of the installed package; run it from a clone "
            "of the repository (uv sync; .venv/bin/mlops seed-source ...)",
            file=sys.stderr,
        )
        return 2

    engine = _engine(args)
    spec = SourceSpec(
        seed=args.seed,
        rows_per_day=args.rows_per_day,
        drift_from=dt.date.fromisoformat(args.drift_from) if args.drift_from else None,
        bad_dates=parse_bad_dates(args.bad),
    )
    days = dates_between(dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end))
    args.table = args.table or DEFAULT_SOURCE
    if args.table not in SOURCES:
        print(f"mlops seed-source: --table {args.table!r} is not a demo table: {sorted(SOURCES)}", file=sys.stderr)
        return 2
    source = SOURCES[args.table]
    written = seed_range(engine, days, spec, source)
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

    from mlops_provider.cli.reproduce import reproduce_run

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


def _spec_check(args: argparse.Namespace) -> int:
    """Check each PATH as the DAG factory reads it: a folder is every spec in it plus the rules across files; a file
    is checked with the specs beside it, so a name another file has is not ``ok``."""
    from mlops_provider.loop.spec import SpecError, SpecFolder, check_folder, load_spec

    failed = 0
    checked: dict[Path, SpecFolder] = {}
    for given in args.paths:
        path = Path(given).resolve()
        folder = path if path.is_dir() else path.parent
        try:
            if not path.exists():
                raise SpecError(f"{path}: no such file or folder")
            if folder not in checked:
                checked[folder] = check_folder(folder)
            if path.is_file() and path.suffix.lower() not in (".yaml", ".yml"):
                load_spec(path)  # not a spec file: raises, naming the suffix the factory reads
        except SpecError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        result = checked[folder]
        if path.is_dir():
            specs, problems = result.specs, result.problems
            if not specs and not problems:
                print(f"{path}: no model spec (*.yaml) in this folder", file=sys.stderr)
                failed += 1
        else:
            problems = [p for p in result.problems if p.involves(path)]
            specs = [s for s in result.specs if s.path == path and not problems]
        for spec in specs:
            features = len(spec.features.columns)
            print(f"{spec.path}: ok (model {spec.name}, dataset {spec.dataset.name}, {features} features)")
            note = _source_table_note(spec)
            if note:
                print(note, file=sys.stderr)
            labels = _labelled_rows_note(spec)
            if labels:
                print(labels, file=sys.stderr)
        for problem in problems:
            print(problem.message, file=sys.stderr)
        failed += len(problems)
    return 1 if failed else 0


def _labelled_rows_note(spec) -> str | None:  # noqa: ANN001 (a ModelSpec)
    """A warning when a label window of days at the validation suite's minimum row count holds fewer labelled
    holdout rows than ``monitoring.min_labelled_rows`` (None: enough, or the suite sets no row count)."""
    import json

    from mlops_provider.ml.label_check import labelled_rows_warning, suite_min_rows

    rows = suite_min_rows(json.loads(spec.resolve(spec.validation).read_text()))
    if not rows:
        return None
    monitoring = spec.monitoring
    if spec.split.method == "out_of_time":  # every row of a day after the training window is scored
        fraction, split = 1.0, "split.method out_of_time: every row of a day after the window"
    else:
        fraction, split = spec.split.fraction, f"split.fraction {spec.split.fraction:g}"
    warning = labelled_rows_warning(rows, fraction, monitoring.label_window_days, monitoring.min_labelled_rows, split)
    return f"{spec.path}: warning: monitoring: {warning}" if warning else None


#: Seconds ``spec check`` waits for the source database before it skips the table check.
SOURCE_CHECK_TIMEOUT = 20.0


def _source_table_problem(spec) -> str | None:  # noqa: ANN001 (a ModelSpec)
    """A warning when the spec's source table is missing (None: it is there). Raises when the source cannot be
    reached (no such connection, no database, network): the caller says the check was skipped."""
    from sqlalchemy import inspect

    from mlops_provider.hooks.sql_source import source_engine
    from mlops_provider.utils.sql_names import split_table

    conn_id = spec.dataset.connection
    engine = source_engine(conn_id)  # the extract task's hook (a missing SQLite file is refused, not created)
    where = engine.url.render_as_string(hide_password=True)
    schema, table = split_table(spec.dataset.table)
    if inspect(engine).has_table(table, schema=schema):
        return None
    return (
        f"{spec.path}: warning: table {spec.dataset.table!r} does not exist in connection {conn_id!r} ({where}); "
        "the ingest would fail there: create it, or correct dataset.table or dataset.connection"
    )


def _source_table_note(spec) -> str | None:  # noqa: ANN001 (a ModelSpec)
    """``spec check``'s look at the source table: a warning if it is missing, a note if the source cannot be
    reached (the check is skipped, never failed: a spec is checked where no database may be reachable)."""
    import threading

    from airflow.sdk import BaseHook  # noqa: F401 (imported here: its seconds are not the source's)

    found: list[str | None] = []

    def probe() -> None:
        try:
            found.append(_source_table_problem(spec))
        except Exception as exc:  # noqa: BLE001 (whatever stops the look, the check is skipped and says why)
            found.append(
                f"{spec.path}: source table check skipped: connection {spec.dataset.connection!r} cannot be reached "
                f"({type(exc).__name__}: {exc})"
            )

    thread = threading.Thread(target=probe, name="spec-check-source", daemon=True)
    thread.start()
    thread.join(SOURCE_CHECK_TIMEOUT)
    if not found:
        return (
            f"{spec.path}: source table check skipped: connection {spec.dataset.connection!r} did not answer in "
            f"{SOURCE_CHECK_TIMEOUT:g} s"
        )
    return found[0]


def _engine(args: argparse.Namespace):  # noqa: ANN202 (a SQLAlchemy Engine)
    if args.url:
        from sqlalchemy import create_engine
        from sqlalchemy.exc import ArgumentError

        try:
            return create_engine(args.url)
        except (ArgumentError, ImportError) as exc:
            raise ValueError(f"--url {args.url!r}: not a usable SQLAlchemy URL ({exc})") from None
    from mlops_provider.hooks.sql_source import source_engine

    return source_engine(args.conn_id)  # the extract task's hook: one connection works for both or for neither


def _date_arg(flag: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag} {value!r}: not a date (YYYY-MM-DD)") from None


def _new_model(args: argparse.Namespace) -> int:
    import json

    from mlops_provider.cli.scaffold import Source, dry_run, read_sample, sample_days, scaffold

    source = Source(args.table, args.timestamp_column, args.key_column, args.label, args.conn_id, args.positive_class)
    start, end = _date_arg("--start", args.start), _date_arg("--end", args.end)
    frame, first_day = read_sample(_engine(args), source, args.days, start, end)
    days = sample_days(frame, source)
    written = scaffold(args.name, source, frame, Path(args.out), args.days, first_day)
    for what, path in written.items():
        print(f"{what:<9} {path}")
    print(f"sampled   {days.min()} .. {days.max()} ({days.nunique()} day(s), {len(frame)} rows of {args.table})")
    skipped = json.loads(written["suite"].read_text())["meta"].get("not_learned_from", {})
    for day, reasons in skipped.items():
        print(f"not learned from: {day} ({'; '.join(reasons)}): an incident day sets no bound")
    if not args.no_dry_run:
        failed = {day: checks for day, checks in dry_run(frame, source, written["suite"]).items() if checks}
        print(f"dry run: {len(failed)} of {days.nunique()} sampled days would fail the written suite")
        for day, checks in failed.items():
            print(f"  {day}  {', '.join(checks)}")
    print(f"next: edit the spec and suite, then `mlops spec check {written['spec']}`")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from mlops_provider.runtime.traffic import loopback_url, read_rows, replay

    loopback_url(args.url)  # refuse a non-loopback URL before reading anything
    columns, rows = read_rows(args.file, [c for c in args.columns.split(",") if c] if args.columns else None)
    summary = replay(args.url, columns, rows, rate=args.rate, count=args.count, duration=args.duration,
                     batch=args.batch, concurrency=args.concurrency, log_file=args.log,
                     key_column=args.key_column)  # fmt: skip
    print(json.dumps(summary.as_dict(), indent=2))
    return 1 if summary.failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description="airflow-provider-mlops commands")
    sub = parser.add_subparsers(dest="command", required=True)

    seed = sub.add_parser("seed-source", help="fill a demo source table for a date range (idempotent)")
    seed.add_argument(
        "--table", help="which demo table (default: the first example's; see mlops_provider.demo.SOURCES)"
    )
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
    new = sub.add_parser("new-model", help="scaffold a model spec, training entrypoint and GX suite from a table")
    new.add_argument("name", help="model name (lower case, digits, _)")
    new.add_argument("--table", required=True, help="source table")
    new.add_argument("--timestamp-column", required=True, help="event time column (each run extracts its interval)")
    new.add_argument("--key-column", required=True, help="entity key the holdout split hashes")
    new.add_argument("--label", required=True, help="label column")
    new_target = new.add_mutually_exclusive_group()
    new_target.add_argument("--conn-id", default="mlops_source", help="Airflow connection of the source database")
    new_target.add_argument("--url", help="SQLAlchemy URL of the source database instead of a connection")
    new.add_argument(
        "--positive-class", help="label value of the positive class (needed unless the label is 0/1); a value seen"
    )
    new.add_argument(
        "--days", type=int, default=7, help="days to sample: the newest, or those ending at --end / from --start"
    )
    new.add_argument("--start", help="first day to sample, YYYY-MM-DD (with --end: the range; else --days from it)")
    new.add_argument("--end", help="last day to sample (inclusive), YYYY-MM-DD")
    new.add_argument(
        "--no-dry-run", action="store_true", help="skip validating each sampled day against the written suite"
    )
    new.add_argument("--out", default="include/models", help="folder of the model specs")
    new.set_defaults(func=_new_model)

    play = sub.add_parser(
        "replay", help="send a file's rows to a model endpoint at a rate (loopback only), log answers"
    )
    play.add_argument("file", help="parquet or CSV file of input rows")
    play.add_argument("--url", required=True, help="the endpoint, e.g. http://127.0.0.1:8600/invocations")
    play.add_argument("--rate", type=float, default=20.0, help="requests per second")
    play.add_argument("--count", type=int, default=1000, help="requests at most")
    play.add_argument("--duration", type=float, default=60.0, help="seconds at most")
    play.add_argument("--batch", type=int, default=1, help="rows per request")
    play.add_argument("--concurrency", type=int, default=8, help="requests in flight at most")
    play.add_argument("--columns", help="comma-separated columns to send (default: every column of the file)")
    play.add_argument(
        "--log", help="client-side log, one JSON line per request (status, latency, version, predictions)"
    )
    play.add_argument("--key-column", help="the rows' key column (sent too): each log line names its rows' keys")
    play.set_defaults(func=_replay)

    from mlops_provider.cli.init import add_parser as add_init

    add_init(sub)

    from mlops_provider.cli.lineage import add_parser as add_lineage

    add_lineage(sub)

    spec = sub.add_parser("spec", help="model specs")
    spec_sub = spec.add_subparsers(dest="spec_command", required=True)
    check = spec_sub.add_parser("check", help="validate model spec files (exit 1 naming file and key if one is bad)")
    check.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a models folder (every *.yaml spec and the rules across files, as the DAG factory reads it) or a spec "
        "file (checked with the specs beside it: a name another file has is an error)",
    )
    # Before: --together also checked each file's folder; a file is now always checked with its folder.
    check.add_argument("--together", action="store_true", help=argparse.SUPPRESS)
    check.set_defaults(func=_spec_check)
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
