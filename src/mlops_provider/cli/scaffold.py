"""``mlops new-model``: a new model's spec, training entrypoint and starting validation suite, from a source table.

A sample of the table (its newest days, or a date range of its history: ``--start/--end``, ``--days`` before
``--end``) gives the columns and their types: numbers become numerical features, text with few distinct values
categorical features (ids, the key, the timestamp and the label are left out); the suite expects exactly these
columns, a daily row count between the smallest and largest ordinary day's (with a margin), types, null rates no
worse than the worst ordinary day's (with a margin), value ranges widened by half their span and the category sets
seen. A day that is an incident (a column mostly null while the median day has few nulls; a day with a quarter of
the median day's rows, or four times them) sets no bound and is named. Each sampled day is then validated against
the written suite (:func:`dry_run`), so the user sees how many days it would fail, and on which check, before
deploying it. It is a start: read it, tighten it, add rules of the domain. The entrypoint is a copy of the template
(an XGBoost classifier that keeps the entrypoint contract, docs/training-entrypoint.md), so a new model is one
command plus edits.

The spec gets the settings the scenario suite recommends (docs/drift-signals.md): the monitoring defaults (the
learned drift signal, labels pooled over 3 days, the interval rule, the auto calibration) and, when the timestamp
column holds times, an out-of-time holdout (:func:`split_settings`: the last ``OUT_OF_TIME_HOLDOUT_DAYS`` days of
each training set, with ``training.min_days`` one more, so no training set is too short to split).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: The starter training files `mlops new-model` copies into a new model's ``training/`` folder.
STARTER_TRAINING_FILES = ("train.py", "train_tuned.py", "tabular_model.py", "hyperparameters.json", "requirements.txt")
#: The kinds of starter files: ``training`` (the entrypoint and its requirements), ``serving`` (the Dockerfile).
STARTER_KINDS = ("training", "serving")
MAX_CATEGORIES = 50
#: Fewest sampled rows the suite's bounds (row counts, value ranges, category sets) are learned from.
MIN_SAMPLE_ROWS = 100
DATETIME_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]
#: The suite allows a column's null rate up to the worst ordinary day's times NULL_FACTOR plus NULL_SLACK.
NULL_FACTOR, NULL_SLACK = 1.5, 0.01
#: A column's day is an incident (no bound is learned from it) when over INCIDENT_NULL_RATE of its rows are null
#: while the column's median day has under ORDINARY_NULL_RATE.
INCIDENT_NULL_RATE, ORDINARY_NULL_RATE = 0.5, 0.05
#: A day is a row-count incident with under ROWS_LOW_SHARE or over ROWS_HIGH_FACTOR times the median day's rows.
ROWS_LOW_SHARE, ROWS_HIGH_FACTOR = 0.25, 4.0
#: Daily row-count bounds: ROWS_MIN_FACTOR x the smallest ordinary day .. ROWS_MAX_FACTOR x the largest (+ 10).
ROWS_MIN_FACTOR, ROWS_MAX_FACTOR = 0.5, 3.0
#: Days an out-of-time holdout of a scaffolded spec holds out (the scenario suite's gate measured 2 of 7).
OUT_OF_TIME_HOLDOUT_DAYS = 2
WINDOW_DAYS = 7


def starter_dir(kind: str) -> Path:
    """The starter files of ``kind`` (``training`` or ``serving``) that `mlops new-model` copies: inside the
    installed package (``mlops_provider/cli/starter/<kind>/``, force-included by pyproject.toml), else the
    repository's ``include/<kind>`` (the one copy in git). A ValueError names ``kind`` when it is not one."""
    if kind not in STARTER_KINDS:
        raise ValueError(f"no starter files {kind!r}; known: {', '.join(STARTER_KINDS)}")
    here = Path(__file__).resolve()
    packaged = here.parent / "starter" / kind
    if packaged.is_dir():
        return packaged
    return here.parents[3] / "include" / kind  # src/mlops_provider/cli/scaffold.py -> the repository


@dataclass(frozen=True)
class Source:
    """Where the new model's data is and what its special columns are."""

    table: str
    timestamp_column: str
    key_column: str
    label: str
    connection: str = "mlops_source"
    positive_class: str | None = None  # as typed (``--positive-class``); None: 1 for a 0/1 label, else refused


