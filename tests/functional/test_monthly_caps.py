"""Monthly caps through the real trigger handler against moto: reservation per model call,
the distinct BUDGET_EXCEEDED reason, the month's later fires skipped, concurrency, and the
AWS calls a fire costs with and without a cap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.caps import Cap, CapOverride, CapScope
from chalicelib.domain.models import Principal, user_message_input
from chalicelib.services.schedules import ScheduleDraft
from tests.helpers import AwsCalls, item_atomic_dynamodb, scheduled_event

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
BOB = Principal(tenant_id="tenant-a", user_id="bob")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"SCHEDULE_MIN_INTERVAL_MINS": 1}


def make(container: Any, who: Principal = ALICE, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "name": "report",
        "cron_expression": "0 9 * * *",
        "timezone": "UTC",
        "input": user_message_input("Summarise yesterday"),
    }
    values.update(changes)
    return container.schedule_service.create(who, ScheduleDraft(**values))


def fire(container: Any, schedule_id: str, when: datetime) -> dict[str, Any]:
    event = scheduled_event(container, schedule_id, when)
    result: dict[str, Any] = container.trigger_handler(event, lambda: 900_000)
    return result


def set_cap(container: Any, usd: str | None, *, user: str | None = "alice") -> None:
    scope = CapScope.TENANT if user is None else CapScope.USER
    container.spend_store.set_override(
        CapOverride(scope, "tenant-a", user, None if usd is None else Decimal(usd)),
        container.clock.now(),
    )


def counter(container: Any, scope: CapScope, month: str = "2026-01", who: Principal = ALICE) -> Any:
    from chalicelib.domain.caps import Cap

    [usage] = container.spend_store.usage(
        [Cap(scope, Decimal(1))], who.tenant_id, who.user_id, month
    )
    return usage


def test_without_a_cap_a_fire_costs_no_extra_call(container: Any, clock: Any) -> None:
    sched = make(container, context={"demo_model_calls": 3})
    clock.set(NINE + timedelta(seconds=2))
    calls = AwsCalls(container.dynamodb)
    with calls.counting() as counted:
        assert fire(container, sched.id, NINE)["status"] == "success"
    # The cap overrides ride in the fire's one BatchGetItem; 3 model calls, 0 UpdateItem.
    assert counted == {"dynamodb.BatchGetItem": 1, "dynamodb.TransactWriteItems": 2}


def test_a_user_cap_reserves_and_settles_each_model_call(container: Any, clock: Any) -> None:
    set_cap(container, "5")
    sched = make(container, context={"demo_model_calls": 3})
    clock.set(NINE + timedelta(seconds=2))
    calls = AwsCalls(container.dynamodb)
    with calls.counting() as counted:
        result = fire(container, sched.id, NINE)
    assert result["status"] == "success"
    # + one read of the month counter at the fire, + reserve and settle per model call.
    assert counted == {
        "dynamodb.BatchGetItem": 2,
        "dynamodb.TransactWriteItems": 2,
        "dynamodb.UpdateItem": 6,
    }
    month = counter(container, CapScope.USER)
    assert month.spent_usd == month.used_usd == Decimal(result["cost_usd"]) > 0


def test_a_deployment_default_applies_unless_overridden_unlimited(
    container: Any, clock: Any
) -> None:
    from chalicelib.domain.caps import CapDefaults

    defaults = CapDefaults(user_usd=Decimal("0.0001"))
    container.run_executor.settings = container.run_executor.settings.__class__(
        **{**container.run_executor.settings.__dict__, "caps": defaults}
    )
    sched = make(container)
    clock.set(NINE + timedelta(seconds=2))
    assert fire(container, sched.id, NINE)["status"] == "budget_exceeded"
    set_cap(container, None)  # unlimited for alice
    tomorrow = NINE + timedelta(days=1)
    clock.set(tomorrow + timedelta(seconds=2))
    assert fire(container, sched.id, tomorrow)["status"] == "success"


def test_an_exhausted_cap_ends_the_run_without_pause_and_skips_the_months_later_fires(
    container: Any, clock: Any
) -> None:
    set_cap(container, "0.0015")  # one demo call's reservation fits, the second does not
    sched = make(container, context={"demo_model_calls": 4})
    clock.set(NINE + timedelta(seconds=2))
    result = fire(container, sched.id, NINE)
    assert result["status"] == "budget_exceeded"
    assert result["reason"].startswith("monthly user cap of $0.0015 reached")
    after = container.schedule_store.get(ALICE, sched.id)
    assert after.status.value == "ACTIVE"  # a cap stop is no pause
    month = counter(container, CapScope.USER)
    assert month.used_usd == month.spent_usd == Decimal(result["cost_usd"]) <= Decimal("0.0015")
    [refused] = container.spend_store.usage(
        [Cap(CapScope.USER, Decimal("0.0015"))], "tenant-a", "alice", "2026-01"
    )
    assert refused.refused_usd is not None and refused.remaining_usd < refused.refused_usd
    assert refused.exhausted

    tomorrow = NINE + timedelta(days=1)
    clock.set(tomorrow + timedelta(seconds=2))
    skipped = fire(container, sched.id, tomorrow)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "monthly_cap")

    set_cap(container, "1")  # the operator raises the cap: fires run again
    later = NINE + timedelta(days=2)
    clock.set(later + timedelta(seconds=2))
    assert fire(container, sched.id, later)["status"] == "success"

    set_cap(container, "0.0015")
    next_month = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)  # a new UTC month, a new counter
    clock.set(next_month + timedelta(seconds=2))
    assert fire(container, sched.id, next_month)["status"] == "budget_exceeded"
    assert counter(container, CapScope.USER, "2026-02").spent_usd <= Decimal("0.0015")


def test_a_tenant_cap_binds_across_its_users(container: Any, clock: Any) -> None:
    # A demo call reserves ~$0.00105 and costs ~$0.00008: alice's call fits, then bob's not.
    set_cap(container, "0.0011", user=None)
    mine = make(container)
    theirs = make(container, BOB)
    clock.set(NINE + timedelta(seconds=2))
    first = fire(container, mine.id, NINE)
    second = fire(container, theirs.id, NINE)
    assert first["status"] == "success"
    assert second["status"] == "budget_exceeded"
    assert second["reason"].startswith("monthly tenant cap")
    tenant = counter(container, CapScope.TENANT)
    spent = Decimal(first["cost_usd"]) + Decimal(second["cost_usd"])
    assert tenant.spent_usd == tenant.used_usd == spent <= Decimal("0.0011")


def test_one_users_refused_call_never_stops_the_other_users_of_a_tenant_cap(
    container: Any, clock: Any
) -> None:
    """A refusal is the refused user's record, not the tenant counter's: bob's oversized
    call skips bob's later fires only, while alice keeps running under the same cap."""
    set_cap(container, "0.003", user=None)
    alices = make(container)
    bobs = make(container, BOB, input=user_message_input("x" * 30_000))
    clock.set(NINE + timedelta(seconds=2))
    refused = fire(container, bobs.id, NINE)
    assert refused["status"] == "budget_exceeded"
    assert refused["reason"].startswith("monthly tenant cap of $0.003 reached")
    tomorrow = NINE + timedelta(days=1)
    clock.set(tomorrow + timedelta(seconds=2))
    assert fire(container, alices.id, tomorrow)["status"] == "success"
    skipped = fire(container, bobs.id, tomorrow)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "monthly_cap")


