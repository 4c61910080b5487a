"""Every run outcome is recordable: item size budgets against DynamoDB's 400 KB (moto enforces it).

The largest thread, input and output agentcron accepts go through real runs (the
LangGraph agent running a graph whose model answers 1 MiB) and every run finishes
with its cost; what cannot fit is refused with a 4xx when the client sends it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.domain import models as limits
from chalicelib.domain.enums import OnRunCompleted
from chalicelib.domain.models import Principal, user_message_input
from chalicelib.services.schedules import ScheduleDraft
from tests.fixtures import graphs
from tests.helpers import assistants_file, deliver, langgraph_assistant

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
KIB = 1024


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    graphs.reset()
    return {
        "ASSISTANTS_FILE": assistants_file(tmp_path, huge=langgraph_assistant("huge_answer_graph"))
    }


def lg(client: Any, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = client.http.request(
        method,
        path,
        headers={"x-api-key": key, "Content-Type": "application/json"},
        body=b"" if body is None else json.dumps(body),
    )
    return response.status_code, json.loads(response.body) if response.body else None


def blob_of(size: int, key: str = "k") -> dict[str, str]:
    """A JSON object whose stored size is exactly ``size`` bytes."""
    return {key: "x" * (size - limits.json_size({key: ""}))}


def stored_size(container: Any, key: dict[str, Any]) -> int:
    """The item's size as DynamoDB counts it (attribute names + values)."""
    item = container.dynamodb.get_item(TableName=container.settings.TABLE_NAME, Key=key)["Item"]
    return sum(len(k.encode()) + len(str(next(iter(v.values()))).encode()) for k, v in item.items())


def test_thread_metadata_over_its_budget_is_refused_with_a_4xx(
    container: Any, client: Any, api_key: str
) -> None:
    # The finding: a ~390 KB thread was accepted, and its first run could never finish.
    assert lg(client, api_key, "POST", "/threads", {"metadata": blob_of(390 * KIB)}) == (
        422,
        {"detail": "metadata too large: max 64 KiB"},
    )
    assert lg(client, api_key, "POST", "/threads", {"metadata": blob_of(64 * KIB + 1)})[0] == 422
    assert lg(client, api_key, "POST", "/threads/count", {}) == (200, 0)
    assert lg(client, api_key, "POST", "/threads", {"metadata": blob_of(64 * KIB)})[0] == 200


