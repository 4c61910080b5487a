"""Issue 13's proofs, through the real trigger and the real agents.

The OpenAI-compatible agent talks HTTP to the scripted local server of the agent's own
tests (``tests/unit/test_agents_openai.py``); the Bedrock agent uses a real boto3 client under
botocore's Stubber (the container's ``bedrock_runtime`` is that client). Webhooks go
to a local HTTPS receiver through the real sender (told that loopback is fine, TLS
still checked). Backoffs are real but short (``initial_backoff_seconds`` 0.1).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.agents.base import prompt_token_bound
from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from chalicelib.domain.models import Principal, user_message_input
from chalicelib.services.schedules import ScheduleDraft
from tests.helpers import (
    SEED_BODY,
    AwsCalls,
    JSONClient,
    assistants_file,
    deliver,
    scheduled_event,
)
from tests.unit.test_agents_openai import FakeProvider, Reply, completion

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
SYSTEM = "Be brief."
QUERY = "Summarise yesterday"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
PRICES = load_prices(DEFAULT_PRICES_FILE, None)
BEDROCK_MAX_TOKENS = 100


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    """The agent tests' scripted provider, served on a free loopback port."""
    state = FakeProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings_overrides(tmp_path: Path, provider: FakeProvider) -> dict[str, Any]:
    registry = assistants_file(
        tmp_path,
        flaky={"agent": "openai", "model": "gpt-4o-mini", "max_tokens": 128, "system": SYSTEM},
        flaky_bedrock={
            "agent": "bedrock",
            "model": HAIKU,
            "max_tokens": BEDROCK_MAX_TOKENS,
            "system": SYSTEM,
        },
    )
    return {
        "ASSISTANTS_FILE": registry,
        "DEFAULT_ASSISTANT": "flaky",  # what Shannon schedules run
        "OPENAI_BASE_URL": provider.base_url,
        "OPENAI_API_KEY": "sk-test",
        "SCHEDULE_MIN_INTERVAL_MINS": 1,
    }


@pytest.fixture
def bedrock(container: Any) -> Iterator[Stubber]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    container.__dict__["bedrock_runtime"] = client  # the cached property, filled
    with Stubber(client) as stub:
        yield stub


def make(container: Any, assistant: str = "flaky", **changes: Any) -> Any:
    values: dict[str, Any] = {
        "name": "report",
        "cron_expression": "0 9 * * *",
        "assistant": assistant,
        "input": user_message_input(QUERY),
        "initial_backoff_seconds": 0.1,
    }
    values.update(changes)
    return container.schedule_service.create(ALICE, ScheduleDraft(**values))


def fire(container: Any, clock: Any, schedule_id: str, day: int = 0) -> dict[str, Any]:
    when = NINE + timedelta(days=day)
    clock.set(when + timedelta(seconds=1))
    return deliver(container, schedule_id, when)


def only_run(container: Any, schedule_id: str) -> Any:
    [run] = container.run_store.list_for_schedule(ALICE, schedule_id, offset=0, limit=10)
    return run


def rate_limited(retry_after: str = "0") -> Reply:
    return Reply(
        status=429,
        body={"error": {"message": "Rate limit reached", "type": "requests"}},
        headers={"Retry-After": retry_after},
    )


def throttled() -> dict[str, Any]:
    return {
        "method": "converse",
        "service_error_code": "ThrottlingException",
        "service_message": "Too many requests, please wait before trying again.",
        "http_status_code": 429,
    }


def converse(text: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 420},
    }


# --- retries ---------------------------------------------------------------------------------


def test_openai_429_429_success_completes_after_three_attempts_at_the_real_cost(
    container: Any, client: Any, api_key: str, clock: Any, provider: FakeProvider
) -> None:
    sched = make(container)
    provider.replies = [rate_limited(), rate_limited(), Reply(body=completion("Done.", 24, 9))]
    result = fire(container, clock, sched.id)
    assert result["status"] == "success"
    assert len(provider.requests) == 3
    run = only_run(container, sched.id)
    # The two 429s were not billed: the run costs exactly the successful call.
    assert run.usage.cost_usd == PRICES["gpt-4o-mini"].cost(24, 9)
    assert (run.call_attempts, run.failed_attempt_count) == (3, 2)
    assert [(a.error, a.transient, a.billed) for a in run.failed_attempts] == [
        ("ProviderError", True, False)
    ] * 2
    assert "HTTP 429" in run.failed_attempts[0].message
    # Visible in history on both façades.
    [item] = JSONClient(client, api_key).get(f"/api/v1/schedules/{sched.id}/runs")[1]["runs"]
    assert (item["status"], item["attempts"], item["failed_attempt_count"]) == ("COMPLETED", 3, 2)
    assert item["failed_attempts"][0]["error"] == "ProviderError"
    assert item["failed_attempts"][0]["at"] == "2026-01-15T09:00:01Z"
    lg = JSONClient(client, api_key, header="x-api-key")
    status, runs = lg.post("/runs/search", {"metadata": {"cron_id": sched.id}})
    assert status == 200
    facts = runs[0]["metadata"]["agentcron"]
    assert (facts["attempts"], facts["failed_attempt_count"]) == (3, 2)
    assert facts["failed_attempts"][1]["transient"] is True
    assert container.schedule_store.get(ALICE, sched.id).consecutive_failures == 0


