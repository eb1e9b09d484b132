"""Package a registered model for serving and shadow-check the server before promotion completes."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator

from mlops_provider.hooks.mixins import DockerEngineMixin, DvcHookMixin, MlflowHookMixin, UpstreamResultMixin
from mlops_provider.layout import CHAMPION_ALIAS, DATA_REV_TAG, RUNNERS, default_runner, partition_path, partition_tag
from mlops_provider.utils.compat import AirflowFailException
from mlops_provider.utils.paths import server_pid_file, serving_copy_dir
from mlops_provider.utils.templated_fields import json_object

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from mlops_provider.hooks.mlflow import MlflowHook
    from mlops_provider.runtime.model_servers import ModelServer


def percentile_95(values: list[float]) -> float:
    """Nearest-rank 95th percentile; infinite for no values (no request succeeded)."""
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)] if ordered else float("inf")


def serving_copy(hook: MlflowHook, name: str, version: str) -> Path:
    """A registered version's artifacts on this worker's disk, ``$MLOPS_HOME/serving/<model>/v<version>/model``:
    downloaded from the registry once per worker (a task on another worker downloads its own copy)."""
    target = serving_copy_dir(name, version)
    if (target / "MLmodel").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        local = hook.download_model(f"models:/{name}/{version}", Path(tmp))
        shutil.move(local, target)
    return target


class PackageModelOperator(UpstreamResultMixin, MlflowHookMixin, DockerEngineMixin, BaseOperator):
    """Make a registered model version servable: its artifacts on disk, and with the ``docker`` runner an image.

    The image (``<repository>:v<version>``) is built from ``include/serving/Dockerfile`` with MLflow's pyfunc
    scoring server (``/ping``, ``/invocations``: the protocol MLflow clients and deployment targets already
    speak, no server code of ours to maintain), the lock file's pins, and the model files; it is labelled with
    the model name, version and data rev. It also holds the live backend (this package's source and
    ``prometheus-client``, label ``org.mlops.serving.backend``: their digest), which the ``docker`` serving runner
    runs instead of the default command (:mod:`mlops_provider.runtime.backend_container`). An existing image with
    the same labels is reused. With the ``local``
    runner the same server runs later as a local process from the downloaded artifacts.

    :param model_name: registered model (templated).
    :param version: model version, or the evaluation's result (its ``challenger_version``) (templated).
    :param serving_dir: folder with the serving Dockerfile.
    :param requirements: pinned requirements file copied into the build context.
    :param repository: image repository (default ``<model_name>-serving``).
    :param runner: ``local`` or ``docker``; default ``MLOPS_TRAINING_RUNNER`` (same as training).

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``,
    ``docker_url``, ``docker_conn_id``.

    XCom (return value): ``{"runner", "model_name", "version", "model_dir", "image", "image_id"}``.
    """

    upstream_fields = {"version": "challenger_version"}  # the evaluation
    template_fields: Sequence[str] = ("model_name", "version")

    def __init__(
        self,
        *,
        model_name: str,
        version: str | XComArg,
        serving_dir: str,
        requirements: str,
        repository: str | None = None,
        runner: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if runner is not None and runner not in RUNNERS:
            raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
        self.model_name = model_name
        self.version = cast("str", version)  # an upstream result is picked when rendered
        self.serving_dir = serving_dir
        self.requirements = requirements
        self.repository = repository
        self.runner = runner

    def download_model(self) -> Path:
        """The version's artifacts on this worker (:func:`serving_copy`)."""
        return serving_copy(self.mlflow_hook, self.model_name, str(self.version))

    def execute(self, context: Context) -> dict[str, Any]:
        runner = self.runner or default_runner()
        model_dir = self.download_model()
        result: dict[str, Any] = {
            "runner": runner,
            "model_name": self.model_name,
            "version": str(self.version),
            "model_dir": str(model_dir),
            "image": None,
            "image_id": None,
        }
        if runner == "docker":
            result.update(self._build_image(model_dir))
            self.mlflow_hook.set_version_tags(
                self.model_name,
                self.version,
                {"serving.image": result["image"], "serving.image_id": result["image_id"]},
            )
        return result

    def _build_image(self, model_dir: Path) -> dict[str, str]:
        from mlops_provider.runtime.backend_container import BACKEND_LABEL, write_backend_context

        repository = self.repository or f"{self.model_name}-serving".replace("_", "-")
        tag = f"{repository}:v{self.version}"
        data_rev = self.mlflow_hook.model_version_tags(self.model_name, self.version).get(DATA_REV_TAG, "")
        context_dir = Path(tempfile.mkdtemp(prefix="serving-build-"))
        try:
            backend = write_backend_context(context_dir)
            labels = {"org.mlops.model.name": self.model_name, "org.mlops.model.version": str(self.version),
                      "org.mlops.data.rev": data_rev, BACKEND_LABEL: backend}  # fmt: skip
            return self._build_in(context_dir, model_dir, tag, labels)
        finally:
            shutil.rmtree(context_dir, ignore_errors=True)

    def _build_in(self, tmp: Path, model_dir: Path, tag: str, labels: dict[str, str]) -> dict[str, str]:
        import docker.errors

        from mlops_provider.hooks.docker_engine import DockerEngineError, docker_client

        try:
            client = docker_client(
                docker_url=self.docker_url, docker_conn_id=self.docker_conn_id, timeout=600, user="runner 'docker'"
            )
        except DockerEngineError as exc:
            raise AirflowFailException(str(exc)) from exc
        try:
            existing = client.images.get(tag)
            if all(existing.labels.get(k) == v for k, v in labels.items()):
                self.log.info("Serving image %s already built for %s v%s", tag, self.model_name, self.version)
                return {"image": tag, "image_id": existing.id}
        except docker.errors.ImageNotFound:
            pass
        shutil.copy(Path(self.serving_dir) / "Dockerfile", tmp)
        shutil.copy(self.requirements, tmp / "requirements.txt")
        shutil.copytree(model_dir, tmp / "model")
        self.log.info("Building serving image %s", tag)
        try:
            image, _ = client.images.build(
                path=str(tmp),
                tag=tag,
                network_mode="host",
                rm=True,
                labels={k: v for k, v in labels.items() if k.startswith("org.mlops.serving.")},
                buildargs={
                    "MODEL_NAME": self.model_name,
                    "MODEL_VERSION": str(self.version),
                    "DATA_REV": labels["org.mlops.data.rev"],
                },  # fmt: skip
            )
        except docker.errors.BuildError as exc:
            tail = "".join(str(step.get("stream", "")) for step in exc.build_log)[-2000:]
            raise AirflowFailException(f"building {tag} failed: {exc}\n{tail}") from exc
        return {"image": tag, "image_id": image.id}


