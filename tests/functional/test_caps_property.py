"""Property: concurrent runs of one user never push the month past its caps.

Random user and tenant caps; 1-5 runs of one user started at once, each a random agent
loop whose calls report usage below or at their reservation, fail billed or unbilled,
or are cut by the deadline. Every call goes through the real ``RunContext.model_call``,
``BudgetMeter`` and DynamoDB spend guard (moto, with DynamoDB's per-item atomicity, see
``item_atomic_dynamodb``). In every example: each run's spend ≤ its budget, the month's
spend on each counter ≤ its cap, the counters equal the sum of the runs' spend and
nothing stays held once every call has settled. Provider over-reports (usage above the
reservation) are the run budget's concern (issue 9 items 1-2) and not generated here.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.agents.base import (
    BudgetExceeded,
    BudgetMeter,
    CallUsage,
    DeadlineExceeded,
    ModelPrice,
    ProviderError,
    RunContext,
)
from chalicelib.domain.caps import Cap, CapScope
from tests.helpers import item_atomic_dynamodb

PRICE = ModelPrice("m", "p", Decimal("3"), Decimal("15"))
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
OWNERS = itertools.count()


@dataclass(frozen=True)
class Call:
    prompt_tokens: int
    max_tokens: int
    outcome: str  # "ok" | "billed_error" | "unbilled_error" | "deadline"
    used_share: float  # reported usage as a share of the bound (≤ 1)


calls = st.builds(
    Call,
    prompt_tokens=st.integers(1, 4000),
    max_tokens=st.integers(1, 4000),
    outcome=st.sampled_from(["ok", "ok", "ok", "billed_error", "unbilled_error", "deadline"]),
    used_share=st.floats(0, 1),
)
runs = st.lists(
    st.tuples(st.decimals("0.001", "0.2", places=6), st.lists(calls, min_size=1, max_size=6)),
    min_size=1,
    max_size=5,
)
caps = st.decimals("0", "0.3", places=6)


def agent(ctx: RunContext, plan: list[Call]) -> None:
    for call in plan:

        def provider(timeout: float, call: Call = call) -> tuple[str, CallUsage]:
            if call.outcome == "billed_error":
                raise ProviderError("connection lost mid-answer", billed=True)
            if call.outcome == "unbilled_error":
                raise ProviderError("HTTP 429", billed=False, transient=True)
            if call.outcome == "deadline":
                raise TimeoutError
            return "answer", CallUsage(
                input_tokens=int(call.prompt_tokens * call.used_share),
                output_tokens=int(call.max_tokens * call.used_share),
            )

        try:
            ctx.model_call(
                PRICE,
                prompt_tokens=call.prompt_tokens,
                max_output_tokens=call.max_tokens,
                call=provider,
            )
        except (ProviderError, DeadlineExceeded):
            continue  # an agent that carries on after a failed call
        except BudgetExceeded:
            return


@pytest.mark.timeout(120)
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(user_cap=caps, tenant_cap=st.one_of(st.none(), caps), plans=runs)
def test_concurrent_runs_stay_within_the_months_caps(
    container: Any,
    user_cap: Decimal,
    tenant_cap: Decimal | None,
    plans: list[tuple[Decimal, list[Call]]],
) -> None:
    owner = next(OWNERS)
    tenant, user = f"t{owner}", "u"
    in_force = [Cap(CapScope.USER, user_cap)]
    if tenant_cap is not None:
        in_force.append(Cap(CapScope.TENANT, tenant_cap))
    store = container.spend_store
    meters = [
        BudgetMeter(limit_usd=budget, guard=store.guard(in_force, tenant, user, NOW))
        for budget, _ in plans
    ]
    start = threading.Barrier(len(plans))

    def run(index: int) -> None:
        ctx = RunContext(
            run_id=f"r{index}", schedule_id="s", thread_id=None, deadline=1e12, budget=meters[index]
        )
        start.wait()
        agent(ctx, plans[index][1])

    with item_atomic_dynamodb(container.dynamodb):
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(plans))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    total = sum((m.spent_usd for m in meters), Decimal(0))
    for meter, (budget, _) in zip(meters, plans, strict=True):
        assert meter.spent_usd <= budget and meter.reserved_usd == 0
    for usage in store.usage(in_force, tenant, user, "2026-05"):
        assert usage.spent_usd == usage.used_usd == total  # all settled, nothing held
        assert usage.spent_usd <= usage.cap.monthly_usd
