"""Shannon's ``/api/v1/schedules`` wire format: request parsing and response bodies.

Follows the seed document; where Shannon's server or ``shannon-sdk`` uses another
key, both are emitted (``id`` + ``schedule_id``, ``total`` + ``total_count``).
Every schedule key is always present (``null`` timestamps, ``0`` counters); run
items omit their empty optional fields, as the seed says. ``next_run_at`` and
``last_run_at`` carry the schedule's timezone offset, every other timestamp is UTC
``Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.domain.enums import OverlapPolicy, RunStatus
from chalicelib.domain.errors import InvalidRequestError
from chalicelib.domain.models import Run, Schedule, user_message_input
from chalicelib.services.schedules import ScheduleChanges, ScheduleDraft

SEED_FIELDS = (
    "name",
    "description",
    "cron_expression",
    "timezone",
    "task_query",
    "task_context",
    "max_budget_per_run_usd",
    "timeout_seconds",
)
# agentcron extensions, accepted on create and update and shown on read.
EXTENSION_FIELDS = ("overlap_policy", "webhook")
CREATE_FIELDS = frozenset(SEED_FIELDS + EXTENSION_FIELDS)
UPDATE_FIELDS = CREATE_FIELDS | {"clear_task_context"}

RUN_STATUS = {
    RunStatus.PENDING: "PENDING",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.SUCCESS: "COMPLETED",
    RunStatus.ERROR: "FAILED",
    RunStatus.TIMEOUT: "TIMEOUT",
    RunStatus.BUDGET_EXCEEDED: "BUDGET_EXCEEDED",
    RunStatus.SKIPPED: "SKIPPED",
}


class BodyError(InvalidRequestError):
    """A shape problem; the message is appended to ``Invalid request body``."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "Invalid request body" if detail is None else f"Invalid request body: {detail}"
        )


# --- timestamps ----------------------------------------------------------------------------


def utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local(value: datetime | None, tz: str) -> str | None:
    if value is None:
        return None
    from chalicelib.domain.cron import load_timezone

    return value.astimezone(load_timezone(tz)).isoformat(timespec="seconds")


def money(value: Decimal) -> float:
    return float(value)


# --- requests ------------------------------------------------------------------------------


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BodyError("expected a JSON object")
    return body


def _check_unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        raise BodyError(f"unknown field(s): {', '.join(unknown)}")


def _present(body: dict[str, Any], key: str) -> bool:
    return body.get(key) is not None


def _string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BodyError(f"{key}: must be a string")
    return value


def _required_string(body: dict[str, Any], key: str, missing: str) -> str:
    value = _string(body, key)
    if value is None or not value.strip():
        raise InvalidRequestError(missing, field=key)
    return value


