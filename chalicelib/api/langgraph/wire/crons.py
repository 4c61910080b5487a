"""Crons: request and response models, and the mapping to and from the domain ``Schedule``.

**A cron is a Schedule** (origin ``langgraph``); there is no second record.

=====================  ==========================================================================
LangGraph field        domain ``Schedule``
=====================  ==========================================================================
``cron_id``            ``id`` (minted before the write, so ``config`` can carry it)
``assistant_id``       ``assistant_id`` (a graph name resolves to its system assistant UUID) and
                       ``graph_id``; the service names it ``cron <graph_id>``
``thread_id``          ``thread_id`` (None: stateless, a new thread per fire)
``schedule``           ``cron_expression``, validated by the one cron engine
``timezone``           ``timezone``; absent/null is stored as ``UTC`` and echoed as null
``end_time``           ``end_time`` (the Scheduler's ``EndDate``; the trigger checks it too)
``input``/``context``  ``input`` / ``context``
``config``             ``config``, with ``configurable.cron_id`` injected
``metadata``           ``metadata``, reserved keys stripped
``webhook``            ``webhook`` (https only, as for every schedule)
``enabled``            ``status``: ACTIVE / PAUSED (``enabled: false`` creates it paused)
``on_run_completed``   ``on_run_completed``: stateless default ``delete``; null for thread crons
``multitask_...``      ``overlap_policy`` (below)
(agentcron)            ``max_budget_per_run_usd``, ``timeout_seconds``: optional body fields;
                       absent means the deployment defaults (``SCHEDULE_DEFAULT_BUDGET_USD``
                       capped by ``SCHEDULE_MAX_BUDGET_USD``, ``SCHEDULE_DEFAULT_TIMEOUT_SECONDS``)
(agentcron)            ``max_attempts_per_call``, ``initial_backoff_seconds``,
                       ``pause_after_failures``: the failure policy, optional, same rules;
                       shown in ``payload`` like the budget
(agentcron)            ``webhook_secret``: only in the create response, once
=====================  ==========================================================================

**``payload``** is rebuilt on every read from the record, not stored as a copy: the
record is the only truth, so an edit through the Shannon façade (new cron, new
context) shows up in ``payload`` too, and nothing is stored twice (inputs can be
64 KB). ``Schedule.extras["langgraph"]`` keeps only what the domain cannot hold:
the order of the keys the client sent (``payload_keys``) and the verbatim values
of pass-through keys (``payload_extra``: ``stream_mode``, ``durability``,
``interrupt_*``, ``checkpoint_during``, unknown keys, the ``multitask_strategy``
word, a thread cron's ``on_run_completed``). A Shannon schedule therefore reads as
a stateless cron of the default assistant whose payload holds its live fields.

**``multitask_strategy`` → overlap policy.** agentcron never cancels a running
agent and cannot queue a fire, so: ``reject``, ``interrupt`` and ``rollback`` map to
``skip`` (the fire is recorded as a skipped run); ``enqueue`` maps to ``allow`` for
a *stateless* cron — each fire has its own thread, so concurrent runs are exactly
LangGraph's behaviour — and to ``skip`` for a *thread* cron, whose concurrent runs
would race on the thread's state. Absent means ``skip`` (the domain's default;
LangGraph's default ``enqueue`` would let a slow agent pile up runs). The word sent
is echoed in ``payload``.

**``enabled``** on PATCH is a pause or resume, done by ``ScheduleService.update`` in
the same call (``ScheduleChanges.enabled``); the view only passes it on.

**Deviations from the reference server** (its defects are not copied): missing
``schedule``/``assistant_id`` is a 422 naming the field; graph names work in search and
count; ``end_time`` must be an ISO 8601 date-time with an offset and in the future
(EventBridge refuses a past ``EndDate``); 6/7-field schedules, schedules EventBridge
cannot run and schedules firing more often than ``SCHEDULE_MIN_INTERVAL_MINS`` are 422
with a specific reason; ``payload.metadata`` is the cron's metadata (the reference
leaves the last PATCH's metadata there while merging ``metadata``).

**Schema** (the OpenAPI document): the ``Cron`` object carries every key the SDK's
``Cron`` TypedDict has, with the official server's names and types; ``thread_id`` and
``end_time`` are nullable (stateless crons, no end), as the reference server returns
them, where the official schema marks them non-null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator, Field, WrapValidator, model_validator
from pydantic_core import PydanticCustomError

from chalicelib.api.http import checked_json, has_surrogate, quote
from chalicelib.api.langgraph.common import canonical_uuid, invalid
from chalicelib.api.langgraph.wire import (
    SORT_ORDERS,
    Body,
    Flag,
    Id,
    Integer,
    JSONObject,
    Limit,
    Number,
    Offset,
    Out,
    Text,
    ThreadRef,
    Timestamp,
    choice,
    iso,
    project,
    selection,
    sized,
    sized_page,
    sort_nulls_like_postgres,
)
from chalicelib.domain.enums import OnRunCompleted, OverlapPolicy, ScheduleOrigin, ScheduleStatus
from chalicelib.domain.models import (
    MAX_ATTEMPTS_PER_CALL,
    MAX_INITIAL_BACKOFF_SECONDS,
    MAX_PAUSE_AFTER_FAILURES,
    MAX_WEBHOOK_CHARS,
    MIN_INITIAL_BACKOFF_SECONDS,
    Schedule,
)
from chalicelib.services.schedules import ScheduleChanges, ScheduleDraft
from chalicelib.services.threads import json_contains

ON_RUN_COMPLETED: Final = ("delete", "keep")
MULTITASK_STRATEGIES: Final = ("reject", "interrupt", "rollback", "enqueue")
STREAM_MODES: Final = (
    "values",
    "messages",
    "messages-tuple",
    "tasks",
    "checkpoints",
    "updates",
    "events",
    "debug",
    "custom",
    "tools",
    "lifecycle",
)
DURABILITIES: Final = ("sync", "async", "exit")
CRON_KEYS: Final = (
    "cron_id",
    "assistant_id",
    "thread_id",
    "user_id",
    "end_time",
    "schedule",
    "timezone",
    "payload",
    "next_run_date",
    "metadata",
    "on_run_completed",
    "enabled",
    "created_at",
    "updated_at",
)
CRON_SORT_BY: Final = (
    "cron_id",
    "assistant_id",
    "thread_id",
    "next_run_date",
    "end_time",
    "created_at",
    "updated_at",
)
RESERVED_METADATA: Final = frozenset(
    {"thread_id", "assistant_id", "run_id", "cron_id", "counters_since_delta_snapshot"}
)
# Keys the server sets on every run; a client value could impersonate another run or user.
SERVER_OWNED_CONFIG_KEYS: Final = frozenset(
    {
        "cron_id",
        "run_id",
        "thread_id",
        "assistant_id",
        "graph_id",
        "user_id",
        "checkpoint_id",
        "checkpoint_ns",
        "checkpoint_map",
    }
)
SERVER_OWNED_CONFIG_PREFIXES: Final = ("langgraph_auth_user", "__")
# Identity keys in a cron body: never stored in the payload, never change the record.
IDENTITY_KEYS: Final = frozenset({"cron_id", "user_id", "thread_id"})
# Payload keys the domain record holds; every other key is kept verbatim in extras.
MAPPED_KEYS: Final = frozenset(
    {
        "schedule",
        "assistant_id",
        "input",
        "config",
        "context",
        "metadata",
        "webhook",
        "end_time",
        "timezone",
        "on_run_completed",
        "enabled",
        "multitask_strategy",
        "max_budget_per_run_usd",
        "timeout_seconds",
        "max_attempts_per_call",
        "initial_backoff_seconds",
        "pause_after_failures",
    }
)
_ALWAYS_IN_PAYLOAD: Final = ("schedule", "assistant_id", "config")
_WHEN_SET_IN_PAYLOAD: Final = ("input", "context", "metadata", "webhook", "end_time", "timezone")
EXTRAS_KEY: Final = "langgraph"


# --- field types ------------------------------------------------------------------------------


def _end_time(raw: Any) -> datetime:
    """An ISO 8601 date-time *with* a UTC offset, inside years 1–9999 once in UTC.

    A naive value is refused rather than guessed: the SDK sends a naive ``datetime``
    verbatim, and reading it as UTC would silently shift the user's end."""
    shown = quote(raw)
    detail = f"Invalid end_time: '{shown}'. Use an ISO 8601 date-time."
    # A date alone ("2026-02-01", "20260201") is not a date-time.
    if not isinstance(raw, str) or len(raw.strip()) <= 10:
        raise PydanticCustomError("worded", detail)
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise PydanticCustomError("worded", detail) from None
    if value.tzinfo is None:
        raise PydanticCustomError(
            "worded",
            f"Invalid end_time: '{shown}'. Include a UTC offset, e.g. '2026-12-31T23:00:00+00:00'.",
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
        raise PydanticCustomError("worded", detail) from None


EndTime = Annotated[
    datetime, BeforeValidator(_end_time), Field(json_schema_extra={"format": "date-time"})
]


def _input(value: Any) -> Any:
    if isinstance(value, dict) or (
        isinstance(value, list) and all(isinstance(v, dict) for v in value)
    ):
        return value
    raise PydanticCustomError("worded", "{path}: must be an object or an array of objects")


RunInput = Annotated[
    dict[str, Any] | list[dict[str, Any]],
    BeforeValidator(_input),
    AfterValidator(checked_json("{path}: {problem}")),
]


def _nodes(value: Any) -> Any:
    if value == "*" or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise PydanticCustomError("worded", "{path}: must be '*' or a list of node names")


Nodes = Annotated[str | list[str], BeforeValidator(_nodes)]


def _stream_mode(value: Any) -> Any:
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, str) or item not in STREAM_MODES:
            raise PydanticCustomError(
                "worded", "{path}: " + f"{quote(repr(item))} is not a stream mode"
            )
    return value


