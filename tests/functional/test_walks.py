"""Short walks: the files a reader must open to follow a request, counted by running it.

The walk of an operation is the set of agentcron source files whose functions run while
it is served, from the entry point (the Chalice view, the trigger Lambda's handler) to the
AWS calls — measured with a profiler hook, after a warm-up request so that import-time
code does not count, with the production clock. Test code is not counted. Both walks
must stay within 13 files (they were 15 and 16 before issue 10 counted the same way; 12
until issue 11 put every request and run inside ``chalicelib/observability.py``'s unit of
work — one file that frames the walk, read once).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SEED_BODY, scheduled_event

ROOT = Path(__file__).resolve().parents[2]
MAX_FILES = 13


def walk(action: Callable[[], Any]) -> dict[str, set[str]]:
    """Project file → the functions of it that ran during ``action``."""
    seen: dict[str, set[str]] = {}

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call":
            name = frame.f_code.co_filename
            if name.startswith(str(ROOT)) and "/tests/" not in name and "/.venv" not in name:
                seen.setdefault(str(Path(name).relative_to(ROOT)), set()).add(frame.f_code.co_name)

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return seen


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"SCHEDULE_MIN_INTERVAL_MINS": 1}  # a cron that fires this minute


@pytest.fixture
def production_clock(aws: None, settings: Any) -> Iterator[Any]:
    """A container with the system clock (the walk must be production's)."""
    from chalicelib import dependencies
    from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table
    from chalicelib.dependencies import Container

    container = Container(settings)
    create_table(container.dynamodb, settings.TABLE_NAME)
    create_schedule_group(container.scheduler, settings.SCHEDULE_GROUP)
    dependencies.override(container)
    yield container
    dependencies.override(None)


class LambdaContext:
    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def test_create_and_fire_each_visit_at_most_thirteen_files(production_clock: Any) -> None:
    from chalice.test import Client

    from app import app, run_trigger

    container = production_clock
    key, _ = container.api_keys.mint("tenant-w", "walker", key="ac_test_key_walker_001")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = json.dumps({**SEED_BODY, "cron_expression": "* * * * *", "timezone": "UTC"})
    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:

        def create() -> str:
            response = client.http.post("/api/v1/schedules", headers=headers, body=body)
            assert response.status_code == 201, response.body
            return str(json.loads(response.body)["schedule_id"])

        # Given a warmed-up process (imports done, key cached)
        warm, measured = create(), ""

        # When one more schedule is created
        def create_measured() -> None:
            nonlocal measured
            measured = create()

        created = walk(create_measured)

        # And each schedule fires once (the first fire warms the trigger's imports)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        events = [scheduled_event(container, sid, minute) for sid in (warm, measured)]
        assert run_trigger(events[0], LambdaContext())["status"] == "success"
        outcome: dict[str, Any] = {}
        fired = walk(lambda: outcome.update(run_trigger(events[1], LambdaContext())))

    # Then both walks are short
    assert outcome["status"] == "success", outcome
    assert len(created) <= MAX_FILES, sorted(created)
    assert len(fired) <= MAX_FILES, sorted(fired)
    assert "chalicelib/api/shannon/routes.py" in created
    assert "app.py" in fired and "chalicelib/services/runs.py" in fired
    assert "chalicelib/observability.py" in created and "chalicelib/observability.py" in fired
