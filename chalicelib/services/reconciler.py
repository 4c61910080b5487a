"""The reconciler: repairs what a crash between two writes can leave behind.

Every write path already keeps DynamoDB and EventBridge Scheduler consistent, undoing
its first write when the second fails (see :mod:`chalicelib.services.schedules`). What
it cannot cover is a process that dies between the two writes, a compensation that
fails too, or a trigger Lambda killed mid-run (out of memory, a runtime crash). A
periodic sweep repairs those from DynamoDB, the source of truth:

1. **Stuck runs.** A run still ``running`` after its ``stuck_after`` instant (its
   deadline plus ``RUNNING_GRACE_SECONDS``) lost its trigger. It is finished as
   ``timeout`` through the same finish transaction as any run — so the counters still
   equal the history — its stateless thread is deleted (or kept, as configured) and
   the overlap marker is released. Running runs live in a sparse, sharded index
   (``gsi2``), so finding them costs a few Queries whatever the table's size.
2. **Drift.** The Scheduler group is listed first (names and states), then every
   schedule record (``gsi1`` shards). A record whose entries are missing or in the
   wrong state gets its complete definition re-written; an entry that no record
   claims is deleted. Listing the entries *before* the records means a schedule
   created during the sweep is never mistaken for an orphan (its record is written
   before its entries). Only presence and state are compared: ``ListSchedules`` does
   not return expressions, and an expression can only drift through the same crash
   window, which an update of the schedule repairs.

Every repair is idempotent and races safely with the API's own writes (a create or
delete that meets the reconciler's write treats "already there" / "already gone" as
success).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.domain.enums import OnRunCompleted, RunStatus
from chalicelib.domain.models import Run
from chalicelib.domain.ports import Clock, FinishRequest

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_runs import DynamoDBRunStore
    from chalicelib.adapters.dynamodb_schedules import DynamoDBScheduleStore
    from chalicelib.adapters.eventbridge_scheduler import EventBridgeSchedulerGateway
from chalicelib.services.schedules import scheduler_entries

log = logging.getLogger(__name__)

STUCK_MESSAGE = (
    "the run's trigger stopped without recording an outcome (crashed or was killed); "
    "ended by the reconciler after its deadline"
)
ENTRY_PREFIX = "sched-"


@dataclass
class ReconcileReport:
    stuck_runs_ended: int = 0
    entries_rewritten: int = 0
    orphan_entries_deleted: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Reconciler:
    def __init__(
        self,
        *,
        schedules: DynamoDBScheduleStore,
        runs: DynamoDBRunStore,
        scheduler: EventBridgeSchedulerGateway,
        clock: Clock,
        batch: int = 100,
    ) -> None:
        self._schedules = schedules
        self._runs = runs
        self._scheduler = scheduler
        self._clock = clock
        self._batch = batch

    def run(self) -> ReconcileReport:
        report = ReconcileReport()
        self.end_stuck_runs(report)
        self.repair_drift(report)
        if report.stuck_runs_ended or report.entries_rewritten or report.orphan_entries_deleted:
            log.warning("reconciler repaired drift: %s", report.as_dict())
        return report

    # --- stuck runs ---------------------------------------------------------------------------

    def end_stuck_runs(self, report: ReconcileReport) -> None:
        now = self._clock.now()
        for run in self._runs.stuck(now, limit=self._batch):
            try:
                self._end(run, now)
                report.stuck_runs_ended += 1
            except Exception as exc:  # one bad record must not stop the sweep
                log.exception("could not end stuck run %s", run.run_id)
                report.errors.append(f"run {run.run_id}: {exc}")

    def _end(self, run: Run, now: datetime) -> None:
        schedule = self._schedules.find(run.tenant_id, run.user_id, run.schedule_id)
        finished = run.model_copy(
            update={
                "status": RunStatus.TIMEOUT,
                "error_message": STUCK_MESSAGE,
                "completed_at": now,
                "updated_at": now,
            }
        )
        # The run's own (stateless) thread: deleted unless the schedule keeps threads.
        own_thread = run.thread_id if schedule is None or schedule.is_stateless else None
        keep = schedule is not None and schedule.on_run_completed is OnRunCompleted.KEEP
        self._runs.finish(
            FinishRequest(
                schedule=schedule,
                run=finished,
                thread=None,
                delete_thread_id=None if keep else own_thread,
                pause_reason=None,
                now=now,
            )
        )

    # --- drift ----------------------------------------------------------------------------------

    def repair_drift(self, report: ReconcileReport) -> None:
        now = self._clock.now()
        actual = self._scheduler.list_states()  # first: see the module docstring
        expected = {
            entry.name: entry
            for schedule in self._schedules.all_schedules()
            for entry in scheduler_entries(schedule, now)
        }
        for name, entry in expected.items():
            if actual.get(name) is entry.enabled:
                continue
            try:
                self._scheduler.update(entry)  # creates a missing entry
                report.entries_rewritten += 1
            except Exception as exc:
                log.exception("could not rewrite entry %s", name)
                report.errors.append(f"entry {name}: {exc}")
        for name in actual:
            if name in expected or not name.startswith(ENTRY_PREFIX):
                continue
            try:
                self._scheduler.delete(name)
                report.orphan_entries_deleted += 1
            except Exception as exc:
                log.exception("could not delete orphan entry %s", name)
                report.errors.append(f"entry {name}: {exc}")