StreamMode = Annotated[
    str | list[str],
    BeforeValidator(_stream_mode),
    Field(json_schema_extra={"anyOf": [{"enum": list(STREAM_MODES)}, {"type": "array"}]}),
]


def _config(value: Any, handler: Any) -> Any:
    if not isinstance(value, dict):
        raise PydanticCustomError("worded", "{path}: must be an object")
    return handler(value)


class Config(Body):
    """``config``: ``tags``, ``recursion_limit`` and ``configurable`` typed, the rest kept."""

    model_config = Body.model_config | {"extra": "allow"}

    tags: Annotated[list[Text], BeforeValidator(lambda v: _strings(v))] | None = None
    recursion_limit: Integer | None = None
    configurable: JSONObject | None = None


def _strings(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise PydanticCustomError("worded", "{path}: must be a list of strings")


ConfigObject = Annotated[Config, WrapValidator(_config)]


def _between(name: str, low: float, high: float) -> Any:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise PydanticCustomError("worded", f"{name}: must be between {low:g} and {high:g}")
        return value

    return AfterValidator(check)


Attempts = Annotated[
    Integer,
    _between("max_attempts_per_call", 1, MAX_ATTEMPTS_PER_CALL),
    Field(json_schema_extra={"minimum": 1, "maximum": MAX_ATTEMPTS_PER_CALL}),
]
Backoff = Annotated[
    Number,
    _between("initial_backoff_seconds", MIN_INITIAL_BACKOFF_SECONDS, MAX_INITIAL_BACKOFF_SECONDS),
    Field(
        json_schema_extra={
            "minimum": MIN_INITIAL_BACKOFF_SECONDS,
            "maximum": MAX_INITIAL_BACKOFF_SECONDS,
        }
    ),
]
Failures = Annotated[
    Integer,
    _between("pause_after_failures", 0, MAX_PAUSE_AFTER_FAILURES),
    Field(json_schema_extra={"minimum": 0, "maximum": MAX_PAUSE_AFTER_FAILURES}),
]


# --- requests ---------------------------------------------------------------------------------


class _CronFields(Body):
    model_config = Body.model_config | {"extra": "allow"}

    timezone: Text | None = Field(None, description="IANA name; null means UTC.")
    input: RunInput | None = None
    config: ConfigObject | None = None
    context: JSONObject | None = None
    metadata: JSONObject | None = None
    webhook: sized(1, MAX_WEBHOOK_CHARS) | None = None  # type: ignore[valid-type]
    end_time: EndTime | None = None
    on_run_completed: choice(*ON_RUN_COMPLETED) | None = None  # type: ignore[valid-type]
    multitask_strategy: choice(*MULTITASK_STRATEGIES) | None = None  # type: ignore[valid-type]
    enabled: Flag | None = None
    max_budget_per_run_usd: Number | None = Field(
        None, description="agentcron: USD per run (default: the deployment's)."
    )
    timeout_seconds: Integer | None = Field(
        None, description="agentcron: seconds per run (default: the deployment's)."
    )
    max_attempts_per_call: Attempts | None = Field(
        None,
        description="agentcron: attempts of a model call refused transiently (429, 5xx, "
        "throttling); 1 = no retry (default: the deployment's, 3).",
    )
    initial_backoff_seconds: Backoff | None = Field(
        None,
        description="agentcron: the first retry's backoff in seconds, doubled per retry "
        "(default: the deployment's, 1).",
    )
    pause_after_failures: Failures | None = Field(
        None,
        description="agentcron: failed runs in a row after which the system pauses the "
        "cron; 0 = never (default: the deployment's, 5).",
    )
    interrupt_before: Nodes | None = None
    interrupt_after: Nodes | None = None
    stream_mode: StreamMode | None = None
    stream_subgraphs: Flag | None = None
    stream_resumable: Flag | None = None
    checkpoint_during: Flag | None = None
    durability: choice(*DURABILITIES) | None = None  # type: ignore[valid-type]

    def payload_keys(self, sent: Iterable[str]) -> list[str]:
        return [k for k in sent if k not in IDENTITY_KEYS]


class CronCreate(_CronFields):
    """``POST /runs/crons``: a stateless cron (a new thread per fire)."""

    assistant_id: Text = Field(description="An assistant UUID or a graph name.")
    schedule: Text = Field(description="5-field cron (croniter syntax) or a macro.")
    _sent: list[str]

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler: Any) -> Any:
        # ``null`` is "not sent" (the SDK drops None keys itself); the order of the keys
        # sent is the payload's.
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if v is not None}
        model = handler(data)
        model._sent = list(data) if isinstance(data, dict) else []
        return model

    @model_validator(mode="after")
    def _assistant(self) -> CronCreate:
        if not self.assistant_id.strip():
            raise PydanticCustomError("worded", "assistant_id: must not be empty")
        return self

    def draft(self, *, cron_id: str, thread_id: str | None) -> ScheduleDraft:
        """The new schedule; the service resolves ``assistant_id`` (a UUID or graph name)
        and names the schedule after the agent."""
        thread_bound = thread_id is not None
        keys = self.payload_keys(self._sent)
        extra = {k: getattr(self, k, None) for k in keys if k not in MAPPED_KEYS}
        extra.update({k: v for k, v in (self.model_extra or {}).items() if k in keys})
        extra = {k: _plain(v) for k, v in extra.items() if v is not None}
        if self.multitask_strategy is not None:
            extra["multitask_strategy"] = self.multitask_strategy
        if thread_bound and self.on_run_completed is not None:
            # Accepted and echoed, never acted on: a user's own thread is never deleted.
            extra["on_run_completed"] = self.on_run_completed
        return ScheduleDraft(
            name="",
            cron_expression=self.schedule,
            timezone=self.timezone or "UTC",
            assistant=self.assistant_id,
            input=self.input,
            config=with_cron_id(_plain(self.config), cron_id),
            context=strip_server_owned(self.context or {}),
            metadata=strip_metadata(self.metadata or {}),
            extras={EXTRAS_KEY: {"payload_keys": keys, "payload_extra": extra}},
            thread_id=thread_id,
            on_run_completed=(
                None if thread_bound else OnRunCompleted(self.on_run_completed or "delete")
            ),
            end_time=self.end_time,
            max_budget_per_run_usd=_decimal(self.max_budget_per_run_usd),
            timeout_seconds=self.timeout_seconds,
            max_attempts_per_call=self.max_attempts_per_call,
            initial_backoff_seconds=self.initial_backoff_seconds,
            pause_after_failures=self.pause_after_failures,
            overlap_policy=overlap_for(self.multitask_strategy, thread_bound=thread_bound),
            webhook=self.webhook,
            enabled=self.enabled is not False,
            origin=ScheduleOrigin.LANGGRAPH,
            schedule_id=cron_id,
        )


