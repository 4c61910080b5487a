"""The LangGraph Platform wire format (``langgraph_sdk`` 0.4.x): request parsing and bodies.

The contract is ``shared/reference/langgraph-api.md``; this module is its
translation to and from the domain. Nothing here does I/O.

**A cron is a Schedule** (origin ``langgraph``); there is no second record.

=====================  ==========================================================================
LangGraph field        domain ``Schedule``
=====================  ==========================================================================
``cron_id``            ``id`` (minted before the write, so ``config`` can carry it)
``assistant_id``       ``assistant_id`` (a graph name resolves to its system assistant UUID) and
                       ``graph_id``; the derived ``name`` is ``cron <graph_id>``
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

**Run statuses.** pending, running, success, error and timeout map one to one;
``budget_exceeded`` is ``error`` and ``skipped`` (a fire that never ran the agent:
paused, ended, overlapping, late) is ``interrupted``. The domain status and the
reason are in ``metadata.agentcron``.

**Run objects** carry what a run record holds: ``kwargs`` has the ``input`` and a
``config`` whose ``configurable`` names the cron, run, thread, graph, assistant and
user (as LangGraph's does) and whose ``metadata`` is the run's; the cron's
``context``, stream options and webhook stay on the cron and are not repeated.

**Deviations from the reference server** (its defects, §13 of the contract, are
not copied): missing ``schedule``/``assistant_id`` is a 422 naming the field; graph
names work in search, count and ``GET /assistants/{id}``; ``end_time`` must be an
ISO 8601 date-time with an offset and in the future (the issue's rule: the reference
accepts anything, and EventBridge refuses a past ``EndDate``); 6/7-field schedules,
schedules EventBridge cannot run and schedules firing more often than the
deployment's ``SCHEDULE_MIN_INTERVAL_MINS`` are 422 with a specific reason (the
reference has no minimum interval; agentcron applies the same limits to both
façades); ``payload.metadata`` is the cron's metadata (the reference leaves the
last PATCH's metadata there while merging ``metadata``); ``multitask_strategy``
as above; run ``multitask_strategy`` is null (it is not recorded per run).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

from chalicelib.agents.registry import Assistant
from chalicelib.domain.enums import (
    OnRunCompleted,
    OverlapPolicy,
    RunStatus,
    ScheduleOrigin,
    ScheduleStatus,
    ThreadStatus,
)
from chalicelib.domain.models import JSONObject, Run, Schedule, Thread
from chalicelib.services.schedules import ScheduleChanges, ScheduleDraft
from chalicelib.services.threads import RunFilter, ThreadQuery, ThreadState, json_contains

T = TypeVar("T")

MAX_LIMIT: Final = 1000
MAX_WEBHOOK_CHARS: Final = 65_536
MAX_NAME_CHARS: Final = 255

# --- vocabularies -----------------------------------------------------------------------------

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
SORT_ORDERS: Final = ("asc", "desc")

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
CRON_SELECT: Final = CRON_KEYS  # every Cron key; the SDK's extra literal "now" is refused
THREAD_KEYS: Final = (
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "status",
    "config",
    "values",
    "interrupts",
)
THREAD_SORT_BY: Final = ("thread_id", "status", "created_at", "updated_at", "state_updated_at")
THREAD_STATUSES: Final = tuple(s.value for s in ThreadStatus)
RUN_KEYS: Final = (
    "run_id",
    "thread_id",
    "assistant_id",
    "metadata",
    "status",
    "kwargs",
    "multitask_strategy",
    "created_at",
    "updated_at",
    "langsmith_session_name",
)
ASSISTANT_KEYS: Final = (
    "assistant_id",
    "graph_id",
    "config",
    "context",
    "metadata",
    "name",
    "created_at",
    "updated_at",
    "version",
    "description",
)
ASSISTANT_SORT_BY: Final = ("assistant_id", "graph_id", "name", "created_at", "updated_at")

RUN_STATUS: Final[Mapping[RunStatus, str]] = {
    RunStatus.PENDING: "pending",
    RunStatus.RUNNING: "running",
    RunStatus.SUCCESS: "success",
    RunStatus.ERROR: "error",
    RunStatus.TIMEOUT: "timeout",
    RunStatus.BUDGET_EXCEEDED: "error",
    RunStatus.SKIPPED: "interrupted",
}
"""Domain run status → LangGraph's word (the domain word is kept in ``metadata.agentcron``)."""

