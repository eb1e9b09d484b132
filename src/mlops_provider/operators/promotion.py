"""Promotion stage: evaluate a version against the champion and write the verdict ledger, gate, promote with
compare-and-set, roll back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator

from mlops_provider.hooks.mixins import DvcHookMixin, MlflowHookMixin, UpstreamResultMixin
from mlops_provider.layout import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DATA_PATH_TAG,
    DATA_REV_TAG,
    PREVIOUS_ALIAS,
)
from mlops_provider.lineage.mixin import OpenLineageMixin
from mlops_provider.links.extra_links import (
    MlflowModelVersionLink,
    VerdictLedgerLink,
    ledger_url,
    model_version_url,
)
from mlops_provider.ml.split import OutOfTimeSplit, Split, row_days, split_from_tags
from mlops_provider.utils.compat import AirflowFailException
from mlops_provider.utils.templated_fields import json_object

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context, XComArg

    from mlops_provider.lineage.datasets import Lineage
    from mlops_provider.ml.split import Split


class EvaluateModelOperator(OpenLineageMixin, MlflowHookMixin, DvcHookMixin, BaseOperator):
    """Score the challenger and the current champion on the same holdout and write the gate's verdict ledger.

    Evaluation data: the challenger's own training set (``data.path`` at ``data.rev``, read from its model version),
    restricted to the holdout rows of the challenger's split (version tags ``split.*``, recorded by
    ``TrainModelOperator``) and, when the champion was trained with another split, of the champion's too: neither
    model is ever scored on rows it trained on. With an out-of-time split (``split.method: out_of_time``) those are
    the last days of the challenger's window, which an older champion never saw either, so both are scored on the
    same days after everything they trained on (the ledger lists them under ``evaluation_data.days``). Both models
    are loaded from the registry and scored overall and per segment; the behaviour tests run on the challenger; the
    gate rules decide ``promote`` or ``reject``.

    The ledger (every check with metric, champion value, challenger value, delta, threshold, pass/fail, and the
    decision with its reason) is logged as artifact ``gate/ledger.json`` of the challenger's run, summarized in
    tags of the model version (``gate.decision``, ``gate.reason``, ``gate.champion_version``, ``gate.ledger``),
    written to ``<reports root>/ledgers/<model>/v<version>/<attempt>.json`` and linked from the task. Ledgers are
    append-only: each evaluation writes its own (artifact ``gate/ledgers/<attempt>.json``), none is overwritten.
    So are the tags: ``gate.*`` keep the version's *first* verdict; a later evaluation of the same version (a
    cleared task, a manual re-run) adds ``gate.reevaluation.<n>.*`` and counts itself in ``gate.reevaluations``,
    and its ledger names the first one (``reevaluation_of``). The run's own gate follows the run's own evaluation.

    The version judged is the run's own: ``challenger_version`` when given, else the version announced by the
    ``model_asset`` event that triggered the run, else (a manual run without a version) the ``challenger`` alias at
    that moment. Re-running the evaluation of a past run therefore judges that run's version again, never a newer
    challenger.

    :param model_name: registered model (templated).
    :param challenger_version: version to evaluate (templated); empty: see above.
    :param model_asset: the challenger Asset the promotion DAG is scheduled on (its events carry ``version``).
    :param gate_rules: the gate rules, a dict (``ModelSpec.gate.rules()`` builds it) or the path of a JSON file
        holding one: ``primary_metric``, ``min_improvement``, ``floors``, ``lower_is_better``, ``segment_column``
        (None: no segments), ``segment_metric``, ``max_segment_regression``, ``require_behaviour_tests``,
        ``threshold``.
    :param behaviour_tests: JSON file of behaviour tests (None: none; then the rules must not require them).
    :param label_column: the label column (no default: it is the model's).
    :param positive_class: the label value of the positive class.
    :param champion_alias: alias of the current champion.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``,
    ``dvc_conn_id``.

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
        gate_rules: dict[str, Any] | str,
        behaviour_tests: str | None,
        label_column: str,
        positive_class: Any = 1,
        challenger_version: str = "",
        model_asset: Asset | None = None,
        champion_alias: str = CHAMPION_ALIAS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.model_asset = model_asset
        self.gate_rules = gate_rules
        self.behaviour_tests = behaviour_tests
        self.challenger_version = challenger_version
        self.label_column = label_column
        self.positive_class = positive_class
        self.champion_alias = champion_alias

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

    def _splits(self, version: str, champion: str | None) -> list[Split]:
        """The holdout splits of the challenger and (when different) the champion, from their version tags."""

        splits: list[Split] = []
        for v in dict.fromkeys(x for x in (version, champion) if x):
            split = split_from_tags(self.mlflow_hook.model_version_tags(self.model_name, v))
            if split is None:
                raise AirflowFailException(
                    f"{self.model_name} v{v} has no split tags (split.method with split.key/fraction/seed or "
                    "split.time_column/holdout_days/holdout_from): it was not trained through TrainModelOperator's "
                    "split, so no data is known to be unseen by it"
                )
            if split not in splits:
                splits.append(split)
        return splits

    def execute(self, context: Context) -> dict[str, Any]:

        from mlops_provider.ml.scoring import decide, load_json, run_behaviour_tests, schema_predictor, score
        from mlops_provider.utils.evidence import attempt_key, first_attempt, write_record
        from mlops_provider.utils.records import ledger_dir
        from mlops_provider.utils.storage import location

        try:
            rules = self.gate_rules if isinstance(self.gate_rules, dict) else load_json(self.gate_rules, "gate rules")
            tests = load_json(self.behaviour_tests, "behaviour tests") if self.behaviour_tests else {}
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        if rules.get("require_behaviour_tests") and not self.behaviour_tests:
            raise AirflowFailException(
                "gate_rules: require_behaviour_tests is true but no behaviour_tests file is given"
            )
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
        splits = self._splits(version, champion)
        try:
            mask = splits[0].mask(frame)
            for other in splits[1:]:
                mask &= other.mask(frame)
        except ValueError as exc:
            raise AirflowFailException(f"{data_path}@{data_rev[:10]}: {exc}") from exc
        holdout = frame[mask].reset_index(drop=True)
        if holdout.empty:
            raise AirflowFailException(f"no row of {data_path}@{data_rev[:10]} is in the holdout of {splits}")
        timed = next((s for s in splits if isinstance(s, OutOfTimeSplit)), None)
        days = sorted(set(row_days(holdout[timed.time_column], timed.time_column))) if timed else None
        threshold = float(rules.get("threshold", 0.5))
        segment = rules.get("segment_column")
        challenger_model = hook.load_model(f"models:/{self.model_name}/{version}")
        champion_model = (
            hook.load_model(f"models:/{self.model_name}/{champion}") if champion and champion != version else None
        )
        scoring = {"label": self.label_column, "segment": segment, "threshold": threshold,
                   "positive_class": self.positive_class}  # fmt: skip
        challenger_scores = score(schema_predictor(challenger_model), holdout, **scoring)
        champion_scores = score(schema_predictor(champion_model), holdout, **scoring) if champion_model else None
        behaviour = run_behaviour_tests(schema_predictor(challenger_model), tests)
        checks, decision, reason = decide(rules, challenger_scores, champion_scores, behaviour)
        if champion == version:
            decision, reason = "promote", f"v{version} is already the champion"

        ti = context["ti"]
        attempt = attempt_key(context)
        folder = ledger_dir(self.model_name, version)
        earlier = first_attempt(folder, other_than=attempt)
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
            "evaluation_data": {
                "path": data_path,
                "rev": data_rev,
                "holdout": [s.as_dict() for s in splits],
                "rows": len(holdout),
                **({"days": days} if days is not None else {}),
            },  # fmt: skip
            "rules": rules,
            "airflow": {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number},
            "reevaluation_of": earlier.get("attempt") if earlier else None,
        }
        ledger_path = write_record(folder, attempt, ledger)
        if challenger_mv.run_id:
            hook.log_dict(challenger_mv.run_id, ledger, f"gate/ledgers/{attempt}.json")
        recorded = hook.record_gate_verdict(
            self.model_name,
            version,
            verdict_summary(ledger, attempt),
            verdict_summary(earlier, str(earlier.get("attempt"))) if earlier else None,
        )
        if ledger["reevaluation_of"]:
            self.log.warning(
                "%s v%s was judged before (ledger %s): its first verdict stays on the version; this evaluation is "
                "recorded as re-evaluation %s (tags gate.reevaluation.%s.*)",
                self.model_name, version, ledger["reevaluation_of"], recorded["gate.reevaluations"],
                recorded["gate.reevaluations"],
            )  # fmt: skip
        VerdictLedgerLink.persist(context, ledger_url(self.model_name, version, attempt))
        self.log.info("Gate for %s v%s: %s (%s)", self.model_name, version, decision, reason)
        result = {
            "decision": decision,
            "reason": reason,
            "model_name": self.model_name,
            "challenger_version": version,
            "champion_version": champion,
            "failed_checks": [f"{c['check']}({c['metric']})" for c in checks if not c["passed"]],
            "ledger_path": location(ledger_path),
        }
        return self.record_lineage(
            result,
            data_path=data_path,
            data_rev=data_rev,
            registry=self.dvc_hook.registry,
            registry_uri=hook.registry_uri,
            challenger_run_id=challenger_mv.run_id or "",
        )

    def lineage(self, result: dict[str, Any]) -> Lineage:
        """Read: the challenger, the champion (if any), the holdout data at its rev. Wrote: the verdict ledger."""
        from mlops_provider.lineage.datasets import Lineage, dvc_file, mlflow_model, stored_file

        models = [mlflow_model(result["registry_uri"], self.model_name, result["challenger_version"],
                               run_id=result["challenger_run_id"])]  # fmt: skip
        if result["champion_version"]:
            models.append(mlflow_model(result["registry_uri"], self.model_name, result["champion_version"]))
        return Lineage(
            inputs=[*models, dvc_file(result["registry"], result["data_path"], rev=result["data_rev"])],
            outputs=[stored_file(result["ledger_path"])],
        )


