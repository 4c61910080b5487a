"""Logs and metrics as CloudWatch receives them, through the three real entry points.

The trigger is called as Lambda calls it (``app.run_trigger(event, context)``), the
reconciler through Chalice's Lambda test client and the API through its HTTP test
client. Everything the functions write to stdout — JSON log records and EMF documents —
is captured from the one stream and parsed; nothing of ours is patched.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.enums import OverlapPolicy
from chalicelib.domain.models import Principal, user_message_input
from chalicelib.observability import UNITS, Metric
from chalicelib.services.schedules import ScheduleDraft
from tests.helpers import SEED_BODY, JSONClient, failing, scheduled_event

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
MARKER = "ZQX-SECRET-MARKER-7731"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"SCHEDULE_MIN_INTERVAL_MINS": 1}


@dataclass
class LambdaContext:
    """What the Lambda runtime passes: a request id and the time left."""

    aws_request_id: str = "req-0001"
    remaining_ms: int = 900_000
    function_name: str = "agentcron-test-run-trigger"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self._taken = 0

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def documents(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if "_aws" in line]

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        found = [line for line in self.lines() if "_aws" not in line]
        return [r for r in found if event is None or r.get("event") == event]

    def take(self) -> list[dict[str, Any]]:
        """The EMF documents written since the last call."""
        docs = self.documents()
        taken, self._taken = docs[self._taken :], len(docs)
        return taken


@pytest.fixture
def captured(container: Any) -> Iterator[Captured]:
    from chalicelib import observability

    capture = Captured()
    observability.configure(emit_metrics=True)
    observability.telemetry().redirect(capture.stream)
    yield capture
    observability.telemetry().redirect(None)


def metrics_of(document: dict[str, Any]) -> dict[str, float]:
    """A document's metric values, after checking its EMF envelope and units."""
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "agentcron"
    assert directive["Dimensions"] == [["stage"]]
    assert document["stage"] == "test"
    values: dict[str, float] = {}
    for definition in directive["Metrics"]:
        name = definition["Name"]
        assert definition["Unit"] == UNITS[Metric(name)], name
        [value] = document[name] if isinstance(document[name], list) else [document[name]]
        values[name] = value
    return values


def refusing_webhooks(container: Any) -> Any:
    """A container whose real webhook sender sees the receiver resolve to a private
    address at delivery (so it refuses), installed as the functions' container."""
    from chalicelib import dependencies
    from chalicelib.dependencies import Container
    from chalicelib.services.webhooks import WebhookSender

    sender = WebhookSender(timeout_seconds=1, resolver=lambda _host, _port: ["10.0.0.7"])
    wired = Container(container.settings, clock=container.clock, webhooks=sender)
    dependencies.override(wired)  # the fixture resets it
    return wired


def make(container: Any, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "name": "report",
        "cron_expression": "0 9 * * *",
        "timezone": "UTC",
        "input": user_message_input("Summarise yesterday"),
    }
    values.update(changes)
    return container.schedule_service.create(ALICE, ScheduleDraft(**values))


def fire(event: Any, remaining_ms: int = 900_000) -> dict[str, Any]:
    """The trigger Lambda's entry point, called as the Lambda runtime calls it."""
    from app import run_trigger

    result: dict[str, Any] = run_trigger(event, LambdaContext(remaining_ms=remaining_ms))
    return result


def one_document(captured: Captured) -> dict[str, float]:
    [document] = captured.take()
    return metrics_of(document)


# --- the trigger -------------------------------------------------------------------------------


