"""ScheduleService: every schedule use case, for both façades.

DynamoDB is the source of truth; EventBridge Scheduler holds a *derived* copy that
can always be rebuilt from it. The two are written in a fixed order, and a failed
second write is compensated before the error reaches the client (503, nothing
changed). The invariants: no ACTIVE record without its Scheduler entries, no
Scheduler entry without a record, and — after any interleaving of writers — every
entry equal to what its record says (expression, timezone, state, end date, input).

==========  ==========================================  =====================================
operation   write order                                 if the Scheduler write fails
==========  ==========================================  =====================================
create      1. DynamoDB: counter + record (one tx)      delete the entries already created,
            2. Scheduler: CreateSchedule per entry      then delete the record
update      1. DynamoDB: conditional update (version)   write the previous attributes back
            2. Scheduler: UpdateSchedule per entry,     (if nobody changed the record since),
               DeleteSchedule for dropped entries       then converge the entries to the
            3. DynamoDB: re-read (converge, below)      record as it now is
pause       1. DynamoDB: ACTIVE → PAUSED (conditional)  put the previous state back (same),
            2. Scheduler: State=DISABLED per entry      then converge
            3. DynamoDB: re-read (converge)
resume      1. DynamoDB: PAUSED → ACTIVE (conditional)  as pause
            2. Scheduler: State=ENABLED per entry
            3. DynamoDB: re-read (converge)
delete      1. DynamoDB: DeleteItem, old record back    put the record back, re-create the
            2. Scheduler: DeleteSchedule per entry      entries already deleted
==========  ==========================================  =====================================

Writing DynamoDB first means the limit and every condition are checked before
anything can fire, and ownership is proven by the key before a Scheduler entry is
touched. A fire that arrives for a deleted or paused record is ignored or recorded
as skipped by the trigger, which re-reads the record on every fire.

**Convergence under concurrent writers.** DynamoDB writes are version-checked, but
the Scheduler writes that follow them are not ordered: two updates can commit v2
then v3 in DynamoDB while their ``UpdateSchedule`` calls land v3 then v2, leaving
the entry on an expression the record no longer has (every fire then skipped as
stale); a pause and a resume can leave the entry DISABLED under an ACTIVE record;
an update racing a delete can re-create an entry after the delete removed it. So
every write that changed what the entries derive from ends with
:meth:`SchedulerSync.converge`: re-read the record (one consistent GetItem); if
what the entries should be differs from what this writer just wrote, write them
again from the record read — or delete them all if the record is gone — and re-read,
until a read agrees with the last write. Why this converges: take the last Scheduler
write to a schedule's entries. Its writer re-read the record *after* that write and
found it agreeing (else it would have written again). Any DynamoDB write after that
re-read which changed the entries' definition would have been followed by its own
Scheduler write — later than the last one, a contradiction. So the record's final
definition is the one last written. A per-schedule lease would also order the
writers, but it costs a write to take and one to release, and makes a concurrent
client wait or fail; the re-read costs one read and fails no one.

``create`` needs no re-read: nobody else can write a record whose id has not been
returned yet. ``delete`` needs none either: after it, no writer can write the record
again, and a writer whose Scheduler write lands after the delete finds the record
gone on its own re-read and removes what it wrote. Only a process crash between the
writes (or a compensation that fails too) can leave them apart; the reconciler
repairs that from DynamoDB, comparing every field of every entry.

Calls per operation (asserted by tests): create 2, get 1, list 1, update 2 when the
entries do not change (a rename) and 4 when they do, pause/resume 3, delete 2, plus
one Scheduler call per extra entry of a split (Vixie OR) schedule. The third call of
pause/resume and the fourth of update is the convergence re-read. All validation —
the cron engine, the limits, sizes — happens before the first call.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib import observability
from chalicelib.domain import cron
from chalicelib.domain.addresses import host_refusal
from chalicelib.domain.enums import (
    OnRunCompleted,
    OverlapPolicy,
    PausedBy,
    ScheduleOrigin,
    ScheduleStatus,
)
from chalicelib.domain.errors import (
    AssistantNotFoundError,
    BudgetOutOfRangeError,
    ConflictError,
    InvalidRequestError,
    ScheduleStateConflictError,
    SchedulingUnavailableError,
    ThreadNotFoundError,
    TimeoutOutOfRangeError,
)
from chalicelib.domain.models import (
    DEFAULT_INITIAL_BACKOFF_SECONDS,
    DEFAULT_MAX_ATTEMPTS_PER_CALL,
    DEFAULT_PAUSE_AFTER_FAILURES,
    MAX_ATTEMPTS_PER_CALL,
    MAX_BLOB_BYTES,
    MAX_DESCRIPTION_CHARS,
    MAX_INITIAL_BACKOFF_SECONDS,
    MAX_METADATA_BYTES,
    MAX_NAME_CHARS,
    MAX_PAUSE_AFTER_FAILURES,
    MAX_QUERY_BYTES,
    MAX_WEBHOOK_CHARS,
    MIN_INITIAL_BACKOFF_SECONDS,
    JSONObject,
    Principal,
    Schedule,
    check_size,
    new_id,
)
from chalicelib.domain.ports import Clock, SchedulerEntry

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_schedules import DynamoDBScheduleStore
    from chalicelib.adapters.dynamodb_threads import DynamoDBThreadStore
    from chalicelib.adapters.eventbridge_scheduler import EventBridgeSchedulerGateway
    from chalicelib.agents.registry import Assistant, AssistantRegistry
    from chalicelib.domain.caps import Cap

log = logging.getLogger(__name__)

_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9.])?")

UPDATE_ATTEMPTS = 3
CONVERGE_ROUNDS = 5
"""Re-reads after a Scheduler write before leaving any remaining drift to the reconciler
(each extra round means yet another writer changed the record meanwhile)."""


@dataclass(frozen=True)
class ScheduleLimits:
    max_per_user: int
    min_interval_mins: int
    max_budget_usd: Decimal
    default_budget_usd: Decimal
    default_timeout_seconds: int
    max_timeout_seconds: int
    default_max_attempts_per_call: int = DEFAULT_MAX_ATTEMPTS_PER_CALL
    default_initial_backoff_seconds: float = DEFAULT_INITIAL_BACKOFF_SECONDS
    default_pause_after_failures: int = DEFAULT_PAUSE_AFTER_FAILURES


def new_webhook_secret() -> str:
    """256 random bits, URL-safe: the per-schedule key of webhook signatures."""
    return "whsec_" + secrets.token_urlsafe(32)


class SchedulerSync:
    """Writes a schedule's Scheduler entries and converges them to its record.

    See the module docstring for why the re-read after each write converges. Used by
    the schedule use cases, the trigger (after a system pause) and the reconciler.
    """

    def __init__(
        self,
        *,
        store: DynamoDBScheduleStore,
        scheduler: EventBridgeSchedulerGateway,
        clock: Clock,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._clock = clock

    def write(self, schedule: Schedule | None, *, drop: Iterable[str] = ()) -> None:
        """Write every entry of ``schedule`` and delete the entries named in ``drop`` that it
        no longer has (all of them when ``schedule`` is None: the record is gone)."""
        entries = [] if schedule is None else scheduler_entries(schedule, self._clock.now())
        for entry in entries:
            self._scheduler.update(entry)
        kept = {e.name for e in entries}
        for name in sorted(set(drop) - kept):
            self._scheduler.delete(name)

    def converge(self, written: Schedule, *, names: Iterable[str] = ()) -> Schedule | None:
        """Re-read ``written``'s record until it agrees with what was last written.

        ``written`` is the record the entries were last written from; ``names`` are
        entry names this writer may have created before (deleted if the record no
        longer has them). Returns the record as last read (None: deleted).
        """
        known = set(names) | set(written.eventbridge_names)
        last: Schedule | None = written
        for _ in range(CONVERGE_ROUNDS):
            current = self._store.find(written.tenant_id, written.user_id, written.id)
            if self._same_entries(current, last):
                return current
            self.write(current, drop=known)
            if current is not None:
                known |= set(current.eventbridge_names)
            last = current
        log.warning("schedule %s kept changing; the reconciler finishes converging", written.id)
        return last

    def _same_entries(self, a: Schedule | None, b: Schedule | None) -> bool:
        if a is None or b is None:
            return a is b
        now = self._clock.now()
        return scheduler_entries(a, now) == scheduler_entries(b, now)


@dataclass(frozen=True)
class ScheduleDraft:
    """A new schedule as a façade understood the request (shape-checked, not yet validated)."""

    name: str
    cron_expression: str
    timezone: str = "UTC"
    description: str = ""
    assistant: str | None = None
    """UUID or graph name; None = the deployment's default assistant."""
    input: JSONObject | list[Any] | None = None
    config: JSONObject = field(default_factory=dict)
    context: JSONObject = field(default_factory=dict)
    metadata: JSONObject = field(default_factory=dict)
    extras: JSONObject = field(default_factory=dict)
    thread_id: str | None = None
    on_run_completed: OnRunCompleted | None = OnRunCompleted.DELETE
    end_time: datetime | None = None
    max_budget_per_run_usd: Decimal | None = None
    timeout_seconds: int | None = None
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    webhook: str | None = None
    max_attempts_per_call: int | None = None
    initial_backoff_seconds: float | None = None
    pause_after_failures: int | None = None
    """None: the deployment's default (see ``ScheduleLimits``)."""
    enabled: bool = True
    origin: ScheduleOrigin = ScheduleOrigin.SHANNON
    schedule_id: str | None = None
    """Pre-assigned id (a façade may need it inside ``config``); minted when None."""