def test_bedrock_throttling_twice_then_success_completes_after_three_attempts(
    container: Any, clock: Any, bedrock: Stubber
) -> None:
    sched = make(container, assistant="flaky_bedrock")
    bedrock.add_client_error(**throttled())
    bedrock.add_client_error(**throttled())
    bedrock.add_response("converse", converse("Done.", 31, 12))
    assert fire(container, clock, sched.id)["status"] == "success"
    bedrock.assert_no_pending_responses()
    run = only_run(container, sched.id)
    assert run.usage.cost_usd == PRICES[HAIKU].cost(31, 12)
    assert (run.call_attempts, run.failed_attempt_count) == (3, 2)
    assert "ThrottlingException" in run.failed_attempts[0].message


def test_a_retry_after_past_the_deadline_ends_timeout_without_another_attempt(
    container: Any, client: Any, api_key: str, clock: Any, provider: FakeProvider
) -> None:
    sched = make(container, timeout_seconds=30)
    provider.replies = [rate_limited(retry_after="120")]
    started = time.monotonic()
    assert fire(container, clock, sched.id)["status"] == "timeout"
    assert time.monotonic() - started < 10  # it did not wait out the deadline either
    assert len(provider.requests) == 1
    run = only_run(container, sched.id)
    assert run.error_message is not None
    assert run.error_message.startswith("run exceeded its timeout of 30 s; last error: ")
    assert "HTTP 429" in run.error_message
    assert (run.call_attempts, run.usage.cost_usd) == (1, 0)
    [item] = JSONClient(client, api_key).get(f"/api/v1/schedules/{sched.id}/runs")[1]["runs"]
    assert item["status"] == "TIMEOUT" and item["failed_attempts"][0]["retry_after"] == 120
    assert container.schedule_store.get(ALICE, sched.id).consecutive_failures == 1


def test_a_budget_that_fits_two_attempts_ends_budget_exceeded_within_budget(
    container: Any, clock: Any, bedrock: Stubber
) -> None:
    # A model timeout is billed (the model ran) and transient: each attempt books its
    # worst case, so a budget of 2.5 worst cases pays for two attempts, never a third.
    worst = PRICES[HAIKU].cost(prompt_token_bound(SYSTEM, QUERY), BEDROCK_MAX_TOKENS)
    budget = (worst * Decimal("2.5")).quantize(Decimal("0.000001"))
    sched = make(
        container, assistant="flaky_bedrock", max_budget_per_run_usd=budget, max_attempts_per_call=5
    )
    for _ in range(2):
        bedrock.add_client_error(
            "converse",
            service_error_code="ModelTimeoutException",
            service_message="The model timed out.",
            http_status_code=408,
        )
    assert fire(container, clock, sched.id)["status"] == "budget_exceeded"
    bedrock.assert_no_pending_responses()  # exactly two calls reached Bedrock
    run = only_run(container, sched.id)
    assert run.usage.cost_usd == 2 * worst <= budget
    assert (run.call_attempts, run.failed_attempt_count) == (2, 2)
    assert run.error_message is not None and "last error" in run.error_message
    # A budget stop is not a "failure" of the streak (it has its own pause).
    after = container.schedule_store.get(ALICE, sched.id)
    assert (after.pause_reason, after.consecutive_failures) == ("budget_exceeded", 0)


def test_a_permanent_401_fails_after_one_attempt(
    container: Any, clock: Any, provider: FakeProvider
) -> None:
    sched = make(container)
    provider.replies = [Reply(status=401, body={"error": {"message": "Incorrect API key"}})]
    assert fire(container, clock, sched.id)["status"] == "error"
    assert len(provider.requests) == 1
    run = only_run(container, sched.id)
    assert (run.call_attempts, run.usage.cost_usd) == (1, 0)
    assert [(a.transient, a.billed) for a in run.failed_attempts] == [(False, False)]
    assert "HTTP 401" in (run.error_message or "")


