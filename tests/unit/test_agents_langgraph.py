"""The LangGraph agent: real small graphs, a scripted model provider, the real meter."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult

from chalicelib.agents.base import (
    AgentError,
    BudgetExceeded,
    BudgetOverrun,
    DeadlineExceeded,
    ModelPrice,
    prompt_token_bound,
)
from chalicelib.agents.langgraph_graph import LangGraphAgent, reported_usage, to_json_values
from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from chalicelib.agents.registry import AgentFactory, AssistantRegistry
from chalicelib.domain.errors import ConfigurationError
from tests.fixtures import graphs
from tests.fixtures.run_context import FakeClock, make_context
from tests.fixtures.sdk_errors import APIStatusError

PRICES = load_prices(DEFAULT_PRICES_FILE, None)
DEMO_PRICE: ModelPrice = PRICES["demo-1"]
MODEL_MAX_TOKENS = 64  # ScriptedChatModel.max_tokens


@pytest.fixture(autouse=True)
def _reset_models() -> Iterator[None]:
    graphs.reset()
    yield
    graphs.reset()


def make_agent(attribute: str, *, default_price: ModelPrice | None = DEMO_PRICE) -> LangGraphAgent:
    return LangGraphAgent(
        graph_id="mine",
        graph_ref=f"tests.fixtures.graphs:{attribute}",
        prices=PRICES,
        default_price=default_price,
    )


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def first_call_worst_case(text: str) -> Decimal:
    return DEMO_PRICE.cost(prompt_token_bound(text), MODEL_MAX_TOKENS)


def test_runs_the_graph_and_meters_its_model_call() -> None:
    # Given a one-node graph with one model call
    ctx = make_context(thread_id="t-1")
    # When the agent runs it
    result = make_agent("one_call_graph").invoke(user("Say hello"), None, ctx)
    # Then output, values and usage come from the graph and its model
    assert result.output == "Hello from the graph"
    assert result.values == {
        "messages": [
            {"role": "user", "content": "Say hello"},
            {"role": "assistant", "content": "Hello from the graph"},
        ]
    }
    assert (ctx.budget.input_tokens, ctx.budget.output_tokens) == (3, 7)  # ⌈9/4⌉ in, 7 out
    # "fake-model" has no price, so the assistant's model (demo-1) prices the call.
    assert ctx.budget.spent_usd == DEMO_PRICE.cost(3, 7)
    assert ctx.models_used == [DEMO_PRICE]
    assert ctx.budget.reserved_usd == 0 and ctx.budget.calls == 1


def test_a_priced_model_name_prices_its_own_calls() -> None:
    ctx = make_context()
    make_agent("priced_graph").invoke(user("hi"), None, ctx)
    assert ctx.models_used == [PRICES["gpt-4o-mini"]]
    assert ctx.budget.spent_usd == PRICES["gpt-4o-mini"].cost(1, 7)


def test_thread_id_and_configurable_reach_the_graph() -> None:
    ctx = make_context(thread_id="thread-9", config={"configurable": {"user_id": "u1"}})
    result = make_agent("config_graph").invoke(user("hi"), None, ctx)
    assert result.output == "recorded"
    (configurable,) = graphs.seen_configurable
    assert configurable["thread_id"] == "thread-9"
    assert configurable["user_id"] == "u1"


def test_thread_state_accumulates_through_the_graphs_reducer() -> None:
    agent = make_agent("one_call_graph")
    first = agent.invoke(user("first"), None, make_context())
    second = agent.invoke(user("second"), first.values, make_context())
    # The model saw the whole thread, and the thread grew by the new turn only.
    assert [m.content for m in graphs.one_call_model.requests[1]] == [
        "first",
        "Hello from the graph",
        "second",
    ]
    assert [m["content"] for m in second.values["messages"]] == [
        "first",
        "Hello from the graph",
        "second",
        "Hello from the graph",
    ]


def test_budget_allowing_only_the_first_call_stops_the_second() -> None:
    # Given a two-call graph and a budget equal to the first call's worst case
    budget = first_call_worst_case("Write a haiku")
    ctx = make_context(budget=budget)
    # When it runs
    with pytest.raises(BudgetExceeded):
        make_agent("two_call_graph").invoke(user("Write a haiku"), None, ctx)
    # Then the provider got exactly one request and spend stayed within the budget
    assert len(graphs.two_call_model.requests) == 1
    assert ctx.budget.calls == 1
    assert ctx.budget.spent_usd == DEMO_PRICE.cost(4, 7) <= budget
    assert ctx.budget.reserved_usd == 0


def test_budget_too_small_for_the_first_call_sends_nothing() -> None:
    ctx = make_context(budget=first_call_worst_case("hi") - Decimal("0.000001"))
    with pytest.raises(BudgetExceeded):
        make_agent("one_call_graph").invoke(user("hi"), None, ctx)
    assert graphs.one_call_model.requests == []
    assert ctx.budget.spent_usd == 0


@pytest.mark.parametrize("budget", ["0.00008", "0.00014", "0.0002", "0.0003"])
def test_spend_never_exceeds_the_budget(budget: str) -> None:
    ctx = make_context(budget=budget)
    with contextlib.suppress(BudgetExceeded):
        make_agent("two_call_graph").invoke(user("Write a haiku"), None, ctx)
    assert ctx.budget.spent_usd <= Decimal(budget)
    assert ctx.budget.calls == len(graphs.two_call_model.requests)


def test_a_refusal_the_graph_swallows_still_ends_the_run() -> None:
    # Given a careless graph that catches every model error and carries on
    ctx = make_context(budget=first_call_worst_case("hi"))
    with pytest.raises(BudgetExceeded):
        make_agent("swallowing_graph").invoke(user("hi"), None, ctx)
    assert len(graphs.swallow_model.requests) == 1


def test_no_model_call_starts_after_the_deadline() -> None:
    # Given a model whose first call takes the run past its deadline (fake clock)
    clock = FakeClock()
    ctx = make_context(clock=clock, timeout=5)
    graphs.two_call_model.before_call = lambda: clock.advance(6)
    # When the graph wants a second call / Then it is refused
    with pytest.raises(DeadlineExceeded):
        make_agent("two_call_graph").invoke(user("hi"), None, ctx)
    assert len(graphs.two_call_model.requests) == 1
    assert ctx.budget.calls == 1  # the first call, which started in time, is settled


def test_the_agent_returns_at_the_deadline_and_the_graph_cannot_spend_after() -> None:
    # Given a graph that calls, pauses 0.3 s in real time, then calls again
    ctx = make_context(real_clock=True, timeout=0.1)
    started = time.monotonic()
    # When the deadline passes during the pause
    with pytest.raises(DeadlineExceeded):
        make_agent("slow_graph").invoke(user("hi"), None, ctx)
    # Then the agent returned at the deadline, not when the graph finished ...
    assert time.monotonic() - started < graphs.SLOW_PAUSE_SECONDS
    spent = ctx.budget.spent_usd
    # ... and the graph, still running in its thread, was refused its second call.
    time.sleep(graphs.SLOW_PAUSE_SECONDS + 0.1)
    assert len(graphs.slow_model.requests) == 1
    assert ctx.budget.spent_usd == spent and ctx.budget.calls == 1


def test_unpriced_model_without_an_assistant_model_is_refused() -> None:
    ctx = make_context()
    with pytest.raises(AgentError, match="'fake-model', which has no price"):
        make_agent("one_call_graph", default_price=None).invoke(user("hi"), None, ctx)
    assert graphs.one_call_model.requests == []


def test_graph_failure_is_an_agent_error() -> None:
    with pytest.raises(AgentError, match="RuntimeError: the user's node is broken"):
        make_agent("broken_graph").invoke(user("hi"), None, make_context())


@pytest.mark.parametrize("attribute", ["uncompiled_builder", "make_graph", "checkpointed_graph"])
def test_loader_accepts_builders_factories_and_checkpointed_graphs(attribute: str) -> None:
    agent = make_agent(attribute)
    first = agent.invoke(user("one"), None, make_context())
    second = agent.invoke(user("two"), first.values, make_context())
    # A graph's own checkpointer is dropped: history is not applied twice.
    assert len(second.values["messages"]) == 4


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("tests.fixtures.no_such_module:graph", "cannot import 'tests.fixtures.no_such_module'"),
        ("tests.fixtures.graphs:missing", "has no 'missing'"),
        ("tests.fixtures.graphs:not_a_graph", "int is not a LangGraph graph"),
    ],
)
def test_loader_errors_are_configuration_errors(ref: str, message: str) -> None:
    agent = LangGraphAgent(graph_id="mine", graph_ref=ref, prices=PRICES, default_price=DEMO_PRICE)
    with pytest.raises(ConfigurationError, match=message):
        agent.invoke(user("hi"), None, make_context())


def test_built_through_the_registry_and_factory(tmp_path: Path) -> None:
    path = tmp_path / "assistants.json"
    path.write_text(
        json.dumps(
            {
                "mine": {
                    "agent": "langgraph",
                    "graph": "tests.fixtures.graphs:one_call_graph",
                    "model": "demo-1",
                    "max_tokens": 256,
                }
            }
        )
    )
    registry = AssistantRegistry.load(path, PRICES)
    factory = AgentFactory(
        registry,
        PRICES,
        bedrock_client=lambda: None,
        openai_base_url="https://api.openai.com/v1",
        openai_api_key="",
        http_timeout_cap=30,
    )
    assistant = registry.resolve("mine")
    assert assistant is not None
    result = factory.build(assistant).invoke(user("hi"), None, make_context())
    assert result.output == "Hello from the graph"


def test_usage_is_read_from_usage_metadata_or_llm_output() -> None:
    with_metadata = LLMResult(
        generations=[
            [
                ChatGeneration(
                    message=AIMessage(
                        content="a",
                        usage_metadata={"input_tokens": 10, "output_tokens": 4, "total_tokens": 14},
                    )
                )
            ]
        ]
    )
    assert reported_usage(with_metadata) == (10, 4)
    legacy = LLMResult(
        generations=[[Generation(text="a")]],
        llm_output={"token_usage": {"prompt_tokens": 12, "completion_tokens": 5}},
    )
    assert reported_usage(legacy) == (12, 5)
    assert reported_usage(LLMResult(generations=[[Generation(text="a")]])) is None


def test_negative_bool_or_fractional_usage_counts_as_none_reported() -> None:
    def with_metadata(input_tokens: Any, output_tokens: Any) -> LLMResult:
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": 0}
        message = AIMessage(content="a")
        message.usage_metadata = usage  # type: ignore[assignment]
        return LLMResult(generations=[[ChatGeneration(message=message)]])

    assert reported_usage(with_metadata(10, -100_000)) is None
    assert reported_usage(with_metadata(True, 4)) is None
    assert reported_usage(with_metadata(10, 4.5)) is None
    legacy = LLMResult(
        generations=[[Generation(text="a")]],
        llm_output={"token_usage": {"prompt_tokens": -12, "completion_tokens": 5}},
    )
    assert reported_usage(legacy) is None


def test_a_model_clients_own_retries_are_each_booked_at_their_reservation() -> None:
    # Given a graph model whose client retries twice inside one call (on_retry)
    graphs.sdk_retrying_model.sdk_failures = 2
    try:
        ctx = make_context()
        result = make_agent("sdk_retrying_graph").invoke(user("hi"), None, ctx)
    finally:
        graphs.sdk_retrying_model.sdk_failures = 0
    # Then each abandoned attempt costs its reservation, the last one its usage
    assert result.output == "answer after SDK retries"
    assert ctx.attempts.attempts == 3
    assert [f.error for f in ctx.attempts.failed] == ["TimeoutError", "TimeoutError"]
    answered = DEMO_PRICE.cost(1, graphs.sdk_retrying_model.output_tokens)
    assert ctx.budget.spent_usd == 2 * first_call_worst_case("hi") + answered
    assert ctx.budget.reserved_usd == 0


def test_a_model_client_retry_that_does_not_fit_the_budget_is_refused() -> None:
    graphs.sdk_retrying_model.sdk_failures = 1
    try:
        ctx = make_context(budget=str(first_call_worst_case("hi") * 3 / 2))
        with pytest.raises(BudgetExceeded):
            make_agent("sdk_retrying_graph").invoke(user("hi"), None, ctx)
    finally:
        graphs.sdk_retrying_model.sdk_failures = 0
    assert ctx.budget.spent_usd == first_call_worst_case("hi")
    assert ctx.budget.reserved_usd == 0


def test_missing_usage_is_booked_at_the_worst_case() -> None:
    graphs.one_call_model.report_usage = False
    try:
        ctx = make_context()
        make_agent("one_call_graph").invoke(user("hi"), None, ctx)
    finally:
        graphs.one_call_model.report_usage = True
    assert ctx.budget.spent_usd == first_call_worst_case("hi")


def test_values_keep_tool_calls_for_the_next_run() -> None:
    values = to_json_values(
        {
            "messages": [
                HumanMessage(content="weather?"),
                AIMessage(
                    content="",
                    tool_calls=[{"id": "call_1", "name": "weather", "args": {"city": "Oslo"}}],
                ),
                ToolMessage(content="-3°C", tool_call_id="call_1", name="weather"),
                AIMessage(content=[{"type": "text", "text": "It is -3°C."}]),
            ],
            "step": 3,
            "when": Decimal("1.5"),
        }
    )
    assert values == {
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "call_1", "name": "weather", "args": {"city": "Oslo"}}],
            },
            {"role": "tool", "content": "-3°C", "tool_call_id": "call_1", "name": "weather"},
            {"role": "assistant", "content": [{"type": "text", "text": "It is -3°C."}]},
        ],
        "step": 3,
        "when": "1.5",
    }
    json.dumps(values)


def test_a_provider_status_error_releases_the_call() -> None:
    # Given a graph whose chat model's provider answers HTTP 503 (an SDK status error)
    def unavailable() -> None:
        raise APIStatusError(httpx.Response(503, headers={"retry-after": "1"}))

    graphs.one_call_model.before_call = unavailable
    ctx = make_context()
    with pytest.raises(AgentError, match="APIStatusError"):
        make_agent("one_call_graph").invoke(user("hi"), None, ctx)
    # Then nothing was generated, so nothing is booked
    assert ctx.budget.calls == 1 and ctx.budget.spent_usd == 0 and ctx.budget.reserved_usd == 0


def test_an_ambiguous_provider_failure_is_booked_at_the_reservation() -> None:
    def reset() -> None:
        raise ConnectionResetError("connection reset by peer")

    graphs.one_call_model.before_call = reset
    ctx = make_context()
    with pytest.raises(AgentError):
        make_agent("one_call_graph").invoke(user("hi"), None, ctx)
    assert ctx.budget.spent_usd == first_call_worst_case("hi")


# --- the output bound in force ------------------------------------------------------------

GPT_4O = PRICES["gpt-4o"]


def test_a_model_without_max_tokens_reserves_the_catalogs_maximum_output() -> None:
    # Given the issue's case: a chat model with no max_tokens (ChatOpenAI()'s default)
    # that answers 4 000 tokens, on a $0.10 budget
    assert graphs.unbounded_model.max_tokens is None
    ctx = make_context(budget="0.10")
    # When the graph's call is about to be sent
    with pytest.raises(BudgetExceeded, match="gpt-4o"):
        make_agent("unbounded_graph").invoke(user("Write a long report"), None, ctx)
    # Then its worst case is the model's whole output (16 384 tokens of gpt-4o = $0.164),
    # which does not fit: nothing is sent and nothing is spent
    assert GPT_4O.max_output_tokens == 16_384
    assert graphs.unbounded_model.requests == []
    assert ctx.budget.spent_usd == 0 and ctx.budget.calls == 0


def test_a_model_without_max_tokens_runs_when_its_whole_output_fits() -> None:
    worst = GPT_4O.cost(prompt_token_bound("Write a long report"), 16_384)
    ctx = make_context(budget=str(worst))
    result = make_agent("unbounded_graph").invoke(user("Write a long report"), None, ctx)
    assert result.output == "a very long report"
    assert ctx.budget.output_tokens == 4_000
    assert ctx.budget.spent_usd <= ctx.budget.limit_usd
    # One token less of budget and the call is refused: the reservation was the maximum.
    short = make_context(budget=str(worst - GPT_4O.cost(0, 1)))
    with pytest.raises(BudgetExceeded):
        make_agent("unbounded_graph").invoke(user("Write a long report"), None, short)


def test_an_unbounded_call_to_a_model_without_a_catalog_maximum_is_refused() -> None:
    handmade = ModelPrice("gpt-4o", "openai", Decimal("2.5"), Decimal("10"))
    agent = LangGraphAgent(
        graph_id="mine",
        graph_ref="tests.fixtures.graphs:unbounded_graph",
        prices={"gpt-4o": handmade},
        default_price=None,
    )
    with pytest.raises(AgentError, match="no max_output_tokens"):
        agent.invoke(user("hi"), None, make_context())
    assert graphs.unbounded_model.requests == []


def test_an_over_report_ends_the_graph_even_if_a_node_catches_it() -> None:
    # Given the careless graph (its nodes swallow every error) and a model that reports
    # 100 000 output tokens for a call bounded at 64
    graphs.swallow_model.output_tokens = 100_000
    try:
        ctx = make_context(budget="1.00")
        with pytest.raises(BudgetOverrun):
            make_agent("swallowing_graph").invoke(user("hi"), None, ctx)
    finally:
        graphs.swallow_model.output_tokens = 7
    # Then the usage is booked as reported and the second node's call was refused
    assert len(graphs.swallow_model.requests) == 1
    assert ctx.budget.output_tokens == 100_000 and ctx.budget.overrun is not None


@pytest.mark.parametrize(
    "key", ["max_tokens", "max_completion_tokens", "max_output_tokens", "maxTokens", "num_predict"]
)
def test_the_bound_a_call_sends_is_read_under_each_integrations_name(key: str) -> None:
    # Given a model call bounded at 50 tokens by the parameter name its integration uses
    config = {"configurable": {"bound_key": key}}
    worst = GPT_4O.cost(prompt_token_bound("hi"), graphs.PARAM_BOUND_TOKENS)
    # Then exactly that worst case is reserved: it runs on that budget...
    ctx = make_context(budget=str(worst), config=config)
    assert make_agent("param_bound_graph").invoke(user("hi"), None, ctx).output == "bounded"
    # ...and not on one output token less (16 384 would have been refused on both)
    short = make_context(budget=str(worst - GPT_4O.cost(0, 1)), config=config)
    with pytest.raises(BudgetExceeded):
        make_agent("param_bound_graph").invoke(user("hi"), None, short)
