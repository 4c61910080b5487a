"""DynamoDB ↔ EventBridge Scheduler consistency: call budgets, failure injection, the limit race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.domain.errors import ScheduleLimitReachedError, SchedulingUnavailableError
from chalicelib.domain.models import Principal
from chalicelib.services.schedules import ScheduleChanges, ScheduleDraft
from tests.helpers import SEED_BODY, AwsCalls, JSONClient, failing, one_request_at_a_time

BASE = "/api/v1/schedules"
ALICE = Principal(tenant_id="tenant-a", user_id="alice")


def draft(**changes: Any) -> ScheduleDraft:
    values: dict[str, Any] = {
        "name": "daily",
        "cron_expression": "0 9 * * *",
        "timezone": "Asia/Shanghai",
        "input": {"messages": [{"role": "user", "content": "hi"}]},
    }
    values.update(changes)
    return ScheduleDraft(**values)


def scheduler_entries(container: Any) -> dict[str, dict[str, Any]]:
    group = container.settings.SCHEDULE_GROUP
    names = [s["Name"] for s in container.scheduler.list_schedules(GroupName=group)["Schedules"]]
    return {n: container.scheduler.get_schedule(Name=n, GroupName=group) for n in names}


def records(container: Any) -> dict[str, Any]:
    return {s.id: s for s in container.schedule_store.list_for_user(ALICE)}


def assert_consistent(container: Any) -> None:
    """No Scheduler entry without a record; every record's entries exist with its state."""
    entries = scheduler_entries(container)
    stored = records(container)
    expected = {name: sched for sched in stored.values() for name in sched.eventbridge_names}
    assert set(entries) == set(expected)
    for name, sched in expected.items():
        wanted = "ENABLED" if sched.status.value == "ACTIVE" else "DISABLED"
        assert entries[name]["State"] == wanted, name


# --- AWS calls per operation ----------------------------------------------------------------


def test_aws_calls_per_operation(container: Any, client: Any, api_key: str) -> None:
    api = JSONClient(client, api_key)
    calls = AwsCalls(container.dynamodb, container.scheduler)
    api.get(BASE)  # warm the API-key cache: the budgets are per operation
    with calls.counting() as c:
        sid = api.post(BASE, SEED_BODY)[1]["schedule_id"]
    # + the caller's monthly caps for the cap warning: one BatchGetItem of their two override
    # items, then cached per container (CAPS_CACHE_SECONDS) — the updates below read none.
    assert calls.total() == 3, c
    assert c == {
        "dynamodb.TransactWriteItems": 1,
        "scheduler.CreateSchedule": 1,
        "dynamodb.BatchGetItem": 1,
    }
    with calls.counting() as c:
        api.get(f"{BASE}/{sid}")
    assert c == {"dynamodb.GetItem": 1}
    with calls.counting() as c:
        api.get(BASE)
    assert c == {"dynamodb.Query": 1}
    # Pause, resume and an update of the entries end with the convergence re-read (one
    # consistent GetItem, see chalicelib.services.schedules).
    with calls.counting() as c:
        api.post(f"{BASE}/{sid}/pause")
    assert c == {"dynamodb.UpdateItem": 1, "scheduler.UpdateSchedule": 1, "dynamodb.GetItem": 1}
    with calls.counting() as c:
        api.post(f"{BASE}/{sid}/resume")
    assert c == {"dynamodb.UpdateItem": 1, "scheduler.UpdateSchedule": 1, "dynamodb.GetItem": 1}
    with calls.counting() as c:
        api.put(f"{BASE}/{sid}", {"name": "renamed"})
    assert c == {"dynamodb.GetItem": 1, "dynamodb.UpdateItem": 1}  # no Scheduler change needed
    with calls.counting() as c:
        api.put(f"{BASE}/{sid}", {"cron_expression": "0 10 * * *"})
    assert c == {"dynamodb.GetItem": 2, "dynamodb.UpdateItem": 1, "scheduler.UpdateSchedule": 1}
    with calls.counting() as c:
        api.delete(f"{BASE}/{sid}")
    assert c == {"dynamodb.DeleteItem": 1, "scheduler.DeleteSchedule": 1}


