"""Trigger that finds, in the triggerer, the answer an earlier try of an approval task received.

Airflow 3.3.2 re-runs an approval task from ``execute`` when its scheduler takes a stale executor event for an
external state change (the resumed try never runs; :mod:`mlops_provider.operators.approval`), and the HITL request
upsert of that new try erases the response the earlier try received. A task cannot read that response before
the upsert (its supervisor has no route for it); the triggerer can (``GetHITLDetailResponse``). So a re-run
defers here first: the answer kept on the request is taken; a request that is missing, or that ended with the
timeout default, is asked again; one still open is waited on, exactly as Airflow's own ``HITLTrigger`` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.triggers.base import TriggerEvent

from mlops_provider.triggers.settle import RESUME_SETTLE_SECONDS, settle_delay

#: The event key telling the operator to ask again, with the reason as its value.
ASK_AGAIN = "mlops_ask_again"


def kept_answer_action(response: Any) -> str | None:
    """What a re-run does with the HITL detail ``response`` (``HITLDetailResponse``, or None: no request row): the
    reason to ask again, or None to take the answer (or wait for one, when none came yet)."""
    if response is None:
        return "no request of an earlier try was found"
    if response.response_received and response.responded_by_user is None:
        return "the earlier request ended with the timeout default, not an answer"
    return None


class KeptAnswerTrigger(HITLTrigger):
    """Airflow's ``HITLTrigger`` for a re-run of an approval task: it fires with the answer a human gave an
    earlier try (``{"chosen_options", "params_input", "responded_at", "responded_by_user", "timedout"}``), or
    ``{ASK_AGAIN: reason}`` when there is nothing to honour; while the request is still open it waits for the
    answer or the timeout like ``HITLTrigger``. It never fires before ``settle_seconds`` after it started
    (:mod:`mlops_provider.triggers.settle`).

    :param settle_seconds: the earliest it fires after it started.
    (The other parameters are ``HITLTrigger``'s.)
    """

    def __init__(self, *, settle_seconds: float = RESUME_SETTLE_SECONDS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settle_seconds = settle_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return "mlops_provider.triggers.approval.KeptAnswerTrigger", {**kwargs, "settle_seconds": self.settle_seconds}

    async def _kept_response(self) -> Any:
        from airflow.sdk.exceptions import AirflowRuntimeError
        from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail
        from asgiref.sync import sync_to_async

        try:
            return await sync_to_async(get_hitl_detail_content_detail)(ti_id=self.ti_id)
        except AirflowRuntimeError as err:
            if (getattr(err.error, "detail", None) or {}).get("status_code") == 404:
                return None
            raise

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        reason = kept_answer_action(await self._kept_response())
        events: AsyncIterator[TriggerEvent] = super().run() if reason is None else _one(reason)
        async for event in events:
            await asyncio.sleep(settle_delay(started, time.monotonic(), self.settle_seconds))
            yield event
            return


async def _one(reason: str) -> AsyncIterator[TriggerEvent]:
    yield TriggerEvent({ASK_AGAIN: reason})
