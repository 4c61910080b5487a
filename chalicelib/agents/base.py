"""The agent protocol, the run context, and the budget meter every model call passes.

An agent gets the run's input, the thread's state and a :class:`RunContext`; it
returns an :class:`AgentResult` (output text and the new thread state). It never
calls a model directly: it calls :meth:`RunContext.model_call`, which

1. refuses to *start* a call once the deadline has passed (:class:`DeadlineExceeded`);
2. reserves the call's worst-case cost — prompt tokens × input price + max output
   tokens × output price — and refuses the call if the reservation does not fit in
   what is left of the budget (:class:`BudgetExceeded`);
3. makes the call with a timeout no longer than the time left;
4. settles the reservation with the real usage the provider reported;
5. retries a call the provider refused *transiently* (:class:`ProviderError` with
   ``transient=True``: HTTP 429/5xx, throttling, a connection lost before any output)
   under the schedule's :class:`RetryPolicy`, with exponential backoff and jitter
   (``tenacity``), never waiting less than the provider's ``Retry-After``.

**Retries stay inside the run's limits.** Every attempt is a call like any other: it
reserves its worst case, and an attempt the provider provably did not bill releases
it. A retry is not started unless, after its backoff, at least
``MIN_ATTEMPT_SECONDS`` of the run remain (an attempt begun with milliseconds left
would only time out and be booked at its reservation) — the call fails with
:class:`DeadlineExceeded` whose ``__cause__`` is the last provider error, so the run
ends ``timeout`` naming it; a retry whose worst case no longer fits the budget is not
started either (:class:`BudgetExceeded`, same cause). Permanent errors (auth,
validation, other 4xx) are never retried. Sleeping uses ``RunContext.sleep`` and the
clock ``RunContext.monotonic`` (both injected), so tests never wait for real. Every
attempt is counted and every failed one recorded (:class:`AttemptLog`) for the run's
history. Agents whose calls start and end in callbacks (:meth:`RunContext.begin_call`,
the LangGraph graph) are counted but not retried here: their model client owns its
own retries.

Spend therefore never exceeds the budget — provided the provider honours the
output bound the reservation assumed (the ``max_tokens`` sent; the OpenAI-compatible
agent also streams and cuts the answer there) and counts prompt tokens within
:func:`prompt_token_bound`. A provider that reports more is booked truthfully and the
run ends at once with :class:`BudgetOverrun` (overshoot ≤ that one call).

What a failed call costs: a :class:`ProviderError` with ``billed=False`` (the
provider's answer proves nothing was generated) releases the reservation; every
ambiguous ending — the deadline cut the call, the connection was lost mid-response,
any other exception — is booked at its reservation.

Usage and cost are read from the meter by the run executor for every outcome —
success, error, timeout and budget_exceeded alike.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from chalicelib.domain.models import (
    MAX_RECORDED_FAILED_ATTEMPTS,
    FailedAttempt,
    JSONObject,
    Usage,
    clip_text,
    query_text_of,
    utcnow,
)

T = TypeVar("T")

MILLION = Decimal(1_000_000)


class AgentError(Exception):
    """The agent or its model provider failed; the run ends ``error``."""


class ProviderError(AgentError):
    """A model provider answered a call with an error.

    ``billed`` is False only when the provider's answer proves nothing was generated
    (an HTTP error status before any output, Bedrock throttling or validation): the
    call's reservation is then released instead of booked. ``transient`` marks errors
    worth retrying (429, 5xx, throttling, a connection lost before any output);
    ``retry_after`` is the provider's own hint in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        billed: bool = True,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.billed = billed
        self.transient = transient
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """The run's deadline passed; the run ends ``timeout``."""


class RunCancelled(BaseException):
    """Raised inside a run's agent threads that outlive the run (see :func:`stop_threads`).

    A ``BaseException``, like ``KeyboardInterrupt``: an agent's ``except Exception``
    does not swallow it.
    """


class BudgetExceeded(Exception):
    """The next model call does not fit in the remaining budget.

    The run ends ``budget_exceeded``.
    """