def _context(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("task_context")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BodyError("task_context must be an object")
    return value


def _budget(body: dict[str, Any]) -> Decimal | None:
    value = body.get("max_budget_per_run_usd")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BodyError("max_budget_per_run_usd: must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:  # pragma: no cover - json never yields these
        raise BodyError("max_budget_per_run_usd: must be a number") from exc
    if not amount.is_finite():
        raise BodyError("max_budget_per_run_usd: must be a finite number")
    return amount


def _timeout(body: dict[str, Any]) -> int | None:
    value = body.get("timeout_seconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BodyError("timeout_seconds: must be an integer")
    return value


def _overlap(body: dict[str, Any]) -> OverlapPolicy | None:
    value = _string(body, "overlap_policy")
    if value is None:
        return None
    try:
        return OverlapPolicy(value)
    except ValueError as exc:
        raise BodyError("overlap_policy: must be 'skip' or 'allow'") from exc


def parse_create(body: Any, *, default_timezone: str = "UTC") -> ScheduleDraft:
    obj = _object(body)
    _check_unknown(obj, CREATE_FIELDS)
    # Shape problems of the required fields first, in Shannon's order: name, cron, query.
    name = _required_string(obj, "name", "Schedule name required")
    expression = _required_string(obj, "cron_expression", "Cron expression required")
    query = _required_string(obj, "task_query", "Task query required")
    description = _string(obj, "description") or ""
    timezone = _string(obj, "timezone")
    context = _context(obj)
    budget = _budget(obj)
    timeout = _timeout(obj)
    overlap = _overlap(obj)
    webhook = _string(obj, "webhook")
    return ScheduleDraft(
        name=name,
        cron_expression=expression,
        timezone=timezone if timezone else default_timezone,
        description=description,
        input=user_message_input(query),
        context=context or {},
        max_budget_per_run_usd=budget,
        timeout_seconds=timeout,
        overlap_policy=overlap or OverlapPolicy.SKIP,
        webhook=webhook,
    )


def parse_update(body: Any) -> ScheduleChanges:
    obj = _object(body)
    _check_unknown(obj, UPDATE_FIELDS)
    changes: dict[str, Any] = {}
    # Same rules as create: a given name, cron or query must not be blank.
    if _present(obj, "name"):
        changes["name"] = _required_string(obj, "name", "Schedule name required")
    if _present(obj, "cron_expression"):
        changes["cron_expression"] = _required_string(
            obj, "cron_expression", "Cron expression required"
        )
    if _present(obj, "task_query"):
        changes["input"] = user_message_input(
            _required_string(obj, "task_query", "Task query required")
        )
    description = _string(obj, "description")
    if description is not None:
        changes["description"] = description
    timezone = _string(obj, "timezone")
    if timezone is not None:
        changes["timezone"] = timezone
    context = _context(obj)
    clear = obj.get("clear_task_context")
    if clear is not None and not isinstance(clear, bool):
        raise BodyError("clear_task_context: must be a boolean")
    if clear:
        changes["context"] = {}
    elif context:  # {} means "no change", as in Shannon
        changes["context"] = context
    budget = _budget(obj)
    if budget is not None:
        changes["max_budget_per_run_usd"] = budget
    timeout = _timeout(obj)
    if timeout is not None:
        changes["timeout_seconds"] = timeout
    overlap = _overlap(obj)
    if overlap is not None:
        changes["overlap_policy"] = overlap
    if "webhook" in obj:
        changes["webhook"] = _string(obj, "webhook")
    return ScheduleChanges(**changes)


def parse_reason(body: Any) -> str | None:
    if body is None:
        return None
    obj = _object(body)
    _check_unknown(obj, frozenset({"reason"}))
    reason = _string(obj, "reason")
    if reason is not None and len(reason) > 1024:
        raise BodyError("reason: max 1024 characters")
    return reason or None


def parse_int_param(params: dict[str, str], key: str, default: int) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw, 10)
    except ValueError as exc:
        raise InvalidRequestError(f"Invalid {key}", field=key) from exc


# --- responses -----------------------------------------------------------------------------


def schedule_body(s: Schedule, next_run_at: datetime | None) -> dict[str, Any]:
    return {
        "id": s.id,
        "schedule_id": s.id,
        "name": s.name,
        "description": s.description,
        "cron_expression": s.cron_expression,
        "timezone": s.timezone,
        "task_query": s.query_text(),
        "task_context": s.context,
        "max_budget_per_run_usd": money(s.max_budget_per_run_usd),
        "timeout_seconds": s.timeout_seconds,
        "status": s.status.value,
        "created_at": utc(s.created_at),
        "updated_at": utc(s.updated_at),
        "next_run_at": local(next_run_at, s.timezone),
        "last_run_at": local(s.last_run_at, s.timezone),
        "total_runs": s.total_runs,
        "successful_runs": s.successful_runs,
        "failed_runs": s.failed_runs,
        "paused_at": utc(s.paused_at),
        "pause_reason": s.pause_reason,
        "paused_by": None if s.paused_by is None else s.paused_by.value,
        "user_id": s.user_id,
        "overlap_policy": s.overlap_policy.value,
        "webhook": s.webhook,
    }


def run_body(run: Run) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workflow_id": run.run_id,
        "query": run.query,
        "status": RUN_STATUS[run.status],
    }
    optional: dict[str, Any] = {
        "result": run.result,
        "error_message": run.error_message,
        "model_used": run.model_used,
        "provider": run.provider,
        "webhook_status": run.webhook_status,
    }
    body.update({k: v for k, v in optional.items() if v})
    body["total_tokens"] = run.usage.total_tokens
    body["total_cost_usd"] = money(run.usage.cost_usd)
    if run.duration_ms is not None:
        body["duration_ms"] = run.duration_ms
    body["triggered_at"] = utc(run.scheduled_time)
    if run.started_at is not None:
        body["started_at"] = utc(run.started_at)
    if run.completed_at is not None:
        body["completed_at"] = utc(run.completed_at)
    body["trigger"] = run.trigger.value
    return body