def test_run_outcomes_emit_their_metrics(container: Any, clock: Any, captured: Captured) -> None:
    clock.set(NINE + timedelta(seconds=3))

    ok = make(container)
    assert fire(scheduled_event(container, ok.id, NINE))["status"] == "success"
    [run] = container.run_store.list_for_schedule(ALICE, ok.id, offset=0, limit=1)
    assert one_document(captured) == {
        "RunsCompleted": 1,
        "FireLateness": 3.0,  # started 3 s after the scheduled time
        "RunCostUSD": float(run.usage.cost_usd),
        "RunTokens": run.usage.total_tokens,
        "RunDuration": 0,  # the fixed clock does not move during the run
    }
    assert run.usage.total_tokens > 0 and run.usage.cost_usd > 0

    failed = make(container, context={"demo_fail": "provider exploded"})
    assert fire(scheduled_event(container, failed.id, NINE))["status"] == "error"
    values = one_document(captured)
    assert values["RunsFailed"] == 1 and values["RunCostUSD"] > 0
    assert "RunsCompleted" not in values

    # 4.5 s of Lambda time left is below the 15 s margin: a timeout before any model call.
    slow = make(container)
    assert fire(scheduled_event(container, slow.id, NINE), remaining_ms=4_500)["status"] == (
        "timeout"
    )
    values = one_document(captured)
    assert (values["RunsTimedOut"], values["RunCostUSD"], values["RunTokens"]) == (1, 0, 0)

    greedy = make(
        container, max_budget_per_run_usd=Decimal("0.0015"), context={"demo_model_calls": 5}
    )
    assert fire(scheduled_event(container, greedy.id, NINE))["status"] == "budget_exceeded"
    values = one_document(captured)
    assert values["RunsBudgetExceeded"] == 1 and 0 < values["RunCostUSD"] <= 0.0015


