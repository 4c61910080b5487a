"""A WSGI face for the Chalice app, so schemathesis can call it in process.

Each request goes through ``chalice.test.Client``'s local API Gateway — the same path
every other test uses — with the raw (still percent-encoded) path, the headers and the
body as sent. A request that Chalice's gateway itself refuses comes back as its error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote


class ChaliceWSGI:
    """Bound to a ``chalice.test.Client`` with :meth:`bind` (schemathesis needs the WSGI
    object when the tests are collected; the client exists once the AWS world does)."""

    def __init__(self) -> None:
        self._http: Any = None

    def bind(self, chalice_client: Any) -> None:
        self._http = chalice_client.http

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("RAW_URI") or quote(
            environ.get("PATH_INFO", "/"), safe="/%:@!$&'()*+,;="
        )
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        response = self._http.request(environ["REQUEST_METHOD"], path, headers=headers, body=body)
        status = response.status_code
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        payload = response.body or b""
        if isinstance(payload, str):
            payload = payload.encode()
        start_response(f"{status} {reason}", [(k, str(v)) for k, v in response.headers.items()])
        return [payload]