def verdict_summary(ledger: dict[str, Any], attempt: str) -> dict[str, str]:
    """The verdict of a ledger as model version tag values (``gate.`` is prefixed by the rule that places them)."""
    airflow = ledger.get("airflow") or {}
    return {
        "decision": str(ledger.get("decision")),
        "reason": str(ledger.get("reason") or "")[:500],
        "champion_version": str(ledger.get("champion_version") or "none"),
        "evaluated_by": f"{airflow.get('dag_id')}/{airflow.get('run_id')}/{airflow.get('task_id')}",
        "ledger": attempt,
    }


class ModelGateOperator(BaseOperator):
    """Let promotion go ahead only when the evaluation decided ``promote``; otherwise skip what follows.

    A rejection is a normal outcome, not a failure: this task and its downstream tasks end as skipped and the
    skip message carries the reason from the ledger.

    :param evaluation: the evaluation's result (templated; ``evaluate.output``, a dict or JSON).
    """

    template_fields: Sequence[str] = ("evaluation",)

    def __init__(self, *, evaluation: dict[str, Any] | str | XComArg, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.evaluation = evaluation

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.utils.compat import AirflowSkipException

        verdict = json_object(self.evaluation, "evaluation")
        if verdict.get("decision") != "promote":
            raise AirflowSkipException(
                f"{verdict.get('model_name')} v{verdict.get('challenger_version')} rejected: {verdict.get('reason')}"
            )
        return verdict


class PromoteModelOperator(UpstreamResultMixin, MlflowHookMixin, BaseOperator):
    """Move ``champion`` to the challenger and the old champion to ``previous``, compare-and-set.

    It promotes only if ``champion`` still points where it did at evaluation time (``expected_champion``);
    otherwise it fails saying who moved it. The read-compare-set holds a lock (a file lock in ``$MLOPS_HOME``
    on one machine; run it in the ``model_promotion`` pool across workers). Each move is recorded in model version
    tags (``promotion.promoted_by`` = ``dag_id/run_id/task_id``).

    Re-running is a no-op, also long after: when the version is the champion, or when this very run promoted it
    (tag ``promotion.promoted_by``) even if the champion moved on since, nothing changes; a re-run never moves the
    champion back.

    :param model_name: registered model (templated).
    :param version: version to promote, or the evaluation's result (its ``challenger_version``) (templated).
    :param expected_champion: champion version seen at evaluation; empty or ``None`` for "no champion"; or the
        evaluation's result (its ``champion_version``) (templated).

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``.

    XCom (return value): ``{"model_name", "champion", "previous", "changed"}``.
    """

    upstream_fields = {"version": "challenger_version", "expected_champion": "champion_version"}  # the evaluation
    template_fields: Sequence[str] = ("model_name", "version", "expected_champion")
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        version: str | XComArg,
        expected_champion: str | XComArg | None,
        champion_alias: str = CHAMPION_ALIAS,
        previous_alias: str = PREVIOUS_ALIAS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version = cast("str", version)  # an upstream result is picked when rendered
        self.expected_champion = cast("str | None", expected_champion)  # an upstream result is picked when rendered
        self.champion_alias = champion_alias
        self.previous_alias = previous_alias

    def execute(self, context: Context) -> dict[str, Any]:
        import datetime as dt

        hook = self.mlflow_hook
        version = str(self.version)
        expected = None if self.expected_champion in (None, "", "None", "none") else str(self.expected_champion)
        ti = context["ti"]
        by = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with hook.alias_lock(self.model_name):
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

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``.

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.reason = reason
        self.champion_alias = champion_alias
        self.previous_alias = previous_alias

    def execute(self, context: Context) -> dict[str, Any]:
        import datetime as dt

        if not str(self.reason or "").strip():
            raise AirflowFailException("reason: a rollback needs a reason (it is recorded on the model versions)")
        hook = self.mlflow_hook
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        ti = context["ti"]
        by = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
        with hook.alias_lock(self.model_name):
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
