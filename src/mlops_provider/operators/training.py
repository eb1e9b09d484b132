"""Training stage: train a model with the project's entrypoint, track it in MLflow, register it (one run and one
version per Airflow task)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, BaseOperator

from mlops_provider import __version__
from mlops_provider.exceptions import (
    DvcError,
    EntrypointContractError,
    MlflowConnectionError,
    TrainingDataError,
    TrainingRunError,
)
from mlops_provider.hooks.mixins import DockerEngineMixin, DvcHookMixin, MlflowHookMixin
from mlops_provider.layout import (
    CHALLENGER_ALIAS,
    DATA_MD5_TAG,
    DATA_PATH_TAG,
    DATA_REV_TAG,
    GATE_DECISION_TAG,
    RUN_KEY_TAG,
    RUNNERS,
    default_runner,
)
from mlops_provider.lineage.mixin import OpenLineageMixin
from mlops_provider.links.extra_links import (
    DvcVersionLink,
    MlflowModelVersionLink,
    MlflowRunLink,
    dvc_version_url,
    mlflow_run_url,
    model_version_url,
)
from mlops_provider.ml.hyperparameters import load_hyperparameter_spec, resolve
from mlops_provider.ml.split import split_from_mapping, split_from_tags
from mlops_provider.utils.compat import AirflowException, AirflowFailException
from mlops_provider.utils.paths import mlops_home, training_work_dir
from mlops_provider.utils.templated_fields import json_object

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

    from mlops_provider.lineage.datasets import Lineage
    from mlops_provider.ml.tuning import Tuning
    from mlops_provider.runtime.runners import DockerRunner, LocalRunner

TRIGGER_REASONS = (
    "schedule", "asset", "bootstrap", "drift", "performance", "prediction_drift", "manual", "reproduce",
)  # fmt: skip


def code_version(path: Path) -> str:
    """Git commit of the code at ``path`` (``-dirty`` when it has uncommitted changes), else the package version."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return f"airflow-provider-mlops=={__version__}"
    dirty = git("status", "--porcelain", "--", ".").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``model_schema`` argument: a label and at least one feature, lists of column names."""
    if not isinstance(schema, dict) or not schema.get("label"):
        raise ValueError("model_schema: needs 'label' (the label column)")
    unknown = sorted(set(schema) - {"label", "positive_class", "numerical", "categorical", "key", "segments"})
    if unknown:
        raise ValueError(
            f"model_schema: unknown key(s) {unknown}; allowed: label, positive_class, numerical, categorical, key, "
            "segments"
        )
    lists = {k: schema.get(k) or [] for k in ("numerical", "categorical", "segments")}
    if any(not isinstance(v, list) for v in lists.values()) or not (lists["numerical"] or lists["categorical"]):
        raise ValueError("model_schema: 'numerical' and 'categorical' are lists of columns, at least one non-empty")
    return {"positive_class": 1, **schema, **lists}


def unknown_conf_problem(conf: Any, declared: Iterable[str]) -> str | None:
    """The error for a run's conf with keys that are not declared params (a misspelt ``datset_rev`` would otherwise
    be ignored and the default used); None when every key is declared, or when nothing is declared to check against.
    """
    names = sorted(declared)
    if not names or not isinstance(conf, dict):
        return None
    unknown = sorted(set(conf) - set(names))
    if not unknown:
        return None
    return f"conf: unknown key(s) {unknown} in the run's conf; allowed: {names}. Trigger again with the right names."


def dataset_rev_problem(rev: str, kind: str, tag_pattern: str | None, newest: str | None = None) -> str | None:
    """The error for a ``dataset_rev`` that does not name a fixed version: only a tag or a commit id does. A branch
    (``main``) moves with every new version, so the model would record a data name that later means other data;
    ``kind`` is ``DvcHook.rev_kind``'s answer. None when the rev is fine."""
    if kind in ("tag", "commit"):
        return None
    what = "a branch of the data registry (it moves)" if kind == "branch" else "not a tag or a commit id"
    tags = f"a training-set tag ({tag_pattern}{f', e.g. {newest}' if newest else ''})" if tag_pattern else "a tag"
    return (
        f"dataset_rev: {rev!r} is {what}; allowed: {tags} or a commit id (7-40 hex digits) of the data registry, "
        "or empty for the newest training set."
    )


