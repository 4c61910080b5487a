"""The run engine through the real trigger handler, with deliveries built from the registered
EventBridge Input (as the Lambda receives them), against moto."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.domain.enums import OnRunCompleted, OverlapPolicy
from chalicelib.domain.models import Principal, Thread, user_message_input
from chalicelib.services.schedules import ScheduleDraft
from tests.helpers import AwsCalls, JSONClient, deliver, one_request_at_a_time, scheduled_event

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"SCHEDULE_MIN_INTERVAL_MINS": 1}


def make(container: Any, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "name": "report",
        "cron_expression": "0 9 * * *",
        "timezone": "UTC",
        "input": user_message_input("Summarise yesterday"),
    }
    values.update(changes)
    return container.schedule_service.create(ALICE, ScheduleDraft(**values))


def history(container: Any, schedule_id: str) -> list[Any]:
    return container.run_store.list_for_schedule(ALICE, schedule_id, offset=0, limit=100)


def reload(container: Any, schedule_id: str) -> Any:
    return container.schedule_store.get(ALICE, schedule_id)


def threads(container: Any) -> list[Any]:
    return container.thread_store.list_for_user(ALICE)


def assert_counters_match_history(container: Any, schedule_id: str) -> None:
    sched = reload(container, schedule_id)
    runs = history(container, schedule_id)
    finished = [r for r in runs if r.status.value not in ("skipped", "running", "pending")]
    assert sched.total_runs == sched.successful_runs + sched.failed_runs == len(finished)
    assert sched.successful_runs == sum(r.status.value == "success" for r in finished)
    assert sched.history_count == len(runs)


# --- happy path ------------------------------------------------------------------------------


def test_a_fire_runs_the_agent_records_history_and_deletes_the_thread(
    container: Any, clock: Any
) -> None:
    sched = make(container)
    clock.set(NINE + timedelta(seconds=3))
    calls = AwsCalls(container.dynamodb, container.scheduler)
    event = scheduled_event(container, sched.id, NINE)
    with calls.counting() as counted:
        result = container.trigger_handler(event, lambda: 900_000)
    assert result["status"] == "success"
    # Happy path: one read (schedule + any earlier run of this fire), the claim transaction
    # and the finish transaction; no Scheduler call.
    assert counted == {"dynamodb.BatchGetItem": 1, "dynamodb.TransactWriteItems": 2}
    [run] = history(container, sched.id)
    assert run.status.value == "success"
    assert run.scheduled_time == NINE
    assert run.trigger.value == "schedule"
    assert run.query == "Summarise yesterday"
    assert run.result and run.result.startswith("Demo answer to: Summarise yesterday")
    assert (run.model_used, run.provider) == ("demo-1", "agentcron")
    assert run.usage.input_tokens > 0 and run.usage.output_tokens > 0
    assert (
        run.usage.cost_usd
        == Decimal(run.usage.input_tokens * 1 + run.usage.output_tokens * 2) / 1_000_000
    )
    assert run.started_at == run.completed_at == NINE + timedelta(seconds=3)
    assert run.metadata["cron_id"] == sched.id
    after = reload(container, sched.id)
    assert (after.total_runs, after.successful_runs, after.failed_runs) == (1, 1, 0)
    assert after.last_run_at == NINE
    assert after.running is None
    assert threads(container) == []  # stateless + delete (default)
    assert_counters_match_history(container, sched.id)


def test_history_through_the_shannon_api(
    container: Any, client: Any, api_key: str, clock: Any
) -> None:
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    deliver(container, sched.id, NINE)
    api = JSONClient(client, api_key)
    status, body = api.get(f"/api/v1/schedules/{sched.id}/runs")
    assert status == 200
    assert body["total_count"] == 1 and body["total"] == 1
    [item] = body["runs"]
    assert item["status"] == "COMPLETED"
    assert item["triggered_at"] == "2026-01-15T09:00:00Z"
    assert item["query"] == "Summarise yesterday"
    assert item["total_tokens"] > 0 and item["total_cost_usd"] > 0
    assert "error_message" not in item  # omitted when empty, as the seed says
    got = api.get(f"/api/v1/schedules/{sched.id}")[1]
    assert (got["total_runs"], got["successful_runs"], got["failed_runs"]) == (1, 1, 0)
    assert got["last_run_at"] == "2026-01-15T09:00:00+00:00"


def test_the_lambda_entry_point_passes_its_context_to_the_run(
    container: Any, client: Any, clock: Any
) -> None:
    # chalice.test's Lambda context always has ~3 s left, less than the 15 s safety margin:
    # the run must end as a timeout before any model call, proving the context is honoured.
    sched = make(container)
    clock.set(NINE + timedelta(seconds=1))
    response = client.lambda_.invoke("run_trigger", scheduled_event(container, sched.id, NINE))
    assert response.payload["status"] == "timeout"
    assert response.payload["schedule_id"] == sched.id
    [run] = history(container, sched.id)
    assert run.usage.cost_usd == 0


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"schedule_id": "x"},
        {"tenant_id": "t", "user_id": "u", "schedule_id": "s", "scheduled_time": "yesterday"},
        {
            "tenant_id": "t",
            "user_id": "u",
            "schedule_id": "s",
            "scheduled_time": "2026-01-15T09:00:00",
        },
        "not json",
        ["a", "list"],
    ],
)
def test_malformed_events_are_dropped_not_retried(container: Any, event: Any) -> None:
    assert container.trigger_handler(event, lambda: 900_000) == {
        "status": "dropped",
        "reason": "not JSON" if event == "not json" else "malformed event",
    }


# --- exactly once --------------------------------------------------------------------------


def test_a_thousand_sequential_duplicate_deliveries_make_one_run(
    container: Any, clock: Any
) -> None:
    sched = make(container)
    clock.set(NINE + timedelta(seconds=2))
    event = scheduled_event(container, sched.id, NINE)
    outcomes = [
        container.trigger_handler(dict(event), lambda: 900_000)["status"] for _ in range(1000)
    ]
    assert outcomes.count("success") == 1
    assert outcomes.count("duplicate") == 999
    assert len(history(container, sched.id)) == 1
    assert reload(container, sched.id).total_runs == 1
    assert_counters_match_history(container, sched.id)


def test_a_thousand_concurrent_duplicate_deliveries_make_one_run(
    container: Any, clock: Any
) -> None:
    sched = make(container)
    clock.set(NINE + timedelta(seconds=2))
    event = scheduled_event(container, sched.id, NINE)
    with one_request_at_a_time(container.dynamodb), ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(
            pool.map(
                lambda _: container.trigger_handler(dict(event), lambda: 900_000)["status"],
                range(1000),
            )
        )
    assert outcomes.count("success") == 1
    assert set(outcomes) <= {"success", "duplicate"}
    assert len(history(container, sched.id)) == 1
    assert_counters_match_history(container, sched.id)


def test_both_halves_of_a_split_schedule_fire_once(container: Any, clock: Any) -> None:
    # 2026-06-01 is a Monday and the 1st: both EventBridge schedules fire at 09:00.
    sched = make(container, cron_expression="0 9 1 * 1")
    when = datetime(2026, 6, 1, 9, tzinfo=UTC)
    clock.set(when + timedelta(seconds=1))
    first = deliver(container, sched.id, when, entry=0)
    second = deliver(container, sched.id, when, entry=1)
    assert (first["status"], second["status"]) == ("success", "duplicate")
    assert len(history(container, sched.id)) == 1


# --- fires that must not run ---------------------------------------------------------------


def test_a_deleted_schedules_stray_fire_is_ignored(container: Any, clock: Any) -> None:
    sched = make(container)
    event = scheduled_event(container, sched.id, NINE)
    container.schedule_service.delete(ALICE, sched.id)
    clock.set(NINE + timedelta(seconds=1))
    assert container.trigger_handler(event, lambda: 900_000)["status"] == "ignored"
    assert history(container, sched.id) == []


@pytest.mark.parametrize(
    ("setup", "when", "reason"),
    [
        ("pause", NINE, "paused"),
        ("end", NINE, "ended"),
        (None, NINE + timedelta(minutes=30), "stale"),
        (None, NINE - timedelta(hours=1), "late"),
    ],
)
def test_skipped_fires_are_recorded_with_their_reason(
    container: Any,
    client: Any,
    api_key: str,
    clock: Any,
    setup: str | None,
    when: datetime,
    reason: str,
) -> None:
    changes: dict[str, Any] = {}
    if setup == "end":
        changes["end_time"] = NINE - timedelta(minutes=1)
    if reason == "late":
        changes["cron_expression"] = "0 * * * *"
    sched = make(container, **changes)
    event = scheduled_event(container, sched.id, when)
    if setup == "pause":
        container.schedule_service.pause(ALICE, sched.id)
    clock.set(max(when, NINE) + timedelta(seconds=1))
    result = container.trigger_handler(event, lambda: 900_000)
    assert (result["status"], result["reason"]) == ("skipped", reason)
    [run] = history(container, sched.id)
    assert (run.status.value, run.error_message) == ("skipped", reason)
    after = reload(container, sched.id)
    assert after.total_runs == 0 and after.history_count == 1
    item = JSONClient(client, api_key).get(f"/api/v1/schedules/{sched.id}/runs")[1]["runs"][0]
    assert (item["status"], item["error_message"]) == ("SKIPPED", reason)
    # A redelivery of the same skipped fire adds nothing.
    assert container.trigger_handler(event, lambda: 900_000)["status"] == "duplicate"
    assert_counters_match_history(container, sched.id)


def test_overlap_skip_records_the_second_fire_and_allow_runs_both(
    container: Any, clock: Any
) -> None:
    slow = {"demo_sleep_seconds": 1.5}
    for policy, expected in (
        (OverlapPolicy.SKIP, {"success", "skipped"}),
        (OverlapPolicy.ALLOW, {"success"}),
    ):
        sched = make(container, cron_expression="* * * * *", context=slow, overlap_policy=policy)
        clock.set(NINE + timedelta(seconds=1))
        results: dict[str, Any] = {}
        first = threading.Thread(
            target=lambda s=sched, r=results: r.__setitem__("first", deliver(container, s.id, NINE))
        )
        first.start()
        time.sleep(0.4)  # the first run is claimed and inside its model call
        clock.set(NINE + timedelta(minutes=1, seconds=1))
        results["second"] = deliver(container, sched.id, NINE + timedelta(minutes=1))
        first.join()
        statuses = {results["first"]["status"], results["second"]["status"]}
        assert statuses == expected, (policy, results)
        if policy is OverlapPolicy.SKIP:
            assert results["second"]["reason"] == "overlap"
        assert_counters_match_history(container, sched.id)


def test_a_run_that_outlived_its_marker_leaves_the_later_runs_claim(
    container: Any, clock: Any
) -> None:
    """Run A outlives its running marker; fire B claims the schedule and is still running
    when A finishes. A's finish must not release B's claim (a third fire would overlap B)."""
    sched = make(
        container,
        cron_expression="* * * * *",
        context={"demo_sleep_seconds": 1.2},
        overlap_policy=OverlapPolicy.SKIP,
        timeout_seconds=60,
    )
    results: dict[str, Any] = {}
    clock.set(NINE + timedelta(seconds=1))
    first = threading.Thread(
        target=lambda: results.__setitem__("a", deliver(container, sched.id, NINE))
    )
    first.start()
    time.sleep(0.4)  # A is claimed and inside its model call
    later = NINE + timedelta(hours=1)  # past A's running_until (timeout + grace)
    clock.set(later + timedelta(seconds=1))
    second = threading.Thread(
        target=lambda: results.__setitem__("b", deliver(container, sched.id, later))
    )
    second.start()
    try:
        first.join()
        assert results["a"]["status"] == "success"
        b_run = next(r for r in history(container, sched.id) if r.scheduled_time == later)
        item = container.dynamodb.get_item(
            TableName=container.settings.TABLE_NAME,
            Key={
                "pk": {"S": codec.user_pk(ALICE.tenant_id, ALICE.user_id)},
                "sk": {"S": codec.schedule_sk(sched.id)},
            },
        )["Item"]
        assert item.get("running_run_id", {}).get("S") == b_run.run_id, item.get("running_run_id")
    finally:
        second.join()  # never leave B running past the test's moto
    assert results["b"]["status"] == "success"
    assert_counters_match_history(container, sched.id)


# --- deadline and budget ---------------------------------------------------------------------


def test_timeout_ends_the_run_within_deadline_plus_two_seconds(container: Any, clock: Any) -> None:
    sched = make(container, timeout_seconds=1, context={"demo_sleep_seconds": 30})
    clock.set(NINE + timedelta(seconds=1))
    started = time.monotonic()
    result = deliver(container, sched.id, NINE)
    elapsed = time.monotonic() - started
    assert result["status"] == "timeout"
    assert elapsed < 1 + 2
    [run] = history(container, sched.id)
    assert run.status.value == "timeout"
    assert run.error_message == "run exceeded its timeout of 1 s"
    # The call cut by the deadline is booked at its reservation, never as free.
    assert Decimal(0) < run.usage.cost_usd <= sched.max_budget_per_run_usd
    after = reload(container, sched.id)
    assert (after.total_runs, after.failed_runs) == (1, 1)


def test_lambda_time_left_bounds_the_deadline(container: Any, clock: Any) -> None:
    # Lambda has 4.5 s left and the margin is 15 s: no model call may start, nothing is spent.
    sched = make(container, context={"demo_sleep_seconds": 30})
    clock.set(NINE + timedelta(seconds=1))
    started = time.monotonic()
    result = deliver(container, sched.id, NINE, remaining_ms=4_500)
    assert time.monotonic() - started < 4.5  # returned before Lambda's own timeout
    assert result["status"] == "timeout"
    [run] = history(container, sched.id)
    assert run.usage.cost_usd == 0 and run.usage.total_tokens == 0
    # The message names the limit that cut the run: the Lambda's, not the schedule's 600 s.
    assert run.error_message == (
        "run stopped after 0 s: the trigger Lambda's remaining time (less a 15 s margin to "
        "record the outcome) ran out before the schedule's timeout of 600 s"
    )


def test_budget_exceeded_stops_spending_and_pauses_the_schedule(
    container: Any, client: Any, api_key: str, clock: Any
) -> None:
    # Each demo call may cost up to (prompt bytes + 8) × $1/M + 512 × $2/M ≈ $0.0011.
    sched = make(
        container, max_budget_per_run_usd=Decimal("0.0015"), context={"demo_model_calls": 5}
    )
    clock.set(NINE + timedelta(seconds=1))
    result = deliver(container, sched.id, NINE)
    assert result["status"] == "budget_exceeded"
    [run] = history(container, sched.id)
    assert run.status.value == "budget_exceeded"
    assert run.usage.cost_usd <= Decimal("0.0015")
    assert run.usage.cost_usd > 0 and run.usage.total_tokens > 0  # the first call ran and is billed
    paused = reload(container, sched.id)
    assert paused.status.value == "PAUSED"
    assert (paused.pause_reason, paused.paused_by.value if paused.paused_by else None) == (
        "budget_exceeded",
        "system",
    )
    entry = container.scheduler.get_schedule(
        Name=f"sched-{sched.id}", GroupName=container.settings.SCHEDULE_GROUP
    )
    assert entry["State"] == "DISABLED"
    got = JSONClient(client, api_key).get(f"/api/v1/schedules/{sched.id}")[1]
    assert (got["status"], got["pause_reason"], got["paused_by"]) == (
        "PAUSED",
        "budget_exceeded",
        "system",
    )
    assert (got["failed_runs"], got["next_run_at"]) == (1, None)
    # The next fire is recorded as skipped; a user resume makes it run again.
    clock.set(NINE + timedelta(days=1, seconds=1))
    assert deliver(container, sched.id, NINE + timedelta(days=1))["reason"] == "paused"
    assert_counters_match_history(container, sched.id)


def redeployed(container: Any, **changes: Any) -> Any:
    """The same AWS state served by a deployment with different settings."""
    from chalicelib.dependencies import Container

    settings = container.settings.model_copy(update=changes)
    return Container(settings, clock=container.clock)


def test_lowering_the_maximum_budget_caps_existing_schedules(container: Any, clock: Any) -> None:
    sched = make(container, max_budget_per_run_usd=Decimal("5"))
    lowered = redeployed(container, SCHEDULE_MAX_BUDGET_USD=Decimal("0.001"))
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(lowered, sched.id, NINE)["status"] == "budget_exceeded"
    [run] = history(container, sched.id)
    assert run.usage.cost_usd == 0


def test_agent_errors_are_recorded_with_their_cost(container: Any, clock: Any) -> None:
    sched = make(container, context={"demo_fail": "provider exploded"})
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(container, sched.id, NINE)["status"] == "error"
    [run] = history(container, sched.id)
    assert run.error_message == "provider exploded"
    assert run.usage.cost_usd > 0  # a failed call is booked at its worst case
    assert reload(container, sched.id).failed_runs == 1
    assert threads(container) == []


def test_counters_always_equal_the_history(container: Any, clock: Any) -> None:
    sched = make(container, cron_expression="* * * * *")
    contexts = [{}, {"demo_fail": "x"}, {}, {"demo_model_calls": 2}]
    for minute, context in enumerate(contexts):
        container.schedule_service.update(
            ALICE,
            sched.id,
            __import__("chalicelib.services.schedules", fromlist=["x"]).ScheduleChanges(
                context=context or {"k": minute}
            ),
        )
        when = NINE + timedelta(minutes=minute)
        clock.set(when + timedelta(seconds=1))
        deliver(container, sched.id, when)
        deliver(container, sched.id, when)  # a redelivery changes nothing
    clock.set(NINE + timedelta(minutes=10, seconds=1))
    deliver(container, sched.id, NINE + timedelta(minutes=9, seconds=30))  # stale → skipped
    after = reload(container, sched.id)
    assert (after.total_runs, after.successful_runs, after.failed_runs) == (4, 3, 1)
    assert after.history_count == 5
    assert_counters_match_history(container, sched.id)


# --- threads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl_hours", [0, 24])
def test_keep_leaves_one_thread_per_fire(container: Any, clock: Any, ttl_hours: int) -> None:
    container = redeployed(container, KEPT_THREAD_TTL_HOURS=ttl_hours)
    sched = make(container, cron_expression="0 * * * *", on_run_completed=OnRunCompleted.KEEP)
    for hour in (9, 10):
        when = NINE.replace(hour=hour)
        clock.set(when + timedelta(seconds=1))
        assert deliver(container, sched.id, when)["status"] == "success"
    kept = threads(container)
    assert len(kept) == 2
    runs = history(container, sched.id)
    assert {t.thread_id for t in kept} == {r.thread_id for r in runs}
    for thread in kept:
        assert thread.metadata["cron_id"] == sched.id
        assert thread.status.value == "idle"
        assert [m["role"] for m in (thread.values or {})["messages"]] == ["user", "assistant"]
        if ttl_hours:
            assert thread.expires_at is not None
        else:
            assert thread.expires_at is None


def test_kept_threads_expire_after_their_ttl(container: Any, clock: Any) -> None:
    container = redeployed(container, KEPT_THREAD_TTL_HOURS=1)
    sched = make(container, on_run_completed=OnRunCompleted.KEEP)
    clock.set(NINE + timedelta(seconds=1))
    deliver(container, sched.id, NINE)
    assert len(threads(container)) == 1
    clock.set(NINE + timedelta(hours=2))
    assert threads(container) == []  # TTL: expired threads are never served


def test_a_thread_bound_schedule_accumulates_state(container: Any, clock: Any) -> None:
    now = clock.now()
    container.thread_store.create(
        Thread(
            thread_id="0192d7a4-0000-7000-8000-000000000001",
            tenant_id="tenant-a",
            user_id="alice",
            created_at=now,
            updated_at=now,
        )
    )
    sched = make(
        container, cron_expression="0 * * * *", thread_id="0192d7a4-0000-7000-8000-000000000001"
    )
    calls = AwsCalls(container.dynamodb, container.scheduler)
    for hour in (9, 10):
        when = NINE.replace(hour=hour)
        clock.set(when + timedelta(seconds=1))
        event = scheduled_event(container, sched.id, when)
        with calls.counting() as counted:
            assert container.trigger_handler(event, lambda: 900_000)["status"] == "success"
        assert calls.total("dynamodb") <= 4 and calls.total("scheduler") == 0, counted
    [thread] = threads(container)
    messages = (thread.values or {})["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert "1 earlier" in messages[-1]["content"] or "2 earlier" in messages[-1]["content"]


# --- manual runs ------------------------------------------------------------------------------


def test_run_now_through_the_api(container: Any, client: Any, api_key: str) -> None:
    sched = make(container)
    api = JSONClient(client, api_key)
    status, body = api.post(f"/api/v1/schedules/{sched.id}/trigger")
    assert status == 202
    run_id = body["run_id"]
    assert body["workflow_id"] == run_id
    runs = api.get(f"/api/v1/schedules/{sched.id}/runs")[1]["runs"]
    assert [(r["workflow_id"], r["status"], r["trigger"]) for r in runs] == [
        (run_id, "COMPLETED", "manual")
    ]
    assert api.post(f"/api/v1/schedules/{sched.id}/trigger", {"x": 1})[0] == 400


def test_manual_runs_obey_the_budget(container: Any, client: Any, api_key: str) -> None:
    sched = make(container, max_budget_per_run_usd=Decimal("0.0001"))
    api = JSONClient(client, api_key)
    assert api.post(f"/api/v1/schedules/{sched.id}/trigger")[0] == 202
    [run] = history(container, sched.id)
    assert run.status.value == "budget_exceeded" and run.usage.cost_usd == 0


# --- webhooks ----------------------------------------------------------------------------------


class RecordingWebhooks:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.secrets: list[str | None] = []
        self.fail = fail

    def send(self, url: str, payload: dict[str, Any], *, secret: str | None = None) -> Any:
        from chalicelib.services.webhooks import WebhookResult

        self.sent.append((url, payload))
        self.secrets.append(secret)
        if self.fail:
            raise RuntimeError("receiver exploded")
        return WebhookResult("delivered", status=204)


def test_the_webhook_receives_the_finished_run(container: Any, clock: Any) -> None:
    from chalicelib.dependencies import Container

    hooks = RecordingWebhooks()
    wired = Container(container.settings, clock=clock, webhooks=hooks)
    sched = make(wired, webhook="https://hooks.example.com/agentcron")
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(wired, sched.id, NINE)["status"] == "success"
    [(url, payload)] = hooks.sent
    assert url == "https://hooks.example.com/agentcron"
    assert payload["event"] == "run.completed"
    assert (payload["schedule_id"], payload["status"]) == (sched.id, "success")
    assert payload["scheduled_time"] == "2026-01-15T09:00:00+00:00"
    assert payload["total_cost_usd"] > 0 and payload["total_tokens"] > 0
    assert history(container, sched.id)[0].webhook_status == "delivered (HTTP 204)"


def test_a_refused_webhook_is_logged_and_recorded_but_never_changes_the_run(
    container: Any, client: Any, api_key: str, clock: Any, caplog: Any
) -> None:
    from chalicelib.dependencies import Container
    from chalicelib.services.webhooks import WebhookSender

    # The name resolves to a private address at delivery: the real sender refuses it.
    sender = WebhookSender(
        timeout_seconds=1, resolver=lambda host, _port: {"hooks.example.com": ["10.0.0.7"]}[host]
    )
    wired = Container(container.settings, clock=clock, webhooks=sender)
    sched = make(wired, webhook="https://hooks.example.com/agentcron")
    clock.set(NINE + timedelta(seconds=1))
    with caplog.at_level("WARNING", logger="chalicelib.services.runs"):
        result = deliver(wired, sched.id, NINE)
    assert result["status"] == "success"
    [run] = history(container, sched.id)
    expected = "refused: hooks.example.com resolves to a non-public address (10.0.0.7)"
    assert (run.status.value, run.webhook_status) == ("success", expected)
    [line] = [r.getMessage() for r in caplog.records if "webhook" in r.getMessage()]
    assert run.run_id in line and expected in line
    # Visible on the run through the API.
    [shown] = JSONClient(client, api_key).get(f"/api/v1/schedules/{sched.id}/runs")[1]["runs"]
    assert shown["webhook_status"] == expected


def test_webhooks_to_private_addresses_are_refused_when_saved(
    container: Any, client: Any, api_key: str
) -> None:
    from tests.helpers import SEED_BODY

    api = JSONClient(client, api_key)
    status, body = api.post("/api/v1/schedules", {**SEED_BODY, "webhook": "https://0x7f.1/hook"})
    reason = "127.0.0.1 is not a public unicast address"
    assert (status, body) == (
        400,
        {"error": f"Webhook URL must point to a public address: {reason}"},
    )
    lg = JSONClient(client, api_key, header="x-api-key")
    status, body = lg.post(
        "/runs/crons",
        {
            "assistant_id": "agent",
            "schedule": "0 9 * * *",
            "webhook": "https://[64:ff9b::a9fe:a9fe]/",
        },
    )
    assert status == 422 and "embeds 169.254.169.254" in body["detail"]
    assert api.get("/api/v1/schedules")[1]["total"] == 0


def test_a_failing_webhook_sender_never_changes_the_run(container: Any, clock: Any) -> None:
    from chalicelib.dependencies import Container

    hooks = RecordingWebhooks(fail=True)
    wired = Container(container.settings, clock=clock, webhooks=hooks)
    sched = make(wired, webhook="https://hooks.example.com/agentcron")
    clock.set(NINE + timedelta(seconds=1))
    assert deliver(wired, sched.id, NINE)["status"] == "success"
    assert len(hooks.sent) == 1
    [run] = history(container, sched.id)
    assert (run.status.value, run.webhook_status) == ("success", "failed: receiver exploded")


def test_last_run_at_never_moves_backwards(container: Any, clock: Any) -> None:
    """Overlapping runs that finish out of order: the older one is counted, not 'last'."""
    sched = make(container, cron_expression="* * * * *", overlap_policy=OverlapPolicy.ALLOW)
    later, earlier = NINE + timedelta(minutes=1), NINE
    clock.set(later + timedelta(seconds=1))
    assert deliver(container, sched.id, later)["status"] == "success"
    assert reload(container, sched.id).last_run_at == later
    # The 09:00 run (started first, slower) finishes now.
    assert deliver(container, sched.id, earlier)["status"] == "success"
    after = reload(container, sched.id)
    assert after.last_run_at == later
    assert (after.total_runs, after.successful_runs) == (2, 2)
    assert_counters_match_history(container, sched.id)
