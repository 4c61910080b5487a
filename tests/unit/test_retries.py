"""The retry loop of ``RunContext.model_call``: transient provider errors are retried
within the run's deadline and budget; every attempt reserves, unbilled ones release."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.agents.base import (
    MIN_ATTEMPT_SECONDS,
    BudgetExceeded,
    CallUsage,
    DeadlineExceeded,
    ModelPrice,
    ProviderError,
    RetryPolicy,
    RunContext,
)
from tests.fixtures.run_context import FakeClock, make_context

PRICE = ModelPrice("m", "p", Decimal("1"), Decimal("2"))
PROMPT, MAX_OUT = 1000, 500
WORST = PRICE.cost(PROMPT, MAX_OUT)  # $0.002


class Script:
    """A provider call that fails with the scripted errors, then answers."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.usage = CallUsage(100, 50)
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> tuple[str, CallUsage]:
        self.timeouts.append(timeout)
        if self.errors:
            raise self.errors.pop(0)
        return "answer", self.usage


def throttled(retry_after: float | None = None, *, billed: bool = False) -> ProviderError:
    return ProviderError("HTTP 429", billed=billed, transient=True, retry_after=retry_after)


def context(
    clock: FakeClock, *, attempts: int = 3, backoff: float = 1.0, **kwargs: object
) -> RunContext:
    ctx = make_context(clock=clock, **kwargs)  # type: ignore[arg-type]
    ctx.retry = RetryPolicy(max_attempts=attempts, initial_backoff_seconds=backoff)
    return ctx


def call(ctx: RunContext, script: Script) -> str:
    return ctx.model_call(PRICE, prompt_tokens=PROMPT, max_output_tokens=MAX_OUT, call=script)


def test_transient_errors_are_retried_with_growing_backoff_until_success() -> None:
    clock = FakeClock()
    ctx = context(clock, backoff=2.0)
    script = Script(throttled(), throttled())
    assert call(ctx, script) == "answer"
    assert len(script.timeouts) == 3
    # 2 × 2^0 then 2 × 2^1, each plus up to 2 s of jitter.
    assert 2.0 <= clock.sleeps[0] <= 4.0 and 4.0 <= clock.sleeps[1] <= 6.0
    assert ctx.budget.usage().cost_usd == PRICE.cost(100, 50)  # the unbilled 429s cost 0
    assert ctx.budget.reserved_usd == 0
    assert ctx.attempts.attempts == 3
    assert [f.error for f in ctx.attempts.failed] == ["ProviderError", "ProviderError"]
    assert all(f.transient and not f.billed for f in ctx.attempts.failed)


def test_retry_after_is_a_floor_for_the_backoff() -> None:
    clock = FakeClock()
    ctx = context(clock, backoff=0.5)
    assert call(ctx, Script(throttled(retry_after=7.0))) == "answer"
    assert clock.sleeps == [7.0]


def test_permanent_errors_are_not_retried() -> None:
    clock = FakeClock()
    ctx = context(clock)
    script = Script(ProviderError("HTTP 401", billed=False))
    with pytest.raises(ProviderError, match="401"):
        call(ctx, script)
    assert len(script.timeouts) == 1 and clock.sleeps == []
    assert ctx.attempts.attempts == 1 and ctx.attempts.failed[0].transient is False


def test_attempts_are_bounded_by_the_policy() -> None:
    clock = FakeClock()
    ctx = context(clock, attempts=2)
    script = Script(throttled(), throttled(), throttled())
    with pytest.raises(ProviderError):
        call(ctx, script)
    assert len(script.timeouts) == 2 and len(clock.sleeps) == 1


def test_one_attempt_means_no_retry() -> None:
    ctx = context(FakeClock(), attempts=1)
    with pytest.raises(ProviderError):
        call(ctx, Script(throttled()))
    assert ctx.attempts.attempts == 1


def test_a_backoff_past_the_deadline_is_not_started() -> None:
    clock = FakeClock()
    ctx = context(clock, timeout=30.0)
    script = Script(throttled(retry_after=45.0))
    with pytest.raises(DeadlineExceeded, match="last error: HTTP 429") as caught:
        call(ctx, script)
    assert isinstance(caught.value.__cause__, ProviderError)
    assert clock.sleeps == [] and len(script.timeouts) == 1


def test_a_retry_that_would_start_with_almost_no_time_left_is_not_started() -> None:
    # A Retry-After ending 5 ms before the deadline: the attempt could only time out
    # and be booked at its worst case.
    clock = FakeClock()
    ctx = context(clock, timeout=10.0)
    script = Script(throttled(retry_after=9.995))
    with pytest.raises(DeadlineExceeded, match="last error: HTTP 429") as caught:
        call(ctx, script)
    assert isinstance(caught.value.__cause__, ProviderError)
    assert clock.sleeps == [] and len(script.timeouts) == 1
    assert ctx.budget.usage().cost_usd == 0 and ctx.budget.reserved_usd == 0


def test_a_retry_with_the_minimum_attempt_time_left_is_started() -> None:
    clock = FakeClock()
    ctx = context(clock, timeout=10.0)
    script = Script(throttled(retry_after=10.0 - MIN_ATTEMPT_SECONDS))
    assert call(ctx, script) == "answer"
    assert script.timeouts[1] == pytest.approx(MIN_ATTEMPT_SECONDS)


def test_a_retry_that_does_not_fit_the_budget_is_not_started() -> None:
    # Billed transient failures (a connection lost mid-answer) each book the worst case:
    # a budget of 2.5 worst cases fits two attempts, never a third.
    clock = FakeClock()
    ctx = context(clock, attempts=5, budget=str(WORST * Decimal("2.5")))
    script = Script(throttled(billed=True), throttled(billed=True), throttled(billed=True))
    with pytest.raises(BudgetExceeded, match="last error"):
        call(ctx, script)
    assert len(script.timeouts) == 2 and len(clock.sleeps) == 1
    assert ctx.budget.usage().cost_usd == 2 * WORST <= ctx.budget.limit_usd


def test_failed_attempts_are_capped_but_counted() -> None:
    ctx = context(FakeClock(), attempts=10, backoff=0.1, timeout=10_000)
    with pytest.raises(ProviderError):
        call(ctx, Script(*(throttled() for _ in range(12))))
    for _ in range(3):
        with pytest.raises(ProviderError):
            call(ctx, Script(*(throttled() for _ in range(12))))
    assert ctx.attempts.attempts == 40 and ctx.attempts.failed_total == 40
    assert len(ctx.attempts.failed) == 10


def test_a_timeout_is_not_retried() -> None:
    ctx = context(FakeClock())
    script = Script(TimeoutError("slow"))
    with pytest.raises(DeadlineExceeded):
        call(ctx, script)
    assert len(script.timeouts) == 1
    assert ctx.budget.usage().cost_usd == WORST
