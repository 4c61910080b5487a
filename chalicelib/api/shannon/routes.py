"""Shannon's Schedules API (``/api/v1/schedules``), as Shannon's public REST documentation
(docs.shannon.run, "Schedules") describes it.

Views parse and format only: each one receives the caller, typed path values and
validated models (see :class:`chalicelib.api.http.Facade`), calls one service method
and answers through a response model of :mod:`chalicelib.api.shannon.wire`.

Errors are ``{"error": "<message>"}`` with the documented status codes, from one table
(:data:`ERRORS`): 400 validation, 401 credentials, 403 schedule limit, 404 not found
(foreign and malformed ids included), 405 method not allowed, 409 pause/resume state
conflicts, 503 when AWS refused a write (which was rolled back). Beyond Shannon:
``/preview`` endpoints and ``/{id}/trigger`` (run now), on paths Shannon does not use.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.http import (
    MAX_RESPONSE_BYTES,
    BadJSONError,
    ErrorTable,
    Facade,
    MethodNotAllowedError,
    PathParam,
    RouteNotFoundError,
    credentials,
    json_response,
    payload_bytes,
    quote,
    within,
)
from chalicelib.domain import errors
from chalicelib.domain.enums import RunStatus

if TYPE_CHECKING:
    from chalicelib.api.shannon import wire as wire_types
    from chalicelib.dependencies import Container
    from chalicelib.domain.models import Principal, Schedule
    from chalicelib.services.usage import UsageReport


def container() -> Container:
    from chalicelib.dependencies import container

    return container()


def _wire() -> Any:
    from chalicelib.api.shannon import wire

    return wire


def _envelope(status: int, message: str, exc: BaseException) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, errors.AuthenticationError) and exc.missing:
        headers["WWW-Authenticate"] = 'Bearer realm="agentcron"'
    if isinstance(exc, MethodNotAllowedError):
        headers["Allow"] = ", ".join(exc.allowed)
    return json_response({"error": message}, status, headers)


def _budget(exc: errors.BudgetOutOfRangeError) -> tuple[int, str]:
    if exc.value <= 0:
        return 400, "Budget must be greater than 0"
    return 400, f"Budget exceeds limit: ${exc.value:.2f} > ${exc.maximum:.2f}"


ERRORS = ErrorTable(
    {
        BadJSONError: lambda _: (400, "Invalid request body"),
        errors.AuthenticationError: lambda e: (
            401,
            "Authentication required" if e.missing else "Invalid token",
        ),
        errors.IntervalTooShortError: lambda e: (
            400,
            f"Interval too short: must be at least {e.min_minutes} minutes",
        ),
        errors.InvalidCronError: lambda e: (
            400,
            f"Invalid cron expression: {quote(e.reason, 200)}",
        ),
        errors.InvalidTimezoneError: lambda e: (400, f"Invalid timezone: {quote(e.timezone)}"),
        errors.BudgetOutOfRangeError: _budget,
        errors.TimeoutOutOfRangeError: lambda e: (
            400,
            f"Timeout must be between 1 and {e.maximum} seconds",
        ),
        errors.InvalidRequestError: lambda e: (400, e.message),
        errors.ScheduleLimitReachedError: lambda e: (
            403,
            f"Schedule limit reached: {e.count}/{e.limit} schedules",
        ),
        errors.ScheduleNotFoundError: lambda _: (404, "Schedule not found"),
        errors.NotFoundError: lambda _: (404, "Not found"),
        RouteNotFoundError: lambda _: (404, "Not found"),
        MethodNotAllowedError: lambda _: (405, "Method not allowed"),
        errors.SchedulePausedBySystemError: lambda e: (
            409,
            f"Schedule paused by the system ({e.reason}); resume it before running it",
        ),
        errors.ScheduleAlreadyPausedError: lambda _: (409, "Schedule already paused"),
        errors.ScheduleNotPausedError: lambda _: (409, "Schedule not paused"),
        errors.ConflictError: lambda _: (409, "Schedule was modified concurrently; retry"),
        errors.SchedulingUnavailableError: lambda _: (503, "Scheduling service unavailable"),
    },
    validation=lambda found: (400, _wire().message(found)),
    envelope=_envelope,
    internal=(500, "Internal server error"),
)


def _principal(headers: Mapping[str, str]) -> Principal:
    return container().api_keys.authenticate(credentials(headers))


def _schedule_id(raw: str) -> str:
    """Ids are UUIDs; anything else is a plain 404 without touching DynamoDB."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise errors.ScheduleNotFoundError(raw) from None


