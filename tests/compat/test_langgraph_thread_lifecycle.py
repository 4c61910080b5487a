"""What each kind of cron leaves behind after it fires (the seed's "thread cleanup" section)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.errors import NotFoundError

from tests.compat.firing import fire, has_entry

FIRST = datetime(2026, 1, 15, 15, 27, tzinfo=UTC)
SECOND = FIRST + timedelta(days=1)
REPORT = {"messages": [{"role": "user", "content": "Daily report"}]}


def runs_of(lg: SyncLangGraphClient, cron_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = lg.http.post(
        "/runs/search", json={"metadata": {"cron_id": cron_id}, "limit": 10, "offset": 0}
    )
    return found


def test_stateless_delete_cron_leaves_no_thread_after_its_run(
    lg: SyncLangGraphClient, container: Any, clock: Any
) -> None:
    # Given a stateless cron with the default on_run_completed
    cron = lg.crons.create("agent", schedule="27 15 * * *", input=REPORT)
    assert cron["on_run_completed"] == "delete"

    # When it fires
    assert fire(container, clock, cron["cron_id"], FIRST)["status"] == "success"

    # Then its run is recorded, but no thread remains
    [run] = runs_of(lg, cron["cron_id"])
    assert run["status"] == "success"
    assert lg.threads.search(metadata={"cron_id": cron["cron_id"]}) == []
    assert lg.threads.count(metadata={"cron_id": cron["cron_id"]}) == 0
    assert lg.threads.count() == 0
    if run["thread_id"] is not None:
        with pytest.raises(NotFoundError):
            lg.threads.get(run["thread_id"])


def test_keep_cron_leaves_one_thread_per_fire(
    lg: SyncLangGraphClient, container: Any, clock: Any
) -> None:
    # Given a stateless cron that keeps its threads
    cron = lg.crons.create(
        "agent",
        schedule="27 15 * * *",
        input=REPORT,
        on_run_completed="keep",
        metadata={"team": "ops"},
    )

    # When it fires on two days
    for when in (FIRST, SECOND):
        assert fire(container, clock, cron["cron_id"], when)["status"] == "success"

    # Then there is one kept thread per fire, found by the cron id (and the cron's metadata)
    kept = lg.threads.search(metadata={"cron_id": cron["cron_id"]})
    assert len(kept) == 2
    assert lg.threads.search(metadata={"team": "ops"}) == kept
    assert lg.threads.count(metadata={"cron_id": cron["cron_id"]}) == 2
    for thread in kept:
        assert thread["status"] == "idle"
        assert thread["metadata"]["graph_id"] == "agent"
        assert thread["metadata"]["assistant_id"] == cron["assistant_id"]
        # Each fire starts a fresh conversation: one question, one answer.
        assert [m["role"] for m in thread["values"]["messages"]] == ["user", "assistant"]
    # Newest first: the second fire's thread leads.
    assert kept[0]["created_at"] > kept[1]["created_at"]
    assert len(runs_of(lg, cron["cron_id"])) == 2


def test_thread_cron_accumulates_state_across_fires(
    lg: SyncLangGraphClient, container: Any, clock: Any
) -> None:
    # Given a cron on the user's own thread
    thread = lg.threads.create(metadata={"owner": "alice"})
    cron = lg.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="27 15 * * *", input=REPORT
    )

    # When it fires twice
    first = fire(container, clock, cron["cron_id"], FIRST)
    state_after_first = lg.threads.get_state(thread["thread_id"])
    second = fire(container, clock, cron["cron_id"], SECOND)

    # Then the conversation grows on the same thread
    state = lg.threads.get_state(thread["thread_id"])
    assert len(state_after_first["values"]["messages"]) == 2
    messages = state["values"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert "2 earlier messages in the thread" in messages[3]["content"]
    # A new state is a new checkpoint.
    assert state["checkpoint"]["checkpoint_id"] != state_after_first["checkpoint"]["checkpoint_id"]
    assert state["checkpoint"]["thread_id"] == thread["thread_id"]
    assert (state["next"], state["tasks"], state["interrupts"]) == ([], [], [])
    assert lg.threads.get(thread["thread_id"])["values"] == state["values"]

    # And both runs are the thread's, newest first
    runs = lg.runs.list(thread["thread_id"])
    assert [r["run_id"] for r in runs] == [second["run_id"], first["run_id"]]
    assert {r["thread_id"] for r in runs} == {thread["thread_id"]}
    assert lg.runs.list(thread["thread_id"], limit=1, offset=1)[0]["run_id"] == first["run_id"]
    assert lg.runs.list(thread["thread_id"], status="success") == runs
    assert lg.runs.list(thread["thread_id"], status="error") == []
    assert lg.runs.get(thread["thread_id"], first["run_id"])["status"] == "success"
    assert lg.threads.search(metadata={"owner": "alice"})[0]["thread_id"] == thread["thread_id"]


def test_deleting_a_thread_deletes_its_crons(lg: SyncLangGraphClient, container: Any) -> None:
    thread = lg.threads.create()
    on_thread = lg.crons.create_for_thread(thread["thread_id"], "agent", schedule="0 9 * * *")
    elsewhere = lg.crons.create("agent", schedule="0 9 * * *")

    lg.threads.delete(thread["thread_id"])

    assert [c["cron_id"] for c in lg.crons.search()] == [elsewhere["cron_id"]]
    with pytest.raises(NotFoundError):
        lg.http.get(f"/runs/crons/{on_thread['cron_id']}")
    with pytest.raises(NotFoundError):
        lg.threads.get(thread["thread_id"])
    with pytest.raises(NotFoundError):
        lg.threads.delete(thread["thread_id"])
    assert not has_entry(container, on_thread["cron_id"])
    assert has_entry(container, elsewhere["cron_id"])
