"""Shannon's ``/api/v1/schedules`` wire format: one pydantic model per request and response.

The models *are* the contract: the OpenAPI document is generated from them, requests
are validated by them, responses are built through them. Field limits live here
(types, lengths, depth, Unicode validity); rules that depend on the deployment (the
budget and timeout maxima, the minimum interval) or on the cron engine stay in
``ScheduleService`` and reach the client through the error table.

Words: every message is Shannon's (``Invalid request body: <field>: <problem>``,
``Schedule name required`` …), produced from pydantic's errors by :func:`message`.
``null`` on any field means "absent", as in Shannon's Go decoder: a ``null`` name is
``Schedule name required``, a ``null`` timezone is UTC — except ``webhook`` on update,
where ``null`` removes it.

Responses follow Shannon's documentation; where Shannon's server or ``shannon-sdk`` uses
another key, both are emitted (``id`` + ``schedule_id``, ``total`` + ``total_count``).
Every schedule key is always present; run items omit their empty optional fields, as documented.
``next_run_at`` and ``last_run_at`` carry the schedule's timezone offset, every other
timestamp is UTC ``Z``.

**Lists stay under Lambda's 6 MiB** (:data:`~chalicelib.api.http.MAX_RESPONSE_BYTES`
for the items). Shannon pages by number — page ``p`` is the items from ``(p-1) ×
page_size`` — so a page cannot simply stop early without losing the rest of its
window. Instead, when a page's items would pass the budget, the largest are abridged
to one common size (:func:`abridged`): their long free-text fields are clipped with
the ``… [truncated: N bytes]`` marker (largest field first), ``task_context`` becomes
``{}`` if it must, and the item names what was cut in ``truncated_fields``. Items
below that size are untouched, and an item is never abridged at a page size where
the worst case fits (runs: :data:`WHOLE_RUNS_PAGE_SIZE`, which is the default).
``GET /api/v1/schedules/{id}`` always answers the whole schedule; a schedule read
from an abridged list must not be written back as it is.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chalicelib.api.http import (
    Problem,
    checked_json,
    checked_text,
    documented,
    integer_param,
    payload_bytes,
    quote,
    worded,
)
from chalicelib.domain.enums import OverlapPolicy, RunStatus
from chalicelib.domain.models import (
    MAX_ATTEMPTS_PER_CALL,
    MAX_DESCRIPTION_CHARS,
    MAX_INITIAL_BACKOFF_SECONDS,
    MAX_NAME_CHARS,
    MAX_PAUSE_AFTER_FAILURES,
    MAX_WEBHOOK_CHARS,
    MIN_INITIAL_BACKOFF_SECONDS,
    FailedAttempt,
    Run,
    Schedule,
    clip_text,
    user_message_input,
)
from chalicelib.services.schedules import ScheduleChanges, ScheduleDraft

BODY = "Invalid request body"
MAX_QUERY_CHARS = 32 * 1024
MAX_TIMEZONE_CHARS = 50
MAX_REASON_CHARS = 1024
MAX_PAGE_SIZE = 100
MAX_PREVIEW = 50
WHOLE_RUNS_PAGE_SIZE = 20
"""Run pages up to this size are never abridged (checked against the worst case by a test)."""
SCHEDULE_CLIPPABLE = ("task_context", "task_query", "description", "pause_reason")
RUN_CLIPPABLE = ("result", "query", "error_message", "webhook_status")
TRUNCATED_DOC = (
    "Present only on a list item abridged to keep the response under Lambda's 6 MiB: "
    "the fields clipped (text ends with '… [truncated: N bytes]'; task_context is {})."
)
INT32 = 2**31 - 1

REQUIRED = {
    "name": "Schedule name required",
    "cron_expression": "Cron expression required",
    "task_query": "Task query required",
}
TOO_LONG = {
    "name": f"Name too long: max {MAX_NAME_CHARS} characters",
    "description": f"Description too long: max {MAX_DESCRIPTION_CHARS} characters",
    "task_query": "Task query too long: max 32 KiB",
    "reason": f"{BODY}: reason: max {MAX_REASON_CHARS} characters",
    "webhook": "Webhook URL too long",
}

RUN_STATUS = {
    RunStatus.PENDING: "PENDING",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.SUCCESS: "COMPLETED",
    RunStatus.ERROR: "FAILED",
    RunStatus.TIMEOUT: "TIMEOUT",
    RunStatus.BUDGET_EXCEEDED: "BUDGET_EXCEEDED",
    RunStatus.SKIPPED: "SKIPPED",
}


# --- field types ------------------------------------------------------------------------------


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("required", "required")
    return value


Text = Annotated[
    str,
    WrapValidator(worded(BODY + ": {path}: must be a string")),
    AfterValidator(checked_text(BODY + ": {path}: must be valid Unicode text")),
]
RequiredText = Annotated[Text, AfterValidator(_not_blank), documented(pattern=r"\S")]


def _timezone(value: str) -> str:
    if len(value) > MAX_TIMEZONE_CHARS:
        raise PydanticCustomError("worded", f"Invalid timezone: {quote(value)}")
    return value


Timezone = Annotated[Text, AfterValidator(_timezone), Field(max_length=MAX_TIMEZONE_CHARS)]
TaskContext = Annotated[
    dict[str, Any],
    WrapValidator(worded(BODY + ": {path} must be an object")),
    AfterValidator(checked_json(BODY + ": {path}: {problem}")),
]


def _usd(value: float) -> float:
    # Millionths of a dollar: a budget is money, and DynamoDB numbers stop at 1e-130. (Huge
    # values are left to the service's maximum.)
    if abs(value) >= 1e12:
        return value
    return float(Decimal(repr(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def _finite(value: Any, handler: Any) -> Any:
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        raise PydanticCustomError("worded", BODY + ": {path}: must be a finite number")
    return worded(BODY + ": {path}: must be a number")(value, handler)


Budget = Annotated[float, WrapValidator(_finite), AfterValidator(_usd)]
Seconds = Annotated[int, WrapValidator(worded(BODY + ": {path}: must be an integer"))]
Overlap = Annotated[
    Literal["skip", "allow"],
    WrapValidator(worded(BODY + ": {path}: must be 'skip' or 'allow'")),
]
Flag = Annotated[bool, WrapValidator(worded(BODY + ": {path}: must be a boolean"))]


def _between(low: float, high: float) -> Any:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise PydanticCustomError(
                "worded", BODY + ": {path}: " + f"must be between {low:g} and {high:g}"
            )
        return value

    return AfterValidator(check)


Attempts = Annotated[
    Seconds,
    _between(1, MAX_ATTEMPTS_PER_CALL),
    documented(minimum=1, maximum=MAX_ATTEMPTS_PER_CALL),
]
Backoff = Annotated[
    float,
    WrapValidator(_finite),
    _between(MIN_INITIAL_BACKOFF_SECONDS, MAX_INITIAL_BACKOFF_SECONDS),
    documented(minimum=MIN_INITIAL_BACKOFF_SECONDS, maximum=MAX_INITIAL_BACKOFF_SECONDS),
]
Failures = Annotated[
    Seconds,
    _between(0, MAX_PAUSE_AFTER_FAILURES),
    documented(minimum=0, maximum=MAX_PAUSE_AFTER_FAILURES),
]


class _Body(BaseModel):
    """A request body: strict JSON types, unknown keys refused, ``null`` = absent."""

    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)
    null_clears: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k in cls.null_clears}
        return data


# --- requests ---------------------------------------------------------------------------------


class _ScheduleFields(_Body):
    description: Annotated[Text, Field(max_length=MAX_DESCRIPTION_CHARS)] | None = None
    timezone: Timezone | None = Field(None, description="IANA name; default UTC.")
    task_context: TaskContext | None = Field(None, description="Any JSON object, returned as is.")
    max_budget_per_run_usd: Budget | None = Field(
        None,
        description="Greater than 0, at most SCHEDULE_MAX_BUDGET_USD (default 10).",
        json_schema_extra={"exclusiveMinimum": 0},
    )
    timeout_seconds: Seconds | None = Field(
        None,
        description="1 to SCHEDULE_MAX_TIMEOUT_SECONDS (default 840).",
        json_schema_extra={"minimum": 1},
    )
    overlap_policy: Overlap | None = Field(
        None, description="agentcron: a fire while the previous run runs is skipped or allowed."
    )
    webhook: Annotated[Text, Field(max_length=MAX_WEBHOOK_CHARS)] | None = Field(
        None,
        description="agentcron: an https:// URL that receives every finished run and "
        "system pause, signed (X-Agentcron-Signature).",
    )
    max_attempts_per_call: Attempts | None = Field(
        None,
        description="agentcron: attempts of a model call the provider refused transiently "
        "(429, 5xx, throttling); 1 = no retry (default RETRY_MAX_ATTEMPTS_PER_CALL, 3).",
    )
    initial_backoff_seconds: Backoff | None = Field(
        None,
        description="agentcron: the first retry's backoff, doubled per retry, plus jitter "
        "(default RETRY_INITIAL_BACKOFF_SECONDS, 1).",
    )
    pause_after_failures: Failures | None = Field(
        None,
        description="agentcron: failed runs in a row after which the system pauses the "
        "schedule; 0 = never (default PAUSE_AFTER_CONSECUTIVE_FAILURES, 5).",
    )


class ScheduleCreate(_ScheduleFields):
    """``POST /api/v1/schedules``."""

    name: RequiredText = Field(max_length=MAX_NAME_CHARS)
    cron_expression: RequiredText = Field(description="Standard 5-field cron.")
    task_query: RequiredText = Field(max_length=MAX_QUERY_CHARS)

    def draft(self) -> ScheduleDraft:
        return ScheduleDraft(
            name=self.name,
            cron_expression=self.cron_expression,
            timezone=self.timezone or "UTC",
            description=self.description or "",
            input=user_message_input(self.task_query),
            context=self.task_context or {},
            max_budget_per_run_usd=_decimal(self.max_budget_per_run_usd),
            timeout_seconds=self.timeout_seconds,
            overlap_policy=OverlapPolicy(self.overlap_policy or "skip"),
            webhook=self.webhook,
            max_attempts_per_call=self.max_attempts_per_call,
            initial_backoff_seconds=self.initial_backoff_seconds,
            pause_after_failures=self.pause_after_failures,
        )


class ScheduleUpdate(_ScheduleFields):
    """``PUT /api/v1/schedules/{id}``: every field optional; given ones follow create's rules.

    ``task_context`` replaces the context (``{}`` changes nothing); ``clear_task_context``
    empties it and wins over ``task_context``."""

    name: Annotated[RequiredText, Field(max_length=MAX_NAME_CHARS)] | None = None
    cron_expression: RequiredText | None = None
    task_query: Annotated[RequiredText, Field(max_length=MAX_QUERY_CHARS)] | None = None
    clear_task_context: Flag | None = None
    null_clears: ClassVar[frozenset[str]] = frozenset({"webhook"})  # null removes the webhook

    def changes(self) -> ScheduleChanges:
        changes: dict[str, Any] = {
            "name": self.name,
            "cron_expression": self.cron_expression,
            "description": self.description,
            "timezone": self.timezone,
            "max_budget_per_run_usd": _decimal(self.max_budget_per_run_usd),
            "timeout_seconds": self.timeout_seconds,
            "overlap_policy": None
            if self.overlap_policy is None
            else OverlapPolicy(self.overlap_policy),
            "max_attempts_per_call": self.max_attempts_per_call,
            "initial_backoff_seconds": self.initial_backoff_seconds,
            "pause_after_failures": self.pause_after_failures,
        }
        if self.task_query is not None:
            changes["input"] = user_message_input(self.task_query)
        if self.clear_task_context:
            changes["context"] = {}
        elif self.task_context:
            changes["context"] = self.task_context
        if "webhook" in self.model_fields_set:
            changes["webhook"] = self.webhook
        return ScheduleChanges(**changes)


class PauseRequest(_Body):
    """``POST …/pause`` and ``…/resume`` (optional body; a resume clears the reason)."""

    reason: Annotated[Text, Field(max_length=MAX_REASON_CHARS)] | None = None


def _count(value: int) -> int:
    if not 1 <= value <= MAX_PREVIEW:
        raise PydanticCustomError("worded", f"count must be between 1 and {MAX_PREVIEW}")
    return value


class PreviewRequest(_Body):
    """``POST /api/v1/schedules/preview`` (agentcron): the next fires of an expression, and
    its 30-day forecast at ``max_budget_per_run_usd`` (default: the deployment's default
    budget)."""

    cron_expression: RequiredText
    timezone: Timezone | None = None
    count: (
        Annotated[Seconds, AfterValidator(_count), documented(minimum=1, maximum=MAX_PREVIEW)]
        | None
    ) = 5
    max_budget_per_run_usd: Budget | None = None


class TriggerRequest(_Body):
    """``POST …/trigger`` (agentcron) takes no body; ``{}`` is accepted."""

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, data: Any) -> Any:
        if data != {}:
            raise PydanticCustomError("worded", BODY + ": this endpoint takes no body")
        return data


def _page(name: str, low: int, high: int, default: int) -> Any:
    def parse(value: Any) -> Any:
        if value is None or value == "":
            return default
        number = integer_param(value, low, high) if isinstance(value, str) else None
        if number is None:
            raise PydanticCustomError("worded", f"Invalid {name}")
        return number

    return BeforeValidator(parse)


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)


PageSize = Annotated[
    int,
    documented(minimum=-INT32, maximum=INT32, description="Clamped to 1..100."),
]


STATUS_PATTERN = (
    "^("
    + "|".join("".join(f"[{c}{c.lower()}]" for c in word) for word in ("ACTIVE", "PAUSED", "ALL"))
    + ")?$"
)


def _status_filter(value: Any) -> str:
    word = value.upper() if isinstance(value, str) else None
    if word not in ("", "ALL", "ACTIVE", "PAUSED"):
        raise PydanticCustomError("worded", "Invalid status filter")
    return word


class ScheduleListQuery(_Query):
    page: Annotated[int, _page("page", 1, INT32, 1), documented(minimum=1, maximum=INT32)] = 1
    page_size: Annotated[PageSize, _page("page_size", -INT32, INT32, 50)] = 50
    status: Annotated[
        str,
        BeforeValidator(_status_filter),
        documented(pattern=STATUS_PATTERN, description="ACTIVE, PAUSED or ALL, in any case."),
    ] = ""

    @property
    def size(self) -> int:
        return min(max(self.page_size, 1), MAX_PAGE_SIZE)


class RunListQuery(_Query):
    page: Annotated[int, _page("page", 1, INT32, 1), documented(minimum=1, maximum=INT32)] = 1
    page_size: Annotated[PageSize, _page("page_size", -INT32, INT32, 20)] = 20

    @property
    def size(self) -> int:
        return min(max(self.page_size, 1), MAX_PAGE_SIZE)


def _day(value: Any) -> Any:
    # YYYY-MM-DD only (``fromisoformat`` would also take ``2026-W01-1``).
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _day_param(name: str) -> Any:
    def parse(value: Any) -> Any:
        if value is None:
            return None
        day = _day(value)
        if day is None:
            raise PydanticCustomError("worded", f"Invalid {name}: expected YYYY-MM-DD (UTC)")
        return day

    return BeforeValidator(parse)


def _group_by(value: Any) -> str:
    if value is None:
        return "day"
    if value not in ("day", "schedule"):
        raise PydanticCustomError("worded", "Invalid group_by: expected day or schedule")
    return str(value)


class UsageQuery(_Query):
    """``GET /api/v1/usage`` (agentcron): UTC days ``from``..``to`` inclusive (default: the
    30 days up to today; ``days`` sets the length when ``from`` is absent)."""

    from_: Annotated[
        date | None,
        _day_param("from"),
        Field(alias="from"),
        documented(format="date", description="First UTC day (YYYY-MM-DD)."),
    ] = None
    to: Annotated[
        date | None,
        _day_param("to"),
        documented(format="date", description="Last UTC day (YYYY-MM-DD), default today."),
    ] = None
    days: Annotated[
        int | None,
        _page("days", 1, 366, 30),
        documented(minimum=1, maximum=366, description="Window length when from is absent."),
    ] = None
    group_by: Annotated[str, BeforeValidator(_group_by), documented(enum=["day", "schedule"])] = (
        "day"
    )


class PreviewQuery(_Query):
    count: Annotated[
        int, _page("count", 1, MAX_PREVIEW, 5), documented(minimum=1, maximum=MAX_PREVIEW)
    ] = 5


# --- errors -----------------------------------------------------------------------------------


_FIELD_ORDER = {name: i for i, name in enumerate(REQUIRED)}


def message(found: list[Problem]) -> str:
    """Shannon's words for the first problem: the body's shape, unknown keys, then the
    fields in Shannon's order (name, cron, query, the rest)."""
    shape = [p for p in found if p.type in ("model_type", "dict_type") and not p.loc]
    if shape:
        return f"{BODY}: expected a JSON object"
    unknown = [p.field for p in found if p.type == "extra_forbidden"]
    if unknown:
        names = ", ".join(quote(n, 40) for n in sorted(unknown)[:5])
        return f"{BODY}: unknown field(s): {names}" + ("…" if len(unknown) > 5 else "")
    first = sorted(found, key=lambda p: _FIELD_ORDER.get(p.field, len(_FIELD_ORDER)))[0]
    if first.type in ("missing", "required"):
        return REQUIRED.get(first.field, f"{BODY}: {first.path}: required")
    if first.type == "worded":
        return first.message.replace("{path}", first.path)
    if first.type == "string_too_long":
        return TOO_LONG.get(first.field, f"{BODY}: {first.path}: too long")
    if first.type == "string_pattern_mismatch":
        return REQUIRED.get(first.field, f"{BODY}: {first.path}: invalid")
    return f"{BODY}: {first.path}: {first.message}"