RUN_STATUS_FILTER: Final[Mapping[str, frozenset[RunStatus]]] = {
    word: frozenset(s for s, w in RUN_STATUS.items() if w == word)
    for word in ("pending", "running", "success", "error", "timeout", "interrupted")
}

# --- reserved and server-owned keys -----------------------------------------------------------

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
    }
)
# Appended to a payload (in this order) when the client did not send them but the record
# has a value: the always-present identity, then fields set through the other façade.
_ALWAYS_IN_PAYLOAD: Final = ("schedule", "assistant_id", "config")
_WHEN_SET_IN_PAYLOAD: Final = ("input", "context", "metadata", "webhook", "end_time", "timezone")
EXTRAS_KEY: Final = "langgraph"

# --- messages ---------------------------------------------------------------------------------

GENERIC_CRON_REASON: Final = (
    "Invalid cron schedule. Ensure the schedule uses the standard cron format "
    "(minute hour day_of_month month day_of_week). Example: '*/5 * * * *' for every 5 minutes."
)


class WireError(Exception):
    """A request the façade answers itself: ``status`` with ``{"detail": detail}``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def invalid(detail: str) -> WireError:
    return WireError(422, detail)


def cron_error_detail(expression: str, reason: str, *, unsupported: bool) -> str:
    """The reference's wording for syntax errors; our specific reason for valid cron
    that agentcron refuses (the reference would accept it, so its text would mislead)."""
    shown = reason if unsupported else GENERIC_CRON_REASON
    return f"Invalid cron schedule: '{expression}'. Reason: {shown}"


def interval_error_detail(expression: str, actual_minutes: float, min_minutes: int) -> str:
    return (
        f"Invalid cron schedule: '{expression}'. Reason: it fires every "
        f"{actual_minutes:g} minutes; the minimum interval on this deployment is "
        f"{min_minutes} minutes."
    )


def timezone_error_detail(timezone: str) -> str:
    return f"Invalid timezone: '{timezone}'. Use IANA timezone format (e.g. 'America/New_York')."


# --- scalars ----------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """UTC ``isoformat()`` as the reference emits it (microseconds only when non-zero)."""
    return None if value is None else value.astimezone(UTC).isoformat()


def canonical_uuid(raw: Any) -> str | None:
    """The lower-case hyphenated form of a UUID string, or None when it is not one."""
    if not isinstance(raw, str):
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def uuid_param(raw: Any, what: str) -> str:
    """A path or body id; 422 ``Invalid <what> ID: must be a UUID`` otherwise."""
    value = canonical_uuid(raw)
    if value is None:
        raise invalid(f"Invalid {what} ID: must be a UUID")
    return value


def parse_end_time(raw: Any) -> datetime:
    """An ISO 8601 date-time *with* a UTC offset (the issue's rule; the domain checks it is
    in the future). A naive value is refused rather than guessed: the SDK sends a naive
    ``datetime`` verbatim, and reading it as UTC would silently shift the user's end."""
    detail = f"Invalid end_time: '{raw}'. Use an ISO 8601 date-time."
    # A date alone ("2026-02-01", "20260201") is not a date-time.
    if not isinstance(raw, str) or len(raw.strip()) <= 10:
        raise invalid(detail)
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise invalid(detail) from None
    if value.tzinfo is None:
        raise invalid(
            f"Invalid end_time: '{raw}'. Include a UTC offset, e.g. '2026-12-31T23:00:00+00:00'."
        )
    return value.astimezone(UTC)


# --- field readers ----------------------------------------------------------------------------


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    return body