# --- consecutive failures -------------------------------------------------------------------


def test_five_failed_runs_in_a_row_pause_the_schedule_and_send_a_signed_event(
    container: Any,
    client: Any,
    api_key: str,
    clock: Any,
    provider: FakeProvider,
    https_receiver: tuple[int, list[dict[str, Any]]],
    tls_files: tuple[Path, Path],
) -> None:
    import ssl

    from chalicelib.dependencies import Container
    from chalicelib.services.webhooks import SIGNATURE_HEADER, WebhookSender, verify

    port, received = https_receiver
    sender = WebhookSender(
        timeout_seconds=2,
        resolver=lambda host, _port: {"hooks.example.com": ["127.0.0.1"]}[host],
        address_allowed=lambda address: address == "127.0.0.1",
        ssl_context=ssl.create_default_context(cafile=str(tls_files[0])),
    )
    wired = Container(container.settings, clock=clock, webhooks=sender)
    api = JSONClient(client, api_key)
    body = {
        **SEED_BODY,
        "timezone": "UTC",
        "webhook": f"https://hooks.example.com:{port}/agentcron",
        "initial_backoff_seconds": 0.1,
    }
    status, created = api.post("/api/v1/schedules", body)
    assert status == 201
    sid, secret = created["schedule_id"], created["webhook_secret"]
    unauthorized = Reply(status=401, body={"error": {"message": "Incorrect API key"}})

    # fail, fail, success (the count resets), then five failures in a row.
    outcomes = ["error", "error", "success", *["error"] * 5]
    for day, outcome in enumerate(outcomes):
        provider.replies = (
            [Reply(body=completion("ok"))] if outcome == "success" else [unauthorized]
        )
        assert fire(wired, clock, sid, day)["status"] == outcome
        got = api.get(f"/api/v1/schedules/{sid}")[1]
        if day < len(outcomes) - 1:
            assert got["status"] == "ACTIVE", day
    assert (got["status"], got["paused_by"], got["pause_reason"]) == (
        "PAUSED",
        "system",
        "consecutive_failures",
    )
    assert (got["consecutive_failures"], got["failed_runs"], got["next_run_at"]) == (5, 7, None)
    entry = container.scheduler.get_schedule(
        Name=f"sched-{sid}", GroupName=container.settings.SCHEDULE_GROUP
    )
    assert entry["State"] == "DISABLED"

    # Every delivery is signed with the secret shown at creation; the last is the pause.
    events = [r["body"]["event"] for r in received]
    assert events == ["run.completed"] * 8 + ["schedule.paused"]
    for request in received:
        assert verify(secret, request["headers"][SIGNATURE_HEADER], request["raw"], now=time.time())
    paused = received[-1]["body"]
    assert paused["schedule_id"] == sid
    assert (paused["pause_reason"], paused["consecutive_failures"]) == ("consecutive_failures", 5)
    assert paused["run_status"] == "error" and "HTTP 401" in paused["error_message"]
    assert received[-1]["headers"]["X-Agentcron-Event"] == "schedule.paused"

    # The next fire is skipped (not counted); a resume starts the count afresh.
    assert fire(wired, clock, sid, len(outcomes))["reason"] == "paused"
    assert api.get(f"/api/v1/schedules/{sid}")[1]["consecutive_failures"] == 5
    assert len(received) == 9  # a skipped fire sends nothing
    assert api.post(f"/api/v1/schedules/{sid}/resume", {})[0] == 200
    assert api.get(f"/api/v1/schedules/{sid}")[1]["consecutive_failures"] == 0


def test_pause_after_failures_zero_never_pauses(
    container: Any, clock: Any, provider: FakeProvider
) -> None:
    sched = make(container, pause_after_failures=0)
    calls = AwsCalls(container.dynamodb, container.scheduler)
    for day in range(6):
        provider.replies = [Reply(status=401, body={"error": {"message": "bad key"}})]
        when = NINE + timedelta(days=day)
        clock.set(when + timedelta(seconds=1))
        event = scheduled_event(container, sched.id, when)
        with calls.counting() as counted:
            assert container.trigger_handler(event, lambda: 900_000)["status"] == "error"
        # The count rides on the finish transaction: a failed run costs what a
        # successful one does.
        assert counted == {"dynamodb.BatchGetItem": 1, "dynamodb.TransactWriteItems": 2}
    after = container.schedule_store.get(ALICE, sched.id)
    assert (after.status.value, after.consecutive_failures) == ("ACTIVE", 6)


