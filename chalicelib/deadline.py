"""The API function's request deadline: no AWS call starts that could outlive the Lambda.

API Gateway waits 29 s for the function; the function's timeout is 28 s. A request's
AWS calls cannot be bounded by counting them: under contention an update re-reads and
re-writes (``UPDATE_ATTEMPTS`` version conflicts, then up to ``CONVERGE_ROUNDS`` of
convergence), a ``enabled`` change adds a pause or resume with its own convergence,
authentication on a cold key cache adds a read — 64 calls at the very worst (1 key
read; 3 × (read + conditional write); 2 entry writes + 2 deletes; 5 convergence rounds
of a read and 4 writes; then the pause: a write, 2 entry writes, 5 more rounds), each
of which may take its botocore worst case (every attempt timing out, plus the backoff
between attempts: :func:`call_worst_seconds`). No per-call timeout makes 60 of those
fit in 28 s. So the bound is a deadline instead:

* the HTTP middleware (:func:`request_deadline_middleware`) gives each request the Lambda context's
  own clock (``get_remaining_time_in_millis``) — in the deployed API function, whose
  template sets ``API_REQUEST_DEADLINE``;
* every AWS client of the container asks :func:`may_start` before each call (a botocore
  ``before-call`` hook, ``chalicelib.dependencies``), which refuses — a botocore error,
  so the adapters answer it like any unreachable service: 503, with the rollback — a
  call that could not end before ``MARGIN_SECONDS`` before the timeout;
* a *forward* call must also leave time for the rollback of everything before it:
  ``ROLLBACK_CALLS`` more worst-case calls — the DynamoDB write back and the Scheduler
  undo of one entry, or the complete undo of a create or a delete. A compensating call
  (inside :func:`compensating`) needs only its own time.

So a request answers before the Lambda timeout whatever AWS does, and a request that
starts running out of time answers 503 with its writes undone; whatever a rollback
still could not finish (the convergence re-reads of a contended update) is logged and
repaired by the reconciler, as after a crash. In the normal case (calls of tens of
milliseconds) the deadline never bites: it only turns a Lambda timeout — a bare 502/504
from API Gateway with the writes half-done — into a clean 503.

Only the API sets a deadline; the trigger and the reconciler have their own (a run's
deadline) or none, and for them :func:`may_start` always answers yes.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalice.app import Chalice, Request, Response

ROLLBACK_CALLS = 3
MARGIN_SECONDS = 1.0
"""Left after the last call ends: the response is built and returned."""
MAX_BACKOFF_SECONDS = 20.0
"""botocore's standard retry mode: the n-th retry waits up to min(2**(n-1), 20) s."""

_remaining: contextvars.ContextVar[Callable[[], float] | None] = contextvars.ContextVar(
    "agentcron_request_remaining", default=None
)
_compensating: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentcron_compensating", default=False
)


def call_worst_seconds(connect: float, read: float, attempts: int) -> float:
    """One AWS call's worst case: every attempt times out connecting and reading, and
    each retry waits its longest backoff."""
    backoff = sum(min(2.0**n, MAX_BACKOFF_SECONDS) for n in range(attempts - 1))
    return attempts * (connect + read) + backoff


def forward_window_seconds(timeout: float, call_seconds: float) -> float:
    """How long into a request a forward call may still start."""
    return timeout - ((1 + ROLLBACK_CALLS) * call_seconds + MARGIN_SECONDS)


@contextlib.contextmanager
def request(remaining_seconds: Callable[[], float] | None) -> Iterator[None]:
    """The calls made inside are bounded by ``remaining_seconds`` (None: unbounded)."""
    token = _remaining.set(remaining_seconds)
    try:
        yield
    finally:
        _remaining.reset(token)


@contextlib.contextmanager
def compensating() -> Iterator[None]:
    """The calls made inside undo earlier writes: they need no time for a rollback."""
    token = _compensating.set(True)
    try:
        yield
    finally:
        _compensating.reset(token)


def may_start(call_seconds: float) -> bool:
    remaining = _remaining.get()
    if remaining is None:
        return True
    reserve = 0 if _compensating.get() else ROLLBACK_CALLS * call_seconds
    return remaining() >= call_seconds + reserve + MARGIN_SECONDS


def request_deadline_middleware(
    app: Chalice,
) -> Callable[[Request, Callable[[Request], Response]], Response]:
    """A Chalice ``http`` middleware: the request's calls are bounded by its Lambda's time."""

    def bounded(request_: Request, get_response: Callable[[Request], Response]) -> Response:
        from chalicelib.dependencies import container

        context: Any = getattr(app, "lambda_context", None)
        clock = getattr(context, "get_remaining_time_in_millis", None)
        if clock is None or not container().settings.API_REQUEST_DEADLINE:
            return get_response(request_)
        with request(lambda: clock() / 1000):
            return get_response(request_)

    return bounded