class BudgetOverrun(BudgetExceeded):
    """A provider reported usage costing more than the call's reservation.

    The usage is booked as reported (spend may then exceed the budget by at most this
    one call's overshoot); the run ends ``budget_exceeded`` at once and the schedule is
    paused by the system with ``pause_reason = budget_overrun``: the provider did not
    honour the output bound the budget relies on.
    """

    def __init__(self, model: str, reserved: Decimal, charged: Decimal) -> None:
        self.model = model
        self.reserved = reserved
        self.charged = charged
        self.overshoot = charged - reserved
        super().__init__(
            f"model {model} reported usage costing ${charged:.6f} for a call bounded at "
            f"${reserved:.6f} (overshoot ${self.overshoot:.6f}): the provider did not honour "
            "the output bound"
        )


class OutputBoundExceeded(BudgetExceeded):
    """A streamed answer went past the call's output bound and was cut there.

    The provider ignored ``max_tokens``; the agent stopped reading and closed the
    connection, and the call is booked at its reservation. The run ends
    ``budget_exceeded`` with spend within the budget.
    """


class CapExceeded(BudgetExceeded):
    """The next model call does not fit in what is left of a monthly cap (``scope`` is
    ``user`` or ``tenant``). The run ends ``budget_exceeded``, without a pause: later fires
    of the month are skipped (``monthly_cap``) instead."""

    def __init__(self, scope: str, monthly_usd: Decimal, used_usd: Decimal, amount: Decimal):
        super().__init__(
            f"monthly {scope} cap of ${monthly_usd} reached: ${used_usd:.6f} spent or held "
            f"this month (UTC), the next call may cost up to ${amount:.6f}"
        )
        self.scope = scope
        self.monthly_usd = monthly_usd


class SpendGuard(Protocol):
    """Spend limits above the run (monthly caps), consulted by :class:`BudgetMeter`.

    ``reserve`` is called with a call's worst case after the run's own budget accepted
    it, and raises :class:`BudgetExceeded` (or a subclass naming the cap) to refuse
    the call; ``settle`` replaces that reservation with what was booked (0 for a
    released call).
    """

    def reserve(self, amount: Decimal) -> None: ...

    def settle(self, reserved: Decimal, charged: Decimal) -> None: ...


@dataclass(frozen=True)
class ModelPrice:
    """USD per one million tokens."""

    model: str
    provider: str
    input_per_million: Decimal
    output_per_million: Decimal
    max_output_tokens: int | None = None
    """The most the model generates in one call (the price catalog's ``max_output_tokens``)."""

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (
            Decimal(input_tokens) * self.input_per_million
            + Decimal(output_tokens) * self.output_per_million
        ) / MILLION


@dataclass
class Reservation:
    price: ModelPrice
    amount: Decimal
    settled: bool = False


