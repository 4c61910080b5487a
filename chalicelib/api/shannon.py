"""Shannon's Schedules API (``/api/v1/schedules``), as the seed document describes it.

Errors are ``{"error": "<message>"}`` with the seed's status codes: 400 validation,
401 credentials, 403 schedule limit, 404 not found (foreign and malformed ids
included), 409 pause/resume state conflicts, 503 when AWS refused a write (which
was rolled back). Beyond the seed: ``/preview`` endpoints and ``/{id}/trigger``
(run now), on paths Shannon does not use.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.http import (
    ANY_CONTENT_TYPE,
    BadJSONError,
    ErrorTranslator,
    credentials,
    handles_errors,
    json_response,
    request_body,
)
from chalicelib.domain import errors
from chalicelib.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib import dependencies
    from chalicelib.api import shannon_wire as wire
    from chalicelib.domain.models import Principal
else:
    # Imported on the first request, not with ``app`` (see chalicelib.lazy).
    wire = lazy_module("chalicelib.api.shannon_wire")
    dependencies = lazy_module("chalicelib.dependencies")


def container() -> dependencies.Container:
    return dependencies.container()


bp = Blueprint(__name__)

MAX_PAGE_SIZE = 100
MAX_PREVIEW = 50


class ShannonErrors(ErrorTranslator):
    def translate(self, exc: Exception) -> Response | None:
        status, message = _status_and_message(exc)
        if status is None:
            return None
        headers: dict[str, str] = {}
        if isinstance(exc, errors.AuthenticationError) and exc.missing:
            headers["WWW-Authenticate"] = 'Bearer realm="agentcron"'
        return json_response({"error": message}, status, headers)

    def internal_error(self) -> Response:
        return json_response({"error": "Internal server error"}, 500)


def _status_and_message(exc: Exception) -> tuple[int | None, str]:
    if isinstance(exc, BadJSONError):
        return 400, "Invalid request body"
    if isinstance(exc, errors.AuthenticationError):
        return 401, "Authentication required" if exc.missing else "Invalid token"
    if isinstance(exc, errors.IntervalTooShortError):
        return 400, f"Interval too short: must be at least {exc.min_minutes} minutes"
    if isinstance(exc, errors.InvalidCronError):
        return 400, f"Invalid cron expression: {exc.reason}"
    if isinstance(exc, errors.BudgetOutOfRangeError):
        if exc.value <= 0:
            return 400, "Budget must be greater than 0"
        return 400, f"Budget exceeds limit: ${exc.value:.2f} > ${exc.maximum:.2f}"
    if isinstance(exc, errors.TimeoutOutOfRangeError):
        return 400, f"Timeout must be between 1 and {exc.maximum} seconds"
    if isinstance(exc, errors.InvalidRequestError):
        return 400, exc.message
    if isinstance(exc, errors.ScheduleLimitReachedError):
        return 403, f"Schedule limit reached: {exc.count}/{exc.limit} schedules"
    if isinstance(exc, errors.ScheduleNotFoundError):
        return 404, "Schedule not found"
    if isinstance(exc, errors.ScheduleAlreadyPausedError):
        return 409, "Schedule already paused"
    if isinstance(exc, errors.ScheduleNotPausedError):
        return 409, "Schedule not paused"
    if isinstance(exc, errors.ConflictError):
        return 409, "Schedule was modified concurrently; retry"
    if isinstance(exc, errors.SchedulingUnavailableError):
        return 503, "Scheduling service unavailable"
    return None, ""


handled = handles_errors(ShannonErrors())


def _principal() -> Principal:
    return container().api_keys.authenticate(credentials(bp.current_request.headers))


def _schedule_id(raw: str) -> str:
    """Ids are UUIDs; anything else is a plain 404 without touching DynamoDB."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise errors.ScheduleNotFoundError(raw) from None


def _params() -> dict[str, str]:
    return dict(bp.current_request.query_params or {})