def test_the_largest_thread_input_and_output_finish_with_their_cost(
    container: Any, client: Any, api_key: str, clock: Any
) -> None:
    status, thread = lg(client, api_key, "POST", "/threads", {"metadata": blob_of(64 * KIB)})
    assert status == 200
    tid = thread["thread_id"]
    # The largest input a cron accepts (a 32 KiB question, 64 KiB in all), and a larger one.
    question = "q" * limits.MAX_QUERY_BYTES
    shell = {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": question}]}
    context = "c" * (limits.MAX_BLOB_BYTES - limits.json_size(shell))
    biggest = {"messages": [{"role": "system", "content": context}, shell["messages"][1]]}
    assert limits.json_size(biggest) == limits.MAX_BLOB_BYTES
    cron = {"assistant_id": "huge", "schedule": "0 9 * * *", "metadata": blob_of(16 * KIB)}
    for too_big in (
        {"messages": [{"role": "system", "content": context + "c"}, shell["messages"][1]]},
        {"messages": [biggest["messages"][0], {"role": "user", "content": question + "q"}]},
    ):
        path = f"/threads/{tid}/runs/crons"
        assert lg(client, api_key, "POST", path, {**cron, "input": too_big})[0] == 422
    status, created = lg(
        client, api_key, "POST", f"/threads/{tid}/runs/crons", {**cron, "input": biggest}
    )
    assert status == 200, created
    # Each run adds a 64 KiB question and a 1 MiB answer: by the third the state is full.
    for day in range(4):
        when = NINE + timedelta(days=day)
        clock.set(when + timedelta(seconds=1))
        result = deliver(container, created["cron_id"], when)
        assert result["status"] == "success", result
        assert Decimal(result["cost_usd"]) > 0
    runs = container.run_store.list_for_schedule(ALICE, created["cron_id"], offset=0, limit=10)
    assert [r.status.value for r in runs] == ["success"] * 4
    for run in runs:
        assert run.usage.cost_usd > 0 and run.usage.total_tokens > 0
        assert run.result is not None and run.result.endswith(
            f"… [truncated: {graphs.HUGE_ANSWER_BYTES - 1} bytes]"
        )
        assert limits.json_size(run.result) <= limits.MAX_RESULT_BYTES
        key = {"pk": codec.s(codec.runs_pk("tenant-a", "alice", run.schedule_id))}
        key["sk"] = codec.s(codec.run_sk(run))
        assert stored_size(container, key) < 200 * KIB
    schedule = container.schedule_store.get(ALICE, created["cron_id"])
    assert (schedule.total_runs, schedule.successful_runs) == (4, 4)
    stored = container.thread_store.get(ALICE, tid)
    assert limits.json_size(stored.values) <= limits.MAX_THREAD_STATE_BYTES
    messages = stored.values["messages"]
    assert messages[-2] == {"role": "user", "content": question}  # the latest question, whole
    assert messages[-1]["role"] == "assistant"
    assert limits.json_size(messages[-1]) <= limits.MAX_MESSAGE_BYTES
    thread_key = {"pk": codec.s(codec.threads_pk("tenant-a", "alice")), "sk": codec.s(tid)}
    assert stored_size(container, thread_key) < limits.ITEM_LIMIT_BYTES


@pytest.mark.parametrize(
    ("context", "budget", "status"),
    [
        ({"demo_fail": "provider exploded"}, "1", "error"),
        ({"demo_model_calls": 5}, "0.0015", "budget_exceeded"),
        ({"demo_sleep_seconds": 30}, "1", "timeout"),
    ],
)
def test_a_kept_thread_of_a_failed_run_keeps_the_input_message(
    container: Any, clock: Any, context: dict[str, Any], budget: str, status: str
) -> None:
    sched = container.schedule_service.create(
        ALICE,
        ScheduleDraft(
            name="kept",
            cron_expression="0 9 * * *",
            input=user_message_input("Summarise yesterday"),
            on_run_completed=OnRunCompleted.KEEP,
            context=context,
            max_budget_per_run_usd=Decimal(budget),
            timeout_seconds=1,
        ),
    )
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(container, sched.id, NINE)["status"] == status
    [thread] = container.thread_store.list_for_user(ALICE)
    assert thread.status.value == "error"
    assert thread.values == {"messages": [{"role": "user", "content": "Summarise yesterday"}]}


def test_a_failed_run_on_a_users_thread_appends_its_input(container: Any, clock: Any) -> None:
    from chalicelib.domain.models import Thread

    now = clock.now()
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    container.thread_store.create(
        Thread(
            thread_id="t-1",
            tenant_id="tenant-a",
            user_id="alice",
            values={"messages": history, "notes": 1},
            created_at=now,
            updated_at=now,
        )
    )
    sched = container.schedule_service.create(
        ALICE,
        ScheduleDraft(
            name="bound",
            cron_expression="0 9 * * *",
            input=user_message_input("and now?"),
            thread_id="t-1",
            context={"demo_fail": "provider exploded"},
        ),
    )
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(container, sched.id, NINE)["status"] == "error"
    thread = container.thread_store.get(ALICE, "t-1")
    assert thread.values == {
        "messages": [*history, {"role": "user", "content": "and now?"}],
        "notes": 1,
    }


# --- the budgets themselves -------------------------------------------------------------------


def _failed_attempts_bytes() -> int:
    """The recorded failed attempts of a run at their largest (as the run stores them)."""
    from chalicelib.agents.base import AttemptLog, ProviderError

    log = AttemptLog()
    for _ in range(100):
        error = ProviderError("\x01" * 10_000, transient=True, retry_after=1e300)
        log.failure(error, datetime(2026, 1, 1, tzinfo=UTC))
    size = limits.json_size([a.model_dump(mode="json") for a in log.failed])
    assert len(log.failed) == limits.MAX_RECORDED_FAILED_ATTEMPTS and size < 4 * KIB
    return size


def test_the_budgets_add_up_to_less_than_an_item() -> None:
    worst_escape = 6  # a control character is stored as \\u00XX
    schedule_parts = (
        4 * limits.MAX_BLOB_BYTES
        + limits.MAX_METADATA_BYTES
        + worst_escape * (limits.MAX_NAME_CHARS + limits.MAX_DESCRIPTION_CHARS)
        + worst_escape * limits.MAX_WEBHOOK_CHARS
    )
    assert schedule_parts <= limits.MAX_SCHEDULE_SPEC_BYTES < limits.ITEM_LIMIT_BYTES - 8 * KIB
    run_parts = (
        limits.MAX_BLOB_BYTES  # input
        + limits.MAX_RUN_QUERY_BYTES
        + limits.MAX_METADATA_BYTES
        + KIB  # the ids the run adds to the metadata
        + limits.MAX_RESULT_BYTES
        + limits.MAX_ERROR_BYTES
        + _failed_attempts_bytes()
    )
    assert run_parts < limits.ITEM_LIMIT_BYTES // 2
    thread_parts = limits.MAX_THREAD_METADATA_BYTES + limits.MAX_THREAD_STATE_BYTES
    assert thread_parts < limits.ITEM_LIMIT_BYTES - 16 * KIB


@pytest.mark.parametrize("text", ["a" * 100_000, "€" * 50_000, "\x01" * 40_000, '"' * 70_000])
def test_clipped_text_fits_its_budget_and_says_what_was_cut(text: str) -> None:
    clipped = limits.clip_text(text, 8 * KIB)
    assert clipped is not None and limits.json_size(clipped) <= 8 * KIB
    assert clipped.endswith(f"… [truncated: {len(text.encode())} bytes]")
    assert text.startswith(clipped.split("…")[0]) and len(clipped) > 1000
    assert limits.clip_text("short", 8 * KIB) == "short"


def test_bounded_state_clips_large_messages_then_drops_the_oldest() -> None:
    big = {"role": "assistant", "content": "y" * (200 * KIB)}
    values = {
        "messages": [{"role": "user", "content": f"q{i}" * 25_000} for i in range(6)] + [big],
        "other": 1,
    }
    kept = limits.bounded_state(values)
    assert limits.json_size(kept) <= limits.MAX_THREAD_STATE_BYTES
    assert kept["other"] == 1
    assert kept["messages"][-1]["content"].endswith(f"[truncated: {200 * KIB} bytes]")
    assert kept["messages"][-2] == values["messages"][-2]  # recent turns are kept whole
    assert len(kept["messages"]) < len(values["messages"])
    assert limits.bounded_state({"blob": "z" * (400 * KIB)}) == {
        "__truncated__": "thread state exceeded 300 KiB"
    }
