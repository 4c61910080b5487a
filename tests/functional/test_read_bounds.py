"""One API request reads a bounded amount, whatever the caller's partitions hold.

The stores take their read bound (``dynamodb_codec.ReadBound``) as a constructor
argument; these tests give the container's stores a small one — a few pages, a few
items' worth of bytes — so that moto proves the bound with a handful of items, through
the real routes. botocore's ``after-call`` hook on the container's DynamoDB client
records every Query page: how many calls a request makes and what they return.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.adapters.dynamodb_codec import (
    KEPT_BYTES,
    READ_PAGES,
    ReadBound,
    item_bytes,
)
from chalicelib.adapters.dynamodb_runs import DynamoDBRunStore
from chalicelib.adapters.dynamodb_threads import DynamoDBThreadStore
from chalicelib.api.http import MAX_RESPONSE_BYTES
from chalicelib.domain.enums import RunStatus
from chalicelib.domain.models import Principal, Run, Thread, new_id
from chalicelib.services.schedules import ScheduleDraft

ALICE = Principal(tenant_id="tenant-a", user_id="alice")


class Reads:
    """Every Query page the container's DynamoDB client receives while ``recording``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pages: list[list[dict[str, Any]]] = []

    def _hook(self, parsed: dict[str, Any], **_: Any) -> None:
        self.pages.append(list(parsed.get("Items", [])))

    @contextmanager
    def recording(self) -> Iterator[Reads]:
        self.pages = []
        self.client.meta.events.register("after-call.dynamodb.Query", self._hook, "reads")
        try:
            yield self
        finally:
            self.client.meta.events.unregister("after-call.dynamodb.Query", unique_id="reads")


def bounded(container: Any, bound: ReadBound) -> None:
    """The container's thread and run stores with ``bound`` (cached properties, filled
    before the services that hold them are built)."""
    table = container.settings.TABLE_NAME
    container.__dict__["thread_store"] = DynamoDBThreadStore(
        container.dynamodb, table, container.clock, bound=bound
    )
    container.__dict__["run_store"] = DynamoDBRunStore(container.dynamodb, table, bound=bound)
    container.__dict__.pop("thread_service", None)


def call(client: Any, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any, dict]:
    response = client.http.request(
        method,
        path,
        headers={"x-api-key": key, "Content-Type": "application/json"},
        body=b"" if body is None else json.dumps(body),
    )
    return response.status_code, json.loads(response.body), dict(response.headers)


def walk(client: Any, key: str, method: str, path: str, body: dict[str, Any] | None) -> list[Any]:
    """Every item of a LangGraph list, page by page, as a client following the headers;
    each page's ``X-Pagination-Next`` must be exactly where the next one starts."""
    items: list[Any] = []
    offset = 0
    while True:
        if body is None:
            status, page, headers = call(client, key, method, f"{path}?limit=1000&offset={offset}")
        else:
            status, page, headers = call(client, key, method, path, {**body, "offset": offset})
        assert status == 200, page
        items += page
        if "X-Pagination-Next" not in headers:
            return items
        assert int(headers["X-Pagination-Next"]) == offset + len(page) and page
        offset += len(page)


def threads(container: Any, count: int, *, state_chars: int, meta_chars: int = 10) -> list[str]:
    now = container.clock.now()
    ids = []
    for i in range(count):
        thread = Thread(
            thread_id=new_id(),
            tenant_id=ALICE.tenant_id,
            user_id=ALICE.user_id,
            metadata={"n": i, "pad": "m" * meta_chars},
            values={"messages": [{"role": "user", "content": "v" * state_chars}]},
            created_at=now + timedelta(seconds=count - i),  # oldest thread: latest created_at
            updated_at=now,
        )
        container.thread_store.create(thread)
        ids.append(thread.thread_id)
    return ids


