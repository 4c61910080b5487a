"""Assistant routes (registered agents; graph names accepted as ids), ``/ok`` and ``/info``
(both without authentication)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Response

from chalicelib.api.http import json_response
from chalicelib.api.langgraph.common import AUTH, container, route, uuid_param, wire

if TYPE_CHECKING:
    from chalicelib.api.langgraph.wire import assistants as assistant_wire

API_VERSION = "0.1.0"
TAGS = ("assistants",)


@route("/ok", "GET", summary="Health", responses={200: "assistants.Ok"}, auth=False, tags=("meta",))
def ok() -> Response:
    return json_response({"ok": True})


@route(
    "/info",
    "GET",
    summary="Server information",
    responses={200: "assistants.Info"},
    auth=False,
    tags=("meta",),
)
def info() -> Response:
    return json_response(
        {
            "version": API_VERSION,
            "server": "agentcron",
            "flags": {"assistants": True, "crons": True, "langsmith": False},
            "metadata": {"stage": container().settings.STAGE},
        }
    )


@route(
    "/assistants/search",
    "POST",
    summary="Search assistants",
    body="assistants.AssistantSearch",
    responses={200: "assistants.AssistantOut[]*"},
    errors=(*AUTH, 422),
    tags=TAGS,
)
def search_assistants(body: assistant_wire.AssistantSearch) -> Response:
    bodies, headers = wire("assistants").search(container().assistants.all(), body)
    return json_response(bodies, 200, headers)


@route(
    "/assistants/count",
    "POST",
    summary="Count assistants",
    body="assistants.AssistantCount",
    responses={200: "int"},
    errors=(*AUTH, 422),
    tags=TAGS,
)
def count_assistants(body: assistant_wire.AssistantCount) -> Response:
    bodies = [wire("assistants").assistant_body(a) for a in container().assistants.all()]
    return json_response(sum(1 for b in bodies if body.matches(b)))


@route(
    "/assistants/{assistant_id}",
    "GET",
    summary="Get an assistant (by UUID or graph name)",
    responses={200: "assistants.AssistantOut"},
    errors=(*AUTH, 404, 422),
    tags=TAGS,
)
def get_assistant(assistant_id: str) -> Response:
    found = container().assistants.resolve(assistant_id)
    if found is None:
        uuid_param(assistant_id, "assistant")  # neither a UUID nor a graph name: 422
        from chalicelib.domain.errors import NotFoundError

        raise NotFoundError(assistant_id)
    return json_response(wire("assistants").assistant_body(found))