class ThreadCronCreate(CronCreate):
    """``POST /threads/{thread_id}/runs/crons``: every fire appends a run to the thread.
    ``on_run_completed`` is accepted and echoed, never acted on."""


class CronPatch(_CronFields):
    """``PATCH /runs/crons/{cron_id}``: ``metadata`` merges key by key, every other key
    replaces its value (``null`` clears ``timezone``, ``end_time`` and ``webhook``).
    ``assistant_id``, ``thread_id``, ``cron_id`` and ``user_id`` are ignored."""

    schedule: Text | None = None
    end_time: EndTime | None = Field(None, description="null clears it.")
    _sent: dict[str, Any]

    @model_validator(mode="wrap")
    @classmethod
    def _not_empty(cls, data: Any, handler: Any) -> Any:
        if data == {}:
            raise PydanticCustomError("empty", "Request body cannot be empty")
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in IDENTITY_KEYS | {"assistant_id"}}
        model = handler(data)
        model._sent = data if isinstance(data, dict) else {}
        return model

    def changes(self, old: Schedule) -> ScheduleChanges:
        """The domain changes, computed from the stored record (the service retries with
        a fresh record when a concurrent write wins)."""
        sent = self.model_fields_set
        update: dict[str, Any] = {}
        if self.schedule is not None:
            update["cron_expression"] = self.schedule
        if "timezone" in sent:
            update["timezone"] = self.timezone or "UTC"  # null = back to UTC
        if self.input is not None:
            update["input"] = self.input
        if self.config is not None:
            update["config"] = with_cron_id(_plain(self.config), old.id)
        if self.context is not None:
            update["context"] = strip_server_owned(self.context)
        if self.metadata is not None:
            update["metadata"] = {**old.metadata, **strip_metadata(self.metadata)}
        if "webhook" in sent:
            update["webhook"] = self.webhook
        if "end_time" in sent:
            update["end_time"] = self.end_time
        if self.on_run_completed is not None and old.thread_id is None:
            update["on_run_completed"] = OnRunCompleted(self.on_run_completed)
        if self.multitask_strategy is not None:
            update["overlap_policy"] = overlap_for(
                self.multitask_strategy, thread_bound=old.thread_id is not None
            )
        if self.max_budget_per_run_usd is not None:
            update["max_budget_per_run_usd"] = _decimal(self.max_budget_per_run_usd)
        if self.timeout_seconds is not None:
            update["timeout_seconds"] = self.timeout_seconds
        for name in ("max_attempts_per_call", "initial_backoff_seconds", "pause_after_failures"):
            if getattr(self, name) is not None:
                update[name] = getattr(self, name)
        if self.enabled is not None:
            update["enabled"] = self.enabled
        extras = self._extras(old)
        if extras != old.extras:
            update["extras"] = extras
        return ScheduleChanges(**update)

    def _extras(self, old: Schedule) -> dict[str, Any]:
        """Shallow-merge the body into the payload skeleton; a null value removes the key."""
        keys, extra = payload_skeleton(old)
        for key, value in self._sent.items():
            if value is None:
                keys = [k for k in keys if k != key]
                extra.pop(key, None)
                continue
            if key not in keys:
                keys.append(key)
            if key not in MAPPED_KEYS:
                extra[key] = _plain(value)
        if self.multitask_strategy is not None:
            extra["multitask_strategy"] = self.multitask_strategy
        if self.on_run_completed is not None and old.thread_id is not None:
            extra["on_run_completed"] = self.on_run_completed
        return {**old.extras, EXTRAS_KEY: {"payload_keys": keys, "payload_extra": extra}}


