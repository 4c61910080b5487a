"""The Bedrock Converse agent against a real boto3 client with botocore's Stubber.

The Stubber checks the exact request and serves realistic Converse responses; where
a transport failure is needed (read timeouts, slowness) a handler on botocore's own
``before-call`` event raises or waits, as the real transport would. Nothing of ours
is patched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from chalicelib.agents.base import (
    AgentError,
    BudgetExceeded,
    BudgetOverrun,
    DeadlineExceeded,
    ModelPrice,
    ProviderError,
    prompt_token_bound,
    state_messages,
)
from chalicelib.agents.bedrock import BedrockAgent, converse_messages
from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from tests.fixtures.run_context import FakeClock, make_context

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
PRICE: ModelPrice = load_prices(DEFAULT_PRICES_FILE, None)[MODEL]
SYSTEM = "You are a concise assistant."
MAX_TOKENS = 256
# The Stubber answers from a wildcard ``before-call.*.*`` handler, and botocore runs
# wildcard handlers before specific ones; a "transport" handler registered first on
# the same wildcard runs before the Stubber. (The Stubber also checks, before that,
# that a response is queued, so the transport tests queue one they never receive.)
BEFORE_CALL = "before-call.*.*"


class ClientProvider:
    """The container's lazy client getter, counting how often the agent asks for it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.client


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub


def make_agent(client: Any, **kwargs: Any) -> tuple[BedrockAgent, ClientProvider]:
    provider = ClientProvider(client)
    options: dict[str, Any] = {"system": SYSTEM, "temperature": 0.2, **kwargs}
    agent = BedrockAgent(
        graph_id="bedrock",
        price=PRICE,
        max_tokens=MAX_TOKENS,
        client_factory=provider,
        **options,
    )
    return agent, provider


def converse_response(text: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 842},
    }


def expected_request(messages: list[dict[str, Any]], system: list[str] | None = None) -> Any:
    return {
        "modelId": MODEL,
        "messages": messages,
        "system": [{"text": text} for text in (system or [SYSTEM])],
        "inferenceConfig": {"maxTokens": MAX_TOKENS, "temperature": 0.2},
    }


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def test_converse_request_usage_and_cost(client: Any, stubber: Stubber) -> None:
    # Given Bedrock answering a realistic Converse response
    stubber.add_response(
        "converse",
        converse_response("Three launches stood out this week: ...", 31, 118),
        expected_request(
            [{"role": "user", "content": [{"text": "Summarise this week's AWS news"}]}]
        ),
    )
    agent, provider = make_agent(client)
    ctx = make_context()
    # When the agent runs
    result = agent.invoke(user("Summarise this week's AWS news"), None, ctx)
    # Then the exact request was sent and usage/cost come from the response
    stubber.assert_no_pending_responses()
    assert result.output == "Three launches stood out this week: ..."
    assert (ctx.budget.input_tokens, ctx.budget.output_tokens) == (31, 118)
    assert ctx.budget.spent_usd == (31 * Decimal("0.25") + 118 * Decimal("1.25")) / 1_000_000
    assert ctx.budget.reserved_usd == 0
    assert ctx.models_used == [PRICE]
    assert provider.calls == 1
    assert result.values["messages"][-1] == {"role": "assistant", "content": result.output}


def test_thread_state_accumulates_across_invocations(client: Any, stubber: Stubber) -> None:
    agent, _ = make_agent(client)
    stubber.add_response(
        "converse",
        converse_response("Paris.", 20, 3),
        expected_request([{"role": "user", "content": [{"text": "Capital of France?"}]}]),
    )
    stubber.add_response(
        "converse",
        converse_response("About 2.1 million.", 30, 8),
        expected_request(
            [
                {"role": "user", "content": [{"text": "Capital of France?"}]},
                {"role": "assistant", "content": [{"text": "Paris."}]},
                {"role": "user", "content": [{"text": "Its population?"}]},
            ]
        ),
    )
    first = agent.invoke(user("Capital of France?"), None, make_context())
    second = agent.invoke(user("Its population?"), first.values, make_context())
    stubber.assert_no_pending_responses()
    assert [m.content for m in state_messages(second.values)] == [
        "Capital of France?",
        "Paris.",
        "Its population?",
        "About 2.1 million.",
    ]


