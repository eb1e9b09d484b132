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

import datetime as dt
import json
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "plugins"))
sys.path.insert(0, str(PROJECT_ROOT / "include" / "training"))

START = dt.date(2026, 11, 1)
WINDOW, CALM_DAYS, DRIFT_DAYS = 7, 5, 5


def compare(spec_name: str) -> list[dict]:
    import pandas as pd
    import train as template
    from sklearn.metrics import roc_auc_score

    from mlops_provider.demo import SOURCES, SourceSpec
    from mlops_provider.estimation import estimated_metric
    from mlops_provider.scoring import binary_labels
    from mlops_provider.spec import load_spec
    from mlops_provider.split import HoldoutSplit

    spec = load_spec(PROJECT_ROOT / "include" / "models" / f"{spec_name}.yaml")
    source = SOURCES[spec.dataset.table]
    drift_from = START + dt.timedelta(days=WINDOW + CALM_DAYS)
    days = [START + dt.timedelta(days=i) for i in range(WINDOW + CALM_DAYS + DRIFT_DAYS)]
    frames = {d: source.generate(d, SourceSpec(drift_from=drift_from)) for d in days}
    split = HoldoutSplit.from_mapping(spec.holdout)
    reference = pd.concat([frames[d] for d in days[:WINDOW]], ignore_index=True)
    params = {k: v["default"] for k, v in json.loads(spec.resolve(spec.training.hyperparameters).read_text()).items()}
    model, _, features = template.train(*split.split(reference), spec.entrypoint_schema(), params)
    rows = []
    for day in days[WINDOW:]:
        holdout = split.split(frames[day])[1]
        x = template.encode(holdout, features["numerical"], features["categories"])
        proba = model.predict_proba(x)[:, 1]
        labels = binary_labels(holdout[spec.label.column], spec.label.positive_class)
        rows.append({
            "day": day.isoformat(), "drifted": day >= drift_from, "rows": len(holdout),
            "estimated": estimated_metric(proba, "roc_auc", spec.gate.threshold),
            "realised": float(roc_auc_score(labels, proba)),
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