bp = Blueprint(__name__)
facade = Facade(
    title="agentcron — Shannon schedules API",
    blueprint=bp,
    prefix="/api/v1",
    wire="chalicelib.api.shannon.wire",
    errors=ERRORS,
    authenticate=_principal,
    path_params={
        "schedule_id": PathParam(
            _schedule_id,
            {"type": "string"},
            "The schedule's id (a UUID; anything else is 404).",
        )
    },
    error_model="ErrorBody",
)
route = facade.route
COMMON = (400, 401)
TAGS = ("schedules",)


@route(
    "/schedules",
    "POST",
    summary="Create a schedule",
    body="ScheduleCreate",
    responses={201: "ScheduleCreated"},
    errors=(*COMMON, 403, 503),
    tags=TAGS,
    links={
        name: {"schedule_id": "$response.body#/schedule_id"}
        for name in (
            "get_schedule",
            "update_schedule",
            "pause_schedule",
            "resume_schedule",
            "list_runs",
            "preview_schedule",
            "delete_schedule",
        )
    },
)
def create_schedule(principal: Principal, body: wire_types.ScheduleCreate) -> Response:
    wire = _wire()
    service = container().schedule_service
    schedule = service.create(principal, body.draft())
    created = wire.ScheduleCreated(
        schedule_id=schedule.id,
        id=schedule.id,
        message="Schedule created successfully",
        next_run_at=wire.local(service.next_run_at(schedule), schedule.timezone),
        webhook_secret=schedule.webhook_secret,
        warnings=service.cap_warnings(principal, schedule) or None,
    )
    return json_response(_without_empty_warnings(created), 201)


def _without_empty_warnings(model: Any) -> dict[str, Any]:
    """``warnings`` appears only when there is one (Shannon's clients never see it otherwise)."""
    body: dict[str, Any] = model.model_dump(mode="json")
    if not body.get("warnings"):
        body.pop("warnings", None)
    return body


@route(
    "/schedules",
    "GET",
    summary="List schedules, newest first",
    query="ScheduleListQuery",
    responses={200: "ScheduleList"},
    errors=COMMON,
    tags=TAGS,
)
def list_schedules(principal: Principal, query: wire_types.ScheduleListQuery) -> Response:
    wire = _wire()
    service = container().schedule_service
    schedules = service.list_for_user(principal)
    if query.status in ("ACTIVE", "PAUSED"):
        schedules = [s for s in schedules if s.status.value == query.status]
    start = (query.page - 1) * query.size
    now = container().clock.now()
    items = [
        wire.ScheduleOut.of(s, service.next_run_at(s, now)).model_dump(mode="json")
        for s in schedules[start : start + query.size]
    ]
    return json_response(
        {
            "schedules": within(items, _abridge(wire.SCHEDULE_CLIPPABLE)),
            "total": len(schedules),
            "total_count": len(schedules),
            "page": query.page,
            "page_size": query.size,
        }
    )


@route(
    "/schedules/preview",
    "POST",
    summary="agentcron: preview the next fires of an expression",
    body="PreviewRequest",
    responses={200: "Preview"},
    errors=COMMON,
    tags=("preview",),
)
def preview_expression(body: wire_types.PreviewRequest) -> Response:
    limits = container().schedule_service.limits
    budget = (
        limits.default_budget_usd
        if body.max_budget_per_run_usd is None
        else Decimal(repr(body.max_budget_per_run_usd))
    )
    if not 0 < budget <= limits.max_budget_usd:  # the same rule as create's
        raise errors.BudgetOutOfRangeError(budget, limits.max_budget_usd)
    return _preview(
        body.cron_expression, body.timezone or "UTC", body.count or 5, None, None, budget, []
    )


@route(
    "/schedules/{schedule_id}",
    "GET",
    summary="Get a schedule",
    responses={200: "ScheduleOut"},
    errors=(401, 404),
    tags=TAGS,
)
def get_schedule(principal: Principal, schedule_id: str) -> Response:
    service = container().schedule_service
    schedule = service.get(principal, schedule_id)
    out = _wire().ScheduleOut.of(schedule, service.next_run_at(schedule))
    return json_response(out.model_dump(mode="json"))


@route(
    "/schedules/{schedule_id}",
    "PUT",
    summary="Update a schedule (partial)",
    body="ScheduleUpdate",
    responses={200: "ScheduleUpdated"},
    errors=(*COMMON, 404, 409, 503),
    tags=TAGS,
)
def update_schedule(
    principal: Principal, schedule_id: str, body: wire_types.ScheduleUpdate
) -> Response:
    wire = _wire()
    service = container().schedule_service
    schedule = service.update(principal, schedule_id, body.changes())
    updated = wire.ScheduleUpdated(
        success=True,
        message="Schedule updated successfully",
        next_run_at=wire.local(service.next_run_at(schedule), schedule.timezone),
        warnings=service.cap_warnings(principal, schedule) or None,
    )
    return json_response(_without_empty_warnings(updated))