def test_conversation_is_made_converse_compatible(client: Any, stubber: Stubber) -> None:
    # Given a thread that starts with an assistant turn, repeats roles and holds a
    # system message, and an input in LangGraph's "type" spelling
    state = {
        "messages": [
            {"role": "assistant", "content": "Welcome!"},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"type": "ai", "content": [{"type": "text", "text": "b2"}]},
            {"role": "system", "content": "Use metric units."},
            {"type": "human", "content": "c"},
            {"role": "tool", "content": "42"},
            {"role": "user", "content": "   "},
        ]
    }
    stubber.add_response(
        "converse",
        converse_response("ok", 40, 1),
        expected_request(
            [
                {"role": "user", "content": [{"text": "a"}]},
                {"role": "assistant", "content": [{"text": "b"}, {"text": "b2"}]},
                {"role": "user", "content": [{"text": "c"}, {"text": "42"}, {"text": "d"}]},
            ],
            system=[SYSTEM, "Use metric units."],
        ),
    )
    agent, _ = make_agent(client)
    agent.invoke(user("d"), state, make_context())
    stubber.assert_no_pending_responses()


def test_converse_messages_without_a_user_turn_is_empty() -> None:
    assert (
        converse_messages(state_messages({"messages": [{"role": "assistant", "content": "x"}]}))
        == []
    )


def test_no_user_message_is_an_error_before_any_call(client: Any, stubber: Stubber) -> None:
    agent, provider = make_agent(client)
    ctx = make_context()
    with pytest.raises(AgentError, match="no user message"):
        agent.invoke(None, None, ctx)
    assert provider.calls == 0 and ctx.budget.calls == 0


def test_budget_refusal_happens_before_the_request(client: Any, stubber: Stubber) -> None:
    # Given a budget below the worst case of one call, and a recorder of sent requests
    sent: list[str] = []
    client.meta.events.register_first(BEFORE_CALL, lambda **kw: sent.append("converse"))
    stubber.add_response("converse", converse_response("never delivered", 1, 1))
    agent, provider = make_agent(client)
    ctx = make_context(budget="0.0003")  # max output alone may cost 256 × 1.25 / 1M = 0.00032
    # When / Then the call is refused and Bedrock never saw a request
    with pytest.raises(BudgetExceeded):
        agent.invoke(user("Summarise this week's AWS news"), None, ctx)
    assert sent == [] and provider.calls == 0
    with pytest.raises(AssertionError):
        stubber.assert_no_pending_responses()  # the queued answer was never requested
    assert ctx.budget.spent_usd == 0


def test_spend_never_exceeds_the_budget_across_calls(client: Any, stubber: Stubber) -> None:
    # Given a budget that fits two calls' worst cases but not three
    agent, _ = make_agent(client)
    for _ in range(2):
        stubber.add_response("converse", converse_response("answer", 150, 200))
    ctx = make_context(budget="0.00072")
    values = None
    # When the same run keeps calling
    for _ in range(2):
        values = agent.invoke(user("next please"), values, ctx).values
    with pytest.raises(BudgetExceeded):
        agent.invoke(user("next please"), values, ctx)
    # Then the third call was refused, and spend stayed within the budget
    stubber.assert_no_pending_responses()
    assert ctx.budget.calls == 2
    assert ctx.budget.spent_usd == 2 * PRICE.cost(150, 200) <= ctx.budget.limit_usd


def test_no_call_starts_after_the_deadline(client: Any, stubber: Stubber) -> None:
    clock = FakeClock()
    ctx = make_context(clock=clock, timeout=30)
    clock.advance(30)
    agent, provider = make_agent(client)
    with pytest.raises(DeadlineExceeded):
        agent.invoke(user("late"), None, ctx)
    assert provider.calls == 0 and ctx.budget.spent_usd == 0


