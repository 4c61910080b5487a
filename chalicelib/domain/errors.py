"""Domain errors.

They carry structured facts, not HTTP messages: each façade formats them in its
own words and envelope (Shannon ``{"error"}``, LangGraph ``{"detail"}``). Lookup
errors subclass :class:`LookupError`, validation errors :class:`ValueError`.
"""

from __future__ import annotations

from decimal import Decimal


class AgentcronError(Exception):
    """Base class of every error agentcron raises on purpose."""


# --- validation ---------------------------------------------------------------------------


class InvalidRequestError(AgentcronError, ValueError):
    """A client-supplied value is unacceptable. ``field`` names it where one field is at fault."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ReadLimitError(InvalidRequestError):
    """Answering would read more than one request may (see ``dynamodb_codec.READ_PAGES``):
    a deep offset or an exact sort over more stored data than that. A 4xx, never a
    timeout: the same request would never succeed on a retry."""


class InvalidCronError(InvalidRequestError):
    """The cron expression does not parse, or cannot be run by EventBridge Scheduler.

    ``unsupported`` is True for valid cron that agentcron refuses on purpose (seconds
    fields, ``L``/``W``/``#`` mixes EventBridge cannot express), False for syntax errors.
    """

    def __init__(self, expression: str, reason: str, *, unsupported: bool = False) -> None:
        super().__init__(reason, field="cron_expression")
        self.expression = expression
        self.reason = reason
        self.unsupported = unsupported


class CronNeverFiresError(InvalidCronError):
    """The expression is well-formed but no date ever matches it (e.g. ``0 9 31 2 *``)."""

    def __init__(self, expression: str) -> None:
        super().__init__(expression, "never fires")


class IntervalTooShortError(InvalidRequestError):
    """Two consecutive fires are closer than the configured minimum interval."""

    def __init__(self, min_minutes: int, actual_minutes: float, *, expression: str = "") -> None:
        super().__init__(f"must be at least {min_minutes} minutes", field="cron_expression")
        self.min_minutes = min_minutes
        self.actual_minutes = actual_minutes
        self.expression = expression


class InvalidTimezoneError(InvalidRequestError):
    """Not an IANA timezone name known to ``zoneinfo`` (or longer than EventBridge allows)."""

    def __init__(self, timezone: str) -> None:
        super().__init__(f"Invalid timezone: {timezone}", field="timezone")
        self.timezone = timezone


class BudgetOutOfRangeError(InvalidRequestError):
    """``max_budget_per_run_usd`` is not in (0, maximum]."""

    def __init__(self, value: Decimal, maximum: Decimal) -> None:
        super().__init__("budget out of range", field="max_budget_per_run_usd")
        self.value = value
        self.maximum = maximum


class TimeoutOutOfRangeError(InvalidRequestError):
    """``timeout_seconds`` is not in [1, maximum]."""

    def __init__(self, value: object, maximum: int) -> None:
        super().__init__("timeout out of range", field="timeout_seconds")
        self.value = value
        self.maximum = maximum


# --- lookups ------------------------------------------------------------------------------


class NotFoundError(AgentcronError, LookupError):
    """The object does not exist *for this caller* (foreign ids are indistinguishable)."""


class ScheduleNotFoundError(NotFoundError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(schedule_id)
        self.schedule_id = schedule_id


class ThreadNotFoundError(NotFoundError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(thread_id)
        self.thread_id = thread_id


class RunNotFoundError(NotFoundError):
    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class AssistantNotFoundError(NotFoundError):
    def __init__(self, assistant_id: str) -> None:
        super().__init__(assistant_id)
        self.assistant_id = assistant_id


# --- state and limits ---------------------------------------------------------------------


class ScheduleLimitReachedError(AgentcronError):
    """The caller already owns ``limit`` schedules."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count}/{limit}")
        self.count = count
        self.limit = limit


class ScheduleStateConflictError(AgentcronError):
    """A state change that the schedule's current state forbids."""


class ScheduleAlreadyPausedError(ScheduleStateConflictError):
    pass


class ScheduleNotPausedError(ScheduleStateConflictError):
    pass


class SchedulePausedBySystemError(ScheduleStateConflictError):
    """Run-now on a schedule agentcron paused itself (``paused_by = system``).

    A system pause (budget exceeded or overrun) holds until the user resumes the
    schedule explicitly; ``reason`` is its ``pause_reason``.
    """

    def __init__(self, schedule_id: str, reason: str | None) -> None:
        super().__init__(f"schedule {schedule_id} was paused by the system: {reason}")
        self.schedule_id = schedule_id
        self.reason = reason


class ConflictError(AgentcronError):
    """An object with that id already exists, or it changed concurrently too often to retry."""


class ThreadAlreadyExistsError(ConflictError):
    """A thread with that id already exists for this caller."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"Thread {thread_id} already exists")
        self.thread_id = thread_id


class SchedulingUnavailableError(AgentcronError):
    """EventBridge Scheduler (or DynamoDB) refused or failed; the change was rolled back."""


# --- auth -----------------------------------------------------------------------------------


class AuthenticationError(AgentcronError):
    """No credentials (``missing``) or credentials that match no active key."""

    def __init__(self, *, missing: bool) -> None:
        super().__init__("missing credentials" if missing else "invalid credentials")
        self.missing = missing


# --- configuration ---------------------------------------------------------------------------


class ConfigurationError(AgentcronError):
    """The deployment is misconfigured (reported at start-up, never turned into a free run)."""
