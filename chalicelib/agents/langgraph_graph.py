"""A user's own LangGraph graph, run under the run's deadline and budget.

The assistant names the graph as ``"module.path:attribute"``; the attribute may be a
compiled graph, an uncompiled ``StateGraph`` (compiled here) or a zero-argument
factory returning either. ``langgraph`` is an optional extra: this module is only
imported by :meth:`~chalicelib.agents.registry.AgentFactory.build`, and the graph's
module only on the first run.

**Metering every model call.** Model calls happen deep inside the user's nodes, so
they cannot be wrapped in :meth:`~chalicelib.agents.base.RunContext.model_call`.
Instead a :class:`BudgetCallbackHandler` rides in the run's ``callbacks`` (LangChain
propagates it to every chat model and LLM the graph invokes) with
``raise_error = True``, so an exception in ``on_chat_model_start``/``on_llm_start``
aborts the call *before the request is sent*:

* start: refuse if the deadline has passed (``DeadlineExceeded``), else reserve the
  worst case and refuse if it does not fit (``BudgetExceeded``). The prompt bound is
  :func:`~chalicelib.agents.base.prompt_token_bound` over the serialized messages
  (their text, plus any tool calls) and the bound tools' schemas; max output tokens
  are the bound the call actually sends — its invocation parameters' ``max_tokens``
  (``max_completion_tokens``, ``max_output_tokens``, ``maxTokens``, ``num_predict``,
  as the LangChain integrations name it; LangSmith's ``ls_max_tokens``) — else, when
  the call sends none (e.g. ``ChatOpenAI()`` by default), the model's ``max_output_tokens``
  from the price catalog: the provider may then generate that much, so that much is
  reserved. Configure the graph's models with ``max_tokens`` for a tighter bound.
* end: settle with the generation messages' ``usage_metadata``
  (``input_tokens``/``output_tokens``), else ``llm_output["token_usage"]``; a call
  with no reported usage — or a negative, boolean or non-integer count — is booked at
  its reservation. Usage costing more than the
  reservation (a provider that ignored the bound) is booked as reported and raises
  :class:`~chalicelib.agents.base.BudgetOverrun` from the callback: the run ends
  ``budget_exceeded`` at once.
* error: the SDK's exception is classified by
  :func:`~chalicelib.agents.provider_errors.classify_exception` — an HTTP error status
  or a Bedrock throttling/validation error before any streamed token releases the
  reservation; anything else (a connection lost, a timeout, a failure after output
  started) is booked at the reservation.
* retry (``on_retry``, fired by LangChain's retry decorator between attempts inside
  one start/end pair): the abandoned attempt is booked at its reservation and
  recorded as failed, and the next attempt reserves again (or is refused, as at
  start). Retries inside an SDK client (``ChatOpenAI(max_retries=2)``) fire no
  callback and are metered as one call: the README tells users to set
  ``max_retries=0`` on graph models.
* price: the call's own model (``ls_model_name`` in the call metadata, else the
  ``model``/``model_name`` invocation parameter) when it is priced — a graph that
  routes between a cheap and an expensive model is charged for each correctly —
  otherwise the assistant's configured ``model``. An assistant without a ``model``
  refuses calls to unpriced models (``AgentError``): no call is ever free. Register
  the most expensive model the graph may use as the assistant's ``model``.

A refusal is remembered: if the user's node catches the exception and the graph
carries on, the run still ends with that refusal.

**Deadline.** The graph runs in a daemon thread of the run (``ctx.start_thread``); the
agent waits at most the time left. At the deadline it closes the handler — every
later model call is refused, and calls still in flight are booked at their
reservation — and raises ``DeadlineExceeded``; the run engine then stops the graph's
thread (see :func:`~chalicelib.agents.base.stop_threads`). Nodes of parallel branches
run on LangGraph's own pool threads: they cannot spend either, and end when their
node returns.

**Thread state.** agentcron's thread is the graph's memory (the graph's own
checkpointer, if it was compiled with one, is dropped so history is not applied
twice). The graph gets the thread's values merged with the input *through the
graph's own reducers*: for each input key whose channel has a reducer (e.g.
``add_messages``, ``operator.add``), the value is ``reducer(state[key], input[key])``;
other keys from the input replace the thread's. Invoking with the merged values
gives what a checkpointed LangGraph thread would have.

**Values** are made JSON-serialisable for the thread store: messages become
``{"role", "content"}`` dicts (``role`` is ``user``/``assistant``/``system``/``tool``,
as the other agents store them), keeping ``tool_calls``, ``tool_call_id`` and
``name`` when present so the next run can replay a tool conversation; pydantic
models are dumped in JSON mode; anything else unknown is stored as ``str``. The
output text is the content of the last AI message.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult
from pydantic import BaseModel
from tenacity import RetryCallState
from typing_extensions import override

from chalicelib.agents.base import (
    AgentError,
    AgentResult,
    BudgetExceeded,
    BudgetOverrun,
    DeadlineExceeded,
    ModelPrice,
    Reservation,
    RunContext,
    message_text,
    prompt_token_bound,
    usage_reported,
)
from chalicelib.agents.provider_errors import classify_exception
from chalicelib.domain.errors import ConfigurationError
from chalicelib.domain.models import JSONObject

# How often the waiting agent re-reads ctx.monotonic (it may be a test's fake clock).
_WAIT_SLICE_SECONDS = 0.25

# The output bound as LangChain integrations name it in their invocation parameters:
# OpenAI/Anthropic/Bedrock Converse, OpenAI's newer field, Google, Bedrock's camelCase,
# Ollama (whose -1 = unbounded is not a bound). Non-positive values are no bound.
_MAX_TOKEN_KEYS = (
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "maxTokens",
    "num_predict",
)
_ROLE_OF_TYPE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


class BudgetCallbackHandler(BaseCallbackHandler):
    """Puts every model call of a graph run through the deadline and the budget."""

    raise_error = True
    """Exceptions raised here abort the model call (LangChain re-raises them)."""
    run_inline = True

    def __init__(
        self,
        ctx: RunContext,
        prices: Mapping[str, ModelPrice],
        default_price: ModelPrice | None,
    ) -> None:
        self._ctx = ctx
        self._prices = prices
        self._default_price = default_price
        self._reservations: dict[UUID, Reservation] = {}
        self._bounds: dict[UUID, tuple[ModelPrice, int, int]] = {}
        """Each open call's price, prompt bound and output bound (to reserve a retry)."""
        self._streaming: set[UUID] = set()
        """Calls that have streamed output (their failures are billed)."""
        self._lock = threading.Lock()
        self._closed: str | None = None
        self.refusal: Exception | None = None
        """The first call this handler refused (the run's outcome, even if the graph caught it)."""

    # --- LangChain callbacks ---------------------------------------------------------------

    @override
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        texts = [_prompt_text(message) for batch in messages for message in batch]
        self._begin(run_id, texts, kwargs.get("invocation_params"), metadata)

    @override
    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        self._begin(run_id, list(prompts), kwargs.get("invocation_params"), metadata)

    @override
    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        with self._lock:
            reservation = self._reservations.pop(run_id, None)
            self._bounds.pop(run_id, None)
            self._streaming.discard(run_id)
        if reservation is None:
            return
        usage = reported_usage(response)
        if usage is None:
            self._ctx.budget.settle_worst_case(reservation)
            return
        try:
            self._ctx.budget.settle(reservation, *usage)
        except BudgetOverrun as exc:
            # Booked as reported; the run ends now, even if the graph catches this.
            with self._lock:
                if self.refusal is None:
                    self.refusal = exc
            raise

    @override
    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        with self._lock:
            reservation = self._reservations.pop(run_id, None)
            self._bounds.pop(run_id, None)
            output_started = run_id in self._streaming
            self._streaming.discard(run_id)
        if reservation is None:
            return
        classified = classify_exception(error, output_started=output_started)
        if classified.billed:
            # The provider may have billed a call that failed midway.
            self._ctx.budget.settle_worst_case(reservation)
        else:
            self._ctx.budget.release(reservation)

    @override
    def on_retry(
        self,
        retry_state: RetryCallState,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        # A model client retrying inside one start/end pair (LangChain's retry
        # decorator fires this between attempts): the abandoned attempt is booked at
        # its reservation — it may have been billed — and the next attempt reserves
        # again, under the run's deadline and budget, or is refused.
        with self._lock:
            reservation = self._reservations.pop(run_id, None)
            bounds = self._bounds.get(run_id)
            self._streaming.discard(run_id)
        if reservation is None or bounds is None:
            return
        self._ctx.budget.settle_worst_case(reservation)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if error is not None:
            self._ctx.attempts.failure(error, self._ctx.now())
        with self._lock:
            try:
                if self._closed is not None:
                    raise DeadlineExceeded(self._closed)
                self._reservations[run_id] = self._ctx.begin_call(*bounds)
            except (DeadlineExceeded, BudgetExceeded, AgentError) as exc:
                self._bounds.pop(run_id, None)
                if self.refusal is None:
                    self.refusal = exc
                raise

    @override
    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        # Output has started: a failure from here on may have been billed.
        with self._lock:
            if run_id in self._reservations:
                self._streaming.add(run_id)

    # --- metering ----------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """Refuse every later call; book calls still in flight at their reservation."""
        with self._lock:
            if self._closed is None:
                self._closed = reason
            pending = list(self._reservations.values())
            self._reservations.clear()
        for reservation in pending:
            self._ctx.budget.settle_worst_case(reservation)

    def _begin(
        self,
        run_id: UUID,
        texts: list[str],
        params: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        params = params or {}
        metadata = metadata or {}
        tools = [params[key] for key in ("tools", "functions") if params.get(key)]
        prompt_tokens = prompt_token_bound(*texts, *(_compact_json(t) for t in tools))
        # One lock around check-and-reserve, so close() cannot slip between them.
        with self._lock:
            try:
                if self._closed is not None:
                    raise DeadlineExceeded(self._closed)
                price = self._price(params, metadata)
                max_output_tokens = self._max_output_tokens(params, metadata, price)
                reservation = self._ctx.begin_call(price, prompt_tokens, max_output_tokens)
            except (DeadlineExceeded, BudgetExceeded, AgentError) as exc:
                if self.refusal is None:
                    self.refusal = exc
                raise
            self._reservations[run_id] = reservation
            self._bounds[run_id] = (price, prompt_tokens, max_output_tokens)

    def _price(self, params: Mapping[str, Any], metadata: Mapping[str, Any]) -> ModelPrice:
        name = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
        if isinstance(name, str) and name in self._prices:
            return self._prices[name]
        if self._default_price is not None:
            return self._default_price
        raise AgentError(
            f"the graph called model {name!r}, which has no price; add it to MODEL_PRICES_FILE "
            "or give the assistant a priced model"
        )

    def _max_output_tokens(
        self, params: Mapping[str, Any], metadata: Mapping[str, Any], price: ModelPrice
    ) -> int:
        """The output bound in force for this call: the one it sends, else the model's maximum."""
        for value in (*(params.get(key) for key in _MAX_TOKEN_KEYS), metadata.get("ls_max_tokens")):
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        # The call sends no bound: the provider may generate up to the model's maximum.
        if price.max_output_tokens is None:
            raise AgentError(
                f"the graph called a model without max_tokens and {price.model!r} has no "
                "max_output_tokens in the price catalog; add it to MODEL_PRICES_FILE or "
                "configure the graph's model with max_tokens"
            )
        return price.max_output_tokens


def reported_usage(response: LLMResult) -> tuple[int, int] | None:
    """(input, output) tokens a model reported, or ``None`` when it reported none.

    A count that is not a non-negative ``int`` counts as none reported (see
    :func:`~chalicelib.agents.base.usage_reported`), so the call is booked at its
    reservation.
    """
    input_tokens = output_tokens = 0
    found = False
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                counted = usage_reported(
                    usage.get("input_tokens", 0), usage.get("output_tokens", 0)
                )
                if counted is None:
                    return None
                input_tokens += counted.input_tokens
                output_tokens += counted.output_tokens
                found = True
    if found:
        return input_tokens, output_tokens
    llm_output = response.llm_output or {}
    token_usage = llm_output.get("token_usage") or llm_output.get("usage")
    if isinstance(token_usage, Mapping):
        prompt = token_usage.get("prompt_tokens", token_usage.get("input_tokens"))
        completion = token_usage.get("completion_tokens", token_usage.get("output_tokens"))
        counted = usage_reported(prompt, completion)
        if counted is not None:
            return counted.input_tokens, counted.output_tokens
    return None


class LangGraphAgent:
    """Runs a user's LangGraph graph (see the module docstring)."""

    def __init__(
        self,
        *,
        graph_id: str,
        graph_ref: str,
        prices: Mapping[str, ModelPrice],
        default_price: ModelPrice | None,
    ) -> None:
        self.graph_id = graph_id
        self.graph_ref = graph_ref
        self.prices = dict(prices)
        self.default_price = default_price
        self._graph: Any = None
        self._load_lock = threading.Lock()

    def graph(self) -> Any:
        """The runnable graph, imported on first use.

        Raises:
            ConfigurationError: the module or attribute is missing or is not a graph.
        """
        with self._load_lock:
            if self._graph is None:
                self._graph = self._load()
            return self._graph

    def _load(self) -> Any:
        where = f"assistant {self.graph_id!r}: graph {self.graph_ref!r}"
        module_name, _, attribute = self.graph_ref.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or any error raised by the user's module
            raise ConfigurationError(f"{where}: cannot import {module_name!r}: {exc}") from exc
        for part in attribute.split("."):
            try:
                target = getattr(target, part)
            except AttributeError as exc:
                raise ConfigurationError(f"{where}: {module_name!r} has no {attribute!r}") from exc
        if not hasattr(target, "invoke") and not hasattr(target, "compile") and callable(target):
            target = target()  # a graph factory
        if not hasattr(target, "invoke") and hasattr(target, "compile"):
            target = target.compile()  # an uncompiled StateGraph
        if not hasattr(target, "invoke"):
            raise ConfigurationError(f"{where}: {type(target).__name__} is not a LangGraph graph")
        if getattr(target, "checkpointer", None) not in (None, False) and hasattr(target, "copy"):
            target = target.copy(update={"checkpointer": None})
        return target

    def invoke(
        self, input: JSONObject | list[Any] | None, state: JSONObject | None, ctx: RunContext
    ) -> AgentResult:
        graph = self.graph()
        handler = BudgetCallbackHandler(ctx, self.prices, self.default_price)
        config: dict[str, Any] = {
            key: ctx.config[key]
            for key in ("tags", "metadata", "recursion_limit", "run_name")
            if key in ctx.config
        }
        config["callbacks"] = [handler]
        configurable = ctx.config.get("configurable")
        config["configurable"] = {
            "thread_id": ctx.thread_id,
            **(configurable if isinstance(configurable, dict) else {}),
        }
        kwargs: dict[str, Any] = {"context": ctx.context} if ctx.context else {}
        graph_input = merge_input(graph, input, state)

        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append((True, graph.invoke(graph_input, config, **kwargs)))
            except BaseException as exc:  # handed to the waiting thread
                outcome.append((False, exc))
            finally:
                done.set()

        ctx.check_deadline()
        ctx.start_thread(run, name=f"langgraph-{self.graph_id}")
        try:
            while not done.wait(min(max(ctx.time_left(), 0.0), _WAIT_SLICE_SECONDS)):
                if ctx.time_left() <= 0:
                    raise DeadlineExceeded("the graph did not finish before the run's deadline")
        finally:
            # Refuse model calls from here on (the worker may outlive us) and book any
            # call still in flight at its reservation.
            handler.close("the run's deadline has passed")

        ok, value = outcome[0]
        if handler.refusal is not None:
            raise handler.refusal  # even if the graph caught it and carried on
        if not ok:
            if isinstance(value, AgentError | DeadlineExceeded | BudgetExceeded):
                raise value
            if isinstance(value, ConfigurationError):
                raise value
            raise AgentError(
                f"graph {self.graph_ref} failed: {type(value).__name__}: {value}"
            ) from value
        values = to_json_values(value)
        return AgentResult(output=output_text(value, values), values=values)


def merge_input(graph: Any, input: JSONObject | list[Any] | None, state: JSONObject | None) -> Any:
    """The thread's values with the input applied through the graph's reducers."""
    if isinstance(input, list):
        new: dict[str, Any] = {"messages": input}
    elif isinstance(input, dict):
        new = dict(input)
    else:
        new = {}
    if not state:
        return new
    channels = getattr(graph, "channels", None)
    channels = channels if isinstance(channels, Mapping) else {}
    merged = dict(state)
    for key, value in new.items():
        reducer = getattr(channels.get(key), "operator", None)
        merged[key] = reducer(state[key], value) if key in state and callable(reducer) else value
    return merged


def to_json_values(result: Any) -> JSONObject:
    """The graph's result as thread values (see the module docstring)."""
    if isinstance(result, Mapping):
        return {str(key): _jsonable(value) for key, value in result.items()}
    return {"value": _jsonable(result)}


def output_text(result: Any, values: JSONObject) -> str:
    """The content of the last AI message, else the values as compact JSON."""
    messages = result.get("messages") if isinstance(result, Mapping) else None
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, AIMessage):
                return message_text(message.content)
            if isinstance(message, dict) and message.get("role", message.get("type")) in (
                "assistant",
                "ai",
            ):
                return message_text(message.get("content"))
    return _compact_json(values)


def message_json(message: BaseMessage) -> JSONObject:
    out: JSONObject = {
        "role": _ROLE_OF_TYPE.get(message.type, message.type),
        "content": _jsonable(message.content),
    }
    if isinstance(message, AIMessage) and message.tool_calls:
        out["tool_calls"] = [
            {"id": call.get("id"), "name": call["name"], "args": _jsonable(call["args"])}
            for call in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseMessage):
        return message_json(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def _prompt_text(message: BaseMessage) -> str:
    text = message_text(message.content)
    if isinstance(message, AIMessage) and message.tool_calls:
        text += _compact_json([dict(call) for call in message.tool_calls])
    return text


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
