"""Failed fires: what sits in the two failure queues, and their redrive through the trigger.

A fire can fail in two places, and each has its queue (both created by the template):

* **The Scheduler's dead-letter queue** (``agentcron-<stage>-scheduler-dlq``): EventBridge
  Scheduler could not invoke the trigger at all (throttled, a missing permission, the
  function gone) and gave up after its retry policy. The message body is the event
  itself (the registered ``Input`` with the context attributes filled in); the reason is
  in the message attributes ``ERROR_CODE`` and ``ERROR_MESSAGE``.
* **The trigger's ``OnFailure`` destination** (``agentcron-<stage>-trigger-failures``):
  the trigger was invoked but failed (DynamoDB unavailable, out of memory, killed by its
  timeout). Lambda's own retries are 0, so one failure lands here at once. The message is
  Lambda's invocation record: the event is ``requestPayload``, the reason
  ``responsePayload`` (``errorType``/``errorMessage``) or ``requestContext.condition``.

**Redrive** re-delivers each event to the trigger through the deployment's run invoker —
an asynchronous invoke of the trigger Lambda, exactly like a manual run — and deletes the
message once the invoke was accepted (a message whose invoke fails stays in its queue).
It is safe to repeat because the trigger decides, as for any delivery: a fire whose run
is already recorded is a duplicate and does nothing (the run claim is keyed by schedule
and fire time), and a scheduled fire older than ``MAX_FIRE_LATENESS_SECONDS`` is
recorded as skipped (``late``) rather than run hours after its time. A message that is
not an agentcron event is listed and left alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

SCHEDULER_DLQ = "scheduler-dlq"
TRIGGER_FAILURES = "trigger-failures"
REDRIVE_VISIBILITY_SECONDS = 120
"""A message being redriven is hidden this long; if the invoke fails it comes back."""


def queue_name(stage: str, source: str) -> str:
    """The template's queue names: ``agentcron-<stage>-scheduler-dlq|trigger-failures``."""
    return f"agentcron-{stage}-{source}"


class QueueMessage(Protocol):
    """One SQS message (see ``chalicelib.adapters.sqs_failures``)."""

    @property
    def message_id(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def sent_at_ms(self) -> int | None: ...
    @property
    def attributes(self) -> dict[str, str]: ...


class Queue(Protocol):
    def receive(self, *, visibility_seconds: int, limit: int = 10) -> list[Any]: ...
    def peek(self, limit: int) -> list[Any]: ...
    def release(self, messages: list[Any]) -> None: ...
    def delete(self, message: Any) -> None: ...


class Invoker(Protocol):
    def invoke(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class FailedFire:
    source: str
    message: QueueMessage
    event: dict[str, Any] | None
    """The trigger event, or None when the message is not an agentcron event."""
    error: str
    failed_at: datetime | None

    @property
    def schedule_id(self) -> str:
        return str((self.event or {}).get("schedule_id", "?"))

    @property
    def scheduled_time(self) -> str:
        return str((self.event or {}).get("scheduled_time", "?"))

    @property
    def tenant(self) -> str:
        return str((self.event or {}).get("tenant_id", "?"))

    @property
    def trigger(self) -> str:
        return str((self.event or {}).get("trigger", "schedule"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "message_id": self.message.message_id,
            "schedule_id": self.schedule_id if self.event else None,
            "scheduled_time": self.scheduled_time if self.event else None,
            "tenant": self.tenant if self.event else None,
            "trigger": self.trigger if self.event else None,
            "error": self.error,
            "failed_at": None if self.failed_at is None else self.failed_at.isoformat(),
            "redrivable": self.event is not None,
        }


def parse(source: str, message: QueueMessage) -> FailedFire:
    try:
        body: Any = json.loads(message.body)
    except ValueError:
        body = None
    failed_at = (
        None
        if message.sent_at_ms is None
        else datetime.fromtimestamp(message.sent_at_ms / 1000, UTC)
    )
    event: Any = body
    if source == TRIGGER_FAILURES and isinstance(body, dict) and "requestPayload" in body:
        event = body.get("requestPayload")
        response = body.get("responsePayload")
        context = body.get("requestContext") or {}
        if isinstance(response, dict) and (
            response.get("errorType") or response.get("errorMessage")
        ):
            error = f"{response.get('errorType', 'Error')}: {response.get('errorMessage', '')}"
        else:
            error = str(context.get("condition") or "invocation failed")
    else:
        code = message.attributes.get("ERROR_CODE", "")
        text = message.attributes.get("ERROR_MESSAGE", "")
        error = ": ".join(part for part in (code, text) if part) or "delivery failed"
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except ValueError:
            event = None
    if not _is_trigger_event(event):
        return FailedFire(source, message, None, f"not an agentcron event ({error})", failed_at)
    return FailedFire(source, message, event, error, failed_at)


def _is_trigger_event(event: Any) -> bool:
    return isinstance(event, dict) and all(
        isinstance(event.get(k), str) and event.get(k)
        for k in ("tenant_id", "user_id", "schedule_id", "scheduled_time")
    )


@dataclass
class RedriveReport:
    redriven: list[FailedFire] = field(default_factory=list)
    unrecognised: list[FailedFire] = field(default_factory=list)
    failed: list[tuple[FailedFire, str]] = field(default_factory=list)


class FailedFires:
    def __init__(self, queues: dict[str, Queue], invoker: Invoker) -> None:
        self._queues = queues
        self._invoker = invoker

    def list(self, limit: int = 100) -> list[FailedFire]:
        found: list[FailedFire] = []
        for source, queue in self._queues.items():
            found.extend(parse(source, m) for m in queue.peek(max(0, limit - len(found))))
        return found

    def redrive(self, limit: int = 100) -> RedriveReport:
        report = RedriveReport()
        for source, queue in self._queues.items():
            seen: set[str] = set()
            while len(report.redriven) + len(report.failed) < limit:
                batch = queue.receive(visibility_seconds=REDRIVE_VISIBILITY_SECONDS)
                fresh = [m for m in batch if m.message_id not in seen]
                queue.release([m for m in batch if m.message_id in seen])
                if not fresh:
                    break
                seen.update(m.message_id for m in fresh)
                self._redrive(queue, (parse(source, m) for m in fresh), report)
        return report

    def _redrive(self, queue: Queue, fires: Iterable[FailedFire], report: RedriveReport) -> None:
        for fire in fires:
            if fire.event is None:
                report.unrecognised.append(fire)
                queue.release([fire.message])
                continue
            try:
                self._invoker.invoke(fire.event)
            except Exception as exc:  # the message stays; the next redrive tries again
                report.failed.append((fire, str(exc) or type(exc).__name__))
                queue.release([fire.message])
                continue
            queue.delete(fire.message)
            report.redriven.append(fire)
