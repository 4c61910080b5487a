"""A long run's heartbeat: its spend so far is recorded, and a dead trigger is noticed early.

The agent is a test double of the Agent protocol that reserves and settles model calls
through its real :class:`RunContext` and waits for heartbeats (counted by a botocore hook
on the real client) between steps; the run goes through the real trigger handler and
``RunExecutor`` on moto, the stuck run through the real reconciler. Heartbeats run every
0.05 s (the executor's own setting; deployments allow 10 s or more), so a test waits a
fraction of a second; the wall clock is the fixed test clock.

A *killed* trigger is simulated without touching our code: the agent raises
``SystemExit`` asynchronously in the thread running the trigger (``interrupt`` — what
a runtime crash does to the handler), so the handler unwinds without its finish and
its heartbeats stop, leaving the run ``running`` with an unsettled reservation, exactly
as a Lambda killed mid-call leaves it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.agents.base import AgentResult, DeadlineExceeded, ModelPrice, interrupt
from chalicelib.domain.errors import ConfigurationError
from chalicelib.domain.models import Principal, Run, user_message_input
from chalicelib.services.reconciler import Reconciler, ReconcileReport
from chalicelib.services.runs import ENDED_ELSEWHERE, MISSED_HEARTBEATS, RunExecutor, stuck_after
from chalicelib.services.schedules import ScheduleDraft
from chalicelib.settings import Settings
from tests.functional.test_runaway_agents import OneAgent
from tests.helpers import AwsCalls, scheduled_event

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
BEAT = 0.05
PRICE = ModelPrice("demo-1", "demo", Decimal("1"), Decimal("2"))
FIRST = PRICE.cost(1000, 500)  # call 1, settled at its reported usage
RESERVED = PRICE.cost(2000, 1000)  # call 2's worst case, in flight
SECOND = PRICE.cost(1500, 300)  # call 2's reported usage, once settled


class Beats:
    """Counts the run store's heartbeat writes (UpdateItem) as they complete."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        self.failed = 0
        self._changed = threading.Condition()
        client.meta.events.register("after-call.dynamodb.UpdateItem", self._seen)

    def _seen(self, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        with self._changed:
            self.count += 1
            if parsed is not None and "Error" in parsed:
                self.failed += 1
            self._changed.notify_all()

    def wait(self, more: int = 2, timeout: float = 10.0) -> None:
        """Until ``more`` heartbeats completed from now: the last one started after now."""
        with self._changed:
            target = self.count + more
            assert self._changed.wait_for(lambda: self.count >= target, timeout), "no heartbeat"


class Stepper:
    """An agent that runs ``steps`` (callables taking its context) and answers "done"."""

    graph_id = "agent"

    def __init__(self, *steps: Callable[[Any], None]) -> None:
        self.steps = steps
        self.error: BaseException | None = None

    def invoke(self, input: Any, state: Any, ctx: Any) -> AgentResult:
        try:
            for step in self.steps:
                step(ctx)
        except BaseException as exc:
            self.error = exc
            raise
        return AgentResult(output="done", values={"messages": []})


def executor(container: Any, agent: Any) -> RunExecutor:
    wired = container.run_executor
    return RunExecutor(
        runs=container.run_store,
        threads=container.thread_store,
        entries=container.schedule_service.sync,
        agents=OneAgent(container.agent_catalog, agent),
        webhooks=container.webhooks,
        clock=container.clock,
        # Below the deployable floor (10 s), so that a test waits a fraction of a second.
        settings=replace(wired.settings, heartbeat_seconds=BEAT),
    )


def make(container: Any) -> Any:
    return container.schedule_service.create(
        ALICE,
        ScheduleDraft(
            name="long",
            cron_expression="0 9 * * *",
            timezone="UTC",
            input=user_message_input("go"),
            timeout_seconds=600,
        ),
    )


def fire(container: Any, agent: Any, sched: Any) -> dict[str, Any]:
    """The trigger's body, as the Lambda runtime calls it, running ``agent``."""
    event = scheduled_event(container, sched.id, NINE)
    return executor(container, agent).handle(event, lambda: 900_000)


def the_run(container: Any, sched: Any) -> Run:
    [run] = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=5)
    return run


