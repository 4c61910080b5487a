"""Ports with more than one implementation, and the value types services and stores exchange.

**Stores have no Protocol.** Each store (schedules, runs, threads, keys) and the
Scheduler gateway has exactly one implementation, the DynamoDB / EventBridge adapter,
and the services are typed against those classes (imported only for type checking:
no service module loads boto3 or an adapter at run time, which import-linter checks).
Per-service Protocols used to restate the adapters' signatures and drifted from them;
in-memory fakes would be a second implementation of exactly the semantics that matter
— conditional writes, counted limits, transactions, version checks, TTL — which the
whole suite already exercises through the real adapters against moto.

**Protocols stay where there are several implementations:** the clock (system / fixed),
the run invoker (Lambda / thread / inline), webhooks (sender / test recorders), and the
agents (``chalicelib.agents.base``: catalog / the benchmark's timed catalog).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.enums import PauseReason
from chalicelib.domain.models import Run, Schedule, Thread


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    DUPLICATE = "duplicate"
    """A run for this (schedule, scheduled_time) already exists: at-least-once redelivery."""
    OVERLAP = "overlap"
    """The schedule's previous run is still running and the policy is skip."""
    PAUSED = "paused"
    """The schedule was paused between the check and the claim."""
    GONE = "gone"
    """The schedule was deleted between the check and the claim."""


@dataclass(frozen=True)
class ClaimRequest:
    schedule: Schedule
    run: Run
    new_thread: Thread | None
    """For stateless schedules: the run's fresh thread, written in the same transaction."""
    running_until: datetime
    enforce_no_overlap: bool


class FailureStreak(enum.Enum):
    """A finished run's effect on its schedule's consecutive-failure count."""

    EXTEND = "extend"
    """A failed run (error, timeout): one more."""
    RESET = "reset"
    """A successful run: back to zero."""


@dataclass(frozen=True)
class FinishRequest:
    schedule: Schedule | None
    """None when the schedule is gone: only the run and its thread are finished."""
    run: Run
    """The terminal run record."""
    thread: Thread | None
    """The thread's new state (kept threads, thread-bound runs) or None."""
    delete_thread_id: str | None
    """A stateless thread to delete in the same transaction."""
    pause_reason: PauseReason | None
    """Non-None: pause the schedule by the system."""
    now: datetime
    failure_streak: FailureStreak | None = None
    """How the run moves the schedule's ``consecutive_failures`` (None: leaves it)."""
    seen_stuck_after: datetime | None = None
    """The reconciler's: the ``stuck_after`` its stuck-index Query saw. The record is
    written only while the run still has it — the index is eventually consistent, and a
    heartbeat that moved it since means the run is alive (the next sweep re-checks)."""


@dataclass(frozen=True)
class SchedulerEntry:
    """One EventBridge Scheduler schedule, fully specified (UpdateSchedule replaces everything)."""

    name: str
    expression: str
    timezone: str
    enabled: bool
    end_date: datetime | None
    input: str
    description: str


class WebhookOutcome(Protocol):
    @property
    def delivered(self) -> bool: ...
    def summary(self) -> str: ...


class Webhooks(Protocol):
    """Delivers a finished run to its webhook (``WebhookSender``; test recorders)."""

    def send(
        self, url: str, payload: dict[str, Any], *, secret: str | None = None
    ) -> WebhookOutcome:
        """Deliver, signed with ``secret`` when given (never raises; see
        ``chalicelib.services.webhooks``)."""
        ...


class RunInvoker(Protocol):
    """Starts the trigger asynchronously (manual runs): a Lambda ``Event`` invoke, or a thread."""

    def invoke(self, event: dict[str, Any]) -> None: ...
