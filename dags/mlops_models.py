"""The DAG factory's file: for every model spec, the five Airflow DAGs of its loop (ingest, training, promotion,
drift monitoring, rollback), ids prefixed by the model.

Specs are read from ``$MLOPS_MODELS_DIR`` (default: ``include/models`` of this project); add a model by adding a
spec (``mlops new-model``), check them with ``mlops spec check include/models``. Each spec is loaded on its own: a bad
one becomes a placeholder DAG ``<file stem>__spec_error`` naming the file and the key, and every other model's DAGs
load as before (docs/model-spec.md, "When a spec is bad"). No logic here: the factory (``mlops_provider.loop.factory``)
composes the provider's operators; nothing heavy is imported at parse time.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlops_provider.loop.factory import build_all

MODELS_DIR = Path(os.environ.get("MLOPS_MODELS_DIR") or Path(__file__).resolve().parents[1] / "include" / "models")

globals().update(build_all(MODELS_DIR))