def infer_columns(frame: Any, source: Source) -> dict[str, Any]:
    """Feature lists and per-column facts of a sample (pure; pandas)."""
    import pandas as pd

    special = {source.timestamp_column, source.key_column, source.label}
    numerical, categorical, dates, facts = [], [], [], {}
    for column in frame.columns:
        values = frame[column]
        null_rate = float(values.isna().mean())
        if pd.api.types.is_datetime64_any_dtype(values):
            dates.append(column)
            facts[column] = {"kind": "datetime", "null_rate": null_rate}
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            low, high = float(values.min()), float(values.max())
            facts[column] = {"kind": "number", "null_rate": null_rate, "min": low, "max": high,
                             "integer": pd.api.types.is_integer_dtype(values)}  # fmt: skip
            if column not in special:
                numerical.append(column)
        else:
            distinct = sorted(str(v) for v in values.dropna().unique())
            facts[column] = {"kind": "text", "null_rate": null_rate, "distinct": distinct}
            is_id = len(distinct) > MAX_CATEGORIES or len(distinct) > 0.5 * max(1, len(values))
            if column not in special and not is_id:
                categorical.append(column)
    return {"numerical": numerical, "categorical": categorical, "dates": dates, "facts": facts}


def null_rate_bound(rates: dict[str, float]) -> tuple[float, list[str]]:
    """The null rate a column may have on a day, from its per-day null rates (day -> rate), and the incident days
    that set no bound (pure): the worst ordinary day's rate times ``NULL_FACTOR`` plus ``NULL_SLACK`` (0 when no
    ordinary day has a null). A day is an incident when over ``INCIDENT_NULL_RATE`` of its rows are null while the
    median day has under ``ORDINARY_NULL_RATE``."""
    import statistics

    if not rates:
        return 0.0, []
    median = statistics.median(rates.values())
    incidents = sorted(d for d, r in rates.items() if r > INCIDENT_NULL_RATE and median < ORDINARY_NULL_RATE)
    worst = max((r for d, r in rates.items() if d not in incidents), default=0.0)
    return (0.0 if worst == 0 else min(1.0, worst * NULL_FACTOR + NULL_SLACK)), incidents


def row_count_bounds(counts: dict[str, int]) -> tuple[int, int, list[str]]:
    """Daily row-count bounds from per-day row counts (day -> rows) and the incident days that set none (pure): a day
    with under ``ROWS_LOW_SHARE`` or over ``ROWS_HIGH_FACTOR`` times the median day's rows is an incident; the
    bounds are ``ROWS_MIN_FACTOR`` x the smallest ordinary day and ``ROWS_MAX_FACTOR`` x the largest, plus 10."""
    import math
    import statistics

    if not counts:
        raise ValueError("no sampled day: no row count to learn from")
    median = statistics.median(counts.values())
    incidents = sorted(d for d, n in counts.items() if n < ROWS_LOW_SHARE * median or n > ROWS_HIGH_FACTOR * median)
    ordinary = [n for d, n in counts.items() if d not in incidents]
    return max(1, int(min(ordinary) * ROWS_MIN_FACTOR)), math.ceil(max(ordinary) * ROWS_MAX_FACTOR) + 10, incidents


def sample_days(frame: Any, source: Source) -> Any:
    """The sample's day of each row (a Series of ``YYYY-MM-DD``; one day when the timestamp is not a date)."""
    import pandas as pd

    stamps = frame[source.timestamp_column]
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        return pd.Series("sample", index=frame.index)
    return stamps.dt.strftime("%Y-%m-%d").fillna("no timestamp")


