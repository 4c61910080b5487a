"""No list can pass Lambda's 6 MiB response limit, whatever the items hold.

Every list of both façades is filled with maximal items — every field at its size
budget (chalicelib/domain/models.py), in the characters that escape worst (2-byte
UTF-8 for byte-bounded fields, emoji for character-bounded ones: three bytes of
Lambda's answer per byte stored) — and read through the real routes. The answer is
measured as Lambda's Python 3.11 runtime encodes it, and the client must still reach
every item: LangGraph by following ``X-Pagination-Next``, Shannon by page number (its
abridged items whole at ``GET /api/v1/schedules/{id}``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.agents.base import FAILED_ATTEMPT_MESSAGE_BYTES
from chalicelib.api.http import MAX_RESPONSE_BYTES, payload_bytes
from chalicelib.api.shannon.wire import MAX_PAGE_SIZE, WHOLE_RUNS_PAGE_SIZE
from chalicelib.domain import models as limits
from chalicelib.domain.enums import RunStatus
from chalicelib.domain.models import (
    FailedAttempt,
    Principal,
    Run,
    Schedule,
    Thread,
    clip_text,
    new_id,
)
from chalicelib.services.schedules import ScheduleDraft

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
LAMBDA_LIMIT = 6 * 1024 * 1024
KIB = 1024
EMOJI = "\U0001f600"


def text(size: int) -> str:
    """A string whose stored JSON is ``size`` bytes, each byte three in Lambda's answer."""
    return "é" * ((size - 2) // 2)


def blob(size: int) -> dict[str, str]:
    return {"k": text(size - limits.json_size({"k": ""}) + 2)}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"SCHEDULE_MAX_PER_USER": MAX_PAGE_SIZE}


class Http:
    def __init__(self, client: Any, key: str) -> None:
        self.client, self.key = client, key

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        response = self.client.http.request(
            method,
            path,
            headers={"x-api-key": self.key, "Content-Type": "application/json"},
            body=b"" if body is None else json.dumps(body),
        )
        answer = {
            "statusCode": response.status_code,
            "headers": dict(response.headers),
            "body": response.body.decode(),
            "isBase64Encoded": False,
        }
        # What Lambda's Python 3.11 runtime sends back: json.dumps, ASCII-escaped.
        assert len(json.dumps(answer).encode()) <= LAMBDA_LIMIT - KIB * KIB, path
        assert payload_bytes(json.loads(response.body)) <= MAX_RESPONSE_BYTES + 2 * KIB
        return response.status_code, json.loads(response.body), dict(response.headers)


