"""One AWS request at a time against moto.

moto's backends are not thread-safe: its ``TransactWriteItems`` deep-copies a table
for rollback while other threads write it, and two concurrent transactions can
fail with ``dictionary changed size during iteration`` or lose each other's writes.
DynamoDB executes each request atomically, so serialising *requests* (and nothing
larger) reproduces what AWS guarantees: concurrent operations still interleave
between their requests. The local stack applies this to its clients; tests use it
to race operations against in-process moto.
"""

from __future__ import annotations

import threading
from typing import Any

_ACQUIRED = "_agentcron_serialised"


def serialize_requests(*clients: Any, lock: threading.Lock | None = None) -> threading.Lock:
    """Make every request of ``clients`` exclusive (a shared lock); returns the lock."""
    guard = lock or threading.Lock()

    def acquire(context: dict[str, Any], **_: Any) -> None:
        guard.acquire()
        context[_ACQUIRED] = guard

    def release(context: dict[str, Any], **_: Any) -> None:
        held = context.pop(_ACQUIRED, None)
        if held is not None:
            held.release()

    for client in clients:
        events = client.meta.events
        events.register_first("before-call.*.*", acquire, unique_id="serialise-acquire")
        events.register_last("after-call.*.*", release, unique_id="serialise-release")
        events.register_last("after-call-error.*.*", release, unique_id="serialise-error")
    return guard


def unserialize_requests(*clients: Any) -> None:
    for client in clients:
        events = client.meta.events
        events.unregister("before-call.*.*", unique_id="serialise-acquire")
        events.unregister("after-call.*.*", unique_id="serialise-release")
        events.unregister("after-call-error.*.*", unique_id="serialise-error")