def test_concurrent_runs_of_one_user_never_pass_the_cap(container: Any, clock: Any) -> None:
    cap = Decimal("0.006")
    set_cap(container, str(cap))
    set_cap(container, "0.05", user=None)  # both counters in play
    schedules = [make(container, name=f"s{i}", context={"demo_model_calls": 4}) for i in range(6)]
    clock.set(NINE + timedelta(seconds=2))
    events = [scheduled_event(container, s.id, NINE) for s in schedules]
    with item_atomic_dynamodb(container.dynamodb), ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda e: container.trigger_handler(e, lambda: 900_000), events))
    statuses = sorted(r["status"] for r in results)
    assert "budget_exceeded" in statuses and "success" in statuses, statuses
    total = sum(Decimal(r["cost_usd"]) for r in results)
    month = counter(container, CapScope.USER)
    assert month.spent_usd == month.used_usd == total <= cap
    assert counter(container, CapScope.TENANT).spent_usd == total


def test_run_now_in_an_exhausted_month_is_recorded_as_skipped(
    container: Any, clock: Any, client: Any, api_key: str
) -> None:
    from tests.helpers import JSONClient

    set_cap(container, "0.0005")  # below one demo call's reservation
    sched = make(container)
    api = JSONClient(client, api_key)
    assert api.post(f"/api/v1/schedules/{sched.id}/trigger")[0] == 202
    [run] = api.get(f"/api/v1/schedules/{sched.id}/runs")[1]["runs"]
    assert run["status"] == "BUDGET_EXCEEDED"
    assert run["error_message"].startswith("monthly user cap of $0.0005 reached")
    assert run["total_cost_usd"] == 0  # refused before the call: nothing spent
    api.post(f"/api/v1/schedules/{sched.id}/trigger")
    newest = api.get(f"/api/v1/schedules/{sched.id}/runs")[1]["runs"][0]
    assert (newest["status"], newest["error_message"]) == ("SKIPPED", "monthly_cap")
