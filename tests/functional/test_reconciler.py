"""The reconciler repairs what a crash between two writes leaves behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.enums import OnRunCompleted
from chalicelib.domain.errors import SchedulingUnavailableError
from chalicelib.domain.models import Principal, user_message_input
from chalicelib.services.reconciler import drift_due
from chalicelib.services.schedules import ScheduleDraft
from tests.helpers import AwsCalls, _FakeHTTPResponse, deliver, failing

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def make(container: Any, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "name": "r",
        "cron_expression": "0 * * * *",
        "timezone": "UTC",
        "input": user_message_input("q"),
    }
    values.update(changes)
    return container.schedule_service.create(ALICE, ScheduleDraft(**values))


def entries(container: Any) -> dict[str, Any]:
    group = container.settings.SCHEDULE_GROUP
    return {s["Name"]: s for s in container.scheduler.list_schedules(GroupName=group)["Schedules"]}


def crash_the_finish(container: Any) -> Any:
    """Fail the trigger's second transaction (the finish), as a killed Lambda would leave it."""
    calls = {"n": 0}

    def second_transaction_fails(**_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            return _FakeHTTPResponse(), {"Error": {"Code": "InternalServerError", "Message": "x"}}
        return None

    container.dynamodb.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", second_transaction_fails, unique_id="crash"
    )
    return lambda: container.dynamodb.meta.events.unregister(
        "before-call.dynamodb.TransactWriteItems", unique_id="crash"
    )


@pytest.mark.parametrize("keep", [False, True])
def test_a_stuck_run_is_ended_as_error_and_counted(container: Any, clock: Any, keep: bool) -> None:
    sched = make(container, on_run_completed=OnRunCompleted.KEEP if keep else OnRunCompleted.DELETE)
    clock.set(NINE + timedelta(seconds=1))
    restore = crash_the_finish(container)
    try:
        with pytest.raises(SchedulingUnavailableError):
            deliver(container, sched.id, NINE)
    finally:
        restore()
    [stuck] = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=5)
    assert stuck.status.value == "running"
    assert container.schedule_store.get(ALICE, sched.id).running is not None
    assert len(container.thread_store.list_for_user(ALICE)) == 1

    # Until 4 heartbeat intervals (4 x 30 s: 3 missed beats plus one for the setup
    # before the first) after its claim without a heartbeat, the run is left alone…
    clock.set(NINE + timedelta(seconds=120))
    assert container.reconciler.run().stuck_runs_ended == 0
    # … after them — long before its deadline (600 s) + grace (120 s) — it is ended
    # through the finish transaction.
    clock.set(NINE + timedelta(seconds=122))
    report = container.reconciler.run()
    assert report.stuck_runs_ended == 1 and report.errors == []
    [ended] = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=5)
    assert ended.status.value == "error"
    assert "stopped reporting" in (ended.error_message or "")
    assert "reconciler" in (ended.error_message or "")
    after = container.schedule_store.get(ALICE, sched.id)
    assert (after.total_runs, after.failed_runs, after.running) == (1, 1, None)
    assert after.consecutive_failures == 1  # a crashed run counts as a failed run
    assert len(container.thread_store.list_for_user(ALICE)) == (1 if keep else 0)
    # Idempotent: nothing is left to end.
    assert container.reconciler.run().stuck_runs_ended == 0
    # The next fire is not blocked by the dead run.
    clock.set(NINE + timedelta(hours=1, seconds=1))
    assert deliver(container, sched.id, NINE + timedelta(hours=1))["status"] == "success"


def test_a_stuck_run_of_a_deleted_schedule_is_still_ended(container: Any, clock: Any) -> None:
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    restore = crash_the_finish(container)
    try:
        with pytest.raises(SchedulingUnavailableError):
            deliver(container, sched.id, NINE)
    finally:
        restore()
    container.schedule_service.delete(ALICE, sched.id)
    clock.set(NINE + timedelta(minutes=13))
    assert container.reconciler.run().stuck_runs_ended == 1
    [ended] = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=5)
    assert ended.status.value == "error"
    assert container.thread_store.list_for_user(ALICE) == []