def infer_suite(name: str, frame: Any, columns: dict[str, Any], source: Source) -> dict[str, Any]:
    """A starting GX suite (JSON) learned from the sample's days (per-day worst cases with a margin); the incident
    days that set no bound are listed in ``meta.not_learned_from`` (day -> reasons)."""
    import math

    def expect(kind: str, **kwargs: Any) -> dict[str, Any]:
        return {"type": f"expect_{kind}", "kwargs": kwargs, "meta": {}}

    days = sample_days(frame, source)
    skipped: dict[str, list[str]] = {}
    counts = {str(d): int(n) for d, n in days.value_counts().items()}
    low, high, incidents = row_count_bounds(counts)
    for day in incidents:
        skipped.setdefault(day, []).append(f"{counts[day]} rows")
    expectations = [
        expect("table_columns_to_match_set", column_set=list(frame.columns), exact_match=True),
        expect("table_row_count_to_be_between", min_value=low, max_value=high),
    ]
    for column, fact in columns["facts"].items():
        if fact["kind"] == "datetime":
            expectations.append(expect("column_values_to_be_in_type_list", column=column, type_list=DATETIME_TYPES))
        rates = {str(d): float(r) for d, r in frame[column].isna().groupby(days).mean().items()}
        allowed, incidents = null_rate_bound(rates)
        for day in incidents:
            skipped.setdefault(day, []).append(f"{column}: {rates[day]:.0%} null")
        if allowed == 0.0:
            expectations.append(expect("column_values_to_not_be_null", column=column))
        elif allowed < 0.95:
            mostly = math.floor((1.0 - allowed) * 1000) / 1000
            expectations.append(expect("column_values_to_not_be_null", column=column, mostly=mostly))
        if fact["kind"] == "number" and column != source.label:
            span = fact["max"] - fact["min"]
            low = fact["min"] - 0.5 * span if fact["min"] < 0 else max(0.0, fact["min"] - 0.5 * span)
            expectations.append(
                expect("column_values_to_be_between", column=column, min_value=low, max_value=fact["max"] + 0.5 * span)
            )
        if fact["kind"] == "text" and len(fact["distinct"]) == int(frame[column].notna().sum()) > 1:
            expectations.append(expect("column_values_to_be_unique", column=column))  # a row id
        if fact["kind"] == "text" and column in columns["categorical"]:
            expectations.append(expect("column_values_to_be_in_set", column=column, value_set=fact["distinct"]))
    label = columns["facts"].get(source.label, {})
    if label.get("kind") == "number":
        values = sorted({v for v in frame[source.label].dropna().unique().tolist()})
        expectations.append(expect("column_values_to_be_in_set", column=source.label, value_set=values))
    elif label.get("kind") == "text":
        expectations.append(expect("column_values_to_be_in_set", column=source.label, value_set=label["distinct"]))
    notes = (
        f"Inferred by mlops new-model from {len(frame)} rows over {len(counts)} day(s) of {source.table} "
        "(per-day worst cases with a margin); tighten it."
    )
    meta: dict[str, Any] = {"notes": notes}
    if skipped:
        meta["not_learned_from"] = dict(sorted(skipped.items()))
    return {"name": name, "meta": meta, "expectations": expectations}


def dry_run(frame: Any, source: Source, suite_path: Path) -> dict[str, list[str]]:
    """Validate each sampled day's rows against the written suite with Great Expectations, as the ingest's
    validation would: day -> the checks it fails (``expect_...(column)``; empty when the day passes)."""
    import logging
    import tempfile

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its import-time INFO lines say nothing here
    from mlops_provider.hooks.great_expectations import GreatExpectationsHook

    days = sample_days(frame, source)
    frames = {str(day): rows.reset_index(drop=True) for day, rows in frame.groupby(days, sort=True)}
    failed: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-dry-run-") as docs:
        for day, result in GreatExpectationsHook(docs_dir=Path(docs)).dry_run(frames, suite_path).items():
            checks = []
            for item in result.results:
                if not item.success:
                    config = item.expectation_config
                    column = config.kwargs.get("column")
                    checks.append(f"{config.type}({column})" if column else config.type)
            failed[day] = checks
    return failed


def sample_problem(frame: Any, source: Source, days: int) -> str | None:
    """Why the sample is too small to learn the suite's bounds from (``None``: it is not)."""
    if len(frame) >= MIN_SAMPLE_ROWS:
        return None
    return (
        f"the sample has {len(frame)} row(s) over {days_seen(frame, source)} day(s) ({days} day(s) of table "
        f"{source.table}); the suite's row counts, value ranges and category sets would be the few values seen: "
        f"widen the sample with a larger --days or an earlier --start (at least {MIN_SAMPLE_ROWS} rows)"
    )


def days_seen(frame: Any, source: Source) -> int:
    """Distinct days with rows in the sample (by the timestamp column; at least 1)."""
    import pandas as pd

    stamps = frame[source.timestamp_column]
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        return 1
    return max(1, int(stamps.dt.normalize().nunique()))


def positive_class(frame: Any, source: Source, days: int) -> Any:
    """The label's positive class: ``--positive-class`` if it is a value seen, else 1 for a 0/1 label. Refuses a
    one-class label and a label that is not 0/1 without ``--positive-class`` (a guess between ``yes`` and ``no``
    that is wrong trains a model of the opposite class)."""
    import pandas as pd

    from mlops_provider.loop.spec import label_matches

    labels = frame[source.label].dropna()
    values = sorted(labels.unique().tolist(), key=str)
    shown = values if len(values) <= 10 else [*values[:10], "..."]
    if len(values) < 2:
        seen = f"one value ({values[0]!r})" if values else "no values"
        raise ValueError(
            f"label column {source.label!r} has {seen} in the {len(frame)} rows of the {days_seen(frame, source)} "
            f"day(s) sampled (--days {days}); training needs both classes: widen the sample with a larger --days"
        )
    if source.positive_class is None:
        numeric = pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels)
        if numeric and {float(v) for v in values} == {0.0, 1.0}:
            return 1
        raise ValueError(
            f"label column {source.label!r} has values {shown}, not 0 and 1: say which one is the positive class "
            "with --positive-class VALUE"
        )
    wanted: Any = source.positive_class
    if pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels):
        try:  # a number (or true/false) for a numeric label, as it will be written in the spec
            wanted = yaml.safe_load(wanted)
        except yaml.YAMLError:
            pass  # kept as text: it matches no number and is refused below
    if not any(label_matches(v, wanted) for v in values):
        raise ValueError(
            f"--positive-class {source.positive_class!r} is not a value of label column {source.label!r} "
            f"(values seen: {shown})"
        )
    return wanted