@dataclass
class BudgetMeter:
    """Tracks reserved and settled spend against ``limit_usd``; thread-safe."""

    limit_usd: Decimal
    spent_usd: Decimal = Decimal(0)
    reserved_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    guard: SpendGuard | None = None
    """Monthly caps, when any are configured; ``None`` costs nothing per call."""
    overrun: BudgetOverrun | None = None
    """The first call whose reported usage exceeded its reservation; no call after it."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def remaining_usd(self) -> Decimal:
        return self.limit_usd - self.spent_usd - self.reserved_usd

    def reserve(self, price: ModelPrice, prompt_tokens: int, max_output_tokens: int) -> Reservation:
        worst = price.cost(prompt_tokens, max_output_tokens)
        with self._lock:
            if self.overrun is not None:
                raise self.overrun
            if self.spent_usd + self.reserved_usd + worst > self.limit_usd:
                raise BudgetExceeded(
                    f"a call to {price.model} may cost up to ${worst:.6f}; "
                    f"${self.remaining_usd:.6f} of ${self.limit_usd} left"
                )
            self.reserved_usd += worst
        if self.guard is not None:
            try:
                self.guard.reserve(worst)
            except BaseException:
                with self._lock:
                    self.reserved_usd -= worst
                raise
        return Reservation(price=price, amount=worst)

    def settle(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> Decimal:
        """Replace the reservation with the real cost the provider reported.

        The reservation is an upper bound only if the provider honoured the output
        bound (``max_tokens`` sent, or the stream cut there) and tokenises the prompt
        within :func:`prompt_token_bound`. The cost is booked as reported either way,
        never rounded down; a cost above the reservation is recorded as the meter's
        :attr:`overrun` and raised as :class:`BudgetOverrun` after booking, so the run
        ends at once and no later call is reserved.
        """
        charged = reservation.price.cost(input_tokens, output_tokens)
        overrun: BudgetOverrun | None = None
        with self._lock:
            if reservation.settled:
                return Decimal(0)
            reservation.settled = True
            self.reserved_usd -= reservation.amount
            self.spent_usd += charged
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens
            self.calls += 1
            if charged > reservation.amount:
                overrun = BudgetOverrun(reservation.price.model, reservation.amount, charged)
                if self.overrun is None:
                    self.overrun = overrun
        if self.guard is not None:
            self.guard.settle(reservation.amount, charged)
        if overrun is not None:
            raise overrun
        return charged

    def settle_worst_case(self, reservation: Reservation) -> None:
        """A call whose outcome is unknown (cut by the deadline) is booked at its reservation."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self.reserved_usd -= reservation.amount
            self.spent_usd += reservation.amount
            self.calls += 1
        if self.guard is not None:
            self.guard.settle(reservation.amount, reservation.amount)

    def release(self, reservation: Reservation) -> None:
        """A call the provider provably did not bill (:class:`ProviderError` with
        ``billed=False``) costs nothing: its reservation is returned."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self.reserved_usd -= reservation.amount
            self.calls += 1
        if self.guard is not None:
            self.guard.settle(reservation.amount, Decimal(0))

    def usage(self) -> Usage:
        with self._lock:
            return Usage(
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                cost_usd=self.spent_usd,
            )

    def exposure(self) -> Usage:
        """What the run would be booked at if its process died now: the settled spend plus
        every in-flight call at its reservation (an interrupted call is an ambiguous
        ending, booked at its worst case like any other). Tokens are the settled ones."""
        with self._lock:
            return Usage(
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                cost_usd=self.spent_usd + self.reserved_usd,
            )


@dataclass(frozen=True)
class CallUsage:
    """What the provider reported for one call."""

    input_tokens: int
    output_tokens: int


def usage_reported(input_tokens: Any, output_tokens: Any) -> CallUsage | None:
    """The usage a provider reported, or ``None`` when it reported none we can trust.

    A token count that is not a plain non-negative ``int`` (missing, a string, a
    float, a ``bool`` — which Python counts as an ``int`` — or negative) is treated as
    no usage reported, so the call is booked at its reservation: a buggy or hostile
    provider must never lower a run's spend or the monthly counters.
    """
    for count in (input_tokens, output_tokens):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return None
    return CallUsage(input_tokens, output_tokens)


class Monotonic(Protocol):
    def __call__(self) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How often one model call is tried when the provider refuses it transiently.

    ``max_attempts`` 1 means no retry. The n-th retry waits
    ``initial_backoff_seconds × 2^(n-1)`` plus up to ``initial_backoff_seconds`` of
    random jitter, at most ``max_backoff_seconds`` — and never less than the
    provider's ``Retry-After``.
    """

    max_attempts: int = 1
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0


# A retry is started only if, after its backoff, at least this much of the run is
# left: an attempt begun with a few milliseconds to spare cannot answer, times out at
# the deadline and is booked at its full reservation for nothing.
MIN_ATTEMPT_SECONDS = 1.0

FAILED_ATTEMPT_MESSAGE_BYTES = 256