def test_missing_wrong_state_and_orphan_entries_are_repaired(container: Any) -> None:
    service = container.schedule_service
    group = container.settings.SCHEDULE_GROUP
    lost = make(container)
    paused = make(container)
    split = make(container, cron_expression="0 9 1 * 1")
    # A crash after the record write: the entry was never created.
    container.scheduler.delete_schedule(Name=f"sched-{lost.id}", GroupName=group)
    # A crash after the pause's record write: the entry is still enabled.
    container.schedule_store.pause(
        ALICE, paused.id, at=container.clock.now(), reason=None, by="user"
    )
    # A crash between a delete's two writes: the record is gone, an entry is left.
    container.schedule_store.delete(ALICE, split.id)
    assert f"sched-{split.id}-2" in entries(container)

    report = container.reconciler.run()
    assert (report.entries_rewritten, report.orphan_entries_deleted) == (2, 2)
    now = entries(container)
    assert now[f"sched-{lost.id}"]["State"] == "ENABLED"
    restored = container.scheduler.get_schedule(Name=f"sched-{lost.id}", GroupName=group)
    assert restored["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert now[f"sched-{paused.id}"]["State"] == "DISABLED"
    assert not any(split.id in name for name in now)
    # A consistent system needs no repair.
    assert container.reconciler.run().as_dict() == {
        "stuck_runs_ended": 0,
        "entries_rewritten": 0,
        "orphan_entries_deleted": 0,
        "errors": [],
    }
    assert service.get(ALICE, paused.id).status.value == "PAUSED"


def test_a_sweep_reads_indexes_not_the_table(container: Any) -> None:
    for _ in range(3):
        make(container)
    calls = AwsCalls(container.dynamodb, container.scheduler)
    with calls.counting() as counted:
        container.reconciler.run()
    # 8 running-run shards + 8 schedule shards, one listing page, and one read-back per
    # entry for the whole-entry comparison; never a Scan.
    assert counted == {
        "dynamodb.Query": 16,
        "scheduler.ListSchedules": 1,
        "scheduler.GetSchedule": 3,
    }


def test_the_maintenance_lambda_runs_the_reconciler(container: Any, client: Any) -> None:
    make(container)
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    response = client.lambda_.invoke("reconciler", event)
    assert response.payload["errors"] == []


def _sweep(client: Any) -> dict[str, Any]:
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    event["time"] = "2026-01-15T09:15:00Z"  # a fire of the 5th minute: both parts
    payload: dict[str, Any] = client.lambda_.invoke("reconciler", event).payload
    return payload


def test_a_failing_part_of_the_sweep_is_reported_and_the_others_still_run(
    container: Any, client: Any, clock: Any
) -> None:
    """The Scheduler listing failing outright (every attempt) must not stop the stuck runs
    from being ended; the failure is in the report, whose ``errors`` become the
    ``ReconcilerErrors`` metric an alarm watches."""
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    restore = crash_the_finish(container)
    try:
        with pytest.raises(SchedulingUnavailableError):
            deliver(container, sched.id, NINE)
    finally:
        restore()
    clock.set(NINE + timedelta(minutes=13))
    with failing(container.scheduler, "ListSchedules", times=100):
        report = _sweep(client)
    assert report["stuck_runs_ended"] == 1
    [error] = report["errors"]
    assert error.startswith("drift:") and "ListSchedules" in error
    [ended] = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=5)
    assert ended.status.value == "error"


def test_a_sweep_whose_reads_all_fail_reports_each_part(container: Any, client: Any) -> None:
    make(container)
    with failing(container.dynamodb, "Query", times=1000):
        report = _sweep(client)
    assert [e.split(":")[0] for e in report["errors"]] == ["stuck runs", "drift"]
    assert report["stuck_runs_ended"] == report["entries_rewritten"] == 0


def test_the_rule_ends_stuck_runs_every_minute_and_repairs_drift_every_fifth(
    container: Any, client: Any, clock: Any
) -> None:
    """The maintenance rule's Lambda, through Chalice's test client: a fire at minute 7
    ends a stuck run but leaves the Scheduler alone; the fire at minute 10 repairs it."""
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    restore = crash_the_finish(container)
    try:
        with pytest.raises(SchedulingUnavailableError):
            deliver(container, sched.id, NINE)
    finally:
        restore()
    group = container.settings.SCHEDULE_GROUP
    container.scheduler.delete_schedule(Name=f"sched-{sched.id}", GroupName=group)
    clock.set(NINE + timedelta(minutes=7))
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )

    event["time"] = "2026-01-15T09:07:00Z"
    report = client.lambda_.invoke("reconciler", event).payload
    assert (report["stuck_runs_ended"], report["entries_rewritten"]) == (1, 0)
    assert f"sched-{sched.id}" not in entries(container)

    event["time"] = "2026-01-15T09:10:00Z"
    report = client.lambda_.invoke("reconciler", event).payload
    assert (report["stuck_runs_ended"], report["entries_rewritten"]) == (0, 1)
    assert f"sched-{sched.id}" in entries(container)


@pytest.mark.parametrize(
    ("time", "due"),
    [
        ("2026-01-15T09:00:00Z", True),
        ("2026-01-15T09:55:59Z", True),
        ("2026-01-15T09:01:00Z", False),
        ("2026-01-15T09:59:00Z", False),
        (None, True),  # unreadable: sweep everything
        ("yesterday", True),
    ],
)
def test_drift_is_due_every_fifth_minute(time: str | None, due: bool) -> None:
    assert drift_due(time) is due