def dataset_name(table: str) -> str:
    """A dataset name (``spec.NAME``) from a table name: ``Card Events`` -> ``card_events``."""
    import re

    name = re.sub(r"[^a-z0-9_]+", "_", table.lower()).strip("_")
    return (name if name[:1].isalpha() else f"t_{name}")[:63].ljust(2, "_")


def split_settings(source: Source, columns: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The split and the training keys it needs: out of time (the last ``OUT_OF_TIME_HOLDOUT_DAYS`` days, and
    ``training.min_days`` one more) when the sample's timestamp column holds times (time-ordered data: a key-hash
    holdout shares its days with the training rows and flatters the challenger), else a key hash of the key."""
    if source.timestamp_column in columns["dates"]:
        split = {"method": "out_of_time", "holdout_days": OUT_OF_TIME_HOLDOUT_DAYS}
        return split, {"window_days": WINDOW_DAYS, "min_days": OUT_OF_TIME_HOLDOUT_DAYS + 1}
    return {"key": source.key_column, "fraction": 0.2, "seed": 0}, {"window_days": WINDOW_DAYS}


def spec_document(
    name: str, source: Source, columns: dict[str, Any], start: dt.date, folder: str, positive: Any = 1
) -> dict:
    """The spec as YAML data (every required key; optional keys at their defaults are left out, so the monitoring
    section holds none: its defaults are the recommended settings)."""
    split, training = split_settings(source, columns)
    return {
        "name": name,
        "description": f"Model on {source.table} (scaffolded by mlops new-model; edit me).",
        "dataset": {
            "name": dataset_name(source.table),
            "connection": source.connection,
            "table": source.table,
            "timestamp_column": source.timestamp_column,
            "key_column": source.key_column,
            "parse_dates": columns["dates"] or [source.timestamp_column],
        },
        "label": {"column": source.label, "positive_class": positive, "delay_days": 0},
        "features": {"numerical": columns["numerical"], "categorical": columns["categorical"]},
        "split": split,
        "validation": f"{folder}/suite.json",
        "training": {
            "entrypoint": f"{folder}/training/train.py",
            "hyperparameters": f"{folder}/training/hyperparameters.json",
            **training,
        },
        "gate": {"primary_metric": "roc_auc", "floors": {"roc_auc": 0.6}},
        "serving": {"directory": f"{folder}/serving", "requirements": f"{folder}/training/requirements.txt"},
        "schedule": {"start_date": start.isoformat()},
    }


def scaffold(
    name: str, source: Source, frame: Any, out_dir: Path, days: int, start: dt.date, serving_dir: Path | None = None
) -> dict[str, Path]:
    """Write ``<out_dir>/<name>.yaml`` and ``<out_dir>/<name>/`` (suite, training code, serving folder); refuse
    to overwrite. Returns the paths written."""
    import json
    import re

    from pydantic import ValidationError

    from mlops_provider.loop.spec import NAME, ModelSpec, _messages, feature_name_problem, label_problems

    if not re.match(NAME, name):
        raise ValueError(f"model name {name!r}: use lower case letters, digits and _ (start with a letter)")
    for column in (source.timestamp_column, source.key_column, source.label):
        if column not in frame.columns:
            raise ValueError(f"column {column!r} is not in table {source.table} (columns: {list(frame.columns)})")
    spec_path, folder = out_dir / f"{name}.yaml", out_dir / name
    if spec_path.exists() or folder.exists():
        raise ValueError(f"{spec_path} or {folder} exists already: choose another name or remove them")
    problem = sample_problem(frame, source, days)
    if problem:
        raise ValueError(problem)
    columns = infer_columns(frame, source)
    for column in (*columns["numerical"], *columns["categorical"]):
        problem = feature_name_problem(column, what="column")
        if problem:
            raise ValueError(f"table {source.table}: {problem} (it would be a feature)")
    positive = positive_class(frame, source, days)
    suite = infer_suite(name, frame, columns, source)
    document = spec_document(name, source, columns, start, name, positive)
    try:  # the checks `mlops spec check` makes (but the files): nothing is written for a spec that would fail them
        checked = ModelSpec.model_validate(document)
    except ValidationError as exc:
        raise ValueError("; ".join(_messages(spec_path, exc))) from None
    problems = label_problems(checked.label, suite)
    if problems:
        raise ValueError("; ".join(problems))
    folder.mkdir(parents=True)
    (folder / "suite.json").write_text(json.dumps(suite, indent=2) + "\n")
    training = folder / "training"
    training.mkdir()
    starter = starter_dir("training")
    for file in STARTER_TRAINING_FILES:
        if (starter / file).is_file():
            shutil.copy(starter / file, training / file)
    serving = serving_dir or starter_dir("serving")
    if (serving / "Dockerfile").is_file():
        shutil.copytree(serving, folder / "serving")
    spec_path.write_text(
        f"# Scaffolded by `mlops new-model` from {len(frame)} rows of {source.table}; every key: docs/model-spec.md\n"
        + yaml.safe_dump(document, sort_keys=False, width=110)
    )
    return {"spec": spec_path, "suite": folder / "suite.json", "training": training}


def sample_range(days: int, start: dt.date | None, end: dt.date | None) -> tuple[dt.date | None, dt.date | None]:
    """The sampled days, first and last (inclusive; pure): ``start``..``end`` when both are given, else ``days``
    days ending at ``end`` or starting at ``start``; ``(None, None)``: the newest ``days`` days of the table."""
    if days < 1:
        raise ValueError(f"--days {days}: sample at least one day")
    if start and end:
        if start > end:
            raise ValueError(f"--start {start} is after --end {end}")
        return start, end
    if end:
        return end - dt.timedelta(days=days - 1), end
    if start:
        return start, start + dt.timedelta(days=days - 1)
    return None, None


def read_sample(
    engine: Any, source: Source, days: int, start: dt.date | None = None, end: dt.date | None = None
) -> tuple[Any, dt.date]:
    """The sampled days of the table (by its timestamp column; :func:`sample_range`: a date range, or the newest
    ``days`` days) and the first of them. Table and column names are quoted as the database needs
    (:mod:`mlops_provider.utils.sql_names`); a missing table or column, a range without rows, or a database that
    cannot be read, is a ``ValueError`` naming it."""
    import pandas as pd
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    from mlops_provider.utils.sql_names import quote_column, quote_table, split_table

    where = engine.url.render_as_string(hide_password=True)
    schema, name = split_table(source.table)
    table = quote_table(source.table, engine.dialect).replace(":", "\\:")  # text() reads ':x' as a parameter
    stamp = quote_column(source.timestamp_column, engine.dialect).replace(":", "\\:")
    try:
        inspector = inspect(engine)
        if not inspector.has_table(name, schema=schema):
            raise ValueError(f"table {source.table!r} does not exist in {where}")
        names = [column["name"] for column in inspector.get_columns(name, schema=schema)]
        for column in (source.timestamp_column, source.key_column, source.label):
            if column not in names:
                raise ValueError(f"column {column!r} is not in table {source.table} (columns: {names})")
        first, last = sample_range(days, start, end)
        with engine.connect() as conn:
            if last is None:
                newest = conn.execute(text(f"SELECT MAX({stamp}) FROM {table}")).scalar()
                if newest is None:
                    raise ValueError(f"table {source.table} has no rows")
                last = pd.Timestamp(newest).date()
                first = last - dt.timedelta(days=days - 1)
            assert first is not None
            low, high = pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta(days=1)
            frame = pd.read_sql(
                text(f"SELECT * FROM {table} WHERE {stamp} >= :start AND {stamp} < :end"),
                conn,
                params={"start": low.to_pydatetime(), "end": high.to_pydatetime()},
                parse_dates=[source.timestamp_column],
            )
        if frame.empty:
            raise ValueError(f"table {source.table} has no rows from {first} to {last} (by {source.timestamp_column})")
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise ValueError(f"cannot read table {source.table!r} from {where}: {reason}") from None
    for column in frame.columns:  # drivers return dates as text (SQLite): parse what parses fully
        if frame[column].dtype == object:
            parsed = pd.to_datetime(frame[column], errors="coerce", format="ISO8601")
            if parsed.notna().sum() == frame[column].notna().sum() and frame[column].notna().any():
                frame[column] = parsed
    return frame, first
