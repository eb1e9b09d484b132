"""Drift signals on the example models' own drift injection: the share of drifted columns, the
importance-weighted drift (issue 20) and the learned drift (issue 28: thresholds learned leave-one-day-out from the 7
reference days, each column's excess counted up to 1 as the default does, and uncapped as before). Prints numbers,
asserts nothing.

For each example spec: the reference is a 7-day training window of calm days; the template entrypoint's model is
trained on it (its mean |SHAP| importances on the holdout are what the training run logs as
``feature_importance.json``); calm days
after the window and drifted days (the generator's drift from ``drift_from``) are each compared with the reference
by the drift operator's Evidently run (the spec's columns and per-column settings). Per signal it prints the
largest value on a calm day, the smallest on a drifted day, and the margin between them (drifted min - calm max;
larger separates better).

Usage: python bench/bench_drift_signals.py [CASE ...]   (default: churn_classifier card_fraud card_fraud_seasonal;
the seasonal case adds seven weather columns to card_fraud, trains in July and checks January days)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from examples import WINDOW, example, seasonal_example  # noqa: E402


def signals_for(spec_name: str) -> dict:
    import pandas as pd

    from mlops_provider.ml.drift_signals import normalized_importances, weighted_drift
    from mlops_provider.ml.learned_drift import (
        distance,
        judge_columns,
        learn_thresholds,
        learned_drift,
        leave_one_day_out,
    )
    from mlops_provider.operators.evidently import DriftReportOperator

    ex = seasonal_example() if spec_name == "card_fraud_seasonal" else example(spec_name)
    spec = ex.spec
    reference = pd.concat([ex.frames[d] for d in sorted(ex.frames)[:WINDOW]], ignore_index=True)
    import train as template

    holdout = ex.split.split(reference)[1]
    importance = template.importances(ex.model, holdout, ex.features)  # what the template logs
    arguments = spec.features.drift_arguments()  # as the DAG factory passes them
    kept = [*arguments["numerical_columns"], *arguments["categorical_columns"]]
    operator = DriftReportOperator(
        task_id="drift", dataset=spec.dataset.name, model_name=spec.name,
        drift_share_threshold=spec.monitoring.drift_share, **arguments,
    )  # fmt: skip
    weights = normalized_importances(importance, kept)
    window = sorted(ex.frames)[:WINDOW]
    first = operator._run_evidently(reference[kept], ex.frames[window[0]][kept])["columns"]
    methods = {name: column["method"] for name, column in first.items()}

    def score(rest: list, day) -> dict[str, float]:  # as the operator learns them: its Evidently run, one method
        ref = pd.concat([ex.frames[d][kept] for d in rest], ignore_index=True)
        columns = operator._run_evidently(ref, ex.frames[day][kept])["columns"]
        return {n: distance(c["method"], c["score"]) for n, c in columns.items() if c["method"] == methods.get(n)}

    floors = {name: distance(column["method"], column["threshold"]) for name, column in first.items()}
    thresholds = learn_thresholds(leave_one_day_out(window, score), floors=floors)
    rows = []
    for day in ex.later_days:
        result = operator._run_evidently(reference[kept], ex.frames[day][kept])
        judged = judge_columns({n: distance(c["method"], c["score"]) for n, c in result["columns"].items()}, thresholds)
        uncapped = sum(weights.get(n, 0.0) * c["excess"] for n, c in judged.items())
        rows.append({
            "day": day.isoformat(), "drifted_source": day >= ex.drift_from, "share": result["drift_share"],
            "weighted": weighted_drift(result["columns"], weights), "learned": learned_drift(judged, weights),
            "uncapped": uncapped, "drifted": sorted(c for c, v in result["columns"].items() if v["drifted"]),
        })  # fmt: skip
    return {"spec": spec_name, "weights": weights, "rows": rows}


def main(names: list[str]) -> None:
    for name in names or ["churn_classifier", "card_fraud", "card_fraud_seasonal"]:
        result = signals_for(name)
        top = sorted(result["weights"].items(), key=lambda kv: -kv[1])[:5]
        print(f"\n{name}: top feature weights " + ", ".join(f"{c} {w:.2f}" for c, w in top))
        print(
            f"  {'day':<11} {'source':<8} {'share':>6} {'weighted':>9} {'learned':>8} {'uncapped':>9}  drifted columns"
        )
        for row in result["rows"]:
            kind = "drifted" if row["drifted_source"] else "calm"
            columns = ", ".join(row["drifted"])
            print(
                f"  {row['day']:<11} {kind:<8} {row['share']:>6.2f} {row['weighted']:>9.2f} {row['learned']:>8.2f} "
                f"{row['uncapped']:>9.2f}  {columns}"
            )
        for signal in ("share", "weighted", "learned", "uncapped"):
            calm = max(r[signal] for r in result["rows"] if not r["drifted_source"])
            drifted = min(r[signal] for r in result["rows"] if r["drifted_source"])
            print(f"  {signal:<9} calm max {calm:.2f}, drifted min {drifted:.2f}, margin {drifted - calm:+.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