def maximal_schedules(container: Any, count: int, thread_id: str | None = None) -> list[str]:
    """``count`` schedules with every client field at its budget: three created through
    the service as a request would (so the service accepts them) and paused with the
    longest reason, the rest copies of the first written through the store (a list
    reads only the store)."""
    question = text(limits.MAX_QUERY_BYTES)
    shell = {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": question}]}
    context = text(limits.MAX_BLOB_BYTES - limits.json_size(shell) + 2)
    biggest = {"messages": [{"role": "system", "content": context}, shell["messages"][1]]}
    assert limits.json_size(biggest) <= limits.MAX_BLOB_BYTES
    ids = []
    for _ in range(min(count, 3)):
        schedule = container.schedule_service.create(
            ALICE,
            ScheduleDraft(
                name=EMOJI * limits.MAX_NAME_CHARS,
                description=EMOJI * limits.MAX_DESCRIPTION_CHARS,
                cron_expression="0 9 * * *",
                input=biggest,
                config=blob(limits.MAX_BLOB_BYTES),
                context=blob(limits.MAX_BLOB_BYTES),
                metadata=blob(limits.MAX_METADATA_BYTES),
                extras=blob(limits.MAX_BLOB_BYTES),
                webhook="https://hooks.example.com/" + EMOJI * (limits.MAX_WEBHOOK_CHARS - 26),
                thread_id=thread_id,
                max_budget_per_run_usd=Decimal("1"),
            ),
        )
        container.schedule_service.pause(ALICE, schedule.id, reason=EMOJI * 1024)
        ids.append(schedule.id)
    first = container.schedule_store.get(ALICE, ids[0])
    while len(ids) < count:
        copy = first.model_copy(update={"id": new_id()})
        container.schedule_store.create(copy, limit=count)
        ids.append(copy.id)
    return ids


def maximal_runs(container: Any, schedule: Schedule, count: int) -> list[str]:
    """``count`` finished runs of ``schedule`` with every recorded text at its budget
    (clipped as the run executor clips them), written through the run store."""
    huge = "é" * (200 * KIB)
    ids = []
    for i in range(count):
        when = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(days=i)
        run = Run(
            run_id=new_id(),
            schedule_id=schedule.id,
            tenant_id=schedule.tenant_id,
            user_id=schedule.user_id,
            scheduled_time=when,
            status=RunStatus.ERROR,
            thread_id=schedule.thread_id,
            graph_id=schedule.graph_id,
            assistant_id=schedule.assistant_id,
            query=clip_text(huge, limits.MAX_RUN_QUERY_BYTES) or "",
            input=schedule.input,
            metadata=schedule.metadata,
            started_at=when,
            completed_at=when + timedelta(seconds=3),
            result=clip_text(huge, limits.MAX_RESULT_BYTES),
            error_message=clip_text(huge, limits.MAX_ERROR_BYTES),
            model_used="m" * 64,
            provider="p" * 32,
            webhook_status=clip_text(huge, limits.MAX_WEBHOOK_STATUS_BYTES),
            call_attempts=limits.MAX_ATTEMPTS_PER_CALL,
            failed_attempt_count=limits.MAX_ATTEMPTS_PER_CALL,
            failed_attempts=[
                FailedAttempt(
                    at=when,
                    error="ProviderError",
                    message=clip_text(huge, FAILED_ATTEMPT_MESSAGE_BYTES) or "",
                    transient=True,
                    retry_after=30.0,
                )
            ]
            * limits.MAX_RECORDED_FAILED_ATTEMPTS,
            created_at=when,
            updated_at=when,
        )
        assert container.run_store.record_skip(schedule, run)
        ids.append(run.run_id)
    return ids


def test_shannon_schedule_pages_abridge_their_largest_items(
    container: Any, client: Any, api_key: str
) -> None:
    ids = maximal_schedules(container, MAX_PAGE_SIZE)
    http = Http(client, api_key)
    status, page, _ = http("GET", f"/api/v1/schedules?page_size={MAX_PAGE_SIZE}")
    assert status == 200 and page["total_count"] == MAX_PAGE_SIZE
    listed = page["schedules"]
    assert sorted(s["schedule_id"] for s in listed) == sorted(ids)  # the whole window
    whole = http("GET", f"/api/v1/schedules/{ids[0]}")[1]
    assert payload_bytes(whole) > MAX_RESPONSE_BYTES // MAX_PAGE_SIZE  # so each was cut
    assert all(s["truncated_fields"] for s in listed)
    for item in listed[:3]:
        assert item["truncated_fields"][0] == "task_context" and item["task_context"] == {}
        whole = http("GET", f"/api/v1/schedules/{item['schedule_id']}")[1]
        assert "truncated_fields" not in whole
        untouched = set(whole) - set(item["truncated_fields"])
        assert {k: item[k] for k in untouched} == {k: whole[k] for k in untouched}
        for name in item["truncated_fields"][1:]:
            assert item[name].endswith(f"… [truncated: {len(whole[name].encode())} bytes]")
    # Pages of the default size: the same items, page after page.
    seen = []
    for number in (1, 2):
        status, page, _ = http("GET", f"/api/v1/schedules?page={number}")
        seen += [s["schedule_id"] for s in page["schedules"]]
    assert sorted(seen) == sorted(ids)


def test_shannon_run_pages_are_whole_at_the_default_size_and_fit_at_the_largest(
    container: Any, client: Any, api_key: str
) -> None:
    [sid] = maximal_schedules(container, 1)
    run_ids = maximal_runs(container, container.schedule_store.get(ALICE, sid), MAX_PAGE_SIZE)
    http = Http(client, api_key)
    _, page, _ = http("GET", f"/api/v1/schedules/{sid}/runs")
    assert page["page_size"] == WHOLE_RUNS_PAGE_SIZE  # the default
    assert len(page["runs"]) == WHOLE_RUNS_PAGE_SIZE
    assert all("truncated_fields" not in r for r in page["runs"])
    whole = {r["workflow_id"]: r for r in page["runs"]}
    _, page, _ = http("GET", f"/api/v1/schedules/{sid}/runs?page_size={MAX_PAGE_SIZE}")
    assert page["total_count"] == MAX_PAGE_SIZE
    assert sorted(r["workflow_id"] for r in page["runs"]) == sorted(run_ids)
    assert all(r["truncated_fields"] for r in page["runs"])
    for run in page["runs"]:
        if run["workflow_id"] in whole:
            kept = set(whole[run["workflow_id"]]) - set(run["truncated_fields"])
            assert {k: run[k] for k in kept} == {k: whole[run["workflow_id"]][k] for k in kept}


def _walk(http: Http, method: str, path: str, body: dict[str, Any] | None, limit: int) -> list[Any]:
    """Every item of a LangGraph list, page by page, as a client following the headers."""
    items: list[Any] = []
    offset = 0
    while True:
        if body is None:
            status, page, headers = http(method, f"{path}?limit={limit}&offset={offset}")
        else:
            status, page, headers = http(method, path, {**body, "limit": limit, "offset": offset})
        assert status == 200, page
        items += page
        if "X-Pagination-Next" in headers:
            assert int(headers["X-Pagination-Next"]) == offset + len(page)
            offset += len(page)
        elif len(page) < limit:
            return items
        else:
            offset += len(page)


def test_langgraph_lists_stop_early_and_page_through_everything(
    container: Any, client: Any, api_key: str
) -> None:
    http = Http(client, api_key)
    status, thread = http("POST", "/threads", {"metadata": blob(limits.MAX_THREAD_METADATA_BYTES)})[
        :2
    ]
    assert status == 200
    tid = thread["thread_id"]
    cron_ids = maximal_schedules(container, 12, thread_id=tid)
    crons = _walk(http, "POST", "/runs/crons/search", {}, 1000)
    assert sorted(c["cron_id"] for c in crons) == sorted(cron_ids)
    first = http("POST", "/runs/crons/search", {"limit": 1000})[1]
    assert 0 < len(first) < len(cron_ids)  # the budget, not the limit, ended the page

    schedule = container.schedule_store.get(ALICE, cron_ids[0])
    run_ids = maximal_runs(container, schedule, 40)
    runs = _walk(http, "GET", f"/threads/{tid}/runs", None, 1000)
    assert sorted(r["run_id"] for r in runs) == sorted(run_ids)
    assert len(http("GET", f"/threads/{tid}/runs?limit=1000")[1]) < len(run_ids)
    searched = _walk(http, "POST", "/runs/search", {"metadata": {"cron_id": schedule.id}}, 1000)
    assert [r["run_id"] for r in searched] == [r["run_id"] for r in runs]


def test_langgraph_thread_search_of_full_threads(
    container: Any, client: Any, api_key: str, clock: Any
) -> None:
    now = clock.now()
    values = limits.bounded_state(
        {"messages": [{"role": "user", "content": text(limits.MAX_MESSAGE_BYTES - 40)}] * 6}
    )
    assert limits.json_size(values) > limits.MAX_THREAD_STATE_BYTES - limits.MAX_MESSAGE_BYTES
    ids = []
    for _ in range(12):
        thread = Thread(
            thread_id=new_id(),
            tenant_id="tenant-a",
            user_id="alice",
            metadata=blob(limits.MAX_THREAD_METADATA_BYTES),
            values=values,
            created_at=now,
            updated_at=now,
        )
        container.thread_store.create(thread)
        ids.append(thread.thread_id)
    http = Http(client, api_key)
    threads = _walk(http, "POST", "/threads/search", {}, 1000)
    assert sorted(t["thread_id"] for t in threads) == sorted(ids)
    assert len(http("POST", "/threads/search", {"limit": 12})[1]) < len(ids)
    state = http("GET", f"/threads/{ids[0]}/state")[1]
    assert state["values"] == values


# --- the arithmetic ---------------------------------------------------------------------------


def test_payload_bytes_counts_the_runtimes_escapes() -> None:
    # Lambda's answer holds the body as a JSON string, ASCII-escaped.
    assert payload_bytes("a") == len('\\"a\\"')
    assert payload_bytes('"') == len('\\"\\\\\\"\\"')  # "\"" -> \"\\\"\"
    assert payload_bytes("é") == len('\\"\\u00e9\\"')
    assert payload_bytes(EMOJI) == len('\\"\\ud83d\\ude00\\"')
    assert payload_bytes(text(3000)) >= 3 * 3000 - 10  # three bytes per stored byte


def test_within_abridges_only_the_largest_items_to_a_common_size() -> None:
    from chalicelib.api.http import fitting, within

    items = [{"t": "a" * 10}, {"t": "b" * 5000}, {"t": "c" * 50}, {"t": "d" * 3000}]
    shell = payload_bytes({"t": "", "cut": True})
    cut = within(items, lambda item, size: {"t": "x" * (size - shell), "cut": True}, budget=4000)
    assert cut[0] is items[0] and cut[2] is items[2]  # below the common size: untouched
    assert cut[1]["cut"] and cut[3]["cut"] and len(cut[1]["t"]) == len(cut[3]["t"])
    assert payload_bytes(cut) <= 4000
    assert within(items, lambda item, size: {}, budget=10_000) == items
    assert fitting(items, budget=5100) == 3 and fitting(items, budget=5050) == 2
    assert fitting(items, budget=10) == 1  # one item always goes out
    assert fitting([], budget=10) == 0
