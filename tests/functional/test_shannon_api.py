"""The Shannon façade end to end: chalice.test.Client → real adapters → moto."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.helpers import SEED_BODY, JSONClient

BASE = "/api/v1/schedules"


@pytest.fixture
def api(client: Any, api_key: str) -> JSONClient:
    return JSONClient(client, api_key)


def create(api: JSONClient, **changes: Any) -> str:
    status, body = api.post(BASE, {**SEED_BODY, **changes})
    assert status == 201, body
    return str(body["schedule_id"])


# --- the seed's walk-through -------------------------------------------------------------


def test_seed_walkthrough_create_list_get_update_runs_pause_resume_delete(api: JSONClient) -> None:
    # Given the clock at 2026-01-15T08:00Z (16:00 in Shanghai)
    status, created = api.post(BASE, SEED_BODY)
    assert status == 201
    assert created["message"] == "Schedule created successfully"
    sid = created["schedule_id"]
    assert created["id"] == sid
    uuid.UUID(sid)
    assert created["next_run_at"] == "2026-01-16T09:00:00+08:00"

    status, listed = api.get(f"{BASE}?page=1&page_size=50&status=ACTIVE")
    assert status == 200
    assert listed["total"] == listed["total_count"] == 1
    assert (listed["page"], listed["page_size"]) == (1, 50)
    item = listed["schedules"][0]
    assert item["id"] == item["schedule_id"] == sid
    assert item["name"] == "每日摘要"
    assert item["status"] == "ACTIVE"
    assert item["next_run_at"] == "2026-01-16T09:00:00+08:00"
    assert (item["total_runs"], item["successful_runs"], item["failed_runs"]) == (0, 0, 0)

    status, got = api.get(f"{BASE}/{sid}")
    assert status == 200
    assert list(got) == [
        "id",
        "schedule_id",
        "name",
        "description",
        "cron_expression",
        "timezone",
        "task_query",
        "task_context",
        "max_budget_per_run_usd",
        "timeout_seconds",
        "status",
        "created_at",
        "updated_at",
        "next_run_at",
        "last_run_at",
        "total_runs",
        "successful_runs",
        "failed_runs",
        "paused_at",
        "pause_reason",
        "paused_by",
        "user_id",
        "overlap_policy",
        "webhook",
        "max_attempts_per_call",
        "initial_backoff_seconds",
        "pause_after_failures",
        "consecutive_failures",
    ]
    # The failure policy's deployment defaults; the signing secret is never read back.
    assert (got["max_attempts_per_call"], got["initial_backoff_seconds"]) == (3, 1.0)
    assert (got["pause_after_failures"], got["consecutive_failures"]) == (5, 0)
    assert created["webhook_secret"].startswith("whsec_")
    assert created["webhook_secret"] not in json.dumps(got)
    assert got["description"] == "生成每日活动摘要"
    assert got["task_query"] == "总结昨天的活动"
    assert got["task_context"] == {"report_format": "markdown"}
    assert got["max_budget_per_run_usd"] == 5.0
    assert got["timeout_seconds"] == 600
    assert got["created_at"] == got["updated_at"] == "2026-01-15T08:00:00Z"
    assert got["last_run_at"] is None and got["paused_at"] is None
    assert got["user_id"] == "alice"

    status, updated = api.put(
        f"{BASE}/{sid}", {"cron_expression": "0 10 * * *", "max_budget_per_run_usd": 8.0}
    )
    assert status == 200
    assert updated == {
        "success": True,
        "message": "Schedule updated successfully",
        "next_run_at": "2026-01-16T10:00:00+08:00",
    }
    got = api.get(f"{BASE}/{sid}")[1]
    assert got["cron_expression"] == "0 10 * * *" and got["max_budget_per_run_usd"] == 8.0
    assert got["task_query"] == "总结昨天的活动"  # untouched by a partial update

    status, runs = api.get(f"{BASE}/{sid}/runs?page=1&page_size=20")
    assert status == 200
    assert runs == {"runs": [], "total_count": 0, "total": 0, "page": 1, "page_size": 20}

    status, paused = api.post(f"{BASE}/{sid}/pause", {"reason": "临时维护"})
    assert status == 200
    assert paused == {
        "success": True,
        "message": "Schedule paused successfully",
        "paused_at": "2026-01-15T08:00:00Z",
    }
    got = api.get(f"{BASE}/{sid}")[1]
    assert got["status"] == "PAUSED" and got["next_run_at"] is None
    assert (got["pause_reason"], got["paused_by"]) == ("临时维护", "user")

    status, resumed = api.post(f"{BASE}/{sid}/resume", {"reason": "维护完成"})
    assert status == 200
    assert resumed == {
        "success": True,
        "message": "Schedule resumed successfully",
        "next_run_at": "2026-01-16T10:00:00+08:00",
    }
    got = api.get(f"{BASE}/{sid}")[1]
    assert got["status"] == "ACTIVE" and got["pause_reason"] is None and got["paused_at"] is None

    status, deleted = api.delete(f"{BASE}/{sid}")
    assert status == 200
    assert deleted == {"success": True, "message": "Schedule deleted successfully"}
    for path in (f"{BASE}/{sid}", f"{BASE}/{sid}/runs"):
        assert api.get(path) == (404, {"error": "Schedule not found"})


def test_defaults_follow_the_seed(api: JSONClient) -> None:
    sid = create(
        api,
        timezone=None,
        max_budget_per_run_usd=None,
        timeout_seconds=None,
        task_context=None,
        description=None,
    )
    got = api.get(f"{BASE}/{sid}")[1]
    assert got["timezone"] == "UTC"
    assert got["max_budget_per_run_usd"] == 10.0
    assert got["timeout_seconds"] == 600
    assert got["task_context"] == {}
    assert got["description"] == ""
    assert got["next_run_at"] == "2026-01-15T09:00:00+00:00"


def test_x_api_key_header_authenticates_too(client: Any, api_key: str) -> None:
    api = JSONClient(client, api_key, header="x-api-key")
    assert api.post(BASE, SEED_BODY)[0] == 201
    assert api.get(BASE)[1]["total"] == 1


@pytest.mark.parametrize(
    ("cron", "tz", "next_run"),
    [
        ("0 */4 * * *", "UTC", "2026-01-15T12:00:00+00:00"),
        ("0 0 * * 1", "UTC", "2026-01-19T00:00:00+00:00"),
        ("30 8 1 * *", "UTC", "2026-02-01T08:30:00+00:00"),
        ("0 12 * * 1-5", "America/New_York", "2026-01-15T12:00:00-05:00"),
        ("0 0 1,15 * *", "Europe/London", "2026-02-01T00:00:00+00:00"),
    ],
)
def test_seed_cron_examples_are_accepted(
    api: JSONClient, cron: str, tz: str, next_run: str
) -> None:
    status, body = api.post(BASE, {**SEED_BODY, "cron_expression": cron, "timezone": tz})
    assert status == 201, body
    assert body["next_run_at"] == next_run


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cron_expression": "not a cron"}, "Invalid cron expression: "),
        ({"cron_expression": "* * * * * *"}, "Invalid cron expression: "),
        ({"cron_expression": "@reboot"}, "Invalid cron expression: "),
        ({"cron_expression": "CRON_TZ=UTC 0 9 * * *"}, "Invalid cron expression: "),
        ({"cron_expression": "0 9 31 2 *"}, "Invalid cron expression: never fires"),
        ({"cron_expression": "*/30 * * * *"}, "Interval too short: must be at least 60 minutes"),
        ({"cron_expression": "0,30 0 * * *"}, "Interval too short: must be at least 60 minutes"),
        ({"timezone": "Mars/Olympus"}, "Invalid timezone: Mars/Olympus"),
        ({"timezone": "asia/shanghai"}, "Invalid timezone: asia/shanghai"),
        ({"max_budget_per_run_usd": 0}, "Budget must be greater than 0"),
        ({"max_budget_per_run_usd": -1.5}, "Budget must be greater than 0"),
        ({"max_budget_per_run_usd": 20}, "Budget exceeds limit: $20.00 > $10.00"),
        ({"timeout_seconds": 0}, "Timeout must be between 1 and 840 seconds"),
        ({"timeout_seconds": 841}, "Timeout must be between 1 and 840 seconds"),
        ({"timeout_seconds": 1.5}, "Invalid request body: timeout_seconds: must be an integer"),
        ({"timeout_seconds": True}, "Invalid request body: timeout_seconds: must be an integer"),
        (
            {"max_budget_per_run_usd": "5"},
            "Invalid request body: max_budget_per_run_usd: must be a number",
        ),
        ({"name": 42}, "Invalid request body: name: must be a string"),
        ({"task_context": "x"}, "Invalid request body: task_context must be an object"),
        ({"task_context": ["x"]}, "Invalid request body: task_context must be an object"),
        ({"cron": "0 9 * * *"}, "Invalid request body: unknown field(s): cron"),
        ({"name": "x" * 256}, "Name too long: max 255 characters"),
        ({"name": "   "}, "Schedule name required"),
        ({"cron_expression": ""}, "Cron expression required"),
        ({"task_query": ""}, "Task query required"),
        ({"task_context": {"blob": "x" * 70_000}}, "task_context too large: max 64 KiB"),
        ({"task_query": "x" * 40_000}, "Task query too long: max 32 KiB"),
        ({"webhook": "http://example.com/hook"}, "Webhook URL must be an absolute https:// URL"),
        (
            {"overlap_policy": "queue"},
            "Invalid request body: overlap_policy: must be 'skip' or 'allow'",
        ),
    ],
)
def test_create_rejects_bad_input_with_400(
    api: JSONClient, changes: dict[str, Any], message: str
) -> None:
    status, body = api.post(BASE, {**SEED_BODY, **changes})
    assert status == 400
    assert body["error"].startswith(message), body
    assert api.get(BASE)[1]["total"] == 0  # nothing half-written


def test_missing_fields_are_reported_in_shannons_order(api: JSONClient) -> None:
    assert api.post(BASE, {})[1] == {"error": "Schedule name required"}
    assert api.post(BASE, {"name": "n"})[1] == {"error": "Cron expression required"}
    assert api.post(BASE, {"name": "n", "cron_expression": "0 9 * * *"})[1] == {
        "error": "Task query required"
    }
    assert api.post(BASE, {"name": None, "cron_expression": None})[1] == {
        "error": "Schedule name required"
    }


@pytest.mark.parametrize(
    "raw", ["{", "[1,2]", '"text"', "null", "", "{'single': 1}", '{"a": NaN}', '{"a": 1} x']
)
def test_bad_json_is_400(api: JSONClient, raw: str) -> None:
    status, body = api.post(BASE, raw=raw)
    assert status == 400
    assert body["error"].startswith("Invalid request body")


def test_form_content_type_is_still_parsed_as_json(api: JSONClient) -> None:
    import json

    status, _ = api.post(
        BASE,
        raw=json.dumps(SEED_BODY),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 201


def test_limit_reached_is_403_and_validation_wins_over_the_limit(
    container: Any, client: Any, api_key: str
) -> None:
    api = JSONClient(client, api_key)
    for i in range(50):
        create(api, name=f"s{i}")
    status, body = api.post(BASE, SEED_BODY)
    assert (status, body) == (403, {"error": "Schedule limit reached: 50/50 schedules"})
    # A malformed request is a 400 even at the limit.
    assert api.post(BASE, {**SEED_BODY, "timezone": "Nowhere/Land"})[0] == 400
    # Deleting one makes room again (the counter is recounted once).
    sid = api.get(f"{BASE}?page_size=1")[1]["schedules"][0]["id"]
    assert api.delete(f"{BASE}/{sid}")[0] == 200
    assert api.post(BASE, SEED_BODY)[0] == 201
    assert api.post(BASE, SEED_BODY)[0] == 403


def test_unknown_and_malformed_ids_are_404_on_every_endpoint(api: JSONClient) -> None:
    for sid in (str(uuid.uuid4()), "not-a-uuid", "1"):
        for method, path, body in (
            ("GET", f"{BASE}/{sid}", None),
            ("PUT", f"{BASE}/{sid}", {"name": "x"}),
            ("DELETE", f"{BASE}/{sid}", None),
            ("POST", f"{BASE}/{sid}/pause", {}),
            ("POST", f"{BASE}/{sid}/resume", {}),
            ("GET", f"{BASE}/{sid}/runs", None),
            ("GET", f"{BASE}/{sid}/preview", None),
            ("POST", f"{BASE}/{sid}/trigger", None),
        ):
            assert api.request(method, path, body) == (404, {"error": "Schedule not found"}), (
                method,
                path,
            )


def test_pause_twice_and_resume_active_are_409(api: JSONClient) -> None:
    sid = create(api)
    assert api.post(f"{BASE}/{sid}/resume")[0:2] == (409, {"error": "Schedule not paused"})
    assert api.post(f"{BASE}/{sid}/pause")[0] == 200
    assert api.post(f"{BASE}/{sid}/pause", {"reason": "again"}) == (
        409,
        {"error": "Schedule already paused"},
    )
    assert api.post(f"{BASE}/{sid}/pause", raw="{bad") == (400, {"error": "Invalid request body"})


def test_authentication_errors_are_401(client: Any, api_key: str) -> None:
    anonymous = JSONClient(client, None)
    response = client.http.get(BASE, headers={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.get(BASE) == (401, {"error": "Authentication required"})
    assert JSONClient(client, "ac_wrong_key_000000000").get(BASE) == (
        401,
        {"error": "Invalid token"},
    )
    assert anonymous.get(BASE, headers={"Authorization": "Basic abc"}) == (
        401,
        {"error": "Authentication required"},
    )


def test_revoked_keys_stop_working(container: Any, client: Any) -> None:
    key, record = container.api_keys.mint("tenant-r", "rita")
    api = JSONClient(client, key)
    assert api.get(BASE)[0] == 200
    assert container.api_keys.revoke("tenant-r", record.key_id) is True
    assert api.get(BASE) == (401, {"error": "Invalid token"})


# --- list ----------------------------------------------------------------------------------


def test_list_pages_filters_and_orders_newest_first(api: JSONClient, clock: Any) -> None:
    from datetime import timedelta

    ids = []
    for i in range(5):
        ids.append(create(api, name=f"s{i}"))
        clock.advance(timedelta(seconds=1))
    api.post(f"{BASE}/{ids[1]}/pause")
    page = api.get(f"{BASE}?page=1&page_size=2")[1]
    assert [s["id"] for s in page["schedules"]] == [ids[4], ids[3]]
    assert page["total"] == 5
    page3 = api.get(f"{BASE}?page=3&page_size=2")[1]
    assert [s["id"] for s in page3["schedules"]] == [ids[0]]
    assert api.get(f"{BASE}?page=9")[1]["schedules"] == []
    paused = api.get(f"{BASE}?status=paused")[1]
    assert [s["id"] for s in paused["schedules"]] == [ids[1]] and paused["total"] == 1
    assert api.get(f"{BASE}?status=ALL")[1]["total"] == 5
    assert api.get(f"{BASE}?page_size=1000")[1]["page_size"] == 100
    assert api.get(f"{BASE}?page_size=0")[1]["page_size"] == 1
    assert api.get(f"{BASE}?page=0") == (400, {"error": "Invalid page"})
    assert api.get(f"{BASE}?page=x") == (400, {"error": "Invalid page"})
    assert api.get(f"{BASE}?page_size=x") == (400, {"error": "Invalid page_size"})
    assert api.get(f"{BASE}?status=DELETED") == (400, {"error": "Invalid status filter"})


def test_empty_list_has_every_key(api: JSONClient) -> None:
    assert api.get(BASE) == (
        200,
        {"schedules": [], "total": 0, "total_count": 0, "page": 1, "page_size": 50},
    )


# --- update ----------------------------------------------------------------------------------


def test_update_is_partial_and_validated_like_create(api: JSONClient) -> None:
    sid = create(api)
    before = api.get(f"{BASE}/{sid}")[1]
    assert api.put(f"{BASE}/{sid}", {})[0] == 200
    assert api.get(f"{BASE}/{sid}")[1] == before  # PUT {} changes nothing
    for bad, message in (
        ({"name": ""}, "Schedule name required"),
        ({"cron_expression": "0 * * * * *"}, "Invalid cron expression: "),
        ({"cron_expression": "*/5 * * * *"}, "Interval too short"),
        ({"task_query": "  "}, "Task query required"),
        ({"max_budget_per_run_usd": -1}, "Budget must be greater than 0"),
        ({"max_budget_per_run_usd": 10.01}, "Budget exceeds limit"),
        ({"timeout_seconds": 100000}, "Timeout must be between"),
        ({"timezone": "UTC+8"}, "Invalid timezone"),
        ({"status": "PAUSED"}, "Invalid request body: unknown field(s): status"),
    ):
        status, body = api.put(f"{BASE}/{sid}", bad)
        assert status == 400 and body["error"].startswith(message), (bad, body)
    assert api.get(f"{BASE}/{sid}")[1] == before


def test_update_task_context_semantics(api: JSONClient) -> None:
    sid = create(api)
    api.put(f"{BASE}/{sid}", {"task_context": {}})
    assert api.get(f"{BASE}/{sid}")[1]["task_context"] == {"report_format": "markdown"}
    api.put(f"{BASE}/{sid}", {"task_context": {"lang": "zh", "n": 3, "deep": {"x": True}}})
    assert api.get(f"{BASE}/{sid}")[1]["task_context"] == {
        "lang": "zh",
        "n": 3,
        "deep": {"x": True},
    }
    api.put(f"{BASE}/{sid}", {"task_context": {"a": 1}, "clear_task_context": True})
    assert api.get(f"{BASE}/{sid}")[1]["task_context"] == {}


def test_update_of_a_paused_schedule_keeps_it_paused(api: JSONClient) -> None:
    sid = create(api)
    api.post(f"{BASE}/{sid}/pause")
    status, body = api.put(f"{BASE}/{sid}", {"cron_expression": "0 7 * * *", "timezone": "UTC"})
    assert status == 200 and body["next_run_at"] is None
    got = api.get(f"{BASE}/{sid}")[1]
    assert got["status"] == "PAUSED" and got["cron_expression"] == "0 7 * * *"
    resumed = api.post(f"{BASE}/{sid}/resume")[1]
    assert resumed["next_run_at"] == "2026-01-16T07:00:00+00:00"


# --- preview -----------------------------------------------------------------------------------


def test_preview_of_a_schedule_and_of_an_expression(api: JSONClient) -> None:
    sid = create(api, cron_expression="0 9 * * 1-5")
    status, body = api.get(f"{BASE}/{sid}/preview?count=3")
    assert status == 200
    assert body["schedule_id"] == sid
    assert body["next_run_times"] == [
        "2026-01-16T09:00:00+08:00",
        "2026-01-19T09:00:00+08:00",
        "2026-01-20T09:00:00+08:00",
    ]
    assert "Monday through Friday" in body["description"]
    assert body["eventbridge_expressions"] == ["cron(0 9 ? * MON-FRI *)"]
    status, body = api.post(
        f"{BASE}/preview", {"cron_expression": "0 0 1,15 * 1", "timezone": "UTC", "count": 2}
    )
    assert status == 200
    assert body["next_run_times"] == ["2026-01-19T00:00:00+00:00", "2026-01-26T00:00:00+00:00"]
    assert len(body["eventbridge_expressions"]) == 2
    assert api.get(f"{BASE}/{sid}/preview?count=0")[0] == 400
    assert api.get(f"{BASE}/{sid}/preview?count=51")[0] == 400
    assert api.post(f"{BASE}/preview", {"cron_expression": "* * * * *"})[1]["error"].startswith(
        "Interval too short"
    )
    assert api.post(f"{BASE}/preview", {"timezone": "UTC"})[0] == 400


# --- tenancy ---------------------------------------------------------------------------------


def test_another_user_or_tenant_sees_404_everywhere(
    client: Any, api: JSONClient, other_keys: dict[str, str]
) -> None:
    sid = create(api)
    for key in other_keys.values():
        intruder = JSONClient(client, key)
        assert intruder.get(BASE)[1]["total"] == 0
        for method, path, body in (
            ("GET", f"{BASE}/{sid}", None),
            ("PUT", f"{BASE}/{sid}", {"name": "mine now"}),
            ("POST", f"{BASE}/{sid}/pause", {}),
            ("POST", f"{BASE}/{sid}/resume", {}),
            ("GET", f"{BASE}/{sid}/runs", None),
            ("GET", f"{BASE}/{sid}/preview", None),
            ("POST", f"{BASE}/{sid}/trigger", None),
            ("DELETE", f"{BASE}/{sid}", None),
        ):
            assert intruder.request(method, path, body) == (
                404,
                {"error": "Schedule not found"},
            ), (key, method, path)
    got = api.get(f"{BASE}/{sid}")[1]
    assert got["name"] == "每日摘要" and got["status"] == "ACTIVE"