@dataclass
class AttemptLog:
    """Every model-call attempt of a run, and the failed ones (capped) for its history."""

    attempts: int = 0
    failed: list[FailedAttempt] = field(default_factory=list)
    failed_total: int = 0
    """All failed attempts; ``failed`` keeps the first :data:`MAX_RECORDED_FAILED_ATTEMPTS`."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self) -> None:
        with self._lock:
            self.attempts += 1

    def failure(self, exc: BaseException, at: datetime) -> None:
        provider = exc if isinstance(exc, ProviderError) else None
        entry = FailedAttempt(
            at=at,
            error=type(exc).__name__,
            message=clip_text(str(exc), FAILED_ATTEMPT_MESSAGE_BYTES) or "",
            transient=bool(provider and provider.transient),
            billed=True if provider is None else provider.billed,
            retry_after=None if provider is None else provider.retry_after,
        )
        with self._lock:
            self.failed_total += 1
            if len(self.failed) < MAX_RECORDED_FAILED_ATTEMPTS:
                self.failed.append(entry)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.transient


class _Backoff:
    """tenacity's exponential backoff with jitter, floored at the provider's Retry-After."""

    def __init__(self, policy: RetryPolicy) -> None:
        initial = policy.initial_backoff_seconds
        self._exponential = wait_exponential_jitter(
            multiplier=initial, max=policy.max_backoff_seconds, jitter=initial
        )

    def __call__(self, state: RetryCallState) -> float:
        wait = float(self._exponential(state))
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = exc.retry_after if isinstance(exc, ProviderError) else None
        if hint is not None and hint > wait:
            return float(hint)
        return wait


@dataclass
class RunContext:
    """Everything an agent may use during one run."""

    run_id: str
    schedule_id: str
    thread_id: str | None
    deadline: float
    """Monotonic-clock instant after which no model call may start."""
    budget: BudgetMeter
    config: JSONObject = field(default_factory=dict)
    context: JSONObject = field(default_factory=dict)
    metadata: JSONObject = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    models_used: list[ModelPrice] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set when the run is over: from then on no model call may start."""
    threads: list[threading.Thread] = field(default_factory=list)
    """Threads started for this run (:meth:`start_thread`), stopped with it."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    attempts: AttemptLog = field(default_factory=AttemptLog)
    now: Callable[[], datetime] = utcnow
    """The wall clock, for the time of a failed attempt."""

    def time_left(self) -> float:
        return self.deadline - self.monotonic()

    def check_deadline(self) -> None:
        if self.cancelled.is_set():
            raise DeadlineExceeded("the run is over")
        if self.time_left() <= 0:
            raise DeadlineExceeded("the run's deadline has passed")

    def cancel(self) -> None:
        """End the run for the agent: every later model call is refused."""
        self.cancelled.set()

    def start_thread(self, target: Callable[[], object], name: str) -> threading.Thread:
        """Start a daemon thread that belongs to this run (stopped when the run ends)."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def begin_call(
        self, price: ModelPrice, prompt_tokens: int, max_output_tokens: int
    ) -> Reservation:
        """Steps 1 and 2 of :meth:`model_call` for agents whose calls start and end in callbacks.

        The caller must settle the returned reservation (``budget.settle`` with the
        reported usage, or ``budget.settle_worst_case`` when the outcome is unknown).
        """
        self.check_deadline()
        reservation = self.budget.reserve(price, prompt_tokens, max_output_tokens)
        if price not in self.models_used:
            self.models_used.append(price)
        self.attempts.started()
        return reservation

    def model_call(
        self,
        price: ModelPrice,
        *,
        prompt_tokens: int,
        max_output_tokens: int,
        call: Callable[[float], tuple[T, CallUsage]],
    ) -> T:
        """Run one model call under the deadline and the budget, retrying transient errors.

        ``call`` receives the seconds left (use it as the request timeout) and returns
        the provider's answer with the usage it reported. A ``TimeoutError`` from
        ``call`` after the deadline becomes :class:`DeadlineExceeded`. A transient
        :class:`ProviderError` is retried under :attr:`retry` (see the module docstring).
        """
        stopped: list[str] = []

        def give_up(state: RetryCallState) -> bool:
            if state.attempt_number >= self.retry.max_attempts or self.cancelled.is_set():
                return True
            if state.upcoming_sleep + MIN_ATTEMPT_SECONDS > self.time_left():
                stopped.append("deadline")
                return True
            if price.cost(prompt_tokens, max_output_tokens) > self.budget.remaining_usd:
                stopped.append("budget")
                return True
            return False

        retrying = Retrying(
            stop=give_up,
            wait=_Backoff(self.retry),
            retry=retry_if_exception(_retryable),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            result: T = retrying(self._attempt, price, prompt_tokens, max_output_tokens, call)
            return result
        except ProviderError as exc:
            if stopped == ["deadline"]:
                raise DeadlineExceeded(
                    "the next attempt's backoff would leave less than "
                    f"{MIN_ATTEMPT_SECONDS:g} s before the deadline; last error: {exc}"
                ) from exc
            if stopped == ["budget"]:
                raise BudgetExceeded(
                    f"another attempt of {price.model} may cost up to "
                    f"${price.cost(prompt_tokens, max_output_tokens):.6f}; "
                    f"${self.budget.remaining_usd:.6f} left; last error: {exc}"
                ) from exc
            raise

    def _attempt(
        self,
        price: ModelPrice,
        prompt_tokens: int,
        max_output_tokens: int,
        call: Callable[[float], tuple[T, CallUsage]],
    ) -> T:
        """One attempt: steps 1–4 of the module docstring."""
        reservation = self.begin_call(price, prompt_tokens, max_output_tokens)
        try:
            result, usage = call(max(self.time_left(), 0.001))
        except TimeoutError as exc:
            self.attempts.failure(exc, self.now())
            self.budget.settle_worst_case(reservation)
            raise DeadlineExceeded("the model call did not finish before the deadline") from exc
        except ProviderError as exc:
            self.attempts.failure(exc, self.now())
            if exc.billed:
                self.budget.settle_worst_case(reservation)
            else:
                self.budget.release(reservation)
            raise
        except Exception as exc:
            # A failed call may still have been billed; book the worst case.
            self.attempts.failure(exc, self.now())
            self.budget.settle_worst_case(reservation)
            raise
        except BaseException:
            self.budget.settle_worst_case(reservation)
            raise
        self.budget.settle(reservation, usage.input_tokens, usage.output_tokens)
        return result


@dataclass(frozen=True)
class AgentResult:
    """What one agent invocation produced."""

    output: str
    """The final answer as text (Shannon's ``result``)."""
    values: JSONObject
    """The thread's new state (e.g. ``{"messages": [...]}``)."""


class Agent(Protocol):
    """A runnable agent. Implementations must route every model call through ``ctx.model_call``."""

    graph_id: str

    def invoke(
        self, input: JSONObject | list[Any] | None, state: JSONObject | None, ctx: RunContext
    ) -> AgentResult: ...


class Assistant(Protocol):
    """What the run engine reads of a registered assistant."""

    @property
    def graph_id(self) -> str: ...
    @property
    def model(self) -> str | None: ...


class Agents(Protocol):
    """The run engine's view of the agents (``AgentCatalog``; the benchmark times one)."""

    def assistant(self, graph_id: str) -> Assistant | None: ...
    def agent(self, graph_id: str) -> Agent: ...
    def model_info(self, graph_id: str) -> tuple[str | None, str | None]: ...


PER_MESSAGE_OVERHEAD_TOKENS = 8


def prompt_token_bound(*texts: str) -> int:
    """An upper bound on the prompt tokens of ``texts``, for the pre-flight reservation.

    Byte-level BPE tokenizers never produce more tokens than UTF-8 bytes, so the byte
    count (plus a per-message allowance for the chat template) bounds the real count
    from above. It over-reserves by about 4x for English, which only matters when a
    budget is within a few cents of a run's real cost.
    """
    return sum(len(t.encode("utf-8")) + PER_MESSAGE_OVERHEAD_TOKENS for t in texts) or 1


# --- stopping a run's threads ----------------------------------------------------------------


def interrupt(thread: threading.Thread, exc: type[BaseException] = RunCancelled) -> bool:
    """Raise ``exc`` in ``thread`` at its next Python instruction.

    CPython's ``PyThreadState_SetAsyncExc``: a thread running Python code stops almost
    at once; one blocked in a C call (a socket read, a lock wait) stops when that call
    returns. Like any asynchronous exception it could, in principle, land between a
    lock's acquire and the ``try`` that releases it, so it is only ever sent to a run's
    own agent threads that have already outlived the run.
    """
    import ctypes

    if thread.ident is None or not thread.is_alive():
        return False
    ident = ctypes.c_ulong(thread.ident)
    found = int(ctypes.pythonapi.PyThreadState_SetAsyncExc(ident, ctypes.py_object(exc)))
    if found > 1:  # cannot happen for a live ident; undo rather than hit other threads
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ident, None)
        return False
    return found == 1