@route(
    "/schedules/{schedule_id}",
    "DELETE",
    summary="Delete a schedule permanently",
    responses={200: "ScheduleDeleted"},
    errors=(401, 404, 503),
    tags=TAGS,
)
def delete_schedule(principal: Principal, schedule_id: str) -> Response:
    container().schedule_service.delete(principal, schedule_id)
    deleted = _wire().ScheduleDeleted(success=True, message="Schedule deleted successfully")
    return json_response(deleted.model_dump(mode="json"))


@route(
    "/schedules/{schedule_id}/pause",
    "POST",
    summary="Pause a schedule",
    body="PauseRequest",
    body_optional=True,
    responses={200: "SchedulePaused"},
    errors=(*COMMON, 404, 409, 503),
    tags=TAGS,
)
def pause_schedule(
    principal: Principal, schedule_id: str, body: wire_types.PauseRequest | None
) -> Response:
    wire = _wire()
    reason = None if body is None else body.reason
    schedule = container().schedule_service.pause(principal, schedule_id, reason=reason or None)
    paused = wire.SchedulePaused(
        success=True,
        message="Schedule paused successfully",
        paused_at=wire.utc_or_none(schedule.paused_at),
    )
    return json_response(paused.model_dump(mode="json"))


@route(
    "/schedules/{schedule_id}/resume",
    "POST",
    summary="Resume a paused schedule (missed fires are not replayed)",
    body="PauseRequest",
    body_optional=True,
    responses={200: "ScheduleResumed"},
    errors=(*COMMON, 404, 409, 503),
    tags=TAGS,
)
def resume_schedule(principal: Principal, schedule_id: str) -> Response:
    # The reason is accepted (and validated) as Shannon documents; a resume clears it.
    wire = _wire()
    service = container().schedule_service
    schedule = service.resume(principal, schedule_id)
    resumed = wire.ScheduleResumed(
        success=True,
        message="Schedule resumed successfully",
        next_run_at=wire.local(service.next_run_at(schedule), schedule.timezone),
    )
    return json_response(resumed.model_dump(mode="json"))


@route(
    "/schedules/{schedule_id}/runs",
    "GET",
    summary="Run history, newest first (skipped fires included)",
    query="RunListQuery",
    responses={200: "RunList"},
    errors=(*COMMON, 404),
    tags=TAGS,
)
def list_runs(principal: Principal, schedule_id: str, query: wire_types.RunListQuery) -> Response:
    wire = _wire()
    schedule, runs = container().run_service.history(
        principal, schedule_id, offset=(query.page - 1) * query.size, limit=query.size
    )
    body = {
        "runs": within([wire.RunItem.of(r) for r in runs], _abridge(wire.RUN_CLIPPABLE)),
        "total_count": schedule.history_count,
        "total": schedule.history_count,
        "page": query.page,
        "page_size": query.size,
    }
    return json_response(body)


@route(
    "/schedules/{schedule_id}/preview",
    "GET",
    summary="agentcron: the next fires of a schedule",
    query="PreviewQuery",
    responses={200: "Preview"},
    errors=(*COMMON, 404),
    tags=("preview",),
)
def preview_schedule(
    principal: Principal, schedule_id: str, query: wire_types.PreviewQuery
) -> Response:
    from chalicelib.services.usage import HISTORY_RUNS

    schedule, history = container().run_service.history(
        principal, schedule_id, offset=0, limit=HISTORY_RUNS
    )
    return _preview(
        schedule.cron_expression,
        schedule.timezone,
        query.count,
        schedule.id,
        schedule.end_time,
        schedule.max_budget_per_run_usd,
        history,
        schedule,
    )


@route(
    "/schedules/{schedule_id}/trigger",
    "POST",
    summary="agentcron: run now (same budget, timeout and overlap rules)",
    body="TriggerRequest",
    body_optional=True,
    responses={202: "RunStarted"},
    errors=(*COMMON, 404, 409),
    tags=TAGS,
)
def trigger_schedule(principal: Principal, schedule_id: str) -> Response:
    run_id = container().run_service.trigger_now(principal, schedule_id)
    started = _wire().RunStarted(
        success=True,
        message="Run started",
        workflow_id=run_id,
        run_id=run_id,
        schedule_id=schedule_id,
    )
    return json_response(started.model_dump(mode="json"), 202)


