"""The run engine: what the trigger Lambda does with one EventBridge delivery.

``check → claim → overlap → thread → agent → finish → thread delete/keep → webhook``

1. **Check.** Load the schedule (one GetItem). A deleted schedule's stray fire is
   ignored; a paused or ended schedule, a fire time its cron does not produce (an
   outdated Scheduler entry) or a delivery later than ``MAX_FIRE_LATENESS_SECONDS``
   is recorded as a *skipped* run with the reason — never silently dropped.
2. **Claim + overlap + thread.** One transaction (see ``dynamodb_runs``): the run
   keyed by (schedule, scheduled time), the schedule's running marker under the
   ``skip`` overlap policy, and a stateless run's fresh thread. A duplicate delivery
   finds the claim and does nothing, so each fire runs exactly once however often it
   is delivered. A live marker means overlap: recorded as skipped (``overlap``).
3. **Agent.** Deadline = min(``timeout_seconds``, Lambda time left − margin); a
   timeout's message names which of the two cut the run. The agent runs in a worker
   thread; the executor waits until the deadline (plus one second for a call to
   unwind), so the handler always returns before Lambda's own timeout and records
   ``timeout`` within deadline + 2 s. Until the outcome is recorded, a heartbeat
   thread writes the run's spend so far and moves its ``stuck_after`` every
   ``HEARTBEAT_SECONDS`` (see *The heartbeat* below): a trigger that dies mid-run is
   ended by the reconciler a few intervals later, with that spend. Then the run is
   *over* for the agent: its context refuses every further model call, and the worker
   and any thread the agent started for the run (``ctx.start_thread``) are stopped —
   a ``RunCancelled`` is raised in them, repeatedly for up to ``STOP_GRACE_SECONDS``
   — so nothing of a timed-out run keeps running in the warm container. A thread
   blocked in a C call stops when the call returns (every provider call has a timeout
   within the deadline); one that survives is logged, and cannot spend. Every model call reserves
   its worst case in the budget meter first (see ``agents.base``), so spend never
   exceeds ``max_budget_per_run_usd`` (itself capped by today's
   ``SCHEDULE_MAX_BUDGET_USD``).
4. **Finish.** One transaction: terminal run record (with its model-call attempts),
   counters — ``consecutive_failures`` added to by ``error``/``timeout``, reset by
   ``success`` — ``last_run_at``, the running marker, a system pause (after
   ``budget_exceeded``; ``budget_overrun`` when a provider reported more than a call's
   bound — always paused; or when ``consecutive_failures`` reaches the schedule's
   ``pause_after_failures``), and the thread (deleted for stateless ``delete``, its new
   state written otherwise). Tokens and cost are recorded for every outcome.
5. **After.** A system pause also disables the Scheduler entries (the only Scheduler
   calls the trigger ever makes, converged like the API's). Then the optional
   webhook, whose failure never changes the run: its outcome (``delivered``,
   ``failed: …``, ``refused: …``) is logged with the run id and recorded on the run
   as ``webhook_status`` (one UpdateItem, only for schedules with a webhook). After a
   system pause of any reason, the webhook also receives ``schedule.paused``. Every
   delivery is signed with the schedule's secret (see ``services.webhooks``).

Happy path: 3 DynamoDB calls (4 for thread-bound schedules), no Scheduler call; a run
longer than ``HEARTBEAT_SECONDS`` adds one UpdateItem per interval (its heartbeat). If
the finish finds the run already ended (the reconciler took the trigger for dead), that
record stands: nothing is announced and the trigger only logs it.

**The heartbeat: how a dead trigger is noticed early, and what it spent.**

**The problem.** A trigger Lambda killed mid-run (out of memory, a runtime crash, the
Lambda's own time limit) never writes its finish transaction. Without a sign of life
the reconciler can only assume the trigger is dead once nothing alive could still be
running the agent — deadline + ``RUNNING_GRACE_SECONDS`` — and, knowing nothing of the
model calls made, it would record $0.

**The heartbeat.** From the claim until the outcome is recorded (the thread read, the
agent's construction and a slow finish transaction included), a daemon thread of the
executor writes, every
``HEARTBEAT_SECONDS``, one conditional ``UpdateItem`` on the run item
(``DynamoDBRunStore.heartbeat``): the time, the meter's *exposure* — settled spend
plus every in-flight call at its reservation (:meth:`BudgetMeter.exposure`) — with the
settled tokens, and a new ``stuck_after`` = now + ``MISSED_HEARTBEATS`` × interval,
never later than the run's deadline + grace. The claim writes a short ``stuck_after``
too, so a trigger that dies before its first heartbeat is noticed as early: computed
before the cap read and the claim, and followed by the first beat one interval after
the claim succeeds, it is ``MISSED_HEARTBEATS`` + 1 intervals from then — the extra
interval covers the cap read and the claim (a few botocore-bounded calls, like one
beat's write), so the setup between the claim and the first beat has at least the
margin a run has between two beats. The heartbeat starts right after the claim,
before the thread read and the agent's construction (cold imports, a key read), so
neither can eat that margin; a beat that finds the run ended before the agent's
context exists cancels the context as soon as it is made.

``stuck_after`` is the sort key of the sparse
index of running runs the reconciler already Queries (``gsi2``), so the reconciler finds
a dead trigger ``MISSED_HEARTBEATS`` intervals after its last sign of life with the
same few Queries as before — no new index, no Scan.

Why this shape:

* **Nothing per model call.** The meter is read (under its lock, in memory) by the
  heartbeat thread; the model-call path and the budget meter's ``guard`` seam (monthly
  caps) are untouched, so a run makes no AWS call per model call for its own sake.
* **Nothing for short runs.** The first write is one interval after the claim;
  a run shorter than that makes exactly the calls it made before (3, or 4 for a
  thread-bound schedule). A long run adds one write per interval, billed on the run
  item's size (about 1.5 KB: 2 WRU) in the table and in the indexes it is in (the
  ``gsi2`` key moves: about 8 WRU in all) — some 160 WRU, $0.0001, for a 10-minute run.
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

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib import observability
from chalicelib.agents.base import (
    AgentResult,
    Agents,
    AttemptLog,
    BudgetExceeded,
    BudgetMeter,
    CapExceeded,
    DeadlineExceeded,
    ModelPrice,
    ProviderError,
    RetryPolicy,
    RunContext,
    input_messages,
    stop_threads,
)
from chalicelib.domain import cron
from chalicelib.domain.caps import Cap, CapDefaults, month_of
from chalicelib.domain.enums import (
    FireOutcome,
    OnRunCompleted,
    OverlapPolicy,
    PausedBy,
    PauseReason,
    RunStatus,
    RunTrigger,
    ScheduleStatus,
    SkipReason,
    ThreadStatus,
)
from chalicelib.domain.errors import (
    InvalidCronError,
    ScheduleNotFoundError,
    SchedulePausedBySystemError,
)
from chalicelib.domain.models import (
    MAX_ERROR_BYTES,
    MAX_RESULT_BYTES,
    MAX_RUN_QUERY_BYTES,
    MAX_WEBHOOK_STATUS_BYTES,
    JSONObject,
    Principal,
    Run,
    Schedule,
    Thread,
    bounded_state,
    clip_text,
    new_id,
)
from chalicelib.domain.ports import (
    ClaimOutcome,
    ClaimRequest,
    Clock,
    FailureStreak,
    FinishRequest,
    RunInvoker,
    Webhooks,
)

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_runs import DynamoDBRunStore
    from chalicelib.adapters.dynamodb_schedules import DynamoDBScheduleStore
    from chalicelib.adapters.dynamodb_spend import DynamoDBSpendGuard, DynamoDBSpendStore
    from chalicelib.adapters.dynamodb_threads import DynamoDBThreadStore
    from chalicelib.services.schedules import SchedulerSync

log = logging.getLogger(__name__)

RUN_NAMESPACE = uuid.UUID("2f0e7b52-8a4e-4f5c-9d8e-6a4be0c1a001")
UNWIND_SECONDS = 1.0
ENDED_ELSEWHERE = "already ended by the reconciler (its record stands)"
STOP_GRACE_SECONDS = 0.5
"""How long a run waits for its overrunning agent threads to stop (see ``agents.base``)."""


# --- the heartbeat (see the module docstring) --------------------------------------------------

MISSED_HEARTBEATS = 3
"""Heartbeat intervals without a sign of life after which a running run is stuck."""
HEARTBEAT_STOP_WAIT_SECONDS = 1.0
"""How long the run waits for a heartbeat write in flight when the agent is done."""


def stuck_after(
    now: datetime, interval: float, latest: datetime, *, setup: bool = False
) -> datetime:
    """The instant after which the run is taken for dead if no heartbeat came since ``now``.

    ``latest`` (deadline + grace) bounds it; an interval of 0 (heartbeats off) is that bound.
    ``setup``: the claim's value, computed before the cap read and the claim, whose
    heartbeat starts only after them — one more interval, so the first beat has the
    same margin as any later one (see the module docstring).
    """
    if interval <= 0:
        return latest
    intervals = MISSED_HEARTBEATS + 1 if setup else MISSED_HEARTBEATS
    return min(now + timedelta(seconds=intervals * interval), latest)


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
        self._ended = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finishing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Beat until :meth:`stop` (the executor starts it right after the claim)."""
        if self._interval <= 0:
            return
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{self._run.run_id}", daemon=True
        )
        self._thread.start()

    def bind(self, on_ended: Callable[[], None]) -> None:
        """``on_ended`` runs if a beat finds the run already ended while the agent may
        still run (the executor passes the run context's cancel) — at once if one did
        before the context existed (during the thread read or the agent's construction)."""
        with self._lock:
            self._on_ended = on_ended
            ended = self._ended
        if ended:
            on_ended()

    def finishing(self) -> None:
        """The trigger is writing the outcome: a beat that now finds the run ended lost to
        that finish, and says nothing (beats go on until :meth:`stop`, so a slow finish
        still shows a live trigger)."""
        self._finishing.set()

    def stop(self) -> None:
        """No heartbeat starts after this returns (one in flight is waited for, briefly)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(HEARTBEAT_STOP_WAIT_SECONDS)

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
            with self._lock:
                self._ended = True
                on_ended = self._on_ended
            on_ended()
            return False
        return True


class TriggerEvent(BaseModel):
    """The ``Input`` agentcron registers on every Scheduler entry (and sends for manual runs)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = 1
    tenant_id: str = Field(min_length=1, max_length=64)
    user_id: str = Field(min_length=1, max_length=64)
    schedule_id: str = Field(min_length=1, max_length=64)
    scheduled_time: datetime
    attempt: int = 1
    execution_id: str | None = None
    trigger: RunTrigger = RunTrigger.SCHEDULE
    run_id: str | None = None

    @field_validator("scheduled_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("scheduled_time needs a UTC offset")
        return value

    @field_validator("attempt", mode="before")
    @classmethod
    def _attempt(cls, value: Any) -> Any:
        # A placeholder that was never substituted (e.g. a hand-made event) counts as 1.
        if isinstance(value, str) and value.startswith("<"):
            return 1
        return value


def scheduled_run_id(schedule_id: str, scheduled_time: datetime) -> str:
    """Deterministic: every delivery of the same fire names the same run."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{schedule_id}|{scheduled_time.isoformat()}"))


def run_id_of(event: TriggerEvent) -> str:
    if event.trigger is RunTrigger.MANUAL and event.run_id:
        return event.run_id
    return scheduled_run_id(event.schedule_id, event.scheduled_time)


@dataclass(frozen=True)
class RunSettings:
    max_budget_usd: Decimal
    deadline_margin_seconds: float
    lambda_timeout_seconds: int
    max_lateness_seconds: int
    running_grace_seconds: int
    kept_thread_ttl_hours: int
    auto_pause_on_budget_exceeded: bool
    max_backoff_seconds: float = 60.0
    """The longest backoff between two attempts of a model call (``RetryPolicy``)."""
    caps: CapDefaults = field(default_factory=CapDefaults)
    """Deployment-wide monthly caps (operators override them per tenant and user)."""
    heartbeat_seconds: float = 0.0
    """``HEARTBEAT_SECONDS``: the running run's heartbeat period; 0 writes none."""


@dataclass(frozen=True)
class _Limit:
    """What bounds a run's agent time: the schedule's timeout or the Lambda's time left."""

    seconds: float
    lambda_bound: bool
    margin_seconds: float

    def message(self, schedule: Schedule) -> str:
        if not self.lambda_bound:
            return f"run exceeded its timeout of {schedule.timeout_seconds} s"
        return (
            f"run stopped after {self.seconds:.0f} s: the trigger Lambda's remaining time "
            f"(less a {self.margin_seconds:g} s margin to record the outcome) ran out before "
            f"the schedule's timeout of {schedule.timeout_seconds} s"
        )


@dataclass(frozen=True)
class RunSummary:
    """What the handler returns (and the local dispatcher prints)."""

    status: FireOutcome | RunStatus
    schedule_id: str
    scheduled_time: str
    run_id: str | None = None
    reason: str | None = None
    cost_usd: str = "0"
    total_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        out["status"] = str(self.status.value)
        return out


class RunExecutor:
    def __init__(
        self,
        *,
        runs: DynamoDBRunStore,
        threads: DynamoDBThreadStore,
        entries: SchedulerSync,
        agents: Agents,
        webhooks: Webhooks,
        clock: Clock,
        settings: RunSettings,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        spend: DynamoDBSpendStore | None = None,
    ) -> None:
        self._spend = spend
        self._runs = runs
        self._threads = threads
        self._entries = entries
        self._agents = agents
        self._webhooks = webhooks
        self._clock = clock
        self.settings = settings
        self._monotonic = monotonic
        self._sleep = sleep

    # --- entry points -----------------------------------------------------------------------

    def handle(self, event: Any, remaining_ms: Callable[[], int] | None) -> dict[str, Any]:
        """The trigger Lambda's body: parse EventBridge Scheduler's delivery, run it.

        A malformed event is logged and dropped (returning normally): raising would only
        make Lambda retry a message that can never succeed. Infrastructure failures
        (DynamoDB unavailable) do raise, so the invocation lands in the function's
        ``OnFailure`` destination; Lambda's own async retries are 0, because a retried
        agent run would spend its budget twice.
        """
        if isinstance(event, str | bytes):
            try:
                event = json.loads(event)
            except ValueError:
                log.error("dropped a trigger event that is not JSON")
                return {"status": FireOutcome.DROPPED.value, "reason": "not JSON"}
        try:
            parsed = TriggerEvent.model_validate(event)
        except ValidationError as exc:
            log.error("dropped a malformed trigger event: %s", exc.errors(include_url=False))
            return {"status": FireOutcome.DROPPED.value, "reason": "malformed event"}
        return self.execute(parsed, remaining_ms).as_dict()

    def execute(
        self, event: TriggerEvent, remaining_ms: Callable[[], int] | None = None
    ) -> RunSummary:
        started_mono = self._monotonic()
        when = event.scheduled_time
        # The owner's cap overrides ride in the fire's read: no call of their own.
        schedule, existing, overrides = self._runs.load_fire(
            event.tenant_id,
            event.user_id,
            event.schedule_id,
            when,
            event.trigger,
            run_id_of(event),
            extra_keys=(
                ()
                if self._spend is None
                else self._spend.override_keys(event.tenant_id, event.user_id)
            ),
        )
        if schedule is None:
            log.info("ignored fire of deleted schedule %s at %s", event.schedule_id, when)
            return RunSummary(
                FireOutcome.IGNORED, event.schedule_id, when.isoformat(), reason="deleted"
            )
        if existing is not None:
            log.info("duplicate delivery of %s at %s ignored", schedule.id, when)
            return RunSummary(
                FireOutcome.DUPLICATE, schedule.id, when.isoformat(), run_id=existing.run_id
            )
        now = self._clock.now()
        if event.trigger is RunTrigger.SCHEDULE:
            skip = self._skip_reason(schedule, when, now)
            if skip is not None:
                return self._skip(schedule, event, now, skip)
        caps = self._caps(event, overrides)
        if caps and self._cap_exhausted(event, caps, now):
            return self._skip(schedule, event, now, SkipReason.MONTHLY_CAP)
        thread = self._new_thread(schedule, now) if schedule.is_stateless else None
        budget_seconds, cut_by_lambda = self._deadline_seconds(schedule, remaining_ms, started_mono)
        # Nothing alive runs the agent after deadline + grace: the overlap marker lasts
        # that long. The run is taken for dead earlier if its heartbeats stop.
        latest = now + timedelta(seconds=budget_seconds + self.settings.running_grace_seconds)
        run = self._new_run(
            schedule, event, now, thread_id=thread.thread_id if thread else None
        ).model_copy(
            update={
                "stuck_after": stuck_after(now, self.settings.heartbeat_seconds, latest, setup=True)
            }
        )
        enforce = schedule.overlap_policy is OverlapPolicy.SKIP
        outcome = self._runs.claim(
            ClaimRequest(
                schedule=schedule,
                run=run,
                new_thread=thread,
                running_until=latest,
                enforce_no_overlap=enforce,
            )
        )
        if outcome is ClaimOutcome.DUPLICATE:
            log.info("duplicate delivery of %s at %s ignored", schedule.id, when)
            return RunSummary(
                FireOutcome.DUPLICATE, schedule.id, when.isoformat(), run_id=run.run_id
            )
        if outcome is ClaimOutcome.GONE:
            return RunSummary(FireOutcome.IGNORED, schedule.id, when.isoformat(), reason="deleted")
        if outcome is ClaimOutcome.PAUSED:
            return self._skip(schedule, event, now, SkipReason.PAUSED)
        if outcome is ClaimOutcome.OVERLAP:
            return self._skip(schedule, event, now, SkipReason.OVERLAP)
        limit = _Limit(budget_seconds, cut_by_lambda, self.settings.deadline_margin_seconds)
        return self._run(schedule, run, thread, started_mono + budget_seconds, limit, latest, caps)

    # --- check ------------------------------------------------------------------------------

    def _caps(self, event: TriggerEvent, overrides: list[dict[str, Any]]) -> tuple[Cap, ...]:
        if self._spend is None:
            return ()
        return self._spend.caps_from(overrides, event.tenant_id, event.user_id, self.settings.caps)

    def _cap_exhausted(self, event: TriggerEvent, caps: tuple[Cap, ...], now: datetime) -> bool:
        """One read of the month counters, only when a cap is in force."""
        assert self._spend is not None
        usage = self._spend.usage(caps, event.tenant_id, event.user_id, month_of(now))
        return any(u.exhausted for u in usage)

    def _skip_reason(self, schedule: Schedule, when: datetime, now: datetime) -> SkipReason | None:
        if schedule.status is ScheduleStatus.PAUSED:
            return SkipReason.PAUSED
        if schedule.end_time is not None and when > schedule.end_time:
            return SkipReason.ENDED
        try:
            produced = cron.parse(schedule.cron_expression, schedule.timezone).fires_at(when)
        except InvalidCronError:
            produced = False
        if not produced:
            return SkipReason.STALE
        if (now - when).total_seconds() > self.settings.max_lateness_seconds:
            return SkipReason.LATE
        return None

    def _skip(
        self, schedule: Schedule, event: TriggerEvent, now: datetime, reason: SkipReason
    ) -> RunSummary:
        run = self._new_run(schedule, event, now).model_copy(
            update={
                "status": RunStatus.SKIPPED,
                "error_message": reason.value,
                "started_at": None,
                "completed_at": now,
                "thread_id": None,
            }
        )
        recorded = self._runs.record_skip(schedule, run)
        status = FireOutcome.SKIPPED if recorded else FireOutcome.DUPLICATE
        if recorded:
            observability.run_outcome(run)
        log.info("fire of %s at %s %s (%s)", schedule.id, event.scheduled_time, status, reason)
        return RunSummary(
            status,
            schedule.id,
            event.scheduled_time.isoformat(),
            run_id=run.run_id,
            reason=reason.value,
        )

    # --- run --------------------------------------------------------------------------------

    def _run(
        self,
        schedule: Schedule,
        run: Run,
        new_thread: Thread | None,
        deadline: float,
        limit: _Limit,
        latest: datetime,
        caps: tuple[Cap, ...] = (),
    ) -> RunSummary:
        guard: DynamoDBSpendGuard | None = None
        if caps and self._spend is not None:
            guard = self._spend.guard(caps, schedule.tenant_id, schedule.user_id, run.created_at)
        meter = BudgetMeter(
            limit_usd=min(schedule.max_budget_per_run_usd, self.settings.max_budget_usd),
            guard=guard,
        )
        attempts = AttemptLog()
        # From the claim until the outcome is recorded (the thread read, the agent's
        # construction and a slow finish included), the run's heartbeat says the
        # trigger lives and what it has spent.
        heartbeat = Heartbeat(
            runs=self._runs,
            run=run,
            meter=meter,
            clock=self._clock,
            interval=self.settings.heartbeat_seconds,
            latest=latest,
        )
        heartbeat.start()
        try:
            thread = new_thread
            if thread is None and schedule.thread_id is not None:
                thread = self._threads.find(
                    schedule.tenant_id, schedule.user_id, schedule.thread_id
                )
            return self._run_and_finish(
                schedule, run, thread, meter, deadline, limit, attempts, heartbeat, guard
            )
        finally:
            heartbeat.stop()

    def _run_and_finish(
        self,
        schedule: Schedule,
        run: Run,
        thread: Thread | None,
        meter: BudgetMeter,
        deadline: float,
        limit: _Limit,
        attempts: AttemptLog,
        heartbeat: Heartbeat,
        guard: DynamoDBSpendGuard | None,
    ) -> RunSummary:
        status, result, error, values, used = self._invoke(
            schedule, run, thread, meter, deadline, limit, attempts=attempts, heartbeat=heartbeat
        )
        now = self._clock.now()
        usage = meter.usage()
        model: str | None
        provider: str | None
        if used:
            model, provider = used[-1].model, used[-1].provider
        else:
            model, provider = self._agents.model_info(schedule.graph_id)
        finished = run.model_copy(
            update={
                "status": status,
                "result": clip_text(result, MAX_RESULT_BYTES),
                "error_message": clip_text(error, MAX_ERROR_BYTES),
                "completed_at": now,
                "updated_at": now,
                "stuck_after": None,
                "usage": usage,
                "model_used": model,
                "provider": provider,
                "call_attempts": attempts.attempts,
                "failed_attempt_count": attempts.failed_total,
                "failed_attempts": list(attempts.failed),
            }
        )
        # A monthly cap stops the run without pausing the schedule: the month's later
        # fires are skipped (``monthly_cap``) and the schedule runs again next month.
        capped = guard is not None and guard.refused
        pause: PauseReason | None = None
        if meter.overrun is not None:
            pause = PauseReason.BUDGET_OVERRUN  # whatever AUTO_PAUSE_ON_BUDGET_EXCEEDED says
        elif (
            status is RunStatus.BUDGET_EXCEEDED
            and self.settings.auto_pause_on_budget_exceeded
            and not capped
        ):
            pause = PauseReason.BUDGET_EXCEEDED
        streak, failures = failure_streak(schedule, status)
        if pause is None and _pauses_after_failures(schedule, failures):
            pause = PauseReason.CONSECUTIVE_FAILURES
        delete_thread: str | None = None
        new_state: Thread | None = None
        if thread is not None:
            if schedule.is_stateless and schedule.on_run_completed is not OnRunCompleted.KEEP:
                delete_thread = thread.thread_id
            else:
                new_state = self._thread_after(schedule, thread, values, status, now)
        heartbeat.finishing()
        recorded = self._runs.finish(
            FinishRequest(
                schedule=schedule,
                run=finished,
                thread=new_state,
                delete_thread_id=delete_thread,
                pause_reason=pause,
                now=now,
                failure_streak=streak,
            )
        )
        heartbeat.stop()
        if not recorded:
            # The reconciler ended the run first (its heartbeats stopped reaching DynamoDB
            # for several intervals): its record stands, counted once; nothing is announced.
            log.warning(
                "run %s (schedule %s) ended %s, but it had already been ended by the "
                "reconciler; that record stands",
                run.run_id,
                schedule.id,
                status,
            )
        else:
            if pause is not None:
                self._disable_entries(schedule)
            if schedule.webhook:
                self._deliver_webhook(schedule.webhook, schedule, finished)
            if pause is not None:
                self._announce_pause(schedule, pause, finished, failures)
            observability.run_outcome(finished)
        return RunSummary(
            status,
            schedule.id,
            run.scheduled_time.isoformat(),
            run_id=run.run_id,
            reason=error if recorded else ENDED_ELSEWHERE,
            cost_usd=str(usage.cost_usd),
            total_tokens=usage.total_tokens,
        )

    def _deliver_webhook(self, url: str, schedule: Schedule, run: Run) -> None:
        """POST the run; log the outcome with the run id and record it on the run.

        The one extra DynamoDB call (``webhook_status``) is made only for schedules
        with a webhook, after the finish: the run's outcome is never at stake.
        """
        try:
            outcome = self._webhooks.send(
                url, webhook_payload(schedule, run), secret=schedule.webhook_secret
            )
            delivered, status = outcome.delivered, outcome.summary()
        except Exception as exc:  # a sender must not raise; if it does, it failed
            delivered, status = False, f"failed: {exc}"
        status = clip_text(status, MAX_WEBHOOK_STATUS_BYTES) or ""
        if delivered:
            log.info("webhook of run %s (schedule %s): %s", run.run_id, schedule.id, status)
        else:
            log.warning("webhook of run %s (schedule %s): %s", run.run_id, schedule.id, status)
            observability.webhook_failed()
        try:
            self._runs.record_webhook(run, status)
        except Exception:
            log.exception("could not record the webhook status of run %s", run.run_id)

    def _announce_pause(
        self, schedule: Schedule, reason: PauseReason, run: Run, failures: int
    ) -> None:
        """Send ``schedule.paused`` to the schedule's webhook after any system pause.

        Logged, never recorded on the run (its ``webhook_status`` is the run event's);
        a failure changes nothing — the schedule is paused either way.
        """
        if not schedule.webhook:
            return
        payload = pause_payload(schedule, reason, run, failures)
        try:
            outcome = self._webhooks.send(schedule.webhook, payload, secret=schedule.webhook_secret)
            delivered, status = outcome.delivered, outcome.summary()
        except Exception as exc:  # a sender must not raise; if it does, it failed
            delivered, status = False, f"failed: {exc}"
        if delivered:
            log.info("schedule.paused webhook of %s (%s): %s", schedule.id, reason, status)
        else:
            log.warning("schedule.paused webhook of %s (%s): %s", schedule.id, reason, status)
            observability.webhook_failed()

    def _invoke(
        self,
        schedule: Schedule,
        run: Run,
        thread: Thread | None,
        meter: BudgetMeter,
        deadline: float,
        limit: _Limit,
        *,
        attempts: AttemptLog | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> tuple[RunStatus, str | None, str | None, JSONObject | None, list[ModelPrice]]:
        if schedule.thread_id is not None and thread is None:
            return RunStatus.ERROR, None, f"thread {schedule.thread_id} not found", None, []
        try:
            agent = self._agents.agent(schedule.graph_id)
        except Exception as exc:
            message = f"agent {schedule.graph_id!r} unavailable: {exc}"
            return RunStatus.ERROR, None, message, None, []
        ctx = RunContext(
            run_id=run.run_id,
            schedule_id=schedule.id,
            thread_id=None if thread is None else thread.thread_id,
            deadline=deadline,
            budget=meter,
            config=schedule.config,
            context=schedule.context,
            metadata=run.metadata,
            monotonic=self._monotonic,
            sleep=self._sleep,
            retry=RetryPolicy(
                max_attempts=schedule.max_attempts_per_call,
                initial_backoff_seconds=schedule.initial_backoff_seconds,
                max_backoff_seconds=self.settings.max_backoff_seconds,
            ),
            attempts=attempts if attempts is not None else AttemptLog(),
            now=self._clock.now,
        )
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = agent.invoke(
                    schedule.input, None if thread is None else thread.values, ctx
                )
            except BaseException as exc:
                box["error"] = exc

        worker = threading.Thread(target=work, name=f"agent-{run.run_id}", daemon=True)
        worker.start()
        if heartbeat is not None:
            heartbeat.bind(ctx.cancel)
        worker.join(max(0.0, deadline - self._monotonic()) + UNWIND_SECONDS)
        overran = worker.is_alive()
        # The run is over for the agent: no model call may start from here, and every
        # thread of the run that is still going is stopped.
        ctx.cancel()
        survivors = stop_threads([worker, *ctx.threads], grace=STOP_GRACE_SECONDS)
        if survivors:
            log.warning(
                "run %s: agent thread(s) %s still running after the run (blocked outside "
                "Python); they can no longer start a model call",
                run.run_id,
                ", ".join(t.name for t in survivors),
            )
        used = list(ctx.models_used)
        if meter.overrun is not None:
            # Whatever the agent did with it (raised, caught, timed out after), a call
            # that reported more than its bound ends the run and pauses the schedule.
            overrun = meter.overrun
            log.warning(
                "run %s (schedule %s): model %s reported usage above its bound; "
                "booked $%s for a reservation of $%s (overshoot $%s)",
                run.run_id,
                schedule.id,
                overrun.model,
                overrun.charged,
                overrun.reserved,
                overrun.overshoot,
            )
            message = f"budget overrun: {overrun}"
            return RunStatus.BUDGET_EXCEEDED, None, message, None, used
        timeout = (RunStatus.TIMEOUT, None, limit.message(schedule), None, used)
        if overran:
            return timeout
        failure = box.get("error")
        if isinstance(failure, DeadlineExceeded):
            if isinstance(failure.__cause__, ProviderError):
                # A retry's backoff would have passed the deadline: name what failed.
                message = f"{limit.message(schedule)}; last error: {failure.__cause__}"
                return RunStatus.TIMEOUT, None, message, None, used
            return timeout
        if isinstance(failure, CapExceeded):
            return RunStatus.BUDGET_EXCEEDED, None, str(failure), None, used
        if isinstance(failure, BudgetExceeded):
            message = f"budget of ${meter.limit_usd} per run exhausted: {failure}"
            return RunStatus.BUDGET_EXCEEDED, None, message, None, used
        if failure is not None:
            # The type only: an agent's error text may quote the prompt or the model's
            # output, which logs never carry (the run record keeps the message).
            log.warning("agent %s failed: %s", schedule.graph_id, type(failure).__name__)
            return RunStatus.ERROR, None, str(failure) or type(failure).__name__, None, used
        result: AgentResult = box["result"]
        if self._monotonic() > deadline + UNWIND_SECONDS:
            return timeout
        return RunStatus.SUCCESS, result.output, None, result.values, used

    def _deadline_seconds(
        self, schedule: Schedule, remaining_ms: Callable[[], int] | None, started: float
    ) -> tuple[float, bool]:
        """Seconds the agent may run, and whether the Lambda's time (not the schedule's
        timeout) is what bounds them."""
        limit = float(schedule.timeout_seconds)
        if remaining_ms is not None:
            elapsed = self._monotonic() - started
            lambda_left = remaining_ms() / 1000.0 - elapsed - self.settings.deadline_margin_seconds
            if lambda_left < limit:
                return max(lambda_left, 0.0), True
        return max(limit, 0.0), False

    # --- records ----------------------------------------------------------------------------

    def _new_run(
        self, schedule: Schedule, event: TriggerEvent, now: datetime, thread_id: str | None = None
    ) -> Run:
        return Run(
            run_id=run_id_of(event),
            schedule_id=schedule.id,
            tenant_id=schedule.tenant_id,
            user_id=schedule.user_id,
            trigger=event.trigger,
            scheduled_time=event.scheduled_time,
            status=RunStatus.RUNNING,
            thread_id=thread_id or schedule.thread_id,
            graph_id=schedule.graph_id,
            assistant_id=schedule.assistant_id,
            query=clip_text(schedule.query_text(), MAX_RUN_QUERY_BYTES) or "",
            input=schedule.input,
            metadata={
                **schedule.metadata,
                "cron_id": schedule.id,
                "graph_id": schedule.graph_id,
                "assistant_id": schedule.assistant_id,
            },
            started_at=now,
            attempt=event.attempt,
            created_at=now,
            updated_at=now,
        )

    def _new_thread(self, schedule: Schedule, now: datetime) -> Thread:
        thread_id = new_id()
        return Thread(
            thread_id=thread_id,
            tenant_id=schedule.tenant_id,
            user_id=schedule.user_id,
            metadata={
                "graph_id": schedule.graph_id,
                "assistant_id": schedule.assistant_id,
                **schedule.metadata,
                "cron_id": schedule.id,
            },
            status=ThreadStatus.BUSY,
            created_at=now,
            updated_at=now,
        )

    def _thread_after(
        self,
        schedule: Schedule,
        thread: Thread,
        values: JSONObject | None,
        status: RunStatus,
        now: datetime,
    ) -> Thread:
        """The thread after the run: the agent's new state, or — when the run produced
        none (error, timeout, budget) — the previous state plus the run's input
        messages, as a LangGraph thread keeps the input of a failed run."""
        update: dict[str, Any] = {
            "status": ThreadStatus.IDLE if status is RunStatus.SUCCESS else ThreadStatus.ERROR,
            "updated_at": now,
            "version": thread.version + 1,
        }
        if values is None:
            added = [m.as_json() for m in input_messages(schedule.input)]
            if added:
                previous = thread.values or {}
                kept = previous.get("messages")
                history = kept if isinstance(kept, list) else []
                values = {**previous, "messages": [*history, *added]}
        if values is not None:
            update["values"] = bounded_state(values)
            update["state_updated_at"] = now
        if schedule.is_stateless and self.settings.kept_thread_ttl_hours > 0:
            update["expires_at"] = now + timedelta(hours=self.settings.kept_thread_ttl_hours)
        return thread.model_copy(update=update)

    def _disable_entries(self, schedule: Schedule) -> None:
        """Bring the entries in line with the record the finish transaction paused.

        ``schedule`` is the record as this fire read it (its entries were enabled);
        converging re-reads it and writes what it now says — disabled, unless the user
        resumed it meanwhile, in which case the resume's own write stands.
        """
        try:
            self._entries.converge(schedule)
        except Exception:
            # The record is PAUSED, so any fire meanwhile is recorded as skipped; the
            # reconciler disables the entries later.
            log.exception("could not disable the Scheduler entries of %s", schedule.id)


class RunService:
    """Run history and run-now, for the façades."""

    def __init__(
        self,
        *,
        schedules: DynamoDBScheduleStore,
        runs: DynamoDBRunStore,
        invoker: Callable[[], RunInvoker],
        clock: Clock,
    ) -> None:
        self._schedules = schedules
        self._runs = runs
        self._invoker = invoker
        self._clock = clock

    def history(
        self, principal: Principal, schedule_id: str, *, offset: int, limit: int
    ) -> tuple[Schedule, list[Run]]:
        schedule = self._schedules.get(principal, schedule_id)
        runs = self._runs.list_for_schedule(principal, schedule.id, offset=offset, limit=limit)
        return schedule, runs

    def trigger_now(self, principal: Principal, schedule_id: str) -> str:
        """Start a manual run asynchronously; returns its run id.

        A schedule the user paused may still be run now (a deliberate test run); one the
        system paused (``paused_by = system``: budget exceeded or overrun) may not —
        :class:`SchedulePausedBySystemError` — until the user resumes it. The trigger's
        claim re-checks this in its own condition, so a pause landing between this
        check and the run still holds.

        Raises:
            SchedulePausedBySystemError: the schedule is paused by the system.
        """
        schedule = self._schedules.get(principal, schedule_id)
        if schedule is None:  # pragma: no cover - get raises
            raise ScheduleNotFoundError(schedule_id)
        if schedule.status is ScheduleStatus.PAUSED and schedule.paused_by is PausedBy.SYSTEM:
            raise SchedulePausedBySystemError(schedule.id, schedule.pause_reason)
        run_id = new_id()
        event = TriggerEvent(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            schedule_id=schedule.id,
            scheduled_time=self._clock.now(),
            trigger=RunTrigger.MANUAL,
            run_id=run_id,
        )
        self._invoker().invoke(event.model_dump(mode="json"))
        return run_id


def failure_streak(schedule: Schedule, status: RunStatus) -> tuple[FailureStreak | None, int]:
    """How ``status`` moves the schedule's consecutive-failure count, and the count after.

    ``error`` and ``timeout`` extend it, ``success`` resets it; ``budget_exceeded`` (which
    has its own pause) leaves it alone. The count after is computed from the record as
    this fire read it; the store adds atomically, so the stored count is exact even when
    overlapping runs (``allow``) finish together — only the pause decision may then
    come one failure late.
    """
    if status in (RunStatus.ERROR, RunStatus.TIMEOUT):
        return FailureStreak.EXTEND, schedule.consecutive_failures + 1
    if status is RunStatus.SUCCESS:
        return FailureStreak.RESET, 0
    return None, schedule.consecutive_failures


def _pauses_after_failures(schedule: Schedule, failures: int) -> bool:
    threshold = schedule.pause_after_failures
    return threshold > 0 and failures >= threshold and schedule.status is ScheduleStatus.ACTIVE


def pause_payload(
    schedule: Schedule, reason: PauseReason, run: Run, failures: int
) -> dict[str, Any]:
    """The ``schedule.paused`` event: which schedule, why, and the run that tipped it."""
    return {
        "event": "schedule.paused",
        "schedule_id": schedule.id,
        "schedule_name": schedule.name,
        "paused_by": "system",
        "pause_reason": reason.value,
        "consecutive_failures": failures,
        "paused_at": None if run.completed_at is None else run.completed_at.isoformat(),
        "run_id": run.run_id,
        "run_status": run.status.value,
        "error_message": run.error_message,
    }


def webhook_payload(schedule: Schedule, run: Run) -> dict[str, Any]:
    return {
        "event": "run.completed",
        "schedule_id": schedule.id,
        "schedule_name": schedule.name,
        "run_id": run.run_id,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "scheduled_time": run.scheduled_time.isoformat(),
        "started_at": None if run.started_at is None else run.started_at.isoformat(),
        "completed_at": None if run.completed_at is None else run.completed_at.isoformat(),
        "result": run.result,
        "error_message": run.error_message,
        "model_used": run.model_used,
        "provider": run.provider,
        "input_tokens": run.usage.input_tokens,
        "output_tokens": run.usage.output_tokens,
        "total_tokens": run.usage.total_tokens,
        "total_cost_usd": float(run.usage.cost_usd),
        "thread_id": run.thread_id,
        "attempts": run.call_attempts,
    }
