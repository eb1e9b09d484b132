"""Model evaluation for the promotion gate: labels, metrics, behaviour tests and the verdict ledger.

Pure functions over pandas/numpy (imported inside), so they are testable without Airflow or MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Predictor = Callable[[Any], Any]


def schema_predictor(model: Any, call: Predictor | None = None) -> Predictor:
    """``model.predict`` after casting the input columns to the model's signature (MLflow refuses int64 where
    the signature says double, as a JSON client's parsed numbers would be); extra columns are dropped.

    :param call: what to call with the conformed frame instead of ``model.predict`` (e.g.
        :func:`unenforced_predict`'s function, the model's implementation without MLflow's schema enforcement).
    """
    import pandas as pd

    from mlops_provider.ml.request_check import input_signature

    columns = {name: kind for name, kind, _ in input_signature(model)}
    call = call or model.predict

    def predict(frame: Any) -> Any:
        if not columns:
            return call(frame)
        conformed = pd.DataFrame(index=frame.index)
        for name, kind in columns.items():
            if name not in frame.columns:
                raise ValueError(f"input lacks column {name!r} of the model signature")
            values = frame[name]
            if kind.endswith(("double", "float")):
                conformed[name] = pd.to_numeric(values, errors="coerce").astype("float64")
            elif kind.endswith("long"):
                conformed[name] = pd.to_numeric(values, errors="coerce").astype("int64")
            else:
                conformed[name] = values.astype(object).where(values.notna(), None)
        return call(conformed)

    return predict


def unenforced_predict(model: Any) -> Predictor | None:
    """A loaded pyfunc model's implementation, called as ``PyFuncModel.predict`` calls it once MLflow's schema
    enforcement has passed, without that enforcement (which checks a column declared ``any`` value by value: most of
    the time of scoring a large frame). None when ``model`` is not a pyfunc model of that shape (its signature comes
    from type hints, or its input is converted to an example's format), so the caller keeps ``model.predict``.

    For the provider's own scoring of rows that passed the enforced ``predict`` elsewhere (the training holdout after
    the contract check); callers compare it with the enforced ``predict`` on a sample before trusting it.
    """
    import inspect

    implementation, metadata = getattr(model, "_predict_fn", None), getattr(model, "metadata", None)
    if implementation is None or metadata is None:
        return None
    try:
        if metadata._is_signature_from_type_hint() or metadata._is_type_hint_from_example():
            return None
        takes_params = inspect.signature(implementation).parameters.get("params")
    except (AttributeError, TypeError, ValueError):
        return None
    if takes_params is not None and takes_params.kind != inspect.Parameter.VAR_KEYWORD:
        return lambda frame: implementation(frame, params=None)
    return lambda frame: implementation(frame)


def binary_labels(values: Any, positive_class: Any) -> Any:
    """1 where ``values`` is the positive class, else 0 (numbers compare as numbers, anything else as text)."""
    import pandas as pd

    if isinstance(positive_class, (bool, int, float)):
        return (pd.to_numeric(values, errors="coerce") == float(positive_class)).astype(int).to_numpy()
    return (values.astype(str) == str(positive_class)).astype(int).to_numpy()


def classification_metrics(y_true: Any, proba: Any, threshold: float) -> dict[str, float]:
    """The training metrics: log loss, precision, recall, F1, accuracy at ``threshold``, ROC AUC, rows."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

    predicted = (proba >= threshold).astype(int)
    metrics = {
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "rows": float(len(y_true)),
    }
    if len(set(y_true)) == 2:
        metrics["roc_auc"] = float(roc_auc_score(y_true, proba))
    return metrics


def score(
    predict: Predictor, frame: Any, label: str, segment: str | None, threshold: float, positive_class: Any = 1
) -> dict[str, Any]:
    """Overall and per-segment metrics of a model on a labelled frame (no segments when ``segment`` is None)."""
    import numpy as np

    proba = np.asarray(predict(frame), dtype=float)
    y = binary_labels(frame[label], positive_class)
    segments = {}
    for value in sorted(frame[segment].dropna().unique()) if segment else []:
        mask = (frame[segment] == value).to_numpy()
        segments[str(value)] = classification_metrics(y[mask], proba[mask], threshold)
    return {"overall": classification_metrics(y, proba, threshold), "segments": segments}


def run_behaviour_tests(predict: Predictor, tests: dict[str, Any]) -> list[dict[str, Any]]:
    """Known cases, invariance and directional tests from ``behaviour_tests.json``; one result per test."""
    import pandas as pd

    base = dict(tests.get("base") or {})

    def proba(rows: list[dict[str, Any]]) -> list[float]:
        return [float(p) for p in predict(pd.DataFrame(rows))]

    results: list[dict[str, Any]] = []
    for case in tests.get("known_cases", []):
        p = proba([{**base, **case["input"]}])[0]
        low, high = case.get("min_probability", 0.0), case.get("max_probability", 1.0)
        results.append(
            {
                "kind": "known_case",
                "name": case["name"],
                "observed": p,
                "expected": [low, high],
                "passed": low <= p <= high,
            }
        )
    for case in tests.get("invariance", []):
        ps = proba([{**base, case["feature"]: value} for value in case["values"]])
        delta = max(ps) - min(ps)
        results.append(
            {
                "kind": "invariance",
                "name": case["name"],
                "observed": delta,
                "expected": case["max_delta"],
                "passed": delta <= case["max_delta"],
            }
        )
    for case in tests.get("directional", []):
        ps = proba([{**base, case["feature"]: value} for value in case["values"]])
        sign = 1 if case["direction"] == "increasing" else -1
        worst = min(sign * (b - a) for a, b in zip(ps, ps[1:], strict=False))
        results.append(
            {
                "kind": "directional",
                "name": case["name"],
                "observed": ps,
                "expected": case["direction"],
                "passed": worst >= -float(case.get("tolerance", 0.0)),
            }
        )
    return results


def decide(
    rules: dict[str, Any],
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    behaviour: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], str, str]:
    """Apply the gate rules; returns (checks, decision ``promote``/``reject``, reason)."""
    lower_is_better = set(rules.get("lower_is_better", []))
    checks: list[dict[str, Any]] = []

    def check(name: str, metric: str, champ: float | None, chall: float | None, threshold: float, passed: bool) -> None:
        delta = None if champ is None or chall is None else chall - champ
        checks.append(
            {
                "check": name,
                "metric": metric,
                "champion": champ,
                "challenger": chall,
                "delta": delta,
                "threshold": threshold,
                "passed": bool(passed),
            }
        )

    overall = challenger["overall"]
    for metric, floor in rules.get("floors", {}).items():
        value = overall.get(metric)
        ok = value is not None and (value <= floor if metric in lower_is_better else value >= floor)
        check("floor", metric, None, value, floor, ok)
    if champion is not None:
        metric = rules["primary_metric"]
        margin = float(rules.get("min_improvement", 0.0))
        chall, champ = overall.get(metric), champion["overall"].get(metric)
        if chall is None or champ is None:
            check("improvement", metric, champ, chall, margin, False)
        else:
            gain = (champ - chall) if metric in lower_is_better else (chall - champ)
            check("improvement", metric, champ, chall, margin, gain >= margin)
        seg_metric = rules.get("segment_metric", metric)
        max_drop = float(rules.get("max_segment_regression", 1.0))
        for segment, values in sorted(champion["segments"].items()):
            champ_v = values.get(seg_metric)
            chall_v = challenger["segments"].get(segment, {}).get(seg_metric)
            if champ_v is None or chall_v is None:
                continue
            drop = (chall_v - champ_v) if seg_metric in lower_is_better else (champ_v - chall_v)
            check(f"segment:{segment}", seg_metric, champ_v, chall_v, max_drop, drop <= max_drop)
    if rules.get("require_behaviour_tests", True):
        for result in behaviour:
            checks.append(
                {
                    "check": f"behaviour:{result['kind']}",
                    "metric": result["name"],
                    "champion": None,
                    "challenger": result["observed"],
                    "delta": None,
                    "threshold": result["expected"],
                    "passed": result["passed"],
                }
            )
    failed = [c for c in checks if not c["passed"]]
    if failed:
        names = ", ".join(f"{c['check']}({c['metric']})" for c in failed)
        return checks, "reject", f"{len(failed)} check(s) failed: {names}"
    if champion is None:
        return checks, "promote", "no champion yet; floors and behaviour tests pass"
    return (
        checks,
        "promote",
        f"beats the champion on {rules['primary_metric']} by at least {rules.get('min_improvement', 0)}",
    )


def load_json(path: str | Path, what: str) -> Any:
    """A JSON config file; the error names the file and what it is for."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} file {path} cannot be read: {exc}") from exc