def test_a_long_run_reports_growing_spend_in_its_heartbeats(container: Any, clock: Any) -> None:
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    beats = Beats(container.dynamodb)
    seen: list[Run] = []

    def call_one(ctx: Any) -> None:
        ctx.budget.settle(ctx.begin_call(PRICE, 1000, 500), 1000, 500)

    def look(ctx: Any) -> None:
        beats.wait()
        seen.append(the_run(container, sched))

    box: dict[str, Any] = {}

    def reserve_two(ctx: Any) -> None:
        box["call"] = ctx.begin_call(PRICE, 2000, 1000)

    def settle_two(ctx: Any) -> None:
        ctx.budget.settle(box["call"], 1500, 300)

    agent = Stepper(look, call_one, look, reserve_two, look, settle_two, look)
    result = fire(container, agent, sched)

    assert result["status"] == "success"
    assert [r.status.value for r in seen] == ["running"] * 4
    assert all(r.heartbeat_at == NINE + timedelta(seconds=1) for r in seen)
    costs = [r.usage.cost_usd for r in seen]
    # Nothing yet; call 1 settled; + call 2's reservation in flight; call 2 settled.
    assert costs == [0, FIRST, FIRST + RESERVED, FIRST + SECOND]
    assert [r.usage.input_tokens for r in seen] == [0, 1000, 1000, 2500]
    # Each heartbeat moves the instant the run counts as stuck: 3 intervals ahead.
    assert seen[-1].stuck_after == NINE + timedelta(seconds=1 + MISSED_HEARTBEATS * BEAT)
    final = the_run(container, sched)
    assert (final.status.value, final.usage.cost_usd) == ("success", FIRST + SECOND)
    assert final.heartbeat_at is None and final.stuck_after is None
    assert beats.failed == 0


def test_a_run_shorter_than_one_interval_writes_no_heartbeat(container: Any, clock: Any) -> None:
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    event = scheduled_event(container, sched.id, NINE)
    calls = AwsCalls(container.dynamodb, container.scheduler)
    with calls.counting() as counted:
        result = container.trigger_handler(event, lambda: 900_000)
    assert result["status"] == "success"
    assert counted == {"dynamodb.BatchGetItem": 1, "dynamodb.TransactWriteItems": 2}


def test_a_killed_trigger_is_ended_after_three_missed_heartbeats_with_its_reserved_cost(
    container: Any, clock: Any
) -> None:
    sched = make(container)
    started = NINE + timedelta(seconds=1)
    clock.set(started)
    beats = Beats(container.dynamodb)
    trigger = threading.current_thread()

    def call_one(ctx: Any) -> None:
        ctx.budget.settle(ctx.begin_call(PRICE, 1000, 500), 1000, 500)

    def in_flight(ctx: Any) -> None:
        ctx.begin_call(PRICE, 2000, 1000)  # never settled: the trigger dies during it
        beats.wait()

    def crash(ctx: Any) -> None:
        # The trigger's thread dies as soon as it runs Python again (this agent returns).
        assert interrupt(trigger, SystemExit)

    with pytest.raises(SystemExit):
        fire(container, Stepper(call_one, in_flight, crash), sched)
    written = beats.count

    left = the_run(container, sched)
    assert left.status.value == "running"
    assert left.usage.cost_usd == FIRST + RESERVED
    # The heartbeats stopped with the trigger.
    threading.Event().wait(4 * BEAT)
    assert beats.count == written

    # Within 3 intervals of the last heartbeat the run is left alone…
    assert container.reconciler.run().stuck_runs_ended == 0
    # … after them it is ended — not 600 s (deadline) + 120 s (grace) later.
    clock.set(started + timedelta(seconds=MISSED_HEARTBEATS * BEAT + 0.01))
    report = container.reconciler.run()
    assert report.stuck_runs_ended == 1 and report.errors == []
    ended = the_run(container, sched)
    assert ended.status.value == "error"
    assert "stopped reporting" in (ended.error_message or "")
    # Booked at what the trigger had reported: call 1 + call 2 at its reservation, not $0.
    assert ended.usage.cost_usd == FIRST + RESERVED
    assert ended.usage.cost_usd <= sched.max_budget_per_run_usd
    assert (ended.usage.input_tokens, ended.usage.output_tokens) == (1000, 500)
    after = container.schedule_store.get(ALICE, sched.id)
    assert (after.total_runs, after.failed_runs, after.consecutive_failures) == (1, 1, 1)
    assert after.running is None  # the next fire is not blocked
    assert container.thread_store.list_for_user(ALICE) == []
    assert container.reconciler.run().stuck_runs_ended == 0


