"""HTTP plumbing shared by the façades: JSON in, JSON out, credentials, error envelopes.

Chalice's REST middleware never sees exceptions raised by views, and its default
error body (``{"Code", "Message"}``) matches neither façade. So each view is
wrapped by :func:`handles_errors`, given the façade's translator: it turns domain
errors into the façade's envelope and any unexpected exception into a logged 500
in that same envelope. Bodies are parsed from ``raw_body`` by us (Chalice's
``json_body`` answers bad JSON with its own 400) and serialised by us (Chalice
turns ``Decimal`` into floats and chokes on ``datetime``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, Protocol

from chalice.app import Request, Response

log = logging.getLogger(__name__)

P = ParamSpec("P")

# Accept any request Content-Type and parse the body as JSON ourselves: curl -d sends
# application/x-www-form-urlencoded, and an unsupported type must get the façade's 400,
# not Chalice's 415 envelope.
ANY_CONTENT_TYPE = ["*/*"]


class BadJSONError(ValueError):
    """The request body is not a JSON document."""


class ErrorTranslator(Protocol):
    """Maps an exception to a response in one façade's envelope."""

    def translate(self, exc: Exception) -> Response | None:
        """The façade's response for ``exc``, or None for an unexpected error."""
        ...

    def internal_error(self) -> Response:
        """The façade's 500 (the error itself is logged, never shown)."""
        ...


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    payload = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    merged: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    if headers:
        merged.update(headers)
    return Response(body=payload, status_code=status, headers=merged)


def empty_response(status: int = 204) -> Response:
    return Response(body="", status_code=status, headers={})


def _reject_constant(name: str) -> Any:
    raise BadJSONError(f"{name} is not valid JSON")


def parse_json(raw: bytes | str | None, *, allow_empty: bool) -> Any:
    """Strict JSON: no NaN/Infinity, UTF-8 only; ``None`` for an empty body when allowed."""
    if raw is None or (isinstance(raw, bytes | str) and not raw.strip()):
        if allow_empty:
            return None
        raise BadJSONError("empty body")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadJSONError(str(exc)) from exc


def request_body(request: Request, *, allow_empty: bool = False) -> Any:
    return parse_json(request.raw_body, allow_empty=allow_empty)


def credentials(headers: Mapping[str, str]) -> str | None:
    """The API key from ``x-api-key`` or ``Authorization: Bearer <key>``."""
    key = headers.get("x-api-key")
    if key:
        return key.strip() or None
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def handles_errors(
    translator: ErrorTranslator,
) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """Turn every exception a view raises into the façade's error envelope."""

    def decorate(view: Callable[P, Response]) -> Callable[P, Response]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
            try:
                return view(*args, **kwargs)
            except Exception as exc:
                response = translator.translate(exc)
                if response is not None:
                    return response
                log.exception("unhandled error in %s", view.__name__)
                return translator.internal_error()

        return wrapper

    return decorate


def finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
