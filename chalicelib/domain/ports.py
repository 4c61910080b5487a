"""Ports: what the services need from the outside world.

Shared here: the clock, the Scheduler gateway, the run invoker, and the claim/finish
requests of the run store. Each service declares the slice of a store it uses as its
own Protocol next to it (``ScheduleRepository``, ``RunRepository`` …), so a port never
promises more than its consumer needs. Adapters in ``chalicelib.adapters`` implement
them against AWS; tests run the same adapters against moto.
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


class SchedulerGateway(Protocol):
    def create(self, entry: SchedulerEntry) -> None: ...

    def update(self, entry: SchedulerEntry) -> None: ...

    def delete(self, name: str) -> None:
        """Idempotent: a missing entry is not an error."""


class RunInvoker(Protocol):
    """Starts the trigger asynchronously (manual runs): a Lambda ``Event`` invoke, or a thread."""

    def invoke(self, event: dict[str, Any]) -> None: ...
