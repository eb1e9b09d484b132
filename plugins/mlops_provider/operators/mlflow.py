"""MLflow operators: train and register a model with one MLflow run per Airflow task."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlops_provider import __version__
from mlops_provider.bases import DvcHookMixin, MlflowHookMixin
from mlops_provider.evidence import attempt_key, write_record
from mlops_provider.hooks.dvc import DvcError, DvcHook
from mlops_provider.hooks.mlflow import MlflowConnectionError, MlflowHook
from mlops_provider.hyperparameters import load_spec, resolve
from mlops_provider.layout import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DATA_MD5_TAG,
    DATA_PATH_TAG,
    DATA_REV_TAG,
    GATE_DECISION_TAG,
    PREVIOUS_ALIAS,
    RUN_KEY_TAG,
)
from mlops_provider.links import (
    DvcVersionLink,
    MlflowModelVersionLink,
    MlflowRunLink,
    VerdictLedgerLink,
    dvc_version_url,
    mlflow_run_url,
    model_version_url,
    report_url,
)
from mlops_provider.locks import registry_lock
from mlops_provider.paths import ledger_dir, mlops_home
from mlops_provider.runners import (
    MODEL_ID_TAG,
    RUNNERS,
    DockerRunner,
    LocalRunner,
    TrainingRunError,
    default_runner,
    run_training,
)
from mlops_provider.templates import json_object

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

TRIGGER_REASONS = ("schedule", "asset", "bootstrap", "drift", "performance", "manual", "reproduce")


def code_version(path: Path) -> str:
    """Git commit of the code at ``path`` (``-dirty`` when it has uncommitted changes), else the package version."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return f"airflow-provider-mlops=={__version__}"
    dirty = git("status", "--porcelain", "--", ".").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def challenger_alias(model_asset: Asset) -> AssetAlias:
    """The alias through which ``TrainModelOperator`` emits ``model_asset`` events (only for unjudged versions)."""
    return AssetAlias(name=f"{model_asset.name}__challenger")