# --- responses --------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(defer_build=True)


UtcTime = Annotated[str, Field(description="RFC 3339, UTC (`Z`).")]
LocalTime = Annotated[str, Field(description="RFC 3339 in the schedule's timezone.")]


class ErrorBody(_Out):
    error: str


Warnings = Annotated[
    list[str] | None,
    Field(
        description="agentcron: present when the schedule's 30-day worst case (fires × "
        "per-run budget) exceeds one of the caller's monthly caps."
    ),
]


class ScheduleCreated(_Out):
    schedule_id: str
    id: str
    message: Literal["Schedule created successfully"]
    next_run_at: LocalTime | None
    webhook_secret: str | None = Field(
        description="agentcron: the key of this schedule's webhook signatures "
        "(HMAC-SHA256, X-Agentcron-Signature). Shown only here, once: store it."
    )
    warnings: Warnings = None


class FailurePolicy(_Out):
    """agentcron: retries of transient model errors, and the consecutive-failure pause."""

    max_attempts_per_call: int
    initial_backoff_seconds: float
    pause_after_failures: int

    @classmethod
    def of(cls, s: Schedule) -> FailurePolicy:
        return cls(
            max_attempts_per_call=s.max_attempts_per_call,
            initial_backoff_seconds=s.initial_backoff_seconds,
            pause_after_failures=s.pause_after_failures,
        )


