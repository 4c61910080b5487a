"""Assistants (the registered agents, graph names accepted as ids), ``/ok`` and ``/info``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from chalicelib.agents.registry import Assistant
from chalicelib.api.langgraph.wire import (
    SORT_ORDERS,
    Body,
    Id,
    JSONObject,
    Limit,
    Offset,
    Out,
    Text,
    Timestamp,
    choice,
    iso,
    project,
    selection,
    sized_page,
    sort_nulls_like_postgres,
)
from chalicelib.services.threads import json_contains

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


class AssistantCount(Body):
    """``POST /assistants/count``."""

    metadata: JSONObject | None = None
    graph_id: Text | None = None
    name: Text | None = None

    def matches(self, body: Mapping[str, Any]) -> bool:
        if self.graph_id is not None and body["graph_id"] != self.graph_id:
            return False
        if self.name is not None and self.name.lower() not in str(body["name"]).lower():
            return False
        return not self.metadata or json_contains(body["metadata"], self.metadata)


class AssistantSearch(AssistantCount):
    """``POST /assistants/search``: registry order unless ``sort_by`` says otherwise."""

    limit: Limit = 10
    offset: Offset = 0
    sort_by: choice(*ASSISTANT_SORT_BY) | None = None  # type: ignore[valid-type]
    sort_order: choice(*SORT_ORDERS) | None = None  # type: ignore[valid-type]
    select: selection(ASSISTANT_KEYS) | None = None  # type: ignore[valid-type]


class AssistantOut(Out):
    """An assistant, as ``langgraph_sdk``'s ``Assistant``."""

    assistant_id: Id
    graph_id: str
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    name: str
    created_at: Timestamp
    updated_at: Timestamp
    version: int
    description: str | None


def assistant_body(a: Assistant) -> dict[str, Any]:
    created = iso(a.created_at) or ""
    return AssistantOut(
        assistant_id=a.assistant_id,
        graph_id=a.graph_id,
        config={},
        context={},
        metadata={"created_by": "system"},
        name=a.graph_id,
        created_at=created,
        updated_at=created,
        version=1,
        description=a.description,
    ).model_dump(mode="json")


def search(
    assistants: Iterable[Assistant], query: AssistantSearch
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    bodies = [b for b in (assistant_body(a) for a in assistants) if query.matches(b)]
    if query.sort_by is not None:
        sort_key = query.sort_by
        bodies = sort_nulls_like_postgres(
            bodies,
            lambda b: b[sort_key],
            lambda b: str(b["assistant_id"]),
            descending=query.sort_order != "asc",
        )
    page = bodies[query.offset : query.offset + query.limit + 1]
    shown = [project(b, query.select) for b in page[: query.limit]]
    return sized_page(shown, query.offset, query.limit, len(page) > query.limit)


class Ok(Out):
    ok: bool


class Info(Out):
    version: str
    server: str
    flags: dict[str, bool]
    metadata: dict[str, Any]
