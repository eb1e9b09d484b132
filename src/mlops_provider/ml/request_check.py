"""The check of a prediction request against the model's input signature (pure; the serving backend answers a
failed check with a 4xx naming the column, counted apart from its own 5xx faults).

A request is MLflow's scoring protocol: ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` or
``{"dataframe_records": [{column: value}, ...]}``. Every column of the signature must be present (an optional
one may be missing), no other column may be, and every value must fit its column's type: ``long``/``integer``
a whole number, ``double``/``float`` a number (or null: missing), ``boolean`` true/false, ``string`` a string,
``datetime`` an ISO date or time string. Nulls are allowed in numeric, string and datetime columns (the model sees
a missing value); not in boolean, integer and long columns, which have no missing value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from mlops_provider.exceptions import RequestError

#: signature type -> the check of one JSON value (None has been handled before)
NUMERIC = ("double", "float")
WHOLE = ("long", "integer")
NULLABLE = (*NUMERIC, "string", "datetime")


def _fits(kind: str, value: Any) -> bool:
    if kind in NUMERIC:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in WHOLE:
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "datetime":
        if not isinstance(value, str):
            return False
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return True  # binary and other types: left to the model


def input_signature(model: Any) -> list[tuple[str, str, bool]]:
    """``(name, type, required)`` of each input column of a pyfunc model's signature (empty: no signature).

    A column the signature declares ``any`` takes its type from the model's metadata ``input_types``
    (``{column: type}``) when it names one: the training template declares its numeric features ``any`` (so that
    MLflow lets a registry consumer's ints through to the model, which casts them) and ``double`` there, so a
    request is still checked as a number."""
    schema = model.metadata.get_input_schema()
    if schema is None:
        return []
    declared = (getattr(model.metadata, "metadata", None) or {}).get("input_types") or {}
    out = []
    for spec in schema.inputs:
        kind = str(spec.type).split(".")[-1].lower()
        if kind == "any" and isinstance(declared.get(spec.name), str):
            kind = declared[spec.name].lower()
        out.append((spec.name, kind, bool(getattr(spec, "required", True))))
    return out


def request_rows(payload: Any) -> tuple[list[str], list[list[Any]]]:
    """The columns and rows of a request body (already parsed JSON); a RequestError for any other shape."""
    if not isinstance(payload, dict):
        raise RequestError("the request body must be a JSON object with 'dataframe_split' or 'dataframe_records'")
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
            raise RequestError("'dataframe_split' must be an object with 'columns' (a list) and 'data'")
        columns = [str(c) for c in split["columns"]]
        data = split.get("data")
        if not isinstance(data, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in data):
            raise RequestError(f"'dataframe_split.data' must be a list of rows of {len(columns)} values each")
        return columns, data
    if "dataframe_records" in payload:
        records = payload["dataframe_records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RequestError("'dataframe_records' must be a list of objects")
        columns = list(dict.fromkeys(str(k) for r in records for k in r))
        return columns, [[r.get(c) for c in columns] for r in records]
    raise RequestError(f"unknown request format (keys {sorted(payload)}): use 'dataframe_split' or 'dataframe_records'")


def check_request(
    signature: Sequence[tuple[str, str, bool]], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Raise RequestError naming the first column that does not fit ``signature`` (``(name, type, required)``
    per column): missing, extra, or a value of the wrong type (with the row's index)."""
    if not rows:
        raise RequestError("the request has no rows")
    expected = {name: (kind, required) for name, kind, required in signature}
    for name in columns:
        if name not in expected:
            raise RequestError(f"column {name!r} is not an input of the model (inputs: {list(expected)})", name)
    for name, (_, required) in expected.items():
        if required and name not in columns:
            raise RequestError(f"column {name!r} of the model's inputs is missing", name)
    for index, name in enumerate(columns):
        kind, _ = expected[name]
        for number, row in enumerate(rows):
            value = row[index]
            if value is None:
                if kind in NULLABLE:
                    continue
                raise RequestError(f"column {name!r} ({kind}) has a null in row {number}", name)
            if not _fits(kind, value):
                raise RequestError(
                    f"column {name!r} expects {kind}, got {type(value).__name__} {str(value)[:40]!r} in row {number}",
                    name,
                )
