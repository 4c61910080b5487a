"""The OpenAI-compatible agent against a real local HTTP server.

A ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) plays the provider: it records each
request (path, headers, JSON body) and answers from a script — realistic
chat-completions JSON, provider errors, slow answers, redirects.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.agents.base import (
    AgentError,
    BudgetExceeded,
    BudgetOverrun,
    DeadlineExceeded,
    ModelPrice,
    OutputBoundExceeded,
    ProviderError,
    prompt_token_bound,
)
from chalicelib.agents.openai_compat import OpenAICompatibleAgent
from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from chalicelib.domain.errors import ConfigurationError
from tests.fixtures.run_context import FakeClock, make_context

PRICE: ModelPrice = load_prices(DEFAULT_PRICES_FILE, None)["gpt-4o-mini"]
SYSTEM = "You are a concise assistant."
MAX_TOKENS = 128


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    stream: Stream | None = None
    """Answer as a chat.completion.chunk event stream instead of ``body``."""


@dataclass
class Stream:
    """A streamed answer of ``tokens`` chunks (one token each, like OpenAI's).

    ``honour_max_tokens`` stops at the request's bound (finish_reason ``length``); a
    provider that ignores it streams all ``tokens``. Usage comes in a last chunk.
    """

    tokens: int
    token: str = "tok "
    honour_max_tokens: bool = True
    report_usage: bool = True
    prompt_tokens: int = 24
    per_chunk: int = 1
    """Tokens per chunk (Azure-style batching when above 1)."""
    end: bool = True
    """Send the finish chunk and ``[DONE]``; False hangs up after the tokens."""


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


class FakeProvider:
    """The scripted server's state, shared with its request handler."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Recorded] = []
        self.base_url = ""
        self.chunks_sent = 0
        self.client_hung_up = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                provider.requests.append(
                    Recorded(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)
                    )
                )
                reply = (
                    provider.replies.pop(0) if provider.replies else Reply(body=completion("ok"))
                )
                time.sleep(reply.delay)
                if reply.stream is not None:
                    self.send_stream(reply.stream, provider.requests[-1].body)
                    return
                payload = (
                    reply.body.encode()
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    for name, value in {
                        "Content-Type": "application/json",
                        **reply.headers,
                    }.items():
                        self.send_header(name, value)
                    cut_at = reply.headers.get("X-Cut-At")
                    length = int(cut_at) if cut_at else len(payload)
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def send_stream(self, stream: Stream, body: dict[str, Any]) -> None:
                bound = body.get("max_tokens") or body.get("max_completion_tokens")
                tokens = min(stream.tokens, bound) if stream.honour_max_tokens else stream.tokens
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()  # HTTP/1.0: the body ends when the connection closes

                def event(data: Any) -> None:
                    self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())

                try:
                    sent = 0
                    while sent < tokens:
                        n = min(stream.per_chunk, tokens - sent)
                        event(chunk({"content": stream.token * n}))
                        sent += n
                        provider.chunks_sent += 1
                    if stream.end:
                        finish = "length" if tokens < stream.tokens else "stop"
                        event(chunk({}, finish_reason=finish))
                        if stream.report_usage:
                            event(usage_chunk(stream.prompt_tokens, tokens))
                        self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except OSError:
                    provider.client_hung_up.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextlib.contextmanager
def serving() -> Iterator[FakeProvider]:
    """A scripted provider on 127.0.0.1 (port 0), for as long as the block lasts."""
    state = FakeProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    server.daemon_threads = True
    # A short poll interval keeps shutdown() (once per test) fast.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with serving() as state:
        yield state


