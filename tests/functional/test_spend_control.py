"""Spend control through the real trigger and the Shannon façade.

* a provider that ignores ``max_tokens`` (streamed, 100 000 tokens) is cut at the
  bound: ``budget_exceeded`` with spend within the budget;
* a provider that reports more than a call's bound (a LangGraph graph's model) is
  booked truthfully, the run ends ``budget_exceeded`` before its next call, and the
  schedule is paused by the system (``budget_overrun``), with a warning naming the model;
* run-now on a system-paused schedule is refused (409); on a user-paused one it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from tests.fixtures import graphs
from tests.functional.test_trigger import ALICE, NINE, history, make, reload
from tests.helpers import JSONClient, assistants_file, deliver, langgraph_assistant
from tests.unit.test_agents_openai import FakeProvider, Reply, Stream, serving

BASE = "/api/v1/schedules"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with serving() as state:
        yield state


@pytest.fixture
def settings_overrides(tmp_path: Path, provider: FakeProvider) -> dict[str, Any]:
    return {
        "SCHEDULE_MIN_INTERVAL_MINS": 1,
        "OPENAI_BASE_URL": provider.base_url,
        "OPENAI_API_KEY": "sk-local",
        "ASSISTANTS_FILE": assistants_file(
            tmp_path,
            overreport=langgraph_assistant("over_reporting_graph"),
            unbounded=langgraph_assistant("unbounded_graph"),
        ),
    }


@pytest.fixture(autouse=True)
def _reset_models() -> Iterator[None]:
    graphs.reset()
    yield
    graphs.reset()


def test_a_provider_ignoring_max_tokens_is_cut_and_the_run_stays_in_budget(
    container: Any, provider: FakeProvider, clock: Any
) -> None:
    # Given the issue's provider: it ignores max_tokens and streams 100 000 tokens
    provider.replies.append(Reply(stream=Stream(tokens=100_000, honour_max_tokens=False)))
    sched = make(container, assistant="openai", max_budget_per_run_usd=Decimal("0.10"))
    clock.set(NINE + timedelta(seconds=1))
    # When the schedule fires
    result = deliver(container, sched.id, NINE)
    # Then the stream was cut at the bound: budget_exceeded, spend within the budget
    assert result["status"] == "budget_exceeded"
    [run] = history(container, sched.id)
    assert Decimal(0) < run.usage.cost_usd <= Decimal("0.10")
    assert "cut there" in (run.error_message or "")
    assert provider.client_hung_up.wait(5) and provider.chunks_sent < 100_000
    assert reload(container, sched.id).pause_reason == "budget_exceeded"


def test_usage_above_the_bound_is_booked_flagged_and_pauses_the_schedule(
    container: Any, client: Any, api_key: str, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a graph whose model is bounded at 64 tokens and reports 100 000 (twice)
    sched = make(container, assistant="overreport", max_budget_per_run_usd=Decimal("0.10"))
    clock.set(NINE + timedelta(seconds=1))
    with caplog.at_level(logging.WARNING, logger="chalicelib.services.runs"):
        result = deliver(container, sched.id, NINE)
    # Then the run ends budget_exceeded after the first call: no second call was made
    assert result["status"] == "budget_exceeded"
    assert len(graphs.over_reporting_model.requests) == 1
    # The spend is the truth — above the budget, by at most that one call's overshoot
    [run] = history(container, sched.id)
    demo = load_prices(DEFAULT_PRICES_FILE, None)["demo-1"]
    assert run.usage.output_tokens == 100_000
    assert run.usage.cost_usd > Decimal("0.10")
    assert run.usage.cost_usd - Decimal("0.10") < demo.cost(run.usage.input_tokens, 100_000)
    assert (run.error_message or "").startswith("budget overrun: model demo-1 reported usage")
    # The schedule is paused by the system, whatever AUTO_PAUSE_ON_BUDGET_EXCEEDED says
    got = JSONClient(client, api_key).get(f"{BASE}/{sched.id}")[1]
    assert (got["status"], got["pause_reason"], got["paused_by"]) == (
        "PAUSED",
        "budget_overrun",
        "system",
    )
    # And the warning names the model and the overshoot, never the prompt or the output
    [record] = [r for r in caplog.records if "above its bound" in r.getMessage()]
    message = record.getMessage()
    assert "demo-1" in message and "overshoot $" in message
    assert "Summarise" not in message and "far past" not in message


def test_run_now_holds_a_system_pause_until_an_explicit_resume(
    container: Any, client: Any, api_key: str, clock: Any
) -> None:
    api = JSONClient(client, api_key)
    sched = make(
        container, max_budget_per_run_usd=Decimal("0.0015"), context={"demo_model_calls": 5}
    )
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(container, sched.id, NINE)["status"] == "budget_exceeded"
    # Run-now on the system-paused schedule: 409 with the reason, nothing runs
    assert api.post(f"{BASE}/{sched.id}/trigger") == (
        409,
        {"error": "Schedule paused by the system (budget_exceeded); resume it before running it"},
    )
    assert len(history(container, sched.id)) == 1
    # An explicit resume lifts it
    assert api.post(f"{BASE}/{sched.id}/resume")[0] == 200
    status, body = api.post(f"{BASE}/{sched.id}/trigger")
    assert status == 202, body
    assert len(history(container, sched.id)) == 2


def test_run_now_on_a_user_paused_schedule_runs_and_keeps_it_paused(
    container: Any, client: Any, api_key: str, clock: Any
) -> None:
    api = JSONClient(client, api_key)
    sched = make(container)
    assert api.post(f"{BASE}/{sched.id}/pause", {"reason": "holiday"})[0] == 200
    status, body = api.post(f"{BASE}/{sched.id}/trigger")
    assert status == 202, body
    [run] = history(container, sched.id)
    assert (run.status.value, run.trigger.value) == ("success", "manual")
    after = reload(container, sched.id)
    assert (after.status.value, after.pause_reason, after.paused_by.value) == (
        "PAUSED",
        "holiday",
        "user",
    )


@pytest.mark.parametrize(
    ("reply", "billed"),
    [
        (Reply(503, {"error": {"message": "overloaded"}}), False),
        (Reply(200, "<html>proxy login</html>", headers={"Content-Type": "text/html"}), False),
        (Reply(stream=Stream(tokens=3, end=False)), True),  # lost mid-answer
    ],
)
def test_a_failed_call_costs_what_was_billed(
    container: Any, provider: FakeProvider, clock: Any, reply: Reply, billed: bool
) -> None:
    provider.replies.append(reply)
    # One attempt per call: the booking of a single failed call is the point here
    # (retries of the same failures are covered in test_failure_policy).
    sched = make(
        container,
        assistant="openai",
        max_budget_per_run_usd=Decimal("0.10"),
        max_attempts_per_call=1,
    )
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(container, sched.id, NINE)["status"] == "error"
    [run] = history(container, sched.id)
    # Unbilled: released (cost 0, the error recorded); ambiguous: booked at the reservation
    assert run.error_message
    assert (run.usage.cost_usd > 0) is billed
    assert run.usage.total_tokens == 0


def test_the_claim_refuses_a_manual_run_of_a_system_paused_schedule(
    container: Any, clock: Any
) -> None:
    """A pause landing between the API's check and the trigger still holds."""
    from chalicelib.domain.enums import RunTrigger
    from chalicelib.services.runs import TriggerEvent

    sched = make(
        container, max_budget_per_run_usd=Decimal("0.0015"), context={"demo_model_calls": 5}
    )
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(container, sched.id, NINE)["status"] == "budget_exceeded"
    manual = TriggerEvent(
        tenant_id=ALICE.tenant_id,
        user_id=ALICE.user_id,
        schedule_id=sched.id,
        scheduled_time=NINE + timedelta(seconds=2),
        trigger=RunTrigger.MANUAL,
        run_id="manual-run-1",
    )
    summary = container.run_executor.execute(manual, lambda: 900_000)
    assert (summary.status.value, summary.reason) == ("skipped", "paused")


def test_the_issues_unbounded_graph_is_refused_before_its_call(container: Any, clock: Any) -> None:
    """A graph whose chat model has no max_tokens, on a $0.10 budget: its model (gpt-4o)
    may answer 16 384 tokens ($0.164), so the call is never sent and nothing is spent."""
    sched = make(container, assistant="unbounded", max_budget_per_run_usd=Decimal("0.10"))
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(container, sched.id, NINE)["status"] == "budget_exceeded"
    [run] = history(container, sched.id)
    assert run.usage.cost_usd == 0 and graphs.unbounded_model.requests == []
    assert "gpt-4o may cost up to $0.16" in (run.error_message or "")
