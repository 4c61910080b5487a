"""Isolation matrix: every endpoint of both façades, four principals, reused client-chosen ids.

Alice (the owner) creates threads with ids she chose, crons bound to one of them, a
stateless cron and a Shannon schedule, and runs fire on all of them. Bob (same
tenant) and Eve (another tenant) then create threads *with the same id* as one of
Alice's, bind crons to them and run them. Every endpoint is then driven by each
principal — and without a key — over Alice's objects:

* the owner sees her objects (each probe must show her marker: the matrix would
  otherwise prove nothing);
* another user, of the same tenant or not, gets 404 or an empty result — or, for a
  thread id they reused, *their own* thread and runs — and no response to them ever
  contains Alice's marker or one of her ids they did not send;
* no key gets the façade's 401/403.

Two users picking the same thread id get two separate threads (see
``chalicelib.services.threads``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import SEED_BODY, deliver

MARK = "alice-private-7f3a"
SHARED = "0190f5c2-7a1b-7c3d-8e4f-a1b2c3d4e5f6"  # Alice's id, reused by Bob and Eve
PRIVATE = "0190f5c2-7a1b-7c3d-8e4f-0000000000aa"  # Alice's id, not reused (until the end)
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
LG_CRON = {"assistant_id": "agent", "schedule": "0 9 * * *"}


@dataclass
class Caller:
    client: Any
    key: str | None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        headers = {"Content-Type": "application/json"}
        if self.key is not None:
            if path.startswith("/api/v1"):  # Shannon clients send a bearer token
                headers["Authorization"] = f"Bearer {self.key}"
            else:  # langgraph_sdk sends x-api-key
                headers["x-api-key"] = self.key
        payload = b"" if body is None else json.dumps(body)
        response = self.client.http.request(method, path, headers=headers, body=payload)
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        return response.status_code, (json.loads(text) if text else None), text or ""

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, parsed, _ = self.call(method, path, body)
        assert 200 <= status < 300, (method, path, status, parsed)
        return parsed


def populate(caller: Caller, container: Any, clock: Any, *, mark: str) -> dict[str, Any]:
    """Threads (one of them on the shared id), crons and fired runs for one principal."""
    made: dict[str, Any] = {"runs": []}
    caller.ok("POST", "/threads", {"thread_id": SHARED, "metadata": {"owner": mark}})
    message = {"messages": [{"role": "user", "content": mark}]}
    bound = caller.ok(
        "POST",
        f"/threads/{SHARED}/runs/crons",
        {**LG_CRON, "input": message, "metadata": {"o": mark}},
    )
    made["bound_cron"] = bound["cron_id"]
    clock.set(NINE + timedelta(seconds=1))
    made["runs"].append(deliver(container, bound["cron_id"], NINE)["run_id"])
    return made


def test_every_endpoint_isolates_users_and_tenants(
    container: Any, client: Any, clock: Any, api_key: str, other_keys: dict[str, str]
) -> None:
    alice = Caller(client, api_key)
    others = {name: Caller(client, key) for name, key in other_keys.items()}
    nobody = Caller(client, None)

    # --- Alice's world -----------------------------------------------------------------------
    mine = populate(alice, container, clock, mark=MARK)
    alice.ok("POST", "/threads", {"thread_id": PRIVATE, "metadata": {"owner": MARK}})
    message = {"messages": [{"role": "user", "content": MARK}]}
    stateless = alice.ok("POST", "/runs/crons", {**LG_CRON, "input": message})["cron_id"]
    shannon = alice.ok("POST", "/api/v1/schedules", {**SEED_BODY, "task_query": MARK})["id"]
    mine["runs"].append(deliver(container, stateless, NINE)["run_id"])
    theirs = {name: populate(c, container, clock, mark=f"{name}-own") for name, c in others.items()}
    shanghai_nine = datetime(2026, 1, 16, 1, tzinfo=UTC)
    clock.set(shanghai_nine + timedelta(seconds=1))
    mine["runs"].append(deliver(container, shannon, shanghai_nine)["run_id"])
    [bound_run] = mine["runs"][:1]
    # Ids only Alice holds (SHARED is also Bob's and Eve's own thread id).
    alice_ids = {PRIVATE, stateless, shannon, mine["bound_cron"], *mine["runs"]}

    reads: list[tuple[str, str, Any]] = [
        ("GET", f"/threads/{PRIVATE}", None),
        ("GET", f"/threads/{PRIVATE}/state", None),
        ("GET", f"/threads/{PRIVATE}/runs", None),
        ("GET", f"/threads/{SHARED}", None),
        ("GET", f"/threads/{SHARED}/state", None),
        ("GET", f"/threads/{SHARED}/runs", None),
        ("GET", f"/threads/{SHARED}/runs/{bound_run}", None),
        ("POST", "/runs/search", {"thread_id": SHARED}),
        ("POST", "/runs/search", {"thread_id": PRIVATE}),
        ("POST", "/runs/search", {"metadata": {"cron_id": mine["bound_cron"]}}),
        ("POST", "/runs/search", {"metadata": {"cron_id": stateless}}),
        ("POST", "/runs/search", {"metadata": {"cron_id": shannon}}),
        ("POST", "/threads/search", {}),
        ("POST", "/threads/search", {"ids": [SHARED, PRIVATE]}),
        ("POST", "/threads/search", {"metadata": {"owner": MARK}}),
        ("POST", "/threads/count", {"metadata": {"owner": MARK}}),
        ("POST", "/runs/crons/search", {}),
        ("POST", "/runs/crons/count", {"thread_id": SHARED}),
        ("GET", f"/runs/crons/{stateless}", None),
        ("GET", f"/runs/crons/{mine['bound_cron']}", None),
        ("GET", f"/runs/crons/{shannon}", None),
        ("GET", "/api/v1/schedules", None),
        ("GET", f"/api/v1/schedules/{shannon}", None),
        ("GET", f"/api/v1/schedules/{stateless}", None),
        ("GET", f"/api/v1/schedules/{shannon}/runs", None),
        ("GET", f"/api/v1/schedules/{stateless}/runs", None),
        ("GET", f"/api/v1/schedules/{shannon}/preview", None),
    ]
    writes: list[tuple[str, str, Any]] = [
        ("PATCH", f"/runs/crons/{stateless}", {"enabled": False}),
        ("DELETE", f"/runs/crons/{mine['bound_cron']}", None),
        ("POST", f"/threads/{PRIVATE}/runs/crons", LG_CRON),
        ("DELETE", f"/threads/{PRIVATE}", None),
        ("PUT", f"/api/v1/schedules/{shannon}", {"name": "taken over"}),
        ("POST", f"/api/v1/schedules/{shannon}/pause", None),
        ("POST", f"/api/v1/schedules/{shannon}/resume", None),
        ("POST", f"/api/v1/schedules/{shannon}/trigger", None),
        ("DELETE", f"/api/v1/schedules/{stateless}", None),
        ("DELETE", f"/api/v1/schedules/{shannon}", None),
    ]
    # Whatever another principal may legitimately see: their own objects on the shared id.
    own_view = {
        ("GET", f"/threads/{SHARED}"),
        ("GET", f"/threads/{SHARED}/state"),
        ("GET", f"/threads/{SHARED}/runs"),
        ("POST", "/runs/search"),
        ("POST", "/threads/search"),
        ("POST", "/threads/count"),
        ("POST", "/runs/crons/search"),
        ("POST", "/runs/crons/count"),
        ("GET", "/api/v1/schedules"),
    }

    # --- the owner sees everything (every read shows her marker or her ids) -------------------
    for method, path, body in reads:
        status, _, text = alice.call(method, path, body)
        assert status == 200, (method, path, text)
        empty = PRIVATE in f"{path}{body}" and "runs" in path  # no run on that thread
        if not (empty or path.endswith(("/count", "/preview"))):
            assert MARK in text or any(i in text for i in mine["runs"]), (method, path, text)
    assert alice.ok("GET", f"/threads/{SHARED}/runs") and [
        r["run_id"] for r in alice.ok("GET", f"/threads/{SHARED}/runs")
    ] == [bound_run]

    # --- another user of the tenant, and another tenant ----------------------------------------
    for name, intruder in others.items():
        for method, path, body in [*reads, *writes]:
            status, parsed, text = intruder.call(method, path, body)
            sent = f"{path} {json.dumps(body)}"
            leaked = {i for i in alice_ids if i in text and i not in sent}
            assert MARK not in text and not leaked, (name, method, path, text)
            if (method, path.split("?")[0]) in own_view or (method, path) in own_view:
                assert status == 200, (name, method, path, text)
            else:
                assert status == 404, (name, method, path, status, text)
        # A reused thread id is the caller's own thread, with the caller's own runs.
        assert [r["run_id"] for r in intruder.ok("GET", f"/threads/{SHARED}/runs")] == theirs[name][
            "runs"
        ]
        searched = intruder.ok("POST", "/runs/search", {"thread_id": SHARED})
        assert [r["run_id"] for r in searched] == theirs[name]["runs"]
        # Choosing Alice's other id makes a new, separate thread; deleting it deletes only it.
        created = intruder.ok("POST", "/threads", {"thread_id": PRIVATE, "metadata": {"x": 1}})
        assert created["metadata"] == {"x": 1}
        assert intruder.ok("GET", f"/threads/{PRIVATE}/runs") == []
        intruder.ok("DELETE", f"/threads/{PRIVATE}")
        intruder.ok("DELETE", f"/threads/{SHARED}")

    # --- no key ---------------------------------------------------------------------------------
    creates = [
        ("POST", "/runs/crons", LG_CRON),
        ("POST", "/threads", {"thread_id": SHARED}),
        ("POST", "/api/v1/schedules", SEED_BODY),
        ("POST", "/api/v1/schedules/preview", {"cron_expression": "0 9 * * *"}),
    ]
    for method, path, body in [*reads, *writes, *creates]:
        status, parsed, text = nobody.call(method, path, body)
        if path.startswith("/api/v1"):
            assert (status, parsed) == (401, {"error": "Authentication required"}), (path, text)
        else:
            assert (status, parsed) == (403, {"detail": "Missing authentication headers"}), path
        assert MARK not in text

    # --- Alice's objects are untouched ------------------------------------------------------------
    assert alice.ok("GET", f"/threads/{PRIVATE}")["metadata"] == {"owner": MARK}
    assert alice.ok("GET", f"/threads/{SHARED}")["metadata"] == {"owner": MARK}
    assert [r["run_id"] for r in alice.ok("GET", f"/threads/{SHARED}/runs")] == [bound_run]
    assert alice.ok("GET", f"/runs/crons/{stateless}")["enabled"] is True
    assert alice.ok("GET", f"/runs/crons/{mine['bound_cron']}")["thread_id"] == SHARED
    schedule = alice.ok("GET", f"/api/v1/schedules/{shannon}")
    assert (schedule["name"], schedule["status"]) == (SEED_BODY["name"], "ACTIVE")
    assert alice.ok("GET", f"/api/v1/schedules/{shannon}/runs")["total_count"] == 1
    assert alice.ok("POST", "/threads/count", {}) == 2
