"""Ports: what the services need from the outside world.

Adapters in ``chalicelib.adapters`` implement them against AWS (DynamoDB,
EventBridge Scheduler, Lambda); tests run the same adapters against moto, and use
the small fakes in ``chalicelib.adapters.memory`` where no AWS service is involved.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.models import ApiKey, Principal, Run, Schedule, Thread


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class ScheduleStore(Protocol):
    """Schedules, scoped by (tenant, user) in every key."""

    def create(self, schedule: Schedule, *, limit: int) -> None:
        """Insert atomically with the per-user limit (ScheduleLimitReachedError, ConflictError)."""

    def get(self, principal: Principal, schedule_id: str) -> Schedule:
        """One consistent read (ScheduleNotFoundError)."""
        ...

    def list_for_user(self, principal: Principal) -> list[Schedule]:
        """The caller's schedules, newest first (one Query while they fit in 1 MB)."""
        ...

    def replace(self, schedule: Schedule, *, expected_version: int) -> None:
        """Conditional overwrite (ConflictError when the version moved, ScheduleNotFoundError)."""

    def pause(
        self,
        principal: Principal,
        schedule_id: str,
        *,
        at: datetime,
        reason: str | None,
        by: str,
    ) -> Schedule:
        """ACTIVE → PAUSED in one conditional write; returns the new record."""
        ...

    def resume(self, principal: Principal, schedule_id: str, *, at: datetime) -> Schedule:
        """PAUSED → ACTIVE in one conditional write; returns the new record."""
        ...

    def delete(self, principal: Principal, schedule_id: str) -> Schedule:
        """Delete and return the old record (ScheduleNotFoundError)."""
        ...

    def restore(self, schedule: Schedule) -> None:
        """Compensation: put a deleted record back (only if absent)."""


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
    pause_reason: str | None
    """Non-None: pause the schedule by the system (e.g. budget_exceeded)."""
    now: datetime


class RunStore(Protocol):
    def claim(self, request: ClaimRequest) -> ClaimOutcome: ...

    def record_skip(self, schedule: Schedule, run: Run) -> bool:
        """Write a terminal skipped run; False if this fire was already recorded."""
        ...

    def finish(self, request: FinishRequest) -> None: ...

    def list_for_schedule(
        self, tenant_id: str, schedule_id: str, *, offset: int, limit: int
    ) -> list[Run]:
        """Newest first (by scheduled time)."""
        ...

    def get_by_scheduled_time(
        self, tenant_id: str, schedule_id: str, scheduled_time: datetime, run_id: str | None
    ) -> Run | None: ...

    def list_for_thread(
        self, tenant_id: str, thread_id: str, *, offset: int, limit: int
    ) -> list[Run]: ...


class ThreadStore(Protocol):
    def create(self, thread: Thread) -> None: ...

    def get(self, principal: Principal, thread_id: str) -> Thread: ...

    def find(self, tenant_id: str, user_id: str, thread_id: str) -> Thread | None: ...

    def delete(self, principal: Principal, thread_id: str) -> None: ...

    def list_for_user(self, principal: Principal) -> list[Thread]: ...


class ApiKeyStore(Protocol):
    def put(self, key: ApiKey) -> None: ...

    def find(self, key_hash: str) -> ApiKey | None: ...

    def list_for_tenant(self, tenant_id: str) -> list[ApiKey]: ...

    def revoke(self, key_hash: str, at: datetime) -> bool: ...


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