def _assistant_ref(value: Any) -> Any:
    if not isinstance(value, str) or has_surrogate(value):
        raise PydanticCustomError("worded", "Invalid assistant ID: must be a UUID")
    return value


AssistantFilter = Annotated[str, BeforeValidator(_assistant_ref)]


class CronCount(Body):
    """``POST /runs/crons/count`` (``enabled`` is not a filter here, as in the reference)."""

    assistant_id: AssistantFilter | None = Field(None, description="UUID or graph name.")
    thread_id: ThreadRef | None = None
    metadata: JSONObject | None = Field(None, description="Containment (JSONB @>).")


class CronSearch(CronCount):
    """``POST /runs/crons/search``: ``sort_by`` without ``sort_order`` sorts descending."""

    enabled: Flag | None = None
    limit: Limit = 10
    offset: Offset = 0
    sort_by: choice(*CRON_SORT_BY) = "created_at"  # type: ignore[valid-type]
    sort_order: choice(*SORT_ORDERS) | None = None  # type: ignore[valid-type]
    select: selection(CRON_KEYS) | None = None  # type: ignore[valid-type]

    @property
    def descending(self) -> bool:
        return self.sort_order != "asc"


# --- responses --------------------------------------------------------------------------------


class Cron(Out):
    """A cron, key for key as ``langgraph_sdk``'s ``Cron``."""

    cron_id: Id
    assistant_id: Id
    thread_id: Id | None
    user_id: str | None
    end_time: Timestamp | None
    schedule: str
    timezone: str | None
    payload: dict[str, Any]
    next_run_date: Timestamp | None
    metadata: dict[str, Any]
    on_run_completed: choice(*ON_RUN_COMPLETED) | None  # type: ignore[valid-type]
    enabled: bool
    created_at: Timestamp
    updated_at: Timestamp


