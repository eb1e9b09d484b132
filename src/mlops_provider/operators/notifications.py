"""Send the on-call mail that could not go out when it happened (the notification outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_provider.notifications.mail import SEND_ATTEMPTS, SMTP_TIMEOUT
from mlops_provider.utils.compat import AirflowException

if TYPE_CHECKING:
    from airflow.sdk import Context


class SendNotificationOutboxOperator(BaseOperator):
    """Send every mail waiting in the notification outbox (``<storage root>/notifications/outbox``) through the
    connection it was meant for, and mark each sent, so no mail goes out twice. A notifier
    (:class:`~mlops_provider.notifications.mail.MlopsEventNotifier`)
    puts a mail there when the SMTP server refused it or
    did not answer within its bounded attempts.

    Fails while a mail is still not sent (mail is down: the task goes red and its retries try again); stops at the
    first mail that fails, leaving the rest for the next run. Run one at a time (``max_active_runs=1``).

    XCom ``return_value``: ``{"sent": [subject], "unsent": [{"subject", "error"}]}``.

    :param timeout: seconds one SMTP operation may take (the connection's lower ``timeout`` extra applies).
    :param attempts: attempts per mail, with exponential backoff.
    :param within: seconds the attempts of one mail may take in all.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#f9e79f"

    def __init__(
        self,
        *,
        timeout: int = SMTP_TIMEOUT,
        attempts: int = SEND_ATTEMPTS,
        within: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self.attempts = attempts
        self.within = within

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.notifications.mail import flush_outbox

        result = flush_outbox(timeout=self.timeout, attempts=self.attempts, within=self.within)
        self.log.info("Outbox: %d mail(s) sent, %d still waiting", len(result["sent"]), len(result["unsent"]))
        if result["unsent"]:
            context["ti"].xcom_push(key="return_value", value=result)
            first = result["unsent"][0]
            raise AirflowException(
                f"{len(result['unsent'])} notification mail(s) still not sent; first {first['subject']!r}: "
                f"{first['error']}. Check the SMTP connection and server; this task's retries and the next run "
                "send them (the model health page lists them)."
            )
        return result
