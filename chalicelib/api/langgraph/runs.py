"""Run routes: ``GET /threads/{thread_id}/runs``, ``GET /threads/{thread_id}/runs/{run_id}``
and ``POST /runs/search`` (by ``metadata.cron_id``: the ``runs.search`` LangGraph's cron
documentation shows, which ``langgraph_sdk`` 0.4 does not have)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Response

from chalicelib.api.http import json_response
from chalicelib.api.langgraph.common import AUTH, container, invalid, route, wire
from chalicelib.domain import errors

if TYPE_CHECKING:
    from chalicelib.api.langgraph.wire import runs as run_wire
    from chalicelib.domain.models import Principal

TAGS = ("runs",)


@route(
    "/runs/search",
    "POST",
    summary="agentcron: the runs of a cron (metadata.cron_id) or of a thread",
    body="runs.RunSearch",
    responses={200: "runs.RunOut[]*"},
    errors=(*AUTH, 422),
    tags=TAGS,
)
def search_runs(principal: Principal, body: run_wire.RunSearch) -> Response:
    runs_wire = wire("runs")
    threads = container().thread_service
    cron_id = body.cron_id
    if cron_id is not None:
        runs = threads.cron_runs(
            principal, cron_id, offset=body.offset, limit=body.limit, where=body.where()
        )
    elif body.thread_id is not None:
        try:
            runs = threads.runs(
                principal, body.thread_id, offset=body.offset, limit=body.limit, where=body.where()
            )
        except errors.ThreadNotFoundError:
            runs = []  # a search finds nothing; it does not confirm whose thread it is
    else:
        raise invalid("runs/search needs a metadata.cron_id or a thread_id filter")
    bodies = [wire().project(runs_wire.run_body(r), body.select) for r in runs]
    shown, headers = wire().sized_page(bodies, body.offset, body.limit, None)
    return json_response(shown, 200, headers)


@route(
    "/threads/{thread_id}/runs",
    "GET",
    summary="The thread's runs, newest first",
    query="runs.RunListQuery",
    responses={200: "runs.RunOut[]*"},
    errors=(*AUTH, 404, 422),
    tags=TAGS,
)
def list_thread_runs(
    principal: Principal, thread_id: str, query: run_wire.RunListQuery
) -> Response:
    from chalicelib.services.threads import RunFilter

    runs = container().thread_service.runs(
        principal,
        thread_id,
        offset=query.offset,
        limit=query.limit,
        where=RunFilter(statuses=query.statuses),
    )
    runs_wire = wire("runs")
    bodies = [wire().project(runs_wire.run_body(r), query.select) for r in runs]
    shown, headers = wire().sized_page(bodies, query.offset, query.limit, None)
    return json_response(shown, 200, headers)


@route(
    "/threads/{thread_id}/runs/{run_id}",
    "GET",
    summary="One run of a thread",
    responses={200: "runs.RunOut"},
    errors=(*AUTH, 404, 422),
    tags=TAGS,
)
def get_thread_run(principal: Principal, thread_id: str, run_id: str) -> Response:
    run = container().thread_service.run(principal, thread_id, run_id)
    return json_response(wire("runs").run_body(run))