def server_key(ti: Any, role: str) -> str:
    """Names one server of one shadow-check task, the same for every try: ``<hash of dag/run/task/map index>-<role>``
    (``role``: ``candidate`` or ``champion``). A retry finds an earlier try's server by it."""
    import hashlib

    task = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}"
    return f"{hashlib.sha1(task.encode()).hexdigest()[:16]}-{role}"


class ShadowCheckOperator(UpstreamResultMixin, MlflowHookMixin, DvcHookMixin, DockerEngineMixin, BaseOperator):
    """Start the candidate's server, replay the newest validated partition through it, gate on the result.

    The server is the one the package step prepared: the serving container (``docker`` runner) or, for the
    ``local`` runner, the package's serving copy served by the live backend's app in a thread of this task
    (``in_process``, the default: no process starts, the model loads with the libraries the worker preloaded; the
    requests still cross HTTP) or by MLflow's scoring server as a local process (``in_process=False``).
    Each batch is posted to ``/invocations``; the predictions are compared with the registry model's own
    predictions (``mlflow.pyfunc``) on the same rows. The check
    passes on zero errors, a largest difference within ``tolerance`` and a p95 latency within ``p95_ms``. The
    numbers are appended to the verdict ledger of the evaluation that let the version through (``ledger_path``;
    default: the version's newest ledger; ``shadow`` is the latest check, ``shadow_checks`` every one), logged as
    artifact ``gate/shadow/<attempt>.json`` of the model's run and as ``shadow.*`` tags of the version. When the
    current champion was packaged, its server gets the same replay and its p95 and errors are recorded beside
    (``current_champion``), for comparison only.

    Every server dies with its task: an in-process one is a thread of it; a local server process runs under the
    training runner's parent-death rule (a ``kill -9``
    of the task takes ``mlflow models serve`` and its uvicorn down) and a container is removed by ``on_kill``; a
    retry first stops the servers an earlier try left (named by :func:`server_key`: pid file
    ``$MLOPS_HOME/serving/servers/<key>.pid``, container label ``mlops.server-key``).

    :param package: the package step's result (templated; dict or JSON).
    :param dataset: dataset whose newest ``partition/<dataset>/<date>`` tag is replayed (templated).
    :param p95_ms: largest allowed p95 latency of one batch request, in milliseconds.
    :param tolerance: largest allowed |server - registry model| prediction difference.
    :param batch_size: rows per request.
    :param max_rows: rows replayed at most (the partition's first rows).
    :param ledger_path: the evaluation's verdict ledger to add the numbers to, or the evaluation's result (its
        ``ledger_path``) (templated; empty: the newest).
    :param in_process: ``local`` runner: serve in this task's process (True) or start ``mlflow models serve``
        processes (False).

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``,
    ``dvc_conn_id``, ``docker_url``, ``docker_conn_id``.

    XCom (return value): ``{"passed", "server" ("in_process", "process" or "container"), "rows", "requests",
    "errors", "max_abs_diff", "p50_ms", "p95_ms", ...}``.
    """

    upstream_fields = {"ledger_path": "ledger_path"}  # the evaluation
    template_fields: Sequence[str] = ("package", "dataset", "ledger_path")

    def __init__(
        self,
        *,
        package: dict[str, Any] | str | XComArg,
        dataset: str,
        p95_ms: float = 500.0,
        tolerance: float = 1e-6,
        batch_size: int = 50,
        max_rows: int = 2000,
        ledger_path: str | XComArg | None = None,
        in_process: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.in_process = in_process
        self.package = package
        self.dataset = dataset
        self.p95_ms = p95_ms
        self.tolerance = tolerance
        self.batch_size = batch_size
        self.max_rows = max_rows
        self.ledger_path = cast("str | None", ledger_path)  # an upstream result is picked when rendered
        self._server: ModelServer | None = None
        self._beside: ModelServer | None = None

    def _replay_frame(self) -> tuple[Any, str]:

        dvc = self.dvc_hook
        prefix = partition_tag(self.dataset, "")
        tags = dvc.tags(prefix + "*")
        if not tags:
            raise AirflowFailException(f"no validated partition of {self.dataset!r} to replay (no {prefix}* tag)")
        newest = tags[-1].removeprefix(prefix)
        return dvc.read_frame(partition_path(self.dataset, newest), tags[-1]).head(self.max_rows), tags[-1]

    def execute(self, context: Context) -> dict[str, Any]:
        import statistics

        from mlops_provider.ml.scoring import schema_predictor
        from mlops_provider.runtime.model_servers import ModelServerError
        from mlops_provider.utils.evidence import attempt_key

        package = json_object(self.package, "package")
        name, version = package["model_name"], str(package["version"])
        hook = self.mlflow_hook
        frame, replay_tag = self._replay_frame()
        model = hook.load_model(f"models:/{name}/{version}")
        expected = [float(p) for p in schema_predictor(model)(frame)]
        columns = [spec.name for spec in model.metadata.get_input_schema().inputs]
        rows = frame[columns].astype(object).where(frame[columns].notna(), None)

        ti = context["ti"]
        candidate = self._server_for(package["runner"], package.get("image"), hook, name, version, ti, "candidate")
        current = self._current_server(hook, name, version, package["runner"], ti)
        # The champion's server boots beside the candidate's (the two start-ups overlap: most of a shadow check's
        # time); each replay still runs alone, once both are up, so neither latency is measured during a start-up.
        beside = current[0] if current is not None else None
        beside_error: ModelServerError | None = None
        if beside is not None:
            try:
                beside.start()
            except ModelServerError as exc:
                beside, beside_error = None, exc
        try:
            predictions, latencies, errors = self._replay(candidate, rows, columns, beside=beside)
        except ModelServerError as exc:
            if beside is not None:
                beside.stop()
            raise AirflowFailException(f"shadow check of {name} v{version}: {exc}") from exc
        champion_report: dict[str, Any] | None = None
        if current is not None and beside_error is not None:
            champion_report = {"version": current[1], "error": str(beside_error)[:300]}
        elif current is not None:
            server, champion_version = current
            try:
                served, champion_latencies, champion_errors = self._replay(server, rows, columns, started=True)
                champion_p95 = percentile_95(champion_latencies)
                champion_report = {
                    "version": champion_version,
                    "errors": len(champion_errors),
                    "p95_ms": round(champion_p95, 2) if champion_latencies else None,
                    "mean_abs_diff_vs_candidate": statistics.fmean(
                        abs(a - b) for a, b in zip(served, predictions, strict=True) if a is not None and b is not None
                    ),
                }
            except (ModelServerError, statistics.StatisticsError) as exc:
                champion_report = {"version": champion_version, "error": str(exc)[:300]}

        diffs = [abs(p - e) for p, e in zip(predictions, expected, strict=True) if p is not None]
        p95 = percentile_95(latencies)
        result = {
            "model_name": name,
            "version": version,
            "runner": package["runner"],
            "server": self._server_kind(candidate),
            "image": package.get("image"),
            "replayed": replay_tag,
            "rows": len(rows),
            "requests": len(latencies) + len(errors),
            "errors": len(errors),
            "first_errors": errors[:3],
            "max_abs_diff": max(diffs) if diffs else None,
            "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "p95_ms": round(p95, 2),
            "limits": {"p95_ms": self.p95_ms, "tolerance": self.tolerance},
            "current_champion": champion_report,
        }
        problems = []
        if errors:
            problems.append(f"{len(errors)} failed request(s), first: {errors[0]}")
        if result["max_abs_diff"] is None or result["max_abs_diff"] > self.tolerance:
            problems.append(
                f"predictions differ from the registry model by {result['max_abs_diff']} > {self.tolerance}"
            )
        if p95 > self.p95_ms:
            problems.append(f"p95 latency {p95:.1f} ms > {self.p95_ms} ms")
        result["passed"] = not problems
        self._record(hook, result, attempt_key(context))
        if problems:
            raise AirflowFailException(f"shadow check of {name} v{version} failed: " + "; ".join(problems))
        self.log.info("Shadow check of %s v%s passed: %s", name, version, result)
        return result

    def _replay(
        self,
        server: ModelServer,
        rows: Any,
        columns: list[str],
        *,
        started: bool = False,
        beside: ModelServer | None = None,
    ) -> tuple[list[float | None], list[float], list[str]]:
        """Start ``server`` (unless ``started``), wait until it and ``beside`` (a server booting at the same time,
        replayed next) answer, post the rows in batches, stop it; returns (predictions, latencies ms, errors)."""
        from mlops_provider.runtime.model_servers import ModelServerError

        self._server = server
        latencies: list[float] = []
        predictions: list[float | None] = []
        errors: list[str] = []
        try:
            if not started:
                server.start()
            server.wait_ready()
            if beside is not None:
                self._beside = beside
                try:
                    beside.wait_ready()  # no replay while the other one still boots (it would skew the latencies)
                except ModelServerError as exc:
                    self.log.warning("The champion's server is not ready (%s); its replay will say so", exc)
            for start in range(0, len(rows), self.batch_size):
                batch = rows.iloc[start : start + self.batch_size]
                try:
                    values, seconds = server.invoke({"columns": columns, "data": batch.values.tolist()})
                    latencies.append(seconds * 1000)
                    predictions.extend(values)
                except ModelServerError as exc:
                    errors.append(str(exc)[:300])
                    predictions.extend([None] * len(batch))
        finally:
            server.stop()
        return predictions, latencies, errors

    def _server_for(
        self, runner: str, image: str | None, hook: MlflowHook, name: str, version: str, ti: Any, role: str
    ) -> ModelServer:
        """The server of ``role`` for this task: its container (docker) or its local process (local)."""
        from mlops_provider.runtime.model_servers import DockerModelServer, InProcessModelServer, LocalModelServer

        key = server_key(ti, role)
        if runner == "docker":
            return DockerModelServer(
                str(image), f"mlops-shadow-{key}-try{ti.try_number}", self.docker_url, self.docker_conn_id, key=key
            )
        if self.in_process:
            return InProcessModelServer(serving_copy(hook, name, version), name, version)  # this worker's copy
        return LocalModelServer(serving_copy(hook, name, version), pid_file=server_pid_file(key))  # this worker's copy

    @staticmethod
    def _server_kind(server: ModelServer) -> str:
        from mlops_provider.runtime.model_servers import DockerModelServer, InProcessModelServer

        if isinstance(server, InProcessModelServer):
            return "in_process"
        return "container" if isinstance(server, DockerModelServer) else "process"

    def _current_server(
        self, hook: MlflowHook, name: str, version: str, runner: str, ti: Any
    ) -> tuple[ModelServer, str] | None:
        """The server of the current champion, for comparison only: its image (docker; none when it was never
        packaged) or its serving copy on this worker (local; downloaded here when this worker has none)."""
        champion = hook.alias_version(name, CHAMPION_ALIAS)
        if champion is None or champion == version:
            return None
        image = hook.model_version_tags(name, champion).get("serving.image") if runner == "docker" else None
        if runner == "docker" and not image:
            return None
        return self._server_for(runner, image, hook, name, champion, ti, "champion"), champion

    def _record(self, hook: MlflowHook, result: dict[str, Any], attempt: str) -> None:
        from mlops_provider.utils.evidence import attempts
        from mlops_provider.utils.records import ledger_dir
        from mlops_provider.utils.storage import stored, write_text

        name, version = result["model_name"], result["version"]
        ledger_path = stored(self.ledger_path) if self.ledger_path else None
        if ledger_path is None:
            newest = (attempts(ledger_dir(name, version)) or [{}])[-1].get("attempt")
            ledger_path = ledger_dir(name, version) / f"{newest}.json" if newest else None
        if ledger_path is not None and ledger_path.is_file():
            ledger = json.loads(ledger_path.read_text())
            ledger["shadow"] = {**result, "attempt": attempt}
            ledger.setdefault("shadow_checks", []).append(ledger["shadow"])
            write_text(ledger_path, json.dumps(ledger, indent=2, default=str))
        run_id = hook.model_version(name, version).run_id
        if run_id:
            hook.log_dict(run_id, result, f"gate/shadow/{attempt}.json")
        hook.set_version_tags(
            name, version, {f"shadow.{k}": str(result[k]) for k in ("passed", "errors", "max_abs_diff", "p95_ms")}
        )

    def on_kill(self) -> None:
        for server in (self._server, self._beside):
            if server is not None:
                server.stop()
