"""The offline demo agent: deterministic answers, real metering, no provider.

It is the default agent locally and in tests. It behaves like a chat model as far
as the run engine can tell: every "model call" goes through
:meth:`~chalicelib.agents.base.RunContext.model_call` (deadline check, worst-case
reservation, settlement), reports token usage, and costs money at the ``demo-1``
price, so timeouts, budgets and cost accounting are exercised with no network.

Behaviour:

* The query is the input's last user message, else the input's compact JSON
  (:func:`~chalicelib.domain.models.query_text_of`).
* The answer is ``"Demo answer to: <query>"`` followed by a short deterministic
  summary (word count, earlier messages in the thread, and a digest of the
  conversation), so two runs on the same thread give different, reproducible answers.
* Usage: input tokens = Σ over prompt messages of ⌈UTF-8 bytes / 4⌉ + 3, output
  tokens = ⌈UTF-8 bytes of the answer / 4⌉ — both within the reservation bound of
  :func:`~chalicelib.agents.base.prompt_token_bound` and ``max_tokens``.
* State: the input's messages (or one user message with the query) and the answer
  are appended to ``state["messages"]`` as ``{"role", "content"}`` dicts, so a
  thread-bound schedule accumulates its conversation across runs.

Test and demo knobs, read from the run's ``context`` (a schedule's ``context`` /
Shannon ``task_context``), so the run engine's paths can be driven end to end
through the real API without mocks:

``demo_sleep_seconds`` (number ≥ 0)
    Each model call "takes" this long, via ``ctx.sleep``. It never sleeps past the
    deadline: it sleeps ``min(requested, time left)`` and, if that was not enough,
    fails the call with a timeout, which ``model_call`` reports as
    :class:`~chalicelib.agents.base.DeadlineExceeded` (booked at the worst case, as
    a real call cut by the deadline is).
``demo_model_calls`` (integer 1-100, default 1)
    The number of model calls per run, like an agent loop; each call's prompt
    includes the previous calls' answers, so reservations grow.
``demo_output_tokens`` (integer ≥ 0)
    Forces the reported output tokens per call. It is capped at the assistant's
    ``max_tokens``, as a real provider stops there (and the reservation assumed it).
``demo_fail`` (non-empty string)
    The first model call fails with :class:`~chalicelib.agents.base.AgentError`
    carrying this message. It fails *inside* the call, after the reservation, like
    a provider error: the run ends ``error`` and the call is booked at its worst case.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from chalicelib.agents.base import (
    AgentError,
    AgentResult,
    CallUsage,
    ChatMessage,
    ModelPrice,
    RunContext,
    chat_result,
    input_messages,
    prompt_token_bound,
    state_messages,
)
from chalicelib.domain.models import JSONObject, query_text_of

MAX_DEMO_MODEL_CALLS = 100


def demo_tokens(text: str) -> int:
    """The demo's deterministic token count: a quarter of the UTF-8 bytes, at least 1."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


class DemoAgent:
    """Offline, deterministic agent (see the module docstring for the knobs)."""

    def __init__(
        self, *, graph_id: str, price: ModelPrice, max_tokens: int, system: str | None = None
    ) -> None:
        self.graph_id = graph_id
        self.price = price
        self.max_tokens = max_tokens
        self.system = system

    def invoke(
        self, input: JSONObject | list[Any] | None, state: JSONObject | None, ctx: RunContext
    ) -> AgentResult:
        knobs = _Knobs.read(ctx.context)
        history = state_messages(state)
        new = input_messages(input)
        query = query_text_of(input)
        prompt = ([ChatMessage("system", self.system)] if self.system else []) + history + new

        answer = ""
        for step in range(1, knobs.model_calls + 1):
            text = self._answer(query, history, prompt, step, knobs.model_calls)
            answer = ctx.model_call(
                self.price,
                prompt_tokens=prompt_token_bound(*(m.content for m in prompt)),
                max_output_tokens=self.max_tokens,
                call=functools.partial(self._call, ctx, knobs, prompt, text, step),
            )
            prompt = [*prompt, ChatMessage("assistant", answer)]

        return chat_result(state, [*history, *new], answer)

    def _answer(
        self,
        query: str,
        history: list[ChatMessage],
        prompt: list[ChatMessage],
        step: int,
        steps: int,
    ) -> str:
        digest = hashlib.sha256(
            "\x1e".join(f"{m.role}\x1f{m.content}" for m in prompt).encode("utf-8")
        ).hexdigest()[:8]
        words = len(query.split())
        progress = f"step {step}/{steps}; " if steps > 1 else ""
        return (
            f"Demo answer to: {query} "
            f"({progress}{words} word{'s' if words != 1 else ''}, "
            f"{len(history)} earlier message{'s' if len(history) != 1 else ''} in the thread, "
            f"digest {digest})"
        )

    def _call(
        self,
        ctx: RunContext,
        knobs: _Knobs,
        prompt: list[ChatMessage],
        text: str,
        step: int,
        timeout: float,
    ) -> tuple[str, CallUsage]:
        if knobs.sleep_seconds > 0:
            ctx.sleep(min(knobs.sleep_seconds, timeout))
            if knobs.sleep_seconds >= timeout or ctx.time_left() <= 0:
                raise TimeoutError("the demo model call outlasted the run's deadline")
        if knobs.fail is not None and step == 1:
            raise AgentError(knobs.fail)
        output_tokens = demo_tokens(text) if knobs.output_tokens is None else knobs.output_tokens
        usage = CallUsage(
            input_tokens=sum(demo_tokens(m.content) + 3 for m in prompt),
            output_tokens=min(output_tokens, self.max_tokens),
        )
        return text, usage


@dataclass(frozen=True)
class _Knobs:
    """The validated ``demo_*`` settings of one run."""

    sleep_seconds: float
    model_calls: int
    output_tokens: int | None
    fail: str | None

    @classmethod
    def read(cls, context: JSONObject) -> _Knobs:
        sleep = context.get("demo_sleep_seconds", 0)
        if isinstance(sleep, bool) or not isinstance(sleep, int | float) or not 0 <= sleep < 1e6:
            raise AgentError("demo_sleep_seconds must be a number of seconds ≥ 0")
        calls = context.get("demo_model_calls", 1)
        if isinstance(calls, bool) or not isinstance(calls, int):
            raise AgentError(
                f"demo_model_calls must be an integer from 1 to {MAX_DEMO_MODEL_CALLS}"
            )
        if not 1 <= calls <= MAX_DEMO_MODEL_CALLS:
            raise AgentError(
                f"demo_model_calls must be an integer from 1 to {MAX_DEMO_MODEL_CALLS}"
            )
        tokens = context.get("demo_output_tokens")
        if tokens is not None and (
            isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0
        ):
            raise AgentError("demo_output_tokens must be an integer ≥ 0")
        fail = context.get("demo_fail")
        if fail is not None and (not isinstance(fail, str) or not fail):
            raise AgentError("demo_fail must be a non-empty string")
        return cls(float(sleep), calls, tokens, fail)
