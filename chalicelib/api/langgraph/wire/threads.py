"""Threads: request and response models (``POST /threads``, search, count, ``GET`` and state).

agentcron keeps one state per thread, not a checkpoint history: ``GET …/state`` names
it with a deterministic checkpoint id (see ``ThreadService.state``). ``supersteps``
and ``extract`` are refused (422): threads get their state from cron runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from chalicelib.api.langgraph.wire import (
    SORT_ORDERS,
    Body,
    Id,
    JSONObject,
    Limit,
    Offset,
    Out,
    ThreadRef,
    Timestamp,
    choice,
    iso,
    selection,
    uuid_param_as_error,
)
from chalicelib.domain.enums import ThreadStatus
from chalicelib.domain.models import Thread
from chalicelib.services.threads import ThreadQuery, ThreadState

MAX_TTL_MINUTES: Final = 10 * 365 * 24 * 60
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


def _ttl(value: Any) -> Any:
    if not isinstance(value, dict):
        raise PydanticCustomError("worded", "ttl: must be an object")
    minutes = value.get("ttl")
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int | float)
        or not 0 < minutes <= MAX_TTL_MINUTES
    ):
        raise PydanticCustomError("worded", "ttl.ttl: must be a positive number of minutes")
    if value.get("strategy", "delete") != "delete":
        raise PydanticCustomError("worded", "ttl.strategy: only 'delete' is supported")
    return value


class ThreadCreate(Body):
    """``POST /threads``: an idle thread with no state."""

    thread_id: ThreadRef | None = None
    metadata: JSONObject | None = Field(
        None, description="At most 64 KiB (checked by the thread service)."
    )
    if_exists: choice("raise", "do_nothing") | None = None  # type: ignore[valid-type]
    ttl: Annotated[dict[str, Any], BeforeValidator(_ttl)] | None = Field(
        None, description="{'ttl': minutes, 'strategy': 'delete'}"
    )
    supersteps: Annotated[list[Any], BeforeValidator(lambda v: _refuse_supersteps(v))] | None = None

    @property
    def ttl_minutes(self) -> float | None:
        return None if self.ttl is None else float(self.ttl["ttl"])


def _refuse_supersteps(value: Any) -> Any:
    if value:
        raise PydanticCustomError(
            "worded", "supersteps: not supported; threads get their state from cron runs"
        )
    return value


def _ids(value: Any) -> Any:
    if not isinstance(value, list):
        raise PydanticCustomError("worded", "ids: must be a list of thread IDs")
    return [uuid_param_as_error(v, "thread") for v in value]


def _no_extract(value: Any) -> Any:
    if value:
        raise PydanticCustomError("worded", "extract: not supported")
    return value


class ThreadCount(Body):
    """``POST /threads/count``."""

    metadata: JSONObject | None = None
    values: JSONObject | None = None
    ids: Annotated[list[str], BeforeValidator(_ids)] | None = None
    status: choice(*THREAD_STATUSES) | None = None  # type: ignore[valid-type]

    def query(self, sort_by: str | None = None, descending: bool = True) -> ThreadQuery:
        return ThreadQuery(
            metadata=self.metadata,
            values=self.values,
            ids=self.ids,
            status=None if self.status is None else ThreadStatus(self.status),
            sort_by=sort_by,
            descending=descending,
        )


class ThreadSearch(ThreadCount):
    """``POST /threads/search``: newest first unless ``sort_by`` says otherwise."""

    limit: Limit = 10
    offset: Offset = 0
    sort_by: choice(*THREAD_SORT_BY) | None = None  # type: ignore[valid-type]
    sort_order: choice(*SORT_ORDERS) | None = None  # type: ignore[valid-type]
    select: selection(THREAD_KEYS) | None = None  # type: ignore[valid-type]
    extract: Annotated[dict[str, Any], BeforeValidator(_no_extract)] | None = None

    def search_query(self) -> ThreadQuery:
        return self.query(self.sort_by, self.sort_order != "asc")


class ThreadOut(Out):
    """A thread, key for key as ``langgraph_sdk``'s ``Thread``."""

    thread_id: Id
    created_at: Timestamp
    updated_at: Timestamp
    state_updated_at: Timestamp
    metadata: dict[str, Any]
    status: choice(*THREAD_STATUSES)  # type: ignore[valid-type]
    config: dict[str, Any]
    values: dict[str, Any] | None
    interrupts: dict[str, Any]


def thread_body(t: Thread) -> dict[str, Any]:
    return ThreadOut(
        thread_id=t.thread_id,
        created_at=iso(t.created_at) or "",
        updated_at=iso(t.updated_at) or "",
        state_updated_at=iso(t.state_updated_at or t.created_at) or "",
        metadata=t.metadata,
        status=t.status.value,
        config=t.config,
        values=t.values,
        interrupts={},
    ).model_dump(mode="json")


class Checkpoint(Out):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None
    checkpoint_map: dict[str, Any] | None


class ThreadStateOut(Out):
    """The SDK's ``ThreadState``: one state per thread (no history, no tasks)."""

    values: dict[str, Any]
    next: list[str]
    tasks: list[dict[str, Any]]
    metadata: dict[str, Any]
    created_at: Timestamp | None
    checkpoint: Checkpoint
    parent_checkpoint: dict[str, Any] | None
    interrupts: list[Any]


def thread_state_body(state: ThreadState) -> dict[str, Any]:
    t = state.thread
    return ThreadStateOut(
        values=t.values if t.values is not None else {},
        next=[],
        tasks=[],
        metadata=t.metadata,
        created_at=None if state.checkpoint_id is None else iso(t.state_updated_at),
        checkpoint=Checkpoint(
            thread_id=t.thread_id,
            checkpoint_ns="",
            checkpoint_id=state.checkpoint_id,
            checkpoint_map=None,
        ),
        parent_checkpoint=None,
        interrupts=[],
    ).model_dump(mode="json")
