"""Cron routes: ``POST /runs/crons``, ``POST /threads/{thread_id}/runs/crons``,
``GET|PATCH|DELETE /runs/crons/{cron_id}``, ``POST /runs/crons/search`` and ``/count``.

Crons are ``ScheduleService`` schedules (the same records the Shannon façade serves);
the mapping lives in :mod:`chalicelib.api.langgraph.wire.crons`.

**Routing**: ``/runs/crons/search`` and ``/runs/crons/count`` are literal paths next to
``/runs/crons/{cron_id}``; API Gateway and ``chalice local`` both prefer the literal
segment (a routing test keeps it so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Response

from chalicelib.api.http import empty_response, json_response
from chalicelib.api.langgraph.common import AUTH, container, route, wire

if TYPE_CHECKING:
    from chalicelib.api.langgraph.wire import crons as cron_wire
    from chalicelib.domain.models import Principal, Schedule

TAGS = ("crons",)
CRON_LINKS = {
    name: {"cron_id": "$response.body#/cron_id"}
    for name in ("get_cron", "update_cron", "delete_cron")
}


def _cron(schedule: Schedule) -> Response:
    body = wire("crons").cron_body(schedule, container().schedule_service.next_fire_time(schedule))
    return json_response(body)


def _create(principal: Principal, body: cron_wire.CronCreate, thread_id: str | None) -> Response:
    from chalicelib.domain.models import new_id

    # The id is minted here so that the stored config can carry it.
    draft = body.draft(cron_id=new_id(), thread_id=thread_id)
    service = container().schedule_service
    schedule = service.create(principal, draft)
    return json_response(wire("crons").created_body(schedule, service.next_fire_time(schedule)))


@route(
    "/runs/crons",
    "POST",
    summary="Create a stateless cron",
    body="crons.CronCreate",
    responses={200: "crons.CronCreated"},
    errors=(*AUTH, 400, 404, 422, 503),
    tags=TAGS,
    links=CRON_LINKS,
)
def create_cron(principal: Principal, body: cron_wire.CronCreate) -> Response:
    return _create(principal, body, None)


@route(
    "/threads/{thread_id}/runs/crons",
    "POST",
    summary="Create a cron on a thread",
    body="crons.ThreadCronCreate",
    responses={200: "crons.CronCreated"},
    errors=(*AUTH, 400, 404, 422, 503),
    tags=TAGS,
    links=CRON_LINKS,
)
def create_thread_cron(
    principal: Principal, thread_id: str, body: cron_wire.ThreadCronCreate
) -> Response:
    return _create(principal, body, thread_id)


@route(
    "/runs/crons/search",
    "POST",
    summary="Search crons",
    body="crons.CronSearch",
    responses={200: "crons.Cron[]*"},
    errors=(*AUTH, 422),
    tags=TAGS,
)
def search_crons(principal: Principal, body: cron_wire.CronSearch) -> Response:
    crons = wire("crons")
    service = container().schedule_service
    now = container().clock.now()
    page = crons.search(
        service.list_for_user(principal),
        body,
        crons.assistant_filter(body.assistant_id, _resolve),
        lambda s: service.next_fire_time(s, now),
    )
    return json_response(page.bodies, 200, page.headers)


@route(
    "/runs/crons/count",
    "POST",
    summary="Count crons",
    body="crons.CronCount",
    responses={200: "int"},
    errors=(*AUTH, 422),
    tags=TAGS,
)
def count_crons(principal: Principal, body: cron_wire.CronCount) -> Response:
    crons = wire("crons")
    assistant_id = crons.assistant_filter(body.assistant_id, _resolve)
    schedules = container().schedule_service.list_for_user(principal)
    return json_response(sum(1 for s in schedules if crons.matches(body, s, assistant_id)))


@route(
    "/runs/crons/{cron_id}",
    "GET",
    summary="Get a cron",
    responses={200: "crons.Cron"},
    errors=(*AUTH, 404, 422),
    tags=TAGS,
)
def get_cron(principal: Principal, cron_id: str) -> Response:
    return _cron(container().schedule_service.get(principal, cron_id))


@route(
    "/runs/crons/{cron_id}",
    "PATCH",
    summary="Update a cron",
    body="crons.CronPatch",
    responses={200: "crons.Cron"},
    errors=(*AUTH, 400, 404, 409, 422, 503),
    tags=TAGS,
)
def update_cron(principal: Principal, cron_id: str, body: cron_wire.CronPatch) -> Response:
    # The changes are computed from the record the service reads (metadata merges key by
    # key), so a concurrent PATCH is merged, never lost; ``enabled`` is a pause or resume.
    return _cron(container().schedule_service.update(principal, cron_id, body.changes))


@route(
    "/runs/crons/{cron_id}",
    "DELETE",
    summary="Delete a cron",
    responses={204: None},
    errors=(*AUTH, 404, 422, 503),
    tags=TAGS,
)
def delete_cron(principal: Principal, cron_id: str) -> Response:
    container().schedule_service.delete(principal, cron_id)
    return empty_response(204)


def _resolve(value: str) -> str | None:
    found = container().assistants.resolve(value)
    return None if found is None else found.assistant_id
