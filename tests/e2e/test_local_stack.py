"""``make run``'s stack over real HTTP: the seed document's curl walk-through, byte for byte."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.helpers import SEED_BODY


def call(
    stack: Any, method: str, path: str, body: Any = None, key: str | None = ""
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    token = stack.api_key if key == "" else key
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(
        stack.api_url + path, data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_seed_curl_walkthrough(stack: Any) -> None:
    status, created = call(stack, "POST", "/api/v1/schedules", SEED_BODY)
    assert status == 201 and created["message"] == "Schedule created successfully"
    assert created["next_run_at"].endswith("T09:00:00+08:00")
    sid = created["schedule_id"]
    status, listed = call(stack, "GET", "/api/v1/schedules?page=1&page_size=50&status=ACTIVE")
    assert status == 200 and sid in [s["id"] for s in listed["schedules"]]
    status, got = call(stack, "GET", f"/api/v1/schedules/{sid}")
    assert (status, got["task_context"], got["timezone"]) == (
        200,
        {"report_format": "markdown"},
        "Asia/Shanghai",
    )
    status, updated = call(
        stack,
        "PUT",
        f"/api/v1/schedules/{sid}",
        {"cron_expression": "0 10 * * *", "max_budget_per_run_usd": 8.0},
    )
    assert status == 200 and updated["next_run_at"].endswith("T10:00:00+08:00")
    assert call(stack, "GET", f"/api/v1/schedules/{sid}/runs?page=1&page_size=20") == (
        200,
        {"runs": [], "total_count": 0, "total": 0, "page": 1, "page_size": 20},
    )
    status, paused = call(stack, "POST", f"/api/v1/schedules/{sid}/pause", {"reason": "临时维护"})
    assert (status, paused["message"]) == (200, "Schedule paused successfully")
    assert call(stack, "POST", f"/api/v1/schedules/{sid}/pause", {"reason": "x"}) == (
        409,
        {"error": "Schedule already paused"},
    )
    status, resumed = call(stack, "POST", f"/api/v1/schedules/{sid}/resume", {"reason": "维护完成"})
    assert (status, resumed["message"]) == (200, "Schedule resumed successfully")
    assert call(stack, "DELETE", f"/api/v1/schedules/{sid}") == (
        200,
        {"success": True, "message": "Schedule deleted successfully"},
    )
    assert call(stack, "GET", f"/api/v1/schedules/{sid}") == (404, {"error": "Schedule not found"})
    assert call(stack, "GET", "/api/v1/schedules", key=None) == (
        401,
        {"error": "Authentication required"},
    )


def test_run_now_shows_a_completed_run_with_cost(stack: Any) -> None:
    status, created = call(
        stack,
        "POST",
        "/api/v1/schedules",
        {"name": "every minute", "cron_expression": "* * * * *", "task_query": "What time is it?"},
    )
    assert status == 201
    sid = created["id"]
    status, started = call(stack, "POST", f"/api/v1/schedules/{sid}/trigger")
    assert status == 202
    deadline = time.monotonic() + 10
    runs: list[Any] = []
    while time.monotonic() < deadline:
        runs = call(stack, "GET", f"/api/v1/schedules/{sid}/runs")[1]["runs"]
        if runs and runs[0]["status"] == "COMPLETED":
            break
        time.sleep(0.05)
    manual = [r for r in runs if r["workflow_id"] == started["run_id"]]
    assert manual and manual[0]["status"] == "COMPLETED"
    assert manual[0]["total_cost_usd"] > 0 and manual[0]["model_used"] == "demo-1"
    # The walk-through's usage and forecast, over HTTP.
    status, preview = call(stack, "GET", f"/api/v1/schedules/{sid}/preview")
    forecast = preview["forecast_30d"]
    assert status == 200 and forecast["fires"] == 30 * 24 * 60
    assert forecast["expected_cost_usd"] == pytest.approx(
        manual[0]["total_cost_usd"] * forecast["fires"], rel=1e-3
    )
    status, usage = call(stack, "GET", "/api/v1/usage?group_by=schedule")
    [mine] = [g for g in usage["groups"] if g["schedule_id"] == sid]
    assert status == 200 and mine["runs"] == {"COMPLETED": 1}
    assert mine["cost_usd"] == manual[0]["total_cost_usd"]
    assert usage["month_to_date_usd"] >= mine["cost_usd"]
    call(stack, "DELETE", f"/api/v1/schedules/{sid}")


def test_a_burst_of_100_simultaneous_writes_is_answered(stack: Any) -> None:
    """Every connection of a burst is accepted and answered (the listen backlog is deep).

    Raw sockets, so that all 100 connects happen at once and nothing retries: each
    client connects, sends one POST /threads and must read a 200.
    """
    import socket
    import threading

    body = json.dumps({"metadata": {"burst": True}}).encode()
    host, port = stack.api_url.removeprefix("http://").split(":")
    request = (
        f"POST /threads HTTP/1.1\r\nHost: {host}\r\nx-api-key: {stack.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    gate = threading.Barrier(100)
    answers: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        gate.wait()
        try:
            with socket.create_connection((host, int(port)), timeout=20) as conn:
                conn.sendall(request)
                status_line = conn.makefile("rb").readline().decode()
        except OSError as exc:
            status_line = f"error: {exc!r}"
        with lock:
            answers.append(status_line.split("\r\n")[0])

    threads = [threading.Thread(target=one) for _ in range(100)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    failed = [a for a in answers if not a.startswith("HTTP/1.1 200")]
    assert (len(answers), failed) == (100, []), f"{len(failed)} failed"
    assert time.monotonic() - started < 30
