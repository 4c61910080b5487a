"""GET /api/v1/usage, the 30-day forecast of both previews and the create/update cap
warning, through the Shannon façade over HTTP with runs fired by the real trigger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.caps import CapOverride, CapScope
from tests.helpers import SEED_BODY, JSONClient, deliver

BASE = "/api/v1/schedules"
DAY1 = datetime(2026, 1, 15, 1, 0, tzinfo=UTC)  # 09:00 Shanghai is 01:00 UTC


@pytest.fixture
def api(client: Any, api_key: str) -> JSONClient:
    return JSONClient(client, api_key)


def set_cap(container: Any, usd: str, user: str | None = "alice") -> None:
    scope = CapScope.TENANT if user is None else CapScope.USER
    container.spend_store.set_override(
        CapOverride(scope, "tenant-a", user, Decimal(usd)), container.clock.now()
    )


def run_days(container: Any, clock: Any, sid: str, days: int) -> list[dict[str, Any]]:
    results = []
    for day in range(days):
        when = DAY1 + timedelta(days=day)
        clock.set(when + timedelta(seconds=5))
        results.append(deliver(container, sid, when))
    return results


def test_usage_by_day_and_by_schedule(
    api: JSONClient, container: Any, clock: Any, other_keys: dict[str, str], client: Any
) -> None:
    clock.set(DAY1 - timedelta(hours=1))
    first = api.post(BASE, SEED_BODY)[1]["schedule_id"]
    second = api.post(BASE, {**SEED_BODY, "name": "other"})[1]["schedule_id"]
    ran = run_days(container, clock, first, 3)
    ran += run_days(container, clock, second, 2)
    # A fire the trigger skips (paused) is counted as a run, at no cost.
    api.post(f"{BASE}/{second}/pause")
    late = DAY1 + timedelta(days=2)
    clock.set(late + timedelta(seconds=5))
    assert deliver(container, second, late)["status"] == "skipped"
    cost = sum(Decimal(r["cost_usd"]) for r in ran)

    status, body = api.get("/api/v1/usage?from=2026-01-14&to=2026-01-17")
    assert status == 200, body
    assert (body["from"], body["to"], body["group_by"], body["month"]) == (
        "2026-01-14",
        "2026-01-17",
        "day",
        "2026-01",
    )
    assert Decimal(str(body["total"]["cost_usd"])) == cost
    assert body["total"]["runs"] == {"COMPLETED": 5, "SKIPPED": 1}
    assert body["total"]["total_tokens"] > 0
    assert [g["date"] for g in body["groups"]] == ["2026-01-15", "2026-01-16", "2026-01-17"]
    assert [sum(g["runs"].values()) for g in body["groups"]] == [2, 2, 2]
    assert Decimal(str(body["month_to_date_usd"])) == cost
    assert body["caps"] == []

    status, body = api.get("/api/v1/usage?days=7&group_by=schedule")
    assert status == 200 and body["to"] == "2026-01-17" and body["from"] == "2026-01-11"
    by_id = {g["schedule_id"]: g for g in body["groups"]}
    assert set(by_id) == {first, second}
    assert len(by_id[first]["daily"]) == 3 and by_id[first]["runs"] == {"COMPLETED": 3}
    assert by_id[second]["runs"] == {"COMPLETED": 2, "SKIPPED": 1}
    assert Decimal(str(by_id[first]["month_to_date_usd"])) == sum(
        Decimal(r["cost_usd"]) for r in ran[:3]
    )

    # The window excludes what is outside it; the month to date does not depend on it.
    body = api.get("/api/v1/usage?from=2026-01-16&to=2026-01-16")[1]
    assert sum(body["total"]["runs"].values()) == 2
    assert Decimal(str(body["month_to_date_usd"])) == cost

    # Another user of the same tenant sees only their own (nothing).
    bob = JSONClient(client, other_keys["same_tenant"])
    theirs = bob.get("/api/v1/usage?from=2026-01-14&to=2026-01-17")[1]
    assert theirs["groups"] == [] and theirs["month_to_date_usd"] == 0


def test_usage_lists_the_caps_in_force(api: JSONClient, container: Any, clock: Any) -> None:
    clock.set(DAY1 - timedelta(hours=1))
    set_cap(container, "40")  # before the first request: the API caches a user's caps
    set_cap(container, "1000", user=None)
    sid = api.post(BASE, {**SEED_BODY, "max_budget_per_run_usd": 1.0})[1]["schedule_id"]
    [result] = run_days(container, clock, sid, 1)
    caps = api.get("/api/v1/usage")[1]["caps"]
    assert [(c["scope"], c["monthly_usd"]) for c in caps] == [("user", 40), ("tenant", 1000)]
    spent = Decimal(result["cost_usd"])
    assert Decimal(str(caps[0]["used_usd"])) == spent
    assert Decimal(str(caps[0]["remaining_usd"])) == Decimal(40) - spent
    assert caps[0]["exhausted"] is False


BAD_QUERIES = [
    ("from=2026-13-01", "Invalid from: expected YYYY-MM-DD (UTC)"),
    ("to=yesterday", "Invalid to: expected YYYY-MM-DD (UTC)"),
    ("to=2026-W01-1", "Invalid to: expected YYYY-MM-DD (UTC)"),
    ("from=2026-01-10&to=2026-01-01", "from must not be after to"),
    ("from=2024-01-01&to=2026-01-01", "at most 366 days per request"),
    ("group_by=week", "Invalid group_by: expected day or schedule"),
    ("days=0", "Invalid days"),
    ("to=0001-01-02", "to is out of range"),
]


def test_bad_usage_queries_are_400(api: JSONClient) -> None:
    for query, message in BAD_QUERIES:
        assert api.get(f"/api/v1/usage?{query}") == (400, {"error": message}), query


def test_usage_needs_credentials(client: Any) -> None:
    assert JSONClient(client, None).get("/api/v1/usage")[0] == 401


def test_preview_forecasts_30_days_dst_correct(api: JSONClient, clock: Any) -> None:
    clock.set(datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    body = {
        "cron_expression": "30 2 * * *",
        "timezone": "America/New_York",
        "max_budget_per_run_usd": 0.5,
    }
    status, preview = api.post(f"{BASE}/preview", body)
    assert status == 200, preview
    # 02:30 does not exist on 2026-03-08 (spring forward): EventBridge skips it.
    assert preview["forecast_30d"] == {
        "fires": 29,
        "max_cost_usd": 14.5,
        "expected_cost_usd": None,
    }
    for bad, message in ((0, "Budget must be greater than 0"), (11, "Budget exceeds limit")):
        status, refused = api.post(
            f"{BASE}/preview", {"cron_expression": "0 9 * * *", "max_budget_per_run_usd": bad}
        )
        assert status == 400 and refused["error"].startswith(message)
    default = api.post(f"{BASE}/preview", {"cron_expression": "0 9 * * *"})[1]
    assert default["forecast_30d"]["max_cost_usd"] == 30 * 10.0  # the default budget


def test_stored_preview_expects_from_recent_runs(
    api: JSONClient, container: Any, clock: Any
) -> None:
    clock.set(DAY1 - timedelta(hours=1))
    sid = api.post(BASE, SEED_BODY)[1]["schedule_id"]
    forecast = api.get(f"{BASE}/{sid}/preview")[1]["forecast_30d"]
    assert forecast == {"fires": 30, "max_cost_usd": 150.0, "expected_cost_usd": None}
    ran = run_days(container, clock, sid, 2)
    forecast = api.get(f"{BASE}/{sid}/preview")[1]["forecast_30d"]
    mean = sum(Decimal(r["cost_usd"]) for r in ran) / 2
    assert forecast["fires"] == 30
    assert forecast["expected_cost_usd"] == pytest.approx(float(mean * 30), abs=1e-6)
    # An end_time cuts the window (LangGraph crons carry one).
    ends = clock.now() + timedelta(days=3, hours=1)
    cut = container.usage_service.forecast("0 9 * * *", "Asia/Shanghai", Decimal(5), ends, ())
    assert cut.fires == 3 and cut.max_cost_usd == 15


def test_create_and_update_warn_when_the_worst_case_exceeds_a_cap(
    api: JSONClient, container: Any
) -> None:
    set_cap(container, "100")
    status, created = api.post(BASE, SEED_BODY)  # 30 fires × $5 = $150 > $100
    assert status == 201
    [warning] = created["warnings"]
    assert "$150.00" in warning and "monthly user cap of $100" in warning
    sid = created["schedule_id"]
    status, updated = api.put(f"{BASE}/{sid}", {"max_budget_per_run_usd": 1.0})
    assert status == 200 and "warnings" not in updated  # $30 fits
    status, updated = api.put(f"{BASE}/{sid}", {"max_budget_per_run_usd": 4.0})
    assert status == 200 and len(updated["warnings"]) == 1


def test_a_usage_answer_too_large_for_lambda_is_a_400_not_a_failed_invocation() -> None:
    """400 schedules run every day of a year, grouped by schedule, pass Lambda's 6 MiB:
    the façade refuses with Shannon's 400 (ask for fewer days) instead of an answer
    Lambda cannot return; a window a tenth as long fits."""
    from datetime import date

    from chalicelib.api.shannon.routes import usage_body
    from chalicelib.domain.caps import Rollup
    from chalicelib.domain.errors import InvalidRequestError
    from chalicelib.services.usage import UsageGroup, UsageReport

    def report(days: int) -> UsageReport:
        first = date(2026, 1, 1)
        daily = {(first + timedelta(days=d)).isoformat(): Decimal("0.123456") for d in range(days)}
        groups = [
            UsageGroup(
                key=f"{n:08d}-0000-4000-8000-000000000000",
                usage=Rollup(cost_usd=Decimal("45.06"), runs={"success": days}),
                month_to_date_usd=Decimal("3.7"),
                daily=daily,
            )
            for n in range(400)
        ]
        return UsageReport(
            first_day=first,
            last_day=first + timedelta(days=days - 1),
            group_by="schedule",
            month="2026-12",
            month_to_date_usd=Decimal("1480"),
            total=Rollup(),
            groups=groups,
            caps=[],
        )

    with pytest.raises(InvalidRequestError, match="fewer days"):
        usage_body(report(365))
    assert len(usage_body(report(36))["groups"]) == 400


def test_a_create_whose_caps_cannot_be_read_still_answers_with_its_secret(
    api: JSONClient, container: Any
) -> None:
    """The cap warning is advice computed after the write: a throttled caps read must not
    turn a committed create into a 503 (the one-time webhook secret would be lost, and a
    client retrying would create a second schedule)."""
    from tests.helpers import failing

    body = {**SEED_BODY, "webhook": "https://example.com/hook"}
    with failing(
        container.dynamodb, "BatchGetItem", times=100, code="ProvisionedThroughputExceededException"
    ):
        status, created = api.post("/api/v1/schedules", body)
    assert status == 201, created
    assert created["webhook_secret"].startswith("whsec_")
    assert "warnings" not in created
    status, listing = api.get("/api/v1/schedules")
    assert [s["schedule_id"] for s in listing["schedules"]] == [created["schedule_id"]]