_UNSET: Any = object()


@dataclass(frozen=True)
class ScheduleChanges:
    """A partial update: only fields given a value change (``end_time=None`` clears it)."""

    name: str | None = None
    description: str | None = None
    cron_expression: str | None = None
    timezone: str | None = None
    input: JSONObject | list[Any] | None = None
    config: JSONObject | None = None
    context: JSONObject | None = None
    metadata: JSONObject | None = None
    extras: JSONObject | None = None
    on_run_completed: OnRunCompleted | None = None
    end_time: datetime | None = _UNSET
    max_budget_per_run_usd: Decimal | None = None
    timeout_seconds: int | None = None
    overlap_policy: OverlapPolicy | None = None
    webhook: str | None = _UNSET
    max_attempts_per_call: int | None = None
    initial_backoff_seconds: float | None = None
    pause_after_failures: int | None = None
    enabled: bool | None = None
    """True resumes, False pauses (by the user), in the same call; None leaves the state."""

    def is_empty(self) -> bool:
        return all(
            getattr(self, f) is None or getattr(self, f) is _UNSET
            for f in self.__dataclass_fields__
        )


@dataclass(frozen=True)
class SchedulePage:
    schedules: list[Schedule]
    total: int


FORECAST_DAYS = 30
CAPS_CACHE_ENTRIES = 10_000


