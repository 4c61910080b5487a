"""Property: a run's recorded spend never exceeds its budget — unless a provider reported
more than a call's bound, and then the run is flagged, the schedule paused, and the
overshoot is at most that one call's.

Hypothesis draws random agents — how many model calls, each call's model, prompt and
output bound, and how it ends (usage below / at / above its reservation, a provider
error proven unbilled, an ambiguous billed error, a deadline cut), whether the agent
swallows the meter's refusals and carries on — a random budget,
``AUTO_PAUSE_ON_BUDGET_EXCEEDED`` and the schedule's attempts per call (an unbilled
error is transient, so it is retried, each attempt reserving and booked by the rule).
Each example is one fire of a fresh schedule through the real :class:`RunExecutor`
(claim, meter, finish, pause) against moto; the agent is a scripted implementation of
the Agent protocol whose every call goes through ``RunContext.model_call``, the path
every built-in agent takes.

Checked per example: the recorded cost equals what the booking rule says (reported
usage; 0 for an unbilled error; the reservation for an ambiguous ending); spend ≤ budget
without an over-report; with one, ``budget_exceeded``, paused by the system with
``budget_overrun``, no call after it, and spend ≤ budget + that call's overshoot.
Derandomised, so the examples are the same on every run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from chalicelib.agents.base import (
    AgentResult,
    BudgetExceeded,
    CallUsage,
    ModelPrice,
    ProviderError,
    RunContext,
)
from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from chalicelib.services.runs import RunExecutor, TriggerEvent
from tests.functional.test_runaway_agents import OneAgent
from tests.functional.test_trigger import NINE, history, make, reload
from tests.helpers import scheduled_event

EXAMPLES = 60
PRICES = sorted(load_prices(DEFAULT_PRICES_FILE, None).values(), key=lambda p: p.model)
ENDINGS = ("below", "at", "above", "unbilled", "billed", "deadline")


class FakeTime:
    """The run's monotonic clock: it moves only when the run sleeps (a retry's backoff)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Call:
    price: ModelPrice
    prompt_tokens: int
    max_output_tokens: int
    ending: str
    seen_input: int
    seen_output: int
    extra_output: int


@dataclass
class ScriptedAgent:
    """Makes its calls in order through ``ctx.model_call``; records what each one booked."""

    calls: list[Call]
    swallow: bool
    graph_id: str = "agent"
    made: list[tuple[Call, Decimal]] = field(default_factory=list)
    """(call, what the booking rule says it costs) for each call the meter let through."""

    def invoke(self, input: Any, state: Any, ctx: RunContext) -> AgentResult:
        for call in self.calls:
            try:
                ctx.model_call(
                    call.price,
                    prompt_tokens=call.prompt_tokens,
                    max_output_tokens=call.max_output_tokens,
                    call=lambda timeout, call=call: self._answer(call),  # type: ignore[misc]
                )
            except (BudgetExceeded, ProviderError):
                if not self.swallow:
                    raise
        return AgentResult(output="done", values={})

    def _answer(self, call: Call) -> tuple[str, CallUsage]:
        reserved = call.price.cost(call.prompt_tokens, call.max_output_tokens)
        if call.ending == "unbilled":
            self.made.append((call, Decimal(0)))
            raise ProviderError("HTTP 503", billed=False, transient=True)
        if call.ending == "billed":
            self.made.append((call, reserved))
            raise ProviderError("connection lost mid-response", billed=True)
        if call.ending == "deadline":
            self.made.append((call, reserved))
            raise TimeoutError("cut by the deadline")
        if call.ending == "at":
            usage = CallUsage(call.prompt_tokens, call.max_output_tokens)
        elif call.ending == "above":
            usage = CallUsage(call.prompt_tokens, call.max_output_tokens + call.extra_output)
        else:
            usage = CallUsage(
                min(call.seen_input, call.prompt_tokens),
                min(call.seen_output, call.max_output_tokens),
            )
        self.made.append((call, call.price.cost(usage.input_tokens, usage.output_tokens)))
        return "ok", usage


calls = st.builds(
    Call,
    price=st.sampled_from(PRICES),
    prompt_tokens=st.integers(1, 4_000),
    max_output_tokens=st.integers(1, 4_000),
    ending=st.sampled_from(ENDINGS),
    seen_input=st.integers(0, 4_000),
    seen_output=st.integers(0, 4_000),
    extra_output=st.integers(1, 200_000),
)
budgets = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal("0.2"), places=4, allow_nan=False
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"SCHEDULE_MIN_INTERVAL_MINS": 1, "SCHEDULE_MAX_PER_USER": 10_000}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
@given(
    plan=st.lists(calls, min_size=1, max_size=6),
    budget=budgets,
    swallow=st.booleans(),
    auto_pause=st.booleans(),
    attempts=st.integers(1, 3),
    over_report_at=st.one_of(st.none(), st.integers(0, 5)),
)
def test_spend_stays_within_the_budget_unless_a_provider_over_reports(
    container: Any,
    clock: Any,
    plan: list[Call],
    budget: Decimal,
    swallow: bool,
    auto_pause: bool,
    attempts: int,
    over_report_at: int | None,
) -> None:
    # Over-reports are the exception the property is about: make them common rather
    # than leave their share to the draw of six endings.
    if over_report_at is not None and over_report_at < len(plan):
        plan[over_report_at] = dataclasses.replace(plan[over_report_at], ending="above")
    agent = ScriptedAgent(plan, swallow)
    time = FakeTime()
    wired = container.run_executor
    executor = RunExecutor(
        runs=container.run_store,
        threads=container.thread_store,
        entries=container.schedule_service.sync,
        agents=OneAgent(container.agent_catalog, agent),
        webhooks=container.webhooks,
        clock=clock,
        settings=dataclasses.replace(wired.settings, auto_pause_on_budget_exceeded=auto_pause),
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    # Transient (unbilled) errors are retried up to ``attempts`` times per call, each
    # attempt reserving and booking by the same rule; backoffs pass on the fake clock.
    sched = make(container, max_budget_per_run_usd=budget, max_attempts_per_call=attempts)
    clock.set(NINE + timedelta(seconds=1))
    fire = TriggerEvent.model_validate(scheduled_event(container, sched.id, NINE))
    summary = executor.execute(fire, lambda: 900_000)

    [run] = history(container, sched.id)
    after = reload(container, sched.id)
    spent = run.usage.cost_usd
    # What was booked is exactly what the rule says each call that was made costs.
    assert spent == sum((cost for _, cost in agent.made), Decimal(0))
    overruns = [
        (call, cost)
        for call, cost in agent.made
        if cost > call.price.cost(call.prompt_tokens, call.max_output_tokens)
    ]
    event(f"status {summary.status.value}")
    event("over-report" if overruns else "no over-report")
    if not overruns:
        assert spent <= budget
        if summary.status.value == "budget_exceeded" and auto_pause:
            assert after.pause_reason == "budget_exceeded"
        return
    # An over-report: it was the last call made, flagged, and the schedule paused.
    first, charged = overruns[0]
    assert agent.made[-1][0] is first
    assert summary.status.value == "budget_exceeded"
    assert (after.status.value, after.pause_reason, after.paused_by.value) == (
        "PAUSED",
        "budget_overrun",
        "system",
    )
    overshoot = charged - first.price.cost(first.prompt_tokens, first.max_output_tokens)
    assert spent <= budget + overshoot
