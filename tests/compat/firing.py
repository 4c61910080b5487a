"""Fire a cron as EventBridge Scheduler would: its registered Input, substituted, to the trigger.

moto never fires schedules, so a test reads the entry agentcron registered
(``GetSchedule``), substitutes the context attributes EventBridge fills in on every
delivery, sets the clock just after the fire time (the trigger records deliveries
later than ``MAX_FIRE_LATENESS_SECONDS`` as skipped) and invokes the trigger
handler with a Lambda-sized time budget.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

DELIVERY_DELAY = timedelta(seconds=5)


def registered_input(container: Any, cron_id: str) -> str:
    entry = container.scheduler.get_schedule(
        Name=f"sched-{cron_id}", GroupName=container.settings.SCHEDULE_GROUP
    )
    return str(entry["Target"]["Input"])


def has_entry(container: Any, cron_id: str) -> bool:
    """Whether the cron's (first) EventBridge Scheduler entry exists."""
    names = {
        s["Name"]
        for s in container.scheduler.list_schedules(
            GroupName=container.settings.SCHEDULE_GROUP, NamePrefix=f"sched-{cron_id}"
        )["Schedules"]
    }
    return f"sched-{cron_id}" in names


def fire(container: Any, clock: Any, cron_id: str, when: datetime) -> dict[str, Any]:
    """Deliver the fire of ``cron_id`` at ``when`` (a time its cron produces)."""
    raw = (
        registered_input(container, cron_id)
        .replace("<aws.scheduler.scheduled-time>", when.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .replace("<aws.scheduler.attempt-number>", "1")
        .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
    )
    clock.set(when + DELIVERY_DELAY)
    result: dict[str, Any] = container.trigger_handler(json.loads(raw), lambda: 900_000)
    return result
