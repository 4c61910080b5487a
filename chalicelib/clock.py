"""A settable clock for tests, benchmarks and the local stack's time travel.

Production uses :class:`chalicelib.domain.models.SystemClock` (next to ``utcnow``, which
mints ids: one notion of "now" in the domain)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class FixedClock:
    """A clock that moves only when told to (thread-safe)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now