class CronCreated(Cron):
    """The create response: a ``Cron`` plus, this once, its webhook signing secret."""

    webhook_secret: str | None = Field(
        description="agentcron: the key of this cron's webhook signatures (HMAC-SHA256, "
        "X-Agentcron-Signature). Shown only here, once: store it."
    )


def created_body(s: Schedule, next_run: datetime | None) -> dict[str, Any]:
    return {**cron_body(s, next_run), "webhook_secret": s.webhook_secret}


def cron_body(s: Schedule, next_run: datetime | None) -> dict[str, Any]:
    stateless = s.thread_id is None
    return Cron(
        cron_id=s.id,
        assistant_id=s.assistant_id,
        thread_id=s.thread_id,
        user_id=s.user_id,
        end_time=iso(s.end_time),
        schedule=s.cron_expression,
        timezone=cron_timezone(s),
        payload=cron_payload(s),
        next_run_date=iso(next_run),
        metadata=s.metadata,
        on_run_completed=(
            s.on_run_completed.value if stateless and s.on_run_completed is not None else None
        ),
        enabled=s.status is ScheduleStatus.ACTIVE,
        created_at=iso(s.created_at) or "",
        updated_at=iso(s.updated_at) or "",
    ).model_dump(mode="json")


# --- mapping helpers --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return (
        value.model_dump(mode="json", exclude_unset=True) if hasattr(value, "model_dump") else value
    )


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