def _string(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{key}: must be a string")
    return value


def _required_string(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        # The reference answers a 500 here; name the field instead (jsonschema's wording).
        raise invalid(f"'{key}' is a required property")
    if not isinstance(value, str):
        raise invalid(f"{key}: must be a string")
    return value


def _boolean(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid(f"{key}: must be a boolean")
    return value


def _object(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise invalid(f"{key}: must be an object")
    return value


def _choice(obj: Mapping[str, Any], key: str, allowed: Sequence[str]) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise invalid(f"{key}: {value!r} is not one of {choices}")
    return value


def _integer(obj: Mapping[str, Any], key: str, default: int, low: int, high: int | None) -> int:
    value = obj.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{key}: must be an integer")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(f"{key}: must be {bound}")
    return value


def _string_list(obj: Mapping[str, Any], key: str, allowed: Sequence[str]) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{key}: must be a list of strings")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise invalid(f"{key}: {unknown[0]!r} is not one of {', '.join(repr(a) for a in allowed)}")
    return list(dict.fromkeys(value))


def _sort(
    obj: Mapping[str, Any], allowed: Sequence[str], default: str | None
) -> tuple[str | None, bool]:
    """(sort_by, descending): ``sort_by`` without ``sort_order`` sorts descending."""
    sort_by = _choice(obj, "sort_by", allowed) or default
    order = _choice(obj, "sort_order", SORT_ORDERS)
    return sort_by, order != "asc"


def _check_pass_through(obj: Mapping[str, Any]) -> None:
    """Type-check the run options agentcron stores but does not act on."""
    for key in ("interrupt_before", "interrupt_after"):
        value = obj.get(key)
        if (
            value is not None
            and value != "*"
            and not (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            raise invalid(f"{key}: must be '*' or a list of node names")
    mode = obj.get("stream_mode")
    if mode is not None:
        modes = mode if isinstance(mode, list) else [mode]
        for item in modes:
            if not isinstance(item, str) or item not in STREAM_MODES:
                raise invalid(f"stream_mode: {item!r} is not a stream mode")
    for key in ("stream_subgraphs", "stream_resumable", "checkpoint_during"):
        _boolean(obj, key)
    _choice(obj, "durability", DURABILITIES)


def _input(obj: Mapping[str, Any]) -> JSONObject | list[Any] | None:
    value = obj.get("input")
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise invalid("input: must be an object or an array of objects")


def _config(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    config = _object(obj, "config")
    if config is None:
        return None
    tags = config.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise invalid("config.tags: must be a list of strings")
    limit = config.get("recursion_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise invalid("config.recursion_limit: must be an integer")
    configurable = config.get("configurable")
    if configurable is not None and not isinstance(configurable, dict):
        raise invalid("config.configurable: must be an object")
    return config


def _budget(obj: Mapping[str, Any]) -> Decimal | None:
    value = obj.get("max_budget_per_run_usd")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid("max_budget_per_run_usd: must be a number")
    return Decimal(str(value))


def _timeout(obj: Mapping[str, Any]) -> int | None:
    value = obj.get("timeout_seconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("timeout_seconds: must be an integer")
    return value


def _webhook(obj: Mapping[str, Any]) -> str | None:
    value = _string(obj, "webhook")
    if value is not None and not 1 <= len(value) <= MAX_WEBHOOK_CHARS:
        raise invalid(f"webhook: must be 1 to {MAX_WEBHOOK_CHARS} characters")
    return value


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


# --- crons: create ------------------------------------------------------------------------


@dataclass(frozen=True)
class CronCreate:
    """A create body, shape-checked (the cron engine and limits are the service's)."""

    assistant: str
    schedule: str
    timezone: str | None
    input: JSONObject | list[Any] | None
    config: dict[str, Any] | None
    context: dict[str, Any]
    metadata: dict[str, Any]
    webhook: str | None
    end_time: datetime | None
    on_run_completed: str | None
    multitask_strategy: str | None
    enabled: bool | None
    max_budget_per_run_usd: Decimal | None
    timeout_seconds: int | None
    payload_keys: list[str]
    payload_extra: dict[str, Any]

    def draft(
        self, *, cron_id: str, graph_id: str, assistant_id: str, thread_id: str | None
    ) -> ScheduleDraft:
        thread_bound = thread_id is not None
        return ScheduleDraft(
            name=f"cron {graph_id}"[:MAX_NAME_CHARS],
            cron_expression=self.schedule,
            timezone=self.timezone or "UTC",
            assistant=assistant_id,
            input=self.input,
            config=with_cron_id(self.config, cron_id),
            context=self.context,
            metadata=self.metadata,
            extras={
                EXTRAS_KEY: {"payload_keys": self.payload_keys, "payload_extra": self.payload_extra}
            },
            thread_id=thread_id,
            on_run_completed=(
                None if thread_bound else OnRunCompleted(self.on_run_completed or "delete")
            ),
            end_time=self.end_time,
            max_budget_per_run_usd=self.max_budget_per_run_usd,
            timeout_seconds=self.timeout_seconds,
            overlap_policy=overlap_for(self.multitask_strategy, thread_bound=thread_bound),
            webhook=self.webhook,
            enabled=self.enabled is not False,
            origin=ScheduleOrigin.LANGGRAPH,
            schedule_id=cron_id,
        )


def parse_cron_create(body: Any, *, thread_bound: bool) -> CronCreate:
    obj = json_object(body)
    assistant = _required_string(obj, "assistant_id")
    schedule = _required_string(obj, "schedule")
    if not assistant.strip():
        raise invalid("assistant_id: must not be empty")
    timezone = _string(obj, "timezone")
    input_ = _input(obj)
    config = _config(obj)
    context = _object(obj, "context")
    metadata = _object(obj, "metadata")
    webhook = _webhook(obj)
    end_time = None if obj.get("end_time") is None else parse_end_time(obj["end_time"])
    on_run_completed = _choice(obj, "on_run_completed", ON_RUN_COMPLETED)
    strategy = _choice(obj, "multitask_strategy", MULTITASK_STRATEGIES)
    enabled = _boolean(obj, "enabled")
    budget = _budget(obj)
    timeout = _timeout(obj)
    _check_pass_through(obj)
    keys = [k for k, v in obj.items() if v is not None and k not in IDENTITY_KEYS]
    extra = {k: obj[k] for k in keys if k not in MAPPED_KEYS}
    if strategy is not None:
        extra["multitask_strategy"] = strategy
    if thread_bound and on_run_completed is not None:
        # Accepted and echoed, never acted on: a user's own thread is never deleted.
        extra["on_run_completed"] = on_run_completed
    return CronCreate(
        assistant=assistant,
        schedule=schedule,
        timezone=timezone,
        input=input_,
        config=config,
        context=strip_server_owned(context or {}),
        metadata=strip_metadata(metadata or {}),
        webhook=webhook,
        end_time=end_time,
        on_run_completed=on_run_completed,
        multitask_strategy=strategy,
        enabled=enabled,
        max_budget_per_run_usd=budget,
        timeout_seconds=timeout,
        payload_keys=keys,
        payload_extra=extra,
    )


# --- crons: update -------------------------------------------------------------------------


@dataclass(frozen=True)
class CronPatch:
    """A PATCH body, shape-checked; :meth:`changes` merges it into the stored cron."""

    body: dict[str, Any]
    """The body without identity keys (``assistant_id``, ``thread_id``…: never changed)."""
    timezone: str | None
    input: JSONObject | list[Any] | None
    config: dict[str, Any] | None
    context: dict[str, Any] | None
    metadata: dict[str, Any] | None
    webhook: str | None
    end_time: datetime | None
    on_run_completed: str | None
    multitask_strategy: str | None
    enabled: bool | None
    max_budget_per_run_usd: Decimal | None
    timeout_seconds: int | None

    @property
    def schedule(self) -> str | None:
        value = self.body.get("schedule")
        return value if isinstance(value, str) else None

    def changes(self, old: Schedule) -> ScheduleChanges:
        """The domain changes: ``metadata`` merged key by key, other fields replaced."""
        body = self.body
        update: dict[str, Any] = {}
        if self.schedule is not None:
            update["cron_expression"] = self.schedule
        if "timezone" in body:
            update["timezone"] = self.timezone or "UTC"  # null = back to UTC
        if self.input is not None:
            update["input"] = self.input
        if self.config is not None:
            update["config"] = with_cron_id(self.config, old.id)
        if self.context is not None:
            update["context"] = strip_server_owned(self.context)
        if self.metadata is not None:
            update["metadata"] = {**old.metadata, **strip_metadata(self.metadata)}
        if "webhook" in body:
            update["webhook"] = self.webhook
        if "end_time" in body:
            update["end_time"] = self.end_time
        if self.on_run_completed is not None and old.thread_id is None:
            update["on_run_completed"] = OnRunCompleted(self.on_run_completed)
        if self.multitask_strategy is not None:
            update["overlap_policy"] = overlap_for(
                self.multitask_strategy, thread_bound=old.thread_id is not None
            )
        if self.max_budget_per_run_usd is not None:
            update["max_budget_per_run_usd"] = self.max_budget_per_run_usd
        if self.timeout_seconds is not None:
            update["timeout_seconds"] = self.timeout_seconds
        extras = self._extras(old)
        if extras != old.extras:
            update["extras"] = extras
        return ScheduleChanges(**update)

    def _extras(self, old: Schedule) -> dict[str, Any]:
        """Shallow-merge the body into the payload skeleton; a null value removes the key."""
        keys, extra = payload_skeleton(old)
        for key, value in self.body.items():
            if value is None:
                keys = [k for k in keys if k != key]
                extra.pop(key, None)
                continue
            if key not in keys:
                keys.append(key)
            if key not in MAPPED_KEYS:
                extra[key] = value
        if self.multitask_strategy is not None:
            extra["multitask_strategy"] = self.multitask_strategy
        if self.on_run_completed is not None and old.thread_id is not None:
            extra["on_run_completed"] = self.on_run_completed
        return {**old.extras, EXTRAS_KEY: {"payload_keys": keys, "payload_extra": extra}}


def parse_cron_patch(body: Any) -> CronPatch:
    obj = json_object(body)
    if not obj:
        raise WireError(400, "Request body cannot be empty")
    kept = {k: v for k, v in obj.items() if k not in IDENTITY_KEYS and k != "assistant_id"}
    schedule = kept.get("schedule")
    if schedule is not None and not isinstance(schedule, str):
        raise invalid("schedule: must be a string")
    _check_pass_through(kept)
    return CronPatch(
        body=kept,
        timezone=_string(kept, "timezone"),
        input=_input(kept),
        config=_config(kept),
        context=_object(kept, "context"),
        metadata=_object(kept, "metadata"),
        webhook=_webhook(kept),
        end_time=None if kept.get("end_time") is None else parse_end_time(kept["end_time"]),
        on_run_completed=_choice(kept, "on_run_completed", ON_RUN_COMPLETED),
        multitask_strategy=_choice(kept, "multitask_strategy", MULTITASK_STRATEGIES),
        enabled=_boolean(kept, "enabled"),
        max_budget_per_run_usd=_budget(kept),
        timeout_seconds=_timeout(kept),
    )


# --- crons: bodies -------------------------------------------------------------------------


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


def cron_body(s: Schedule, next_run: datetime | None) -> dict[str, Any]:
    stateless = s.thread_id is None
    return {
        "cron_id": s.id,
        "assistant_id": s.assistant_id,
        "thread_id": s.thread_id,
        "user_id": s.user_id,
        "end_time": iso(s.end_time),
        "schedule": s.cron_expression,
        "timezone": cron_timezone(s),
        "payload": cron_payload(s),
        "next_run_date": iso(next_run),
        "metadata": s.metadata,
        "on_run_completed": (
            s.on_run_completed.value if stateless and s.on_run_completed is not None else None
        ),
        "enabled": s.status is ScheduleStatus.ACTIVE,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
    }


# --- crons: search and count ---------------------------------------------------------------


@dataclass(frozen=True)
class CronQuery:
    assistant_id: str | None = None
    """The resolved assistant UUID (a graph name is resolved by the caller's resolver)."""
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    sort_by: str = "created_at"
    descending: bool = True
    select: list[str] | None = None

    def matches(self, s: Schedule) -> bool:
        if self.assistant_id is not None and s.assistant_id != self.assistant_id:
            return False
        if self.thread_id is not None and s.thread_id != self.thread_id:
            return False
        if self.enabled is not None and (s.status is ScheduleStatus.ACTIVE) != self.enabled:
            return False
        return not self.metadata or json_contains(s.metadata, self.metadata)


AssistantResolver = Callable[[str], str | None]
"""Graph name or UUID → the assistant UUID, or None when it names no registered assistant."""


def _assistant_filter(obj: Mapping[str, Any], resolve: AssistantResolver) -> str | None:
    raw = obj.get("assistant_id")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise invalid("Invalid assistant ID: must be a UUID")
    resolved = resolve(raw)
    if resolved is not None:
        return resolved
    # An unknown UUID is a valid filter that matches nothing; anything else is malformed.
    return uuid_param(raw, "assistant")


def _thread_filter(obj: Mapping[str, Any]) -> str | None:
    raw = obj.get("thread_id")
    return None if raw is None else uuid_param(raw, "thread")


def parse_cron_search(body: Any, resolve: AssistantResolver) -> CronQuery:
    obj = json_object(body)
    sort_by, descending = _sort(obj, CRON_SORT_BY, "created_at")
    assert sort_by is not None
    return CronQuery(
        assistant_id=_assistant_filter(obj, resolve),
        thread_id=_thread_filter(obj),
        enabled=_boolean(obj, "enabled"),
        metadata=_object(obj, "metadata"),
        limit=_integer(obj, "limit", 10, 1, MAX_LIMIT),
        offset=_integer(obj, "offset", 0, 0, None),
        sort_by=sort_by,
        descending=descending,
        select=_string_list(obj, "select", CRON_SELECT),
    )


def parse_cron_count(body: Any, resolve: AssistantResolver) -> CronQuery:
    obj = json_object(body)
    # ``count`` has no ``enabled`` filter in the reference; a sent one is ignored likewise.
    return CronQuery(
        assistant_id=_assistant_filter(obj, resolve),
        thread_id=_thread_filter(obj),
        metadata=_object(obj, "metadata"),
    )


def search_crons(
    schedules: Iterable[Schedule],
    query: CronQuery,
    next_run: Callable[[Schedule], datetime | None],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One page of Cron bodies (projected by ``select``) and its pagination headers."""
    matching = [s for s in schedules if query.matches(s)]
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
    bodies = [cron_body(s, nexts[s.id]) for s in page[: query.limit]]
    return (
        [project(b, query.select) for b in bodies],
        pagination_headers(query.offset, query.limit, len(bodies), len(page) > query.limit),
    )


def sort_nulls_like_postgres(
    items: Iterable[T],
    value: Callable[[T], Any],
    tie: Callable[[T], str],
    *,
    descending: bool,
) -> list[T]:
    """Sort by ``value``: nulls last ascending, first descending (PostgreSQL's default)."""

    def key(item: T) -> tuple[bool, Any, str]:
        v = value(item)
        return (v is None, "" if v is None else v, tie(item))

    return sorted(items, key=key, reverse=descending)


def pagination_headers(offset: int, limit: int, returned: int, more: bool) -> dict[str, str]:
    """The reference's ``X-Pagination-*`` headers, computed from one extra row, not a count."""
    if more:
        return {
            "X-Pagination-Next": str(offset + limit),
            "X-Pagination-Total": str(offset + limit + 1),
        }
    return {"X-Pagination-Total": str(offset + returned)}


def project(body: dict[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    return body if not select else {k: body[k] for k in select if k in body}


# --- threads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadCreate:
    thread_id: str | None
    metadata: dict[str, Any]
    if_exists: str
    ttl_minutes: float | None


def parse_thread_create(body: Any) -> ThreadCreate:
    obj = json_object(body)
    thread_id = None if obj.get("thread_id") is None else uuid_param(obj["thread_id"], "thread")
    if_exists = _choice(obj, "if_exists", ("raise", "do_nothing")) or "raise"
    if obj.get("supersteps"):
        raise invalid("supersteps: not supported; threads get their state from cron runs")
    ttl_minutes: float | None = None
    ttl = obj.get("ttl")
    if ttl is not None:
        if not isinstance(ttl, dict):
            raise invalid("ttl: must be an object")
        minutes = ttl.get("ttl")
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int | float)
            or not 0 < minutes <= 10 * 365 * 24 * 60
        ):
            raise invalid("ttl.ttl: must be a positive number of minutes")
        if ttl.get("strategy", "delete") != "delete":
            raise invalid("ttl.strategy: only 'delete' is supported")
        ttl_minutes = float(minutes)
    return ThreadCreate(
        thread_id=thread_id,
        metadata=_object(obj, "metadata") or {},
        if_exists=if_exists,
        ttl_minutes=ttl_minutes,
    )


@dataclass(frozen=True)
class ThreadSearch:
    query: ThreadQuery
    limit: int
    offset: int
    select: list[str] | None


def parse_thread_search(body: Any, *, counting: bool) -> ThreadSearch:
    obj = json_object(body)
    ids = obj.get("ids")
    if ids is not None:
        if not isinstance(ids, list):
            raise invalid("ids: must be a list of thread IDs")
        ids = [uuid_param(i, "thread") for i in ids]
    status = _choice(obj, "status", THREAD_STATUSES)
    if obj.get("extract"):
        raise invalid("extract: not supported")
    sort_by, descending = (None, True) if counting else _sort(obj, THREAD_SORT_BY, None)
    query = ThreadQuery(
        metadata=_object(obj, "metadata"),
        values=_object(obj, "values"),
        ids=ids,
        status=None if status is None else ThreadStatus(status),
        sort_by=sort_by,
        descending=descending,
    )
    if counting:
        return ThreadSearch(query=query, limit=0, offset=0, select=None)
    return ThreadSearch(
        query=query,
        limit=_integer(obj, "limit", 10, 1, MAX_LIMIT),
        offset=_integer(obj, "offset", 0, 0, None),
        select=_string_list(obj, "select", THREAD_KEYS),
    )


def thread_body(t: Thread) -> dict[str, Any]:
    return {
        "thread_id": t.thread_id,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
        "state_updated_at": iso(t.state_updated_at or t.created_at),
        "metadata": t.metadata,
        "status": t.status.value,
        "config": t.config,
        "values": t.values,
        "interrupts": {},
    }


def thread_state_body(state: ThreadState) -> dict[str, Any]:
    """The SDK's ThreadState: agentcron keeps one state per thread (no history, no tasks)."""
    t = state.thread
    return {
        "values": t.values if t.values is not None else {},
        "next": [],
        "tasks": [],
        "metadata": t.metadata,
        "created_at": None if state.checkpoint_id is None else iso(t.state_updated_at),
        "checkpoint": {
            "thread_id": t.thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": state.checkpoint_id,
            "checkpoint_map": None,
        },
        "parent_checkpoint": None,
        "interrupts": [],
    }


# --- runs ----------------------------------------------------------------------------------


def run_metadata(run: Run) -> dict[str, Any]:
    """The run's metadata (cron metadata, ``cron_id``, graph and assistant) plus agentcron facts."""
    agentcron: dict[str, Any] = {
        "status": run.status.value,
        "trigger": run.trigger.value,
        "scheduled_time": iso(run.scheduled_time),
        "total_tokens": run.usage.total_tokens,
        "cost_usd": float(run.usage.cost_usd),
    }
    if run.error_message:
        agentcron["error"] = run.error_message
    return {**run.metadata, "cron_id": run.schedule_id, "agentcron": agentcron}


def run_body(run: Run) -> dict[str, Any]:
    metadata = run_metadata(run)
    configurable = {
        "cron_id": run.schedule_id,
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "graph_id": run.graph_id,
        "assistant_id": run.assistant_id,
        "user_id": run.user_id,
    }
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": run.assistant_id,
        "metadata": metadata,
        "status": RUN_STATUS[run.status],
        "kwargs": {
            "input": run.input,
            "command": None,
            "config": {"configurable": configurable, "metadata": metadata},
        },
        # Not recorded per run: the cron's own strategy is in its payload.
        "multitask_strategy": None,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "langsmith_session_name": None,
    }


def _run_statuses(raw: Any) -> frozenset[RunStatus] | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or raw not in RUN_STATUS_FILTER:
        choices = ", ".join(repr(w) for w in RUN_STATUS_FILTER)
        raise invalid(f"status: {raw!r} is not one of {choices}")
    return RUN_STATUS_FILTER[raw]


def _int_param(
    params: Mapping[str, str], key: str, default: int, low: int, high: int | None
) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise invalid(f"{key}: must be an integer") from None
    return _integer({key: value}, key, default, low, high)


@dataclass(frozen=True)
class RunList:
    limit: int
    offset: int
    statuses: frozenset[RunStatus] | None
    select: list[str] | None


def parse_run_list(params: Mapping[str, str], select: list[str]) -> RunList:
    """``GET /threads/{id}/runs`` query parameters (``select`` may repeat)."""
    return RunList(
        limit=_int_param(params, "limit", 10, 1, MAX_LIMIT),
        offset=_int_param(params, "offset", 0, 0, None),
        statuses=_run_statuses(params.get("status") or None),
        select=_string_list({"select": select or None}, "select", RUN_KEYS),
    )


@dataclass(frozen=True)
class RunSearch:
    cron_id: str | None
    thread_id: str | None
    where: RunFilter
    limit: int
    offset: int
    select: list[str] | None


def parse_run_search(body: Any) -> RunSearch:
    """``POST /runs/search``: by ``metadata.cron_id`` (or ``thread_id``), other filters optional."""
    obj = json_object(body)
    metadata = dict(_object(obj, "metadata") or {})
    raw_cron = metadata.pop("cron_id", None)
    cron_id = None if raw_cron is None else canonical_uuid(raw_cron)
    if raw_cron is not None and cron_id is None:
        raise invalid("Invalid cron ID: must be a UUID")
    thread_id = _thread_filter(obj)
    if cron_id is None and thread_id is None:
        raise invalid("runs/search needs a metadata.cron_id or a thread_id filter")
    statuses = _run_statuses(obj.get("status"))
    rest = metadata
    both = cron_id is not None and thread_id is not None

    def predicate(run: Run) -> bool:
        if both and run.thread_id != thread_id:
            return False
        return json_contains(run_metadata(run), rest)

    return RunSearch(
        cron_id=cron_id,
        thread_id=thread_id,
        where=RunFilter(statuses=statuses, predicate=predicate if rest or both else None),
        limit=_integer(obj, "limit", 10, 1, MAX_LIMIT),
        offset=_integer(obj, "offset", 0, 0, None),
        select=_string_list(obj, "select", RUN_KEYS),
    )


# --- assistants ----------------------------------------------------------------------------


def assistant_body(a: Assistant) -> dict[str, Any]:
    created = iso(a.created_at)
    return {
        "assistant_id": a.assistant_id,
        "graph_id": a.graph_id,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "name": a.graph_id,
        "created_at": created,
        "updated_at": created,
        "version": 1,
        "description": a.description,
    }


@dataclass(frozen=True)
class AssistantQuery:
    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = 10
    offset: int = 0
    sort_by: str | None = None
    descending: bool = True
    select: list[str] | None = None

    def matches(self, body: Mapping[str, Any]) -> bool:
        if self.graph_id is not None and body["graph_id"] != self.graph_id:
            return False
        if self.name is not None and self.name.lower() not in str(body["name"]).lower():
            return False
        return not self.metadata or json_contains(body["metadata"], self.metadata)


def parse_assistant_search(body: Any, *, counting: bool) -> AssistantQuery:
    obj = json_object(body)
    filters: dict[str, Any] = {
        "metadata": _object(obj, "metadata"),
        "graph_id": _string(obj, "graph_id"),
        "name": _string(obj, "name"),
    }
    if counting:
        return AssistantQuery(**filters)
    sort_by, descending = _sort(obj, ASSISTANT_SORT_BY, None)
    return AssistantQuery(
        **filters,
        limit=_integer(obj, "limit", 10, 1, MAX_LIMIT),
        offset=_integer(obj, "offset", 0, 0, None),
        sort_by=sort_by,
        descending=descending,
        select=_string_list(obj, "select", ASSISTANT_KEYS),
    )


def search_assistants(
    assistants: Iterable[Assistant], query: AssistantQuery
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Registered assistants in registry order unless ``sort_by`` says otherwise."""
    bodies = [b for b in (assistant_body(a) for a in assistants) if query.matches(b)]
    if query.sort_by is not None:
        sort_key = query.sort_by
        bodies = sort_nulls_like_postgres(
            bodies,
            lambda b: b[sort_key],
            lambda b: str(b["assistant_id"]),
            descending=query.descending,
        )
    page = bodies[query.offset : query.offset + query.limit + 1]
    shown = page[: query.limit]
    return (
        [project(b, query.select) for b in shown],
        pagination_headers(query.offset, query.limit, len(shown), len(page) > query.limit),
    )
