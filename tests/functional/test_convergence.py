"""The Scheduler converges to DynamoDB under concurrent writers (randomized, seeded).

Each trial creates one schedule and lets a few writers race on it — updates of the
expression, timezone and end date, pauses, resumes, deletes — with a small random
delay before every AWS request, so the requests of different operations interleave
in many orders. Requests themselves are serialised (moto's backends are not
thread-safe; DynamoDB and the Scheduler execute each request atomically, which is
what the serialisation reproduces). After the writers return, *without* a reconciler
sweep, every Scheduler entry must equal what its record says — expression, timezone,
state, end date, target input — and no entry may exist without a record.

Trial count: 80 trials of 3-4 writers, 7-13 s on the shared 2-core development VM
(slow but necessary: drift needs many interleavings to show). The same harness against
the write paths before convergence was built in, five runs: 0-6 of 80 trials ended
with a drifted entry (16 of 400) and 1-3 operations per run failed with a 503 (an
upsert racing a create); after: 0 of 400, no 503.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.errors import (
    ConflictError,
    ScheduleNotFoundError,
    ScheduleStateConflictError,
)
from chalicelib.domain.models import Principal, user_message_input
from chalicelib.services.schedules import ScheduleChanges, ScheduleDraft, scheduler_entries

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
SEED = 20260115
TRIALS = 80
EXPRESSIONS = ["0 9 * * *", "30 10 * * 1-5", "0 9 1 * 1", "15 */2 * * *", "0 0 1,15 * 5"]
TIMEZONES = ["UTC", "Asia/Shanghai", "America/New_York"]
EXPECTED_RACE_OUTCOMES = (ConflictError, ScheduleNotFoundError, ScheduleStateConflictError)


def entry_view(entry: dict[str, Any]) -> dict[str, Any]:
    end = entry.get("EndDate")
    return {
        "expression": entry["ScheduleExpression"],
        "timezone": entry.get("ScheduleExpressionTimezone"),
        "enabled": entry["State"] == "ENABLED",
        "end": None if end is None else int(end.timestamp()),
        "input": json.loads(entry["Target"]["Input"]),
    }


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"SCHEDULE_MAX_PER_USER": 1000}  # deleted schedules still count until a recount


def actual_entries(container: Any, schedule_id: str = "") -> dict[str, dict[str, Any]]:
    """Every entry (of one schedule, given its id), read back whole."""
    group = container.settings.SCHEDULE_GROUP
    page = container.scheduler.list_schedules(
        GroupName=group, NamePrefix=f"sched-{schedule_id}", MaxResults=100
    )
    return {
        s["Name"]: entry_view(container.scheduler.get_schedule(Name=s["Name"], GroupName=group))
        for s in page["Schedules"]
    }


def expected_entries(container: Any, schedule_id: str = "") -> dict[str, dict[str, Any]]:
    """What the records (of one schedule, given its id) say the entries must be."""
    now = container.clock.now()
    if schedule_id:
        found = container.schedule_store.find("tenant-a", "alice", schedule_id)
        records = [] if found is None else [found]
    else:
        records = container.schedule_store.list_for_user(ALICE)
    return {
        e.name: {
            "expression": e.expression,
            "timezone": e.timezone,
            "enabled": e.enabled,
            "end": None if e.end_date is None else int(e.end_date.timestamp()),
            "input": json.loads(e.input),
        }
        for s in records
        for e in scheduler_entries(s, now)
    }


def random_operation(rng: random.Random, now: datetime) -> tuple[str, Any]:
    kind = rng.choices(["update", "end", "pause", "resume", "delete"], [5, 1, 2, 2, 1])[0]
    if kind == "update":
        return kind, ScheduleChanges(
            cron_expression=rng.choice(EXPRESSIONS), timezone=rng.choice(TIMEZONES)
        )
    if kind == "end":
        end = None if rng.random() < 0.5 else now + timedelta(days=rng.randint(1, 90))
        return kind, ScheduleChanges(end_time=end)
    return kind, None


def apply(container: Any, schedule_id: str, operation: tuple[str, Any]) -> str | None:
    """Perform one operation; returns the name of an unexpected error (a 5xx), if any."""
    service = container.schedule_service
    kind, changes = operation
    try:
        if kind in ("update", "end"):
            service.update(ALICE, schedule_id, changes)
        elif kind == "pause":
            service.pause(ALICE, schedule_id)
        elif kind == "resume":
            service.resume(ALICE, schedule_id)
        else:
            service.delete(ALICE, schedule_id)
    except EXPECTED_RACE_OUTCOMES:
        pass  # a legitimate answer to a racing client (404 / 409)
    except Exception as exc:
        return f"{kind}: {type(exc).__name__}"
    return None


def jitter(*clients: Any, rng: random.Random, lock: threading.Lock) -> None:
    """A random pause before each request (outside the per-request serialisation)."""

    def pause(**_: Any) -> None:
        with lock:
            delay = rng.random() * 0.002
        time.sleep(delay)

    for c in clients:
        c.meta.events.register("before-parameter-build.*.*", pause, unique_id="jitter")


@pytest.mark.slow
def test_concurrent_writers_leave_every_entry_equal_to_its_record(container: Any) -> None:
    from chalicelib.local.serialize import serialize_requests, unserialize_requests

    rng = random.Random(SEED)
    clients = (container.dynamodb, container.scheduler)
    serialize_requests(*clients)
    jitter(*clients, rng=random.Random(SEED + 1), lock=threading.Lock())
    drifted: list[int] = []
    failures: list[str] = []
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for trial in range(TRIALS):
                sched = container.schedule_service.create(
                    ALICE,
                    ScheduleDraft(
                        name=f"t{trial}",
                        cron_expression=rng.choice(EXPRESSIONS),
                        timezone=rng.choice(TIMEZONES),
                        input=user_message_input("q"),
                    ),
                )
                now = container.clock.now()
                writers = [
                    [random_operation(rng, now) for _ in range(rng.randint(1, 2))]
                    for _ in range(rng.randint(3, 4))
                ]
                gate = threading.Barrier(len(writers))

                def write(
                    ops: list[tuple[str, Any]], sid: str = sched.id, gate: Any = gate
                ) -> list[str]:
                    gate.wait()
                    return [e for op in ops if (e := apply(container, sid, op))]

                for future in [pool.submit(write, ops) for ops in writers]:
                    failures.extend(future.result())
                actual = actual_entries(container, sched.id)
                if actual != expected_entries(container, sched.id):
                    drifted.append(trial)
                # Keep the table small (moto copies it on every transaction).
                if container.schedule_store.find("tenant-a", "alice", sched.id) is not None:
                    container.schedule_store.delete(ALICE, sched.id)
                for name in actual:
                    container.scheduler_gateway.delete(name)
    finally:
        for c in clients:
            c.meta.events.unregister("before-parameter-build.*.*", unique_id="jitter")
        unserialize_requests(*clients)
    elapsed = time.monotonic() - started
    summary = f"{len(drifted)} of {TRIALS} trials drifted, {len(failures)} 5xx ({elapsed:.1f} s)"
    print(summary)
    assert (drifted, failures) == ([], []), summary
    # Nothing is left for the reconciler to repair either.
    report = container.reconciler.run()
    assert (report.entries_rewritten, report.orphan_entries_deleted, report.errors) == (0, 0, [])


def test_the_reconciler_compares_the_whole_entry(container: Any) -> None:
    """Drift the reconciler used to miss: same name and state, different definition."""
    service = container.schedule_service
    end = datetime(2026, 6, 1, tzinfo=UTC)
    sched = service.create(
        ALICE,
        ScheduleDraft(
            name="d", cron_expression="0 9 * * *", timezone="Asia/Shanghai", end_time=end
        ),
    )
    gateway = container.scheduler_gateway
    [entry] = service.entries(sched)
    for field, value in (
        ("expression", "cron(0 10 * * ? *)"),
        ("timezone", "UTC"),
        ("end_date", None),
        ("input", entry.input.replace(sched.id, "00000000-0000-0000-0000-000000000000")),
    ):
        # An out-of-order write left an entry that exists, is enabled, and is wrong.
        from dataclasses import replace

        gateway.update(replace(entry, **{field: value}))
        report = container.reconciler.run()
        assert (report.entries_rewritten, report.errors) == (1, []), field
        assert actual_entries(container) == expected_entries(container), field
    assert container.reconciler.run().entries_rewritten == 0


def test_a_system_pause_racing_a_user_resume_leaves_the_entry_enabled(
    container: Any, clock: Any
) -> None:
    """The trigger's pause commits, the user resumes, then the trigger disables the entry:
    the entry must follow the record (ACTIVE), not the trigger's older intent."""
    from decimal import Decimal

    from tests.helpers import deliver

    service = container.schedule_service
    sched = service.create(
        ALICE,
        ScheduleDraft(
            name="b",
            cron_expression="0 9 * * *",
            input=user_message_input("q"),
            max_budget_per_run_usd=Decimal("0.0015"),
            context={"demo_model_calls": 5},
        ),
    )
    events = container.dynamodb.meta.events
    resumed: list[bool] = []

    def resume_after_the_finish(**_: Any) -> None:
        if container.schedule_store.get(ALICE, sched.id).status.value == "PAUSED" and not resumed:
            resumed.append(True)
            service.resume(ALICE, sched.id)

    events.register("after-call.dynamodb.TransactWriteItems", resume_after_the_finish, "race")
    try:
        clock.set(datetime(2026, 1, 15, 9, 0, 1, tzinfo=UTC))
        assert deliver(container, sched.id, datetime(2026, 1, 15, 9, tzinfo=UTC))["status"] == (
            "budget_exceeded"
        )
    finally:
        events.unregister("after-call.dynamodb.TransactWriteItems", unique_id="race")
    assert resumed and container.schedule_store.get(ALICE, sched.id).status.value == "ACTIVE"
    assert actual_entries(container) == expected_entries(container)
    assert actual_entries(container)[f"sched-{sched.id}"]["enabled"] is True


def test_an_orphan_claimed_again_during_the_sweep_is_restored(container: Any) -> None:
    """The sweep read the records, then an update gave the record its second entry back
    just before the sweep deleted that entry as an orphan."""
    service = container.schedule_service
    sched = service.create(
        ALICE, ScheduleDraft(name="o", cron_expression="0 9 * * *", input=user_message_input("q"))
    )
    [entry] = service.entries(sched)
    from dataclasses import replace

    container.scheduler_gateway.update(
        replace(entry, name=f"sched-{sched.id}-2", expression="cron(0 9 ? * MON *)")
    )
    events = container.scheduler.meta.events
    raced: list[bool] = []

    def update_first(**_: Any) -> None:
        if not raced:
            raced.append(True)
            service.update(ALICE, sched.id, ScheduleChanges(cron_expression="0 9 1 * 1"))

    events.register("before-call.scheduler.DeleteSchedule", update_first, "race")
    try:
        report = container.reconciler.run()
    finally:
        events.unregister("before-call.scheduler.DeleteSchedule", unique_id="race")
    assert raced and report.orphan_entries_deleted == 1
    assert set(actual_entries(container)) == {f"sched-{sched.id}", f"sched-{sched.id}-2"}
    assert actual_entries(container) == expected_entries(container)