def test_a_page_keeps_at_most_the_kept_bytes_and_the_walk_reaches_every_thread_once(
    container: Any, client: Any, api_key: str
) -> None:
    bounded(container, ReadBound(pages=READ_PAGES, kept_bytes=50_000))
    ids = threads(container, 7, state_chars=10, meta_chars=20_000)
    reads = Reads(container.dynamodb)
    with reads.recording():
        status, page, headers = call(client, api_key, "POST", "/threads/search", {"limit": 1000})
    assert status == 200
    assert len(page) == 3 and headers["X-Pagination-Next"] == "3"  # 3 × ~20 KB ≥ 50 000
    assert len(reads.pages) == 1  # the same single Query as an unbounded page
    found = walk(client, api_key, "POST", "/threads/search", {"limit": 1000})
    assert sorted(t["thread_id"] for t in found) == sorted(ids)
    assert len({t["thread_id"] for t in found}) == len(ids)
    # A filter pages the same way (a status filter here: all threads are idle).
    filtered = walk(client, api_key, "POST", "/threads/search", {"status": "idle"})
    assert [t["thread_id"] for t in filtered] == [t["thread_id"] for t in found]


def test_pages_stop_at_the_page_bound_and_what_lies_beyond_is_a_4xx(
    container: Any, client: Any, api_key: str
) -> None:
    bounded(container, ReadBound(pages=2, kept_bytes=KEPT_BYTES))
    # ~250 KB each: moto, like DynamoDB, returns at most 1 MB a page — 3 threads.
    ids = threads(container, 7, state_chars=250_000)
    reads = Reads(container.dynamodb)
    with reads.recording():
        status, page, headers = call(client, api_key, "POST", "/threads/search", {"limit": 1000})
    assert status == 200 and len(reads.pages) == 2
    assert [t["thread_id"] for t in page] == ids[::-1][:6]
    assert headers["X-Pagination-Next"] == "6"
    assert sum(len(p) for p in reads.pages) == 6  # the seventh was never read

    beyond = [
        ({"limit": 10, "offset": 6}, "smaller offset"),  # deeper than two pages
        ({"limit": 10, "sort_by": "created_at"}, "thread_id order"),  # a sort of more
    ]
    for body, advice in beyond:
        with reads.recording():
            status, answer, _ = call(client, api_key, "POST", "/threads/search", body)
        assert status == 422 and advice in answer["detail"], answer
        assert len(reads.pages) == 2
    status, answer, _ = call(client, api_key, "POST", "/threads/count", {"metadata": {"n": 1}})
    assert status == 422 and "count without a filter" in answer["detail"], answer
    assert call(client, api_key, "POST", "/threads/count", {})[1] == 7  # COUNT pages: 8×

    # Within the bound nothing changes: a sort over two pages' worth is exact.
    small = ReadBound(pages=3, kept_bytes=KEPT_BYTES)
    bounded(container, small)
    status, page, _ = call(
        client, api_key, "POST", "/threads/search", {"sort_by": "created_at", "limit": 10}
    )
    assert status == 200 and [t["thread_id"] for t in page] == ids  # newest created_at first


