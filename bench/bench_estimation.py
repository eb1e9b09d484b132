"""Estimated vs realised performance on the example models' data (issue 20, item 3). Prints numbers, asserts
nothing.

For each example spec: the template entrypoint's model is trained on a 7-day window of calm days; on each of the
following calm and drifted days, the ROC AUC is estimated from the model's probabilities on the day's holdout rows
(no labels: ``mlops_provider.estimation``) and realised on the same rows with their labels. Prints both per day and
the mean and largest absolute error, separately for calm and drifted days (drift that changes the relationship
between features and label is exactly what a label-free estimate cannot see).

Usage: python bench/bench_estimation.py [SPEC_NAME ...]   (default: churn_classifier card_fraud)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from examples import example  # noqa: E402


def compare(spec_name: str) -> list[dict]:
    import train as template
    from sklearn.metrics import roc_auc_score

    from mlops_provider.estimation import estimated_metric
    from mlops_provider.scoring import binary_labels

    ex = example(spec_name)
    rows = []
    for day in ex.later_days:
        holdout = ex.split.split(ex.frames[day])[1]
        proba = ex.model.predict_proba(template.encode(holdout, ex.features["numerical"], ex.features["categories"]))
        labels = binary_labels(holdout[ex.spec.label.column], ex.spec.label.positive_class)
        rows.append({
            "day": day.isoformat(), "drifted": day >= ex.drift_from, "rows": len(holdout),
            "estimated": estimated_metric(proba[:, 1], "roc_auc", ex.spec.gate.threshold),
            "realised": float(roc_auc_score(labels, proba[:, 1])),
        })  # fmt: skip
    return rows


def main(names: list[str]) -> None:
    for name in names or ["churn_classifier", "card_fraud"]:
        rows = compare(name)
        print(f"\n{name}: ROC AUC on each day's holdout rows, estimated without labels vs realised")
        print(f"  {'day':<11} {'source':<8} {'rows':>5} {'estimated':>10} {'realised':>9} {'error':>7}")
        for r in rows:
            kind = "drifted" if r["drifted"] else "calm"
            error, estimated, realised = r["estimated"] - r["realised"], r["estimated"], r["realised"]
            print(f"  {r['day']:<11} {kind:<8} {r['rows']:>5} {estimated:>10.3f} {realised:>9.3f} {error:>+7.3f}")
        for kind, flag in (("calm", False), ("drifted", True)):
            errors = [abs(r["estimated"] - r["realised"]) for r in rows if r["drifted"] is flag]
            print(f"  {kind:<8} mean |error| {sum(errors) / len(errors):.3f}, max {max(errors):.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
