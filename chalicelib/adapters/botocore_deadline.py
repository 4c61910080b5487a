"""The botocore error of the API's request deadline (``chalicelib/observability.py``).

A call the request has no time left for is refused with a
:class:`~botocore.exceptions.BotoCoreError`, like a connection that cannot be made, so
every adapter already answers it the way it answers an unreachable service (a
503-class domain error, with the service's rollback).
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError


class RequestDeadlineReached(BotoCoreError):
    fmt = "not enough of the request's time left to call {operation}"
