"""The domain model: one Schedule, Run and Thread shape behind both façades.

A Shannon schedule is a stateless cron of the default agent whose input is the
user message ``task_query`` and whose context is ``task_context``; a LangGraph
cron maps its fields one to one. Each façade converts explicitly between its
wire models and these; nothing here knows about HTTP or DynamoDB.

Money is :class:`~decimal.Decimal` (budgets are compared exactly), timestamps
are timezone-aware UTC ``datetime`` objects.

**Size budgets**: every item agentcron stores fits DynamoDB's 400 KB, whatever a client
sends (the constants and checks at the end of this module).

DynamoDB refuses an item over 400 KB (attribute names plus values, UTF-8). The item
that matters most is written by the trigger's *finish* transaction — the run's
terminal record, the schedule's counters and the thread's new state — and a refused
finish loses the run's outcome and cost. So every part of every item has a budget,
measured as stored (compact JSON, UTF-8, escapes included), and the parts add up to
well under the limit:

========  ===================================================  ==================  ========
item      part                                                 enforced            budget
========  ===================================================  ==================  ========
schedule  input, task_context/context, config, extras          4xx at write        64 KiB each
          metadata                                             4xx at write        16 KiB
          name 255 chars, description 4096 chars, webhook      4xx at write        < 40 KiB
          the whole client-editable spec (sum of the above)                        < 320 KiB
run       input (the schedule's, already ≤ 64 KiB)             at the schedule     64 KiB
          query (the input's user message)                     truncated           32 KiB
          metadata (the schedule's + ids)                      at the schedule     17 KiB
          result (the agent's answer)                          truncated           32 KiB
          error message                                        truncated           8 KiB
          failed attempts (first 10, messages 256 bytes each)  capped              < 4 KiB
          webhook status                                       truncated           1 KiB
thread    metadata                                             4xx at write        64 KiB
          values (agent state)                                 trimmed at finish   300 KiB
========  ===================================================  ==================  ========

A run item is therefore at most ~160 KiB and a thread item ~370 KiB (each plus < 2 KiB
of keys and fixed fields). Truncated text ends with a marker naming its original
size; the full text is not kept anywhere (a kept or thread-bound run's thread holds
the conversation within its own budget). Thread state is trimmed the way a
conversation tolerates best: each message's text is first clipped to
:data:`MAX_MESSAGE_BYTES`, then the oldest messages are dropped; a state still too
large without its messages (not a chat state) is replaced by a marker rather than
failing the finish.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.enums import (
    OnRunCompleted,
    OverlapPolicy,
    PausedBy,
    RunStatus,
    RunTrigger,
    ScheduleOrigin,
    ScheduleStatus,
    ThreadStatus,
)
from chalicelib.domain.errors import InvalidRequestError

JSONObject = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


class SystemClock:
    """The real clock (the :class:`~chalicelib.domain.ports.Clock` port's production side)."""

    def now(self) -> datetime:
        return utcnow()


def new_id() -> str:
    """A time-ordered UUID (version 7) as LangGraph mints: sorting ids sorts by creation."""
    return str(uuid7())


def uuid7(at: datetime | None = None) -> uuid.UUID:
    """RFC 9562 UUIDv7: 48-bit Unix milliseconds, then random bits."""
    ms = int((at or utcnow()).timestamp() * 1000)
    rand = int.from_bytes(uuid.uuid4().bytes[6:], "big")  # 80 random bits
    value = (ms & ((1 << 48) - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


class Principal(BaseModel):
    """Who is calling: every key condition is scoped to (tenant, user)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    tenant_id: str
    user_id: str


class RunningMarker(BaseModel):
    """The schedule's in-flight run, used by the overlap policy."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    until: datetime
    """After this instant the marker is stale (the run's deadline plus a grace period)."""


DEFAULT_MAX_ATTEMPTS_PER_CALL = 3
DEFAULT_INITIAL_BACKOFF_SECONDS = 1.0
DEFAULT_PAUSE_AFTER_FAILURES = 5
"""The failure policy of a schedule stored before it had one (new schedules take the
deployment's settings, which default to these)."""
MAX_ATTEMPTS_PER_CALL = 10
MAX_INITIAL_BACKOFF_SECONDS = 60.0
MIN_INITIAL_BACKOFF_SECONDS = 0.1
MAX_PAUSE_AFTER_FAILURES = 1000


class Schedule(BaseModel):
    """One recurring agent run, whichever façade created it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    tenant_id: str
    user_id: str
    origin: ScheduleOrigin = ScheduleOrigin.SHANNON
    name: str
    description: str = ""
    cron_expression: str
    timezone: str = "UTC"
    graph_id: str
    """The registered agent (LangGraph's graph) the run uses."""
    assistant_id: str
    """The assistant UUID (the graph's system assistant unless stated otherwise)."""
    input: JSONObject | list[Any] | None = None
    config: JSONObject = Field(default_factory=dict)
    context: JSONObject = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)
    extras: JSONObject = Field(default_factory=dict)
    """Façade-owned pass-through data (e.g. LangGraph's create payload keys)."""
    thread_id: str | None = None
    """None: stateless (a new thread per run). Otherwise runs append to this thread."""
    on_run_completed: OnRunCompleted | None = OnRunCompleted.DELETE
    end_time: datetime | None = None
    max_budget_per_run_usd: Decimal
    timeout_seconds: int
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    webhook: str | None = None
    webhook_secret: str | None = Field(default=None, repr=False)
    """The key webhook deliveries are signed with (HMAC-SHA256); shown once, at creation
    (kept out of the model's repr, so no log or traceback of a schedule prints it)."""
    max_attempts_per_call: int = DEFAULT_MAX_ATTEMPTS_PER_CALL
    """Attempts of one model call the provider refused transiently (1 = no retry)."""
    initial_backoff_seconds: float = DEFAULT_INITIAL_BACKOFF_SECONDS
    """The first retry's backoff; each further retry doubles it (plus jitter)."""
    pause_after_failures: int = DEFAULT_PAUSE_AFTER_FAILURES
    """Consecutive failed runs after which the system pauses the schedule (0 = never)."""
    consecutive_failures: int = 0
    """Failed runs (error, timeout) since the last successful one, or the last resume."""
    status: ScheduleStatus = ScheduleStatus.ACTIVE
    paused_at: datetime | None = None
    pause_reason: str | None = None
    paused_by: PausedBy | None = None
    total_runs: int = 0
    successful_runs: int = 0
    failed_runs: int = 0
    history_count: int = 0
    """Every run record, skipped ones included (the Shannon ``total_count`` of /runs)."""
    last_run_at: datetime | None = None
    """The scheduled fire time of the latest run."""
    eventbridge_expressions: list[str] = Field(default_factory=list)
    eventbridge_names: list[str] = Field(default_factory=list)
    running: RunningMarker | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 1

    @property
    def is_stateless(self) -> bool:
        return self.thread_id is None

    def ended(self, now: datetime) -> bool:
        return self.end_time is not None and self.end_time <= now

    def query_text(self) -> str:
        """The user message the agent receives, as Shannon's ``task_query`` shows it."""
        return query_text_of(self.input)


def query_text_of(value: JSONObject | list[Any] | None) -> str:
    """Extract the last user message from a LangGraph-style input (or a Shannon query)."""
    if value is None:
        return ""
    messages: Any = value.get("messages") if isinstance(value, dict) else None
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") in ("user", "human"):
                content = message.get("content")
                if isinstance(content, str):
                    return content
    if isinstance(value, dict) and isinstance(value.get("query"), str):
        return str(value["query"])
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def user_message_input(text: str) -> JSONObject:
    """The LangGraph-style input for a plain user message (how Shannon queries are stored)."""
    return {"messages": [{"role": "user", "content": text}]}


class Usage(BaseModel):
    """Tokens and money a run (or one model call) consumed."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


MAX_RECORDED_FAILED_ATTEMPTS = 10
"""A run's history keeps its first failed model-call attempts, and counts them all."""


class FailedAttempt(BaseModel):
    """One model-call attempt that failed (retried or not)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    at: datetime
    error: str
    """The error's class (``ProviderError``, ``TimeoutError`` …)."""
    message: str = ""
    """Its message, clipped to 256 bytes."""
    transient: bool = False
    billed: bool = True
    retry_after: float | None = None


class Run(BaseModel):
    """One fire of a schedule (or a manual run), from claim to terminal state."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    schedule_id: str
    tenant_id: str
    user_id: str
    trigger: RunTrigger = RunTrigger.SCHEDULE
    scheduled_time: datetime
    """The fire time EventBridge intended (Shannon's ``triggered_at``); request time if manual."""
    status: RunStatus
    thread_id: str | None = None
    graph_id: str | None = None
    assistant_id: str | None = None
    query: str = ""
    input: JSONObject | list[Any] | None = None
    metadata: JSONObject = Field(default_factory=dict)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: str | None = None
    error_message: str | None = None
    model_used: str | None = None
    provider: str | None = None
    usage: Usage = Field(default_factory=Usage)
    attempt: int = 1
    """EventBridge Scheduler's delivery attempt (not a model call's)."""
    call_attempts: int = 0
    """Model-call attempts the run made, retries included."""
    failed_attempt_count: int = 0
    failed_attempts: list[FailedAttempt] = Field(default_factory=list)
    """The first :data:`MAX_RECORDED_FAILED_ATTEMPTS` failed attempts."""
    webhook_status: str | None = None
    """How the webhook delivery went (``delivered (HTTP 204)``, ``failed: …``,
    ``refused: …``); None without a webhook, or before the delivery."""
    stuck_after: datetime | None = None
    """While ``running``: past this instant the run is stuck — its trigger died without
    finishing it — and the reconciler ends it. A few heartbeat intervals after the claim
    or the last heartbeat, never later than deadline + grace (see ``services.runs``)."""
    heartbeat_at: datetime | None = None
    """The trigger's last sign of life while ``running`` (None before the first heartbeat:
    runs shorter than one interval never write one)."""
    created_at: datetime
    updated_at: datetime

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return int((self.completed_at - self.started_at).total_seconds() * 1000)


class Thread(BaseModel):
    """A conversation: the agent state that thread-bound runs accumulate."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    thread_id: str
    tenant_id: str
    user_id: str
    metadata: JSONObject = Field(default_factory=dict)
    values: JSONObject | None = None
    status: ThreadStatus = ThreadStatus.IDLE
    config: JSONObject = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime | None = None
    expires_at: datetime | None = None
    version: int = 1


class ApiKey(BaseModel):
    """An API key as stored: only its SHA-256 digest, never the key."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    key_hash: str
    key_id: str
    """A short public prefix of the hash, to name the key in listings and revocation."""
    tenant_id: str
    user_id: str
    created_at: datetime
    revoked_at: datetime | None = None
    description: str = ""


# --- size budgets (see the module docstring) ---------------------------------------------

KIB = 1024
ITEM_LIMIT_BYTES = 400_000
"""DynamoDB's item limit, rounded down (AWS documents 400 KB)."""

# --- schedules (4xx at write time) ---------------------------------------------------------
MAX_NAME_CHARS = 255
MAX_DESCRIPTION_CHARS = 4096
MAX_QUERY_BYTES = 32 * KIB
MAX_BLOB_BYTES = 64 * KIB
MAX_METADATA_BYTES = 16 * KIB
MAX_WEBHOOK_CHARS = 2048
MAX_SCHEDULE_SPEC_BYTES = 320 * KIB
"""What the parts above add up to at most (checked by a test, not at run time)."""

# --- runs (truncated when recorded) --------------------------------------------------------
MAX_RESULT_BYTES = 32 * KIB
MAX_ERROR_BYTES = 8 * KIB
MAX_RUN_QUERY_BYTES = MAX_QUERY_BYTES
MAX_WEBHOOK_STATUS_BYTES = 1 * KIB

# --- threads -------------------------------------------------------------------------------
MAX_THREAD_METADATA_BYTES = 64 * KIB
MAX_THREAD_STATE_BYTES = 300 * KIB
MAX_MESSAGE_BYTES = 64 * KIB

TRUNCATED_STATE_KEY = "__truncated__"


def json_size(value: object) -> int:
    """Bytes of ``value`` as stored: compact JSON, UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def check_size(name: str, value: object, cap: int) -> None:
    """A clear 4xx for a client value over its budget."""
    if json_size(value) > cap:
        raise InvalidRequestError(f"{name} too large: max {cap // KIB} KiB", field=name)


def check_thread_metadata(metadata: object) -> None:
    check_size("metadata", metadata, MAX_THREAD_METADATA_BYTES)


def clip_text(text: str | None, max_bytes: int) -> str | None:
    """``text`` if it fits in ``max_bytes`` as stored, else its head and a marker.

    The marker names the original size in bytes, so a reader knows what is missing.
    """
    if text is None or json_size(text) <= max_bytes:
        return text
    total = len(text.encode())
    marker = f"… [truncated: {total} bytes]"
    budget = max_bytes - json_size(marker)
    # Escapes can make a character cost up to 6 bytes: shrink until the JSON fits.
    keep = min(len(text), max(budget, 0))
    while keep > 0 and json_size(text[:keep]) > budget:
        keep -= max(1, (json_size(text[:keep]) - budget) // 6)
    return text[: max(keep, 0)] + marker


def bounded_state(values: dict[str, Any]) -> dict[str, Any]:
    """Keep a thread's state within :data:`MAX_THREAD_STATE_BYTES` (see the module docstring)."""
    if json_size(values) <= MAX_THREAD_STATE_BYTES:
        return values
    messages = values.get("messages")
    if isinstance(messages, list):
        kept = [_clip_message(m) for m in messages]
        rest = json_size({**values, "messages": []})
        sizes = [json_size(m) + 1 for m in kept]
        total = rest + sum(sizes)
        start = 0
        while start < len(kept) and total > MAX_THREAD_STATE_BYTES:
            total -= sizes[start]
            start += 1
        trimmed = {**values, "messages": kept[start:]}
        if json_size(trimmed) <= MAX_THREAD_STATE_BYTES:
            return trimmed
    return {TRUNCATED_STATE_KEY: f"thread state exceeded {MAX_THREAD_STATE_BYTES // KIB} KiB"}


def _clip_message(message: Any) -> Any:
    if json_size(message) <= MAX_MESSAGE_BYTES:
        return message
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        rest = json_size({**message, "content": ""})
        return {**message, "content": clip_text(message["content"], MAX_MESSAGE_BYTES - rest)}
    return {"role": "system", "content": f"[message of {json_size(message)} bytes dropped]"}
