"""How a failed model call is classified: was it billed, is it worth retrying, when.

Every built-in agent turns a provider failure into a
:class:`~chalicelib.agents.base.ProviderError` whose flags decide what the run pays
(``RunContext.model_call`` releases the reservation of an unbilled call and books the
worst case of a billed one) and whether a retry makes sense.

The rule, applied the same way to every provider:

* **Not billed** (``billed=False``) only when the provider's own answer proves that
  nothing was generated: an HTTP error status (4xx/5xx, a redirect) received before
  any output, a 200 whose body is not a completion at all (an HTML page from a proxy),
  a JSON ``{"error": ...}`` answer with no output, Bedrock's throttling, validation,
  access, not-found, not-ready and unavailable errors, or a connection that could not
  even be opened.
* **Billed** (``billed=True``, booked at the reservation) for every ambiguous ending:
  a connection lost after the request was sent, a body cut mid-JSON, a read timeout,
  the model failing or timing out while it ran (Bedrock ``ModelTimeoutException``,
  ``ModelErrorException``), and anything unknown. Over-booking an ambiguous call
  keeps the budget a cap; under-booking it would not.
* **Transient** for 408, 429 and 5xx, throttling, not-ready/unavailable, timeouts, and
  connection failures before any output.
* **retry_after** from the provider's ``Retry-After`` header, in seconds or as an
  HTTP-date (converted to seconds from now, never negative).
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.agents.base import ProviderError

TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})


def transient_status(status: int) -> bool:
    """Whether an HTTP error status is worth retrying (408, 425, 429, 5xx)."""
    return status in TRANSIENT_HTTP_STATUSES or 500 <= status <= 599


def retry_after_seconds(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """The ``Retry-After`` header as seconds from now, or ``None`` if absent or unreadable.

    RFC 9110 allows a non-negative integer of seconds or an HTTP-date; some providers
    send fractional seconds, which are accepted too.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP-date is always GMT
            return None
        return max(when.timestamp() - now(), 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def header(headers: Mapping[str, Any] | Any, name: str) -> str | None:
    """A header from a case-insensitive message or a plain dict (any key case)."""
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None and isinstance(headers, Mapping):
        lowered = name.lower()
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = item
                break
    return str(value) if value is not None else None


def http_status_error(
    message: str, status: int, headers: Mapping[str, Any] | Any = None
) -> ProviderError:
    """An HTTP error status received before any output: not billed."""
    return ProviderError(
        message,
        billed=False,
        transient=transient_status(status),
        retry_after=retry_after_seconds(header(headers, "Retry-After")),
    )


# Bedrock error code → (billed, transient). Codes Bedrock returns before the model
# produced anything are unbilled; errors raised while the model ran are not.
BEDROCK_ERRORS: dict[str, tuple[bool, bool]] = {
    "ThrottlingException": (False, True),
    "ServiceUnavailableException": (False, True),
    "ModelNotReadyException": (False, True),
    "InternalServerException": (False, True),
    "ValidationException": (False, False),
    "AccessDeniedException": (False, False),
    "ResourceNotFoundException": (False, False),
    "ServiceQuotaExceededException": (False, False),
    "UnrecognizedClientException": (False, False),
    "ExpiredTokenException": (False, False),
    "ModelTimeoutException": (True, True),
    "ModelErrorException": (True, False),
    "ModelStreamErrorException": (True, False),
}


def bedrock_flags(response: Mapping[str, Any]) -> tuple[bool, bool, float | None]:
    """(billed, transient, retry_after) of a botocore ``ClientError.response`` from Bedrock.

    Known codes follow :data:`BEDROCK_ERRORS`; an unknown code falls back on the HTTP
    status (an error status is an answer before output), and on billed when there is
    none.
    """
    error = response.get("Error") or {}
    metadata = response.get("ResponseMetadata") or {}
    code = str(error.get("Code") or "")
    retry_after = retry_after_seconds(header(metadata.get("HTTPHeaders"), "Retry-After"))
    if code in BEDROCK_ERRORS:
        billed, transient = BEDROCK_ERRORS[code]
        return billed, transient, retry_after
    status = metadata.get("HTTPStatusCode")
    if isinstance(status, int) and 400 <= status <= 599:
        return False, transient_status(status), retry_after
    return True, False, retry_after


def classify_exception(error: BaseException, *, output_started: bool) -> ProviderError:
    """A :class:`ProviderError` for an exception a LangChain chat model raised.

    LangChain integrations raise their SDK's own errors; they are recognised by shape,
    without importing the SDKs: a ``ProviderError`` keeps its flags; a botocore
    ``ClientError`` (``response["Error"]["Code"]``) follows :func:`bedrock_flags`; an
    HTTP status error (``status_code`` on the error or its ``response``: openai,
    anthropic, httpx) is unbilled when no output was streamed yet. Anything else —
    connection errors, timeouts, parsing errors — is billed: the call may have run.
    Once output was streamed, every failure is billed.
    """
    if isinstance(error, ProviderError):
        return error
    message = f"{type(error).__name__}: {error}"
    response = getattr(error, "response", None)
    if isinstance(response, Mapping) and isinstance(response.get("Error"), Mapping):
        billed, transient, retry_after = bedrock_flags(response)
        return ProviderError(
            message,
            billed=billed or output_started,
            transient=transient and not output_started,
            retry_after=retry_after,
        )
    status = getattr(error, "status_code", None)
    if not isinstance(status, int):
        status = getattr(response, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 300 <= status <= 599:
        retry_after = retry_after_seconds(header(getattr(response, "headers", None), "Retry-After"))
        if output_started:
            return ProviderError(message, billed=True, retry_after=retry_after)
        return ProviderError(
            message, billed=False, transient=transient_status(status), retry_after=retry_after
        )
    return ProviderError(message, billed=True)