@pytest.mark.parametrize(
    ("code", "status", "message", "hint", "billed", "transient"),
    [
        ("ThrottlingException", 429, "Too many requests, please wait.", "throttled", False, True),
        (
            "ValidationException",
            400,
            "A conversation must start with a user message.",
            "rejected the request",
            False,
            False,
        ),
        (
            "AccessDeniedException",
            403,
            "You don't have access to the model with the specified model ID.",
            "bedrock:InvokeModel",
            False,
            False,
        ),
        ("ModelNotReadyException", 429, "Model is not ready.", "not ready", False, True),
        ("ServiceUnavailableException", 503, "Service unavailable.", "unavailable", False, True),
        ("InternalServerException", 500, "Internal error.", "failed internally", False, True),
        # Errors raised while the model ran: it may have generated, so they are billed.
        ("ModelTimeoutException", 408, "Model has timed out.", "took too long", True, True),
        ("ModelErrorException", 424, "Model failed.", "failed while answering", True, False),
        # An unknown code with an error status came before any output.
        ("SomethingNewException", 400, "new failure", "returned an error", False, False),
        ("SomethingNewException", 503, "new failure", "returned an error", False, True),
    ],
)
def test_client_errors_are_classified(
    client: Any,
    stubber: Stubber,
    code: str,
    status: int,
    message: str,
    hint: str,
    billed: bool,
    transient: bool,
) -> None:
    stubber.add_client_error(
        "converse", service_error_code=code, service_message=message, http_status_code=status
    )
    agent, _ = make_agent(client)
    ctx = make_context()
    with pytest.raises(ProviderError) as raised:
        agent.invoke(user("hi"), None, ctx)
    text = str(raised.value)
    assert code in text and MODEL in text and message in text and hint in text
    assert (raised.value.billed, raised.value.transient) == (billed, transient)
    # An unbilled call is released (cost 0); a billed one is booked at its reservation.
    assert ctx.budget.calls == 1 and ctx.budget.reserved_usd == 0
    assert (ctx.budget.spent_usd > 0) is billed