@route(
    "/usage",
    "GET",
    summary="agentcron: the caller's spend, tokens and runs by status; month to date; caps",
    query="UsageQuery",
    responses={200: "Usage"},
    errors=COMMON,
    tags=("usage",),
)
def usage(principal: Principal, query: wire_types.UsageQuery) -> Response:
    service = container().usage_service
    first, last = service.window(query.from_, query.to, query.days)
    return json_response(usage_body(service.usage(principal, first, last, query.group_by)))


def usage_body(report: UsageReport) -> dict[str, Any]:
    """The answer to ``GET /usage``; a 400 when it would not fit in one Lambda answer.

    Its size grows with (schedules × days) of the window under ``group_by=schedule``
    (each schedule ever run in it, deleted ones included, carries its daily costs), so
    unlike the lists it cannot be paged; the client is told to ask for fewer days.
    """
    body: dict[str, Any] = (
        _wire()
        .Usage.model_validate(
            {
                "from": report.first_day.isoformat(),
                "to": report.last_day.isoformat(),
                "group_by": report.group_by,
                "month": report.month,
                "month_to_date_usd": float(report.month_to_date_usd),
                "total": _totals(report.total),
                "groups": [_group(g, report.group_by) for g in report.groups],
                "caps": [
                    {
                        "scope": u.cap.scope.value,
                        "monthly_usd": float(u.cap.monthly_usd),
                        "used_usd": float(u.used_usd),
                        "remaining_usd": float(u.remaining_usd),
                        "exhausted": u.exhausted,
                    }
                    for u in report.caps
                ],
            }
        )
        .model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    if payload_bytes(body) > MAX_RESPONSE_BYTES:
        raise errors.InvalidRequestError(
            f"the usage of {report.first_day} to {report.last_day} grouped by "
            f"{report.group_by} is too large for one answer: ask for fewer days",
            field="from",
        )
    return body


def _totals(rollup: Any) -> dict[str, Any]:
    wire = _wire()
    runs: dict[str, int] = {}
    for status, count in rollup.runs.items():
        name = wire.RUN_STATUS[RunStatus(status)]
        runs[name] = runs.get(name, 0) + count
    return {
        "cost_usd": float(rollup.cost_usd),
        "input_tokens": rollup.input_tokens,
        "output_tokens": rollup.output_tokens,
        "total_tokens": rollup.input_tokens + rollup.output_tokens,
        "runs": runs,
    }


def _group(group: Any, group_by: str) -> dict[str, Any]:
    out = _totals(group.usage)
    if group_by == "day":
        out["date"] = group.key
    else:
        out["schedule_id"] = group.key
        out["month_to_date_usd"] = float(group.month_to_date_usd)
        out["daily"] = [
            {"date": day, "cost_usd": float(cost)} for day, cost in sorted(group.daily.items())
        ]
    return out


def _abridge(fields: tuple[str, ...]) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    return lambda item, max_bytes: _wire().abridged(item, max_bytes, fields)


def _preview(
    expression: str,
    timezone: str,
    count: int,
    schedule_id: str | None,
    end_time: Any,
    budget: Decimal,
    history: list[Any],
    schedule: Schedule | None = None,
) -> Response:
    service = container().schedule_service
    compiled, fires = service.preview(expression, timezone, count)
    wire = _wire()
    if schedule is not None:
        policy = wire.FailurePolicy.of(schedule)
    else:
        limits = service.limits
        policy = wire.FailurePolicy(
            max_attempts_per_call=limits.default_max_attempts_per_call,
            initial_backoff_seconds=limits.default_initial_backoff_seconds,
            pause_after_failures=limits.default_pause_after_failures,
        )
    if end_time is not None:
        fires = [f for f in fires if f <= end_time]
    forecast = container().usage_service.forecast(expression, timezone, budget, end_time, history)
    preview = wire.Preview(
        schedule_id=schedule_id,
        cron_expression=expression,
        timezone=timezone,
        description=compiled.describe(),
        next_run_times=[f.isoformat(timespec="seconds") for f in fires],
        eventbridge_expressions=list(compiled.eventbridge),
        min_interval_minutes=compiled.min_interval().total_seconds() / 60,
        failure_policy=policy,
        forecast_30d={
            "fires": forecast.fires,
            "max_cost_usd": float(forecast.max_cost_usd),
            "expected_cost_usd": (
                None if forecast.expected_cost_usd is None else float(forecast.expected_cost_usd)
            ),
        },
    )
    hidden = {"schedule_id"} if schedule_id is None else None
    return json_response(preview.model_dump(mode="json", exclude=hidden))


facade.serve_document()
facade.install_fallbacks()