def test_run_lists_keep_at_most_the_kept_bytes_and_shannon_windows_stay_whole(
    container: Any, client: Any, api_key: str
) -> None:
    bounded(container, ReadBound(pages=READ_PAGES, kept_bytes=50_000))
    status, thread, _ = call(client, api_key, "POST", "/threads", {})
    tid = thread["thread_id"]
    schedule = container.schedule_service.create(
        ALICE,
        ScheduleDraft(name="r", cron_expression="0 9 * * *", input={}, thread_id=tid),
    )
    run_ids = []
    for i in range(6):
        when = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(days=i)
        run = Run(
            run_id=new_id(),
            schedule_id=schedule.id,
            tenant_id=ALICE.tenant_id,
            user_id=ALICE.user_id,
            scheduled_time=when,
            status=RunStatus.SUCCESS if i % 2 else RunStatus.ERROR,
            thread_id=tid,
            graph_id=schedule.graph_id,
            assistant_id=schedule.assistant_id,
            query="q",
            result="r" * 20_000,
            created_at=when,
            updated_at=when,
        )
        assert container.run_store.record_skip(schedule, run)
        run_ids.append(run.run_id)
    newest_first = run_ids[::-1]

    status, page, headers = call(client, api_key, "GET", f"/threads/{tid}/runs?limit=1000")
    assert status == 200 and len(page) == 3 and headers["X-Pagination-Next"] == "3"
    listed = walk(client, api_key, "GET", f"/threads/{tid}/runs", None)
    assert [r["run_id"] for r in listed] == newest_first
    by_cron = walk(
        client,
        api_key,
        "POST",
        "/runs/search",
        {"metadata": {"cron_id": schedule.id}, "limit": 1000},
    )
    assert [r["run_id"] for r in by_cron] == newest_first
    errors = walk(
        client,
        api_key,
        "POST",
        "/runs/search",
        {"metadata": {"cron_id": schedule.id}, "status": "error", "limit": 1000},
    )
    assert [r["run_id"] for r in errors] == newest_first[1::2]
    # Shannon's page windows are whole (at most 100 runs): never cut by the kept bytes.
    status, history = call(client, api_key, "GET", f"/api/v1/schedules/{schedule.id}/runs")[:2]
    assert status == 200 and len(history["runs"]) == 6


def test_run_pages_stop_at_the_page_bound_and_beyond_it_is_a_4xx_in_both_facades(
    container: Any, client: Any, api_key: str
) -> None:
    bounded(container, ReadBound(pages=1, kept_bytes=KEPT_BYTES))
    schedule = container.schedule_service.create(
        ALICE,
        ScheduleDraft(name="r", cron_expression="0 9 * * *", input={}),
    )
    for i in range(5):  # ~250 KB each: three to a page
        when = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(days=i)
        run = Run(
            run_id=new_id(),
            schedule_id=schedule.id,
            tenant_id=ALICE.tenant_id,
            user_id=ALICE.user_id,
            scheduled_time=when,
            status=RunStatus.SUCCESS,
            graph_id=schedule.graph_id,
            assistant_id=schedule.assistant_id,
            query="q",
            input={"big": "i" * 250_000},
            created_at=when,
            updated_at=when,
        )
        assert container.run_store.record_skip(schedule, run)
    path = f"/api/v1/schedules/{schedule.id}/runs?page_size=2"
    assert [len(call(client, api_key, "GET", f"{path}&page={p}")[1]["runs"]) for p in (1,)] == [2]
    status, answer = call(client, api_key, "GET", f"{path}&page=3")[:2]
    assert status == 400 and "earlier page" in json.dumps(answer), answer
    # The same runs through LangGraph: the page bound ends the page after one page's
    # runs, and the offset after them lies beyond it.
    search = {"metadata": {"cron_id": schedule.id}, "limit": 1000}
    status, page, headers = call(client, api_key, "POST", "/runs/search", search)
    assert status == 200 and len(page) == 3 and headers["X-Pagination-Next"] == "3"
    status, answer, _ = call(client, api_key, "POST", "/runs/search", {**search, "offset": 3})
    assert status == 422 and "smaller offset" in answer["detail"], answer


def test_the_production_bound_fits_the_api_function() -> None:
    config = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
    memory_mb = config["lambda_functions"]["api_handler"]["lambda_memory_size"]
    # Kept items always reach the response budget before the kept bound, so the kept
    # bound never shortens a page the response cap would not; and what a request reads
    # (pages of ≤ 1 MB), held even twice over as parsed objects, fits the function.
    assert KEPT_BYTES >= MAX_RESPONSE_BYTES
    assert memory_mb // 4 >= 2 * READ_PAGES
    # DynamoDB's sizes: names and UTF-8 strings by their bytes, numbers ~1 byte per 2 digits.
    assert item_bytes({"pk": {"S": "é"}, "n": {"N": "12"}, "x": {"NULL": True}}) == 4 + 3 + 2