def test_throttling_retry_after_header_is_read(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error(
        "converse",
        service_error_code="ThrottlingException",
        service_message="slow down",
        http_status_code=429,
        response_meta={"HTTPHeaders": {"retry-after": "3"}},
    )
    agent, _ = make_agent(client)
    with pytest.raises(ProviderError) as raised:
        agent.invoke(user("hi"), None, make_context())
    assert raised.value.retry_after == 3.0 and not raised.value.billed


def test_unreachable_endpoint_is_unbilled_and_transient(client: Any, stubber: Stubber) -> None:
    def refuse(**kwargs: Any) -> None:
        raise EndpointConnectionError(
            endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"
        )

    client.meta.events.register_first(BEFORE_CALL, refuse)
    stubber.add_response("converse", converse_response("never delivered", 1, 1))
    agent, _ = make_agent(client)
    ctx = make_context()
    with pytest.raises(ProviderError, match="cannot reach") as raised:
        agent.invoke(user("hi"), None, ctx)
    assert not raised.value.billed and raised.value.transient
    assert ctx.budget.spent_usd == 0


def test_connection_closed_after_sending_is_billed(client: Any, stubber: Stubber) -> None:
    def hang_up(**kwargs: Any) -> None:
        raise ConnectionClosedError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    client.meta.events.register_first(BEFORE_CALL, hang_up)
    stubber.add_response("converse", converse_response("never delivered", 1, 1))
    agent, _ = make_agent(client)
    ctx = make_context()
    with pytest.raises(ProviderError) as raised:
        agent.invoke(user("hi"), None, ctx)
    assert raised.value.billed
    assert ctx.budget.spent_usd > 0


def test_read_timeout_after_the_deadline_is_a_deadline(client: Any, stubber: Stubber) -> None:
    # Given a transport that times out reading after the run's deadline has passed
    clock = FakeClock()
    ctx = make_context(clock=clock, timeout=20)

    def slow_read(**kwargs: Any) -> None:
        clock.advance(25)
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    client.meta.events.register_first(BEFORE_CALL, slow_read)
    stubber.add_response("converse", converse_response("never delivered", 1, 1))
    agent, _ = make_agent(client)
    # Then the run reports a timeout, with the call booked at its worst case
    with pytest.raises(DeadlineExceeded):
        agent.invoke(user("hi"), None, ctx)
    assert ctx.budget.calls == 1 and ctx.budget.spent_usd > 0


def test_read_timeout_before_the_deadline_is_an_error(client: Any, stubber: Stubber) -> None:
    def slow_read(**kwargs: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    client.meta.events.register_first(BEFORE_CALL, slow_read)
    stubber.add_response("converse", converse_response("never delivered", 1, 1))
    agent, _ = make_agent(client)
    ctx = make_context()
    with pytest.raises(ProviderError, match="Read timeout") as raised:
        agent.invoke(user("hi"), None, ctx)
    # The request may have reached the model: billed, worth retrying.
    assert raised.value.billed and raised.value.transient and ctx.budget.spent_usd > 0


def test_a_slow_call_is_abandoned_at_the_deadline(client: Any, stubber: Stubber) -> None:
    # Given Bedrock taking 0.6 s and a run with 0.15 s left (real clock)
    client.meta.events.register_first(BEFORE_CALL, lambda **kw: time.sleep(0.6))
    stubber.add_response("converse", converse_response("too late", 10, 10))
    agent, _ = make_agent(client)
    ctx = make_context(real_clock=True, timeout=0.15)
    started = time.monotonic()
    # When / Then the agent gives up at the deadline, not when botocore would
    with pytest.raises(DeadlineExceeded):
        agent.invoke(user("hi"), None, ctx)
    assert time.monotonic() - started < 0.5
    assert ctx.budget.calls == 1 and ctx.budget.reserved_usd == 0


def test_timeout_cap_bounds_a_call_when_the_run_has_time(client: Any, stubber: Stubber) -> None:
    client.meta.events.register_first(BEFORE_CALL, lambda **kw: time.sleep(0.5))
    stubber.add_response("converse", converse_response("too late", 10, 10))
    agent, _ = make_agent(client, timeout_cap=0.1)
    with pytest.raises(AgentError, match=r"did not answer within 0.1 s"):
        agent.invoke(user("hi"), None, make_context(real_clock=True, timeout=60))


def test_request_without_system_prompt_or_temperature(client: Any, stubber: Stubber) -> None:
    agent = BedrockAgent(
        graph_id="nova",
        price=PRICE,
        max_tokens=MAX_TOKENS,
        client_factory=ClientProvider(client),
        top_p=0.9,
    )
    stubber.add_response(
        "converse",
        converse_response("hello", 5, 2),
        {
            "modelId": MODEL,
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": MAX_TOKENS, "topP": 0.9},
        },
    )
    assert agent.invoke(user("hi"), None, make_context()).output == "hello"
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("output_tokens", [-50_000, True, 3.5])
def test_untrustworthy_usage_is_booked_at_the_worst_case(
    client: Any, stubber: Stubber, output_tokens: Any
) -> None:
    # Given a model that reports a negative, bool or fractional output count (the
    # Stubber validates responses against the model, so a "transport" answers first)
    answer = converse_response("odd usage", 31, 0)
    answer["usage"]["outputTokens"] = output_tokens

    def transport(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://bedrock.invalid", 200, HTTPHeaders(), None), answer

    client.meta.events.register_first(BEFORE_CALL, transport)
    stubber.add_response("converse", converse_response("never delivered", 1, 1))
    agent, _ = make_agent(client)
    ctx = make_context()
    assert agent.invoke(user("hi"), None, ctx).output == "odd usage"
    # Then it never lowers the spend: the call is booked at its reservation
    assert ctx.budget.spent_usd == PRICE.cost(prompt_token_bound(SYSTEM, "hi"), MAX_TOKENS)


def test_usage_above_max_tokens_is_booked_and_raised(client: Any, stubber: Stubber) -> None:
    # Given a model that reports far more output than the maxTokens it was sent
    stubber.add_response("converse", converse_response("a very long answer", 31, 50_000))
    agent, _ = make_agent(client)
    ctx = make_context(budget="0.01")
    # Then the call's usage is booked as reported and the run is told at once
    with pytest.raises(BudgetOverrun) as raised:
        agent.invoke(user("hi"), None, ctx)
    assert ctx.budget.spent_usd == PRICE.cost(31, 50_000) == raised.value.charged
    assert raised.value.model == MODEL