def strip_server_owned(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in values.items()
        if k not in SERVER_OWNED_CONFIG_KEYS and not k.startswith(SERVER_OWNED_CONFIG_PREFIXES)
    }


def strip_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k not in RESERVED_METADATA}


def with_cron_id(config: Mapping[str, Any] | None, cron_id: str) -> dict[str, Any]:
    """The run config: client keys, server-owned ``configurable`` keys replaced by ``cron_id``."""
    out = dict(config or {})
    configurable = strip_server_owned(out.get("configurable") or {})
    out["configurable"] = {**configurable, "cron_id": cron_id}
    return out


def overlap_for(strategy: str | None, *, thread_bound: bool) -> OverlapPolicy:
    """The overlap policy a ``multitask_strategy`` maps to (see the module docstring)."""
    if strategy == "enqueue" and not thread_bound:
        return OverlapPolicy.ALLOW
    return OverlapPolicy.SKIP


def payload_skeleton(schedule: Schedule) -> tuple[list[str], dict[str, Any]]:
    """(the keys the client sent, in order; the verbatim values of pass-through keys)."""
    stored = schedule.extras.get(EXTRAS_KEY)
    if not isinstance(stored, dict):
        return [], {}
    keys = stored.get("payload_keys")
    extra = stored.get("payload_extra")
    return (
        [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else [],
        dict(extra) if isinstance(extra, dict) else {},
    )


def _live_payload(s: Schedule, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Payload values of the mapped keys, read from the record (None = leave the key out)."""
    thread_bound = s.thread_id is not None
    sent = extra.get("multitask_strategy")
    if isinstance(sent, str) and overlap_for(sent, thread_bound=thread_bound) is s.overlap_policy:
        strategy = sent
    else:
        strategy = "enqueue" if s.overlap_policy is OverlapPolicy.ALLOW else "reject"
    if thread_bound:
        on_completed = extra.get("on_run_completed")
    else:
        on_completed = None if s.on_run_completed is None else s.on_run_completed.value
    return {
        "schedule": s.cron_expression,
        "assistant_id": s.assistant_id,
        "input": s.input,
        "config": with_cron_id(s.config, s.id),
        "context": s.context,
        "metadata": s.metadata,
        "webhook": s.webhook,
        "end_time": iso(s.end_time),
        "timezone": s.timezone,
        "on_run_completed": on_completed,
        "enabled": s.status is ScheduleStatus.ACTIVE,
        "multitask_strategy": strategy,
        "max_budget_per_run_usd": float(s.max_budget_per_run_usd),
        "timeout_seconds": s.timeout_seconds,
        "max_attempts_per_call": s.max_attempts_per_call,
        "initial_backoff_seconds": s.initial_backoff_seconds,
        "pause_after_failures": s.pause_after_failures,
    }


def cron_payload(s: Schedule) -> dict[str, Any]:
    keys, extra = payload_skeleton(s)
    live = _live_payload(s, extra)
    out: dict[str, Any] = {}
    for key in keys:
        value = live[key] if key in MAPPED_KEYS else extra.get(key)
        if value is not None:
            out[key] = value
    for key in _ALWAYS_IN_PAYLOAD:
        out.setdefault(key, live[key])
    for key in _WHEN_SET_IN_PAYLOAD:
        value = live[key]
        if key not in out and value not in (None, {}, "UTC"):
            out[key] = value
    return out


def cron_timezone(s: Schedule) -> str | None:
    """The IANA name, or null when the client never chose one (stored as UTC)."""
    keys, _ = payload_skeleton(s)
    return None if s.timezone == "UTC" and "timezone" not in keys else s.timezone


def matches(query: CronCount, s: Schedule, assistant_id: str | None) -> bool:
    """Does ``s`` pass the search or count filters (``assistant_id`` already resolved)?"""
    if assistant_id is not None and s.assistant_id != assistant_id:
        return False
    if query.thread_id is not None and s.thread_id != query.thread_id:
        return False
    enabled = getattr(query, "enabled", None)
    if enabled is not None and (s.status is ScheduleStatus.ACTIVE) != enabled:
        return False
    return not query.metadata or json_contains(s.metadata, query.metadata)


def assistant_filter(raw: str | None, resolve: Callable[[str], str | None]) -> str | None:
    """A graph name or UUID → the assistant UUID; an unknown UUID matches nothing."""
    if raw is None:
        return None
    resolved = resolve(raw)
    if resolved is not None:
        return resolved
    found = canonical_uuid(raw)
    if found is None:
        raise invalid("Invalid assistant ID: must be a UUID")
    return found


@dataclass(frozen=True)
class Page:
    bodies: list[dict[str, Any]]
    headers: dict[str, str]


def search(
    schedules: Iterable[Schedule],
    query: CronSearch,
    assistant_id: str | None,
    next_run: Callable[[Schedule], datetime | None],
) -> Page:
    """One page of Cron bodies (projected by ``select``) and its pagination headers."""
    matching = [s for s in schedules if matches(query, s, assistant_id)]
    nexts = {s.id: next_run(s) for s in matching}
    values: dict[str, Callable[[Schedule], Any]] = {
        "cron_id": lambda s: s.id,
        "assistant_id": lambda s: s.assistant_id,
        "thread_id": lambda s: s.thread_id,
        "next_run_date": lambda s: nexts[s.id],
        "end_time": lambda s: s.end_time,
        "created_at": lambda s: s.created_at,
        "updated_at": lambda s: s.updated_at,
    }
    ordered = sort_nulls_like_postgres(
        matching, values[query.sort_by], lambda s: s.id, descending=query.descending
    )
    page = ordered[query.offset : query.offset + query.limit + 1]
    bodies = [project(cron_body(s, nexts[s.id]), query.select) for s in page[: query.limit]]
    return Page(*sized_page(bodies, query.offset, query.limit, len(page) > query.limit))
