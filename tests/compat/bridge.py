"""The real ``langgraph_sdk``, in process: an httpx transport into ``chalice.test.Client``.

``httpx.MockTransport`` hands every request to a handler; ours forwards the method,
the raw path (query string included), the headers and the body to the Chalice test
client's local API Gateway, and turns its answer back into an ``httpx.Response``.
The SDK clients are built with their public constructors
(``SyncLangGraphClient(httpx.Client)``, ``LangGraphClient(httpx.AsyncClient)``, what
``get_sync_client`` / ``get_client`` do with a network transport), so every byte the
SDK sends and every status it maps goes through the same code as over HTTP. Nothing
is monkeypatched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import langgraph_sdk
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient

BASE_URL = "http://agentcron.test"


def chalice_transport(chalice_client: Any) -> httpx.MockTransport:
    """A transport that serves requests with ``chalice_client.http`` (sync and async)."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = chalice_client.http.request(
            request.method,
            request.url.raw_path.decode("ascii"),
            headers=dict(request.headers.items()),
            body=request.content,
        )
        return httpx.Response(
            answer.status_code,
            headers=answer.headers,
            content=answer.body or b"",
            request=request,
        )

    return httpx.MockTransport(handle)


def sdk_headers(api_key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers ``get_client(api_key=...)`` sends: its User-Agent and ``x-api-key``."""
    headers = {"User-Agent": f"langgraph-sdk-py/{langgraph_sdk.__version__}", **(extra or {})}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


def sync_client(
    chalice_client: Any, api_key: str | None, *, headers: Mapping[str, str] | None = None
) -> SyncLangGraphClient:
    return SyncLangGraphClient(
        httpx.Client(
            base_url=BASE_URL,
            transport=chalice_transport(chalice_client),
            headers=sdk_headers(api_key, headers),
        )
    )


def async_client(
    chalice_client: Any, api_key: str | None, *, headers: Mapping[str, str] | None = None
) -> LangGraphClient:
    return LangGraphClient(
        httpx.AsyncClient(
            base_url=BASE_URL,
            transport=chalice_transport(chalice_client),
            headers=sdk_headers(api_key, headers),
        )
    )
