"""The local dispatcher: fires due schedules exactly as EventBridge Scheduler would.

It reads what is *registered* — the Scheduler entries in moto (name, expression,
timezone, state, end date, target input) — never our DynamoDB records, so what
fires locally is what AWS would fire: a pause, resume, update or delete takes
effect on the next poll (every ``poll_seconds``), a DISABLED entry never fires,
and fires missed while disabled are not replayed (a modified entry restarts from
now). Expressions are evaluated by :mod:`chalicelib.local.eventbridge_cron`, an
implementation of EventBridge's documented ``cron()`` semantics that shares no
code with agentcron's cron engine.

Each fire substitutes the ``<aws.scheduler.*>`` context attributes into the
entry's ``Input`` and hands the event to the same trigger handler the Lambda
runs, on a worker thread (Lambda targets are invoked asynchronously).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from chalicelib.local.eventbridge_cron import EventBridgeCron

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Callable[[], int]], Any]


@dataclass
class _Entry:
    name: str
    arn: str
    modified: datetime
    cron: EventBridgeCron | None
    timezone: ZoneInfo
    enabled: bool
    end_date: datetime | None
    input: str
    next_fire: datetime | None = None
    fired: int = 0


@dataclass
class Fire:
    """One delivery, as the dispatcher made it (for printing and benchmarks)."""

    name: str
    scheduled_time: datetime
    delivered_at: datetime
    result: Any = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def lateness_seconds(self) -> float:
        return (self.delivered_at - self.scheduled_time).total_seconds()


def render_input(
    template: str,
    scheduled_time: datetime,
    *,
    schedule_arn: str = "",
    attempt: int = 1,
    execution_id: str | None = None,
) -> dict[str, Any]:
    """The event a target receives: ``Input`` with the context attributes substituted."""
    text = (
        template.replace(
            "<aws.scheduler.scheduled-time>",
            scheduled_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        .replace("<aws.scheduler.attempt-number>", str(attempt))
        .replace("<aws.scheduler.execution-id>", execution_id or str(uuid.uuid4()))
        .replace("<aws.scheduler.schedule-arn>", schedule_arn)
    )
    parsed: dict[str, Any] = json.loads(text)
    return parsed


class LocalDispatcher:
    def __init__(
        self,
        scheduler_client: Any,
        group_name: str,
        handler: Handler,
        *,
        poll_seconds: float = 0.25,
        lambda_timeout_seconds: int = 900,
        max_workers: int = 32,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_fire: Callable[[Fire], None] | None = None,
    ) -> None:
        self._client = scheduler_client
        self._group = group_name
        self._handler = handler
        self._poll = poll_seconds
        self._timeout = lambda_timeout_seconds
        self._now = now
        self._on_fire = on_fire
        self._entries: dict[str, _Entry] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fire")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                self.fire_due()
            except Exception:
                log.exception("dispatcher iteration failed")
            self._stop.wait(self._sleep_seconds())

    def _sleep_seconds(self) -> float:
        upcoming = [e.next_fire for e in self._entries.values() if e.enabled and e.next_fire]
        if not upcoming:
            return self._poll
        until = (min(upcoming) - self._now()).total_seconds()
        return max(0.0, min(self._poll, until))

    # --- reading the registered entries -----------------------------------------------------

    def refresh(self) -> None:
        """Sync with the Scheduler: new, modified, disabled and deleted entries."""
        seen: dict[str, Any] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"GroupName": self._group, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self._client.list_schedules(**kwargs)
            for summary in page.get("Schedules", []):
                seen[summary["Name"]] = summary
            token = page.get("NextToken")
            if not token:
                break
        for name in list(self._entries):
            if name not in seen:
                del self._entries[name]
        now = self._now()
        for name, summary in seen.items():
            known = self._entries.get(name)
            modified = summary.get("LastModificationDate") or now
            if known is not None and known.modified == modified:
                known.enabled = summary.get("State") == "ENABLED"
                continue
            entry = self._load(name, modified)
            if entry is not None:
                # A new or changed entry starts from now: EventBridge does not backfill.
                entry.next_fire = self._next(entry, now)
                self._entries[name] = entry

    def _load(self, name: str, modified: datetime) -> _Entry | None:
        try:
            detail = self._client.get_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                log.exception("could not read schedule %s", name)
            # else: deleted between the listing and this read; the next refresh drops it.
            return None
        expression = detail.get("ScheduleExpression", "")
        cron: EventBridgeCron | None
        try:
            cron = EventBridgeCron.parse(expression)
        except ValueError as exc:
            # Real EventBridge would have refused this entry at create time.
            log.error("entry %s has an expression EventBridge rejects: %s", name, exc)
            cron = None
        end = detail.get("EndDate")
        return _Entry(
            name=name,
            arn=detail.get("Arn", name),
            modified=modified,
            cron=cron,
            timezone=ZoneInfo(detail.get("ScheduleExpressionTimezone") or "UTC"),
            enabled=detail.get("State") == "ENABLED",
            end_date=None if end is None else end.astimezone(UTC),
            input=detail.get("Target", {}).get("Input", "{}"),
        )

    def _next(self, entry: _Entry, after: datetime) -> datetime | None:
        if entry.cron is None:
            return None
        nxt = entry.cron.next_fire(after, entry.timezone)
        if nxt is None or (entry.end_date is not None and nxt > entry.end_date):
            return None
        return nxt.astimezone(UTC)

    # --- firing ------------------------------------------------------------------------------

    def fire_due(self) -> list[Fire]:
        now = self._now()
        fired: list[Fire] = []
        for entry in list(self._entries.values()):
            while entry.next_fire is not None and entry.next_fire <= now:
                when = entry.next_fire
                entry.next_fire = self._next(entry, when)
                if entry.enabled:
                    fired.append(self._deliver(entry, when))
        return fired

    def _deliver(self, entry: _Entry, when: datetime) -> Fire:
        entry.fired += 1
        event = self.substitute(entry, when)
        fire = Fire(name=entry.name, scheduled_time=when, delivered_at=self._now())
        self._pool.submit(self._invoke, fire, event)
        return fire

    def substitute(self, entry: _Entry, when: datetime) -> dict[str, Any]:
        text = (
            entry.input.replace(
                "<aws.scheduler.scheduled-time>", when.strftime("%Y-%m-%dT%H:%M:%SZ")
            )
            .replace("<aws.scheduler.attempt-number>", "1")
            .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
            .replace("<aws.scheduler.schedule-arn>", entry.arn)
        )
        parsed: dict[str, Any] = json.loads(text)
        return parsed

    def _invoke(self, fire: Fire, event: dict[str, Any]) -> None:
        deadline = time.monotonic() + self._timeout
        try:
            fire.result = self._handler(event, lambda: int((deadline - time.monotonic()) * 1000))
        except Exception as exc:
            log.exception("trigger failed for %s", fire.name)
            fire.error = str(exc)
        finally:
            fire.done.set()
            if self._on_fire is not None:
                self._on_fire(fire)