class ScheduleOut(_Out):
    """A schedule: every key always present."""

    id: str
    schedule_id: str
    name: str
    description: str
    cron_expression: str
    timezone: str
    task_query: str
    task_context: dict[str, Any]
    max_budget_per_run_usd: float
    timeout_seconds: int
    status: Literal["ACTIVE", "PAUSED"]
    created_at: UtcTime
    updated_at: UtcTime
    next_run_at: LocalTime | None
    last_run_at: LocalTime | None
    total_runs: int
    successful_runs: int
    failed_runs: int
    paused_at: UtcTime | None
    pause_reason: str | None
    paused_by: Literal["user", "system"] | None
    user_id: str
    overlap_policy: Literal["skip", "allow"]
    webhook: str | None
    max_attempts_per_call: int
    initial_backoff_seconds: float
    pause_after_failures: int
    consecutive_failures: int = Field(
        description="agentcron: failed runs (FAILED, TIMEOUT) since the last COMPLETED one "
        "or the last resume."
    )
    truncated_fields: list[str] | None = Field(
        None, exclude_if=lambda v: v is None, description=TRUNCATED_DOC
    )

    @classmethod
    def of(cls, s: Schedule, next_run_at: datetime | None) -> ScheduleOut:
        return cls(
            id=s.id,
            schedule_id=s.id,
            name=s.name,
            description=s.description,
            cron_expression=s.cron_expression,
            timezone=s.timezone,
            task_query=s.query_text(),
            task_context=s.context,
            max_budget_per_run_usd=float(s.max_budget_per_run_usd),
            timeout_seconds=s.timeout_seconds,
            status=s.status.value,
            created_at=utc(s.created_at),
            updated_at=utc(s.updated_at),
            next_run_at=local(next_run_at, s.timezone),
            last_run_at=local(s.last_run_at, s.timezone),
            total_runs=s.total_runs,
            successful_runs=s.successful_runs,
            failed_runs=s.failed_runs,
            paused_at=utc_or_none(s.paused_at),
            pause_reason=s.pause_reason,
            paused_by=None if s.paused_by is None else s.paused_by.value,
            user_id=s.user_id,
            overlap_policy=s.overlap_policy.value,
            webhook=s.webhook,
            max_attempts_per_call=s.max_attempts_per_call,
            initial_backoff_seconds=s.initial_backoff_seconds,
            pause_after_failures=s.pause_after_failures,
            consecutive_failures=s.consecutive_failures,
        )


