"""The unmodified langgraph_sdk over real HTTP against the local stack (``make run``'s setup)."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph_sdk import get_client, get_sync_client


def test_seed_examples_over_http(stack: Any) -> None:
    async def scenario() -> None:
        client = get_client(url=stack.api_url, api_key=stack.api_key)
        thread = await client.threads.create()
        assert thread["status"] == "idle" and thread["values"] is None
        cron_job = await client.crons.create_for_thread(
            thread["thread_id"],
            "agent",
            schedule="27 15 * * *",
            input={"messages": [{"role": "user", "content": "What time is it?"}]},
        )
        assert cron_job["thread_id"] == thread["thread_id"]
        assert cron_job["on_run_completed"] is None
        stateless = await client.crons.create(
            "agent",
            schedule="27 15 * * *",
            input={"messages": [{"role": "user", "content": "Daily report"}]},
        )
        assert stateless["on_run_completed"] == "delete"
        kept = await client.crons.create(
            "agent",
            schedule="27 15 * * *",
            input={"messages": [{"role": "user", "content": "Daily report"}]},
            on_run_completed="keep",
        )
        assert kept["assistant_id"] == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
        found = await client.crons.search(assistant_id="agent", limit=10)
        assert {c["cron_id"] for c in found} >= {
            cron_job["cron_id"],
            stateless["cron_id"],
            kept["cron_id"],
        }
        assert await client.crons.count(thread_id=thread["thread_id"]) == 1
        runs = await client.http.post(
            "/runs/search", json={"metadata": {"cron_id": kept["cron_id"]}}
        )
        assert runs == []
        for cron in (cron_job, stateless, kept):
            await client.crons.delete(cron["cron_id"])
        assert await client.crons.count() == 0

    asyncio.run(scenario())


def test_sync_client_and_the_shannon_view_share_one_store(stack: Any) -> None:
    import json
    import urllib.request

    client = get_sync_client(url=stack.api_url, api_key=stack.api_key)
    cron = client.crons.create("agent", schedule="0 9 * * 1-5", timezone="Asia/Shanghai")
    request = urllib.request.Request(
        f"{stack.api_url}/api/v1/schedules/{cron['cron_id']}",
        headers={"Authorization": f"Bearer {stack.api_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        shannon = json.loads(response.read())
    assert shannon["cron_expression"] == "0 9 * * 1-5"
    assert shannon["timezone"] == "Asia/Shanghai"
    assert shannon["next_run_at"].endswith("T09:00:00+08:00")
    client.crons.delete(cron["cron_id"])