@pytest.mark.parametrize(
    ("setup", "when", "reason"),
    [
        ("pause", NINE, "paused"),
        ("end", NINE, "ended"),
        (None, NINE + timedelta(minutes=30), "stale"),
        (None, NINE - timedelta(hours=1), "late"),
    ],
)
def test_skips_are_counted_by_reason(
    container: Any, clock: Any, captured: Captured, setup: str | None, when: datetime, reason: str
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
    now = max(when, NINE) + timedelta(seconds=1)
    clock.set(now)
    captured.take()
    assert fire(event)["reason"] == reason
    name = f"RunsSkipped{reason.capitalize()}"
    lateness = (now - when).total_seconds()
    assert one_document(captured) == {"RunsSkipped": 1, name: 1, "FireLateness": lateness}
    [summary] = captured.records("run_summary")
    assert (summary["status"], summary["reason"]) == ("skipped", reason)
    assert summary["lateness_seconds"] == lateness
    # A redelivery of the recorded skip is a duplicate, not a second skip.
    assert fire(event)["status"] == "duplicate"
    assert one_document(captured) == {"FiresDuplicate": 1}


def test_overlap_skips_duplicates_deletions_and_bad_events_are_counted(
    container: Any, clock: Any, captured: Captured
) -> None:
    sched = make(container, cron_expression="* * * * *", overlap_policy=OverlapPolicy.SKIP)
    clock.set(NINE + timedelta(seconds=1))
    # The first run's finish fails (DynamoDB unavailable): the invocation fails, as in
    # Lambda, and the run stays claimed until the reconciler ends it.
    with (
        failing(container.dynamodb, "TransactWriteItems", times=2, skip=1),
        pytest.raises(Exception, match="injected"),
    ):
        fire(scheduled_event(container, sched.id, NINE))
    captured.take()
    clock.set(NINE + timedelta(minutes=1, seconds=1))
    assert fire(scheduled_event(container, sched.id, NINE + timedelta(minutes=1)))["reason"] == (
        "overlap"
    )
    assert one_document(captured) == {
        "RunsSkipped": 1,
        "RunsSkippedOverlap": 1,
        "FireLateness": 1.0,
    }

    gone = make(container)
    stray = scheduled_event(container, gone.id, NINE)
    container.schedule_service.delete(ALICE, gone.id)
    captured.take()
    assert fire(stray)["status"] == "ignored"
    assert one_document(captured) == {"FiresIgnored": 1}

    assert fire({"schedule_id": "x"})["status"] == "dropped"
    assert one_document(captured) == {"FiresDropped": 1}


def test_a_failed_webhook_is_counted_with_the_run(
    container: Any, clock: Any, captured: Captured
) -> None:
    wired = refusing_webhooks(container)
    sched = make(wired, webhook="https://hooks.example.com/agentcron")
    clock.set(NINE + timedelta(seconds=1))
    captured.take()
    assert fire(scheduled_event(container, sched.id, NINE))["status"] == "success"
    values = one_document(captured)
    assert (values["RunsCompleted"], values["WebhookFailures"]) == (1, 1)


def test_every_record_of_a_run_carries_its_correlation_keys(
    container: Any, clock: Any, captured: Captured
) -> None:
    # A refused webhook is logged during the run, before its summary: it has the keys too.
    wired = refusing_webhooks(container)
    sched = make(wired, webhook="https://hooks.example.com/agentcron")
    clock.set(NINE + timedelta(seconds=2))
    result = fire(scheduled_event(container, sched.id, NINE))
    records = captured.records()
    assert len(records) >= 2
    for record in records:
        assert (record["schedule_id"], record["run_id"]) == (sched.id, result["run_id"])
    [summary] = captured.records("run_summary")
    assert {
        "tenant": summary["tenant"],
        "user": summary["user"],
        "schedule_id": summary["schedule_id"],
        "run_id": summary["run_id"],
        "scheduled_time": summary["scheduled_time"],
        "trigger": summary["trigger"],
        "function_request_id": summary["function_request_id"],
    } == {
        "tenant": "tenant-a",
        "user": "alice",
        "schedule_id": sched.id,
        "run_id": result["run_id"],
        "scheduled_time": "2026-01-15T09:00:00Z",
        "trigger": "schedule",
        "function_request_id": "req-0001",
    }
    assert isinstance(summary["cold_start"], bool)
    assert summary["status"] == "success" and summary["model"] == "demo-1"
    assert summary["lateness_seconds"] == 2.0 and summary["duration_ms"] == 0
    assert Decimal(summary["cost_usd"]) > 0 and summary["total_tokens"] > 0
    assert summary["level"] == "INFO" and summary["service"] == "agentcron"


# --- the reconciler ----------------------------------------------------------------------------


def test_reconciler_repairs_are_counted_by_kind(
    container: Any, client: Any, captured: Captured
) -> None:
    group = container.settings.SCHEDULE_GROUP
    lost = make(container)
    container.scheduler.delete_schedule(Name=f"sched-{lost.id}", GroupName=group)
    orphan = make(container)
    container.schedule_store.delete(ALICE, orphan.id)
    captured.take()
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    event["time"] = "2026-01-15T09:05:00Z"  # a fire that also repairs drift (every 5th minute)
    assert client.lambda_.invoke("reconciler", event).payload["entries_rewritten"] == 1
    assert one_document(captured) == {
        "ReconcilerStuckRunsEnded": 0,
        "ReconcilerEntriesRewritten": 1,
        "ReconcilerOrphanEntriesDeleted": 1,
        "ReconcilerRepairs": 2,
        "ReconcilerErrors": 0,
    }
    [sweep] = captured.records("reconciler_sweep")
    assert sweep["repairs"] == 2 and sweep["function"] == "reconciler"
    client.lambda_.invoke("reconciler", event)
    assert one_document(captured)["ReconcilerRepairs"] == 0  # nothing drifted since


# --- the API -----------------------------------------------------------------------------------


def test_every_request_is_one_record_and_its_metrics(
    container: Any, client: Any, api_key: str, captured: Captured
) -> None:
    api = JSONClient(client, api_key)
    captured.take()
    status, body = api.post("/api/v1/schedules", SEED_BODY)
    assert status == 201
    assert set(one_document(captured)) == {"ApiRequests", "ApiLatency"}
    [created] = captured.records("request")
    assert {k: created[k] for k in ("method", "route", "status", "tenant", "user")} == {
        "method": "POST",
        "route": "/api/v1/schedules",
        "status": 201,
        "tenant": "tenant-a",
        "user": "alice",
    }
    assert created["latency_ms"] >= 0 and created["function_request_id"]

    assert api.get(f"/api/v1/schedules/{body['schedule_id']}")[0] == 200
    [read] = captured.records("request")[1:]
    assert read["route"] == "/api/v1/schedules/{schedule_id}"
    assert read["schedule_id"] == body["schedule_id"]
    captured.take()

    assert JSONClient(client, None).get("/api/v1/schedules")[0] == 401
    values = one_document(captured)
    assert (values["ApiRequests"], values["Api4xx"]) == (1, 1) and "Api5xx" not in values

    with failing(container.scheduler, "CreateSchedule"):
        assert api.post("/api/v1/schedules", SEED_BODY)[0] == 503
    values = one_document(captured)
    assert (values["ApiRequests"], values["Api5xx"]) == (1, 1) and "Api4xx" not in values
    unavailable = captured.records("request")[-1]
    assert unavailable["level"] == "ERROR" and unavailable["status"] == 503


# --- what is never logged ----------------------------------------------------------------------


def test_prompts_outputs_and_keys_are_never_logged(
    container: Any, client: Any, api_key: str, clock: Any, captured: Captured
) -> None:
    api = JSONClient(client, api_key)
    body = {**SEED_BODY, "task_query": f"Summarise {MARKER}", "cron_expression": "0 * * * *"}
    status, created = api.post("/api/v1/schedules", body)
    assert status == 201
    sid = created["schedule_id"]
    clock.set(NINE + timedelta(seconds=1))
    fire(scheduled_event(container, sid, NINE))
    runs = api.get(f"/api/v1/schedules/{sid}/runs")[1]["runs"]
    assert MARKER in runs[0]["result"]  # the demo agent's output quotes the prompt
    # An agent error whose text quotes the prompt is kept on the run, not in the logs.
    failing_body = {**body, "task_context": {"demo_fail": f"provider said: {MARKER}"}}
    failing_id = api.post("/api/v1/schedules", failing_body)[1]["schedule_id"]
    fire(scheduled_event(container, failing_id, NINE))
    failed = api.get(f"/api/v1/schedules/{failing_id}/runs")[1]["runs"]
    assert MARKER in failed[0]["error_message"]

    written = captured.stream.getvalue()
    assert captured.records("run_summary") and captured.records("request")
    assert MARKER not in written
    assert api_key not in written


# --- the template's alarms and dashboard watch what is emitted ---------------------------------


def test_every_alarm_and_graph_watches_a_metric_the_code_emits(
    container: Any, client: Any, api_key: str, clock: Any, captured: Captured
) -> None:
    """Drives one of each alarm's inputs through the real entry points; the EMF documents
    must contain every ``agentcron`` metric the template's alarms watch."""
    from infra.monitoring import metrics_watched
    from infra.template import merge_template

    clock.set(NINE + timedelta(seconds=1))
    for changes, remaining in (
        ({}, 900_000),
        ({"context": {"demo_fail": "boom"}}, 900_000),
        ({}, 4_500),
        (
            {"max_budget_per_run_usd": Decimal("0.0015"), "context": {"demo_model_calls": 5}},
            900_000,
        ),
    ):
        fire(scheduled_event(container, make(container, **changes).id, NINE), remaining)
    with failing(container.scheduler, "CreateSchedule"):
        assert JSONClient(client, api_key).post("/api/v1/schedules", SEED_BODY)[0] == 503
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    event["time"] = "2026-01-15T09:05:00Z"  # a fire that also repairs drift (every 5th minute)
    with failing(container.scheduler, "ListSchedules", times=100):
        assert client.lambda_.invoke("reconciler", event).payload["errors"]
    emitted = {name for document in captured.documents() for name in metrics_of(document)}
    [sweep] = [d for d in captured.documents() if "ReconcilerErrors" in d]
    assert metrics_of(sweep)["ReconcilerErrors"] == 1

    template = merge_template("test")
    alarms = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::CloudWatch::Alarm"
    }
    own_alarmed = metrics_watched({"Resources": alarms})
    own_alarmed = {name for namespace, name in own_alarmed if namespace == "agentcron"}
    assert own_alarmed == {
        "ApiRequests",
        "Api5xx",
        "ReconcilerRepairs",
        "ReconcilerErrors",
        "RunsCompleted",
        "RunsFailed",
        "RunsTimedOut",
        "RunsBudgetExceeded",
    }
    assert own_alarmed <= emitted
    graphed = {name for ns, name in metrics_watched(template) if ns == "agentcron"}
    assert graphed <= {m.value for m in Metric}  # the catalogue the code emits from