class ScheduleList(_Out):
    schedules: list[ScheduleOut]
    total: int
    total_count: int
    page: int
    page_size: int


class ScheduleUpdated(_Out):
    success: Literal[True]
    message: Literal["Schedule updated successfully"]
    next_run_at: LocalTime | None
    warnings: Warnings = None


class ScheduleDeleted(_Out):
    success: Literal[True]
    message: Literal["Schedule deleted successfully"]


class SchedulePaused(_Out):
    success: Literal[True]
    message: Literal["Schedule paused successfully"]
    paused_at: UtcTime | None


class ScheduleResumed(_Out):
    success: Literal[True]
    message: Literal["Schedule resumed successfully"]
    next_run_at: LocalTime | None


class FailedAttemptOut(_Out):
    """agentcron: one model-call attempt that failed."""

    at: UtcTime
    error: str
    message: str
    transient: bool
    retry_after: float | None = None

    @classmethod
    def of(cls, attempt: FailedAttempt) -> FailedAttemptOut:
        return cls(
            at=utc(attempt.at),
            error=attempt.error,
            message=attempt.message,
            transient=attempt.transient,
            retry_after=attempt.retry_after,
        )


class RunItem(_Out):
    """One run; the optional fields are omitted when empty (Shannon's documented rule)."""

    workflow_id: str
    query: str
    status: Literal[
        "PENDING", "RUNNING", "COMPLETED", "FAILED", "TIMEOUT", "BUDGET_EXCEEDED", "SKIPPED"
    ]
    result: str | None = None
    error_message: str | None = None
    model_used: str | None = None
    provider: str | None = None
    webhook_status: str | None = None
    total_tokens: int
    total_cost_usd: float
    duration_ms: int | None = None
    triggered_at: UtcTime
    started_at: UtcTime | None = None
    completed_at: UtcTime | None = None
    trigger: Literal["schedule", "manual"]
    attempts: int | None = Field(
        None, description="agentcron: model-call attempts, retries included (omitted when 0)."
    )
    failed_attempts: list[FailedAttemptOut] | None = Field(
        None,
        description="agentcron: the first 10 failed attempts (error class, time, message); "
        "failed_attempt_count counts them all.",
    )
    failed_attempt_count: int | None = None
    truncated_fields: list[str] | None = Field(None, description=TRUNCATED_DOC)

    @classmethod
    def of(cls, run: Run) -> dict[str, Any]:
        return cls(
            workflow_id=run.run_id,
            query=run.query,
            status=RUN_STATUS[run.status],
            result=run.result or None,
            error_message=run.error_message or None,
            model_used=run.model_used or None,
            provider=run.provider or None,
            webhook_status=run.webhook_status or None,
            total_tokens=run.usage.total_tokens,
            total_cost_usd=float(run.usage.cost_usd),
            duration_ms=run.duration_ms,
            triggered_at=utc(run.scheduled_time),
            started_at=utc_or_none(run.started_at),
            completed_at=utc_or_none(run.completed_at),
            trigger=run.trigger.value,
            attempts=run.call_attempts or None,
            failed_attempts=[FailedAttemptOut.of(a) for a in run.failed_attempts] or None,
            failed_attempt_count=run.failed_attempt_count or None,
        ).model_dump(mode="json", exclude_none=True)


