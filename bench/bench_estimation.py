"""Estimated vs realised performance on the example models' data (issue 20, item 3; calibration and bounds: issue
28, item 3). Prints numbers, asserts nothing.

For each example spec: the template entrypoint's model is trained on a 7-day window of calm days; on each of the
following calm and drifted days, the ROC AUC is estimated from the model's probabilities on the day's holdout rows
(no labels: ``mlops_provider.ml.estimation``) and realised on the same rows with their labels. Prints both per day and
the mean and largest absolute error, separately for calm and drifted days (drift that changes the relationship
between features and label is exactly what a label-free estimate cannot see). The estimate is made twice: on the raw
probabilities, after the isotonic calibration fitted on the holdout of the training window, with its bootstrap
interval, and after the ``auto`` choice (the default: the calibration whose cross-fitted Brier score on that holdout
beats the raw scores', else none; printed with its numbers). Last, the synthetic case of
``mlops_provider.ml.estimation`` (known truth): the error under no shift, covariate shift and concept change, with
each calibration.

Usage: python bench/bench_estimation.py [SPEC_NAME ...]   (default: churn_classifier card_fraud)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from examples import example  # noqa: E402


def compare(spec_name: str) -> list[dict]:
    import pandas as pd
    import train as template
    from sklearn.metrics import roc_auc_score

    from mlops_provider.ml.estimation import (
        apply_calibration,
        estimate,
        estimated_metric,
        fit_calibrations,
        select_calibration,
    )
    from mlops_provider.ml.scoring import binary_labels

    ex = example(spec_name)
    label, positive = ex.spec.label.column, ex.spec.label.positive_class

    def scored(frame: pd.DataFrame) -> tuple:
        proba = ex.model.predict_proba(template.encode(frame, ex.features["numerical"], ex.features["categories"]))
        return binary_labels(frame[label], positive), proba[:, 1]

    window = pd.concat([ex.frames[d] for d in sorted(ex.frames)[: len(ex.frames) - len(ex.later_days)]])
    fits = fit_calibrations(*scored(ex.split.split(window)[1]))
    calibration, auto = select_calibration(fits, "isotonic"), select_calibration(fits, "auto")
    print(f"\n{spec_name}: {auto['reason']}")
    rows = []
    for day in ex.later_days:
        labels, proba = scored(ex.split.split(ex.frames[day])[1])
        made = estimate(proba, "roc_auc", ex.spec.gate.threshold, calibration, seed=day.toordinal())
        rows.append({
            "day": day.isoformat(), "drifted": day >= ex.drift_from, "rows": len(labels),
            "estimated": estimated_metric(proba, "roc_auc", ex.spec.gate.threshold),
            "calibrated": made["value"], "low": made["low"], "high": made["high"],
            "auto": estimated_metric(apply_calibration(auto, proba), "roc_auc", ex.spec.gate.threshold, proba),
            "realised": float(roc_auc_score(labels, proba)),
        })  # fmt: skip
    return rows


def main(names: list[str]) -> None:
    for name in names or ["churn_classifier", "card_fraud"]:
        rows = compare(name)
        print(f"\n{name}: ROC AUC on each day's holdout rows, estimated without labels (raw; isotonic) vs realised")
        print(f"  {'day':<11} {'source':<8} {'rows':>5} {'raw':>6} {'isotonic [95%]':>22} {'realised':>9} "
              f"{'err raw':>8} {'err iso':>8}")  # fmt: skip
        for r in rows:
            kind = "drifted" if r["drifted"] else "calm"
            bounds = f"{r['calibrated']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
            errors = f"{r['estimated'] - r['realised']:>+8.3f} {r['calibrated'] - r['realised']:>+8.3f}"
            print(f"  {r['day']:<11} {kind:<8} {r['rows']:>5} {r['estimated']:>6.3f} {bounds:>22} "
                  f"{r['realised']:>9.3f} {errors}")  # fmt: skip
        for kind, flag in (("calm", False), ("drifted", True)):
            part = [r for r in rows if r["drifted"] is flag]
            for key, shown in (("estimated", "raw"), ("calibrated", "isotonic"), ("auto", "auto")):
                errors = [abs(r[key] - r["realised"]) for r in part]
                print(f"  {kind:<8} {shown:<9} mean |error| {sum(errors) / len(errors):.3f}, max {max(errors):.3f}")
            covered = sum(r["low"] <= r["realised"] <= r["high"] for r in part)
            print(f"  {kind:<8} realised within the isotonic interval on {covered} of {len(part)} days")


def synthetic() -> None:
    from mlops_provider.ml.estimation import SHIFTS, synthetic_estimate_error

    print("\nsynthetic (mlops_provider.ml.estimation.synthetic_scores, seeds 0-4): mean estimated - realised ROC AUC")
    print(f"  {'shift':<10} {'rows':>6} {'isotonic':>9} {'sigmoid':>8} {'none':>7} {'auto':>7}  interval covers "
          "(isotonic)")  # fmt: skip
    for shift in SHIFTS:
        for rows in (900, 20_000):
            cells, covered = [], 0
            for calibration in ("isotonic", "sigmoid", "none", "auto"):
                results = [
                    synthetic_estimate_error(shift, calibration=calibration, rows=rows, seed=s) for s in range(5)
                ]
                cells.append(sum(r["error"] for r in results) / len(results))
                if calibration == "isotonic":
                    covered = sum(bool(r["covered"]) for r in results)
            print(
                f"  {shift:<10} {rows:>6} {cells[0]:>+9.3f} {cells[1]:>+8.3f} {cells[2]:>+7.3f} {cells[3]:>+7.3f}  "
                f"{covered} of 5"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
    synthetic()