def count_fires(
    expression: str,
    timezone: str,
    start: datetime,
    end_time: datetime | None,
    days: int = FORECAST_DAYS,
) -> int:
    """Fires in ``(start, start + days]``, cut at ``end_time``: the cron engine's own fire
    times (EventBridge's DST rules)."""
    end = start + timedelta(days=days)
    if end_time is not None:
        end = min(end, end_time)
    if end <= start:
        return 0
    return sum(1 for _ in cron.parse(expression, timezone).fires_between(start, end))


class ScheduleService:
    def __init__(
        self,
        *,
        store: DynamoDBScheduleStore,
        scheduler: EventBridgeSchedulerGateway,
        clock: Clock,
        limits: ScheduleLimits,
        assistants: AssistantRegistry,
        default_assistant: str,
        threads: DynamoDBThreadStore | None = None,
        id_factory: Callable[[], str] = new_id,
        caps_for: Callable[[Principal], tuple[Cap, ...]] | None = None,
        caps_cache_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._caps_for = caps_for
        self._caps_seconds = caps_cache_seconds
        self._caps_cache: dict[tuple[str, str], tuple[float, tuple[Cap, ...]]] = {}
        self._caps_lock = threading.Lock()
        self._monotonic = monotonic
        self._store = store
        self._scheduler = scheduler
        self._clock = clock
        self.limits = limits
        self._assistants = assistants
        self._default_assistant = default_assistant
        self._threads = threads
        self._new_id = id_factory
        self.sync = SchedulerSync(store=store, scheduler=scheduler, clock=clock)

    # --- monthly caps ------------------------------------------------------------------------

    def caps(self, principal: Principal) -> tuple[Cap, ...]:
        """The caller's monthly caps in force, cached per container for ``caps_cache_seconds``
        (one BatchGetItem on a miss; the trigger never uses this cache)."""
        if self._caps_for is None:
            return ()
        key = (principal.tenant_id, principal.user_id)
        now = self._monotonic()
        with self._caps_lock:
            hit = self._caps_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        caps = self._caps_for(principal)
        with self._caps_lock:
            if len(self._caps_cache) >= CAPS_CACHE_ENTRIES:
                self._caps_cache.clear()
            self._caps_cache[key] = (now + self._caps_seconds, caps)
        return caps

    def cap_warnings(self, principal: Principal, schedule: Schedule) -> list[str]:
        """A warning per cap the schedule's 30-day worst case (fires × budget) exceeds.

        Advice only, computed after the write committed: if the caps cannot be read, the
        create or update still answers with its result (and a create its one-time webhook
        secret) rather than a 503 that would invite a retry creating a second schedule.
        """
        try:
            caps = self.caps(principal)
        except SchedulingUnavailableError:
            log.warning("caps unreadable; %s answered without cap warnings", schedule.id)
            return []
        if not caps:
            return []
        budget = min(schedule.max_budget_per_run_usd, self.limits.max_budget_usd)
        fires = count_fires(
            schedule.cron_expression, schedule.timezone, self._clock.now(), schedule.end_time
        )
        worst = budget * fires
        return [
            f"the {FORECAST_DAYS}-day worst case of this schedule (${worst:.2f}: {fires} fires "
            f"× ${budget} per run) exceeds your monthly {cap.scope.value} cap of "
            f"${cap.monthly_usd}; runs stop when the cap is reached"
            for cap in caps
            if worst > cap.monthly_usd
        ]

    # --- queries ---------------------------------------------------------------------------

    def get(self, principal: Principal, schedule_id: str) -> Schedule:
        return self._store.get(principal, schedule_id)

    def list_for_user(self, principal: Principal) -> list[Schedule]:
        """All of the caller's schedules, newest first (bounded by the per-user limit)."""
        return self._store.list_for_user(principal)

    def next_run_at(self, schedule: Schedule, now: datetime | None = None) -> datetime | None:
        """The next fire in the schedule's timezone; None when paused, ended or never firing."""
        if schedule.status is not ScheduleStatus.ACTIVE:
            return None
        return self.next_fire_time(schedule, now)

    def next_fire_time(self, schedule: Schedule, now: datetime | None = None) -> datetime | None:
        """The next fire regardless of pause state (LangGraph's ``next_run_date``)."""
        now = now or self._clock.now()
        nxt = cron.parse(schedule.cron_expression, schedule.timezone).next_fire(now)
        if nxt is None or (schedule.end_time is not None and nxt > schedule.end_time):
            return None
        return nxt

    def preview(
        self, cron_expression: str, timezone: str, count: int, after: datetime | None = None
    ) -> tuple[cron.CronSchedule, list[datetime]]:
        compiled = self._compile(cron_expression, timezone)
        return compiled, compiled.next_fires(after or self._clock.now(), count)

    # --- commands --------------------------------------------------------------------------

    def create(self, principal: Principal, draft: ScheduleDraft) -> Schedule:
        assistant = self._resolve_assistant(draft.assistant)
        compiled = self._compile(draft.cron_expression, draft.timezone)
        if draft.thread_id is not None and (
            self._threads is None or not self._threads.exists(principal, draft.thread_id)
        ):
            raise ThreadNotFoundError(draft.thread_id)
        now = self._clock.now()
        schedule_id = draft.schedule_id or self._new_id()
        schedule = Schedule(
            id=schedule_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            origin=draft.origin,
            # An unnamed schedule (a LangGraph cron) is named after its agent.
            name=draft.name or f"cron {assistant.graph_id}"[:MAX_NAME_CHARS],
            description=draft.description,
            cron_expression=draft.cron_expression,
            timezone=draft.timezone,
            graph_id=assistant.graph_id,
            assistant_id=assistant.assistant_id,
            input=draft.input,
            config=draft.config,
            context=draft.context,
            metadata=draft.metadata,
            extras=draft.extras,
            thread_id=draft.thread_id,
            on_run_completed=None if draft.thread_id else draft.on_run_completed,
            end_time=draft.end_time,
            max_budget_per_run_usd=(
                self.limits.default_budget_usd
                if draft.max_budget_per_run_usd is None
                else draft.max_budget_per_run_usd
            ),
            timeout_seconds=(
                self.limits.default_timeout_seconds
                if draft.timeout_seconds is None
                else draft.timeout_seconds
            ),
            overlap_policy=draft.overlap_policy,
            webhook=draft.webhook,
            webhook_secret=new_webhook_secret(),
            max_attempts_per_call=_or(
                draft.max_attempts_per_call, self.limits.default_max_attempts_per_call
            ),
            initial_backoff_seconds=_or(
                draft.initial_backoff_seconds, self.limits.default_initial_backoff_seconds
            ),
            pause_after_failures=_or(
                draft.pause_after_failures, self.limits.default_pause_after_failures
            ),
            status=ScheduleStatus.ACTIVE if draft.enabled else ScheduleStatus.PAUSED,
            paused_at=None if draft.enabled else now,
            paused_by=None if draft.enabled else PausedBy.USER,
            eventbridge_expressions=list(compiled.eventbridge),
            eventbridge_names=entry_names(schedule_id, len(compiled.eventbridge)),
            created_at=now,
            updated_at=now,
        )
        self._validate(schedule)
        self._check_end_time(draft.end_time, now)
        self._store.create(schedule, limit=self.limits.max_per_user)
        created: list[str] = []
        try:
            for entry in self.entries(schedule):
                self._scheduler.create(entry)
                created.append(entry.name)
        except Exception:

            def undo() -> None:
                for name in created:
                    self._scheduler.delete(name)
                self._store.delete(principal, schedule.id)

            self._compensate(undo)
            raise
        return schedule

    def update(
        self,
        principal: Principal,
        schedule_id: str,
        changes: ScheduleChanges | Callable[[Schedule], ScheduleChanges],
    ) -> Schedule:
        """Apply a partial update; ``changes`` may be computed from the current record.

        A computed change (e.g. LangGraph's key-by-key metadata merge) is derived from
        the record this call read, and the write is conditioned on that record's
        version; if another update won the race, the change is recomputed from the new
        record (a few times) rather than overwriting it.

        ``changes.enabled`` then pauses or resumes the schedule if it is not already in
        that state (a concurrent toggle to the same state is not an error).
        """
        for attempt in range(UPDATE_ATTEMPTS):
            old = self._store.get(principal, schedule_id)
            wanted = changes(old) if callable(changes) else changes
            new = self._apply(old, wanted)
            if new == old:
                return self._set_enabled(principal, old, wanted.enabled)
            now = self._clock.now()
            new = new.model_copy(update={"updated_at": now})
            self._validate(new)
            if wanted.end_time is not _UNSET:
                self._check_end_time(wanted.end_time, now)
            try:
                saved = self._store.update(new, expected_version=old.version)
                break
            except ConflictError:
                if attempt + 1 == UPDATE_ATTEMPTS:
                    raise
        if self._scheduling_changed(old, saved):
            names = [*old.eventbridge_names, *saved.eventbridge_names]
            try:
                self.sync.write(saved, drop=old.eventbridge_names)
                self.sync.converge(saved, names=names)
            except Exception:
                rollback = old.model_copy(update={"updated_at": old.updated_at})
                self._compensate(
                    lambda: self._store.update(rollback, expected_version=saved.version)
                )
                self._compensate(lambda: self.sync.converge(saved, names=names))
                raise
        return self._set_enabled(principal, saved, wanted.enabled)

    def _set_enabled(
        self, principal: Principal, schedule: Schedule, enabled: bool | None
    ) -> Schedule:
        if enabled is None or enabled == (schedule.status is ScheduleStatus.ACTIVE):
            return schedule
        try:
            if enabled:
                return self.resume(principal, schedule.id)
            return self.pause(principal, schedule.id)
        except ScheduleStateConflictError:
            # Toggled concurrently to the state asked for: idempotent, not an error.
            return self._store.get(principal, schedule.id)

    def pause(
        self,
        principal: Principal,
        schedule_id: str,
        *,
        reason: str | None = None,
        by: PausedBy = PausedBy.USER,
    ) -> Schedule:
        before, after = self._store.pause(
            principal, schedule_id, at=self._clock.now(), reason=reason, by=by.value
        )
        self._apply_state(before, after)
        return after

    def resume(self, principal: Principal, schedule_id: str) -> Schedule:
        before, after = self._store.resume(principal, schedule_id, at=self._clock.now())
        self._apply_state(before, after)
        return after

    def delete(self, principal: Principal, schedule_id: str) -> Schedule:
        old = self._store.delete(principal, schedule_id)
        deleted: list[str] = []
        try:
            for name in old.eventbridge_names:
                self._scheduler.delete(name)
                deleted.append(name)
        except Exception:

            def undo() -> None:
                self._store.restore(old)
                for entry in self.entries(old):
                    if entry.name in deleted:
                        self._scheduler.create(entry)

            self._compensate(undo)
            raise
        return old

    # --- EventBridge entries ---------------------------------------------------------------

    def entries(self, schedule: Schedule) -> list[SchedulerEntry]:
        return scheduler_entries(schedule, self._clock.now())

    def _apply_state(self, before: Schedule, after: Schedule) -> None:
        """Second and third writes of pause/resume, with their compensation."""
        try:
            self.sync.write(after)
            self.sync.converge(after)
        except Exception:
            self._compensate(
                lambda: self._store.restore_state(before, expected_version=after.version)
            )
            self._compensate(lambda: self.sync.converge(after))
            raise

    @staticmethod
    def _scheduling_changed(old: Schedule, new: Schedule) -> bool:
        return (
            old.eventbridge_expressions != new.eventbridge_expressions
            or old.timezone != new.timezone
            or old.end_time != new.end_time
        )

    # --- validation ------------------------------------------------------------------------

    def _compile(self, expression: str, timezone: str) -> cron.CronSchedule:
        compiled = cron.parse(expression, timezone)
        compiled.check_min_interval(self.limits.min_interval_mins)
        return compiled

    def _resolve_assistant(self, ref: str | None) -> Assistant:
        wanted = ref if ref is not None else self._default_assistant
        found = self._assistants.resolve(wanted)
        if found is None:
            raise AssistantNotFoundError(wanted)
        return found

    def _apply(self, old: Schedule, changes: ScheduleChanges) -> Schedule:
        update: dict[str, Any] = {}
        for name in (
            "name",
            "description",
            "cron_expression",
            "timezone",
            "input",
            "config",
            "context",
            "metadata",
            "extras",
            "on_run_completed",
            "max_budget_per_run_usd",
            "timeout_seconds",
            "overlap_policy",
            "max_attempts_per_call",
            "initial_backoff_seconds",
            "pause_after_failures",
        ):
            value = getattr(changes, name)
            if value is not None:
                update[name] = value
        if changes.end_time is not _UNSET:
            update["end_time"] = changes.end_time
        if changes.webhook is not _UNSET:
            update["webhook"] = changes.webhook
        if old.thread_id is not None:
            update.pop("on_run_completed", None)  # a user's own thread is never deleted
        candidate = old.model_copy(update=update)
        if "cron_expression" in update or "timezone" in update:
            compiled = self._compile(candidate.cron_expression, candidate.timezone)
            candidate = candidate.model_copy(
                update={
                    "eventbridge_expressions": list(compiled.eventbridge),
                    "eventbridge_names": entry_names(old.id, len(compiled.eventbridge)),
                }
            )
        return candidate

    def _validate(self, schedule: Schedule) -> None:
        if not schedule.name.strip():
            raise InvalidRequestError("Schedule name required", field="name")
        if len(schedule.name) > MAX_NAME_CHARS:
            raise InvalidRequestError(
                f"Name too long: max {MAX_NAME_CHARS} characters", field="name"
            )
        if len(schedule.description) > MAX_DESCRIPTION_CHARS:
            raise InvalidRequestError(
                f"Description too long: max {MAX_DESCRIPTION_CHARS} characters",
                field="description",
            )
        budget = schedule.max_budget_per_run_usd
        if not budget.is_finite() or budget <= 0 or budget > self.limits.max_budget_usd:
            raise BudgetOutOfRangeError(budget, self.limits.max_budget_usd)
        if not 1 <= schedule.timeout_seconds <= self.limits.max_timeout_seconds:
            raise TimeoutOutOfRangeError(schedule.timeout_seconds, self.limits.max_timeout_seconds)
        self._validate_failure_policy(schedule)
        if len(schedule.query_text().encode()) > MAX_QUERY_BYTES:
            raise InvalidRequestError(
                f"Task query too long: max {MAX_QUERY_BYTES // 1024} KiB", field="task_query"
            )
        for name, value, cap in (
            ("input", schedule.input, MAX_BLOB_BYTES),
            ("task_context", schedule.context, MAX_BLOB_BYTES),
            ("config", schedule.config, MAX_BLOB_BYTES),
            ("metadata", schedule.metadata, MAX_METADATA_BYTES),
            ("extras", schedule.extras, MAX_BLOB_BYTES),
        ):
            check_size(name, value, cap)
        if schedule.webhook is not None:
            validate_webhook_url(schedule.webhook)

    @staticmethod
    def _validate_failure_policy(schedule: Schedule) -> None:
        """The wire models check these ranges first; this guards every other caller."""
        if not 1 <= schedule.max_attempts_per_call <= MAX_ATTEMPTS_PER_CALL:
            raise InvalidRequestError(
                f"max_attempts_per_call must be between 1 and {MAX_ATTEMPTS_PER_CALL}",
                field="max_attempts_per_call",
            )
        backoff = schedule.initial_backoff_seconds
        if not MIN_INITIAL_BACKOFF_SECONDS <= backoff <= MAX_INITIAL_BACKOFF_SECONDS:
            raise InvalidRequestError(
                f"initial_backoff_seconds must be between {MIN_INITIAL_BACKOFF_SECONDS:g} "
                f"and {MAX_INITIAL_BACKOFF_SECONDS:g}",
                field="initial_backoff_seconds",
            )
        if not 0 <= schedule.pause_after_failures <= MAX_PAUSE_AFTER_FAILURES:
            raise InvalidRequestError(
                f"pause_after_failures must be between 0 and {MAX_PAUSE_AFTER_FAILURES}",
                field="pause_after_failures",
            )

    @staticmethod
    def _check_end_time(end_time: datetime | None, now: datetime) -> None:
        """A new ``end_time`` must lie ahead (EventBridge refuses a past ``EndDate``)."""
        if end_time is not None and end_time <= now:
            raise InvalidRequestError(
                f"Invalid end_time: '{end_time.isoformat()}'. It must be in the future.",
                field="end_time",
            )

    @staticmethod
    def _compensate(action: Callable[[], object]) -> None:
        """Run a compensating write; its own failure is logged (the reconciler repairs it).
        Its calls may use the time a request's deadline kept for the rollback."""
        try:
            with observability.compensating():
                action()
        except Exception:
            log.exception("compensation failed; the reconciler will repair the drift")


def scheduler_entries(schedule: Schedule, now: datetime) -> list[SchedulerEntry]:
    """The complete EventBridge Scheduler definitions derived from the record.

    ``Input`` carries ids only (the payload stays in DynamoDB) plus the context
    attributes EventBridge substitutes on every delivery. A schedule whose
    ``end_time`` has passed is written DISABLED without an ``EndDate``: EventBridge
    refuses an end date in the past, and an ended schedule must not fire anyway.
    """
    ended = schedule.ended(now)
    payload = json.dumps(
        {
            "v": 1,
            "tenant_id": schedule.tenant_id,
            "user_id": schedule.user_id,
            "schedule_id": schedule.id,
            "scheduled_time": "<aws.scheduler.scheduled-time>",
            "attempt": "<aws.scheduler.attempt-number>",
            "execution_id": "<aws.scheduler.execution-id>",
        },
        separators=(",", ":"),
    )
    return [
        SchedulerEntry(
            name=name,
            expression=expression,
            timezone=schedule.timezone,
            enabled=schedule.status is ScheduleStatus.ACTIVE and not ended,
            end_date=None if ended else schedule.end_time,
            input=payload,
            description=f"agentcron schedule {schedule.id}",
        )
        for name, expression in zip(
            schedule.eventbridge_names, schedule.eventbridge_expressions, strict=True
        )
    ]


def entry_names(schedule_id: str, count: int) -> list[str]:
    """``sched-<id>``, then ``sched-<id>-2`` … — deterministic, never user text, ≤ 64 chars."""
    return [
        f"sched-{schedule_id}" if i == 0 else f"sched-{schedule_id}-{i + 1}" for i in range(count)
    ]


def validate_webhook_url(url: str) -> None:
    """Shape and address check at write time (see :mod:`chalicelib.domain.addresses`).

    The host must be a valid host name or IP literal; an IP literal (in any spelling a
    resolver accepts) or ``localhost`` outside public unicast space is refused here,
    with a 400, instead of failing every delivery later. Names are resolved — and
    their addresses checked again — at delivery.
    """
    if len(url) > MAX_WEBHOOK_CHARS:
        raise InvalidRequestError("Webhook URL too long", field="webhook")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidRequestError("Webhook URL must be an absolute https:// URL", field="webhook")
    if parts.username or parts.password:
        raise InvalidRequestError("Webhook URL must not contain credentials", field="webhook")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
        host = parts.hostname.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise InvalidRequestError(
            "Webhook URL has an invalid host or port", field="webhook"
        ) from None
    if ":" not in host and not _HOST_NAME.fullmatch(host):
        raise InvalidRequestError("Webhook URL has an invalid host name", field="webhook")
    reason = host_refusal(host)
    if reason is not None:
        raise InvalidRequestError(
            f"Webhook URL must point to a public address: {reason}", field="webhook"
        )


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value