class TrainModelOperator(MlflowHookMixin, DvcHookMixin, BaseOperator):
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
    :param dataset_rev: DVC/git rev of the training set: tag, branch or commit (templated). When empty, the
        newest event of ``dataset_asset`` that triggered the run gives ``rev`` and ``path`` (its ``extra``),
        else the newest tag matching ``dataset_tag_pattern``.
    :param dataset_asset: the training-set Asset, when the DAG is scheduled on it.
    :param dataset_tag_pattern: glob of data registry tags to take the newest (by name) of when no rev is given
        (e.g. ``training-set/<dataset>/*``: date-named tags sort by date).
    :param entrypoint: path of the training entrypoint (train.py) for the ``local`` runner.
    :param hyperparameter_spec: JSON spec of the hyperparameters (names, types, ranges, defaults).
    :param hyperparameters: overrides, a dict or a JSON object string (templated, e.g. from the run's conf).
    :param experiment_name: MLflow experiment (templated).
    :param model_name: registered model name (templated).
    :param alias: alias given to the new version (default ``challenger``).
    :param trigger_reason: why this training runs: schedule, asset, drift, performance, manual (templated).
    :param trigger_detail: context of the reason, e.g. the drift report location (templated, dict or JSON).
    :param runner: ``local`` or ``docker``; default ``MLOPS_TRAINING_RUNNER`` (``local``).
    :param image: training image for the ``docker`` runner (templated).
    :param docker_url: Docker engine URL.
    :param network_mode: container network (``host`` reaches a tracking server on this machine).
    :param reject_unknown_conf: fail when the run's conf has a key that is not one of the DAG's params (a misspelt
        ``datset_rev`` would otherwise be ignored and the newest data used).
    :param mlflow_conn_id: connection of type ``mlflow``.
    :param dvc_conn_id: connection of type ``dvc``.
    :param model_asset: Asset to emit an event of after registration (``extra`` = the XCom below); the
        promotion DAG schedules on it. The event goes out through an ``AssetAlias`` (``<asset name>__challenger``)
        so that a re-run of a task whose version the gate already judged emits nothing and triggers no
        promotion run again.

    XCom (return value): ``{"run_id", "model_uri", "model_name", "version", "metrics", "data_rev",
    "data_md5", "resumed"}``.
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
        docker_url: str = "unix://var/run/docker.sock",
        network_mode: str = "host",
        reject_unknown_conf: bool = True,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        dvc_conn_id: str = DvcHook.default_conn_name,
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
        self.hyperparameter_spec = hyperparameter_spec
        self.hyperparameters = hyperparameters
        self.experiment_name = experiment_name
        self.model_name = model_name
        self.alias = alias
        self.trigger_reason = trigger_reason
        self.trigger_detail = trigger_detail
        self.runner = runner
        self.image = image
        self.docker_url = docker_url
        self.network_mode = network_mode
        self.reject_unknown_conf = reject_unknown_conf
        self.mlflow_conn_id = mlflow_conn_id
        self.dvc_conn_id = dvc_conn_id
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
                load_spec(Path(self.hyperparameter_spec)), json_object(self.hyperparameters, "hyperparameters")
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        if not self.dataset_rev:
            raise AirflowFailException("dataset_rev: empty; name a tag, branch or commit of the data registry")
        try:
            sha = self.dvc_hook.resolve_rev(self.dataset_rev)
        except DvcError as exc:
            raise AirflowFailException(f"dataset_rev: {exc}") from exc
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
        """A run's conf may only carry the DAG's params: a misspelt key would otherwise be silently ignored."""
        dag_run, params = context.get("dag_run"), context.get("params")
        conf = getattr(dag_run, "conf", None) or {}
        if not self.reject_unknown_conf or not params or not isinstance(conf, dict):
            return
        unknown = sorted(set(conf) - set(params))
        if unknown:
            raise AirflowFailException(
                f"conf: unknown key(s) {unknown} in the run's conf; allowed: {sorted(params)}. Trigger again with "
                "the right names."
            )

    def _make_runner(self, context: Context, run_key: str) -> LocalRunner | DockerRunner:
        runner = self.runner or default_runner()
        if runner == "docker":
            docker_runner = DockerRunner(
                image=self.image,
                mount_root=mlops_home(),
                run_key=run_key,
                try_number=context["ti"].try_number,
                log=self.log,
                docker_url=self.docker_url,
                network_mode=self.network_mode,
            )
            docker_runner.check()
            return docker_runner
        return LocalRunner(Path(self.entrypoint), self.log)

    def execute(self, context: Context) -> dict[str, Any]:
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
        else:
            if existing is not None:
                run_id = existing.info.run_id
                self.log.info("Reusing MLflow run %s (status %s) of %s", run_id, existing.info.status, run_key)
            else:
                run_id = hook.create_run(experiment_id, f"{ti.task_id}-{ti.run_id}", {RUN_KEY_TAG: run_key})
            metrics, model_id = self._train(context, run_id, params, sha, md5, run_key)
        version, judged = self._register(run_id, model_id, sha, md5)

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
            "resumed": resumed,
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
        return result

    def _train(
        self, context: Context, run_id: str, params: dict[str, Any], sha: str, md5: str, run_key: str
    ) -> tuple[dict[str, float], str]:
        assert self._runner is not None
        ti = context["ti"]
        work = mlops_home() / "training" / run_id
        work.mkdir(parents=True, exist_ok=True)
        dataset = work / "dataset.parquet"
        self.dvc_hook.read_to(self.dataset_path, sha, dataset)
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
        try:
            result = run_training(
                self._runner,
                self.mlflow_hook,
                dataset=dataset,
                data_md5=md5,
                mlflow_run_id=run_id,
                params=params,
                tags=tags,
                work_dir=work,
            )
        except TrainingRunError as exc:
            raise AirflowException(str(exc)) from exc
        return result["metrics"], str(result["model_id"])

    def _register(self, run_id: str, model_id: str, sha: str, md5: str) -> tuple[str, str | None]:
        """Register the run's model once; point the alias at it unless the gate already judged it (a re-run of
        an old training must not make an old version the challenger again). Returns the version and the gate's
        decision on it, if any."""
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
                tags={DATA_REV_TAG: sha, DATA_MD5_TAG: md5, DATA_PATH_TAG: self.dataset_path},
            )
            self.log.info("Registered %s version %s from run %s", self.model_name, version, run_id)
        if hook.alias_version(self.model_name, self.alias) != version:
            hook.set_aliases(self.model_name, {self.alias: version})
        return version, None

    def on_kill(self) -> None:
        if self._runner is not None:
            self._runner.kill()


class EvaluateModelOperator(MlflowHookMixin, DvcHookMixin, BaseOperator):
    """Score the challenger and the current champion on the same holdout and write the gate's verdict ledger.

    Evaluation data: the challenger's own training set (``data.path`` at ``data.rev``, read from its model
    version), restricted to the holdout customers of ``split.json``: the customer-hash split keeps them out of
    every model trained by the entrypoint, champion included. Both models are loaded from the registry and
    scored overall and per segment; the behaviour tests run on the challenger; the gate rules of the model
    decide ``promote`` or ``reject``.

    The ledger (every check with metric, champion value, challenger value, delta, threshold, pass/fail, and the
    decision with its reason) is logged as artifact ``gate/ledger.json`` of the challenger's run, summarized in
    tags of the model version (``gate.decision``, ``gate.reason``, ``gate.champion_version``), written to
    ``$MLOPS_HOME/reports/ledgers/<model>/v<version>/<attempt>.json`` and linked from the task. Ledgers are
    append-only: each evaluation writes its own (artifact ``gate/ledgers/<attempt>.json``), none is overwritten.

    The version judged is the run's own: ``challenger_version`` when given, else the version announced by the
    ``model_asset`` event that triggered the run, else (a manual run without a version) the ``challenger`` alias at
    that moment. Re-running the evaluation of a past run therefore judges that run's version again, never a newer
    challenger.

    :param model_name: registered model (templated).
    :param challenger_version: version to evaluate (templated); empty: see above.
    :param model_asset: the challenger Asset the promotion DAG is scheduled on (its events carry ``version``).
    :param gate_rules: JSON file of gate rules keyed by model name.
    :param behaviour_tests: JSON file of behaviour tests.
    :param holdout_spec: the training split file (``split.json``).
    :param label_column: label column.
    :param champion_alias: alias of the current champion.

    XCom (return value): ``{"decision", "reason", "model_name", "challenger_version", "champion_version",
    "failed_checks", "ledger_path"}``.
    """

    template_fields: Sequence[str] = ("model_name", "challenger_version")
    operator_extra_links = (VerdictLedgerLink(),)
    ui_color = "#fff0f5"

    def __init__(
        self,
        *,
        model_name: str,
        gate_rules: str,
        behaviour_tests: str,
        holdout_spec: str,
        challenger_version: str = "",
        model_asset: Asset | None = None,
        label_column: str = "churned",
        champion_alias: str = CHAMPION_ALIAS,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        dvc_conn_id: str = DvcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.model_asset = model_asset
        self.gate_rules = gate_rules
        self.behaviour_tests = behaviour_tests
        self.holdout_spec = holdout_spec
        self.challenger_version = challenger_version
        self.label_column = label_column
        self.champion_alias = champion_alias
        self.mlflow_conn_id = mlflow_conn_id
        self.dvc_conn_id = dvc_conn_id

    def _version_to_judge(self, context: Context) -> tuple[str, str]:
        """The run's own version and where it came from (argument, triggering event, or alias)."""
        if self.challenger_version:
            return str(self.challenger_version), "challenger_version"
        if self.model_asset is not None:
            events = (context.get("triggering_asset_events") or {}).get(self.model_asset) or []
            announced = [e for e in events if (e.extra or {}).get("model_name", self.model_name) == self.model_name]
            newest = max(announced, key=lambda e: e.timestamp, default=None)
            if newest is not None and newest.extra.get("version"):
                return str(newest.extra["version"]), f"event of {self.model_asset.name}"
        version = self.mlflow_hook.alias_version(self.model_name, CHALLENGER_ALIAS)
        if not version:
            raise AirflowFailException(f"model {self.model_name!r} has no challenger version to evaluate")
        return version, "alias challenger"

    def execute(self, context: Context) -> dict[str, Any]:

        from mlops_provider.evaluation import (
            decide,
            holdout_mask,
            load_json,
            run_behaviour_tests,
            schema_predictor,
            score,
        )

        try:
            all_rules = load_json(self.gate_rules, "gate rules")
            tests = load_json(self.behaviour_tests, "behaviour tests")
            split = load_json(self.holdout_spec, "holdout split")
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        if self.model_name not in all_rules:
            raise AirflowFailException(f"gate rules file {self.gate_rules} has no rules for model {self.model_name!r}")
        rules = all_rules[self.model_name]
        hook = self.mlflow_hook
        version, chosen_by = self._version_to_judge(context)
        self.log.info("Judging %s v%s (from the %s)", self.model_name, version, chosen_by)
        challenger_mv = hook.model_version(self.model_name, version)
        champion = hook.alias_version(self.model_name, self.champion_alias)
        data_path, data_rev = challenger_mv.tags.get(DATA_PATH_TAG), challenger_mv.tags.get(DATA_REV_TAG)
        if not data_path or not data_rev:
            raise AirflowFailException(
                f"{self.model_name} v{version} has no data.path/data.rev tags (not registered by TrainModelOperator)"
            )

        frame = self.dvc_hook.read_frame(data_path, data_rev)
        holdout = frame[holdout_mask(frame, split)].reset_index(drop=True)
        threshold = float(rules.get("threshold", 0.5))
        segment = rules.get("segment_column", "plan")
        challenger_model = hook.load_model(f"models:/{self.model_name}/{version}")
        champion_model = (
            hook.load_model(f"models:/{self.model_name}/{champion}") if champion and champion != version else None
        )
        challenger_scores = score(schema_predictor(challenger_model), holdout, self.label_column, segment, threshold)
        champion_scores = (
            score(schema_predictor(champion_model), holdout, self.label_column, segment, threshold)
            if champion_model
            else None
        )
        behaviour = run_behaviour_tests(schema_predictor(challenger_model), tests)
        checks, decision, reason = decide(rules, challenger_scores, champion_scores, behaviour)
        if champion == version:
            decision, reason = "promote", f"v{version} is already the champion"

        ti = context["ti"]
        attempt = attempt_key(context)
        ledger = {
            "model_name": self.model_name,
            "challenger_version": version,
            "version_from": chosen_by,
            "champion_version": champion,
            "decision": decision,
            "reason": reason,
            "checks": checks,
            "challenger_metrics": challenger_scores,
            "champion_metrics": champion_scores,
            "behaviour_tests": behaviour,
            "evaluation_data": {"path": data_path, "rev": data_rev, "holdout": split, "rows": len(holdout)},
            "rules": rules,
            "airflow": {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number},
        }
        ledger_path = write_record(ledger_dir(self.model_name, version), attempt, ledger)
        if challenger_mv.run_id:
            hook.log_dict(challenger_mv.run_id, ledger, f"gate/ledgers/{attempt}.json")
        hook.set_version_tags(
            self.model_name,
            version,
            {
                GATE_DECISION_TAG: decision,
                "gate.reason": reason[:500],
                "gate.champion_version": str(champion or "none"),
                "gate.evaluated_by": f"{ti.dag_id}/{ti.run_id}/{ti.task_id}",
                "gate.ledger": attempt,
            },
        )
        VerdictLedgerLink.persist(context, report_url(ledger_path))
        self.log.info("Gate for %s v%s: %s (%s)", self.model_name, version, decision, reason)
        return {
            "decision": decision,
            "reason": reason,
            "model_name": self.model_name,
            "challenger_version": version,
            "champion_version": champion,
            "failed_checks": [f"{c['check']}({c['metric']})" for c in checks if not c["passed"]],
            "ledger_path": str(ledger_path),
        }


class ModelGateOperator(BaseOperator):
    """Let promotion go ahead only when the evaluation decided ``promote``; otherwise skip what follows.

    A rejection is a normal outcome, not a failure: this task and its downstream tasks end as skipped and the
    skip message carries the reason from the ledger.

    :param evaluation: the evaluation result (templated, e.g. ``{{ ti.xcom_pull(task_ids='evaluate') }}``).
    """

    template_fields: Sequence[str] = ("evaluation",)

    def __init__(self, *, evaluation: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.evaluation = evaluation

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        verdict = json_object(self.evaluation, "evaluation")
        if verdict.get("decision") != "promote":
            raise AirflowSkipException(
                f"{verdict.get('model_name')} v{verdict.get('challenger_version')} rejected: {verdict.get('reason')}"
            )
        return verdict


class PromoteModelOperator(MlflowHookMixin, BaseOperator):
    """Move ``champion`` to the challenger and the old champion to ``previous``, compare-and-set.

    It promotes only if ``champion`` still points where it did at evaluation time (``expected_champion``);
    otherwise it fails saying who moved it. The read-compare-set holds a lock (a file lock in ``$MLOPS_HOME``
    on one machine; run it in the ``model_promotion`` pool across workers). Each move is recorded in model version
    tags (``promotion.promoted_by`` = ``dag_id/run_id/task_id``).

    Re-running is a no-op, also long after: when the version is the champion, or when this very run promoted it
    (tag ``promotion.promoted_by``) even if the champion moved on since, nothing changes; a re-run never moves the
    champion back.

    :param model_name: registered model (templated).
    :param version: version to promote (templated).
    :param expected_champion: champion version seen at evaluation; empty or ``None`` for "no champion" (templated).

    XCom (return value): ``{"model_name", "champion", "previous", "changed"}``.
    """

    template_fields: Sequence[str] = ("model_name", "version", "expected_champion")
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        version: str,
        expected_champion: str | None,
        champion_alias: str = CHAMPION_ALIAS,
        previous_alias: str = PREVIOUS_ALIAS,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version = version
        self.expected_champion = expected_champion
        self.champion_alias = champion_alias
        self.previous_alias = previous_alias
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        import datetime as dt

        hook = self.mlflow_hook
        version = str(self.version)
        expected = None if self.expected_champion in (None, "", "None", "none") else str(self.expected_champion)
        ti = context["ti"]
        by = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with registry_lock(self.model_name):
            current = hook.alias_version(self.model_name, self.champion_alias)
            promoted_by = hook.model_version_tags(self.model_name, version).get("promotion.promoted_by")
            if current == version:
                self.log.info("%s v%s is already the champion: nothing to do", self.model_name, version)
                changed = False
            elif promoted_by == by:
                self.log.info(
                    "%s v%s was promoted by this run (%s); the champion is v%s now: a re-run changes nothing",
                    self.model_name, version, by, current,
                )  # fmt: skip
                changed = False
            elif current != expected:
                raise AirflowFailException(
                    f"{self.model_name}: champion is v{current} now but was v{expected} when v{version} was evaluated "
                    "(another promotion or a rollback happened since). Re-run the evaluation to compare against the "
                    "current champion."
                )
            else:
                if current is not None:
                    hook.set_aliases(self.model_name, {self.previous_alias: current})
                    hook.set_version_tags(
                        self.model_name, current, {"promotion.replaced_at": now, "promotion.replaced_by": version}
                    )
                hook.set_aliases(self.model_name, {self.champion_alias: version})
                hook.set_version_tags(
                    self.model_name,
                    version,
                    {
                        "promotion.promoted_at": now,
                        "promotion.promoted_by": by,
                        "promotion.replaced": str(current or "none"),
                    },
                )
                self.log.info(
                    "Promoted %s v%s to %s (previous: %s)", self.model_name, version, self.champion_alias, current
                )
                changed = True
        previous = hook.alias_version(self.model_name, self.previous_alias)
        MlflowModelVersionLink.persist(context, model_version_url(self.model_name, version))
        return {"model_name": self.model_name, "champion": version, "previous": previous, "changed": changed}


class RollbackModelOperator(MlflowHookMixin, BaseOperator):
    """Restore ``previous`` as ``champion``, recording the reason on both model versions.

    After a rollback ``previous`` is removed, so a second rollback cannot flip back by accident; the next
    promotion sets it again. Re-running a rollback that happened (tag ``rollback.restored_by`` names this run) is a
    no-op.

    :param model_name: registered model (templated).
    :param reason: why (templated; required, recorded in tags ``rollback.reason``).

    XCom (return value): ``{"model_name", "champion", "rolled_back", "reason"}``.
    """

    template_fields: Sequence[str] = ("model_name", "reason")

    def __init__(
        self,
        *,
        model_name: str,
        reason: str,
        champion_alias: str = CHAMPION_ALIAS,
        previous_alias: str = PREVIOUS_ALIAS,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.reason = reason
        self.champion_alias = champion_alias
        self.previous_alias = previous_alias
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        import datetime as dt

        if not str(self.reason or "").strip():
            raise AirflowFailException("reason: a rollback needs a reason (it is recorded on the model versions)")
        hook = self.mlflow_hook
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        ti = context["ti"]
        by = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
        with registry_lock(self.model_name):
            previous = hook.alias_version(self.model_name, self.previous_alias)
            current = hook.alias_version(self.model_name, self.champion_alias)
            if (
                current is not None
                and hook.model_version_tags(self.model_name, current).get("rollback.restored_by") == by
            ):
                self.log.info("This run already rolled %s back to v%s: nothing to do", self.model_name, current)
                return {"model_name": self.model_name, "champion": current, "rolled_back": None, "reason": self.reason}
            if previous is None:
                raise AirflowFailException(
                    f"{self.model_name} has no {self.previous_alias!r} version to roll back to (champion: v{current})"
                )
            reason = str(self.reason)[:500]
            hook.set_aliases(self.model_name, {self.champion_alias: previous, self.previous_alias: None})
            hook.set_version_tags(
                self.model_name,
                previous,
                {"rollback.restored_at": now, "rollback.restored_by": by, "rollback.reason": reason},
            )
            if current is not None:
                hook.set_version_tags(
                    self.model_name, current, {"rollback.rolled_back_at": now, "rollback.reason": reason}
                )
        self.log.warning("Rolled back %s: champion v%s -> v%s (%s)", self.model_name, current, previous, self.reason)
        return {"model_name": self.model_name, "champion": previous, "rolled_back": current, "reason": self.reason}
