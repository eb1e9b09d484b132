"""Deliberately bad model versions, one definition for the demo (``make demo``) and the tests: versions that pass
every offline check and misbehave only in the live serving backend, so that only the canary can catch them.

* ``constant`` (:func:`register_live_regression`): offline (the gate's evaluation, the shadow check) it predicts the
  mean of a good version's probability and the demo source's own churn formula
  (:func:`mlops_provider.demo.churn_source.churn_logit`), a few thousandths of AUC better than that version alone,
  so the gate lets it through; in the live backend it answers a constant (:data:`LIVE_CONSTANT`), a train/serve
  skew: every request answered 200, the canary's ``prediction_shift`` alarm rolls it back.
* ``fault``: offline the good version's own predictions; in the live backend every request raises (a fault only
  production meets: a missing dependency, a bad config): the canary's ``error_rate`` alarm rolls it back.

The demo's models only (the churn source's columns). The registering side takes an MLflow hook
(:class:`mlops_provider.hooks.mlflow.MlflowHook`) as an argument: this folder sits below the hooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: What the ``constant`` version answers live (a churn probability no customer mix averages to).
LIVE_CONSTANT = 0.97
KINDS = ("constant", "fault")

#: models-from-code: the wrapped version is the artifact ``inner``; the kind is written in when registering.
MODEL_CODE = '''
import sys

import mlflow.pyfunc
import numpy as np

KIND = "{kind}"
LIVE_CONSTANT = {constant}


class LiveRegression(mlflow.pyfunc.PythonModel):
    """Fine offline; misbehaves in the live serving backend only (mlops_provider/demo/bad_models.py)."""

    def load_context(self, context):
        self.inner = mlflow.pyfunc.load_model(context.artifacts["inner"])
        self.live = any(str(arg).endswith("mlops_provider/runtime/backend.py") for arg in sys.argv)

    def predict(self, context, model_input, params=None):
        if self.live and KIND == "fault":
            raise RuntimeError("a fault only live traffic meets")
        if self.live:
            return np.full(len(model_input), LIVE_CONSTANT)
        inner = np.asarray(self.inner.predict(model_input), dtype=float).reshape(len(model_input), -1)[:, -1]
        if KIND == "fault":
            return inner
        from mlops_provider.demo.churn_source import churn_logit

        x = model_input

        def number(name, fill):
            return np.nan_to_num(np.asarray(x[name], dtype=float), nan=fill)

        logit = churn_logit(number("tenure_days", 0.0), number("monthly_charges", 50.0), number("sessions_7d", 12.0),
                            number("support_tickets_30d", 0.0), number("payment_failures_90d", 0.0),
                            number("last_login_days_ago", 4.0), number("discount_pct", 0.0),
                            np.asarray(x["payment_method"], dtype=object), True)
        return (inner + 1.0 / (1.0 + np.exp(-logit))) / 2.0


mlflow.models.set_model(LiveRegression())
'''

#: version tags a registered version carries from its training (its data and split: what the evaluation reads);
#: the gate's, promotion's and canary's tags of the wrapped version are not carried over.
TRAINING_TAG_PREFIXES = ("data.", "split.")


def register_live_regression(
    hook: Any, model_name: str, like_version: str, folder: Path, kind: str = "constant"
) -> str:
    """Register a new version of ``model_name`` wrapping ``like_version`` (its signature and training tags, so the
    gate evaluates it on the same holdout), bad live only as ``kind`` says (see the module). ``folder``: scratch
    space for the code and the downloaded model. Returns the new version."""
    import mlflow.models
    import mlflow.pyfunc

    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    client = hook.get_client()
    source = client.get_model_version(model_name, like_version)
    uri = f"models:/{model_name}/{like_version}"
    folder.mkdir(parents=True, exist_ok=True)
    inner = hook.download_model(uri, folder / "inner")
    with hook.scoped_environment():
        wrapped = mlflow.models.get_model_info(uri)
    signature, metadata = wrapped.signature, wrapped.metadata  # metadata: the ``any`` columns' input_types
    code = folder / f"live_{kind}.py"
    code.write_text(MODEL_CODE.replace("{kind}", kind).replace("{constant}", repr(LIVE_CONSTANT)))
    tags = {k: v for k, v in source.tags.items() if k.startswith(TRAINING_TAG_PREFIXES)}
    experiment = hook.get_or_create_experiment(f"{model_name}-live-{kind}")  # artifacts where the hook keeps them
    with hook.scoped_environment():
        with mlflow.start_run(experiment_id=experiment):
            # uv_project_path: the model's own folder (no uv project), not the working directory's (MLflow would
            # copy the repository's uv.lock and pyproject.toml into the version)
            info = mlflow.pyfunc.log_model(name="model", python_model=str(code), artifacts={"inner": inner},
                                           signature=signature, metadata=metadata, pip_requirements=[],
                                           uv_project_path=folder)  # fmt: skip
        created = client.create_model_version(model_name, source=info.model_uri, run_id=info.run_id,
                                              model_id=info.model_id, tags={**tags, "demo.bad_live": kind})  # fmt: skip
    return str(created.version)