@bp.route("/schedules", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def create_schedule() -> Response:
    principal = _principal()
    draft = wire.parse_create(request_body(bp.current_request))
    service = container().schedule_service
    schedule = service.create(principal, draft)
    next_run = service.next_run_at(schedule)
    return json_response(
        {
            "schedule_id": schedule.id,
            "id": schedule.id,
            "message": "Schedule created successfully",
            "next_run_at": wire.local(next_run, schedule.timezone),
        },
        201,
    )


@bp.route("/schedules", methods=["GET"])
@handled
def list_schedules() -> Response:
    principal = _principal()
    params = _params()
    page = wire.parse_int_param(params, "page", 1)
    if page < 1:
        raise errors.InvalidRequestError("Invalid page", field="page")
    page_size = min(max(wire.parse_int_param(params, "page_size", 50), 1), MAX_PAGE_SIZE)
    status = (params.get("status") or "").strip().upper()
    if status not in ("", "ALL", "ACTIVE", "PAUSED"):
        raise errors.InvalidRequestError("Invalid status filter", field="status")
    service = container().schedule_service
    schedules = service.list_for_user(principal)
    if status in ("ACTIVE", "PAUSED"):
        schedules = [s for s in schedules if s.status.value == status]
    start = (page - 1) * page_size
    window = schedules[start : start + page_size]
    now = container().clock.now()
    return json_response(
        {
            "schedules": [wire.schedule_body(s, service.next_run_at(s, now)) for s in window],
            "total": len(schedules),
            "total_count": len(schedules),
            "page": page,
            "page_size": page_size,
        }
    )


@bp.route("/schedules/preview", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def preview_expression() -> Response:
    _principal()
    body = request_body(bp.current_request)
    if not isinstance(body, dict):
        raise wire.BodyError("expected a JSON object")
    unknown = sorted(set(body) - {"cron_expression", "timezone", "count"})
    if unknown:
        raise wire.BodyError(f"unknown field(s): {', '.join(unknown)}")
    expression = body.get("cron_expression")
    if not isinstance(expression, str) or not expression.strip():
        raise errors.InvalidRequestError("Cron expression required", field="cron_expression")
    timezone = body.get("timezone") or "UTC"
    if not isinstance(timezone, str):
        raise wire.BodyError("timezone: must be a string")
    count = body.get("count", 5)
    if isinstance(count, bool) or not isinstance(count, int):
        raise wire.BodyError("count: must be an integer")
    return _preview(expression, timezone, count, schedule_id=None)


@bp.route("/schedules/{schedule_id}", methods=["GET"])
@handled
def get_schedule(schedule_id: str) -> Response:
    principal = _principal()
    service = container().schedule_service
    schedule = service.get(principal, _schedule_id(schedule_id))
    return json_response(wire.schedule_body(schedule, service.next_run_at(schedule)))


@bp.route("/schedules/{schedule_id}", methods=["PUT"], content_types=ANY_CONTENT_TYPE)
@handled
def update_schedule(schedule_id: str) -> Response:
    principal = _principal()
    sid = _schedule_id(schedule_id)
    changes = wire.parse_update(request_body(bp.current_request))
    service = container().schedule_service
    schedule = service.update(principal, sid, changes)
    return json_response(
        {
            "success": True,
            "message": "Schedule updated successfully",
            "next_run_at": wire.local(service.next_run_at(schedule), schedule.timezone),
        }
    )


@bp.route("/schedules/{schedule_id}", methods=["DELETE"])
@handled
def delete_schedule(schedule_id: str) -> Response:
    principal = _principal()
    container().schedule_service.delete(principal, _schedule_id(schedule_id))
    return json_response({"success": True, "message": "Schedule deleted successfully"})


@bp.route("/schedules/{schedule_id}/pause", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def pause_schedule(schedule_id: str) -> Response:
    principal = _principal()
    sid = _schedule_id(schedule_id)
    reason = wire.parse_reason(request_body(bp.current_request, allow_empty=True))
    schedule = container().schedule_service.pause(principal, sid, reason=reason)
    return json_response(
        {
            "success": True,
            "message": "Schedule paused successfully",
            "paused_at": wire.utc(schedule.paused_at),
        }
    )


@bp.route("/schedules/{schedule_id}/resume", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def resume_schedule(schedule_id: str) -> Response:
    principal = _principal()
    sid = _schedule_id(schedule_id)
    # The reason is accepted (and validated) as the seed shows; a resume clears pause_reason.
    wire.parse_reason(request_body(bp.current_request, allow_empty=True))
    service = container().schedule_service
    schedule = service.resume(principal, sid)
    return json_response(
        {
            "success": True,
            "message": "Schedule resumed successfully",
            "next_run_at": wire.local(service.next_run_at(schedule), schedule.timezone),
        }
    )


@bp.route("/schedules/{schedule_id}/runs", methods=["GET"])
@handled
def list_runs(schedule_id: str) -> Response:
    principal = _principal()
    sid = _schedule_id(schedule_id)
    params = _params()
    page = wire.parse_int_param(params, "page", 1)
    if page < 1:
        raise errors.InvalidRequestError("Invalid page", field="page")
    page_size = min(max(wire.parse_int_param(params, "page_size", 20), 1), MAX_PAGE_SIZE)
    schedule, runs = container().run_service.history(
        principal, sid, offset=(page - 1) * page_size, limit=page_size
    )
    return json_response(
        {
            "runs": [wire.run_body(r) for r in runs],
            "total_count": schedule.history_count,
            "total": schedule.history_count,
            "page": page,
            "page_size": page_size,
        }
    )


@bp.route("/schedules/{schedule_id}/preview", methods=["GET"])
@handled
def preview_schedule(schedule_id: str) -> Response:
    principal = _principal()
    schedule = container().schedule_service.get(principal, _schedule_id(schedule_id))
    count = wire.parse_int_param(_params(), "count", 5)
    return _preview(
        schedule.cron_expression,
        schedule.timezone,
        count,
        schedule_id=schedule.id,
        end_time=schedule.end_time,
    )


@bp.route("/schedules/{schedule_id}/trigger", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def trigger_schedule(schedule_id: str) -> Response:
    principal = _principal()
    sid = _schedule_id(schedule_id)
    body = request_body(bp.current_request, allow_empty=True)
    if body is not None and (not isinstance(body, dict) or body):
        raise wire.BodyError("this endpoint takes no body")
    run_id = container().run_service.trigger_now(principal, sid)
    return json_response(
        {
            "success": True,
            "message": "Run started",
            "workflow_id": run_id,
            "run_id": run_id,
            "schedule_id": sid,
        },
        202,
    )


def _preview(
    expression: str,
    timezone: str,
    count: int,
    *,
    schedule_id: str | None,
    end_time: Any = None,
) -> Response:
    if not 1 <= count <= MAX_PREVIEW:
        raise errors.InvalidRequestError(
            f"count must be between 1 and {MAX_PREVIEW}", field="count"
        )
    compiled, fires = container().schedule_service.preview(expression, timezone, count)
    if end_time is not None:
        fires = [f for f in fires if f <= end_time]
    body: dict[str, Any] = {
        "cron_expression": expression,
        "timezone": timezone,
        "description": compiled.describe(),
        "next_run_times": [f.isoformat(timespec="seconds") for f in fires],
        "eventbridge_expressions": list(compiled.eventbridge),
        "min_interval_minutes": compiled.min_interval().total_seconds() / 60,
    }
    if schedule_id is not None:
        body = {"schedule_id": schedule_id, **body}
    return json_response(body)
