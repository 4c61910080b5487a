"""Provider error classification: billed or not, transient or not, Retry-After.

The agents' own tests prove each provider's errors reach this classification through
the real transports; here are the rules themselves and the SDK error shapes a
LangGraph graph's chat models raise (httpx responses, botocore ``ClientError``).
"""

from __future__ import annotations

import httpx
import pytest
from botocore.exceptions import ClientError

from chalicelib.agents.base import ProviderError
from chalicelib.agents.provider_errors import (
    bedrock_flags,
    classify_exception,
    retry_after_seconds,
    transient_status,
)
from tests.fixtures.sdk_errors import APIStatusError

NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("1.5", 1.5),
        ("-3", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past: retry now
    ],
)
def test_retry_after_in_seconds_or_http_date(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=lambda: NOW) == seconds


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_transient_statuses(status: int, transient: bool) -> None:
    assert transient_status(status) is transient


def test_an_sdk_status_error_before_output_is_unbilled() -> None:
    response = httpx.Response(429, headers={"retry-after": "2"})
    error = classify_exception(APIStatusError(response), output_started=False)
    assert (error.billed, error.transient, error.retry_after) == (False, True, 2.0)


def test_any_failure_after_output_started_is_billed() -> None:
    response = httpx.Response(500)
    error = classify_exception(APIStatusError(response), output_started=True)
    assert error.billed and not error.transient


def test_a_connection_error_of_unknown_shape_is_billed() -> None:
    error = classify_exception(ConnectionResetError("reset by peer"), output_started=False)
    assert error.billed and "ConnectionResetError" in str(error)


def test_a_provider_error_keeps_its_flags() -> None:
    original = ProviderError("x", billed=False, transient=True, retry_after=1.0)
    assert classify_exception(original, output_started=False) is original


def test_botocore_client_errors_follow_the_bedrock_table() -> None:
    throttled = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "slow down"},
            "ResponseMetadata": {"HTTPStatusCode": 429, "HTTPHeaders": {"retry-after": "4"}},
        },
        "Converse",
    )
    error = classify_exception(throttled, output_started=False)
    assert (error.billed, error.transient, error.retry_after) == (False, True, 4.0)
    assert bedrock_flags({"Error": {"Code": "ModelTimeoutException"}}) == (True, True, None)
    # No code we know and no status: ambiguous, billed.
    assert bedrock_flags({"Error": {"Code": "Mystery"}}) == (True, False, None)
