"""Where the training entrypoint runs: a local subprocess or a Docker container (DockerOperator).

The runner is chosen by configuration (operator argument or ``MLOPS_TRAINING_RUNNER``), never by falling back:
asking for ``docker`` where no engine answers, or naming an image the engine does not have, is an error raised
before anything starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.exceptions import TrainingDataError, TrainingRunError
from mlops_provider.hooks.docker_engine import DEFAULT_DOCKER_URL, DockerEngineError, docker_client
from mlops_provider.runtime.jobs import TrainingJob
from mlops_provider.runtime.processes import StaleProcessError, start_bound, stop_earlier

if TYPE_CHECKING:
    from mlops_provider.ml.split import Split
    from mlops_provider.ml.tuning import Tuning

CONTAINER_ENTRYPOINT = "/opt/training/train.py"
RUN_KEY_LABEL = "mlops.run-key"
MODEL_ID_TAG = "mlops.model_id"
LOG_TAIL_LINES = 40
CONTRACT_SAMPLE_ROWS = 50


PID_FILE = "entrypoint.pid"


def entrypoint_environment(job: TrainingJob) -> dict[str, str]:
    """The environment the local runner starts the entrypoint with: this process's, the job's (the MLflow
    connection's credentials), unbuffered output, and ``MLFLOW_UV_AUTO_DETECT=false`` unless set: MLflow takes the
    working directory's uv project (``uv.lock``, ``pyproject.toml``) as the model's when it logs one, and the
    worker's directory is not the model's project."""
    return {"MLFLOW_UV_AUTO_DETECT": "false", **os.environ, **job.env, "PYTHONUNBUFFERED": "1"}


class LocalRunner:
    """Runs the entrypoint with this interpreter in a child process (own process group), streaming its output.

    The child dies with its task (:mod:`mlops_provider.runtime.processes`, the same rule as the model servers): it gets
    SIGKILL from the kernel when the task process dies (``PR_SET_PDEATHSIG``, also on ``kill -9`` or an OOM kill of
    the task), ``on_kill`` stops its process group, and a retry first stops an entrypoint an earlier try left
    running (pid file ``entrypoint.pid`` in the work folder), so two processes never write into one MLflow run.

    :param entrypoint: path of train.py.
    :param log: logger that receives the output lines.
    """

    name = "local"

    def __init__(self, entrypoint: Path, log: Any) -> None:
        self.entrypoint = Path(entrypoint)
        self.log = log
        self.process: subprocess.Popen[str] | None = None

    def describe(self) -> dict[str, str]:
        return {"runner": self.name, "entrypoint": str(self.entrypoint.resolve()), "image": "", "image.digest": ""}

    def run(self, job: TrainingJob) -> None:
        if not self.entrypoint.is_file():
            raise TrainingRunError(f"training entrypoint {self.entrypoint} does not exist")
        env = entrypoint_environment(job)
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        pid_file = job.output.parent / PID_FILE
        try:
            stop_earlier(pid_file, self.log, f"training process of MLflow run {job.mlflow_run_id}", job.mlflow_run_id)
        except StaleProcessError as exc:
            raise TrainingRunError(str(exc)) from exc
        self.process = start_bound(
            [sys.executable, str(self.entrypoint), *job.arguments()],
            pid_file=pid_file,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            tail.append(line.rstrip())
            self.log.info("%s", line.rstrip())
        code = self.process.wait()
        if code != 0:
            raise TrainingRunError(f"training entrypoint exited with {code}; last output:\n" + "\n".join(tail))

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(os.getpgid(self.process.pid), signal.SIGTERM)


class DockerRunner:
    """Runs the entrypoint in the training image through the Docker provider's ``DockerOperator``.

    ``$MLOPS_HOME`` is bind-mounted at the same path, so the dataset, the output file and an embedded MLflow store
    have the same paths inside; the container runs as the owner of the files (this process's uid:gid) so what
    it writes stays theirs. Container names are deterministic per task try (``<prefix>-try<N>``), containers
    left by earlier tries of the same task (a killed worker) are removed before start, and ``kill()`` stops the
    container (``on_kill``).

    :param image: training image (built from include/training/Dockerfile).
    :param mount_root: host folder bind-mounted at the same path (``$MLOPS_HOME``).
    :param run_key: identity of the Airflow task (dag/run/task); labels the container.
    :param try_number: task try, part of the container name.
    :param docker_url: Docker engine URL.
    :param docker_conn_id: Docker connection (registry login, TLS) of the Docker provider; ``None``: none.
    :param network_mode: ``host`` reaches a tracking server on this machine; ``none`` suits a file store.
    """

    name = "docker"

    def __init__(
        self,
        image: str,
        mount_root: Path,
        run_key: str,
        try_number: int,
        log: Any,
        docker_url: str = DEFAULT_DOCKER_URL,
        network_mode: str = "host",
        docker_conn_id: str | None = None,
    ) -> None:
        self.image = image
        self.mount_root = Path(mount_root)
        self.key_hash = hashlib.sha1(run_key.encode()).hexdigest()[:16]
        self.container_name = f"mlops-train-{self.key_hash}-try{try_number}"
        self.log = log
        self.docker_url = docker_url
        self.docker_conn_id = docker_conn_id
        self.network_mode = network_mode
        self.operator: Any = None
        self._image_id: str | None = None

    def _client(self) -> Any:
        return docker_client(
            docker_url=self.docker_url, docker_conn_id=self.docker_conn_id, timeout=30, user="runner 'docker'"
        )

    def check(self) -> None:
        """Fail now, before any container starts, if the engine or the image is missing."""
        import docker.errors

        try:
            client = self._client()
        except DockerEngineError as exc:
            raise TrainingRunError(f"{exc} Or configure runner='local' (MLOPS_TRAINING_RUNNER=local).") from exc
        try:
            self._image_id = client.images.get(self.image).id
        except docker.errors.ImageNotFound as exc:
            raise TrainingRunError(
                f"training image {self.image!r} does not exist on the engine at {self.docker_url}. "
                "Build it: docker build -t mlops-training:latest -f include/training/Dockerfile include/training"
            ) from exc
        finally:
            client.close()

    def describe(self) -> dict[str, str]:
        return {
            "runner": self.name,
            "entrypoint": CONTAINER_ENTRYPOINT,
            "image": self.image,
            "image.digest": self._image_id or "",
        }

    def remove_stale_containers(self) -> list[str]:
        """Remove containers of earlier tries of this task (apache/airflow#56149); returns their names."""
        client = self._client()
        try:
            stale = client.containers.list(all=True, filters={"label": f"{RUN_KEY_LABEL}={self.key_hash}"})
            for container in stale:
                self.log.warning("Removing container %s left by an earlier try", container.name)
                container.remove(force=True)
            return [c.name for c in stale]
        finally:
            client.close()

    def run(self, job: TrainingJob) -> None:
        from airflow.providers.docker.exceptions import DockerContainerFailedException
        from airflow.providers.docker.operators.docker import DockerOperator
        from docker.types import Mount

        self.check()
        self.remove_stale_containers()
        self.operator = DockerOperator(
            task_id="train_container",
            image=self.image,
            command=["python", CONTAINER_ENTRYPOINT, *job.arguments()],
            container_name=self.container_name,
            docker_url=self.docker_url,
            docker_conn_id=self.docker_conn_id,
            network_mode=self.network_mode,
            mounts=[Mount(target=str(self.mount_root), source=str(self.mount_root), type="bind")],
            mount_tmp_dir=False,
            user=f"{os.getuid()}:{os.getgid()}",
            environment={"HOME": "/tmp", "PYTHONUNBUFFERED": "1"},
            private_environment=dict(job.env),
            labels={RUN_KEY_LABEL: self.key_hash},
            auto_remove="success",
        )
        try:
            self.operator.execute(context={})
        except DockerContainerFailedException as exc:
            lines = [line.decode() if isinstance(line, bytes) else str(line) for line in (exc.logs or [])]
            tail = "".join(lines).splitlines()[-LOG_TAIL_LINES:]
            raise TrainingRunError(
                f"training container {self.container_name} ({self.image}) failed: {exc}; last output:\n"
                + "\n".join(tail)
            ) from exc

    def kill(self) -> None:
        if self.operator is not None:
            self.operator.on_kill()


def run_training(
    runner: LocalRunner | DockerRunner,
    mlflow_hook: Any,
    *,
    dataset: Path,
    split: Split,
    schema: dict[str, Any],
    mlflow_run_id: str,
    params: dict[str, Any],
    tags: dict[str, str],
    work_dir: Path,
    tuning: Tuning | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Split ``dataset`` (md5-checked by the caller) by ``split``, run the entrypoint into ``mlflow_run_id``, check
    the contract, and return its result (``model_id``, ``metrics``, ``train_rows``, ``holdout_rows``, ``split``: the
    split's tags as applied, e.g. the first held-out day of an out-of-time split; ``tuning``: the study summary or
    None). The split is recorded as tags and params (``split.*``) of the run.

    With ``tuning``, a study first searches the hyperparameters on the training rows (each trial a nested run, scored
    on validation rows carved from the training rows: :mod:`mlops_provider.runtime.tuner`); the best trial's
    hyperparameters then train the model as above, on every training row, scored on the holdout.

    On failure (the entrypoint's, or a broken contract) the MLflow run is marked FAILED and
    :class:`TrainingRunError` or :class:`~mlops_provider.ml.contract.EntrypointContractError` is raised. On success
    the run is tagged with the logged model's id (``mlops.model_id``), which marks it complete for a later re-run of
    the same task.
    """
    import pandas as pd

    from mlops_provider.ml.contract import check_result

    frame = pd.read_parquet(dataset)
    from mlops_provider.ml.split import split_params

    for column in (schema["label"], split.column):
        if column not in frame.columns:
            raise TrainingRunError(f"the training set has no column {column!r} (columns: {list(frame.columns)})")
    try:
        split = split.resolve(frame)  # an out-of-time split learns its first held-out day from the data
        train_part, holdout = split.split(frame)
    except ValueError as exc:
        mlflow_hook.terminate_run(mlflow_run_id, "FAILED")
        raise TrainingDataError(f"the training set cannot be split: {exc}") from exc
    if train_part.empty or holdout.empty:
        raise TrainingRunError(
            f"the holdout split leaves {len(train_part)} training and {len(holdout)} holdout rows of {len(frame)}: "
            "too little data, or a split fraction that puts every key on one side"
        )
    mlflow_hook.log_params(mlflow_run_id, split_params(split))
    train_file, holdout_file = work_dir / "train.parquet", work_dir / "holdout.parquet"
    train_part.to_parquet(train_file, index=False)
    holdout.to_parquet(holdout_file, index=False)
    study = None
    if tuning is not None:
        from mlops_provider.runtime.tuner import tune

        try:
            study = tune(runner, mlflow_hook, tuning=tuning, train_part=train_part, split=split, schema=schema,
                         params=params, parent_run_id=mlflow_run_id, tags=tags, work_dir=work_dir,
                         log=log or logging.getLogger(__name__))  # fmt: skip
        except Exception:
            mlflow_hook.terminate_run(mlflow_run_id, "FAILED")
            raise
        params = dict(study["best"]["params"])
    given_tags = {
        **tags,
        **split.tags(),
        "training.params": json.dumps(params, sort_keys=True),
        "training.schema": json.dumps(schema, sort_keys=True),
        **{f"training.{k}": v for k, v in runner.describe().items()},
    }
    job = TrainingJob(
        train=train_file,
        holdout=holdout_file,
        schema=schema,
        tracking_uri=mlflow_hook.tracking_uri,
        mlflow_run_id=mlflow_run_id,
        params=params,
        tags=given_tags,
        output=work_dir / "result.json",
        env=mlflow_hook.credential_environment(),
    )
    job.output.unlink(missing_ok=True)  # a result of an earlier try must not pass for this one's
    try:
        runner.run(job)
        result = check_result(job.output)
        # the local runner's model pinned this interpreter's own versions: MLflow's scan of them could only agree
        model = check_model(mlflow_hook, mlflow_run_id, str(result["model_id"]), given_tags, holdout, schema,
                            check_requirements=runner.name != LocalRunner.name)  # fmt: skip
    except Exception:
        mlflow_hook.terminate_run(mlflow_run_id, "FAILED")
        raise
    log_holdout_plots(mlflow_hook, mlflow_run_id, model, holdout, schema, work_dir)
    mlflow_hook.set_run_tags(mlflow_run_id, {MODEL_ID_TAG: result["model_id"]})
    return {**result, "train_rows": len(train_part), "holdout_rows": len(holdout), "split": split.tags(),
            "tuning": study}  # fmt: skip


def log_holdout_plots(
    mlflow_hook: Any, run_id: str, model: Any, holdout: Any, schema: dict[str, Any], work_dir: Path
) -> None:
    """Score the whole holdout and log its curves (``evaluation/holdout_curves.json``: ROC, precision-recall,
    calibration, confusion at the threshold) and their SVG plots (``plots/*.svg``) to the run: the provider
    draws them the same way for every entrypoint. Also the calibrations of the scores fitted on the holdout
    (``evaluation/calibration.json``), which the monitoring estimate applies every day without refitting."""
    from mlops_provider.ml.curves import CURVES_ARTIFACT, holdout_curves
    from mlops_provider.ml.estimation import CALIBRATION_ARTIFACT, fit_calibrations
    from mlops_provider.ml.scoring import binary_labels
    from mlops_provider.render import plots

    labels = binary_labels(holdout[schema["label"]], schema.get("positive_class", 1))  # as training compares them
    features = holdout.drop(columns=[schema["label"]])
    scores = holdout_predictor(model, features.head(CONTRACT_SAMPLE_ROWS))(features)
    curves = holdout_curves(labels, scores, threshold=float(schema.get("threshold", 0.5)))
    mlflow_hook.log_dict(run_id, curves, CURVES_ARTIFACT)
    calibrations = fit_calibrations(labels, scores)
    mlflow_hook.log_dict(run_id, {**calibrations, "fitted_at": "training"}, CALIBRATION_ARTIFACT)
    folder = work_dir / "plots"
    folder.mkdir(exist_ok=True)
    for name, build in (("roc", plots.roc), ("precision_recall", plots.precision_recall),
                        ("calibration", plots.calibration), ("confusion", plots.confusion)):  # fmt: skip
        path = folder / f"{name}.svg"
        path.write_text(str(plots.svg(build(curves))))
        mlflow_hook.log_artifact(run_id, path, "plots")


def holdout_predictor(model: Any, sample: Any) -> Any:
    """How the provider scores the whole holdout: the model's implementation without MLflow's per-value schema
    enforcement (:func:`~mlops_provider.ml.scoring.unenforced_predict`) when it gives exactly the enforced
    ``predict``'s scores on ``sample`` (the contract check's rows, which did pass the enforcement), else the enforced
    ``predict`` itself. Same scores either way; the contract check keeps the enforced call."""
    import numpy as np

    from mlops_provider.ml.scoring import schema_predictor, unenforced_predict

    enforced = schema_predictor(model)
    implementation = unenforced_predict(model)
    if implementation is None:
        return enforced
    direct = schema_predictor(model, implementation)
    try:
        same = np.array_equal(
            np.asarray(direct(sample), dtype=float), np.asarray(enforced(sample), dtype=float), equal_nan=True
        )
    except Exception:
        same = False
    return direct if same else enforced


def check_model(
    mlflow_hook: Any,
    run_id: str,
    model_id: str,
    tags: dict[str, str],
    holdout: Any,
    schema: dict[str, Any],
    check_requirements: bool = True,
) -> Any:
    """The contract's checks on what the entrypoint logged: the run's tags, the model's signature, and that
    ``predict`` on holdout rows returns one probability per row; returns the loaded model.

    :param check_requirements: let MLflow warn when the model's pinned requirements differ from this environment
        (~0.4 s: it reads every installed distribution); False for a model logged by this same interpreter."""
    from mlops_provider.ml.contract import (
        EntrypointContractError,
        check_predictions,
        check_run_tags,
        check_signature,
    )

    check_run_tags(mlflow_hook.get_run(run_id).data.tags, tags)
    try:
        model = mlflow_hook.load_model(f"models:/{model_id}", check_requirements=check_requirements)
    except Exception as exc:
        raise EntrypointContractError("model_id", f"model {model_id} cannot be loaded: {exc}") from None
    check_signature(model)
    sample = holdout.drop(columns=[schema["label"]]).head(CONTRACT_SAMPLE_ROWS)
    from mlops_provider.ml.scoring import schema_predictor

    try:
        predictions = schema_predictor(model)(sample)
    except Exception as exc:
        raise EntrypointContractError("predict", f"predict failed on {len(sample)} holdout rows: {exc}") from None
    check_predictions(predictions, len(sample))
    return model