def test_the_reconciler_ending_a_live_run_stops_its_spending_and_wins_alone(
    container: Any, clock: Any
) -> None:
    """Heartbeats that do not land for 3 intervals make a live trigger look dead: the
    reconciler's record stands, the trigger's next heartbeat learns it and the agent can
    start no further call; the trigger's own finish then changes nothing."""
    sched = make(container)
    started = NINE + timedelta(seconds=1)
    clock.set(started)
    beats = Beats(container.dynamodb)
    refused: list[BaseException] = []

    def reserve(ctx: Any) -> None:
        ctx.begin_call(PRICE, 2000, 1000)
        beats.wait()

    def sweep(ctx: Any) -> None:
        clock.set(started + timedelta(seconds=1))
        assert container.reconciler.run().stuck_runs_ended == 1

    def try_again(ctx: Any) -> None:
        assert ctx.cancelled.wait(10), "the heartbeat did not notice"
        try:
            ctx.begin_call(PRICE, 10, 10)
        except DeadlineExceeded as exc:
            refused.append(exc)

    result = fire(container, Stepper(reserve, sweep, try_again), sched)

    assert refused, "a model call started after the run was ended"
    assert result["reason"] == ENDED_ELSEWHERE
    [only] = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=5)
    assert (only.status.value, only.usage.cost_usd) == ("error", RESERVED)
    after = container.schedule_store.get(ALICE, sched.id)
    assert (after.total_runs, after.successful_runs, after.failed_runs) == (1, 0, 1)
    assert after.history_count == 1 and after.running is None


def test_a_slow_finish_keeps_beating(container: Any, clock: Any) -> None:
    """Heartbeats go on while the finish transaction is written (here: held until two
    more beats landed), so a finish slowed by retries never looks like a dead trigger."""
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    beats = Beats(container.dynamodb)
    transactions: list[int] = []

    def slow_finish(**_: Any) -> None:
        transactions.append(1)
        if len(transactions) == 2:  # claim, then the finish
            beats.wait()

    container.dynamodb.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", slow_finish, unique_id="slow-finish"
    )
    try:
        assert fire(container, Stepper(), sched)["status"] == "success"
    finally:
        container.dynamodb.meta.events.unregister(
            "before-call.dynamodb.TransactWriteItems", unique_id="slow-finish"
        )
    # (A beat landing after the finish fails its condition, quietly: the run is over.)
    assert beats.count >= 2
    assert the_run(container, sched).status.value == "success"


class StaleRuns:
    """The run store, except that ``stuck`` answers what it found at one earlier moment:
    a reconciler whose Query ran just before the trigger's finish landed."""

    def __init__(self, inner: Any, snapshot: list[Run]) -> None:
        self._inner, self._snapshot = inner, snapshot

    def stuck(self, now: datetime, *, limit: int) -> list[Run]:
        return list(self._snapshot)

    def finish(self, request: Any) -> bool:
        return bool(self._inner.finish(request))


def test_a_trigger_finishing_first_keeps_its_record_against_a_late_reconciler(
    container: Any, clock: Any
) -> None:
    sched = make(container)
    started = NINE + timedelta(seconds=1)
    clock.set(started)
    beats = Beats(container.dynamodb)
    snapshot: list[Run] = []

    def seen_as_stuck(ctx: Any) -> None:
        ctx.budget.settle(ctx.begin_call(PRICE, 1000, 500), 1000, 500)
        beats.wait()
        snapshot.extend(container.run_store.stuck(started + timedelta(seconds=1), limit=10))

    assert fire(container, Stepper(seen_as_stuck), sched)["status"] == "success"
    assert [r.status.value for r in snapshot] == ["running"]
    late = Reconciler(
        schedules=container.schedule_store,
        runs=StaleRuns(container.run_store, snapshot),  # type: ignore[arg-type]
        scheduler=container.scheduler_gateway,
        sync=container.schedule_service.sync,
        clock=clock,
    )
    clock.set(started + timedelta(seconds=1))
    report = ReconcileReport()
    late.end_stuck_runs(report)
    assert (report.stuck_runs_ended, report.errors) == (0, [])
    [only] = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=5)
    assert (only.status.value, only.usage.cost_usd) == ("success", FIRST)
    after = container.schedule_store.get(ALICE, sched.id)
    assert (after.total_runs, after.successful_runs, after.failed_runs) == (1, 1, 0)