def test_split_schedule_costs_one_scheduler_call_per_entry(container: Any) -> None:
    service = container.schedule_service
    calls = AwsCalls(container.dynamodb, container.scheduler)
    with calls.counting() as c:
        sched = service.create(ALICE, draft(cron_expression="0 9 1 * 1"))
    assert c == {"dynamodb.TransactWriteItems": 1, "scheduler.CreateSchedule": 2}
    assert sched.eventbridge_names == [f"sched-{sched.id}", f"sched-{sched.id}-2"]
    entries = scheduler_entries(container)
    assert {e["ScheduleExpression"] for e in entries.values()} == {
        "cron(0 9 1 * ? *)",
        "cron(0 9 ? * MON *)",
    }
    # Changing to a plain expression drops the second entry.
    service.update(ALICE, sched.id, ScheduleChanges(cron_expression="0 9 * * *"))
    assert list(scheduler_entries(container)) == [f"sched-{sched.id}"]
    assert_consistent(container)


def test_scheduler_entry_is_complete(container: Any) -> None:
    import json

    sched = container.schedule_service.create(ALICE, draft())
    entry = scheduler_entries(container)[f"sched-{sched.id}"]
    s = container.settings
    assert entry["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert entry["ScheduleExpressionTimezone"] == "Asia/Shanghai"
    assert entry["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert entry["State"] == "ENABLED"
    target = entry["Target"]
    assert target["Arn"] == s.TRIGGER_FUNCTION_ARN
    assert target["RoleArn"] == s.SCHEDULER_ROLE_ARN
    assert target["DeadLetterConfig"] == {"Arn": s.SCHEDULER_DLQ_ARN}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    assert json.loads(target["Input"]) == {
        "v": 1,
        "tenant_id": "tenant-a",
        "user_id": "alice",
        "schedule_id": sched.id,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "attempt": "<aws.scheduler.attempt-number>",
        "execution_id": "<aws.scheduler.execution-id>",
    }
    assert sched.name not in json.dumps(entry, default=str)  # no user text in AWS


def test_end_time_becomes_the_end_date(container: Any) -> None:
    from datetime import UTC, datetime

    end = datetime(2026, 6, 1, tzinfo=UTC)
    sched = container.schedule_service.create(ALICE, draft(end_time=end))
    entry = scheduler_entries(container)[f"sched-{sched.id}"]
    assert entry["EndDate"] == end


# --- failure injection: nothing half-done ----------------------------------------------------


@pytest.mark.parametrize(
    ("service_name", "operation"),
    [("dynamodb", "TransactWriteItems"), ("scheduler", "CreateSchedule")],
)
def test_create_failure_leaves_nothing(container: Any, service_name: str, operation: str) -> None:
    client = getattr(container, service_name)
    with failing(client, operation), pytest.raises(SchedulingUnavailableError):
        container.schedule_service.create(ALICE, draft())
    assert records(container) == {}
    assert scheduler_entries(container) == {}


def test_create_failure_of_second_entry_of_a_split_leaves_nothing(container: Any) -> None:
    # The first CreateSchedule succeeds, the second fails: the first must be removed.
    calls = {"n": 0}

    def second_fails(**_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            from tests.helpers import _FakeHTTPResponse

            return _FakeHTTPResponse(), {"Error": {"Code": "ThrottlingException", "Message": "x"}}
        return None

    events = container.scheduler.meta.events
    events.register("before-call.scheduler.CreateSchedule", second_fails, unique_id="second")
    try:
        with pytest.raises(SchedulingUnavailableError):
            container.schedule_service.create(ALICE, draft(cron_expression="0 9 1 * 1"))
    finally:
        events.unregister("before-call.scheduler.CreateSchedule", unique_id="second")
    assert records(container) == {}
    assert scheduler_entries(container) == {}


@pytest.mark.parametrize(
    ("service_name", "operation"),
    [("dynamodb", "GetItem"), ("dynamodb", "UpdateItem"), ("scheduler", "UpdateSchedule")],
)
def test_update_failure_restores_the_previous_schedule(
    container: Any, service_name: str, operation: str
) -> None:
    service = container.schedule_service
    sched = service.create(ALICE, draft())
    with (
        failing(getattr(container, service_name), operation),
        pytest.raises(SchedulingUnavailableError),
    ):
        service.update(
            ALICE, sched.id, ScheduleChanges(cron_expression="0 10 1 * 1", timezone="UTC")
        )
    after = records(container)[sched.id]
    assert (after.cron_expression, after.timezone) == ("0 9 * * *", "Asia/Shanghai")
    entries = scheduler_entries(container)
    assert list(entries) == [f"sched-{sched.id}"]
    assert entries[f"sched-{sched.id}"]["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert entries[f"sched-{sched.id}"]["ScheduleExpressionTimezone"] == "Asia/Shanghai"
    assert_consistent(container)


@pytest.mark.parametrize(
    ("service_name", "operation"), [("dynamodb", "UpdateItem"), ("scheduler", "UpdateSchedule")]
)
def test_pause_and_resume_failures_restore_the_previous_state(
    container: Any, service_name: str, operation: str
) -> None:
    service = container.schedule_service
    sched = service.create(ALICE, draft())
    client = getattr(container, service_name)
    with failing(client, operation), pytest.raises(SchedulingUnavailableError):
        service.pause(ALICE, sched.id, reason="maintenance")
    assert records(container)[sched.id].status.value == "ACTIVE"
    assert_consistent(container)
    service.pause(ALICE, sched.id, reason="maintenance")
    with failing(client, operation), pytest.raises(SchedulingUnavailableError):
        service.resume(ALICE, sched.id)
    restored = records(container)[sched.id]
    assert restored.status.value == "PAUSED"
    assert (restored.pause_reason, restored.paused_by.value if restored.paused_by else None) == (
        "maintenance",
        "user",
    )
    assert_consistent(container)


@pytest.mark.parametrize(
    ("service_name", "operation"), [("dynamodb", "DeleteItem"), ("scheduler", "DeleteSchedule")]
)
def test_delete_failure_keeps_record_and_entries(
    container: Any, service_name: str, operation: str
) -> None:
    service = container.schedule_service
    sched = service.create(ALICE, draft(cron_expression="0 9 1 * 1"))
    with (
        failing(getattr(container, service_name), operation),
        pytest.raises(SchedulingUnavailableError),
    ):
        service.delete(ALICE, sched.id)
    assert sched.id in records(container)
    assert len(scheduler_entries(container)) == 2
    assert_consistent(container)
    service.delete(ALICE, sched.id)
    assert records(container) == {} and scheduler_entries(container) == {}


def test_failures_surface_as_503_in_the_api(container: Any, client: Any, api_key: str) -> None:
    api = JSONClient(client, api_key)
    with failing(container.scheduler, "CreateSchedule"):
        assert api.post(BASE, SEED_BODY) == (503, {"error": "Scheduling service unavailable"})
    assert api.get(BASE)[1]["total"] == 0


# --- the per-user limit under concurrency ------------------------------------------------------


@pytest.mark.slow
def test_sixty_concurrent_creates_against_a_limit_of_fifty(container: Any) -> None:
    service = container.schedule_service
    assert service.limits.max_per_user == 50

    def attempt(i: int) -> str:
        try:
            service.create(ALICE, draft(name=f"s{i}"))
            return "created"
        except ScheduleLimitReachedError:
            return "limit"

    with one_request_at_a_time(container.dynamodb), ThreadPoolExecutor(max_workers=60) as pool:
        outcomes = list(pool.map(attempt, range(60)))
    assert outcomes.count("created") == 50
    assert outcomes.count("limit") == 10
    assert len(records(container)) == 50
    assert len(scheduler_entries(container)) == 50


def test_end_time_must_lie_ahead_and_an_ended_schedule_is_written_disabled(
    container: Any, clock: Any
) -> None:
    from datetime import timedelta

    from chalicelib.domain.errors import InvalidRequestError

    service = container.schedule_service
    with pytest.raises(InvalidRequestError, match="must be in the future"):
        service.create(ALICE, draft(end_time=clock.now() - timedelta(minutes=1)))
    sched = service.create(ALICE, draft(end_time=clock.now() + timedelta(hours=2)))
    with pytest.raises(InvalidRequestError, match="must be in the future"):
        service.update(ALICE, sched.id, ScheduleChanges(end_time=clock.now()))
    # Once the end has passed, re-writing the entries (here: a new cron) must not send a
    # past EndDate, which EventBridge refuses; the entry is disabled instead.
    clock.advance(timedelta(hours=3))
    service.update(ALICE, sched.id, ScheduleChanges(cron_expression="0 10 * * *"))
    entry = scheduler_entries(container)[f"sched-{sched.id}"]
    assert entry["State"] == "DISABLED" and "EndDate" not in entry
    assert service.next_run_at(records(container)[sched.id]) is None


def test_a_computed_update_is_recomputed_when_another_update_wins_the_race(
    container: Any,
) -> None:
    service = container.schedule_service
    sched = service.create(ALICE, draft(metadata={"owner": "ops"}))
    raced: list[bool] = []

    def add_a(current: Any) -> ScheduleChanges:
        if not raced:  # another writer lands between our read and our write
            raced.append(True)
            service.update(ALICE, sched.id, ScheduleChanges(metadata={**current.metadata, "b": 2}))
        return ScheduleChanges(metadata={**current.metadata, "a": 1})

    updated = service.update(ALICE, sched.id, add_a)
    assert updated.metadata == {"owner": "ops", "b": 2, "a": 1}
    assert records(container)[sched.id].metadata == {"owner": "ops", "b": 2, "a": 1}
