"""Runs: the run object, the thread's run list query, and ``POST /runs/search``.

**Run statuses.** pending, running, success, error and timeout map one to one;
``budget_exceeded`` is ``error`` and ``skipped`` (a fire that never ran the agent:
paused, ended, overlapping, late) is ``interrupted``. The domain status and the
reason are in ``metadata.agentcron``.

**Run objects** carry what a run record holds: ``kwargs`` has the ``input`` and a
``config`` whose ``configurable`` names the cron, run, thread, graph, assistant and
user (as LangGraph's does) and whose ``metadata`` is the run's; the cron's
``context``, stream options and webhook stay on the cron and are not repeated. Run
``multitask_strategy`` is null: it is not recorded per run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from chalicelib.api.http import quote
from chalicelib.api.langgraph.common import canonical_uuid
from chalicelib.api.langgraph.wire import (
    MAX_LIMIT,
    Body,
    Id,
    JSONObject,
    Limit,
    Offset,
    Out,
    ThreadRef,
    Timestamp,
    iso,
    query_int,
    selection,
)
from chalicelib.domain.enums import RunStatus
from chalicelib.domain.models import Run
from chalicelib.services.threads import RunFilter, json_contains

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
STATUS_WORDS: Final = ("pending", "running", "success", "error", "timeout", "interrupted")
RUN_STATUS_FILTER: Final[Mapping[str, frozenset[RunStatus]]] = {
    word: frozenset(s for s, w in RUN_STATUS.items() if w == word) for word in STATUS_WORDS
}


def _status(value: Any) -> Any:
    if not isinstance(value, str) or value not in RUN_STATUS_FILTER:
        choices = ", ".join(repr(w) for w in RUN_STATUS_FILTER)
        raise PydanticCustomError("worded", f"status: {quote(repr(value))} is not one of {choices}")
    return value


StatusWord = Annotated[
    str, BeforeValidator(_status), Field(json_schema_extra={"enum": list(STATUS_WORDS)})
]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RunListQuery(Body):
    """``GET /threads/{thread_id}/runs`` query (``select`` may repeat)."""

    model_config = Body.model_config | {"strict": False}

    limit: query_int("limit", 10, 1, MAX_LIMIT) = 10  # type: ignore[valid-type]
    offset: query_int("offset", 0, 0, None) = 0  # type: ignore[valid-type]
    status: StatusWord | None = None
    select: Annotated[selection(RUN_KEYS), BeforeValidator(_as_list)] | None = None  # type: ignore[valid-type]

    @property
    def statuses(self) -> frozenset[RunStatus] | None:
        return None if self.status is None else RUN_STATUS_FILTER[self.status]


def _cron_filter(value: Any) -> Any:
    cron_id = value.get("cron_id") if isinstance(value, dict) else None
    if cron_id is not None and canonical_uuid(cron_id) is None:
        raise PydanticCustomError("worded", "Invalid cron ID: must be a UUID")
    return value


class RunSearch(Body):
    """``POST /runs/search`` (agentcron): the runs of a cron (``metadata.cron_id``) or of a
    thread; other metadata keys filter by containment."""

    metadata: Annotated[JSONObject, BeforeValidator(_cron_filter)] | None = None
    thread_id: ThreadRef | None = None
    status: StatusWord | None = None
    limit: Limit = 10
    offset: Offset = 0
    select: selection(RUN_KEYS) | None = None  # type: ignore[valid-type]

    @property
    def cron_id(self) -> str | None:
        raw = (self.metadata or {}).get("cron_id")
        return None if raw is None else canonical_uuid(raw)

    def where(self) -> RunFilter:
        rest = {k: v for k, v in (self.metadata or {}).items() if k != "cron_id"}
        both = self.cron_id is not None and self.thread_id is not None
        thread_id = self.thread_id

        def predicate(run: Run) -> bool:
            if both and run.thread_id != thread_id:
                return False
            return json_contains(run_metadata(run), rest)

        statuses = None if self.status is None else RUN_STATUS_FILTER[self.status]
        return RunFilter(statuses=statuses, predicate=predicate if rest or both else None)


class RunOut(Out):  # type: ignore[no-redef]  # a field named kwargs (pydantic plugin)
    """A run, as ``langgraph_sdk``'s ``Run`` (plus the reference's ``kwargs``)."""

    run_id: Id
    thread_id: Id | None
    assistant_id: Id | None
    metadata: dict[str, Any]
    status: Annotated[str, Field(json_schema_extra={"enum": list(STATUS_WORDS)})]
    kwargs: dict[str, Any]
    multitask_strategy: str | None
    created_at: Timestamp
    updated_at: Timestamp
    langsmith_session_name: str | None


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
    if run.call_attempts:
        agentcron["attempts"] = run.call_attempts
    if run.failed_attempt_count:
        agentcron["failed_attempt_count"] = run.failed_attempt_count
        agentcron["failed_attempts"] = [
            {
                "at": iso(a.at),
                "error": a.error,
                "message": a.message,
                "transient": a.transient,
                "retry_after": a.retry_after,
            }
            for a in run.failed_attempts
        ]
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
    return RunOut(
        run_id=run.run_id,
        thread_id=run.thread_id,
        assistant_id=run.assistant_id,
        metadata=metadata,
        status=RUN_STATUS[run.status],
        kwargs={
            "input": run.input,
            "command": None,
            "config": {"configurable": configurable, "metadata": metadata},
        },
        multitask_strategy=None,
        created_at=iso(run.created_at) or "",
        updated_at=iso(run.updated_at) or "",
        langsmith_session_name=None,
    ).model_dump(mode="json")