class RunList(_Out):
    runs: list[RunItem]
    total_count: int
    total: int
    page: int
    page_size: int


class Forecast30d(_Out):
    """agentcron: the next 30 days (from now, to ``end_time`` at most) of a schedule."""

    fires: int = Field(description="Fires in the next 30 days, DST-correct.")
    max_cost_usd: float = Field(description="Worst case: fires × per-run budget.")
    expected_cost_usd: float | None = Field(
        description="Fires × the mean cost of the schedule's recent runs; null without history."
    )


class Preview(_Out):
    """agentcron: the next fires of an expression (or of a stored schedule)."""

    schedule_id: str | None = None
    cron_expression: str
    timezone: str
    description: str
    next_run_times: list[str]
    eventbridge_expressions: list[str]
    min_interval_minutes: float
    failure_policy: FailurePolicy = Field(
        description="agentcron: the stored schedule's, or the deployment's defaults."
    )
    forecast_30d: Forecast30d


class UsageTotals(_Out):
    cost_usd: float
    input_tokens: int
    output_tokens: int
    total_tokens: int
    runs: dict[str, int] = Field(description="Runs by status (COMPLETED, FAILED, SKIPPED …).")


class DailyCost(_Out):
    date: str
    cost_usd: float


class UsageGroupOut(UsageTotals):
    date: str | None = Field(default=None, description="group_by=day: the UTC day.")
    schedule_id: str | None = Field(default=None, description="group_by=schedule.")
    month_to_date_usd: float | None = Field(default=None, description="group_by=schedule.")
    daily: list[DailyCost] | None = Field(default=None, description="group_by=schedule.")


