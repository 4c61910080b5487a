"""One store, two façades: a schedule created through either API reads consistently through both."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.raw import LangGraphHTTP
from tests.helpers import SEED_BODY, JSONClient

SHANNON = "/api/v1/schedules"
DEMO_ID = "fcb1d0d2-a4d7-5bb4-b10a-57c00fdcb684"  # the default assistant's system id
AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"


@pytest.fixture
def shannon(client: Any, api_key: str) -> JSONClient:
    return JSONClient(client, api_key)


@pytest.fixture
def langgraph(client: Any, api_key: str) -> LangGraphHTTP:
    return LangGraphHTTP(client, api_key)


def test_a_shannon_schedule_is_a_stateless_cron_of_the_default_assistant(
    shannon: JSONClient, langgraph: LangGraphHTTP
) -> None:
    # Given the seed's Shannon schedule (09:00 in Shanghai)
    sid = shannon.post(SHANNON, SEED_BODY)[1]["schedule_id"]
    got = shannon.get(f"{SHANNON}/{sid}")[1]

    # When it is read through the LangGraph API
    status, cron = langgraph.call("GET", f"/runs/crons/{sid}")

    # Then every shared field agrees
    assert status == 200
    assert cron["cron_id"] == sid
    assert cron["assistant_id"] == DEMO_ID
    assert (cron["thread_id"], cron["on_run_completed"]) == (None, "delete")
    assert cron["user_id"] == got["user_id"] == "alice"
    assert cron["schedule"] == got["cron_expression"] == "0 9 * * *"
    assert cron["timezone"] == got["timezone"] == "Asia/Shanghai"
    assert cron["enabled"] is (got["status"] == "ACTIVE")
    assert cron["next_run_date"] == "2026-01-16T01:00:00+00:00"
    assert got["next_run_at"] == "2026-01-16T09:00:00+08:00"  # the same instant
    assert cron["created_at"] == "2026-01-15T08:00:00+00:00"
    assert got["created_at"] == "2026-01-15T08:00:00Z"
    assert cron["metadata"] == {}
    assert cron["payload"] == {
        "schedule": "0 9 * * *",
        "assistant_id": DEMO_ID,
        "config": {"configurable": {"cron_id": sid}},
        "input": {"messages": [{"role": "user", "content": got["task_query"]}]},
        "context": got["task_context"],
        "timezone": "Asia/Shanghai",
    }
    # And it is found by search and count, by the default graph's name too
    assert [c["cron_id"] for c in langgraph.call("POST", "/runs/crons/search", {})[1]] == [sid]
    assert langgraph.call("POST", "/runs/crons/count", {"assistant_id": "demo"}) == (200, 1)

    # When Shannon pauses it, LangGraph sees it disabled; when LangGraph enables it, Shannon
    # sees it active again
    shannon.post(f"{SHANNON}/{sid}/pause", {"reason": "maintenance"})
    assert langgraph.call("GET", f"/runs/crons/{sid}")[1]["enabled"] is False
    assert langgraph.call("PATCH", f"/runs/crons/{sid}", {"enabled": True})[1]["enabled"] is True
    assert shannon.get(f"{SHANNON}/{sid}")[1]["status"] == "ACTIVE"

    # When Shannon edits it, the LangGraph view (payload included) follows
    shannon.put(f"{SHANNON}/{sid}", {"cron_expression": "0 10 * * *", "task_query": "新的"})
    cron = langgraph.call("GET", f"/runs/crons/{sid}")[1]
    assert cron["schedule"] == cron["payload"]["schedule"] == "0 10 * * *"
    assert cron["payload"]["input"]["messages"][0]["content"] == "新的"

    # When LangGraph deletes it, it is gone from Shannon too
    assert langgraph.call("DELETE", f"/runs/crons/{sid}")[0] == 204
    assert shannon.get(f"{SHANNON}/{sid}") == (404, {"error": "Schedule not found"})


def test_a_langgraph_cron_is_a_shannon_schedule(
    shannon: JSONClient, langgraph: LangGraphHTTP
) -> None:
    # Given a LangGraph cron with everything the Shannon view shows
    cron = langgraph.create(
        schedule="0 12 * * 1-5",
        timezone="America/New_York",
        input={"messages": [{"role": "user", "content": "Daily report"}]},
        context={"format": "markdown"},
        metadata={"team": "ops"},
        max_budget_per_run_usd=3.5,
        timeout_seconds=300,
        webhook="https://hooks.example.com/done",
    )
    cid = cron["cron_id"]

    # When it is read through Shannon
    status, got = shannon.get(f"{SHANNON}/{cid}")

    # Then every shared field agrees
    assert status == 200
    assert got["id"] == got["schedule_id"] == cid
    assert got["name"] == "cron agent"
    assert got["cron_expression"] == cron["schedule"] == "0 12 * * 1-5"
    assert got["timezone"] == cron["timezone"] == "America/New_York"
    assert got["task_query"] == "Daily report"
    assert got["task_context"] == cron["payload"]["context"] == {"format": "markdown"}
    assert got["max_budget_per_run_usd"] == 3.5 and got["timeout_seconds"] == 300
    assert got["status"] == "ACTIVE" and cron["enabled"] is True
    assert got["webhook"] == cron["payload"]["webhook"]
    assert got["overlap_policy"] == "skip"
    assert got["user_id"] == cron["user_id"]
    assert got["next_run_at"] == "2026-01-15T12:00:00-05:00"
    assert cron["next_run_date"] == "2026-01-15T17:00:00+00:00"  # the same instant
    assert shannon.get(SHANNON)[1]["total"] == 1

    # When Shannon pauses it, LangGraph sees it disabled (and still shows its next date)
    shannon.post(f"{SHANNON}/{cid}/pause")
    cron = langgraph.call("GET", f"/runs/crons/{cid}")[1]
    assert cron["enabled"] is False
    assert cron["next_run_date"] == "2026-01-15T17:00:00+00:00"
    assert shannon.get(f"{SHANNON}/{cid}")[1]["next_run_at"] is None

    # When LangGraph changes it, Shannon follows
    langgraph.call(
        "PATCH", f"/runs/crons/{cid}", {"schedule": "0 8 * * *", "timezone": "UTC", "enabled": True}
    )
    got = shannon.get(f"{SHANNON}/{cid}")[1]
    assert (got["cron_expression"], got["timezone"], got["status"]) == (
        "0 8 * * *",
        "UTC",
        "ACTIVE",
    )

    # When Shannon allows overlapping runs, LangGraph's payload shows the matching strategy
    langgraph.call("PATCH", f"/runs/crons/{cid}", {"multitask_strategy": "reject"})
    shannon.put(f"{SHANNON}/{cid}", {"overlap_policy": "allow"})
    assert langgraph.call("GET", f"/runs/crons/{cid}")[1]["payload"]["multitask_strategy"] == (
        "enqueue"
    )

    # When Shannon deletes it, it is gone from LangGraph too
    assert shannon.delete(f"{SHANNON}/{cid}")[0] == 200
    assert langgraph.call("GET", f"/runs/crons/{cid}") == (404, {"detail": "Not Found"})
