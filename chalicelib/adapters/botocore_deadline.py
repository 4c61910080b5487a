"""The botocore side of :mod:`chalicelib.deadline`: a ``before-call`` hook on each client
that refuses a call the request has no time left for.

The refusal is a :class:`~botocore.exceptions.BotoCoreError`, like a connection that
cannot be made, so every adapter already answers it the way it answers an unreachable
service (a 503-class domain error, with the service's rollback).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError

from chalicelib import deadline


class RequestDeadlineReached(BotoCoreError):
    fmt = "not enough of the request's time left to call {operation}"


def install(client: Any, call_seconds: float) -> None:
    """Bound ``client``'s calls by the current request's deadline (if it has one)."""

    def refuse_late_call(model: Any, **_: Any) -> None:
        if not deadline.may_start(call_seconds):
            raise RequestDeadlineReached(operation=model.name)

    client.meta.events.register("before-call.*.*", refuse_late_call, unique_id="deadline")
