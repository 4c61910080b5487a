"""A real local stack (moto server + Chalice's local HTTP server + dispatcher) in this process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    from chalicelib.local.stack import start

    running = start(port=0, moto_port=0, quiet=True, environ={"SCHEDULE_MIN_INTERVAL_MINS": "1"})
    yield running
    running.stop()
