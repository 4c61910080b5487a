"""``failed-fires`` and ``redrive`` against moto's SQS, with messages shaped as AWS sends them:
the Scheduler's dead-letter message (the event as body, the reason in message attributes)
and Lambda's ``OnFailure`` invocation record (the event as ``requestPayload``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.admin import main
from chalicelib.domain.models import Principal, user_message_input
from chalicelib.services.schedules import ScheduleDraft
from tests.helpers import deliver, scheduled_event

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def make(container: Any, cron: str = "0 9 * * *") -> Any:
    draft = ScheduleDraft(
        name="report", cron_expression=cron, timezone="UTC", input=user_message_input("hi")
    )
    return container.schedule_service.create(ALICE, draft)


def history(container: Any, schedule_id: str) -> list[Any]:
    return container.run_store.list_for_schedule(ALICE, schedule_id, offset=0, limit=10)


def queue(container: Any, name: str) -> str:
    url: str = container.sqs.create_queue(QueueName=name)["QueueUrl"]
    return url


def dead_letter(container: Any, url: str, event: Any) -> None:
    container.sqs.send_message(
        QueueUrl=url,
        MessageBody=event if isinstance(event, str) else json.dumps(event),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "AWS.Lambda.TooManyRequests"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Rate exceeded"},
            "RETRY_ATTEMPTS": {"DataType": "String", "StringValue": "3"},
        },
    )


def invocation_record(container: Any, url: str, event: Any) -> None:
    record = {
        "version": "1.0",
        "timestamp": "2026-01-15T09:00:04.000Z",
        "requestContext": {
            "requestId": "e4b46cbf",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:x:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 1,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "ClientError", "errorMessage": "DynamoDB unavailable"},
    }
    container.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))


def depth(container: Any, url: str) -> int:
    attributes = container.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_list_then_redrive_is_idempotent_and_late_fires_are_skipped(
    container: Any, clock: Any, capsys: Any
) -> None:
    dlq = queue(container, "agentcron-test-scheduler-dlq")
    failures = queue(container, "agentcron-test-trigger-failures")
    never_ran = make(container)
    already_ran = make(container)
    too_late = make(container, cron="0 * * * *")
    clock.set(NINE + timedelta(seconds=2))
    assert deliver(container, already_ran.id, NINE)["status"] == "success"
    dead_letter(container, dlq, scheduled_event(container, never_ran.id, NINE))
    dead_letter(container, dlq, "not an event")
    invocation_record(container, failures, scheduled_event(container, already_ran.id, NINE))
    two_hours_ago = NINE - timedelta(hours=2)
    invocation_record(container, failures, scheduled_event(container, too_late.id, two_hours_ago))
    clock.set(NINE + timedelta(minutes=5))  # within the 15-minute lateness limit for NINE
    capsys.readouterr()  # the first run's own log lines

    assert main(["failed-fires", "--stage", "test", "--json"], container) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_schedule = {item["schedule_id"]: item for item in listed}
    assert len(listed) == 4
    assert by_schedule[never_ran.id]["source"] == "scheduler-dlq"
    assert by_schedule[never_ran.id]["scheduled_time"] == "2026-01-15T09:00:00Z"
    assert by_schedule[never_ran.id]["error"] == "AWS.Lambda.TooManyRequests: Rate exceeded"
    assert by_schedule[already_ran.id]["error"] == "ClientError: DynamoDB unavailable"
    assert by_schedule[too_late.id]["scheduled_time"] == "2026-01-15T07:00:00Z"
    assert by_schedule[None]["redrivable"] is False
    assert (depth(container, dlq), depth(container, failures)) == (2, 2)  # listing keeps them

    assert main(["failed-fires", "--stage", "test"], container) == 0
    table = capsys.readouterr().out
    assert never_ran.id in table and "4 failed fire(s)" in table

    assert main(["redrive", "--stage", "test"], container) == 0
    out = capsys.readouterr().out
    assert "3 redriven, 0 failed, 1 unrecognised" in out
    [ran] = history(container, never_ran.id)
    assert (ran.status.value, ran.scheduled_time) == ("success", NINE)
    [once] = history(container, already_ran.id)  # not run twice
    assert once.status.value == "success"
    [skipped] = history(container, too_late.id)
    assert (skipped.status.value, skipped.error_message) == ("skipped", "late")
    # Only the message that is not an event is left, for a human to look at.
    assert (depth(container, dlq), depth(container, failures)) == (1, 0)

    assert main(["redrive", "--stage", "test"], container) == 0
    assert "0 redriven, 0 failed, 1 unrecognised" in capsys.readouterr().out
    assert [len(history(container, s.id)) for s in (never_ran, already_ran, too_late)] == [1, 1, 1]


def test_a_fire_whose_invoke_fails_stays_in_its_queue(container: Any, capsys: Any) -> None:
    from chalicelib.dependencies import Container

    class Refusing:
        def invoke(self, event: dict[str, Any]) -> None:
            raise RuntimeError("Lambda said no")

    failures = queue(container, "agentcron-test-trigger-failures")
    dlq = queue(container, "agentcron-test-scheduler-dlq")
    sched = make(container)
    invocation_record(container, failures, scheduled_event(container, sched.id, NINE))
    refusing = Container(container.settings, clock=container.clock, invoker=Refusing())
    args = ["redrive", "--dlq-url", dlq, "--failures-url", failures]
    assert main(args, refusing) == 1
    assert "not redriven" in capsys.readouterr().out
    assert depth(container, failures) == 1 and history(container, sched.id) == []


def test_missing_queues_are_a_clear_error(container: Any, capsys: Any) -> None:
    assert main(["failed-fires", "--stage", "nowhere"], container) == 2
    assert "cannot find the failure queues of stage nowhere" in capsys.readouterr().err