def stop_threads(
    threads: Sequence[threading.Thread], *, grace: float, interval: float = 0.02
) -> list[threading.Thread]:
    """Interrupt each live thread (again every ``interval``) for at most ``grace`` seconds.

    Returns the threads still alive: ones blocked in a C call that outlasted the grace,
    or that catch even :class:`RunCancelled`. They can no longer spend — the run's
    context refuses every model call once cancelled — and end when they return.
    """
    current = threading.current_thread()
    live = [t for t in threads if t.is_alive() and t is not current]
    end = time.monotonic() + grace
    while live:
        for thread in live:
            interrupt(thread)
        left = end - time.monotonic()
        if left <= 0:
            break
        live[0].join(min(interval, left))
        live = [t for t in live if t.is_alive()]
    return live


# --- helpers shared by the built-in agents ------------------------------------------------


def call_with_timeout(fn: Callable[[], T], timeout: float, *, name: str = "agentcron-call") -> T:
    """Run ``fn`` in a daemon thread and wait at most ``timeout`` seconds for it.

    Transports bound single socket operations, not a whole call (DNS resolution, a
    server trickling bytes, botocore's retries), so this is what keeps a provider
    call inside the run's deadline. On timeout the thread is abandoned — it cannot
    be killed — and :class:`TimeoutError` is raised; the caller books the call at
    its worst case, because the provider may still bill it.
    """
    outcome: list[tuple[bool, Any]] = []
    done = threading.Event()

    def target() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # handed to the waiting thread below
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=target, name=name, daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise TimeoutError(f"no answer within {timeout:.3f} s")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation, reduced to what every chat provider accepts."""

    role: str
    """``system``, ``user``, ``assistant`` or ``tool``."""
    content: str

    def as_json(self) -> JSONObject:
        """The shape stored in a thread's ``values["messages"]``."""
        return {"role": self.role, "content": self.content}