def tuning_result(tags: dict[str, str]) -> dict[str, Any] | None:
    """The XCom ``tuning`` of a finished training run, read back from its tags (None: it did not tune)."""
    if "tuning.study" not in tags:
        return None
    return {"study": tags["tuning.study"], "trials": int(tags.get("tuning.trials", "0")),
            "best_trial": int(tags.get("tuning.best_trial", "-1")),
            "best_value": float(tags.get("tuning.best_value", "nan")), "metric": tags.get("tuning.metric"),
            "params": json.loads(tags.get("training.params", "{}"))}  # fmt: skip


def challenger_alias(model_asset: Asset) -> AssetAlias:
    """The alias through which ``TrainModelOperator`` emits ``model_asset`` events (only for unjudged versions)."""
    return AssetAlias(name=f"{model_asset.name}__challenger")


class TrainModelOperator(OpenLineageMixin, MlflowHookMixin, DvcHookMixin, DockerEngineMixin, BaseOperator):
    """Train a model with the project's entrypoint, track it in MLflow, register it, alias it ``challenger``.

    Steps: check the inputs (hyperparameters against their spec, the dataset rev in the data registry, the
    runner and image, the tracking server with bounded retries) before anything runs; fetch the dataset at the
    rev (md5-checked) into ``$MLOPS_HOME/training/<run>``; get or create the MLflow run of this task
    (tag ``airflow.run_key`` = ``dag_id/run_id/task_id``); run the entrypoint (``local`` subprocess or
    ``docker`` container); register the logged model once per run and point the alias at it.

    Re-running is safe: a task whose run already finished and registered its model returns that result
    without training again; a retry after a crash reuses the same MLflow run; the model version is looked up by
    run id before one is created, so there is one version per run.

    :param dataset_path: path of the training set in the data registry (templated).
    :param dataset_rev: DVC/git rev of the training set: a tag or a commit id (templated); a branch or another
        moving name is refused (the version would record a data name that later means other data). When empty, the
        newest event of ``dataset_asset`` that triggered the run gives ``rev`` and ``path`` (its ``extra``),
        else the newest tag matching ``dataset_tag_pattern``.
    :param dataset_asset: the training-set Asset, when the DAG is scheduled on it.
    :param dataset_tag_pattern: glob of data registry tags to take the newest (by name) of when no rev is given
        (e.g. ``training-set/<dataset>/*``: date-named tags sort by date).
    :param entrypoint: path of the training entrypoint for the ``local`` runner; it must keep the entrypoint contract
        (``docs/training-entrypoint.md``), which is checked after it runs.
    :param model_schema: what the entrypoint gets as ``--schema``: ``{"label", "positive_class", "numerical",
        "categorical"}`` (lists of feature columns), optionally ``"segments"``; ``ModelSpec.entrypoint_schema()``
        builds it.
    :param holdout: the provider's split (``ModelSpec.holdout`` builds it from the spec's ``split``): a key hash,
        ``{"key", "fraction", "seed"}``, or out of time, ``{"method": "out_of_time", "holdout_days", "time_column"}``
        (the last ``holdout_days`` days of the training set by the UTC date of ``time_column``). The entrypoint gets
        the rows it may train on and the holdout rows apart, and the split as applied (for out of time: the first
        held-out day) is recorded on the run (tags and params ``split.*``) and the version (tags ``split.*``), so
        evaluation and the performance check score only rows the model never trained on.
    :param hyperparameter_spec: JSON spec of the hyperparameters (names, types, ranges, defaults).
    :param hyperparameters: overrides, a dict or a JSON object string (templated, e.g. from the run's conf).
    :param experiment_name: MLflow experiment (templated).
    :param model_name: registered model name (templated).
    :param alias: alias given to the new version (default ``challenger``).
    :param trigger_reason: why this training runs: schedule, asset, drift, performance, manual (templated).
    :param trigger_detail: context of the reason, e.g. the drift report location (templated, dict or JSON).
    :param runner: ``local`` or ``docker``; default ``MLOPS_TRAINING_RUNNER`` (``local``).
    :param image: training image for the ``docker`` runner (templated).
    :param network_mode: container network (``host`` reaches a tracking server on this machine).
    :param reject_unknown_conf: fail when the run's conf has a key that is not one of the DAG's declared params
        (a misspelt ``datset_rev`` would otherwise be ignored and the newest data used). A DAG that declares no
        params is not checked.
    :param tuning: hyperparameter search before training (the spec's ``training.tuning``, ``TuningSpec.plan()``
        builds it; ``None``: never tune): the search space (checked against ``hyperparameter_spec`` before anything
        runs), the budget (``n_trials``, ``timeout_minutes``), ``metric`` and ``direction``, ``pruning``, ``seed``,
        ``validation_fraction`` and ``on``, the trigger reasons that tune. An Optuna study runs the entrypoint per
        trial (each a nested MLflow run of the training run) on the training rows less validation rows carved from
        them, never the holdout; the best trial's hyperparameters train the registered model. A retry resumes the
        study (its journal is under the storage root). Needs the ``tune`` extra.
    :param model_asset: Asset to emit an event of after registration (``extra`` = the XCom below); the
        promotion DAG schedules on it. The event goes out through an ``AssetAlias`` (``<asset name>__challenger``)
        so that a re-run of a task whose version the gate already judged emits nothing and triggers no
        promotion run again.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``,
    ``dvc_conn_id``, ``docker_url``, ``docker_conn_id``.

    XCom (return value): ``{"run_id", "model_uri", "model_name", "version", "metrics", "data_rev",
    "data_md5", "split", "resumed", "tuning"}`` (``split``: the split's tags as applied, e.g. ``split.method``,
    ``split.holdout_from``; ``tuning``: ``None`` when this training did not tune, else ``{"study", "trials",
    "best_trial", "best_value", "metric", "params"}``: finished trials, the best trial's number and validation value,
    the hyperparameters it chose).
    """

    template_fields: Sequence[str] = (
        "dataset_path",
        "dataset_rev",
        "hyperparameters",
        "experiment_name",
        "model_name",
        "trigger_reason",
        "trigger_detail",
        "image",
    )
    operator_extra_links = (MlflowRunLink(), MlflowModelVersionLink(), DvcVersionLink())
    ui_color = "#e0f0ff"

    def __init__(
        self,
        *,
        dataset_path: str,
        dataset_rev: str,
        entrypoint: str,
        model_schema: dict[str, Any],
        holdout: dict[str, Any],
        dataset_asset: Asset | None = None,
        dataset_tag_pattern: str | None = None,
        model_asset: Asset | None = None,
        hyperparameter_spec: str,
        experiment_name: str,
        model_name: str,
        hyperparameters: dict[str, Any] | str | None = None,
        alias: str = CHALLENGER_ALIAS,
        trigger_reason: str = "manual",
        trigger_detail: dict[str, Any] | str | None = None,
        runner: str | None = None,
        image: str = "mlops-training:latest",
        network_mode: str = "host",
        reject_unknown_conf: bool = True,
        tuning: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if model_asset is not None:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), challenger_alias(model_asset)]
        super().__init__(**kwargs)
        if runner is not None and runner not in RUNNERS:
            raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
        self.dataset_path = dataset_path
        self.dataset_rev = dataset_rev
        self.dataset_asset = dataset_asset
        self.dataset_tag_pattern = dataset_tag_pattern
        self.model_asset = model_asset
        self.entrypoint = entrypoint
        self.model_schema = check_schema(model_schema)
        self.split = split_from_mapping(holdout)
        self.hyperparameter_spec = hyperparameter_spec
        self.hyperparameters = hyperparameters
        self.experiment_name = experiment_name
        self.model_name = model_name
        self.alias = alias
        self.trigger_reason = trigger_reason
        self.trigger_detail = trigger_detail
        self.runner = runner
        self.image = image
        self.network_mode = network_mode
        self.reject_unknown_conf = reject_unknown_conf
        self.tuning: Tuning | None = None
        if tuning:  # the tuning module loads at parse only for a spec that tunes (issue 31)
            from mlops_provider.ml.tuning import Tuning

            self.tuning = Tuning.from_mapping(tuning, "tuning")
        self._runner: LocalRunner | DockerRunner | None = None
        self._rev_name: str | None = None

    def _default_dataset_rev(self, context: Context) -> None:
        """When no rev was given: the newest triggering event of ``dataset_asset``, else the newest tag."""
        if self.dataset_rev:
            return
        triggering = context.get("triggering_asset_events") or {}
        events = (triggering.get(self.dataset_asset) or []) if self.dataset_asset is not None else []
        newest = max(events, key=lambda event: event.timestamp, default=None)
        if newest is not None:
            self.dataset_rev = str(newest.extra["rev"])  # the commit: immutable, unlike the tag
            self.dataset_path = str(newest.extra.get("path") or self.dataset_path)
            self._rev_name = str(newest.extra.get("tag") or self.dataset_rev)
            self.log.info("Training set from asset event: %s at %s", self.dataset_path, self.dataset_rev)
            return
        tags = self.dvc_hook.tags(self.dataset_tag_pattern) if self.dataset_tag_pattern else []
        if not tags:
            raise AirflowFailException(
                "dataset_rev: empty, the run was not triggered by a training-set event, and no data registry tag "
                f"matches {self.dataset_tag_pattern!r}; give dataset_rev in the run's conf (or run ingest first)"
            )
        self.dataset_rev = self._rev_name = tags[-1]
        self.log.info("Training set: the newest tag %s", self.dataset_rev)

    def _check_inputs(self) -> tuple[dict[str, Any], str, str]:
        """Hyperparameters, dataset sha and md5; every problem is raised before anything runs."""
        if self.trigger_reason not in TRIGGER_REASONS:
            raise AirflowFailException(f"trigger_reason: {self.trigger_reason!r} is not one of {TRIGGER_REASONS}")
        try:
            params = resolve(
                load_hyperparameter_spec(Path(self.hyperparameter_spec)),
                json_object(self.hyperparameters, "hyperparameters"),
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        if self.tuning is not None:
            problems = self.tuning.problems(load_hyperparameter_spec(Path(self.hyperparameter_spec)))
            if problems:
                raise AirflowFailException("\n".join(problems))
        if not self.dataset_rev:
            raise AirflowFailException("dataset_rev: empty; name a tag or commit id of the data registry")
        try:
            sha = self.dvc_hook.resolve_rev(self.dataset_rev)
        except DvcError as exc:
            raise AirflowFailException(f"dataset_rev: {exc}") from exc
        kind = self.dvc_hook.rev_kind(self.dataset_rev)
        if kind not in ("tag", "commit"):
            tags = self.dvc_hook.tags(self.dataset_tag_pattern) if self.dataset_tag_pattern else []
            newest = tags[-1] if tags else None  # named in the message: what to trigger with instead
            raise AirflowFailException(dataset_rev_problem(self.dataset_rev, kind, self.dataset_tag_pattern, newest))
        out = self.dvc_hook.dvc_file_at(self.dataset_path, sha)
        if out is None:
            raise AirflowFailException(
                f"dataset_path: {self.dataset_path!r} is not versioned at dataset_rev {self.dataset_rev!r} ({sha[:10]})"
            )
        if not self.dvc_hook.versions_file(sha, self.dataset_path):
            # Another commit (a partition's, say) also "has" the training set file, but an older one: training on
            # it would record lineage that names the wrong data.
            raise AirflowFailException(
                f"dataset_rev: {self.dataset_rev!r} ({sha[:10]}) is not a version of {self.dataset_path}: that commit "
                f"versioned other files. Name a training-set tag ({self.dataset_tag_pattern or 'training-set/...'}) "
                "or the commit that versioned the training set."
            )
        return params, sha, str(out["md5"])

    def _check_conf(self, context: Context) -> None:
        """A run's conf may only carry the DAG's declared params: a misspelt key would otherwise be silently ignored.

        Not ``context["params"]``: Airflow merges the run's conf into it (``dag_run_conf_overrides_params``), so an
        unknown key is there too. The declared names are the DAG's and this task's own params, which the merge
        leaves alone."""
        if not self.reject_unknown_conf:
            return
        dag = context.get("dag") or (self.dag if self.has_dag() else None)
        declared = {*(getattr(dag, "params", None) or {}), *(self.params or {})}
        problem = unknown_conf_problem(getattr(context.get("dag_run"), "conf", None) or {}, declared)
        if problem:
            raise AirflowFailException(problem)

    def _make_runner(self, context: Context, run_key: str) -> LocalRunner | DockerRunner:
        from mlops_provider.runtime.runners import DockerRunner, LocalRunner

        runner = self.runner or default_runner()
        if runner == "docker":
            docker_runner = DockerRunner(
                image=self.image,
                mount_root=mlops_home(),
                run_key=run_key,
                try_number=context["ti"].try_number,
                log=self.log,
                docker_url=self.docker_url,
                docker_conn_id=self.docker_conn_id,
                network_mode=self.network_mode,
            )
            docker_runner.check()
            return docker_runner
        return LocalRunner(Path(self.entrypoint), self.log)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.runtime.runners import MODEL_ID_TAG

        ti = context["ti"]
        run_key = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
        self._check_conf(context)
        self._default_dataset_rev(context)
        params, sha, md5 = self._check_inputs()
        try:
            self._runner = self._make_runner(context, run_key)
        except TrainingRunError as exc:
            raise AirflowFailException(str(exc)) from exc
        hook = self.mlflow_hook
        try:
            hook.wait_until_reachable()
        except MlflowConnectionError as exc:
            raise AirflowException(str(exc)) from exc  # retried by Airflow: the server may come back

        experiment_id = hook.get_or_create_experiment(self.experiment_name)
        existing = hook.find_run_by_tag(experiment_id, RUN_KEY_TAG, run_key)
        resumed = bool(existing and existing.info.status == "FINISHED" and MODEL_ID_TAG in existing.data.tags)
        if existing is not None and resumed:
            run_id = existing.info.run_id
            self.log.info(
                "MLflow run %s of %s already finished: reusing its model, not training again", run_id, run_key
            )
            metrics = dict(existing.data.metrics)
            model_id = existing.data.tags[MODEL_ID_TAG]
            applied = split_from_tags(existing.data.tags) or self.split  # as it was applied to the data
            split_tags = applied.tags()
            tuned = tuning_result(existing.data.tags)
        else:
            if existing is not None:
                run_id = existing.info.run_id
                self.log.info("Reusing MLflow run %s (status %s) of %s", run_id, existing.info.status, run_key)
            else:
                run_id = hook.create_run(experiment_id, f"{ti.task_id}-{ti.run_id}", {RUN_KEY_TAG: run_key})
            metrics, model_id, split_tags, tuned = self._train(context, run_id, params, sha, md5, run_key)
        version, judged = self._register(run_id, model_id, sha, md5, split_tags)

        MlflowRunLink.persist(context, mlflow_run_url(run_id))
        MlflowModelVersionLink.persist(context, model_version_url(self.model_name, version))
        DvcVersionLink.persist(context, dvc_version_url(sha))
        overall = {k: v for k, v in metrics.items() if not k.startswith("segment.")}
        result = {
            "run_id": run_id,
            "model_uri": f"models:/{self.model_name}/{version}",
            "model_name": self.model_name,
            "version": version,
            "metrics": overall,
            "data_rev": sha,
            "data_md5": md5,
            "split": split_tags,
            "resumed": resumed,
            "tuning": tuned,
        }
        if self.model_asset is not None:
            if judged:
                self.log.info(
                    "%s v%s was already judged by the gate (%s): not announcing it to promotion again",
                    self.model_name, version, judged,
                )  # fmt: skip
            else:
                extra = {k: v for k, v in result.items() if k != "resumed"}
                context["outlet_events"][challenger_alias(self.model_asset)].add(self.model_asset, extra=extra)
        return self.record_lineage(
            result,
            registry=self.dvc_hook.registry,
            tracking_uri=hook.tracking_uri,
            registry_uri=hook.registry_uri,
            dataset_tag=str(self.dataset_rev or ""),
        )

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the training set at its rev (md5). Wrote: the registered model version; the MLflow run."""
        from mlops_provider.lineage.datasets import Lineage, dvc_file, mlflow_model, mlflow_run

        tag = result["dataset_tag"] if result["dataset_tag"] != result["data_rev"] else ""
        return Lineage(
            inputs=[
                dvc_file(result["registry"], str(self.dataset_path), rev=result["data_rev"], tag=tag,
                         md5=result["data_md5"])
            ],
            outputs=[mlflow_model(result["registry_uri"], result["model_name"], result["version"],
                                  run_id=result["run_id"])],
            run_facets=mlflow_run(result["tracking_uri"], result["run_id"]),
        )  # fmt: skip

    def _train(
        self, context: Context, run_id: str, params: dict[str, Any], sha: str, md5: str, run_key: str
    ) -> tuple[dict[str, float], str, dict[str, str], dict[str, Any] | None]:
        from mlops_provider.ml.tuning import COUNTED
        from mlops_provider.runtime.runners import run_training

        assert self._runner is not None
        ti = context["ti"]
        work = training_work_dir(run_id)
        work.mkdir(parents=True, exist_ok=True)
        dataset = work / "dataset.parquet"
        self.dvc_hook.read_to(self.dataset_path, sha, dataset)  # md5-checked against the registry
        detail = json_object(self.trigger_detail, "trigger_detail")
        tags = {
            RUN_KEY_TAG: run_key,
            "airflow.dag_id": ti.dag_id,
            "airflow.run_id": ti.run_id,
            "airflow.task_id": ti.task_id,
            "airflow.try_number": str(ti.try_number),
            DATA_REV_TAG: sha,
            "data.rev_name": self._rev_name or self.dataset_rev,
            DATA_MD5_TAG: md5,
            DATA_PATH_TAG: self.dataset_path,
            "data.registry": self.dvc_hook.remote_url,
            "code.version": code_version(Path(self.entrypoint).parent),
            "trigger.reason": self.trigger_reason,
            "trigger.detail": json.dumps(detail, sort_keys=True)[:4000],
        }
        tuning = self.tuning if self.tuning is not None and self.tuning.tunes(self.trigger_reason) else None
        if self.tuning is not None and tuning is None:
            self.log.info("Not tuning: trigger reason %r is not in tuning.on %s", self.trigger_reason, self.tuning.on)
        try:
            result = run_training(
                self._runner,
                self.mlflow_hook,
                dataset=dataset,
                split=self.split,
                schema=self.model_schema,
                mlflow_run_id=run_id,
                params=params,
                tags=tags,
                work_dir=work,
                tuning=tuning,
                log=self.log,
            )
        except TrainingDataError as exc:
            raise AirflowFailException(str(exc)) from exc  # the same data fails again: no retry
        except TrainingRunError as exc:
            raise AirflowException(str(exc)) from exc
        except EntrypointContractError as exc:
            raise AirflowFailException(str(exc)) from exc  # the code is wrong: a retry would break it again
        study = result.get("tuning")
        tuned = None
        if study is not None:
            tuned = {"study": study["study"], "trials": sum(1 for t in study["trials"] if t["state"] in COUNTED),
                     "best_trial": study["best"]["number"], "best_value": study["best"]["value"],
                     "metric": study["metric"], "params": study["best"]["params"]}  # fmt: skip
        return result["metrics"], str(result["model_id"]), dict(result["split"]), tuned

    def _register(
        self, run_id: str, model_id: str, sha: str, md5: str, split_tags: dict[str, str]
    ) -> tuple[str, str | None]:
        """Register the run's model once (tagged with its data and ``split_tags``, the split as applied); point the
        alias at it unless the gate already judged it (a re-run of an old training must not make an old version the
        challenger again). Returns the version and the gate's decision on it, if any."""
        hook = self.mlflow_hook
        hook.get_or_create_registered_model(self.model_name)
        existing = hook.model_version_of_run(self.model_name, run_id)
        if existing is not None:
            version = str(existing.version)
            judged = hook.model_version_tags(self.model_name, version).get(GATE_DECISION_TAG)
            self.log.info("Model version %s of %s already registered for run %s", version, self.model_name, run_id)
            if judged:
                return version, judged
        else:
            version = hook.create_model_version(
                self.model_name,
                source=f"models:/{model_id}",
                run_id=run_id,
                model_id=model_id,
                tags={DATA_REV_TAG: sha, DATA_MD5_TAG: md5, DATA_PATH_TAG: self.dataset_path, **split_tags},
            )
            self.log.info("Registered %s version %s from run %s", self.model_name, version, run_id)
        if hook.alias_version(self.model_name, self.alias) != version:
            hook.set_aliases(self.model_name, {self.alias: version})
        return version, None

    def on_kill(self) -> None:
        if self._runner is not None:
            self._runner.kill()
