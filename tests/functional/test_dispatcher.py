"""The local dispatcher reads the registered Scheduler entries and fires like EventBridge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.models import Principal, user_message_input
from chalicelib.local.dispatcher import Fire, LocalDispatcher
from chalicelib.services.schedules import ScheduleChanges, ScheduleDraft

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
T0 = datetime(2026, 1, 15, 9, 0, 30, tzinfo=UTC)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"SCHEDULE_MIN_INTERVAL_MINS": 1}


class Harness:
    """A dispatcher on a hand-driven clock, recording the events it delivers."""

    def __init__(self, container: Any, clock: Any, *, real_handler: bool = False) -> None:
        self.container = container
        self.clock = clock
        self.events: list[dict[str, Any]] = []
        self.fires: list[Fire] = []

        def record(event: dict[str, Any], remaining: Any) -> Any:
            self.events.append(event)
            return container.trigger_handler(event, remaining) if real_handler else {"ok": True}

        self.dispatcher = LocalDispatcher(
            container.scheduler,
            container.settings.SCHEDULE_GROUP,
            record,
            now=clock.now,
        )

    def at(self, when: datetime) -> list[dict[str, Any]]:
        """Move the clock to ``when``, sync with the Scheduler and fire what is due."""
        self.clock.set(when)
        self.dispatcher.refresh()
        fired = self.dispatcher.fire_due()
        for fire in fired:
            assert fire.done.wait(10)
        self.fires += fired
        return [self.events[-(len(fired) - i)] for i in range(len(fired))] if fired else []

    def close(self) -> None:
        self.dispatcher.stop()


@pytest.fixture
def harness(container: Any, clock: Any) -> Any:
    h = Harness(container, clock)
    yield h
    h.close()


def create(container: Any, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "name": "n",
        "cron_expression": "*/5 * * * *",
        "timezone": "UTC",
        "input": user_message_input("q"),
    }
    values.update(changes)
    return container.schedule_service.create(ALICE, ScheduleDraft(**values))


def test_fires_at_the_fire_time_with_the_registered_input(harness: Harness, container: Any) -> None:
    sched = create(container)
    assert harness.at(T0) == []
    assert harness.at(T0 + timedelta(minutes=4, seconds=29)) == []  # 09:04:59
    [event] = harness.at(T0 + timedelta(minutes=4, seconds=30))  # 09:05:00
    assert event["schedule_id"] == sched.id
    assert event["scheduled_time"] == "2026-01-15T09:05:00Z"
    assert (event["tenant_id"], event["user_id"], event["attempt"]) == ("tenant-a", "alice", "1")
    assert event["execution_id"] and "<aws" not in json.dumps(event)
    assert harness.fires[0].lateness_seconds == 0


def test_pause_resume_update_and_delete_take_effect_at_once(
    harness: Harness, container: Any
) -> None:
    sched = create(container)
    service = container.schedule_service
    harness.at(T0)
    service.pause(ALICE, sched.id)
    assert harness.at(datetime(2026, 1, 15, 9, 5, tzinfo=UTC)) == []
    service.resume(ALICE, sched.id)
    # Fires missed while disabled are not replayed; the next one is.
    assert harness.at(datetime(2026, 1, 15, 9, 7, tzinfo=UTC)) == []
    assert len(harness.at(datetime(2026, 1, 15, 9, 10, tzinfo=UTC))) == 1
    service.update(ALICE, sched.id, ScheduleChanges(cron_expression="0 * * * *"))
    assert harness.at(datetime(2026, 1, 15, 9, 15, tzinfo=UTC)) == []
    [event] = harness.at(datetime(2026, 1, 15, 10, 0, tzinfo=UTC))
    assert event["scheduled_time"] == "2026-01-15T10:00:00Z"
    service.delete(ALICE, sched.id)
    assert harness.at(datetime(2026, 1, 15, 11, 0, tzinfo=UTC)) == []


def test_timezones_and_end_dates_are_honoured(harness: Harness, container: Any) -> None:
    create(container, cron_expression="0 9 * * *", timezone="Asia/Shanghai")
    create(
        container,
        cron_expression="0 * * * *",
        end_time=datetime(2026, 1, 15, 10, 30, tzinfo=UTC),
    )
    harness.at(T0)
    fired = [e["scheduled_time"] for e in harness.at(datetime(2026, 1, 15, 10, 0, tzinfo=UTC))]
    assert fired == ["2026-01-15T10:00:00Z"]
    assert harness.at(datetime(2026, 1, 15, 11, 0, tzinfo=UTC)) == []  # past its end date
    # 09:00 in Shanghai is 01:00 UTC.
    fired = [e["scheduled_time"] for e in harness.at(datetime(2026, 1, 16, 1, 0, tzinfo=UTC))]
    assert fired == ["2026-01-16T01:00:00Z"]


def test_both_halves_of_a_split_schedule_are_delivered(harness: Harness, container: Any) -> None:
    create(container, cron_expression="0 9 1 * 1")
    harness.at(datetime(2026, 5, 31, 12, tzinfo=UTC))
    events = harness.at(datetime(2026, 6, 1, 9, tzinfo=UTC))  # a Monday and the 1st
    assert [e["scheduled_time"] for e in events] == ["2026-06-01T09:00:00Z"] * 2


def test_fires_run_the_trigger_and_record_history(container: Any, clock: Any) -> None:
    h = Harness(container, clock, real_handler=True)
    try:
        sched = create(container)
        h.at(T0)
        h.at(datetime(2026, 1, 15, 9, 5, tzinfo=UTC))
        h.at(datetime(2026, 1, 15, 9, 10, tzinfo=UTC))
        runs = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=10)
        assert [(r.scheduled_time.minute, r.status.value) for r in runs] == [
            (10, "success"),
            (5, "success"),
        ]
        assert [f.result["status"] for f in h.fires] == ["success", "success"]
    finally:
        h.close()
