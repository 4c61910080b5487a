"""The budget meter's bookkeeping: settle, worst case, release, and the spend guard seam."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.agents.base import (
    BudgetExceeded,
    BudgetMeter,
    BudgetOverrun,
    CallUsage,
    ModelPrice,
    ProviderError,
    RunContext,
)

PRICE = ModelPrice("m", "p", Decimal("1"), Decimal("2"))  # $1 / $2 per million tokens


class RecordingGuard:
    """A spend guard that refuses past ``cap`` and records what it was told."""

    def __init__(self, cap: Decimal) -> None:
        self.cap = cap
        self.held = Decimal(0)
        self.booked = Decimal(0)

    def reserve(self, amount: Decimal) -> None:
        if self.booked + self.held + amount > self.cap:
            raise BudgetExceeded("monthly cap")
        self.held += amount

    def settle(self, reserved: Decimal, charged: Decimal) -> None:
        self.held -= reserved
        self.booked += charged


def ctx(meter: BudgetMeter) -> RunContext:
    return RunContext(run_id="r", schedule_id="s", thread_id=None, deadline=1e12, budget=meter)


def test_unbilled_provider_error_releases_the_reservation() -> None:
    guard = RecordingGuard(Decimal("1"))
    meter = BudgetMeter(limit_usd=Decimal("1"), guard=guard)

    def fail(_: float) -> tuple[str, CallUsage]:
        raise ProviderError("HTTP 500", billed=False, transient=True)

    with pytest.raises(ProviderError):
        ctx(meter).model_call(PRICE, prompt_tokens=1000, max_output_tokens=1000, call=fail)
    assert (meter.spent_usd, meter.reserved_usd, meter.calls) == (Decimal(0), Decimal(0), 1)
    assert (guard.held, guard.booked) == (Decimal(0), Decimal(0))


def test_billed_provider_error_books_the_worst_case() -> None:
    guard = RecordingGuard(Decimal("1"))
    meter = BudgetMeter(limit_usd=Decimal("1"), guard=guard)

    def fail(_: float) -> tuple[str, CallUsage]:
        raise ProviderError("connection lost mid-answer")

    with pytest.raises(ProviderError):
        ctx(meter).model_call(PRICE, prompt_tokens=1000, max_output_tokens=1000, call=fail)
    assert meter.spent_usd == Decimal("0.003") == guard.booked
    assert meter.reserved_usd == 0 == guard.held


def test_guard_refusal_leaves_the_run_budget_untouched() -> None:
    guard = RecordingGuard(Decimal("0.001"))
    meter = BudgetMeter(limit_usd=Decimal("1"), guard=guard)
    with pytest.raises(BudgetExceeded):
        meter.reserve(PRICE, 1000, 1000)
    assert (meter.reserved_usd, guard.held) == (Decimal(0), Decimal(0))


def test_settle_passes_the_real_cost_to_the_guard() -> None:
    guard = RecordingGuard(Decimal("1"))
    meter = BudgetMeter(limit_usd=Decimal("1"), guard=guard)
    out = ctx(meter).model_call(
        PRICE,
        prompt_tokens=1000,
        max_output_tokens=1000,
        call=lambda _: ("ok", CallUsage(10, 20)),
    )
    assert out == "ok"
    assert guard.booked == meter.spent_usd == Decimal("0.00005")
    assert guard.held == 0


def test_usage_above_the_reservation_is_booked_then_raised_and_ends_the_meter() -> None:
    guard = RecordingGuard(cap=Decimal(1))
    meter = BudgetMeter(limit_usd=Decimal("0.01"), guard=guard)
    reservation = meter.reserve(PRICE, 100, 50)  # $0.0002 worst case
    # When the provider reports 10 000 output tokens ($0.0201), past the bound and the budget
    with pytest.raises(BudgetOverrun) as raised:
        meter.settle(reservation, 100, 10_000)
    # Then the truth is booked — in the run and in the guard — and the overrun recorded
    charged = PRICE.cost(100, 10_000)
    assert meter.spent_usd == charged == guard.booked and meter.reserved_usd == 0
    assert (raised.value.reserved, raised.value.charged) == (reservation.amount, charged)
    assert raised.value.overshoot == charged - reservation.amount
    assert meter.overrun is raised.value and "model m" in str(raised.value)
    # And no later call is reserved, even one that would fit
    with pytest.raises(BudgetOverrun):
        meter.reserve(PRICE, 1, 1)
    assert meter.reserved_usd == 0 and guard.held == 0


def test_usage_at_the_reservation_is_not_an_overrun() -> None:
    meter = BudgetMeter(limit_usd=Decimal("0.01"))
    reservation = meter.reserve(PRICE, 100, 50)
    assert meter.settle(reservation, 100, 50) == reservation.amount
    assert meter.overrun is None
