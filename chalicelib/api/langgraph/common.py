"""The LangGraph façade's Blueprint, error table, authentication and path parameters.

**Errors** are ``{"detail": "<message>"}`` with the statuses ``langgraph_sdk`` maps to
its exception classes, from one table (:data:`ERRORS`): 422 for validation, malformed
ids and bad JSON (``Invalid JSON in request body``), 404 ``Not Found`` for look-ups
(another caller's object included: every key holds the tenant and user), 405 for a
method a path does not serve, 409 for conflicts, 400 ``failed to find next date`` for a
schedule that never fires and ``Request body cannot be empty`` for ``PATCH {}``, 403
when the per-user schedule limit is reached (``PermissionDeniedError``: the request is
well-formed but not allowed now, like the Shannon façade's 403; a 429 would invite the
retries meant for throttling), 503 when AWS refused a write that was then rolled back.
Nothing a client sends yields a 500.

**Authentication**: ``x-api-key`` (what the SDK sends) or ``Authorization: Bearer``.
No credential header at all is 403 ``Missing authentication headers``; a credential
that is not a valid key — including an ``Authorization`` header of another scheme —
is 401 ``Invalid token``, as LangSmith auth answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from chalice.app import Blueprint, Response

from chalicelib.api.http import (
    BadJSONError,
    ErrorTable,
    Facade,
    MethodNotAllowedError,
    PathParam,
    RouteNotFoundError,
    WireError,
    credentials,
    json_response,
    quote,
)
from chalicelib.domain import errors

if TYPE_CHECKING:
    from chalicelib.dependencies import Container
    from chalicelib.domain.models import Principal

# Any of these headers means the caller tried to authenticate (LangSmith's list): a
# request without a usable key then gets 401 "Invalid token", not 403 "Missing ...".
AUTH_HEADERS = ("authorization", "x-api-key", "x-tenant-id", "x-service-key", "cookie", "x-user-id")

GENERIC_CRON_REASON = (
    "Invalid cron schedule. Ensure the schedule uses the standard cron format "
    "(minute hour day_of_month month day_of_week). Example: '*/5 * * * *' for every 5 minutes."
)
THREAD_NOT_FOUND_FOR_CRON = (
    "Thread with ID '{}' not found. Please verify the ID is correct and the thread "
    "hasn't been deleted or expired."
)
# The service words sizes with the domain's (Shannon-flavoured) field names.
_FIELD_WORDS = {"task_context": "context", "task_query": "input", "Task query": "input"}


def container() -> Container:
    from chalicelib.dependencies import container

    return container()


def wire(name: str = "") -> Any:
    """The wire package (or one of its modules), imported on first use."""
    import importlib

    return importlib.import_module("chalicelib.api.langgraph.wire" + (f".{name}" if name else ""))


def _cron_detail(e: errors.InvalidCronError) -> str:
    """The reference's wording for syntax errors; our specific reason for valid cron that
    agentcron refuses (the reference would accept it, so its text would mislead)."""
    reason = quote(e.reason, 200) if e.unsupported else GENERIC_CRON_REASON
    return f"Invalid cron schedule: '{quote(e.expression)}'. Reason: {reason}"


def _langgraph_words(e: errors.InvalidRequestError) -> str:
    message = e.message
    for ours, theirs in _FIELD_WORDS.items():
        message = message.replace(ours, theirs)
    return message


def _envelope(status: int, message: str, exc: BaseException) -> Response:
    headers = {"Allow": ", ".join(exc.allowed)} if isinstance(exc, MethodNotAllowedError) else {}
    return json_response({"detail": message}, status, headers)


ERRORS = ErrorTable(
    {
        WireError: lambda e: (e.status, e.detail),
        BadJSONError: lambda _: (422, "Invalid JSON in request body"),
        errors.AuthenticationError: lambda e: (
            (403, "Missing authentication headers") if e.missing else (401, "Invalid token")
        ),
        # Cron engine and limits (subclasses before their bases: the MRO decides).
        errors.CronNeverFiresError: lambda _: (400, "failed to find next date"),
        errors.InvalidCronError: lambda e: (422, _cron_detail(e)),
        errors.IntervalTooShortError: lambda e: (
            422,
            f"Invalid cron schedule: '{quote(e.expression)}'. Reason: it fires every "
            f"{e.actual_minutes:g} minutes; the minimum interval on this deployment is "
            f"{e.min_minutes} minutes.",
        ),
        errors.InvalidTimezoneError: lambda e: (
            422,
            f"Invalid timezone: '{quote(e.timezone)}'. "
            "Use IANA timezone format (e.g. 'America/New_York').",
        ),
        errors.BudgetOutOfRangeError: lambda e: (
            422,
            f"max_budget_per_run_usd: must be greater than 0 and at most {e.maximum}",
        ),
        errors.TimeoutOutOfRangeError: lambda e: (
            422,
            f"timeout_seconds: must be between 1 and {e.maximum}",
        ),
        errors.InvalidRequestError: lambda e: (422, _langgraph_words(e)),
        errors.ScheduleLimitReachedError: lambda e: (
            403,
            f"Cron limit reached: {e.count}/{e.limit} crons and schedules per user",
        ),
        # Look-ups.
        errors.AssistantNotFoundError: lambda e: (
            404,
            f"Assistant '{quote(e.assistant_id)}' not found",
        ),
        errors.ThreadNotFoundError: lambda e: (404, f"Thread with ID {e.thread_id} not found"),
        errors.NotFoundError: lambda _: (404, "Not Found"),
        RouteNotFoundError: lambda _: (404, "Not Found"),
        MethodNotAllowedError: lambda _: (405, "Method Not Allowed"),
        # State.
        errors.ConflictError: lambda _: (409, "The cron was modified concurrently; retry"),
        errors.SchedulingUnavailableError: lambda _: (
            503,
            "Scheduling service unavailable; nothing was changed",
        ),
        # The same errors in another operation's words.
        ("create_thread_cron", errors.ThreadNotFoundError): lambda e: (
            404,
            THREAD_NOT_FOUND_FOR_CRON.format(e.thread_id),
        ),
        ("update_cron", errors.ScheduleNotFoundError): lambda e: (
            404,
            f"Cron '{e.schedule_id}' not found",
        ),
        errors.ThreadAlreadyExistsError: lambda e: (
            409,
            f"Thread with ID {e.thread_id} already exists",
        ),
        ("get_thread_run", errors.ThreadNotFoundError): lambda _: (404, "Not Found"),
    },
    validation=lambda found: wire().message(found),
    envelope=_envelope,
    internal=(500, "Internal Server Error"),
)


def authenticate(headers: Mapping[str, str]) -> Principal:
    key = credentials(headers)
    if key is None and any(name in headers for name in AUTH_HEADERS):
        raise errors.AuthenticationError(missing=False)
    return container().api_keys.authenticate(key)


def invalid(detail: str) -> WireError:
    return WireError(422, detail)


def canonical_uuid(raw: Any) -> str | None:
    """The lower-case hyphenated form of a UUID string, or None when it is not one."""
    if not isinstance(raw, str):
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def uuid_param(raw: Any, what: str) -> str:
    """A path or body id; 422 ``Invalid <what> ID: must be a UUID`` otherwise."""
    value = canonical_uuid(raw)
    if value is None:
        raise invalid(f"Invalid {what} ID: must be a UUID")
    return value


def _uuid(what: str) -> PathParam:
    return PathParam(
        lambda raw: uuid_param(raw, what),
        {"type": "string", "format": "uuid"},
        f"The {what}'s id (a UUID).",
    )


bp = Blueprint(__name__)
facade = Facade(
    title="agentcron — LangGraph cron API",
    blueprint=bp,
    prefix="",
    wire="chalicelib.api.langgraph.wire",
    errors=ERRORS,
    authenticate=authenticate,
    path_params={
        "cron_id": _uuid("cron"),
        "thread_id": _uuid("thread"),
        "run_id": _uuid("run"),
        # The SDK percent-encodes path parameters; a graph name may contain any character.
        "assistant_id": PathParam(
            unquote, {"type": "string"}, "An assistant UUID or a registered graph name."
        ),
    },
    error_model="ErrorResponse",
)
route = facade.route
AUTH = (401, 403)
