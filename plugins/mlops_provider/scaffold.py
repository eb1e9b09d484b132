"""``mlops new-model``: a new model's spec, training entrypoint and starting validation suite, from a source table.

A sample of the table (its newest days) gives the columns and their types: numbers become numerical features,
text with few distinct values categorical features (ids, the key, the timestamp and the label are left out);
the suite expects exactly these columns, a row count around the sample's, types, null rates no worse than seen
(with a margin), value ranges widened by half their span and the category sets seen. It is a start: read it,
tighten it, add rules of the domain. The entrypoint is a copy of the template (an XGBoost classifier that keeps
the entrypoint contract, docs/training-entrypoint.md), so a new model is one command plus edits.

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

#: Files of the training template (the project's include/training; in the wheel: mlops_provider/templates_training/).
TEMPLATE_FILES = ("train.py", "tabular_model.py", "hyperparameters.json")
MAX_CATEGORIES = 50
#: Fewest sampled rows the suite's bounds (row counts, value ranges, category sets) are learned from.
MIN_SAMPLE_ROWS = 100
DATETIME_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]
#: Days an out-of-time holdout of a scaffolded spec holds out (the scenario suite's gate measured 2 of 7).
OUT_OF_TIME_HOLDOUT_DAYS = 2
WINDOW_DAYS = 7


def template_dir() -> Path:
    """The training template: inside the installed package, else the repository's ``include/training``."""
    packaged = Path(__file__).resolve().parent / "templates_training"
    if (packaged / "train.py").is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "include" / "training"


def serving_template_dir() -> Path:
    """The serving Dockerfile's folder: inside the installed package, else the repository's ``include/serving``."""
    packaged = Path(__file__).resolve().parent / "templates_serving"
    if (packaged / "Dockerfile").is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "include" / "serving"


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


def infer_suite(name: str, frame: Any, columns: dict[str, Any], source: Source, days: int) -> dict[str, Any]:
    """A starting GX suite (JSON) that the sample itself passes."""

    def expect(kind: str, **kwargs: Any) -> dict[str, Any]:
        return {"type": f"expect_{kind}", "kwargs": kwargs, "meta": {}}

    per_day = len(frame) / max(1, days)
    expectations = [
        expect("table_columns_to_match_set", column_set=list(frame.columns), exact_match=True),
        expect("table_row_count_to_be_between", min_value=max(1, int(per_day * 0.5)), max_value=int(per_day * 5) + 10),
    ]
    for column, fact in columns["facts"].items():
        if fact["kind"] == "datetime":
            expectations.append(expect("column_values_to_be_in_type_list", column=column, type_list=DATETIME_TYPES))
        if fact["null_rate"] == 0.0:
            expectations.append(expect("column_values_to_not_be_null", column=column))
        elif fact["null_rate"] < 0.5:
            mostly = max(0.0, round(1.0 - 2 * fact["null_rate"] - 0.02, 3))
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
    return {
        "name": name,
        "meta": {"notes": f"Inferred by mlops new-model from {len(frame)} rows of {source.table}; tighten it."},
        "expectations": expectations,
    }


def sample_problem(frame: Any, source: Source, days: int) -> str | None:
    """Why the sample is too small to learn the suite's bounds from (``None``: it is not)."""
    if len(frame) >= MIN_SAMPLE_ROWS:
        return None
    return (
        f"the sample has {len(frame)} row(s) over {days_seen(frame, source)} day(s) (the newest --days {days} of "
        f"table {source.table}); the suite's row counts, value ranges and category sets would be the few values "
        f"seen: widen the sample with a larger --days (at least {MIN_SAMPLE_ROWS} rows)"
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

    from mlops_provider.spec import label_matches

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

    from mlops_provider.spec import NAME, ModelSpec, _messages, feature_name_problem, label_problems

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
    suite = infer_suite(name, frame, columns, source, days_seen(frame, source))
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
    template = template_dir()
    for file in (*TEMPLATE_FILES, "requirements.txt"):
        if (template / file).is_file():
            shutil.copy(template / file, training / file)
    serving = serving_dir or serving_template_dir()
    if (serving / "Dockerfile").is_file():
        shutil.copytree(serving, folder / "serving")
    spec_path.write_text(
        f"# Scaffolded by `mlops new-model` from {len(frame)} rows of {source.table}; every key: docs/model-spec.md\n"
        + yaml.safe_dump(document, sort_keys=False, width=110)
    )
    return {"spec": spec_path, "suite": folder / "suite.json", "training": training}


def read_sample(engine: Any, source: Source, days: int) -> tuple[Any, dt.date]:
    """The newest ``days`` days of the table (by its timestamp column) and the first of them. Table and column
    names are quoted as the database needs (:mod:`mlops_provider.sql_names`); a missing table or column, or a
    database that cannot be read, is a ``ValueError`` naming it."""
    import pandas as pd
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    from mlops_provider.sql_names import quote_column, quote_table, split_table

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
        with engine.connect() as conn:
            newest = conn.execute(text(f"SELECT MAX({stamp}) FROM {table}")).scalar()
            if newest is None:
                raise ValueError(f"table {source.table} has no rows")
            end = pd.Timestamp(newest).normalize() + pd.Timedelta(days=1)
            start = end - pd.Timedelta(days=days)
            frame = pd.read_sql(
                text(f"SELECT * FROM {table} WHERE {stamp} >= :start AND {stamp} < :end"),
                conn,
                params={"start": start.to_pydatetime(), "end": end.to_pydatetime()},
                parse_dates=[source.timestamp_column],
            )
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise ValueError(f"cannot read table {source.table!r} from {where}: {reason}") from None
    for column in frame.columns:  # drivers return dates as text (SQLite): parse what parses fully
        if frame[column].dtype == object:
            parsed = pd.to_datetime(frame[column], errors="coerce", format="ISO8601")
            if parsed.notna().sum() == frame[column].notna().sum() and frame[column].notna().any():
                frame[column] = parsed
    return frame, start.date()
