"""Raw LangGraph-façade requests, as the SDK sends them, for tests that assert exact bytes."""

from __future__ import annotations

import json
from typing import Any

CRON = {"assistant_id": "agent", "schedule": "27 15 * * *"}


class LangGraphHTTP:
    """Raw requests as the SDK sends them (``x-api-key``), keeping status, body and headers."""

    def __init__(
        self, client: Any, key: str | None, *, headers: dict[str, str] | None = None
    ) -> None:
        self._http = client.http
        self._headers = dict(headers or {})
        if key is not None:
            self._headers["x-api-key"] = key

    def request(
        self, method: str, path: str, body: Any = None, *, raw: str | bytes | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        payload: str | bytes = (
            raw if raw is not None else ("" if body is None else json.dumps(body))
        )
        headers = dict(self._headers)
        if payload:
            headers["Content-Type"] = "application/json"
        response = self._http.request(method, path, headers=headers, body=payload or b"")
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        return response.status_code, (json.loads(text) if text else None), response.headers

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, body, _ = self.request(method, path, body, **kw)
        return status, body

    def create(self, **changes: Any) -> dict[str, Any]:
        status, body = self.call("POST", "/runs/crons", {**CRON, **changes})
        assert status == 200, body
        # The webhook signing secret is in the create response only (never read back).
        created = dict(body)
        assert str(created.pop("webhook_secret")).startswith("whsec_")
        return created

    def count(self) -> int:
        status, body = self.call("POST", "/runs/crons/count", {})
        assert status == 200
        return int(body)


def detail(message: str) -> dict[str, str]:
    return {"detail": message}
