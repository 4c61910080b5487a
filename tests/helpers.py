"""Test helpers: JSON HTTP through chalice.test.Client, AWS call counting, failure injection.

Counting and injection use botocore's own event hooks on the container's clients
(``before-call.<service>.<Operation>``): the real adapters run unchanged, and a
hook that returns a response short-circuits the call exactly as a failing AWS
endpoint would.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

SEED_BODY: dict[str, Any] = {
    "name": "每日摘要",
    "description": "生成每日活动摘要",
    "cron_expression": "0 9 * * *",
    "timezone": "Asia/Shanghai",
    "task_query": "总结昨天的活动",
    "task_context": {"report_format": "markdown"},
    "max_budget_per_run_usd": 5.0,
    "timeout_seconds": 600,
}


class JSONClient:
    """A thin JSON wrapper over chalice.test.Client's http client."""

    def __init__(self, client: Any, key: str | None, *, header: str = "bearer") -> None:
        self._http = client.http
        self._key = key
        self._header = header

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._key is not None:
            if self._header == "bearer":
                headers["Authorization"] = f"Bearer {self._key}"
            else:
                headers["x-api-key"] = self._key
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        payload = raw if raw is not None else (None if body is None else json.dumps(body))
        response = self._http.request(
            method, path, headers=self.headers(headers), body=payload or b""
        )
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        return response.status_code, (json.loads(text) if text else None)

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("DELETE", path, **kw)


class AwsCalls:
    """Counts AWS operations made through the given clients."""

    def __init__(self, *clients: Any) -> None:
        self.counts: Counter[str] = Counter()
        self._clients = clients

    def _hook(self, model: Any, **_: Any) -> None:
        self.counts[f"{model.service_model.service_id.hyphenize()}.{model.name}"] += 1

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        self.counts.clear()
        for c in self._clients:
            c.meta.events.register("before-call.*.*", self._hook, unique_id=f"count-{id(self)}")
        try:
            yield self.counts
        finally:
            for c in self._clients:
                c.meta.events.unregister("before-call.*.*", unique_id=f"count-{id(self)}")

    def total(self, service: str | None = None) -> int:
        return sum(v for k, v in self.counts.items() if service is None or k.startswith(service))


class _FakeHTTPResponse:
    status_code = 500
    headers: ClassVar[dict[str, str]] = {}
    raw = None
    content = b""
    text = ""


@contextmanager
def failing(
    client: Any,
    operation: str,
    *,
    times: int = 1,
    code: str = "InternalServerException",
    skip: int = 0,
) -> Iterator[list[int]]:
    """Make ``operation`` (e.g. ``CreateSchedule``) fail ``times`` times with a 500 ``code``,
    after letting the first ``skip`` calls through."""
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service}.{operation}"
    hits: list[int] = []
    passed: list[int] = []

    def hook(**_: Any) -> Any:
        if len(passed) < skip:
            passed.append(1)
            return None
        if len(hits) >= times:
            return None
        hits.append(1)
        return _FakeHTTPResponse(), {
            "Error": {"Code": code, "Message": "injected failure"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }

    client.meta.events.register(event, hook, unique_id=f"fail-{operation}")
    try:
        yield hits
    finally:
        client.meta.events.unregister(event, unique_id=f"fail-{operation}")


@contextmanager
def one_request_at_a_time(client: Any) -> Iterator[None]:
    """Per-request atomicity against in-process moto (see ``chalicelib.local.serialize``).

    The interleaving between the requests of concurrent operations stays arbitrary, so
    a count-then-insert limit would still overshoot under this harness.
    """
    from chalicelib.local.serialize import serialize_requests, unserialize_requests

    serialize_requests(client)
    try:
        yield
    finally:
        unserialize_requests(client)


def scheduled_event(
    container: Any, schedule_id: str, when: Any, *, entry: int = 0
) -> dict[str, Any]:
    """The event EventBridge would deliver for ``when``: the registered Input, substituted."""
    from chalicelib.local.dispatcher import render_input
    from chalicelib.services.schedules import entry_names

    name = entry_names(schedule_id, entry + 1)[entry]
    registered = container.scheduler.get_schedule(
        Name=name, GroupName=container.settings.SCHEDULE_GROUP
    )
    return render_input(registered["Target"]["Input"], when, schedule_arn=registered["Arn"])


def deliver(
    container: Any, schedule_id: str, when: Any, *, remaining_ms: int = 900_000, entry: int = 0
) -> dict[str, Any]:
    """Deliver one fire to the trigger handler, as the Lambda runtime would."""
    import time

    event = scheduled_event(container, schedule_id, when, entry=entry)
    deadline = time.monotonic() + remaining_ms / 1000
    result: dict[str, Any] = container.trigger_handler(
        event, lambda: int((deadline - time.monotonic()) * 1000)
    )
    return result


def assistants_file(folder: Any, **extra: dict[str, Any]) -> str:
    """The default assistant registry plus ``extra`` entries, written under ``folder``."""
    from chalicelib.settings import PACKAGE_DIR

    registry = json.loads((PACKAGE_DIR / "agents" / "assistants.json").read_text())
    registry.update(extra)
    path = folder / "assistants.json"
    path.write_text(json.dumps(registry))
    return str(path)


def langgraph_assistant(graph: str) -> dict[str, Any]:
    """A registry entry for a test graph of ``tests.fixtures.graphs``, priced as demo-1."""
    return {
        "agent": "langgraph",
        "graph": f"tests.fixtures.graphs:{graph}",
        "model": "demo-1",
        "max_tokens": 64,
    }


@contextmanager
def item_atomic_dynamodb(client: Any) -> Iterator[None]:
    """Serialise moto's request handling, as DynamoDB serialises the writes to one item.

    moto evaluates a condition and applies the update without a lock, so two threads
    could both pass a check DynamoDB would have serialised; the code under test is
    unchanged, only the fake gets the real service's per-item atomicity.
    """
    lock = threading.RLock()

    def before(**_: Any) -> None:
        lock.acquire()

    def after(**_: Any) -> None:
        lock.release()

    client.meta.events.register("before-call.dynamodb.*", before, unique_id="atomic-before")
    client.meta.events.register("after-call.dynamodb.*", after, unique_id="atomic-after")
    try:
        yield
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", unique_id="atomic-before")
        client.meta.events.unregister("after-call.dynamodb.*", unique_id="atomic-after")
