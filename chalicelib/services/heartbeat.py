"""A running run's heartbeat: how a dead trigger is noticed early, and what it spent.

**The problem.** A trigger Lambda killed mid-run (out of memory, a runtime crash, the
Lambda's own time limit) never writes its finish transaction. Without a sign of life
the reconciler can only assume the trigger is dead once nothing alive could still be
running the agent — deadline + ``RUNNING_GRACE_SECONDS`` — and, knowing nothing of the
model calls made, it would record $0.

**The heartbeat.** From the agent's start until the outcome is recorded (a slow finish
transaction included), a daemon thread of the executor writes, every
``HEARTBEAT_SECONDS``, one conditional ``UpdateItem`` on the run item
(:meth:`DynamoDBRunStore.heartbeat`): the time, the meter's *exposure* — settled spend
plus every in-flight call at its reservation (:meth:`BudgetMeter.exposure`) — with the
settled tokens, and a new ``stuck_after`` = now + ``MISSED_HEARTBEATS`` × interval,
never later than the run's deadline + grace. The claim writes the same short
``stuck_after`` (claim + ``MISSED_HEARTBEATS`` intervals), so a trigger that dies before
its first heartbeat is noticed as early. ``stuck_after`` is the sort key of the sparse
index of running runs the reconciler already Queries (``gsi2``), so the reconciler finds
a dead trigger ``MISSED_HEARTBEATS`` intervals after its last sign of life with the
same few Queries as before — no new index, no Scan.

Why this shape:

* **Nothing per model call.** The meter is read (under its lock, in memory) by the
  heartbeat thread; the model-call path and the budget meter's ``guard`` seam (monthly
  caps) are untouched, so a run makes no AWS call per model call for its own sake.
* **Nothing for short runs.** The first write is one interval after the agent starts;
  a run shorter than that makes exactly the calls it made before (3, or 4 for a
  thread-bound schedule). A long run adds one small write per interval.
* **The booked cost is what the trigger could prove.** The reconciler books the last
  exposure the trigger reported. A call started after the last heartbeat is not in it
  (at most one interval of calls), which is the price of not writing per call.
* **Never off the deadline.** The write runs in its own thread, so a slow DynamoDB
  answer delays the next heartbeat, never the run's deadline or its finish. Beats
  continue while the finish transaction is written, so a finish slowed by retries is
  not mistaken for a dead trigger. Two consecutive writes may take up to two
  intervals together before a live run looks dead, hence the 10 s floor on
  ``HEARTBEAT_SECONDS`` (the botocore timeouts and retries of one write fit in it).
* **Exactly one terminal record.** Heartbeats are written only while the run is
  ``running``; the finish (trigger or reconciler) only over a ``running`` record. A
  heartbeat that finds the run already ended — the reconciler judged the trigger dead,
  e.g. after DynamoDB refused several heartbeats in a row — cancels the run's context,
  so the agent can start no further model call whose cost nothing would record.

``MISSED_HEARTBEATS`` is 3: one slow or failed write (botocore retries included, well
under an interval) is tolerated without the run being taken for dead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.agents.base import BudgetMeter
from chalicelib.domain.models import Run
from chalicelib.domain.ports import Clock

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_runs import DynamoDBRunStore

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3
"""Heartbeat intervals without a sign of life after which a running run is stuck."""
STOP_WAIT_SECONDS = 1.0
"""How long the run waits for a heartbeat write in flight when the agent is done."""


def stuck_after(now: datetime, interval: float, latest: datetime) -> datetime:
    """The instant after which the run is taken for dead if no heartbeat came since ``now``.

    ``latest`` (deadline + grace) bounds it; an interval of 0 (heartbeats off) is that bound.
    """
    if interval <= 0:
        return latest
    return min(now + timedelta(seconds=MISSED_HEARTBEATS * interval), latest)


class Heartbeat:
    """Writes ``run``'s heartbeat every ``interval`` seconds until :meth:`stop`."""

    def __init__(
        self,
        *,
        runs: DynamoDBRunStore,
        run: Run,
        meter: BudgetMeter,
        clock: Clock,
        interval: float,
        latest: datetime,
    ) -> None:
        self._runs = runs
        self._run = run
        self._meter = meter
        self._clock = clock
        self._interval = interval
        self._latest = latest
        self._on_ended: Callable[[], None] = lambda: None
        self._stop = threading.Event()
        self._finishing = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0
        """Heartbeats written."""

    def start(self, *, on_ended: Callable[[], None]) -> None:
        """Beat until :meth:`stop`; ``on_ended`` runs if a beat finds the run already ended
        while the agent may still run (the executor passes the run context's cancel)."""
        self._on_ended = on_ended
        if self._interval <= 0:
            return
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{self._run.run_id}", daemon=True
        )
        self._thread.start()

    def finishing(self) -> None:
        """The trigger is writing the outcome: a beat that now finds the run ended lost to
        that finish, and says nothing (beats go on until :meth:`stop`, so a slow finish
        still shows a live trigger)."""
        self._finishing.set()

    def stop(self) -> None:
        """No heartbeat starts after this returns (one in flight is waited for, briefly)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_SECONDS)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._beat():
                return

    def _beat(self) -> bool:
        """One heartbeat; False when the run is no longer running (stop beating)."""
        now = self._clock.now()
        try:
            alive = self._runs.heartbeat(
                self._run,
                at=now,
                spent=self._meter.exposure(),
                stuck_after=stuck_after(now, self._interval, self._latest),
            )
        except Exception:
            # A missed heartbeat is tolerated (MISSED_HEARTBEATS); the next one may land.
            log.exception("run %s: heartbeat not recorded", self._run.run_id)
            return True
        if not alive:
            if self._finishing.is_set():
                return False  # the run's own finish landed first
            log.warning(
                "run %s was ended while its agent still ran (its trigger was taken for dead); "
                "no further model call is started",
                self._run.run_id,
            )
            self._on_ended()
            return False
        self.beats += 1
        return True