def completion(text: str, prompt_tokens: int = 24, completion_tokens: int = 9) -> dict[str, Any]:
    """A chat.completion as OpenAI returns it."""
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1_735_689_600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "system_fingerprint": "fp_0ba0d124f1",
    }


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """A chat.completion.chunk as OpenAI streams it."""
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion.chunk",
        "created": 1_735_689_600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The last chunk when ``stream_options.include_usage`` is set: no choices, usage."""
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion.chunk",
        "created": 1_735_689_600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def make_agent(base_url: str, **kwargs: Any) -> OpenAICompatibleAgent:
    options: dict[str, Any] = {
        "api_key": "sk-test-123",
        "system": SYSTEM,
        "temperature": 0.2,
        **kwargs,
    }
    return OpenAICompatibleAgent(
        graph_id="openai", price=PRICE, max_tokens=MAX_TOKENS, base_url=base_url, **options
    )


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def test_request_usage_and_cost(provider: FakeProvider) -> None:
    # Given a provider answering a realistic completion
    provider.replies.append(Reply(body=completion("Ship it on Friday.", 31, 6)))
    ctx = make_context()
    # When the agent runs
    result = make_agent(provider.base_url).invoke(user("When should we ship?"), None, ctx)
    # Then the request is exactly what OpenAI expects, and usage/cost come from the answer
    (request,) = provider.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-123"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "When should we ship?"},
        ],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
    }
    assert result.output == "Ship it on Friday."
    assert (ctx.budget.input_tokens, ctx.budget.output_tokens) == (31, 6)
    assert ctx.budget.spent_usd == (31 * Decimal("0.15") + 6 * Decimal("0.60")) / 1_000_000
    assert ctx.models_used == [PRICE]


def test_thread_state_accumulates_across_invocations(provider: FakeProvider) -> None:
    provider.replies += [Reply(body=completion("Paris.")), Reply(body=completion("2.1 million."))]
    agent = make_agent(provider.base_url)
    first = agent.invoke(user("Capital of France?"), None, make_context())
    second = agent.invoke(user("Population?"), first.values, make_context())
    assert provider.requests[1].body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Population?"},
    ]
    assert second.values["messages"][-1] == {"role": "assistant", "content": "2.1 million."}
    assert len(second.values["messages"]) == 4


def test_budget_refusal_happens_before_the_request(provider: FakeProvider) -> None:
    # Given a budget below the worst case (max output alone costs 128 × 0.60 / 1M)
    ctx = make_context(budget="0.00007")
    with pytest.raises(BudgetExceeded):
        make_agent(provider.base_url).invoke(user("hello"), None, ctx)
    # Then the provider never saw a request
    assert provider.requests == []
    assert ctx.budget.spent_usd == 0


def test_spend_never_exceeds_the_budget_across_calls(provider: FakeProvider) -> None:
    provider.replies += [Reply(body=completion("x", 40, 100)) for _ in range(5)]
    agent = make_agent(provider.base_url)
    ctx = make_context(budget="0.00025")
    values = None
    with pytest.raises(BudgetExceeded):
        for _ in range(5):
            values = agent.invoke(user("again"), values, ctx).values
    assert 0 < len(provider.requests) < 5
    assert ctx.budget.spent_usd <= ctx.budget.limit_usd
    assert ctx.budget.calls == len(provider.requests)


def test_no_call_starts_after_the_deadline(provider: FakeProvider) -> None:
    clock = FakeClock()
    ctx = make_context(clock=clock, timeout=10)
    clock.advance(10.5)
    with pytest.raises(DeadlineExceeded):
        make_agent(provider.base_url).invoke(user("late"), None, ctx)
    assert provider.requests == []


RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini on requests per min (RPM)",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


@pytest.mark.parametrize(
    ("reply", "expected", "billed", "transient", "retry_after"),
    [
        (
            Reply(429, RATE_LIMITED, headers={"Retry-After": "7"}),
            "HTTP 429 for model gpt-4o-mini: Rate limit reached for gpt-4o-mini",
            False,
            True,
            7.0,
        ),
        (
            Reply(
                401,
                {"error": {"message": "Incorrect API key provided: sk-test-***", "code": None}},
            ),
            "HTTP 401 for model gpt-4o-mini: Incorrect API key provided",
            False,
            False,
            None,
        ),
        (Reply(400, {"detail": "model 'gpt-4o-mini' not found"}), "HTTP 400", False, False, None),
        (Reply(408, {"detail": "request timeout"}), "HTTP 408", False, True, None),
        (Reply(500, {"error": {"message": "internal"}}), "HTTP 500", False, True, None),
        (
            Reply(502, "<html>Bad Gateway</html>"),
            "HTTP 502 for model gpt-4o-mini: <html>Bad Gateway",
            False,
            True,
            None,
        ),
        (
            Reply(503, "busy", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            "HTTP 503",
            False,
            True,
            0.0,  # an HTTP-date in the past: retry now
        ),
        # A 200 that is not a completion at all (a proxy's page): nothing was generated.
        (
            Reply(200, "<html>Sign in to the proxy</html>", headers={"Content-Type": "text/html"}),
            "malformed JSON",
            False,
            False,
            None,
        ),
        # A completion that starts and breaks off may have been generated: billed.
        (
            Reply(200, '{"id": "chatcmpl-1", "choices": [{"mess'),
            "malformed JSON",
            True,
            False,
            None,
        ),
        (
            Reply(200, {"error": {"message": "upstream overloaded"}}),
            "upstream overloaded",
            False,
            False,
            None,
        ),
        (Reply(200, {"id": "x", "choices": []}), "no choices[0].message", True, False, None),
        (
            Reply(302, "", headers={"Location": "https://elsewhere.example/steal"}),
            "HTTP 302",
            False,
            False,
            None,
        ),
    ],
)
def test_provider_errors_are_classified(
    provider: FakeProvider,
    reply: Reply,
    expected: str,
    billed: bool,
    transient: bool,
    retry_after: float | None,
) -> None:
    provider.replies.append(reply)
    ctx = make_context()
    with pytest.raises(ProviderError) as raised:
        make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    error = raised.value
    assert expected in str(error)
    assert (error.billed, error.transient, error.retry_after) == (billed, transient, retry_after)
    assert len(provider.requests) == 1  # and a redirect was not followed
    # An unbilled call is released (cost 0); a billed one is booked at its reservation.
    assert ctx.budget.calls == 1 and ctx.budget.reserved_usd == 0
    worst = PRICE.cost(prompt_token_bound(SYSTEM, "hi"), MAX_TOKENS)
    assert ctx.budget.spent_usd == (worst if billed else 0)


def test_connection_lost_mid_response_is_billed(provider: FakeProvider) -> None:
    # Given a provider that announces a body and hangs up halfway through it
    provider.replies.append(Reply(body='{"id": "chatcmpl-1"', headers={"X-Cut-At": "400"}))
    ctx = make_context()
    with pytest.raises(ProviderError, match="mid-response") as raised:
        make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert raised.value.billed and not raised.value.transient
    assert ctx.budget.spent_usd == PRICE.cost(prompt_token_bound(SYSTEM, "hi"), MAX_TOKENS)


def test_unreachable_server_is_unbilled_and_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent = make_agent(f"http://127.0.0.1:{port}/v1")
    ctx = make_context()
    with pytest.raises(ProviderError, match=r"cannot reach 127\.0\.0\.1") as raised:
        agent.invoke(user("hi"), None, ctx)
    assert not raised.value.billed and raised.value.transient
    assert ctx.budget.spent_usd == 0


def test_slow_answer_past_the_deadline_is_a_deadline(provider: FakeProvider) -> None:
    # Given a provider that takes 0.8 s and a run with 0.2 s left (real clock)
    provider.replies.append(Reply(body=completion("too late"), delay=0.8))
    ctx = make_context(real_clock=True, timeout=0.2)
    started = time.monotonic()
    # Then the agent stops waiting at the deadline
    with pytest.raises(DeadlineExceeded):
        make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert time.monotonic() - started < 0.6
    assert ctx.budget.calls == 1 and ctx.budget.reserved_usd == 0


def test_timeout_cap_bounds_a_call_when_the_run_has_time(provider: FakeProvider) -> None:
    provider.replies.append(Reply(body=completion("too late"), delay=0.6))
    agent = make_agent(provider.base_url, timeout_cap=0.15)
    with pytest.raises(AgentError, match=r"did not answer within 0.15 s"):
        agent.invoke(user("hi"), None, make_context(real_clock=True, timeout=60))


def test_missing_usage_is_booked_at_the_worst_case(provider: FakeProvider) -> None:
    body = completion("no usage here")
    del body["usage"]
    provider.replies.append(Reply(body=body))
    ctx = make_context()
    result = make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert result.output == "no usage here"
    assert ctx.budget.spent_usd == PRICE.cost(prompt_token_bound(SYSTEM, "hi"), MAX_TOKENS)


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 10, "completion_tokens": -100_000},
        {"prompt_tokens": -5, "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
        {"prompt_tokens": 10, "completion_tokens": 3.5},
    ],
)
def test_untrustworthy_usage_is_booked_at_the_worst_case(
    provider: FakeProvider, usage: dict[str, Any]
) -> None:
    # A negative, bool or fractional count would lower the run's spend if booked.
    body = completion("odd usage")
    body["usage"] = usage
    provider.replies.append(Reply(body=body))
    ctx = make_context()
    make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert ctx.budget.spent_usd == PRICE.cost(prompt_token_bound(SYSTEM, "hi"), MAX_TOKENS)
    assert ctx.budget.spent_usd > 0


def test_without_key_no_authorization_and_alternative_max_tokens_field(
    provider: FakeProvider,
) -> None:
    agent = make_agent(
        provider.base_url + "/",
        api_key="",
        system=None,
        temperature=None,
        max_tokens_param="max_completion_tokens",
    )
    agent.invoke(
        {"messages": [{"type": "human", "content": "hi"}, {"role": "tool", "content": "7"}]},
        None,
        make_context(),
    )
    (request,) = provider.requests
    assert "authorization" not in request.headers
    assert request.path == "/v1/chat/completions"
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "7"}],
        "max_completion_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_no_user_message_is_an_error_before_any_call(provider: FakeProvider) -> None:
    with pytest.raises(AgentError, match="no user message"):
        make_agent(provider.base_url).invoke(None, None, make_context())
    assert provider.requests == []


@pytest.mark.parametrize("base_url", ["file:///etc/passwd", "api.openai.com/v1", ""])
def test_base_url_must_be_http(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_BASE_URL"):
        make_agent(base_url)


# --- streaming: the output bound holds even when the provider ignores it ---------------------


def test_a_streamed_answer_is_read_with_its_usage(provider: FakeProvider) -> None:
    provider.replies.append(Reply(stream=Stream(tokens=5, token="word ")))
    ctx = make_context()
    result = make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert result.output == "word " * 5
    assert (ctx.budget.input_tokens, ctx.budget.output_tokens) == (24, 5)
    assert ctx.budget.spent_usd == PRICE.cost(24, 5)


def test_an_honest_stream_at_exactly_the_bound_is_not_cut(provider: FakeProvider) -> None:
    provider.replies.append(Reply(stream=Stream(tokens=10 * MAX_TOKENS)))
    ctx = make_context()
    result = make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert result.output == "tok " * MAX_TOKENS
    assert ctx.budget.output_tokens == MAX_TOKENS


def test_a_provider_ignoring_max_tokens_is_cut_at_the_bound(provider: FakeProvider) -> None:
    # Given the provider: it ignores max_tokens and would stream 100 000 tokens
    provider.replies.append(Reply(stream=Stream(tokens=100_000, honour_max_tokens=False)))
    worst = PRICE.cost(prompt_token_bound(SYSTEM, "hi"), MAX_TOKENS)
    ctx = make_context(budget=str(worst * 3 / 2))
    # When the agent reads the stream
    with pytest.raises(OutputBoundExceeded, match="cut there"):
        make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    # Then it stopped reading past the bound and hung up (the server saw the close
    # long before its 100 000 tokens), and the call is booked at its reservation
    assert provider.client_hung_up.wait(5)
    assert provider.chunks_sent < 100_000
    assert ctx.budget.spent_usd == worst <= ctx.budget.limit_usd
    assert ctx.budget.reserved_usd == 0


def test_a_batching_provider_ignoring_max_tokens_is_cut_by_bytes(provider: FakeProvider) -> None:
    # 50 tokens per chunk: the chunk count stays low, the bytes do not
    stream = Stream(tokens=100_000, honour_max_tokens=False, per_chunk=50, token="token ")
    provider.replies.append(Reply(stream=stream))
    ctx = make_context()
    with pytest.raises(OutputBoundExceeded):
        make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert provider.chunks_sent < 100_000 // 50
    assert ctx.budget.spent_usd == PRICE.cost(prompt_token_bound(SYSTEM, "hi"), MAX_TOKENS)


def test_a_stream_cut_by_the_provider_is_billed(provider: FakeProvider) -> None:
    provider.replies.append(Reply(stream=Stream(tokens=3, end=False)))
    ctx = make_context()
    with pytest.raises(ProviderError, match="ended before the answer did") as raised:
        make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert raised.value.billed
    assert ctx.budget.spent_usd == PRICE.cost(prompt_token_bound(SYSTEM, "hi"), MAX_TOKENS)


def test_usage_above_the_bound_is_booked_and_ends_the_call(provider: FakeProvider) -> None:
    # Given a non-streaming server that ignores max_tokens and reports 100 000 tokens
    provider.replies.append(Reply(body=completion("a very long answer", 24, 100_000)))
    ctx = make_context(budget="0.10")
    # Then the usage is booked as reported and the call raises BudgetOverrun
    with pytest.raises(BudgetOverrun) as raised:
        make_agent(provider.base_url).invoke(user("hi"), None, ctx)
    assert ctx.budget.spent_usd == PRICE.cost(24, 100_000) == raised.value.charged
    assert raised.value.overshoot == raised.value.charged - raised.value.reserved > 0
    assert ctx.budget.overrun is raised.value
    # And no later call of the run is reserved
    with pytest.raises(BudgetOverrun):
        make_agent(provider.base_url).invoke(user("again"), None, ctx)
    assert len(provider.requests) == 1