class CapOut(_Out):
    scope: Literal["user", "tenant"]
    monthly_usd: float
    used_usd: float = Field(description="Spent this UTC month plus held by calls in flight.")
    remaining_usd: float
    exhausted: bool = Field(description="True: this month's later fires are skipped.")


class Usage(_Out):
    """agentcron: the caller's own spend (``GET /api/v1/usage``)."""

    from_: str = Field(alias="from")
    to: str
    group_by: Literal["day", "schedule"]
    month: str = Field(description="The current UTC month (YYYY-MM).")
    month_to_date_usd: float
    total: UsageTotals
    groups: list[UsageGroupOut]
    caps: list[CapOut]


class RunStarted(_Out):
    success: Literal[True]
    message: Literal["Run started"]
    workflow_id: str
    run_id: str
    schedule_id: str


def abridged(item: dict[str, Any], max_bytes: int, fields: tuple[str, ...]) -> dict[str, Any]:
    """``item`` within ``max_bytes`` (:func:`~chalicelib.api.http.payload_bytes`): its
    ``fields`` clipped, largest first, until it fits; ``truncated_fields`` names them."""
    out = dict(item)
    cut: list[str] = []
    flag = payload_bytes({"truncated_fields": list(fields)})
    present = [f for f in fields if out.get(f)]
    for name in sorted(present, key=lambda f: payload_bytes(out[f]), reverse=True):
        excess = payload_bytes(out) + flag - max_bytes
        if excess <= 0:
            break
        out[name] = _shrunk(out[name], payload_bytes(out[name]) - excess)
        cut.append(name)
    out["truncated_fields"] = cut
    return out


def _shrunk(value: Any, max_bytes: int) -> Any:
    """``value`` clipped to ``max_bytes`` of payload; at least the marker stays (a text
    field never silently becomes empty), an object becomes ``{}``."""
    if not isinstance(value, str):
        return {}
    # Stored bytes never exceed payload bytes: start there, then scale by the text's own
    # escape ratio (one step for uniform text) until it fits.
    budget = max_bytes
    while budget > 0:
        clipped = clip_text(value, budget) or ""
        size = payload_bytes(clipped)
        if size <= max_bytes:
            return clipped
        budget = min(budget - 1, budget * max_bytes // size)
    return clip_text(value, 0)


# --- scalars ----------------------------------------------------------------------------------


def utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_or_none(value: datetime | None) -> str | None:
    return None if value is None else utc(value)


def local(value: datetime | None, tz: str) -> str | None:
    if value is None:
        return None
    from chalicelib.domain.cron import load_timezone

    return value.astimezone(load_timezone(tz)).isoformat(timespec="seconds")


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))
