"""The reconciler: repairs what a crash between two writes can leave behind.

Every write path already keeps DynamoDB and EventBridge Scheduler consistent, undoing
its first write when the second fails (see :mod:`chalicelib.services.schedules`). What
it cannot cover is a process that dies between the two writes, a compensation that
fails too, or a trigger Lambda killed mid-run (out of memory, a runtime crash). A
periodic sweep repairs those from DynamoDB, the source of truth. The maintenance rule
fires every minute: each fire ends stuck runs (8 Queries of a sparse index and one
short invocation — well under $1 a month — so a dead trigger waits at most a minute
for the sweep after it is found stuck, instead of five; sweeps that overlap cannot both
end a run, the finish being conditional), and the fire of every fifth minute of the hour
(:func:`drift_due`, read from the rule's own event time) also compares the Scheduler
with the records, whose cost grows with the number of schedules:

1. **Stuck runs.** A run still ``running`` after its ``stuck_after`` instant lost its
   trigger. While the agent runs, the trigger's heartbeat moves ``stuck_after`` to
   three intervals after each sign of life (see :mod:`chalicelib.services.runs`),
   so a dead trigger is noticed 3 × ``HEARTBEAT_SECONDS`` after its last heartbeat —
   not after the run's deadline + ``RUNNING_GRACE_SECONDS`` (its cap, and the only
   bound when heartbeats are off). The run is finished as ``error`` — the trigger
   crashed or was killed; it did not run out of time, which a live trigger records
   itself — carrying the spend the last heartbeat reported (settled calls plus the
   in-flight ones at their reservation, never more than the budget; $0 only if it
   died before its first heartbeat), through the same finish transaction as any run:
   the counters still equal the history, the failure counts toward the
   consecutive-failure pause, its stateless thread is deleted (or kept, as
   configured) and the overlap marker is released, so the next fire is not blocked
   either. The finish is written only over a ``running`` record, so when the trigger
   was alive after all and finishes at the same moment, exactly one of the two
   records the outcome (the trigger's later heartbeat, or its finish, learns it lost).
   Running runs live in a sparse, sharded index (``gsi2``, sorted by
   ``stuck_after``), so finding them costs a few Queries whatever the table's size.
2. **Drift.** The Scheduler group is listed first (names and states), then every
   schedule record (``gsi1`` shards). Every entry is compared *whole* with what its
   record says — expression, timezone, state, end date, target input, and the target
   settings (function, role, DLQ, retry policy, flexible window): a missing or
   wrongly-enabled entry is seen in the listing, anything else by reading the entry
   back (``GetSchedule``; the listing returns names and states only). A record whose
   entries differ gets its complete definition re-written, followed by the same
   convergence re-read the API's writes end with (so a sweep that raced an API write
   ends on the record as it now is, not on the snapshot it read); an entry that no
   record claims is deleted. Listing the entries *before* the records means a
   schedule created during the sweep is never mistaken for an orphan (its record is
   written before its entries).

   Cost of a sweep: the 8 + 8 shard Queries, one ListSchedules page per 100 entries,
   and one GetSchedule per entry — linear in the number of schedules, as a full
   comparison must be; the API's write paths converge by themselves, so the sweep
   only ever finds what a crash left behind.

Every repair is idempotent and races safely with the API's own writes (a create or
delete that meets the reconciler's write treats "already there" / "already gone" as
success).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.domain.enums import OnRunCompleted, RunStatus
from chalicelib.domain.models import Run
from chalicelib.domain.ports import Clock, FailureStreak, FinishRequest, SchedulerEntry

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_runs import DynamoDBRunStore
    from chalicelib.adapters.dynamodb_schedules import DynamoDBScheduleStore
    from chalicelib.adapters.eventbridge_scheduler import EventBridgeSchedulerGateway
    from chalicelib.services.schedules import SchedulerSync
from chalicelib.services.schedules import scheduler_entries

log = logging.getLogger(__name__)

STUCK_MESSAGE = (
    "the trigger stopped reporting (crashed or was killed: out of memory, a runtime error, "
    "the Lambda's own time limit) without recording an outcome; last sign of life {last}; "
    "ended by the reconciler, booked at the spend it had reported (in-flight model calls "
    "at their reserved worst case)"
)
ENTRY_PREFIX = "sched-"
DRIFT_EVERY_MINUTES = 5
"""The maintenance rule runs every minute; every 5th minute it also repairs drift."""


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
        sync: SchedulerSync,
        clock: Clock,
        batch: int = 100,
    ) -> None:
        self._schedules = schedules
        self._runs = runs
        self._scheduler = scheduler
        self._sync = sync
        self._clock = clock
        self._batch = batch

    def scheduled(self, event_time: str | None) -> ReconcileReport:
        """The maintenance rule's sweep (every minute): stuck runs every time, drift when
        :func:`drift_due` says so for the rule's own fire time."""
        return self.run(drift=drift_due(event_time))

    def run(self, *, drift: bool = True) -> ReconcileReport:
        """The parts of the sweep (stuck runs; drift unless ``drift`` is False), each on its
        own: a part that fails outright (its reads fail — DynamoDB or the Scheduler
        unavailable) is reported in ``errors`` (the ``ReconcilerErrors`` metric, which an
        alarm watches) and the other part still runs; the next sweep retries both."""
        report = ReconcileReport()
        parts = [("stuck runs", self.end_stuck_runs)]
        if drift:
            parts.append(("drift", self.repair_drift))
        for part, repair in parts:
            try:
                repair(report)
            except Exception as exc:
                log.exception("reconciler: the %s part of the sweep failed", part)
                report.errors.append(f"{part}: {exc}")
        if report.stuck_runs_ended or report.entries_rewritten or report.orphan_entries_deleted:
            log.warning("reconciler repaired drift: %s", report.as_dict())
        return report

    # --- stuck runs ---------------------------------------------------------------------------

    def end_stuck_runs(self, report: ReconcileReport) -> None:
        now = self._clock.now()
        for run in self._runs.stuck(now, limit=self._batch):
            try:
                if self._end(run, now):
                    report.stuck_runs_ended += 1
            except Exception as exc:  # one bad record must not stop the sweep
                log.exception("could not end stuck run %s", run.run_id)
                report.errors.append(f"run {run.run_id}: {exc}")

    def _end(self, run: Run, now: datetime) -> bool:
        """Finish a run whose trigger stopped; False if it was finished meanwhile."""
        schedule = self._schedules.find(run.tenant_id, run.user_id, run.schedule_id)
        last = run.heartbeat_at or run.started_at or run.created_at
        # ``run.usage`` is the last heartbeat's report (settled + in-flight reservations).
        finished = run.model_copy(
            update={
                "status": RunStatus.ERROR,
                "error_message": STUCK_MESSAGE.format(last=last.isoformat()),
                "stuck_after": None,
                "completed_at": now,
                "updated_at": now,
            }
        )
        # The run's own (stateless) thread: deleted unless the schedule keeps threads.
        own_thread = run.thread_id if schedule is None or schedule.is_stateless else None
        keep = schedule is not None and schedule.on_run_completed is OnRunCompleted.KEEP
        ended = self._runs.finish(
            FinishRequest(
                schedule=schedule,
                run=finished,
                thread=None,
                delete_thread_id=None if keep else own_thread,
                pause_reason=None,
                now=now,
                # A crashed run failed: it counts toward the consecutive-failure pause,
                # which the schedule's next failed run applies (the count is >= then).
                failure_streak=FailureStreak.EXTEND,
                # Only if no heartbeat moved the stuck index key since the Query read it
                # (gsi2 is eventually consistent): otherwise the run is alive; skipped.
                seen_stuck_after=run.stuck_after,
            )
        )
        if ended:
            log.warning(
                "run %s (schedule %s): its trigger stopped reporting (last sign of life %s); "
                "ended as error, booked $%s",
                run.run_id,
                run.schedule_id,
                last.isoformat(),
                run.usage.cost_usd,
            )
        return ended

    # --- drift ----------------------------------------------------------------------------------

    def repair_drift(self, report: ReconcileReport) -> None:
        now = self._clock.now()
        actual = self._scheduler.list_states()  # first: see the module docstring
        expected: dict[str, SchedulerEntry] = {}
        for schedule in self._schedules.all_schedules():
            entries = scheduler_entries(schedule, now)
            expected.update((entry.name, entry) for entry in entries)
            try:
                drifted = [e for e in entries if self._drift(e, actual.get(e.name))]
                if not drifted:
                    continue
                for entry in drifted:
                    self._scheduler.update(entry)  # creates a missing entry
                    report.entries_rewritten += 1
                self._sync.converge(schedule)
            except Exception as exc:
                log.exception("could not repair the entries of schedule %s", schedule.id)
                report.errors.append(f"schedule {schedule.id}: {exc}")
        for name in actual:
            if name in expected or not name.startswith(ENTRY_PREFIX):
                continue
            try:
                self._delete_orphan(name)
                report.orphan_entries_deleted += 1
            except Exception as exc:
                log.exception("could not delete orphan entry %s", name)
                report.errors.append(f"entry {name}: {exc}")

    def _delete_orphan(self, name: str) -> None:
        """Delete an entry no record claimed when the records were read — then check again.

        The records were read a moment ago; an update may since have given its record
        this entry back (a split expression), and written it before our delete. The
        entry's own input names its record, so after the delete the record is re-read
        and, if it claims the entry, its entries are written and converged again.
        """
        owner = _owner(self._scheduler.target_input(name))
        self._scheduler.delete(name)
        if owner is None:
            return
        record = self._schedules.find(*owner)
        if record is not None and name in record.eventbridge_names:
            self._sync.write(record)
            self._sync.converge(record)

    def _drift(self, entry: SchedulerEntry, listed_enabled: bool | None) -> bool:
        if listed_enabled is not entry.enabled:  # missing (None) or in the wrong state
            problem = "missing" if listed_enabled is None else "State"
            log.warning("entry %s differs from its record: %s", entry.name, problem)
            return True
        differing = self._scheduler.differences(entry)
        if differing:
            log.warning("entry %s differs from its record: %s", entry.name, ", ".join(differing))
        return bool(differing)


def drift_due(event_time: str | None) -> bool:
    """Whether the rule's fire at ``event_time`` (EventBridge's ``time``, UTC) also compares
    the Scheduler with the records: on every ``DRIFT_EVERY_MINUTES``-th minute of the hour,
    and whenever the time cannot be read (better a sweep too many than one too few)."""
    try:
        minute = datetime.strptime(event_time or "", "%Y-%m-%dT%H:%M:%SZ").minute
    except ValueError:
        return True
    return minute % DRIFT_EVERY_MINUTES == 0


def _owner(target_input: str | None) -> tuple[str, str, str] | None:
    """(tenant, user, schedule id) from an entry's input, if it is one of ours."""
    try:
        data = json.loads(target_input or "")
        owner = (data["tenant_id"], data["user_id"], data["schedule_id"])
    except (ValueError, KeyError, TypeError):
        return None
    return owner if all(isinstance(part, str) for part in owner) else None
