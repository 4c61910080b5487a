"""The offline demo agent: deterministic answers, real metering, and its test knobs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chalicelib.agents.base import (
    AgentError,
    BudgetExceeded,
    DeadlineExceeded,
    ModelPrice,
    prompt_token_bound,
)
from chalicelib.agents.demo import DemoAgent, demo_tokens
from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from tests.fixtures.run_context import FakeClock, make_context

PRICES = load_prices(DEFAULT_PRICES_FILE, None)
DEMO_PRICE: ModelPrice = PRICES["demo-1"]
MAX_TOKENS = 512


def agent(system: str | None = None) -> DemoAgent:
    return DemoAgent(graph_id="demo", price=DEMO_PRICE, max_tokens=MAX_TOKENS, system=system)


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def worst_case(*texts: str) -> Decimal:
    return DEMO_PRICE.cost(prompt_token_bound(*texts), MAX_TOKENS)


def test_answers_the_last_user_message_and_reports_usage_and_cost() -> None:
    # Given a LangGraph-style input
    ctx = make_context()
    query = "What changed in the AWS Lambda runtime this week?"
    # When the demo agent runs
    result = agent().invoke(user(query), None, ctx)
    # Then the answer is derived from the query, and usage/cost follow the demo's rules
    assert result.output.startswith(f"Demo answer to: {query} (9 words, 0 earlier messages")
    assert result.values == {
        "messages": [
            {"role": "user", "content": query},
            {"role": "assistant", "content": result.output},
        ]
    }
    usage = ctx.budget.usage()
    assert usage.input_tokens == demo_tokens(query) + 3
    assert usage.output_tokens == demo_tokens(result.output)
    assert usage.cost_usd == DEMO_PRICE.cost(usage.input_tokens, usage.output_tokens) > 0
    assert ctx.budget.reserved_usd == 0 and ctx.budget.calls == 1
    assert ctx.models_used == [DEMO_PRICE]


def test_is_deterministic() -> None:
    first = agent().invoke(user("same question"), None, make_context())
    second = agent().invoke(user("same question"), None, make_context())
    assert first == second


def test_thread_state_accumulates_across_runs() -> None:
    # Given a first run on a thread
    first = agent().invoke(user("first question"), None, make_context())
    # When a second run gets the thread's values
    ctx = make_context()
    second = agent().invoke(user("second question"), first.values, ctx)
    # Then the conversation grows and the prompt includes the history
    assert [m["content"] for m in second.values["messages"]] == [
        "first question",
        first.output,
        "second question",
        second.output,
    ]
    assert "2 earlier messages in the thread" in second.output
    assert ctx.budget.input_tokens == sum(
        demo_tokens(t) + 3 for t in ("first question", first.output, "second question")
    )


def test_non_message_input_uses_compact_json_and_system_prompt_counts() -> None:
    ctx = make_context()
    result = agent(system="Be terse.").invoke({"topic": "news", "limit": 3}, None, ctx)
    assert result.output.startswith('Demo answer to: {"limit":3,"topic":"news"}')
    assert (
        ctx.budget.input_tokens
        == demo_tokens("Be terse.") + 3 + demo_tokens('{"limit":3,"topic":"news"}') + 3
    )
    # The system prompt is configuration, not conversation: it is not stored in the thread.
    assert [m["role"] for m in result.values["messages"]] == ["user", "assistant"]


def test_keeps_other_state_keys() -> None:
    result = agent().invoke(user("q"), {"messages": [], "notes": {"k": 1}}, make_context())
    assert result.values["notes"] == {"k": 1}


def test_budget_too_small_for_the_worst_case_refuses_before_the_call() -> None:
    # Given a budget below one call's worst case, and a call that would sleep
    clock = FakeClock()
    ctx = make_context(
        budget=worst_case("q") - Decimal("0.000001"),
        clock=clock,
        context={"demo_sleep_seconds": 1},
    )
    # When the agent runs / Then the call is refused before it starts
    with pytest.raises(BudgetExceeded):
        agent().invoke(user("q"), None, ctx)
    assert clock.sleeps == []  # the "provider" never saw the request
    assert ctx.budget.calls == 0 and ctx.budget.spent_usd == 0


@pytest.mark.parametrize("budget", ["0.0011", "0.002", "0.003", "0.0047"])
def test_spend_never_exceeds_the_budget_over_many_calls(budget: str) -> None:
    # Given an agent loop of 20 calls whose reservations grow
    ctx = make_context(budget=budget, context={"demo_model_calls": 20})
    # When it runs out of budget
    with pytest.raises(BudgetExceeded):
        agent().invoke(user("plan my week"), None, ctx)
    # Then it stopped before overspending, having made at least one call
    assert 0 < ctx.budget.calls < 20
    assert ctx.budget.spent_usd <= Decimal(budget)
    assert ctx.budget.reserved_usd == 0


def test_several_calls_within_budget_are_all_settled() -> None:
    ctx = make_context(context={"demo_model_calls": 3})
    result = agent().invoke(user("three steps"), None, ctx)
    assert ctx.budget.calls == 3
    assert "step 3/3" in result.output
    assert len(result.values["messages"]) == 2  # intermediate steps are not stored


def test_sleep_never_passes_the_deadline() -> None:
    # Given 4 s per call, 5 calls and a 10 s deadline on a fake clock
    clock = FakeClock()
    ctx = make_context(
        clock=clock, timeout=10, context={"demo_sleep_seconds": 4, "demo_model_calls": 5}
    )
    deadline = ctx.deadline
    # When the agent runs
    with pytest.raises(DeadlineExceeded):
        agent().invoke(user("slow"), None, ctx)
    # Then the third call slept only until the deadline and no fourth call started
    assert clock.sleeps == [4, 4, 2]
    assert clock.now == deadline
    assert ctx.budget.calls == 3  # two settled, the cut one booked at its worst case
    assert ctx.budget.spent_usd <= ctx.budget.limit_usd


def test_no_call_starts_after_the_deadline() -> None:
    clock = FakeClock()
    ctx = make_context(clock=clock, timeout=5, context={"demo_sleep_seconds": 1})
    clock.advance(5)
    with pytest.raises(DeadlineExceeded):
        agent().invoke(user("late"), None, ctx)
    assert clock.sleeps == [] and ctx.budget.calls == 0 and ctx.budget.spent_usd == 0


def test_forced_output_tokens_are_capped_at_max_tokens() -> None:
    ctx = make_context(context={"demo_output_tokens": 100, "demo_model_calls": 2})
    agent().invoke(user("q"), None, ctx)
    assert ctx.budget.output_tokens == 200

    capped = make_context(context={"demo_output_tokens": 10_000})
    agent().invoke(user("q"), None, capped)
    assert capped.budget.output_tokens == MAX_TOKENS


def test_demo_fail_is_an_agent_error_booked_at_worst_case() -> None:
    ctx = make_context(context={"demo_fail": "provider exploded"})
    with pytest.raises(AgentError, match="provider exploded"):
        agent().invoke(user("q"), None, ctx)
    assert ctx.budget.spent_usd == worst_case("q")
    assert ctx.budget.calls == 1


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"demo_sleep_seconds": -1}, "demo_sleep_seconds"),
        ({"demo_sleep_seconds": "5"}, "demo_sleep_seconds"),
        ({"demo_model_calls": 0}, "demo_model_calls"),
        ({"demo_model_calls": 101}, "demo_model_calls"),
        ({"demo_model_calls": 2.5}, "demo_model_calls"),
        ({"demo_output_tokens": -3}, "demo_output_tokens"),
        ({"demo_output_tokens": True}, "demo_output_tokens"),
        ({"demo_fail": ""}, "demo_fail"),
    ],
)
def test_invalid_knobs_are_agent_errors(knobs: dict[str, Any], message: str) -> None:
    ctx = make_context(context=knobs)
    with pytest.raises(AgentError, match=message):
        agent().invoke(user("q"), None, ctx)
    assert ctx.budget.calls == 0


@pytest.mark.parametrize("text", ["", "ascii words", "日本語のテキスト", "emoji 🎉🎉🎉 " * 20])
def test_reported_input_tokens_fit_the_reservation_bound(text: str) -> None:
    ctx = make_context()
    agent().invoke(user(text), None, ctx)
    assert ctx.budget.input_tokens <= prompt_token_bound(text)
