"""The failure queues through SQS: the Scheduler's dead-letter queue and the trigger's
``OnFailure`` destination.

Reading a queue hides what was read for the visibility timeout; a *peek* (listing for an
operator) therefore hands every message back at once (visibility 0), so a listing never
delays a redrive. A message is deleted only after its fire was re-delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_BATCH = 10  # SQS's ReceiveMessage maximum


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str
    sent_at_ms: int | None = None
    receive_count: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    """Message attributes (string values), e.g. the Scheduler's ``ERROR_CODE``."""


class SqsQueue:
    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.url = url

    @classmethod
    def named(cls, client: Any, name: str) -> SqsQueue:
        return cls(client, client.get_queue_url(QueueName=name)["QueueUrl"])

    def receive(self, *, visibility_seconds: int, limit: int = MAX_BATCH) -> list[QueueMessage]:
        response = self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(limit, MAX_BATCH)),
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        return [_message(raw) for raw in response.get("Messages", [])]

    def peek(self, limit: int) -> list[QueueMessage]:
        """Up to ``limit`` messages, left in the queue and visible again at once."""
        seen: dict[str, QueueMessage] = {}
        try:
            while len(seen) < limit:
                batch = self.receive(visibility_seconds=30, limit=limit - len(seen))
                fresh = [m for m in batch if m.message_id not in seen]
                if not fresh:
                    break
                seen.update((m.message_id, m) for m in fresh)
        finally:
            self.release(list(seen.values()))
        return list(seen.values())

    def release(self, messages: list[QueueMessage]) -> None:
        """Make messages visible again now (they stay in the queue)."""
        for start in range(0, len(messages), MAX_BATCH):
            chunk = messages[start : start + MAX_BATCH]
            self._client.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )

    def delete(self, message: QueueMessage) -> None:
        self._client.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)

    def depth(self) -> int:
        attributes = self._client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0))


def _message(raw: dict[str, Any]) -> QueueMessage:
    system = raw.get("Attributes", {})
    attributes = {
        name: str(value.get("StringValue", ""))
        for name, value in raw.get("MessageAttributes", {}).items()
    }
    sent = system.get("SentTimestamp")
    received = system.get("ApproximateReceiveCount")
    return QueueMessage(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        sent_at_ms=int(sent) if sent else None,
        receive_count=int(received) if received else None,
        attributes=attributes,
    )
