"""Every SDK call a cron user makes, through the sync *and* the async ``langgraph_sdk`` client.

One scenario is written once and run against both clients: ``_call`` awaits what
the async client returns and passes the sync client's results through, so the two
clients are held to exactly the same expectations (as the SDK's own parity test
does for its methods).
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from langgraph_sdk import errors as sdk_errors

from tests.compat.bridge import async_client, sync_client
from tests.compat.firing import fire

AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"


async def _call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _raises(error: type[Exception], request: Callable[[], Any]) -> Exception:
    # A thunk: the sync client raises while the call is made, the async one when awaited.
    with pytest.raises(error) as caught:
        await _call(request())
    return caught.value


async def scenario(sdk: Any, container: Any, clock: Any) -> None:
    call = _call

    # --- assistants: registered agents, by graph name or system assistant id -------------
    assistants = await call(sdk.assistants.search())
    assert [a["graph_id"] for a in assistants] == ["demo", "agent", "bedrock", "openai"]
    agent = await call(sdk.assistants.get("agent"))
    assert agent == await call(sdk.assistants.get(AGENT_ID))
    assert agent["assistant_id"] == AGENT_ID
    assert agent["metadata"] == {"created_by": "system"}
    assert (agent["name"], agent["version"], agent["config"]) == ("agent", 1, {})
    assert await call(sdk.assistants.search(graph_id="agent")) == [agent]
    assert await call(sdk.assistants.count(graph_id="agent")) == 1
    page = await call(sdk.assistants.search(limit=1, offset=1, response_format="object"))
    assert page == {"assistants": [agent], "next": "2"}
    await _raises(sdk_errors.NotFoundError, lambda: sdk.assistants.get(str(uuid.uuid4())))

    # --- threads ----------------------------------------------------------------------------
    thread = await call(sdk.threads.create(metadata={"project": "news"}, graph_id="agent"))
    tid = thread["thread_id"]
    assert thread["metadata"] == {"project": "news", "graph_id": "agent"}
    assert await call(sdk.threads.get(tid)) == thread
    assert await call(sdk.threads.search(metadata={"project": "news"})) == [thread]
    assert await call(sdk.threads.search(ids=[tid], status="idle")) == [thread]
    assert await call(sdk.threads.count(metadata={"graph_id": "agent"})) == 1
    state = await call(sdk.threads.get_state(tid))
    assert state["values"] == {} and state["checkpoint"]["checkpoint_id"] is None
    conflict = await _raises(sdk_errors.ConflictError, lambda: sdk.threads.create(thread_id=tid))
    assert isinstance(conflict, sdk_errors.APIStatusError) and conflict.status_code == 409
    assert await call(sdk.threads.create(thread_id=tid, if_exists="do_nothing")) == thread

    # --- crons: create_for_thread with every option the SDK sends ------------------------
    cron = await call(
        sdk.crons.create_for_thread(
            tid,
            "agent",
            schedule="0 9 * * *",
            input={"messages": [{"role": "user", "content": "Morning news"}]},
            metadata={"name": "morning", "cron_id": "spoofed"},
            config={"configurable": {"model": "m", "run_id": "spoofed"}, "tags": ["t"]},
            context={"demo_output_tokens": 5},
            interrupt_before="*",
            multitask_strategy="interrupt",
            end_time=datetime(2027, 1, 1, tzinfo=UTC),
            enabled=True,
            timezone=ZoneInfo("Asia/Shanghai"),
            stream_mode=["values", "updates"],
            durability="sync",
        )
    )
    cid = cron["cron_id"]
    assert cron["thread_id"] == tid and cron["on_run_completed"] is None
    assert cron["timezone"] == "Asia/Shanghai"
    assert cron["end_time"] == "2027-01-01T00:00:00+00:00"
    assert cron["next_run_date"] == "2026-01-16T01:00:00+00:00"  # 09:00 in Shanghai
    assert cron["metadata"] == {"name": "morning"}  # reserved keys stripped
    payload = cron["payload"]
    assert payload["config"] == {"configurable": {"model": "m", "cron_id": cid}, "tags": ["t"]}
    assert payload["context"] == {"demo_output_tokens": 5}
    assert payload["multitask_strategy"] == "interrupt"
    assert payload["stream_mode"] == ["values", "updates"]
    assert (payload["durability"], payload["interrupt_before"]) == ("sync", "*")
    assert payload["timezone"] == "Asia/Shanghai" and payload["enabled"] is True

    # --- crons: stateless create, disabled, keeping its threads ---------------------------
    other = await call(
        sdk.crons.create(
            "agent",
            schedule="0 10 * * *",
            on_run_completed="keep",
            enabled=False,
            webhook="https://hooks.example.com/cron",
        )
    )
    oid = other["cron_id"]
    assert (other["enabled"], other["on_run_completed"]) == (False, "keep")
    # Like the reference, a disabled cron still shows when it would fire next.
    assert other["next_run_date"] == "2026-01-15T10:00:00+00:00"
    assert other["payload"]["webhook"] == "https://hooks.example.com/cron"

    # --- search and count ----------------------------------------------------------------
    ids = lambda crons: [c["cron_id"] for c in crons]  # noqa: E731
    assert ids(await call(sdk.crons.search())) == [oid, cid]  # newest first
    assert ids(await call(sdk.crons.search(thread_id=tid))) == [cid]
    assert ids(await call(sdk.crons.search(assistant_id="agent"))) == [oid, cid]
    assert ids(await call(sdk.crons.search(assistant_id=AGENT_ID, enabled=False))) == [oid]
    assert ids(await call(sdk.crons.search(metadata={"name": "morning"}))) == [cid]
    by_next = await call(sdk.crons.search(sort_by="next_run_date", sort_order="asc"))
    assert ids(by_next) == [oid, cid]
    selected = await call(sdk.crons.search(select=["cron_id", "enabled"], limit=1))
    assert selected == [{"cron_id": oid, "enabled": False}]
    assert await call(sdk.crons.count()) == 2
    assert await call(sdk.crons.count(thread_id=tid)) == 1
    assert await call(sdk.crons.count(assistant_id="agent", metadata={"name": "morning"})) == 1

    # --- a fire, then the thread's runs ------------------------------------------------------
    outcome = fire(container, clock, cid, datetime(2026, 1, 16, 1, 0, tzinfo=UTC))
    assert outcome["status"] == "success"
    [run] = await call(sdk.runs.list(tid))
    assert run["run_id"] == outcome["run_id"]
    assert run["kwargs"]["config"]["configurable"]["cron_id"] == cid
    assert run["metadata"]["name"] == "morning"
    assert run["metadata"]["agentcron"]["status"] == "success"
    assert await call(sdk.runs.get(tid, run["run_id"])) == run
    await _raises(sdk_errors.NotFoundError, lambda: sdk.runs.get(tid, str(uuid.uuid4())))

    # --- update ------------------------------------------------------------------------------
    updated = await call(
        sdk.crons.update(oid, schedule="30 10 * * *", enabled=True, metadata={"b": 2})
    )
    assert (updated["schedule"], updated["enabled"]) == ("30 10 * * *", True)
    assert updated["payload"]["schedule"] == "30 10 * * *"
    assert updated["payload"]["enabled"] is True
    assert updated["metadata"] == {"b": 2}
    assert updated["next_run_date"] == "2026-01-16T10:30:00+00:00"
    merged = await call(sdk.crons.update(oid, metadata={"c": 3}, timezone="Europe/Paris"))
    assert merged["metadata"] == {"b": 2, "c": 3}
    assert merged["timezone"] == "Europe/Paris"
    paused = await call(sdk.crons.update(cid, enabled=False, end_time=None))
    assert (paused["enabled"], paused["end_time"]) == (False, None)
    assert await call(sdk.crons.update(cid, enabled=False)) == paused  # idempotent

    # --- errors are the SDK's classes --------------------------------------------------------
    bad = await _raises(
        sdk_errors.UnprocessableEntityError,
        lambda: sdk.crons.create("agent", schedule="* * * * * *"),
    )
    assert "6-field" in str(getattr(bad, "message", ""))
    await _raises(
        sdk_errors.BadRequestError, lambda: sdk.crons.create("agent", schedule="0 0 30 2 *")
    )
    missing = await _raises(
        sdk_errors.NotFoundError, lambda: sdk.crons.create("nope", schedule="@daily")
    )
    assert getattr(missing, "message", "") == "Assistant 'nope' not found"
    await _raises(
        sdk_errors.NotFoundError, lambda: sdk.crons.update(str(uuid.uuid4()), enabled=True)
    )

    # --- delete ------------------------------------------------------------------------------
    assert await call(sdk.crons.delete(oid)) is None
    await _raises(sdk_errors.NotFoundError, lambda: sdk.crons.delete(oid))
    assert await call(sdk.threads.delete(tid)) is None  # and its cron with it
    assert await call(sdk.crons.count()) == 0
    await _raises(sdk_errors.NotFoundError, lambda: sdk.threads.get(tid))


def test_sync_client_covers_every_call(
    client: Any, api_key: str, container: Any, clock: Any
) -> None:
    with sync_client(client, api_key) as sdk:
        asyncio.run(scenario(sdk, container, clock))


def test_async_client_covers_every_call(
    client: Any, api_key: str, container: Any, clock: Any
) -> None:
    async def run() -> None:
        async with async_client(client, api_key) as sdk:
            await scenario(sdk, container, clock)

    asyncio.run(run())


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_auth_failures_map_to_the_sdk_classes(client: Any, flavour: str) -> None:
    async def run() -> None:
        make = sync_client if flavour == "sync" else async_client
        anonymous = make(client, None)
        wrong = make(client, "ac_wrong_key_000000000000")
        missing = await _raises(sdk_errors.PermissionDeniedError, lambda: anonymous.crons.search())
        assert getattr(missing, "body", None) == {"detail": "Missing authentication headers"}
        invalid = await _raises(sdk_errors.AuthenticationError, lambda: wrong.crons.count())
        assert getattr(invalid, "body", None) == {"detail": "Invalid token"}

    asyncio.run(run())
