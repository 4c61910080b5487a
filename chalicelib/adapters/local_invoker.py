"""Manual runs without Lambda: the trigger runs in a background thread of this process.

Used by ``make run`` (where the API, moto and the dispatcher share one process) and
by tests; it gives the same asynchronous contract as Lambda's ``Event`` invoke.
``wait()`` lets tests and benchmarks join the runs they started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Callable[[], int]], Any]


class ThreadRunInvoker:
    def __init__(
        self,
        handler: Handler,
        *,
        lambda_timeout_seconds: int = 900,
        on_done: Callable[[Any], None] | None = None,
    ) -> None:
        self._handler = handler
        self._timeout = lambda_timeout_seconds
        self._on_done = on_done
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._run, args=(event,), daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _run(self, event: dict[str, Any]) -> None:
        deadline = time.monotonic() + self._timeout
        try:
            result = self._handler(event, lambda: int((deadline - time.monotonic()) * 1000))
        except Exception:
            log.exception("manual run failed")
            return
        if self._on_done is not None:
            self._on_done(result)

    def wait(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))


class InlineRunInvoker:
    """Runs the trigger synchronously inside ``invoke`` (deterministic tests)."""

    def __init__(self, handler: Handler, *, lambda_timeout_seconds: int = 900) -> None:
        self._handler = handler
        self._timeout = lambda_timeout_seconds
        self.results: list[Any] = []

    def invoke(self, event: dict[str, Any]) -> None:
        deadline = time.monotonic() + self._timeout
        self.results.append(self._handler(event, lambda: int((deadline - time.monotonic()) * 1000)))
