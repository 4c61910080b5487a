"""Hostile input, class by class: each gets a 4xx in the façade's own format and changes nothing.

The classes an adversarial pass found 500s, 503s or dropped connections with: lone UTF-16
surrogates in any string (keys included), JSON nested 255–999 levels, an ``end_time`` whose
UTC conversion leaves years 1–9999, oversized values (which must not be echoed back
whole), non-ASCII-digit integers in query strings, and a pause whose reason holds a lone
surrogate (it used to pause the record, leave the Scheduler entry enabled and answer 409).
Plus unknown paths and methods, answered 404 / 405 in each façade's envelope.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.models import Principal
from tests.helpers import SEED_BODY, JSONClient

SHANNON = "/api/v1/schedules"
CRON = {"assistant_id": "agent", "schedule": "0 9 * * *"}
SURROGATES = ("\ud800", "ok\udfffok")


def deep(levels: int) -> str:
    """JSON text nested ``levels`` objects deep (built as text: json.dumps would recurse)."""
    return '{"a":' * levels + "1" + "}" * levels


def with_raw(body: dict[str, Any], key: str, raw_value: str) -> str:
    return (
        json.dumps({k: v for k, v in body.items() if k != key})[:-1] + f', "{key}": {raw_value}}}'
    )


@pytest.fixture
def shannon(client: Any, api_key: str) -> JSONClient:
    return JSONClient(client, api_key)


@pytest.fixture
def langgraph(client: Any, api_key: str) -> JSONClient:
    return JSONClient(client, api_key, header="x-api-key")


def state(container: Any) -> tuple[Any, ...]:
    """Everything a request could have changed: records (with versions) and Scheduler entries."""
    principal = Principal(tenant_id="tenant-a", user_id="alice")
    schedules = [s.model_dump() for s in container.schedule_service.list_for_user(principal)]
    threads = container.thread_service.count(principal, _any_thread())
    entries = container.scheduler.list_schedules(GroupName=container.settings.SCHEDULE_GROUP)
    states = sorted((e["Name"], e["State"]) for e in entries["Schedules"])
    return json.dumps(schedules, default=str, sort_keys=True), threads, states


def _any_thread() -> Any:
    from chalicelib.services.threads import ThreadQuery

    return ThreadQuery()


def refused(status: int, body: Any, envelope: str, code: int) -> bool:
    return status == code and isinstance(body, dict) and set(body) == {envelope}


def test_lone_surrogates_are_refused_everywhere(
    shannon: JSONClient, langgraph: JSONClient, container: Any, subtests: Any
) -> None:
    sid = shannon.post(SHANNON, SEED_BODY)[1]["schedule_id"]
    cid = langgraph.post("/runs/crons", CRON)[1]["cron_id"]
    before = state(container)
    for bad in SURROGATES:
        shannon_bodies = [
            {**SEED_BODY, field: bad}
            for field in ("name", "description", "cron_expression", "timezone", "task_query")
        ] + [
            {**SEED_BODY, "webhook": "https://example.com/" + bad},
            {**SEED_BODY, "task_context": {"k": bad}},
            {**SEED_BODY, "task_context": {bad: 1}},
            {**SEED_BODY, "task_context": {"k": [1, {"x": bad}]}},
        ]
        for body in shannon_bodies:
            with subtests.test(body=repr(body)[:80]):
                assert refused(*shannon.post(SHANNON, body), "error", 400)
                update = {k: v for k, v in body.items() if k not in SEED_BODY or v != SEED_BODY[k]}
                assert refused(*shannon.put(f"{SHANNON}/{sid}", update), "error", 400)
        assert refused(*shannon.post(f"{SHANNON}/preview", {"cron_expression": bad}), "error", 400)
        langgraph_bodies = [
            {**CRON, field: bad} for field in ("schedule", "timezone", "assistant_id", "webhook")
        ] + [
            {**CRON, "end_time": "2030-01-01T00:00:00+00:00" + bad},
            {**CRON, "metadata": {"k": bad}},
            {**CRON, "input": {"messages": [{"role": "user", "content": bad}]}},
            {**CRON, "context": {bad: 1}},
            {**CRON, "config": {"configurable": {"k": bad}}},
            {**CRON, "config": {"tags": [bad]}},
            {**CRON, "stream_mode": bad},
            {**CRON, "unknown_key": bad},
        ]
        for body in langgraph_bodies:
            with subtests.test(body=repr(body)[:80]):
                assert refused(*langgraph.post("/runs/crons", body), "detail", 422)
                patch = {k: v for k, v in body.items() if k not in CRON or v != CRON[k]}
                patch.pop("assistant_id", None)
                if patch:
                    assert refused(
                        *langgraph.request("PATCH", f"/runs/crons/{cid}", patch), "detail", 422
                    )
        for path, body in (
            ("/threads", {"metadata": {"k": bad}}),
            ("/threads/search", {"metadata": {bad: 1}}),
            ("/runs/crons/search", {"assistant_id": bad}),
            ("/runs/crons/count", {"metadata": {"k": bad}}),
            ("/assistants/search", {"name": bad}),
            ("/runs/search", {"metadata": {"cron_id": cid, "x": bad}}),
        ):
            with subtests.test(path=path):
                assert refused(*langgraph.post(path, body), "detail", 422)
    assert state(container) == before


def test_a_pause_whose_reason_holds_a_lone_surrogate_changes_nothing(
    shannon: JSONClient, container: Any
) -> None:
    sid = shannon.post(SHANNON, SEED_BODY)[1]["schedule_id"]
    before = state(container)
    assert shannon.post(f"{SHANNON}/{sid}/pause", {"reason": "\ud800"}) == (
        400,
        {"error": "Invalid request body: reason: must be valid Unicode text"},
    )
    assert state(container) == before
    assert shannon.get(f"{SHANNON}/{sid}")[1]["status"] == "ACTIVE"
    # … and the schedule can still be paused properly afterwards (no "already paused").
    assert shannon.post(f"{SHANNON}/{sid}/pause", {"reason": "maintenance"})[0] == 200


def test_deep_nesting_is_refused(
    shannon: JSONClient, langgraph: JSONClient, container: Any, subtests: Any
) -> None:
    before = state(container)
    for levels in (33, 255, 500, 990):
        with subtests.test(levels=levels):
            nested = deep(levels)
            raw = with_raw(SEED_BODY, "task_context", nested)
            assert refused(*shannon.post(SHANNON, raw=raw), "error", 400)
            for key in ("input", "metadata", "extra"):
                raw = with_raw(CRON, key, nested)
                assert refused(*langgraph.post("/runs/crons", raw=raw), "detail", 422)
            raw = with_raw({}, "metadata", nested).replace("{, ", "{")
            assert refused(*langgraph.post("/threads", raw=raw), "detail", 422)
            raw = with_raw({}, "values", nested).replace("{, ", "{")
            assert refused(*langgraph.post("/threads/search", raw=raw), "detail", 422)
    # Deeper than the parser goes is still a clean 4xx.
    raw = deep(5000)
    assert refused(*shannon.post(SHANNON, raw=raw), "error", 400)
    assert refused(*langgraph.post("/runs/crons", raw=raw), "detail", 422)
    assert state(container) == before


def test_end_times_outside_the_calendar_are_422(langgraph: JSONClient, container: Any) -> None:
    before = state(container)
    for end in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"):
        assert langgraph.post("/runs/crons", {**CRON, "end_time": end}) == (
            422,
            {"detail": f"Invalid end_time: '{end}'. Use an ISO 8601 date-time."},
        )
    assert state(container) == before


def test_oversized_values_are_refused_and_never_echoed_whole(
    shannon: JSONClient, langgraph: JSONClient, container: Any, subtests: Any
) -> None:
    huge = "Z" * 10_000_000
    before = state(container)
    cases = [
        (shannon, SHANNON, {**SEED_BODY, "timezone": huge}, "error", 400),
        (shannon, SHANNON, {**SEED_BODY, "cron_expression": huge}, "error", 400),
        (shannon, SHANNON, {**SEED_BODY, "name": huge}, "error", 400),
        (shannon, SHANNON, {**SEED_BODY, huge: 1}, "error", 400),
        (langgraph, "/runs/crons", {**CRON, "timezone": huge}, "detail", 422),
        (langgraph, "/runs/crons", {**CRON, "schedule": huge}, "detail", 422),
        (langgraph, "/runs/crons", {**CRON, "assistant_id": huge}, "detail", 404),
        (langgraph, "/runs/crons", {**CRON, "end_time": huge}, "detail", 422),
        (langgraph, "/runs/crons", {**CRON, "on_run_completed": huge}, "detail", 422),
        (langgraph, "/threads", {"metadata": {"blob": "x" * 500_000}}, "detail", 422),
        (langgraph, "/runs/crons/search", {"sort_by": huge}, "detail", 422),
    ]
    for api, path, body, envelope, code in cases:
        with subtests.test(path=path, keys=sorted(k[:20] for k in body)):
            status, answer = api.post(path, body)
            assert refused(status, answer, envelope, code), (status, str(answer)[:200])
            assert len(json.dumps(answer)) < 1_000
    assert state(container) == before


def test_query_integers_are_ascii_digits_only(
    shannon: JSONClient, langgraph: JSONClient, subtests: Any
) -> None:
    tid = langgraph.post("/threads", {})[1]["thread_id"]
    for raw in ("%2B5", "%205", "5%20", "%D9%A3", "0x5", "5.0", "1e3", "99999999999"):
        with subtests.test(raw=raw):
            assert shannon.get(f"{SHANNON}?page={raw}") == (400, {"error": "Invalid page"})
            assert shannon.get(f"{SHANNON}?page_size={raw}") == (
                400,
                {"error": "Invalid page_size"},
            )
            status, body = langgraph.get(f"/threads/{tid}/runs?limit={raw}")
            assert (status, body) == (422, {"detail": "limit: must be an integer"}), raw
    assert shannon.get(f"{SHANNON}?page=2&page_size=5")[0] == 200


def test_unknown_paths_and_methods_answer_in_each_facades_format(
    shannon: JSONClient, langgraph: JSONClient, client: Any
) -> None:
    sid = shannon.post(SHANNON, SEED_BODY)[1]["schedule_id"]
    assert shannon.get("/api/v1/nope") == (404, {"error": "Not found"})
    assert shannon.get(f"{SHANNON}/{sid}/nope") == (404, {"error": "Not found"})
    assert langgraph.get("/nope") == (404, {"detail": "Not Found"})
    assert langgraph.get("/runs/nope") == (404, {"detail": "Not Found"})
    response = client.http.request(
        "PATCH", f"{SHANNON}/{sid}", headers={"Authorization": "Bearer x"}, body=b"{}"
    )
    assert (response.status_code, json.loads(response.body)) == (
        405,
        {"error": "Method not allowed"},
    )
    assert response.headers["Allow"] == "DELETE, GET, PUT"
    response = client.http.request("POST", "/runs/crons/" + sid, headers={}, body=b"{}")
    assert (response.status_code, json.loads(response.body)) == (
        405,
        {"detail": "Method Not Allowed"},
    )
    assert response.headers["Allow"] == "DELETE, GET, PATCH"
    assert langgraph.request("PUT", "/threads") == (405, {"detail": "Method Not Allowed"})
