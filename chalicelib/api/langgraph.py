"""LangGraph Platform's API, the part a cron user needs, for the official ``langgraph_sdk``.

Routes (no prefix, as LangGraph serves them):

* crons: ``POST /runs/crons``, ``POST /threads/{thread_id}/runs/crons``,
  ``GET|PATCH|DELETE /runs/crons/{cron_id}``, ``POST /runs/crons/search``,
  ``POST /runs/crons/count``;
* runs: ``GET /threads/{thread_id}/runs``, ``GET /threads/{thread_id}/runs/{run_id}``,
  ``POST /runs/search`` (by ``metadata.cron_id``: the seed's ``runs.search``);
* threads: ``POST /threads``, ``GET|DELETE /threads/{thread_id}``, ``POST /threads/search``,
  ``POST /threads/count``, ``GET /threads/{thread_id}/state``;
* assistants: ``POST /assistants/search``, ``POST /assistants/count``,
  ``GET /assistants/{assistant_id}`` (registered agents; graph names accepted);
* ``GET /ok`` and ``GET /info``, without authentication.

This module parses and formats only: crons are ``ScheduleService`` schedules (the
same records the Shannon façade serves), threads and run look-ups are
``ThreadService``'s, and the mapping lives in :mod:`chalicelib.api.langgraph_wire`.

**Errors** are ``{"detail": "<message>"}`` with the statuses ``langgraph_sdk`` maps to
its exception classes: 422 for validation, malformed ids and bad JSON (``Invalid
JSON in request body``, bodies are parsed from ``raw_body`` by us), 404 ``Not
Found`` for look-ups (another caller's object included: every key holds the
tenant and user), 409 for conflicts, 400 ``failed to find next date`` for a
schedule that never fires and ``Request body cannot be empty`` for ``PATCH {}``,
403 when the per-user schedule limit is reached (``PermissionDeniedError``: the
request is well-formed but not allowed now, like the Shannon façade's 403; a 429
would invite the retries meant for throttling), 503 when AWS refused a write that
was then rolled back. Nothing a client sends yields a 500.

**Authentication**: ``x-api-key`` (what the SDK sends) or ``Authorization: Bearer``.
No credential header at all is 403 ``Missing authentication headers``; a credential
that is not a valid key — including an ``Authorization`` header of another scheme —
is 401 ``Invalid token``, as LangSmith auth answers.

**Order of checks**: credentials, path ids (422), body JSON and shape (422), then
look-ups (404) and the cron engine and limits (the service).

**Routing**: ``/runs/crons/search`` and ``/runs/crons/count`` are literal paths next
to ``/runs/crons/{cron_id}``; API Gateway and ``chalice local`` both prefer the
literal segment (a routing test keeps it so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from chalice.app import Blueprint, Response

from chalicelib.api.http import (
    ANY_CONTENT_TYPE,
    BadJSONError,
    ErrorTranslator,
    credentials,
    empty_response,
    handles_errors,
    json_response,
    request_body,
)
from chalicelib.domain import errors
from chalicelib.domain.enums import ScheduleStatus
from chalicelib.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib import dependencies
    from chalicelib.api import langgraph_wire as wire
    from chalicelib.domain import models as models_module
    from chalicelib.domain.models import Principal, Schedule
    from chalicelib.services import threads as threads_module
else:
    # Imported on the first request, not with ``app`` (see chalicelib.lazy).
    wire = lazy_module("chalicelib.api.langgraph_wire")
    dependencies = lazy_module("chalicelib.dependencies")
    models_module = lazy_module("chalicelib.domain.models")
    threads_module = lazy_module("chalicelib.services.threads")


def container() -> dependencies.Container:
    return dependencies.container()


bp = Blueprint(__name__)

API_VERSION = "0.1.0"

# Any of these headers means the caller tried to authenticate (LangSmith's list): a
# request without a usable key then gets 401 "Invalid token", not 403 "Missing ...".
AUTH_HEADERS = ("authorization", "x-api-key", "x-tenant-id", "x-service-key", "cookie", "x-user-id")

THREAD_NOT_FOUND_FOR_CRON = (
    "Thread with ID '{}' not found. Please verify the ID is correct and the thread "
    "hasn't been deleted or expired."
)


class LangGraphErrors(ErrorTranslator):
    def translate(self, exc: Exception) -> Response | None:
        status, detail = _status_and_detail(exc)
        if status is None:
            return None
        return json_response({"detail": detail}, status)

    def internal_error(self) -> Response:
        return json_response({"detail": "Internal Server Error"}, 500)


def _status_and_detail(exc: Exception) -> tuple[int | None, str]:
    if isinstance(exc, wire.WireError):
        return exc.status, exc.detail
    if isinstance(exc, BadJSONError):
        return 422, "Invalid JSON in request body"
    if isinstance(exc, errors.AuthenticationError):
        return (403, "Missing authentication headers") if exc.missing else (401, "Invalid token")
    # Cron engine and limits (subclasses before their bases).
    if isinstance(exc, errors.CronNeverFiresError):
        return 400, "failed to find next date"
    if isinstance(exc, errors.InvalidCronError):
        return 422, wire.cron_error_detail(exc.expression, exc.reason, unsupported=exc.unsupported)
    if isinstance(exc, errors.IntervalTooShortError):
        return 422, wire.interval_error_detail(exc.expression, exc.actual_minutes, exc.min_minutes)
    if isinstance(exc, errors.InvalidTimezoneError):
        return 422, wire.timezone_error_detail(exc.timezone)
    if isinstance(exc, errors.BudgetOutOfRangeError):
        return 422, f"max_budget_per_run_usd: must be greater than 0 and at most {exc.maximum}"
    if isinstance(exc, errors.TimeoutOutOfRangeError):
        return 422, f"timeout_seconds: must be between 1 and {exc.maximum}"
    if isinstance(exc, errors.InvalidRequestError):
        return 422, _langgraph_words(exc)
    if isinstance(exc, errors.ScheduleLimitReachedError):
        return 403, f"Cron limit reached: {exc.count}/{exc.limit} crons and schedules per user"
    # Look-ups.
    if isinstance(exc, errors.AssistantNotFoundError):
        return 404, f"Assistant '{exc.assistant_id}' not found"
    if isinstance(exc, errors.ThreadNotFoundError):
        return 404, f"Thread with ID {exc.thread_id} not found"
    if isinstance(exc, errors.NotFoundError):
        return 404, "Not Found"
    # State.
    if isinstance(exc, errors.ConflictError):
        return 409, "The cron was modified concurrently; retry"
    if isinstance(exc, errors.SchedulingUnavailableError):
        return 503, "Scheduling service unavailable; nothing was changed"
    return None, ""


# The service validates sizes with the domain's (Shannon-flavoured) field names.
_FIELD_WORDS = {"task_context": "context", "task_query": "input", "Task query": "input"}


def _langgraph_words(exc: errors.InvalidRequestError) -> str:
    message = exc.message
    for ours, theirs in _FIELD_WORDS.items():
        message = message.replace(ours, theirs)
    return message


handled = handles_errors(LangGraphErrors())


# --- request helpers ------------------------------------------------------------------------


def _principal() -> Principal:
    headers = bp.current_request.headers
    key = credentials(headers)
    if key is None and any(name in headers for name in AUTH_HEADERS):
        raise errors.AuthenticationError(missing=False)
    return container().api_keys.authenticate(key)


def _body() -> Any:
    return request_body(bp.current_request)


def _params() -> dict[str, str]:
    return dict(bp.current_request.query_params or {})


def _resolve_assistant(value: str) -> str | None:
    found = container().assistants.resolve(value)
    return None if found is None else found.assistant_id


def _cron(schedule: Schedule) -> dict[str, Any]:
    return wire.cron_body(schedule, container().schedule_service.next_fire_time(schedule))


# --- health ---------------------------------------------------------------------------------


@bp.route("/ok", methods=["GET"])
@handled
def ok() -> Response:
    return json_response({"ok": True})


@bp.route("/info", methods=["GET"])
@handled
def info() -> Response:
    return json_response(
        {
            "version": API_VERSION,
            "server": "agentcron",
            "flags": {"assistants": True, "crons": True, "langsmith": False},
            "metadata": {"stage": container().settings.STAGE},
        }
    )


# --- crons ----------------------------------------------------------------------------------


def _create_cron(thread_id: str | None) -> Response:
    principal = _principal()
    tid = None if thread_id is None else wire.uuid_param(thread_id, "thread")
    request = wire.parse_cron_create(_body(), thread_bound=tid is not None)
    assistant = container().assistants.resolve(request.assistant)
    if assistant is None:
        raise errors.AssistantNotFoundError(request.assistant)
    draft = request.draft(
        cron_id=models_module.new_id(),
        graph_id=assistant.graph_id,
        assistant_id=assistant.assistant_id,
        thread_id=tid,
    )
    try:
        schedule = container().schedule_service.create(principal, draft)
    except errors.ThreadNotFoundError as exc:
        raise wire.WireError(404, THREAD_NOT_FOUND_FOR_CRON.format(exc.thread_id)) from exc
    return json_response(_cron(schedule))


@bp.route("/runs/crons", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def create_cron() -> Response:
    return _create_cron(None)


@bp.route("/threads/{thread_id}/runs/crons", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def create_thread_cron(thread_id: str) -> Response:
    return _create_cron(thread_id)


@bp.route("/runs/crons/search", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def search_crons() -> Response:
    principal = _principal()
    query = wire.parse_cron_search(_body(), _resolve_assistant)
    service = container().schedule_service
    now = container().clock.now()
    bodies, headers = wire.search_crons(
        service.list_for_user(principal), query, lambda s: service.next_fire_time(s, now)
    )
    return json_response(bodies, 200, headers)


@bp.route("/runs/crons/count", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def count_crons() -> Response:
    principal = _principal()
    query = wire.parse_cron_count(_body(), _resolve_assistant)
    schedules = container().schedule_service.list_for_user(principal)
    return json_response(sum(1 for s in schedules if query.matches(s)))


@bp.route("/runs/crons/{cron_id}", methods=["GET"])
@handled
def get_cron(cron_id: str) -> Response:
    principal = _principal()
    cid = wire.uuid_param(cron_id, "cron")
    return json_response(_cron(container().schedule_service.get(principal, cid)))


@bp.route("/runs/crons/{cron_id}", methods=["PATCH"], content_types=ANY_CONTENT_TYPE)
@handled
def update_cron(cron_id: str) -> Response:
    principal = _principal()
    cid = wire.uuid_param(cron_id, "cron")
    patch = wire.parse_cron_patch(_body())
    service = container().schedule_service
    try:
        # The changes are computed from the record the service reads (metadata merges key
        # by key, the payload skeleton merges too); the write is version-checked against
        # that read, so a concurrent PATCH is merged, never lost.
        schedule = service.update(principal, cid, patch.changes)
        if patch.enabled is not None and patch.enabled != (
            schedule.status is ScheduleStatus.ACTIVE
        ):
            try:
                schedule = (
                    service.resume(principal, cid)
                    if patch.enabled
                    else service.pause(principal, cid)
                )
            except errors.ScheduleStateConflictError:
                # Toggled concurrently to the state asked for: idempotent, not an error.
                schedule = service.get(principal, cid)
    except errors.ScheduleNotFoundError as exc:
        raise wire.WireError(404, f"Cron '{cid}' not found") from exc
    return json_response(_cron(schedule))


@bp.route("/runs/crons/{cron_id}", methods=["DELETE"])
@handled
def delete_cron(cron_id: str) -> Response:
    principal = _principal()
    container().schedule_service.delete(principal, wire.uuid_param(cron_id, "cron"))
    return empty_response(204)


# --- runs -----------------------------------------------------------------------------------


@bp.route("/runs/search", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def search_runs() -> Response:
    principal = _principal()
    search = wire.parse_run_search(_body())
    threads = container().thread_service
    if search.cron_id is not None:
        runs = threads.cron_runs(
            principal,
            search.cron_id,
            offset=search.offset,
            limit=search.limit,
            where=search.where,
        )
    else:
        assert search.thread_id is not None  # parse_run_search requires one of the two
        try:
            runs = threads.runs(
                principal,
                search.thread_id,
                offset=search.offset,
                limit=search.limit,
                where=search.where,
            )
        except errors.ThreadNotFoundError:
            runs = []  # a search finds nothing; it does not confirm whose thread it is
    return json_response([wire.project(wire.run_body(r), search.select) for r in runs])


@bp.route("/threads/{thread_id}/runs", methods=["GET"])
@handled
def list_thread_runs(thread_id: str) -> Response:
    principal = _principal()
    tid = wire.uuid_param(thread_id, "thread")
    query_params = bp.current_request.query_params
    # ``select`` may repeat (``?select=run_id&select=status``); MultiDict.getlist raises
    # KeyError for an absent key.
    selected = query_params.getlist("select") if query_params and "select" in query_params else []
    listing = wire.parse_run_list(_params(), selected)
    runs = container().thread_service.runs(
        principal,
        tid,
        offset=listing.offset,
        limit=listing.limit,
        where=threads_module.RunFilter(statuses=listing.statuses),
    )
    return json_response([wire.project(wire.run_body(r), listing.select) for r in runs])


@bp.route("/threads/{thread_id}/runs/{run_id}", methods=["GET"])
@handled
def get_thread_run(thread_id: str, run_id: str) -> Response:
    principal = _principal()
    tid = wire.uuid_param(thread_id, "thread")
    rid = wire.uuid_param(run_id, "run")
    try:
        run = container().thread_service.run(principal, tid, rid)
    except errors.ThreadNotFoundError as exc:
        raise wire.WireError(404, "Not Found") from exc
    return json_response(wire.run_body(run))


# --- threads --------------------------------------------------------------------------------


@bp.route("/threads", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def create_thread() -> Response:
    principal = _principal()
    request = wire.parse_thread_create(_body())
    try:
        thread = container().thread_service.create(
            principal,
            thread_id=request.thread_id,
            metadata=request.metadata,
            if_exists=request.if_exists,
            ttl_minutes=request.ttl_minutes,
        )
    except errors.ConflictError as exc:
        raise wire.WireError(409, f"Thread with ID {request.thread_id} already exists") from exc
    return json_response(wire.thread_body(thread))


@bp.route("/threads/search", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def search_threads() -> Response:
    principal = _principal()
    search = wire.parse_thread_search(_body(), counting=False)
    threads, more = container().thread_service.search(
        principal, search.query, offset=search.offset, limit=search.limit
    )
    headers = wire.pagination_headers(search.offset, search.limit, len(threads), more)
    bodies = [wire.project(wire.thread_body(t), search.select) for t in threads]
    return json_response(bodies, 200, headers)


@bp.route("/threads/count", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def count_threads() -> Response:
    principal = _principal()
    search = wire.parse_thread_search(_body(), counting=True)
    return json_response(container().thread_service.count(principal, search.query))


@bp.route("/threads/{thread_id}", methods=["GET"])
@handled
def get_thread(thread_id: str) -> Response:
    principal = _principal()
    tid = wire.uuid_param(thread_id, "thread")
    return json_response(wire.thread_body(container().thread_service.get(principal, tid)))


@bp.route("/threads/{thread_id}", methods=["DELETE"])
@handled
def delete_thread(thread_id: str) -> Response:
    principal = _principal()
    container().thread_service.delete(principal, wire.uuid_param(thread_id, "thread"))
    return empty_response(204)


@bp.route("/threads/{thread_id}/state", methods=["GET"])
@handled
def get_thread_state(thread_id: str) -> Response:
    principal = _principal()
    tid = wire.uuid_param(thread_id, "thread")
    return json_response(wire.thread_state_body(container().thread_service.state(principal, tid)))


# --- assistants -----------------------------------------------------------------------------


@bp.route("/assistants/search", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def search_assistants() -> Response:
    _principal()
    query = wire.parse_assistant_search(_body(), counting=False)
    bodies, headers = wire.search_assistants(container().assistants.all(), query)
    return json_response(bodies, 200, headers)


@bp.route("/assistants/count", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@handled
def count_assistants() -> Response:
    _principal()
    query = wire.parse_assistant_search(_body(), counting=True)
    bodies = [wire.assistant_body(a) for a in container().assistants.all()]
    return json_response(sum(1 for b in bodies if query.matches(b)))


@bp.route("/assistants/{assistant_id}", methods=["GET"])
@handled
def get_assistant(assistant_id: str) -> Response:
    _principal()
    # The SDK percent-encodes path parameters; a graph name may contain any character.
    ref = unquote(assistant_id)
    found = container().assistants.resolve(ref)
    if found is None:
        wire.uuid_param(ref, "assistant")  # neither a UUID nor a graph name: 422
        raise wire.WireError(404, "Not Found")
    return json_response(wire.assistant_body(found))
