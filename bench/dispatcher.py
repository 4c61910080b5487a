"""Dispatcher lateness: ≥ 100 real fires at a real minute boundary, on the local stack.

The stack runs in this process exactly as ``make run`` starts it (moto server, the
Chalice HTTP server, the dispatcher). ``FIRES`` schedules of ``* * * * *`` are
created through the HTTP API; at the next minute boundary (two if the first is too
close) every one of them is due at once — the worst case for a dispatcher. Measured
per fire: delivery lateness (dispatcher hands the event to the trigger) and start
lateness (the run's ``started_at``), both relative to the scheduled time.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

from bench.stats import median, percentile

FIRES = 120


def _post(url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def run() -> dict[str, float]:
    from chalicelib.domain.models import Principal
    from chalicelib.local.stack import LOCAL_TENANT, LOCAL_USER, start

    fires: list[Any] = []
    lock = threading.Lock()

    def on_fire(fire: Any) -> None:
        with lock:
            fires.append(fire)

    stack = start(
        port=0,
        quiet=True,
        on_fire=on_fire,
        environ={"SCHEDULE_MIN_INTERVAL_MINS": "1", "SCHEDULE_MAX_PER_USER": str(FIRES + 10)},
    )
    try:
        for i in range(FIRES):
            _post(
                f"{stack.api_url}/api/v1/schedules",
                stack.api_key,
                {"name": f"bench {i}", "cron_expression": "* * * * *", "task_query": "tick"},
            )
        now = datetime.now(UTC)
        wait = 60 - now.second - now.microsecond / 1e6
        if wait < 5:  # let the dispatcher see every entry before the boundary
            wait += 60
        print(f"{FIRES} schedules created; waiting {wait:.0f} s for the minute boundary…")
        time.sleep(wait + 3)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                done = [f for f in fires if f.done.is_set()]
            if len(done) >= FIRES:
                break
            time.sleep(0.2)
        with lock:
            batch = [f for f in fires if f.done.is_set()][:FIRES]
        delivery = [f.lateness_seconds for f in batch]
        principal = Principal(tenant_id=LOCAL_TENANT, user_id=LOCAL_USER)
        starts = []
        for sched in stack.container.schedule_service.list_for_user(principal):
            runs = stack.container.run_store.list_for_schedule(
                principal, sched.id, offset=0, limit=5
            )
            starts += [
                (r.started_at - r.scheduled_time).total_seconds()
                for r in runs
                if r.started_at is not None
            ]
        statuses = {str((f.result or {}).get("status")) for f in batch}
    finally:
        stack.stop()
    print(f"fires observed                {len(batch)}  (statuses: {', '.join(sorted(statuses))})")
    print(
        f"delivery lateness             p50 {median(delivery) * 1000:7.1f} ms   "
        f"p99 {percentile(delivery, 99) * 1000:7.1f} ms   max {max(delivery) * 1000:7.1f} ms"
    )
    print(
        f"run start lateness            p50 {median(starts) * 1000:7.1f} ms   "
        f"p99 {percentile(starts, 99) * 1000:7.1f} ms   max {max(starts) * 1000:7.1f} ms"
    )
    return {
        "fires": float(len(batch)),
        "delivery_p50_ms": median(delivery) * 1000,
        "delivery_p99_ms": percentile(delivery, 99) * 1000,
        "start_p99_ms": percentile(starts, 99) * 1000,
    }
