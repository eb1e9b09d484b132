"""``mlops new-model``: a new model's spec, training entrypoint and starting validation suite, from a source table.

A sample of the table (its newest days) gives the columns and their types: numbers become numerical features,
text with few distinct values categorical features (ids, the key, the timestamp and the label are left out);
the suite expects exactly these columns, a row count around the sample's, types, null rates no worse than seen
(with a margin), value ranges widened by half their span and the category sets seen. It is a start: read it,
tighten it, add rules of the domain. The entrypoint is a copy of the template (an XGBoost classifier that keeps
the entrypoint contract, docs/training-entrypoint.md), so a new model is one command plus edits.
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
DATETIME_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]


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
    return {
        "name": name,
        "meta": {"notes": f"Inferred by mlops new-model from {len(frame)} rows of {source.table}; tighten it."},
        "expectations": expectations,
    }


def spec_document(name: str, source: Source, columns: dict[str, Any], start: dt.date, folder: str) -> dict:
    """The spec as YAML data (every required key; optional keys at their defaults are left out)."""
    return {
        "name": name,
        "description": f"Model on {source.table} (scaffolded by mlops new-model; edit me).",
        "dataset": {
            "name": source.table,
            "connection": source.connection,
            "table": source.table,
            "timestamp_column": source.timestamp_column,
            "key_column": source.key_column,
            "parse_dates": columns["dates"] or [source.timestamp_column],
        },
        "label": {"column": source.label, "positive_class": 1, "delay_days": 0},
        "features": {"numerical": columns["numerical"], "categorical": columns["categorical"]},
        "split": {"key": source.key_column, "fraction": 0.2, "seed": 0},
        "validation": f"{folder}/suite.json",
        "training": {
            "entrypoint": f"{folder}/training/train.py",
            "hyperparameters": f"{folder}/training/hyperparameters.json",
            "window_days": 7,
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

    from mlops_provider.spec import NAME

    if not re.match(NAME, name):
        raise ValueError(f"model name {name!r}: use lower case letters, digits and _ (start with a letter)")
    for column in (source.timestamp_column, source.key_column, source.label):
        if column not in frame.columns:
            raise ValueError(f"column {column!r} is not in table {source.table} (columns: {list(frame.columns)})")
    spec_path, folder = out_dir / f"{name}.yaml", out_dir / name
    if spec_path.exists() or folder.exists():
        raise ValueError(f"{spec_path} or {folder} exists already: choose another name or remove them")
    columns = infer_columns(frame, source)
    folder.mkdir(parents=True)
    (folder / "suite.json").write_text(json.dumps(infer_suite(name, frame, columns, source, days), indent=2) + "\n")
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
        + yaml.safe_dump(spec_document(name, source, columns, start, name), sort_keys=False, width=110)
    )
    return {"spec": spec_path, "suite": folder / "suite.json", "training": training}


def read_sample(engine: Any, source: Source, days: int) -> tuple[Any, dt.date]:
    """The newest ``days`` days of the table (by its timestamp column) and the first of them."""
    import pandas as pd
    from sqlalchemy import text

    with engine.connect() as conn:
        newest = pd.read_sql(f"SELECT MAX({source.timestamp_column}) AS ts FROM {source.table}", conn)["ts"].iloc[0]
        if newest is None:
            raise ValueError(f"table {source.table} has no rows")
        end = pd.Timestamp(newest).normalize() + pd.Timedelta(days=1)
        start = end - pd.Timedelta(days=days)
        frame = pd.read_sql(
            text(
                f"SELECT * FROM {source.table} WHERE {source.timestamp_column} >= :start AND "
                f"{source.timestamp_column} < :end"
            ),
            conn,
            params={"start": start.to_pydatetime(), "end": end.to_pydatetime()},
            parse_dates=[source.timestamp_column],
        )
    for column in frame.columns:  # drivers return dates as text (SQLite): parse what parses fully
        if frame[column].dtype == object:
            parsed = pd.to_datetime(frame[column], errors="coerce", format="ISO8601")
            if parsed.notna().sum() == frame[column].notna().sum() and frame[column].notna().any():
                frame[column] = parsed
    return frame, start.date()
