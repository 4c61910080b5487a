"""Thread routes: ``POST /threads``, ``POST /threads/search`` and ``/count``,
``GET|DELETE /threads/{thread_id}``, ``GET /threads/{thread_id}/state``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Response

from chalicelib.api.http import empty_response, json_response
from chalicelib.api.langgraph.common import AUTH, container, route, wire

if TYPE_CHECKING:
    from chalicelib.api.langgraph.wire import threads as thread_wire
    from chalicelib.domain.models import Principal

TAGS = ("threads",)


@route(
    "/threads",
    "POST",
    summary="Create a thread",
    body="threads.ThreadCreate",
    responses={200: "threads.ThreadOut"},
    errors=(*AUTH, 409, 422),
    tags=TAGS,
    links={
        name: {"thread_id": "$response.body#/thread_id"}
        for name in (
            "get_thread",
            "get_thread_state",
            "list_thread_runs",
            "create_thread_cron",
            "delete_thread",
        )
    },
)
def create_thread(principal: Principal, body: thread_wire.ThreadCreate) -> Response:
    thread = container().thread_service.create(
        principal,
        thread_id=body.thread_id,
        metadata=body.metadata or {},
        if_exists=body.if_exists or "raise",
        ttl_minutes=body.ttl_minutes,
    )
    return json_response(wire("threads").thread_body(thread))


@route(
    "/threads/search",
    "POST",
    summary="Search threads",
    body="threads.ThreadSearch",
    responses={200: "threads.ThreadOut[]*"},
    errors=(*AUTH, 422),
    tags=TAGS,
)
def search_threads(principal: Principal, body: thread_wire.ThreadSearch) -> Response:
    threads = wire("threads")
    found, more = container().thread_service.search(
        principal, body.search_query(), offset=body.offset, limit=body.limit
    )
    bodies = [wire().project(threads.thread_body(t), body.select) for t in found]
    shown, headers = wire().sized_page(bodies, body.offset, body.limit, more)
    return json_response(shown, 200, headers)


@route(
    "/threads/count",
    "POST",
    summary="Count threads",
    body="threads.ThreadCount",
    responses={200: "int"},
    errors=(*AUTH, 422),
    tags=TAGS,
)
def count_threads(principal: Principal, body: thread_wire.ThreadCount) -> Response:
    return json_response(container().thread_service.count(principal, body.query()))


@route(
    "/threads/{thread_id}",
    "GET",
    summary="Get a thread",
    responses={200: "threads.ThreadOut"},
    errors=(*AUTH, 404, 422),
    tags=TAGS,
)
def get_thread(principal: Principal, thread_id: str) -> Response:
    thread = container().thread_service.get(principal, thread_id)
    return json_response(wire("threads").thread_body(thread))


@route(
    "/threads/{thread_id}",
    "DELETE",
    summary="Delete a thread and its crons",
    responses={204: None},
    errors=(*AUTH, 404, 422, 503),
    tags=TAGS,
)
def delete_thread(principal: Principal, thread_id: str) -> Response:
    container().thread_service.delete(principal, thread_id)
    return empty_response(204)


@route(
    "/threads/{thread_id}/state",
    "GET",
    summary="The thread's current state",
    responses={200: "threads.ThreadStateOut"},
    errors=(*AUTH, 404, 422),
    tags=TAGS,
)
def get_thread_state(principal: Principal, thread_id: str) -> Response:
    state = container().thread_service.state(principal, thread_id)
    return json_response(wire("threads").thread_state_body(state))
