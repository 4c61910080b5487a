"""Policies, states and outcomes of the domain, as enums.

Each façade maps these to its own vocabulary (Shannon: ``COMPLETED``/``FAILED``…,
LangGraph: ``success``/``error``…); the domain words are the only ones stored.
"""

from __future__ import annotations

from enum import StrEnum


class ScheduleStatus(StrEnum):
    """Whether a schedule fires."""

    ACTIVE = "ACTIVE"
    """Its EventBridge schedule(s) are ENABLED and fires run the agent."""
    PAUSED = "PAUSED"
    """Its EventBridge schedule(s) are DISABLED; stray fires are recorded as skipped."""


class PausedBy(StrEnum):
    """Who paused a schedule."""

    USER = "user"
    """A client called pause (or set ``enabled: false``)."""
    SYSTEM = "system"
    """agentcron paused it, e.g. after a run exceeded its budget."""


class OnRunCompleted(StrEnum):
    """What happens to a stateless run's thread once the run is over."""

    DELETE = "delete"
    """Delete the thread (the default, as in LangGraph)."""
    KEEP = "keep"
    """Keep it for later retrieval (optionally expiring via DynamoDB TTL)."""


class OverlapPolicy(StrEnum):
    """What a fire does while the schedule's previous run is still running."""

    SKIP = "skip"
    """Record the fire as a skipped run with reason ``overlap`` (the default)."""
    ALLOW = "allow"
    """Run concurrently with the previous run."""


class RunStatus(StrEnum):
    """The life cycle of one run; the last five are terminal."""

    PENDING = "pending"
    """Accepted, not started (manual runs between the API call and the trigger)."""
    RUNNING = "running"
    """Claimed by a trigger invocation; the agent is working."""
    SUCCESS = "success"
    """The agent finished within its deadline and budget."""
    ERROR = "error"
    """The agent (or its model provider) failed."""
    TIMEOUT = "timeout"
    """The deadline passed; no model call was started after it."""
    BUDGET_EXCEEDED = "budget_exceeded"
    """The next model call could not fit in the remaining budget."""
    SKIPPED = "skipped"
    """The fire did not run the agent; ``error_message`` gives the reason."""

    @property
    def is_terminal(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING)

    @property
    def counts_as_success(self) -> bool:
        return self is RunStatus.SUCCESS

    @property
    def counts_as_failure(self) -> bool:
        return self in (RunStatus.ERROR, RunStatus.TIMEOUT, RunStatus.BUDGET_EXCEEDED)


class RunTrigger(StrEnum):
    """Why a run happened."""

    SCHEDULE = "schedule"
    """EventBridge Scheduler (or the local dispatcher) fired it."""
    MANUAL = "manual"
    """A client asked for a run now."""


class SkipReason(StrEnum):
    """Why a fire was recorded as skipped instead of running the agent."""

    OVERLAP = "overlap"
    PAUSED = "paused"
    ENDED = "ended"
    STALE = "stale"
    """The fire time is not one the schedule's cron produces (an outdated EventBridge entry)."""
    LATE = "late"
    """Delivered later than the maximum lateness after its fire time."""
    MONTHLY_CAP = "monthly_cap"
    """The owner's (user or tenant) monthly spend cap is exhausted for this UTC month."""


class FireOutcome(StrEnum):
    """What one delivery came to when it did not run the agent (a run that ran ends in a
    :class:`RunStatus`): the trigger's answer, and the local dispatcher's log line."""

    IGNORED = "ignored"
    """The schedule is gone (deleted between the Scheduler's fire and the delivery)."""
    DUPLICATE = "duplicate"
    """Another delivery of the same fire already claimed it (at-least-once delivery)."""
    SKIPPED = "skipped"
    """Recorded as a skipped run (paused, ended, stale, late, overlapping)."""
    DROPPED = "dropped"
    """Not a trigger event agentcron registered (not JSON, or malformed): logged, not run."""


class PauseReason(StrEnum):
    """Why agentcron paused a schedule by itself (``paused_by = system``). A user's pause
    carries the user's own free-text reason instead."""

    BUDGET_EXCEEDED = "budget_exceeded"
    """A run hit its budget and ``AUTO_PAUSE_ON_BUDGET_EXCEEDED`` is on."""
    BUDGET_OVERRUN = "budget_overrun"
    """A provider reported usage above a call's output bound (it ignored ``max_tokens``):
    the run was booked truthfully, possibly above its budget. Always paused."""
    CONSECUTIVE_FAILURES = "consecutive_failures"
    """``pause_after_failures`` runs in a row failed (error or timeout)."""


class ThreadStatus(StrEnum):
    """LangGraph's thread states, which agentcron's threads follow."""

    IDLE = "idle"
    BUSY = "busy"
    INTERRUPTED = "interrupted"
    ERROR = "error"


class ScheduleOrigin(StrEnum):
    """The façade a schedule was created through (informational: both façades see all)."""

    SHANNON = "shannon"
    LANGGRAPH = "langgraph"
