"""moto's SQS as the local stack's moto_server runs it: the same answers, without a cost real SQS does not
have. Local only.

moto's ReceiveMessage checks each message it hands out against the queue's retention period by asking for
the queue's attributes, and moto computes every attribute of a queue each time, the approximate message
counts among them, each a pass over all of the queue's messages (three times per message here): draining a
dead-letter queue of 101 messages cost moto_server more CPU than the rest of a remediation run. A py-spy
profile of a 20-event burst had over half of moto_server's CPU there (README, "Latency").
"""

from __future__ import annotations

from moto.core.utils import unix_time
from moto.sqs.models import Message, SQSBackend


def retention_check_reads_one_attribute() -> None:
    """SQSBackend.is_message_valid_based_on_retention_period, reading the one attribute it needs."""

    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Message
    ) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return retention_period + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
