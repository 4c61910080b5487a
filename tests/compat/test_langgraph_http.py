"""The LangGraph façade over raw HTTP: error paths, validation, tenancy, paging, AWS call budgets.

The happy paths through the real SDK are in the other modules; here every request is
built by hand so that exact statuses, ``{"detail"}`` messages and headers are
asserted (chalice.test.Client → real adapters → moto).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.models import Principal
from tests.compat.raw import CRON, LangGraphHTTP, detail
from tests.helpers import AwsCalls

AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
DEMO_ID = "fcb1d0d2-a4d7-5bb4-b10a-57c00fdcb684"
GENERIC = (
    "Invalid cron schedule. Ensure the schedule uses the standard cron format "
    "(minute hour day_of_month month day_of_week). Example: '*/5 * * * *' for every 5 minutes."
)


@pytest.fixture
def api(client: Any, api_key: str) -> LangGraphHTTP:
    return LangGraphHTTP(client, api_key)


# --- create: required fields, JSON, validation ------------------------------------------------


def test_missing_schedule_or_assistant_id_is_422_naming_the_field(api: LangGraphHTTP) -> None:
    assert api.call("POST", "/runs/crons", {"schedule": "0 9 * * *"}) == (
        422,
        detail("'assistant_id' is a required property"),
    )
    assert api.call("POST", "/runs/crons", {"assistant_id": "agent"}) == (
        422,
        detail("'schedule' is a required property"),
    )
    tid = api.call("POST", "/threads", {})[1]["thread_id"]
    assert api.call("POST", f"/threads/{tid}/runs/crons", {"assistant_id": "agent"}) == (
        422,
        detail("'schedule' is a required property"),
    )
    assert api.count() == 0


BAD_JSON = ("", "{", "[1,", "{'a': 1}", '{"a": NaN}', '{"a": 1} x', b"\xff")
BODY_PATHS = ("/runs/crons", "/runs/crons/search", "/runs/crons/count", "/threads", "/runs/search")


def test_bad_json_is_422(api: LangGraphHTTP, subtests: Any) -> None:
    for path in BODY_PATHS:
        for raw in BAD_JSON:
            with subtests.test(path=path, raw=raw):
                assert api.call("POST", path, raw=raw) == (
                    422,
                    detail("Invalid JSON in request body"),
                )


def test_a_json_body_that_is_not_an_object_is_422(api: LangGraphHTTP) -> None:
    for raw in ("[1]", '"text"', "null", "42"):
        status, body = api.call("POST", "/runs/crons", raw=raw)
        assert status == 422, raw
        assert body["detail"] in (
            "Request body must be a JSON object",
            "Invalid JSON in request body",
        )


REFERENCE_REJECTS = ("", "   ", "* * * *", "61 * * * *", "*/0 * * * *", "H * * * *", "@reboot")
SPECIFIC_REASONS = (
    ("* * * * * *", "6-field (seconds) expressions are not supported"),
    ("0 0 9 * * * 2026", "7-field (seconds and year) expressions are not supported"),
    ("0 0 L * 5", "'L' cannot be combined with a restricted day-of-week"),
    ("0 9 31W * *", "'31W' is not supported"),
    ("0 0 * * 1#2,3", "'d#n' terms cannot be mixed"),
)


def test_invalid_schedules_get_the_reference_message(api: LangGraphHTTP, subtests: Any) -> None:
    for schedule in (*REFERENCE_REJECTS, "0 0 * * 8"):
        with subtests.test(schedule=schedule):
            assert api.call("POST", "/runs/crons", {**CRON, "schedule": schedule}) == (
                422,
                detail(f"Invalid cron schedule: '{schedule}'. Reason: {GENERIC}"),
            )


def test_schedules_eventbridge_cannot_run_get_a_specific_reason(
    api: LangGraphHTTP, subtests: Any
) -> None:
    for schedule, reason in SPECIFIC_REASONS:
        with subtests.test(schedule=schedule):
            status, body = api.call("POST", "/runs/crons", {**CRON, "schedule": schedule})
            assert status == 422
            prefix = f"Invalid cron schedule: '{schedule}'. Reason: {reason}"
            assert body["detail"].startswith(prefix), body
    assert api.count() == 0


def test_never_firing_schedule_is_400_and_too_frequent_is_422(api: LangGraphHTTP) -> None:
    assert api.call("POST", "/runs/crons", {**CRON, "schedule": "0 0 30 2 *"}) == (
        400,
        detail("failed to find next date"),
    )
    assert api.call("POST", "/runs/crons", {**CRON, "schedule": "*/5 * * * *"}) == (
        422,
        detail(
            "Invalid cron schedule: '*/5 * * * *'. Reason: it fires every 5 minutes; "
            "the minimum interval on this deployment is 60 minutes."
        ),
    )
    assert api.count() == 0


def test_invalid_timezone_is_422(api: LangGraphHTTP, subtests: Any) -> None:
    for timezone in ("Mars/Olympus", "america/new_york", "UTC+8", "x" * 51):
        with subtests.test(timezone=timezone):
            assert api.call("POST", "/runs/crons", {**CRON, "timezone": timezone}) == (
                422,
                detail(
                    f"Invalid timezone: '{timezone}'. "
                    "Use IANA timezone format (e.g. 'America/New_York')."
                ),
            )


BAD_FIELDS: tuple[tuple[dict[str, Any], str], ...] = (
    ({"assistant_id": 5}, "assistant_id: must be a string"),
    ({"schedule": 5}, "schedule: must be a string"),
    ({"on_run_completed": "bogus"}, "on_run_completed: 'bogus' is not one of"),
    ({"multitask_strategy": "queue"}, "multitask_strategy: 'queue' is not one of"),
    ({"enabled": "yes"}, "enabled: must be a boolean"),
    ({"input": "text"}, "input: must be an object or an array of objects"),
    ({"input": [1]}, "input: must be an object or an array of objects"),
    ({"metadata": []}, "metadata: must be an object"),
    ({"context": "x"}, "context: must be an object"),
    ({"config": {"tags": "t"}}, "config.tags: must be a list of strings"),
    ({"config": {"recursion_limit": "9"}}, "config.recursion_limit: must be an integer"),
    ({"config": {"configurable": []}}, "config.configurable: must be an object"),
    ({"webhook": ""}, "webhook: must be 1 to 2048 characters"),
    ({"webhook": "https://x.example/" + "a" * 2048}, "webhook: must be 1 to 2048 characters"),
    ({"webhook": "http://example.com/hook"}, "Webhook URL must be an absolute https:// URL"),
    ({"stream_mode": "bogus"}, "stream_mode: 'bogus' is not a stream mode"),
    ({"stream_mode": ["values", 3]}, "stream_mode: 3 is not a stream mode"),
    ({"durability": "forever"}, "durability: 'forever' is not one of"),
    ({"interrupt_before": "node"}, "interrupt_before: must be '*' or a list of node names"),
    ({"stream_subgraphs": 1}, "stream_subgraphs: must be a boolean"),
    ({"max_budget_per_run_usd": "5"}, "max_budget_per_run_usd: must be a number"),
    ({"max_budget_per_run_usd": 0}, "max_budget_per_run_usd: must be greater than 0"),
    ({"max_budget_per_run_usd": 10.5}, "max_budget_per_run_usd: must be greater than 0"),
    ({"timeout_seconds": 1.5}, "timeout_seconds: must be an integer"),
    ({"timeout_seconds": 0}, "timeout_seconds: must be between 1 and 840"),
    ({"context": {"blob": "x" * 70_000}}, "context too large: max 64 KiB"),
)


def test_create_rejects_bad_fields_with_422(api: LangGraphHTTP, subtests: Any) -> None:
    for changes, message in BAD_FIELDS:
        with subtests.test(changes=str(changes)[:60]):
            status, body = api.call("POST", "/runs/crons", {**CRON, **changes})
            assert status == 422, body
            assert body["detail"].startswith(message), body
    assert api.count() == 0  # nothing half-written


def test_unknown_assistant_is_404(api: LangGraphHTTP) -> None:
    for ref in ("nope", str(uuid.uuid4())):
        assert api.call("POST", "/runs/crons", {**CRON, "assistant_id": ref}) == (
            404,
            detail(f"Assistant '{ref}' not found"),
        )


END_TIMES = (
    ("2026-03-01T12:00:00+08:00", "2026-03-01T04:00:00+00:00"),
    ("2026-03-01T12:00:00Z", "2026-03-01T12:00:00+00:00"),
    ("2026-03-01T12:00:00.250000-05:00", "2026-03-01T17:00:00.250000+00:00"),
)
BAD_END_TIMES: tuple[Any, ...] = ("tomorrow", "2026-03-01", "20260301", "2026-13-01T00:00:00", 5)


def test_end_time_is_parsed_and_normalised(api: LangGraphHTTP, subtests: Any) -> None:
    for sent, stored in END_TIMES:
        with subtests.test(sent=sent):
            cron = api.create(end_time=sent)
            assert cron["end_time"] == stored
            assert cron["payload"]["end_time"] == stored
    for sent in BAD_END_TIMES:
        with subtests.test(sent=sent):
            assert api.call("POST", "/runs/crons", {**CRON, "end_time": sent}) == (
                422,
                detail(f"Invalid end_time: '{sent}'. Use an ISO 8601 date-time."),
            )
    # The rule: an offset is required (a naive time is not guessed to be UTC) …
    assert api.call("POST", "/runs/crons", {**CRON, "end_time": "2026-03-01T12:00:00"}) == (
        422,
        detail(
            "Invalid end_time: '2026-03-01T12:00:00'. Include a UTC offset, "
            "e.g. '2026-12-31T23:00:00+00:00'."
        ),
    )
    # … and the end must lie ahead (the clock is at 2026-01-15T08:00Z).
    status, body = api.call("POST", "/runs/crons", {**CRON, "end_time": "2025-12-31T00:00:00Z"})
    assert status == 422 and body["detail"].endswith("It must be in the future.")


def test_end_time_bounds_next_run_date_and_a_past_one_never_fires(
    api: LangGraphHTTP, container: Any
) -> None:
    # Before the first fire: no next date.
    early = api.create(end_time="2026-01-15T12:00:00Z")
    assert early["next_run_date"] is None
    later = api.create(end_time="2026-01-16T00:00:00Z")
    assert later["next_run_date"] == "2026-01-15T15:27:00+00:00"
    # The Scheduler entry ends there too.
    entry = container.scheduler.get_schedule(
        Name=f"sched-{later['cron_id']}", GroupName=container.settings.SCHEDULE_GROUP
    )
    assert entry["EndDate"].isoformat().startswith("2026-01-16T00:00:00")


def test_defaults_and_agentcron_fields(
    api: LangGraphHTTP, container: Any, principal: Principal
) -> None:
    default = api.create()
    custom = api.create(
        max_budget_per_run_usd=2.5, timeout_seconds=120, multitask_strategy="enqueue"
    )
    store = container.schedule_store
    d = store.get(principal, default["cron_id"])
    c = store.get(principal, custom["cron_id"])
    assert (d.max_budget_per_run_usd, d.timeout_seconds) == (10, 600)  # deployment defaults
    assert (float(c.max_budget_per_run_usd), c.timeout_seconds) == (2.5, 120)
    assert (d.overlap_policy.value, c.overlap_policy.value) == ("skip", "allow")
    assert d.name == "cron agent" and d.origin.value == "langgraph"
    assert custom["payload"]["max_budget_per_run_usd"] == 2.5
    assert custom["payload"]["multitask_strategy"] == "enqueue"


def test_enqueue_on_a_thread_cron_still_skips_overlapping_fires(
    api: LangGraphHTTP, container: Any, principal: Principal
) -> None:
    tid = api.call("POST", "/threads", {})[1]["thread_id"]
    status, cron = api.call(
        "POST", f"/threads/{tid}/runs/crons", {**CRON, "multitask_strategy": "enqueue"}
    )
    assert status == 200
    stored = container.schedule_store.get(principal, cron["cron_id"])
    assert stored.overlap_policy.value == "skip"
    assert cron["payload"]["multitask_strategy"] == "enqueue"  # echoed as sent


def test_reserved_keys_are_stripped_and_unknown_keys_kept(api: LangGraphHTTP) -> None:
    cron = api.create(
        metadata={"cron_id": "x", "thread_id": "x", "run_id": "x", "assistant_id": "x", "keep": 1},
        config={"configurable": {"__after_seconds__": 5, "langgraph_auth_user_id": "eve", "a": 1}},
        context={"langgraph_auth_user": "eve", "topic": "news"},
        cron_id="00000000-0000-0000-0000-000000000000",
        user_id="mallory",
        custom_option={"x": [1, 2]},
    )
    assert cron["metadata"] == {"keep": 1}
    assert cron["user_id"] == "alice" and cron["cron_id"] != "00000000-0000-0000-0000-000000000000"
    payload = cron["payload"]
    assert payload["config"] == {"configurable": {"a": 1, "cron_id": cron["cron_id"]}}
    assert payload["context"] == {"topic": "news"}
    assert payload["custom_option"] == {"x": [1, 2]}
    assert "user_id" not in payload and "cron_id" not in payload


def test_thread_cron_errors(api: LangGraphHTTP) -> None:
    assert api.call("POST", "/threads/not-a-uuid/runs/crons", CRON) == (
        422,
        detail("Invalid thread ID: must be a UUID"),
    )
    # Path ids are checked before the body.
    assert api.call("POST", "/threads/not-a-uuid/runs/crons", raw="{") == (
        422,
        detail("Invalid thread ID: must be a UUID"),
    )
    missing = str(uuid.uuid4())
    assert api.call("POST", f"/threads/{missing}/runs/crons", CRON) == (
        404,
        detail(
            f"Thread with ID '{missing}' not found. Please verify the ID is correct and the "
            "thread hasn't been deleted or expired."
        ),
    )
    assert api.count() == 0


# --- get, update, delete ---------------------------------------------------------------------


def test_malformed_and_unknown_cron_ids(api: LangGraphHTTP, subtests: Any) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        with subtests.test(method=method):
            body = {"enabled": False} if method == "PATCH" else None
            assert api.call(method, "/runs/crons/not-a-uuid", body) == (
                422,
                detail("Invalid cron ID: must be a UUID"),
            )
            unknown = str(uuid.uuid4())
            expected = f"Cron '{unknown}' not found" if method == "PATCH" else "Not Found"
            assert api.call(method, f"/runs/crons/{unknown}", body) == (404, detail(expected))


def test_get_returns_the_cron_and_delete_is_204_then_404(api: LangGraphHTTP) -> None:
    cron = api.create()
    assert api.call("GET", f"/runs/crons/{cron['cron_id']}") == (200, cron)
    status, body, headers = api.request("DELETE", f"/runs/crons/{cron['cron_id']}")
    assert (status, body, headers.get("Content-Type")) == (204, None, None)
    assert api.call("DELETE", f"/runs/crons/{cron['cron_id']}") == (404, detail("Not Found"))
    assert api.call("GET", f"/runs/crons/{cron['cron_id']}") == (404, detail("Not Found"))


def test_patch_semantics(api: LangGraphHTTP, clock: Any) -> None:
    cron = api.create(metadata={"a": 1}, end_time="2027-01-01T00:00:00Z", stream_mode="values")
    path = f"/runs/crons/{cron['cron_id']}"
    assert api.call("PATCH", path, {}) == (400, detail("Request body cannot be empty"))
    assert api.call("PATCH", path, raw="") == (422, detail("Invalid JSON in request body"))
    status, body = api.call("PATCH", path, {"schedule": "* * * * * *"})
    assert status == 422 and "6-field" in body["detail"]
    status, body = api.call("PATCH", path, {"schedule": "*/10 * * * *"})
    assert (status, body["detail"].split(". Reason:")[0]) == (
        422,
        "Invalid cron schedule: '*/10 * * * *'",
    )
    assert api.call("PATCH", path, {"timezone": "Nowhere/Land"})[0] == 422
    assert api.call("PATCH", path, {"end_time": "soon"})[0] == 422
    assert api.call("GET", path)[1] == cron  # failed patches changed nothing

    clock.advance(timedelta(minutes=1))
    status, patched = api.call(
        "PATCH",
        path,
        {
            "metadata": {"b": 2, "cron_id": "spoof"},
            "config": {"configurable": {"model": "x"}},
            "input": {"messages": [{"role": "user", "content": "new"}]},
            "assistant_id": DEMO_ID,  # identity: accepted, ignored
            "stream_mode": ["updates"],
            "new_key": 1,
        },
    )
    assert status == 200, patched
    assert patched["metadata"] == {"a": 1, "b": 2}  # merged key by key, reserved stripped
    assert patched["assistant_id"] == AGENT_ID
    assert patched["payload"]["assistant_id"] == AGENT_ID
    assert patched["payload"]["config"] == {
        "configurable": {"model": "x", "cron_id": cron["cron_id"]}
    }
    assert patched["payload"]["input"]["messages"][0]["content"] == "new"
    assert patched["payload"]["stream_mode"] == ["updates"]
    assert patched["payload"]["new_key"] == 1
    assert patched["updated_at"] == "2026-01-15T08:01:00+00:00"
    assert patched["created_at"] == cron["created_at"]

    status, patched = api.call("PATCH", path, {"end_time": None, "timezone": "Asia/Tokyo"})
    assert status == 200
    assert patched["end_time"] is None and "end_time" not in patched["payload"]
    assert patched["timezone"] == "Asia/Tokyo"
    assert patched["next_run_date"] == "2026-01-16T06:27:00+00:00"  # 15:27 in Tokyo
    status, patched = api.call("PATCH", path, {"timezone": None})
    assert patched["timezone"] is None and patched["next_run_date"] == "2026-01-15T15:27:00+00:00"


def test_patch_on_run_completed(api: LangGraphHTTP) -> None:
    stateless = api.create()
    patched = api.call(
        "PATCH", f"/runs/crons/{stateless['cron_id']}", {"on_run_completed": "keep"}
    )[1]
    assert patched["on_run_completed"] == "keep"
    tid = api.call("POST", "/threads", {})[1]["thread_id"]
    on_thread = api.call("POST", f"/threads/{tid}/runs/crons", CRON)[1]
    patched = api.call(
        "PATCH", f"/runs/crons/{on_thread['cron_id']}", {"on_run_completed": "delete"}
    )[1]
    # Echoed in the payload, never acted on: a user's thread is never deleted.
    assert patched["on_run_completed"] is None
    assert patched["payload"]["on_run_completed"] == "delete"


def test_enabled_toggles_the_scheduler_entry(api: LangGraphHTTP, container: Any) -> None:
    cron = api.create(enabled=False)
    name, group = f"sched-{cron['cron_id']}", container.settings.SCHEDULE_GROUP
    assert container.scheduler.get_schedule(Name=name, GroupName=group)["State"] == "DISABLED"
    assert cron["enabled"] is False
    path = f"/runs/crons/{cron['cron_id']}"
    assert api.call("PATCH", path, {"enabled": True})[1]["enabled"] is True
    assert container.scheduler.get_schedule(Name=name, GroupName=group)["State"] == "ENABLED"
    assert api.call("PATCH", path, {"enabled": True})[0] == 200  # idempotent
    assert api.call("PATCH", path, {"enabled": False})[1]["enabled"] is False
    assert container.scheduler.get_schedule(Name=name, GroupName=group)["State"] == "DISABLED"


# --- search and count -------------------------------------------------------------------------


def test_search_filters_sorting_select_and_pagination(api: LangGraphHTTP, clock: Any) -> None:
    ids = []
    for i, schedule in enumerate(["0 9 * * *", "0 7 * * *", "30 8 * * *"]):
        ids.append(
            api.create(schedule=schedule, metadata={"n": i, "tags": {"a": i % 2}})["cron_id"]
        )
        clock.advance(timedelta(seconds=1))
    search = "/runs/crons/search"

    status, page, headers = api.request("POST", search, {"limit": 2, "offset": 0})
    assert [c["cron_id"] for c in page] == [ids[2], ids[1]]  # created_at desc
    assert (headers["X-Pagination-Next"], headers["X-Pagination-Total"]) == ("2", "3")
    status, page, headers = api.request("POST", search, {"limit": 2, "offset": 2})
    assert [c["cron_id"] for c in page] == [ids[0]]
    assert "X-Pagination-Next" not in headers and headers["X-Pagination-Total"] == "3"
    status, page, headers = api.request("POST", search, {"limit": 5, "offset": 9})
    assert (status, page, headers["X-Pagination-Total"]) == (200, [], "9")

    def order(body: dict[str, Any]) -> list[str]:
        return [c["cron_id"] for c in api.call("POST", search, body)[1]]

    assert order({"sort_by": "created_at", "sort_order": "asc"}) == ids
    assert order({"sort_by": "next_run_date", "sort_order": "asc"}) == [ids[2], ids[0], ids[1]]
    assert order({"sort_by": "next_run_date"}) == [ids[1], ids[0], ids[2]]  # desc by default
    assert order({"sort_by": "cron_id", "sort_order": "asc"}) == sorted(ids)
    assert order({"metadata": {"tags": {"a": 1}}}) == [ids[1]]  # nested subset
    assert order({"metadata": {"n": 0, "tags": {}}}) == [ids[0]]
    assert order({"metadata": {"missing": None}}) == []
    assert order({"assistant_id": "agent"}) == order({"assistant_id": AGENT_ID}) == ids[::-1]
    assert order({"assistant_id": "demo"}) == order({"assistant_id": str(uuid.uuid4())}) == []
    assert order({"enabled": True}) == ids[::-1]
    assert api.call("POST", search, {"select": ["schedule", "cron_id"], "limit": 1})[1] == [
        {"schedule": "30 8 * * *", "cron_id": ids[2]}
    ]
    assert api.call("POST", "/runs/crons/count", {"assistant_id": "agent"}) == (200, 3)
    assert api.call("POST", "/runs/crons/count", {"metadata": {"tags": {"a": 0}}}) == (200, 2)


BAD_SEARCHES: tuple[tuple[dict[str, Any], str], ...] = (
    ({"limit": 0}, "limit: must be between 1 and 1000"),
    ({"limit": 1001}, "limit: must be between 1 and 1000"),
    ({"limit": "10"}, "limit: must be an integer"),
    ({"offset": -1}, "offset: must be at least 0"),
    ({"sort_by": "name"}, "sort_by: 'name' is not one of"),
    ({"sort_order": "up"}, "sort_order: 'up' is not one of"),
    ({"select": ["now"]}, "select: 'now' is not one of"),
    ({"select": "cron_id"}, "select: must be a list of strings"),
    ({"thread_id": "x"}, "Invalid thread ID: must be a UUID"),
    ({"assistant_id": "not-a-graph"}, "Invalid assistant ID: must be a UUID"),
    ({"enabled": "true"}, "enabled: must be a boolean"),
    ({"metadata": "x"}, "metadata: must be an object"),
)


def test_search_validation_is_422(api: LangGraphHTTP, subtests: Any) -> None:
    for body, message in BAD_SEARCHES:
        with subtests.test(body=body):
            status, answer = api.call("POST", "/runs/crons/search", body)
            assert status == 422
            assert answer["detail"].startswith(message), answer


def test_count_validation_is_422(api: LangGraphHTTP) -> None:
    assert api.call("POST", "/runs/crons/count", {"thread_id": "x"}) == (
        422,
        detail("Invalid thread ID: must be a UUID"),
    )
    assert api.call("POST", "/runs/crons/count", {"assistant_id": "?"}) == (
        422,
        detail("Invalid assistant ID: must be a UUID"),
    )


def test_literal_search_and_count_routes_win_over_the_cron_id_route(api: LangGraphHTTP) -> None:
    cron = api.create()
    assert api.call("POST", "/runs/crons/search", {})[1][0]["cron_id"] == cron["cron_id"]
    assert api.call("POST", "/runs/crons/count", {}) == (200, 1)
    assert api.call("GET", f"/runs/crons/{cron['cron_id']}")[1]["cron_id"] == cron["cron_id"]
    # A literal segment is never read as a cron id.
    assert api.call("GET", "/runs/crons/search")[0] == 405
    assert api.call("DELETE", "/runs/crons/count")[0] == 405
    assert api.count() == 1


# --- runs -------------------------------------------------------------------------------------


def test_run_endpoints_validate_ids_and_filters(api: LangGraphHTTP) -> None:
    tid = api.call("POST", "/threads", {})[1]["thread_id"]
    assert api.call("GET", f"/threads/{tid}/runs/not-a-uuid") == (
        422,
        detail("Invalid run ID: must be a UUID"),
    )
    assert api.call("GET", f"/threads/{tid}/runs/{uuid.uuid4()}") == (404, detail("Not Found"))
    assert api.call("GET", f"/threads/{uuid.uuid4()}/runs/{uuid.uuid4()}") == (
        404,
        detail("Not Found"),
    )
    assert api.call("GET", f"/threads/{tid}/runs?limit=0")[0] == 422
    assert api.call("GET", f"/threads/{tid}/runs?limit=x")[0] == 422
    assert api.call("GET", f"/threads/{tid}/runs?status=done")[0] == 422
    assert api.call("GET", f"/threads/{tid}/runs?select=bogus")[0] == 422
    assert api.call("GET", f"/threads/{tid}/runs?status=success&select=run_id") == (200, [])
    unknown = str(uuid.uuid4())
    assert api.call("GET", f"/threads/{unknown}/runs") == (
        404,
        detail(f"Thread with ID {unknown} not found"),
    )
    assert api.call("POST", "/runs/search", {"metadata": {"x": 1}}) == (
        422,
        detail("runs/search needs a metadata.cron_id or a thread_id filter"),
    )
    assert api.call("POST", "/runs/search", {"metadata": {"cron_id": "x"}}) == (
        422,
        detail("Invalid cron ID: must be a UUID"),
    )
    assert api.call("POST", "/runs/search", {"metadata": {"cron_id": unknown}}) == (200, [])
    assert api.call("POST", "/runs/search", {"thread_id": unknown}) == (200, [])


def test_run_statuses_map_to_langgraph_words(container: Any) -> None:
    from chalicelib.api.langgraph.wire import runs as wire
    from chalicelib.domain.enums import RunStatus

    assert {s.value: wire.RUN_STATUS[s] for s in RunStatus} == {
        "pending": "pending",
        "running": "running",
        "success": "success",
        "error": "error",
        "timeout": "timeout",
        "budget_exceeded": "error",
        "skipped": "interrupted",
    }
    assert wire.RUN_STATUS_FILTER["error"] == {RunStatus.ERROR, RunStatus.BUDGET_EXCEEDED}


def test_failed_and_skipped_fires_are_visible_with_their_reason(
    api: LangGraphHTTP, container: Any, clock: Any
) -> None:
    from datetime import UTC, datetime

    from tests.compat.firing import fire

    failing = api.create(context={"demo_fail": "provider down"})
    paused = api.create(enabled=False)
    when = datetime(2026, 1, 15, 15, 27, tzinfo=UTC)
    assert fire(container, clock, failing["cron_id"], when)["status"] == "error"
    assert fire(container, clock, paused["cron_id"], when)["status"] == "skipped"
    [failed] = api.call("POST", "/runs/search", {"metadata": {"cron_id": failing["cron_id"]}})[1]
    assert failed["status"] == "error"
    assert failed["metadata"]["agentcron"]["error"] == "provider down"
    [skipped] = api.call("POST", "/runs/search", {"metadata": {"cron_id": paused["cron_id"]}})[1]
    assert skipped["status"] == "interrupted"
    assert skipped["metadata"]["agentcron"]["status"] == "skipped"
    assert skipped["metadata"]["agentcron"]["error"] == "paused"

    # Filters beyond cron_id: status words and metadata containment.
    def search(body: dict[str, Any]) -> list[Any]:
        return list(api.call("POST", "/runs/search", body)[1])

    assert search({"metadata": {"cron_id": failing["cron_id"]}, "status": "success"}) == []
    assert search({"metadata": {"cron_id": failing["cron_id"]}, "status": "error"}) == [failed]
    assert search({"metadata": {"cron_id": paused["cron_id"], "graph_id": "agent"}}) == [skipped]
    assert search({"metadata": {"cron_id": paused["cron_id"], "graph_id": "demo"}}) == []


# --- threads ------------------------------------------------------------------------------


def test_thread_create_validation_and_shape(api: LangGraphHTTP) -> None:
    status, thread = api.call("POST", "/threads", {"metadata": {"k": "v"}})
    assert status == 200
    assert list(thread) == [
        "thread_id",
        "created_at",
        "updated_at",
        "state_updated_at",
        "metadata",
        "status",
        "config",
        "values",
        "interrupts",
    ]
    assert api.call("POST", "/threads", {"thread_id": "x"}) == (
        422,
        detail("Invalid thread ID: must be a UUID"),
    )
    mine = str(uuid.uuid4()).upper()
    status, created = api.call("POST", "/threads", {"thread_id": mine})
    assert status == 200 and created["thread_id"] == mine.lower()
    assert api.call("POST", "/threads", {"thread_id": mine}) == (
        409,
        detail(f"Thread with ID {mine.lower()} already exists"),
    )
    assert api.call("POST", "/threads", {"if_exists": "replace"})[0] == 422
    assert api.call("POST", "/threads", {"ttl": {"ttl": -1}})[0] == 422
    assert api.call("POST", "/threads", {"ttl": {"ttl": 5, "strategy": "keep_latest"}})[0] == 422
    assert api.call("POST", "/threads", {"supersteps": [{"updates": []}]})[0] == 422
    for path in ("/threads/x", "/threads/x/state", "/threads/x/runs"):
        assert api.call("GET", path) == (422, detail("Invalid thread ID: must be a UUID"))
    assert api.call("DELETE", "/threads/x") == (422, detail("Invalid thread ID: must be a UUID"))
    unknown = str(uuid.uuid4())
    for method, path in (
        ("GET", f"/threads/{unknown}"),
        ("DELETE", f"/threads/{unknown}"),
        ("GET", f"/threads/{unknown}/state"),
    ):
        assert api.call(method, path) == (404, detail(f"Thread with ID {unknown} not found"))


def test_thread_ttl_expires_the_thread(api: LangGraphHTTP, clock: Any) -> None:
    thread = api.call("POST", "/threads", {"ttl": {"ttl": 30, "strategy": "delete"}})[1]
    assert api.call("GET", f"/threads/{thread['thread_id']}")[0] == 200
    clock.advance(timedelta(minutes=31))
    assert api.call("GET", f"/threads/{thread['thread_id']}")[0] == 404
    assert api.call("POST", "/threads/search", {"limit": 10, "offset": 0})[1] == []
    assert api.call("POST", "/threads/count", {}) == (200, 0)


def test_thread_search_paging_sorting_and_validation(api: LangGraphHTTP, clock: Any) -> None:
    ids = []
    for i in range(3):
        ids.append(api.call("POST", "/threads", {"metadata": {"i": i, "even": i % 2 == 0}})[1])
        clock.advance(timedelta(seconds=1))
    tids = [t["thread_id"] for t in ids]
    status, page, headers = api.request("POST", "/threads/search", {"limit": 2, "offset": 0})
    assert [t["thread_id"] for t in page] == [tids[2], tids[1]]
    assert (headers["X-Pagination-Next"], headers["X-Pagination-Total"]) == ("2", "3")
    status, page, headers = api.request("POST", "/threads/search", {"limit": 2, "offset": 2})
    assert status == 200 and [t["thread_id"] for t in page] == [tids[0]]
    assert "X-Pagination-Next" not in headers

    def order(body: dict[str, Any]) -> list[str]:
        return [t["thread_id"] for t in api.call("POST", "/threads/search", body)[1]]

    assert order({"sort_by": "created_at", "sort_order": "asc"}) == tids
    assert order({"sort_by": "thread_id", "sort_order": "asc"}) == tids
    assert order({"metadata": {"even": True}}) == [tids[2], tids[0]]
    assert order({"ids": [tids[0], tids[1]]}) == [tids[1], tids[0]]
    assert order({"status": "busy"}) == []
    assert api.call("POST", "/threads/search", {"select": ["thread_id"], "limit": 1})[1] == [
        {"thread_id": tids[2]}
    ]
    assert api.call("POST", "/threads/count", {"metadata": {"even": False}}) == (200, 1)
    for body in (
        {"limit": 0},
        {"status": "sleeping"},
        {"sort_by": "values"},
        {"ids": ["x"]},
        {"extract": {"a": "values.a"}},
        {"select": ["nope"]},
    ):
        assert api.call("POST", "/threads/search", body)[0] == 422, body


# --- assistants ---------------------------------------------------------------------------------


def test_assistants_by_graph_name_or_id(api: LangGraphHTTP) -> None:
    status, agent = api.call("GET", "/assistants/agent")
    assert status == 200 and agent["assistant_id"] == AGENT_ID
    assert api.call("GET", f"/assistants/{AGENT_ID.upper()}") == (200, agent)
    assert api.call("GET", f"/assistants/{uuid.uuid4()}") == (404, detail("Not Found"))
    assert api.call("GET", "/assistants/not-a-graph") == (
        422,
        detail("Invalid assistant ID: must be a UUID"),
    )
    status, found, headers = api.request("POST", "/assistants/search", {"limit": 2, "offset": 0})
    assert [a["graph_id"] for a in found] == ["demo", "agent"]
    assert headers["X-Pagination-Next"] == "2"
    assert [
        a["graph_id"]
        for a in api.call(
            "POST", "/assistants/search", {"sort_by": "graph_id", "sort_order": "asc"}
        )[1]
    ] == ["agent", "bedrock", "demo", "openai"]
    assert api.call("POST", "/assistants/search", {"name": "AGE"})[1] == [agent]
    assert api.call("POST", "/assistants/search", {"metadata": {"created_by": "user"}})[1] == []
    assert api.call("POST", "/assistants/count", {"metadata": {"created_by": "system"}}) == (200, 4)
    assert api.call("POST", "/assistants/search", {"sort_by": "version"})[0] == 422


# --- auth and tenancy ------------------------------------------------------------------------


def test_authentication(client: Any, api_key: str) -> None:
    anonymous = LangGraphHTTP(client, None)
    assert anonymous.call("POST", "/runs/crons/search", {}) == (
        403,
        detail("Missing authentication headers"),
    )
    assert LangGraphHTTP(client, "ac_wrong_key_000000000").call("GET", "/threads/x") == (
        401,
        detail("Invalid token"),
    )
    basic = LangGraphHTTP(client, None, headers={"Authorization": "Basic abc"})
    assert basic.call("POST", "/runs/crons/count", {}) == (401, detail("Invalid token"))
    bearer = LangGraphHTTP(client, None, headers={"Authorization": f"Bearer {api_key}"})
    assert bearer.call("POST", "/runs/crons/count", {}) == (200, 0)
    assert anonymous.call("GET", "/ok") == (200, {"ok": True})
    status, info = anonymous.call("GET", "/info")
    assert status == 200 and info["flags"]["crons"] is True and info["flags"]["assistants"]


def test_limit_reached_is_403(api: LangGraphHTTP, container: Any, principal: Principal) -> None:
    from chalicelib.services.schedules import ScheduleDraft

    limit = container.settings.SCHEDULE_MAX_PER_USER
    for i in range(limit - 1):  # fill up through the service: faster than HTTP
        container.schedule_service.create(
            principal, ScheduleDraft(name=f"s{i}", cron_expression="0 9 * * *")
        )
    api.create()
    assert api.call("POST", "/runs/crons", CRON) == (
        403,
        detail(f"Cron limit reached: {limit}/{limit} crons and schedules per user"),
    )


def test_other_users_and_tenants_see_404_everywhere(
    client: Any, api: LangGraphHTTP, other_keys: dict[str, str], container: Any, clock: Any
) -> None:
    from datetime import UTC, datetime

    from tests.compat.firing import fire

    tid = api.call("POST", "/threads", {})[1]["thread_id"]
    cron = api.call("POST", f"/threads/{tid}/runs/crons", CRON)[1]
    cid = cron["cron_id"]
    run_id = fire(container, clock, cid, datetime(2026, 1, 15, 15, 27, tzinfo=UTC))["run_id"]
    for key in other_keys.values():
        intruder = LangGraphHTTP(client, key)
        assert intruder.call("POST", "/runs/crons/search", {}) == (200, [])
        assert intruder.call("POST", "/runs/crons/count", {}) == (200, 0)
        assert intruder.call("POST", "/threads/search", {}) == (200, [])
        assert intruder.call("POST", "/threads/count", {}) == (200, 0)
        assert intruder.call("POST", "/runs/search", {"metadata": {"cron_id": cid}}) == (200, [])
        assert intruder.call("POST", "/runs/search", {"thread_id": tid}) == (200, [])
        for method, path, body, message in (
            ("GET", f"/runs/crons/{cid}", None, "Not Found"),
            ("PATCH", f"/runs/crons/{cid}", {"enabled": False}, f"Cron '{cid}' not found"),
            ("DELETE", f"/runs/crons/{cid}", None, "Not Found"),
            ("GET", f"/threads/{tid}", None, f"Thread with ID {tid} not found"),
            ("GET", f"/threads/{tid}/state", None, f"Thread with ID {tid} not found"),
            ("GET", f"/threads/{tid}/runs", None, f"Thread with ID {tid} not found"),
            ("GET", f"/threads/{tid}/runs/{run_id}", None, "Not Found"),
            ("DELETE", f"/threads/{tid}", None, f"Thread with ID {tid} not found"),
        ):
            assert intruder.call(method, path, body) == (404, detail(message)), (key, path)
        status, body = intruder.call("POST", f"/threads/{tid}/runs/crons", CRON)
        assert status == 404 and body["detail"].startswith(f"Thread with ID '{tid}' not found")
    # The owner's objects are untouched.
    assert api.call("GET", f"/runs/crons/{cid}")[1]["enabled"] is True
    assert api.call("GET", f"/threads/{tid}/runs/{run_id}")[1]["status"] == "success"


# --- AWS call budgets -------------------------------------------------------------------------


def test_aws_calls_per_operation(api: LangGraphHTTP, container: Any) -> None:
    calls = AwsCalls(container.dynamodb, container.scheduler)
    api.call("GET", "/assistants/agent")  # warm the API-key cache: budgets are per operation
    with calls.counting() as c:
        cron = api.create()
    assert c == {"dynamodb.TransactWriteItems": 1, "scheduler.CreateSchedule": 1}
    with calls.counting() as c:
        api.call("GET", f"/runs/crons/{cron['cron_id']}")
    assert c == {"dynamodb.GetItem": 1}
    with calls.counting() as c:
        api.call("POST", "/runs/crons/search", {"limit": 10, "offset": 0})
    assert c == {"dynamodb.Query": 1}
    with calls.counting() as c:
        api.call("POST", "/runs/crons/count", {})
    assert c == {"dynamodb.Query": 1}
    with calls.counting() as c:
        api.call("POST", "/runs/search", {"metadata": {"cron_id": cron["cron_id"]}})
    assert c == {"dynamodb.Query": 1}
    with calls.counting() as c:
        api.call("DELETE", f"/runs/crons/{cron['cron_id']}")
    assert c == {"dynamodb.DeleteItem": 1, "scheduler.DeleteSchedule": 1}
    with calls.counting() as c:
        api.call("POST", "/threads/search", {"limit": 10, "offset": 0})
    assert c == {"dynamodb.Query": 1}