def test_heartbeats_are_off_or_at_least_ten_seconds_apart(settings: Any) -> None:
    assert settings.HEARTBEAT_SECONDS == 30
    accepted = [Settings.from_environ({"HEARTBEAT_SECONDS": v}) for v in ("0", "10", "300")]
    assert [s.HEARTBEAT_SECONDS for s in accepted] == [0, 10, 300]
    for value in ("0.5", "9", "301", "-1"):
        with pytest.raises(ConfigurationError, match="HEARTBEAT_SECONDS"):
            Settings.from_environ({"HEARTBEAT_SECONDS": value})


def test_stuck_after_is_capped_by_the_deadline_and_grace() -> None:
    latest = NINE + timedelta(seconds=60)
    assert stuck_after(NINE, 30, latest) == latest
    assert stuck_after(NINE, 10, latest) == NINE + timedelta(seconds=30)
    assert stuck_after(NINE, 0, latest) == latest  # heartbeats off: deadline + grace
    # The claim's: one more interval, for the cap read and the claim before the first beat.
    assert stuck_after(NINE, 10, latest, setup=True) == NINE + timedelta(seconds=40)
    assert stuck_after(NINE, 30, latest, setup=True) == latest


class SlowBuild(OneAgent):
    """The catalog, except that building the agent (cold imports, a key read) takes 2.5
    heartbeat intervals on the clock and lasts until a heartbeat has landed."""

    def __init__(self, inner: Any, agent: Any, clock: Any, beats: Beats, start: datetime):
        super().__init__(inner, agent)
        self._clock, self._beats, self._start = clock, beats, start

    def agent(self, graph_id: str) -> Any:
        self._clock.set(self._start + timedelta(seconds=2.5 * BEAT))
        self._beats.wait(more=1, timeout=2.0)  # the heartbeat already runs
        return super().agent(graph_id)


def test_a_slow_agent_build_before_the_first_beat_is_not_taken_for_dead(
    container: Any, clock: Any
) -> None:
    sched = make(container)
    started = NINE + timedelta(seconds=1)
    clock.set(started)
    beats = Beats(container.dynamodb)
    ended: list[int] = []

    def step(_ctx: Any) -> None:
        clock.set(started + timedelta(seconds=3.1 * BEAT))  # the agent runs: alive
        ended.append(container.reconciler.run().stuck_runs_ended)

    executor = RunExecutor(
        runs=container.run_store,
        threads=container.thread_store,
        entries=container.schedule_service.sync,
        agents=SlowBuild(container.agent_catalog, Stepper(step), clock, beats, started),
        webhooks=container.webhooks,
        clock=container.clock,
        settings=replace(container.run_executor.settings, heartbeat_seconds=BEAT),
    )
    result = executor.handle(scheduled_event(container, sched.id, NINE), lambda: 900_000)

    assert ended == [0]
    assert result["status"] == "success"
    assert the_run(container, sched).status.value == "success"


def test_a_stale_stuck_index_does_not_end_a_run_that_beat_since(container: Any, clock: Any) -> None:
    # gsi2 is eventually consistent: the reconciler's Query may see the run's old
    # stuck_after after a heartbeat moved it. The terminal write is conditioned on the
    # key the Query saw, so the live run is skipped and finishes on its own.
    sched = make(container)
    started = NINE + timedelta(seconds=1)
    clock.set(started)
    beats = Beats(container.dynamodb)
    ended: list[int] = []

    def step(ctx: Any) -> None:
        ctx.begin_call(PRICE, 10, 10)
        beats.wait()
        later = started + timedelta(seconds=1)  # the run's stuck_after has passed
        snapshot = container.run_store.stuck(later, limit=10)
        assert [run.run_id for run in snapshot] == [the_run(container, sched).run_id]
        clock.set(later)
        beats.wait()  # a heartbeat lands after the Query: stuck_after is later + 1 interval
        late = Reconciler(
            schedules=container.schedule_store,
            runs=StaleRuns(container.run_store, snapshot),
            scheduler=container.scheduler_gateway,
            sync=container.schedule_service.sync,
            clock=clock,
        )
        report = ReconcileReport()
        late.end_stuck_runs(report)
        ended.append(report.stuck_runs_ended)

    result = fire(container, Stepper(step), sched)

    assert ended == [0]
    assert result["status"] == "success"
    run = the_run(container, sched)
    assert run.status.value == "success"
    assert container.schedule_store.get(ALICE, sched.id).total_runs == 1
