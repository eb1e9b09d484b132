"""Serve a model version live: deploy it behind the model's endpoint, then roll it out as a canary with automatic
rollback.

The endpoint (a Caddy reverse proxy, one backend process per version, the deployment record under the storage
root) is :mod:`mlops_provider.runtime.deployment`; the canary rules are :mod:`mlops_provider.ml.canary`; the
per-step analysis runs in :class:`~mlops_provider.triggers.canary.CanaryAnalysisTrigger`. Every task reconciles the
endpoint with its record first, so it is safe to clear and re-run: a re-run never starts a second backend for a
version and never loses the weights, and a killed proxy or backend is started again as recorded.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator

from mlops_provider.hooks.mixins import DockerEngineMixin, MlflowHookMixin, UpstreamResultMixin
from mlops_provider.layout import CANARY_ALIAS, CHAMPION_ALIAS, PREVIOUS_ALIAS, RUNNERS, default_runner
from mlops_provider.ml.canary import DEFAULT_STEPS, Thresholds, resume_index, rollout_steps, step_weights
from mlops_provider.triggers.settle import RESUME_SETTLE_SECONDS
from mlops_provider.utils.compat import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from mlops_provider.hooks.mlflow import MlflowHook
    from mlops_provider.runtime.deployment import Endpoint

#: Default port of a model's endpoint on 127.0.0.1 (admin API: port + 1, backends: the ports after it).
DEFAULT_ENDPOINT_PORT = 8600


def _serving_copy(hook: MlflowHook, name: str, version: str) -> str:
    from mlops_provider.operators.serving import serving_copy

    return str(serving_copy(hook, name, version))


def _checked_capture(capture: dict[str, Any] | None) -> dict[str, Any] | None:
    """``capture`` as given, checked: a bad value fails when the DAG is parsed, naming it."""
    if capture is not None:
        from mlops_provider.ml.capture import CaptureSettings

        CaptureSettings.from_dict(capture)
    return capture


def _checked_runner(runner: str | None) -> str | None:
    if runner is not None and runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    return runner


class _EndpointOperator(MlflowHookMixin, DockerEngineMixin, BaseOperator, base_only=True):
    """Shared: the model's endpoint, the version's artifacts on this machine and, with the ``docker`` serving
    runner, its serving image (the engine: ``docker_url``, ``docker_conn_id``)."""

    model_name: str
    port: int
    admin_port: int | None

    def serving_runner(self) -> str:
        """``runner`` as given, else ``MLOPS_TRAINING_RUNNER`` (the runner PackageModelOperator built with)."""
        return getattr(self, "runner", None) or default_runner()

    def endpoint(self) -> Endpoint:
        from mlops_provider.runtime.deployment import Endpoint
        from mlops_provider.utils.extras import require

        require("serve", user=type(self).__name__)
        runner = self.serving_runner()
        if runner == "docker":
            require("docker", user=f"{type(self).__name__} (runner 'docker')")
        return Endpoint(self.model_name, self.port, self.admin_port, log=self.log,
                        capture=getattr(self, "capture", None), runner=runner, docker_url=self.docker_url,
                        docker_conn_id=self.docker_conn_id)  # fmt: skip

    def image_for(self, version: str) -> str | None:
        """The version's serving image with the ``docker`` runner (its ``serving.image`` tag, set by
        PackageModelOperator); None with ``local``."""
        if self.serving_runner() != "docker":
            return None
        image = self.mlflow_hook.model_version_tags(self.model_name, str(version)).get("serving.image")
        if not image:
            raise self.fail(
                f"{self.model_name} v{version} has no serving image (no tag serving.image) and the serving runner is "
                "'docker': run PackageModelOperator with runner 'docker' first (the promotion DAG's `package` task "
                "with MLOPS_TRAINING_RUNNER=docker)"
            )
        return str(image)

    def model_dir_for(self, version: str) -> str:
        return _serving_copy(self.mlflow_hook, self.model_name, str(version))

    def fail(self, message: str, exc: Exception | None = None) -> AirflowFailException:
        return AirflowFailException(message if exc is None else f"{message}: {exc}")


class DeployModelVersionOperator(UpstreamResultMixin, _EndpointOperator):
    """Run a registered version's serving backend behind the model's endpoint at weight 0, and health-check it.

    The version's artifacts are downloaded once per machine (``$MLOPS_HOME/serving/<model>/v<version>/model``);
    the backend (:mod:`mlops_provider.runtime.backend`) is started on the next free port after the endpoint's
    admin port, recorded, and checked: ``/ping`` answers with the version, and the model's own serving example
    (``serving_input_example.json``, when MLflow saved one) is predicted. A version already running is left as it
    is. No traffic reaches it until a rollout gives it a weight.

    :param model_name: registered model (templated).
    :param version: model version, or the evaluation's result (its ``challenger_version``) (templated).
    :param port: the endpoint's port on 127.0.0.1 (its stable URL ``http://127.0.0.1:<port>/invocations``).
    :param admin_port: Caddy's admin API port (default ``port + 1``).
    :param capture: data capture of the backend it starts (the spec's ``serving.capture``, as
        ``CaptureSpec.capture_arguments(key_column)`` gives it: ``fraction``, ``flush_rows``, ``flush_seconds``,
        ``buffer_rows``, ``retention_days``, ``key_column``); recorded with the backend. None: no capture.
    :param runner: ``local`` (a process) or ``docker`` (a container of the version's serving image, which
        PackageModelOperator built and named in the version's tag ``serving.image``); default
        ``MLOPS_TRAINING_RUNNER`` (as PackageModelOperator). Recorded with the backend.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``,
    ``docker_url``, ``docker_conn_id`` (the ``docker`` runner's engine, recorded with the backend).

    XCom (return value): ``{"model_name", "version", "endpoint_url", "backend_url", "weights", "reconciled",
    "health": {"ping", "example_status"}}``.
    """

    upstream_fields = {"version": "challenger_version"}  # the evaluation
    template_fields: Sequence[str] = ("model_name", "version")

    def __init__(
        self,
        *,
        model_name: str,
        version: str | XComArg,
        port: int = DEFAULT_ENDPOINT_PORT,
        admin_port: int | None = None,
        capture: dict[str, Any] | None = None,
        runner: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version = cast("str", version)  # an upstream result is picked when rendered
        self.port = port
        self.admin_port = admin_port
        self.capture = _checked_capture(capture)
        self.runner = _checked_runner(runner)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.runtime.deployment import DeploymentError

        version = str(self.version)
        endpoint = self.endpoint()
        model_dir = self.model_dir_for(version)
        try:
            record = endpoint.deploy(version, model_dir, self.model_dir_for, image_for=self.image_for)
        except DeploymentError as exc:
            raise self.fail(f"deploying {self.model_name} v{version}", exc) from exc
        backend = endpoint.backend(record, version)
        health = health_check(backend.url, version, Path(model_dir))
        if health["problems"]:
            raise self.fail(f"{self.model_name} v{version} failed its health check: " + "; ".join(health["problems"]))
        self.log.info("%s v%s runs at %s (weight %s)", self.model_name, version, backend.url,
                      record["weights"].get(version))  # fmt: skip
        return {
            "model_name": self.model_name,
            "version": version,
            "endpoint_url": f"http://127.0.0.1:{record['port']}",
            "backend_url": backend.url,
            "weights": record["weights"],
            "reconciled": record.get("reconciled", []),
            "health": {k: v for k, v in health.items() if k != "problems"},
        }


class ServeVersionOperator(UpstreamResultMixin, _EndpointOperator):
    """Give a registered version 100% of the model's endpoint at once (no canary): the rollback DAG moves the traffic
    back to the champion it restored.

    The version's backend is started when it does not run (a retired version comes back), health-checked like
    :class:`DeployModelVersionOperator` does, then given weight 100 (every other version 0, kept running) through
    Caddy's admin API; the ``canary`` alias is removed if a rollout left it. A model without an endpoint record
    (never served live) is skipped. A re-run finds the version at 100% and changes nothing (``changed`` false).

    :param model_name: registered model (templated).
    :param version: the version to serve, or the rollback's result (its ``champion``) (templated).
    :param reason: recorded with the weights in the deployment record's events (templated).
    :param port: the endpoint's port (used when the record names none).
    :param admin_port: Caddy's admin API port (default ``port + 1``).
    :param capture: data capture of a backend it starts again (the spec's ``serving.capture``, as
        :class:`DeployModelVersionOperator` takes it): a retired champion comes back capturing, as deploy started it.
        None: no capture.
    :param runner: how a backend it starts runs (``local`` / ``docker``, as :class:`DeployModelVersionOperator`).

    XCom (return value): ``{"model_name", "version", "endpoint_url", "weights", "changed"}``.
    """

    upstream_fields = {"version": "champion"}  # the rollback
    template_fields: Sequence[str] = ("model_name", "version", "reason")

    def __init__(
        self,
        *,
        model_name: str,
        version: str | XComArg,
        reason: str = "",
        port: int = DEFAULT_ENDPOINT_PORT,
        admin_port: int | None = None,
        capture: dict[str, Any] | None = None,
        runner: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version = cast("str", version)  # an upstream result is picked when rendered
        self.reason = reason
        self.port = port
        self.admin_port = admin_port
        self.capture = _checked_capture(capture)
        self.runner = _checked_runner(runner)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.runtime.deployment import DeploymentError
        from mlops_provider.utils.compat import AirflowSkipException

        version = str(self.version)
        endpoint = self.endpoint()
        if not endpoint.record_path.exists():
            raise AirflowSkipException(f"{self.model_name} has no live endpoint (no deployment record): no traffic "
                                       "to move")  # fmt: skip
        model_dir = self.model_dir_for(version)
        try:
            record = endpoint.deploy(version, model_dir, self.model_dir_for, image_for=self.image_for)
            health = health_check(endpoint.backend(record, version).url, version, Path(model_dir))
            if health["problems"]:
                raise self.fail(f"{self.model_name} v{version} failed its health check: " + "; ".join(
                    health["problems"]))  # fmt: skip
            changed = {v: w for v, w in record["weights"].items() if w} != {version: 100}
            if changed:
                record = endpoint.set_weights({version: 100}, reason=f"serve v{version}: {self.reason}".strip(": "))
        except DeploymentError as exc:
            raise self.fail(f"serving {self.model_name} v{version} at 100%", exc) from exc
        hook = self.mlflow_hook
        with hook.alias_lock(self.model_name):
            if hook.alias_version(self.model_name, CANARY_ALIAS) is not None:
                hook.set_aliases(self.model_name, {CANARY_ALIAS: None})
        self.log.info("%s v%s serves 100%% of %s (%s)", self.model_name, version, record["port"],
                      "moved" if changed else "already so")  # fmt: skip
        return {"model_name": self.model_name, "version": version, "endpoint_url": f"http://127.0.0.1:{record['port']}",
                "weights": record["weights"], "changed": changed}  # fmt: skip


def health_check(url: str, version: str, model_dir: Path) -> dict[str, Any]:
    """``/ping`` answers with ``version``; the model's ``serving_input_example.json`` (if any) is predicted (200)."""
    from mlops_provider.runtime.backend import VERSION_HEADER

    problems: list[str] = []
    try:
        with urllib.request.urlopen(url + "/ping", timeout=5) as response:
            answered = response.headers.get(VERSION_HEADER)
        if answered != version:
            problems.append(f"/ping answered version {answered!r}, expected {version!r}")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        problems.append(f"/ping failed: {exc}")
    example_status = None
    example = model_dir / "serving_input_example.json"
    if example.is_file():
        request = urllib.request.Request(url + "/invocations", data=example.read_bytes(), method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                example_status = response.status
        except urllib.error.HTTPError as exc:
            example_status = exc.code
            problems.append(f"the model's serving example got HTTP {exc.code}: {exc.read().decode()[:300]}")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            problems.append(f"the model's serving example failed: {exc}")
    return {"ping": not any(p.startswith("/ping") for p in problems), "example_status": example_status,
            "problems": problems}  # fmt: skip


class CanaryRolloutOperator(UpstreamResultMixin, _EndpointOperator):
    """Shift the endpoint's traffic to a deployed version step by step, judging each step live; roll back on alarm.

    The baseline is the version serving the most traffic now. For each step but the last (default 5 -> 25 ->
    100 percent) the weights are set through Caddy's admin API and the step bakes for ``bake_seconds`` while
    :class:`~mlops_provider.triggers.canary.CanaryAnalysisTrigger` compares canary and baseline on their live
    ``/metrics`` (5xx rate, p95 latency, prediction distribution; ``thresholds``). A passing step moves on; the
    last step gives the canary 100%: MLflow alias ``champion`` moves to it (``previous``: the baseline), the
    ``canary`` alias (set during the rollout) is removed, and versions beyond the newest ``keep_versions`` are
    retired (the baseline keeps running at weight 0 for a quick manual rollback). An alarm rolls back at once:
    the baseline gets 100%, the canary's backend is stopped, ``champion`` stays (or goes back) on the baseline,
    and the task fails naming the alarm and its numbers. With no baseline (the model's first version) the
    version gets 100% directly.

    Each step's verdict is recorded, append-only, in ``<storage root>/reports/deployments/<model>/verdicts/
    v<version>-<attempt>.json`` (``steps``: the verdicts; ``outcome``: ``promoted`` or ``rolled_back``; with a
    rollback, ``alarm``, ``reason`` and ``rollback_seconds``: from the verdict to the baseline at 100%). The outcome
    is also added to the evaluation's verdict ledger (``ledger_path``: ``canary`` the latest, ``canaries`` every one)
    and to the version's tags ``canary.outcome``, ``canary.alarm``, ``canary.reason``, ``canary.verdict``.

    A re-run is safe: it reconciles the endpoint with its record first, never starts a second backend and never
    shifts twice: a version already at 100% with no other version weighted is promoted again (a no-op), and a
    rollout cleared mid-way resumes at the step the canary's recorded weight is in (that step bakes again).

    :param model_name: registered model (templated).
    :param version: the version to roll out; it must be deployed (DeployModelVersionOperator); or the evaluation's
        result (its ``challenger_version``) (templated).
    :param steps: traffic percentages, increasing, ending at 100.
    :param bake_seconds: baking period of each step.
    :param poll_seconds: how often a step's metrics are read.
    :param thresholds: when a step fails: keys of :class:`~mlops_provider.ml.canary.Thresholds`
        (``max_error_rate_increase``, ``max_latency_ratio``, ``min_latency_increase_ms``,
        ``max_prediction_shift``, ``min_requests``); unnamed keys keep their defaults.
    :param keep_versions: versions kept running after a rollout (the new champion and the ones before it).
    :param port: the endpoint's port.
    :param admin_port: Caddy's admin API port (default ``port + 1``).
    :param deferrable: bake in the triggerer (True) or in the worker.
    :param settle_seconds: the earliest a deferred analysis fires (:mod:`mlops_provider.triggers.settle`).
    :param move_champion: at 100% move ``champion`` (and ``previous``) to the version (True); False leaves them to a
        ``PromoteModelOperator`` after this task (the loop's promotion DAG: its compare-and-set and notification).
        A rollback never moves ``champion`` when False.
    :param ledger_path: the evaluation's verdict ledger to add the outcome to, or the evaluation's result (its
        ``ledger_path``) (templated; empty: none).

    XCom (return value): ``{"model_name", "version", "baseline", "outcome", "steps", "weights", "record_path"}``.
    """

    upstream_fields = {"version": "challenger_version", "ledger_path": "ledger_path"}  # the evaluation
    template_fields: Sequence[str] = ("model_name", "version", "ledger_path")

    def __init__(
        self,
        *,
        model_name: str,
        version: str | XComArg,
        steps: Sequence[int] = DEFAULT_STEPS,
        bake_seconds: float = 60.0,
        poll_seconds: float = 2.0,
        thresholds: dict[str, Any] | None = None,
        keep_versions: int = 2,
        port: int = DEFAULT_ENDPOINT_PORT,
        admin_port: int | None = None,
        deferrable: bool = True,
        settle_seconds: float = RESUME_SETTLE_SECONDS,
        move_champion: bool = True,
        ledger_path: str | XComArg | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version = cast("str", version)  # an upstream result is picked when rendered
        self.move_champion = move_champion
        self.ledger_path = cast("str | None", ledger_path)  # an upstream result is picked when rendered
        self.steps = rollout_steps(steps)
        if bake_seconds <= 0 or poll_seconds <= 0:
            raise ValueError(f"bake_seconds and poll_seconds must be > 0, got {bake_seconds}, {poll_seconds}")
        self.bake_seconds = bake_seconds
        self.poll_seconds = poll_seconds
        self.thresholds = Thresholds.from_mapping(thresholds).as_dict()
        if keep_versions < 1:
            raise ValueError(f"keep_versions must be >= 1 (the champion), got {keep_versions}")
        self.keep_versions = keep_versions
        self.port = port
        self.admin_port = admin_port
        self.deferrable = deferrable
        self.settle_seconds = settle_seconds

    # -- the verdict record ------------------------------------------------------------------------------------

    def _verdict_path(self, context: Context) -> Any:
        from mlops_provider.runtime.deployment import serving_records
        from mlops_provider.utils.evidence import attempt_key

        return serving_records(self.model_name) / "verdicts" / f"v{self.version}-{attempt_key(context)}.json"

    def _record_verdict(self, context: Context, **fields: Any) -> dict[str, Any]:
        """Update this attempt's verdict record (steps are appended, never rewritten)."""
        from mlops_provider.runtime.deployment import now
        from mlops_provider.utils.evidence import attempt_key
        from mlops_provider.utils.storage import write_text

        path = self._verdict_path(context)
        record = json.loads(path.read_text()) if path.exists() else {
            "model_name": self.model_name, "version": str(self.version), "attempt": attempt_key(context),
            "started_at": now(), "steps": [], "thresholds": self.thresholds, "outcome": None}  # fmt: skip
        step = fields.pop("step", None)
        if step is not None:
            record["steps"].append(step)
        record.update(fields, updated_at=now())
        write_text(path, json.dumps(record, indent=2, default=str))
        return record

    # -- the rollout ---------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.runtime.deployment import DeploymentError

        version = str(self.version)
        endpoint = self.endpoint()
        try:
            record = endpoint.status(self.model_dir_for)
        except DeploymentError as exc:
            raise self.fail(f"reconciling {self.model_name}'s endpoint", exc) from exc
        if version not in record["backends"]:
            raise self.fail(f"{self.model_name} v{version} is not deployed on its endpoint (deployed: "
                            f"{sorted(record['backends'])}): run DeployModelVersionOperator first")  # fmt: skip
        others = {v: w for v, w in record["weights"].items() if v != version and w > 0}
        hook = self.mlflow_hook
        if not others:
            self.log.info("No other version serves %s: v%s gets 100%% at once", self.model_name, version)
            return self._promote(context, endpoint, None, "no baseline: promoted at once")
        baseline = max(others, key=lambda v: (others[v], int(v) if v.isdigit() else 0))
        with hook.alias_lock(self.model_name):
            hook.set_aliases(self.model_name, {CANARY_ALIAS: version})
        self._record_verdict(context, baseline=baseline, outcome="rolling_out")
        index = resume_index(self.steps, int(record["weights"].get(version, 0)))
        if index:
            self.log.info("v%s already has %s%% (a re-run): the rollout resumes at step %s%%", version,
                          record["weights"].get(version), self.steps[index])  # fmt: skip
        return self._run_step(context, endpoint, index, baseline)

    def _run_step(self, context: Context, endpoint: Endpoint, index: int, baseline: str) -> dict[str, Any]:
        from mlops_provider.runtime.deployment import DeploymentError
        from mlops_provider.triggers.canary import CanaryAnalysisTrigger, read_snapshot

        version = str(self.version)
        percent = self.steps[index]
        if percent == 100:
            return self._promote(context, endpoint, baseline, f"passed {index} step(s)")
        try:
            record = endpoint.set_weights(step_weights(version, baseline, percent), reason=f"canary step {percent}%")
        except DeploymentError as exc:
            raise self.fail(f"setting the weights of step {percent}%", exc) from exc
        canary_url = endpoint.backend(record, version).url
        baseline_url = endpoint.backend(record, baseline).url
        before = {"canary": read_snapshot(canary_url), "baseline": read_snapshot(baseline_url)}
        self.log.info("Canary %s v%s at %s%% (baseline v%s), baking %s s", self.model_name, version, percent,
                      baseline, self.bake_seconds)  # fmt: skip
        trigger = CanaryAnalysisTrigger(
            canary_url=canary_url,
            baseline_url=baseline_url,
            before=before,
            started_at=time.time(),
            bake_seconds=self.bake_seconds,
            poll_seconds=self.poll_seconds,
            thresholds=self.thresholds,
            settle_seconds=self.settle_seconds if self.deferrable else 0.0,
            echo={"index": index, "baseline": baseline},
        )
        if self.deferrable:
            # No deferral timeout: the trigger always ends by itself at the end of the baking period, and a timeout
            # would fail the task without the rollback.
            self.defer(trigger=trigger, method_name="execute_complete", kwargs={"index": index, "baseline": baseline})
        return self.execute_complete(context, _first_event(trigger), index=index, baseline=baseline)

    def execute_complete(
        self, context: Context, event: dict[str, Any], index: int | None = None, baseline: str | None = None
    ) -> dict[str, Any]:
        """A step's verdict: the next step, or the rollback. ``index`` and ``baseline`` come from the deferral's
        kwargs, else from the event's ``echo`` (the trigger returns them)."""
        endpoint = self.endpoint()
        received = time.time()
        echo = event.pop("echo", None) or {}
        index = int(echo["index"] if index is None else index)
        baseline = str(echo["baseline"] if baseline is None else baseline)
        step = {"percent": self.steps[index], **event}
        if event.get("passed"):
            self._record_verdict(context, step=step)
            self.log.info("Step %s%% passed: %s", self.steps[index], event.get("reason"))
            return self._run_step(context, endpoint, index + 1, baseline)
        return self._roll_back(context, endpoint, baseline, step, received)

    def _promote(self, context: Context, endpoint: Endpoint, baseline: str | None, reason: str) -> dict[str, Any]:
        from mlops_provider.runtime.deployment import DeploymentError

        version = str(self.version)
        hook = self.mlflow_hook
        try:
            record = endpoint.set_weights({version: 100}, reason=f"canary v{version} promoted")
        except DeploymentError as exc:
            raise self.fail("giving the canary 100%", exc) from exc
        with hook.alias_lock(self.model_name):
            aliases: dict[str, str | None] = {}
            if self.move_champion:
                current = hook.alias_version(self.model_name, CHAMPION_ALIAS)
                aliases[CHAMPION_ALIAS] = version
                previous = baseline or (current if current != version else None)
                if previous:
                    aliases[PREVIOUS_ALIAS] = previous
            if hook.alias_version(self.model_name, CANARY_ALIAS) is not None:
                aliases[CANARY_ALIAS] = None
            if aliases:
                hook.set_aliases(self.model_name, aliases)
        retired = self._retire_old(endpoint, record, keep={version, *([baseline] if baseline else [])})
        verdict = self._record_verdict(context, outcome="promoted", reason=reason, baseline=baseline,
                                       weights={version: 100}, retired=retired)  # fmt: skip
        self._to_ledger(verdict)
        self.log.info("%s v%s serves 100%% (%s)", self.model_name, version, reason)
        return self._result(verdict, endpoint)

    def _to_ledger(self, verdict: dict[str, Any]) -> None:
        """The outcome on the version's tags ``canary.*`` and in the evaluation's verdict ledger (``canary``: the
        latest, ``canaries``: every one, appended)."""
        from mlops_provider.utils.storage import stored, write_text

        summary = {"outcome": verdict.get("outcome"), "alarm": verdict.get("alarm"), "reason": verdict.get("reason"),
                   "baseline": verdict.get("baseline"), "attempt": verdict.get("attempt"),
                   "steps": [{k: step.get(k) for k in ("percent", "passed", "alarm", "reason", "canary", "baseline",
                                                       "prediction_shift")} for step in verdict.get("steps", [])],
                   "rollback_seconds": verdict.get("rollback_seconds"),
                   "record": verdict.get("attempt") and f"deployments/{self.model_name}/verdicts/"
                   f"v{self.version}-{verdict['attempt']}.json"}  # fmt: skip
        tags = {
            "canary.outcome": str(summary["outcome"]),
            "canary.alarm": str(summary["alarm"] or "none"),
            "canary.reason": str(summary["reason"] or "")[:500],
            "canary.verdict": str(summary["attempt"]),
        }
        self.mlflow_hook.set_version_tags(self.model_name, str(self.version), tags)
        if not self.ledger_path:
            return
        path = stored(self.ledger_path)
        if not path.is_file():
            self.log.warning("The verdict ledger %s is not there: the canary's outcome is only in %s", path,
                             summary["record"])  # fmt: skip
            return
        ledger = json.loads(path.read_text())
        ledger["canary"] = summary
        ledger.setdefault("canaries", []).append(summary)
        write_text(path, json.dumps(ledger, indent=2, default=str))

    def _retire_old(self, endpoint: Endpoint, record: dict[str, Any], keep: set[str]) -> list[str]:
        """Stop the versions beyond the newest ``keep_versions`` (never those in ``keep`` at weight > 0)."""
        newest_first = sorted(record["backends"], key=lambda v: (int(v) if v.isdigit() else 0, v), reverse=True)
        kept = [v for v in newest_first if v in keep][: self.keep_versions]
        for v in newest_first:
            if len(kept) >= self.keep_versions:
                break
            if v not in kept:
                kept.append(v)
        retired = [v for v in newest_first if v not in kept and not record["weights"].get(v)]
        for v in retired:
            endpoint.retire(v, reason=f"keep {self.keep_versions} version(s)")
        return retired

    def _roll_back(
        self, context: Context, endpoint: Endpoint, baseline: str, step: dict[str, Any], received: float
    ) -> dict[str, Any]:
        from mlops_provider.runtime.deployment import DeploymentError

        version = str(self.version)
        hook = self.mlflow_hook
        try:
            endpoint.set_weights({baseline: 100}, reason=f"rollback of v{version}: {step.get('alarm')}")
        except DeploymentError as exc:
            raise self.fail(f"rolling back to v{baseline}", exc) from exc
        restored = time.time()
        decided = float(step.get("decided_at") or received)
        endpoint.retire(version, reason=f"canary rolled back: {step.get('alarm')}")
        with hook.alias_lock(self.model_name):
            aliases: dict[str, str | None] = {}
            if hook.alias_version(self.model_name, CANARY_ALIAS) is not None:
                aliases[CANARY_ALIAS] = None
            if self.move_champion and hook.alias_version(self.model_name, CHAMPION_ALIAS) != baseline:
                aliases[CHAMPION_ALIAS] = baseline
            if aliases:
                hook.set_aliases(self.model_name, aliases)
        verdict = self._record_verdict(
            context,
            step=step,
            outcome="rolled_back",
            alarm=step.get("alarm"),
            reason=step.get("reason"),
            baseline=baseline,
            rollback_seconds=round(restored - decided, 4),
            weights={baseline: 100},
        )
        self._to_ledger(verdict)
        raise AirflowFailException(
            f"canary {self.model_name} v{version} rolled back to v{baseline} at step {step['percent']}%: alarm "
            f"{step.get('alarm')}: {step.get('reason')} (canary {json.dumps(step.get('canary'))}, baseline "
            f"{json.dumps(step.get('baseline'))}); verdict record {verdict.get('attempt')}"
        )

    def _result(self, verdict: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
        from mlops_provider.utils.storage import location

        return {
            "model_name": self.model_name,
            "version": str(self.version),
            "baseline": verdict.get("baseline"),
            "outcome": verdict["outcome"],
            "steps": verdict["steps"],
            "weights": verdict.get("weights"),
            "record_path": location(self._verdict_path_from(verdict)),
        }

    def _verdict_path_from(self, verdict: dict[str, Any]) -> Any:
        from mlops_provider.runtime.deployment import serving_records

        return serving_records(self.model_name) / "verdicts" / f"v{self.version}-{verdict['attempt']}.json"


def _first_event(trigger: Any) -> dict[str, Any]:
    """Run a trigger in this process until its first event (the non-deferrable path: the same analysis)."""
    import asyncio

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise RuntimeError("the canary analysis ended without a verdict")

    return asyncio.run(first())