# LangGraph's message dicts say ``type: human|ai``; OpenAI's say ``role: user|assistant``.
_ROLE_ALIASES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text blocks of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "\n".join(parts)
    return json.dumps(
        content, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
    )


def chat_messages(messages: Any) -> list[ChatMessage]:
    """Normalise a LangGraph-style message list.

    Accepts ``{"role"|"type": ..., "content": ...}`` dicts, ``[role, content]`` pairs
    and bare strings (user messages). Unknown roles count as ``user``; anything that
    is not a message is skipped.
    """
    if not isinstance(messages, list):
        return []
    out: list[ChatMessage] = []
    for item in messages:
        if isinstance(item, str):
            out.append(ChatMessage("user", item))
        elif isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(
                ChatMessage(_ROLE_ALIASES.get(item[0].lower(), "user"), message_text(item[1]))
            )
        elif isinstance(item, dict) and "content" in item:
            role = item.get("role", item.get("type", "user"))
            role = _ROLE_ALIASES.get(role.lower(), "user") if isinstance(role, str) else "user"
            out.append(ChatMessage(role, message_text(item["content"])))
    return out


def input_messages(input: JSONObject | list[Any] | None) -> list[ChatMessage]:
    """The messages a run's input adds to the thread.

    ``{"messages": [...]}`` or a bare list contributes its messages; ``None`` adds
    nothing; any other JSON becomes one user message (its ``query``, else its
    compact JSON — see :func:`~chalicelib.domain.models.query_text_of`).
    """
    if input is None:
        return []
    if isinstance(input, list):
        return chat_messages(input)
    if isinstance(input.get("messages"), list):
        return chat_messages(input["messages"])
    return [ChatMessage("user", query_text_of(input))]


def state_messages(state: JSONObject | None) -> list[ChatMessage]:
    """The conversation already stored in a thread's values."""
    return chat_messages((state or {}).get("messages"))


def chat_result(
    state: JSONObject | None, conversation: Sequence[ChatMessage], answer: str
) -> AgentResult:
    """The result of a chat agent: the answer, and the thread state with the conversation
    so far plus the answer as the new last message (other state keys are kept)."""
    messages = [m.as_json() for m in conversation]
    messages.append(ChatMessage("assistant", answer).as_json())
    return AgentResult(output=answer, values={**(state or {}), "messages": messages})
