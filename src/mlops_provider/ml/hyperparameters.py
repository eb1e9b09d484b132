"""Hyperparameter specs (a JSON file beside the training code) and validation of overrides against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def load_hyperparameter_spec(path: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"type": "int"|"float"|"str"|"bool", "default": ..., "min": ..., "max": ...}}`` from a JSON file."""
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"hyperparameter spec {path} cannot be read: {exc}") from exc
    for name, entry in spec.items():
        if entry.get("type") not in _TYPES or "default" not in entry:
            raise ValueError(f"hyperparameter spec {path}: {name!r} needs a type ({', '.join(_TYPES)}) and a default")
    return dict(spec)


def resolve(spec: dict[str, dict[str, Any]], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults with ``overrides`` applied; unknown names, wrong types and out-of-range values raise ValueError
    naming the field (``hyperparameters.<name>``)."""
    # A float default written as a whole number (``1``) is a float like an override: the tuner reads the type off it.
    resolved = {name: float(e["default"]) if e["type"] == "float" else e["default"] for name, e in spec.items()}
    for name, value in (overrides or {}).items():
        field = f"hyperparameters.{name}"
        if name not in spec:
            raise ValueError(f"{field}: unknown hyperparameter; known: {', '.join(sorted(spec))}")
        entry = spec[name]
        kind = entry["type"]
        if isinstance(value, bool) and kind != "bool" or not isinstance(value, _TYPES[kind]):
            raise ValueError(f"{field}: expected {kind}, got {type(value).__name__} {value!r}")
        if "min" in entry and value < entry["min"] or "max" in entry and value > entry["max"]:
            raise ValueError(f"{field}: {value!r} is outside [{entry.get('min')}, {entry.get('max')}]")
        resolved[name] = float(value) if kind == "float" else value  # type: ignore[arg-type]
    return resolved
