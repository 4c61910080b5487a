"""The seed document's walk-through, driven by the real ``langgraph_sdk``, fired by the trigger.

``shared/seeds/000_b6f49d40c976ce0d.txt``: a thread, a cron on it, a stateless cron
(default ``on_run_completed``) and one with ``keep``; each fires through the run
engine exactly as EventBridge Scheduler would deliver it; the runs are found by
``cron_id`` (``client.runs.search`` does not exist in SDK 0.4.14, so the test posts
to ``/runs/search`` through the SDK's own HTTP client); the crons are deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.errors import NotFoundError

from chalicelib.agents.registry import system_assistant_id
from tests.compat.firing import fire, has_entry

AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"  # uuid5(LangGraph's namespace, "agent")
FIRE = datetime(2026, 1, 15, 15, 27, tzinfo=UTC)  # "27 15 * * *" after 08:00Z


def runs_of(lg: SyncLangGraphClient, cron_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = lg.http.post(
        "/runs/search", json={"metadata": {"cron_id": cron_id}}
    )
    return found


def test_seed_walkthrough_thread_stateless_and_keep_crons_fire_and_are_found(
    lg: SyncLangGraphClient, container: Any, clock: Any
) -> None:
    # Given the seed's setup: the "agent" graph and a new thread
    assert system_assistant_id("agent") == AGENT_ID
    thread = lg.threads.create()
    assert (thread["status"], thread["values"], thread["metadata"]) == ("idle", None, {})

    # When the seed's three crons are created
    question = {"messages": [{"role": "user", "content": "What time is it?"}]}
    cron_job = lg.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="27 15 * * *", input=question
    )
    cron_job_stateless = lg.crons.create("agent", schedule="27 15 * * *", input=question)
    cron_job_keep = lg.crons.create(
        "agent",
        schedule="27 15 * * *",
        input={"messages": [{"role": "user", "content": "Daily report"}]},
        on_run_completed="keep",
    )

    # Then they read back as the reference server returns them, plus (last, in the create
    # response only) agentcron's webhook signing secret
    assert list(cron_job) == [
        "cron_id",
        "assistant_id",
        "thread_id",
        "user_id",
        "end_time",
        "schedule",
        "timezone",
        "payload",
        "next_run_date",
        "metadata",
        "on_run_completed",
        "enabled",
        "created_at",
        "updated_at",
        "webhook_secret",
    ]
    assert cron_job["thread_id"] == thread["thread_id"]
    assert cron_job["on_run_completed"] is None
    assert cron_job_stateless["thread_id"] is None
    assert cron_job_stateless["on_run_completed"] == "delete"
    assert cron_job_keep["on_run_completed"] == "keep"
    for cron in (cron_job, cron_job_stateless, cron_job_keep):
        assert cron["assistant_id"] == AGENT_ID
        assert cron["user_id"] == "alice"
        assert cron["timezone"] is None and cron["end_time"] is None
        assert cron["enabled"] is True
        assert cron["next_run_date"] == "2026-01-15T15:27:00+00:00"
        assert cron["created_at"] == cron["updated_at"] == "2026-01-15T08:00:00+00:00"
        assert cron["payload"]["assistant_id"] == AGENT_ID
        assert cron["payload"]["config"] == {"configurable": {"cron_id": cron["cron_id"]}}
    assert cron_job_stateless["payload"] == {
        "schedule": "27 15 * * *",
        "input": question,
        "assistant_id": AGENT_ID,
        "config": {"configurable": {"cron_id": cron_job_stateless["cron_id"]}},
    }

    # When each cron fires at 15:27 through the trigger, as EventBridge delivers it
    outcomes = {
        c["cron_id"]: fire(container, clock, c["cron_id"], FIRE)
        for c in (
            cron_job,
            cron_job_stateless,
            cron_job_keep,
        )
    }

    # Then each ran the agent once
    assert {o["status"] for o in outcomes.values()} == {"success"}

    # And its run is found by cron_id, carrying the cron id where LangGraph puts it too
    for cron in (cron_job, cron_job_stateless, cron_job_keep):
        runs = runs_of(lg, cron["cron_id"])
        assert len(runs) == 1, cron
        run = runs[0]
        assert run["status"] == "success"
        assert run["assistant_id"] == AGENT_ID
        assert run["metadata"]["cron_id"] == cron["cron_id"]
        assert run["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
        assert run["kwargs"]["input"] == cron["payload"]["input"]
        assert run["run_id"] == outcomes[cron["cron_id"]]["run_id"]

    # And the thread cron's run is on the user's thread, whose state now has the answer
    [thread_run] = lg.runs.list(thread["thread_id"])
    assert thread_run["run_id"] == outcomes[cron_job["cron_id"]]["run_id"]
    assert lg.runs.get(thread["thread_id"], thread_run["run_id"])["status"] == "success"
    messages = lg.threads.get_state(thread["thread_id"])["values"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"].startswith("Demo answer to: What time is it?")

    # And the kept cron left its thread; the default one did not
    kept = lg.threads.search(metadata={"cron_id": cron_job_keep["cron_id"]})
    assert len(kept) == 1
    assert lg.threads.search(metadata={"cron_id": cron_job_stateless["cron_id"]}) == []

    # When the seed deletes its crons ("very important")
    for cron in (cron_job, cron_job_stateless, cron_job_keep):
        lg.crons.delete(cron["cron_id"])

    # Then they are gone, and nothing is left to fire
    assert lg.crons.search() == []
    assert lg.crons.count() == 0
    with pytest.raises(NotFoundError):
        lg.crons.delete(cron_job["cron_id"])
    for cron in (cron_job, cron_job_stateless, cron_job_keep):
        assert not has_entry(container, cron["cron_id"])
    # The user's thread stays (deleting a cron never deletes a user's thread).
    assert lg.threads.get(thread["thread_id"])["thread_id"] == thread["thread_id"]