# --- policy on the façades ------------------------------------------------------------------


def test_the_policy_is_set_shown_and_validated_on_both_facades(
    container: Any, client: Any, api_key: str
) -> None:
    api = JSONClient(client, api_key)
    policy = {"max_attempts_per_call": 4, "initial_backoff_seconds": 2.5, "pause_after_failures": 2}
    status, created = api.post("/api/v1/schedules", {**SEED_BODY, **policy})
    assert status == 201
    sid = created["schedule_id"]
    got = api.get(f"/api/v1/schedules/{sid}")[1]
    assert {k: got[k] for k in policy} == policy
    preview = api.get(f"/api/v1/schedules/{sid}/preview")[1]
    assert preview["failure_policy"] == policy
    defaults = api.post("/api/v1/schedules/preview", {"cron_expression": "0 9 * * *"})[1]
    assert defaults["failure_policy"] == {
        "max_attempts_per_call": 3,
        "initial_backoff_seconds": 1.0,
        "pause_after_failures": 5,
    }
    assert api.put(f"/api/v1/schedules/{sid}", {"max_attempts_per_call": 1})[0] == 200
    assert api.get(f"/api/v1/schedules/{sid}")[1]["max_attempts_per_call"] == 1
    for field, value in (
        ("max_attempts_per_call", 0),
        ("max_attempts_per_call", 11),
        ("initial_backoff_seconds", 0.01),
        ("initial_backoff_seconds", 61),
        ("pause_after_failures", -1),
        ("pause_after_failures", 1001),
        ("max_attempts_per_call", "3"),
    ):
        status, error = api.post("/api/v1/schedules", {**SEED_BODY, field: value})
        assert status == 400 and field in error["error"], (field, value, error)

    lg = JSONClient(client, api_key, header="x-api-key")
    status, cron = lg.post(
        "/runs/crons", {"assistant_id": "agent", "schedule": "0 9 * * *", **policy}
    )
    assert status == 200 and cron["webhook_secret"].startswith("whsec_")
    got = lg.get(f"/runs/crons/{cron['cron_id']}")[1]
    assert "webhook_secret" not in got
    assert {k: got["payload"][k] for k in policy} == policy
    status, patched = lg.request(
        "PATCH", f"/runs/crons/{cron['cron_id']}", {"pause_after_failures": 0}
    )
    assert status == 200 and patched["payload"]["pause_after_failures"] == 0
    status, error = lg.post(
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "0 9 * * *", "max_attempts_per_call": 99},
    )
    assert status == 422 and "max_attempts_per_call" in error["detail"]


class Recorder:
    """Webhooks that record what would be sent (and the secret it would be signed with)."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], str | None]] = []

    def send(self, url: str, payload: dict[str, Any], *, secret: str | None = None) -> Any:
        from chalicelib.services.webhooks import WebhookResult

        self.sent.append((payload, secret))
        return WebhookResult("delivered", status=204)


def test_every_system_pause_announces_itself_a_budget_pause_too(container: Any, clock: Any) -> None:
    from chalicelib.dependencies import Container

    hooks = Recorder()
    wired = Container(container.settings, clock=clock, webhooks=hooks)
    # Each demo call may cost up to ~$0.0011: the second of five does not fit.
    sched = make(
        wired,
        assistant="demo",
        webhook="https://hooks.example.com/agentcron",
        max_budget_per_run_usd=Decimal("0.0015"),
        context={"demo_model_calls": 5},
    )
    assert fire(wired, clock, sched.id)["status"] == "budget_exceeded"
    (run_event, run_secret), (pause_event, pause_secret) = hooks.sent
    assert (run_event["event"], pause_event["event"]) == ("run.completed", "schedule.paused")
    assert run_secret == pause_secret == sched.webhook_secret is not None
    assert (pause_event["pause_reason"], pause_event["run_status"]) == (
        "budget_exceeded",
        "budget_exceeded",
    )
    # A user's pause announces nothing.
    container.schedule_service.resume(ALICE, sched.id)
    container.schedule_service.pause(ALICE, sched.id)
    assert len(hooks.sent) == 2


def test_the_bedrock_client_leaves_retries_to_the_run(container: Any) -> None:
    # botocore would otherwise retry throttling on its own, unseen by the run's budget,
    # deadline and attempt history.
    assert container.bedrock_runtime.meta.config.retries["total_max_attempts"] == 1
