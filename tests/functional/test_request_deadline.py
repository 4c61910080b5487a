"""The API function's request deadline (``chalicelib/observability.py``), through the Lambda
entry point as API Gateway calls it (``app(event, context)``), with the deployed API's
client settings: a call the request has no time left for is never started, and the
request answers 503 with its writes rolled back instead of being killed half-done. A long
read running out of time ends as at its read bound: a cut page, or a 4xx."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.domain.models import Principal
from tests.deploy.events import api_event
from tests.helpers import SEED_BODY, AwsCalls

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
ROUTES = {
    "paths": {
        "/api/v1/schedules": {"post": {}},
        "/api/v1/schedules/{schedule_id}": {"put": {}},
    }
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # What infra/template.py gives the deployed API function: one call's worst case is
    # 2 x (0.5 + 1.5) + 1 = 5 s, so a forward call needs 4 x 5 + 1 = 21 s left.
    return {
        "AWS_CONNECT_TIMEOUT_SECONDS": 0.5,
        "AWS_READ_TIMEOUT_SECONDS": 1.5,
        "AWS_MAX_ATTEMPTS": 2,
        "API_REQUEST_DEADLINE": True,
    }


@dataclass
class LambdaContext:
    """Lambda's context, on a clock the test moves (``elapsed``)."""

    timeout_seconds: float = 28.0
    elapsed: float = 0.0
    aws_request_id: str = "req-deadline"
    function_name: str = "agentcron-test-api"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - self.elapsed) * 1000)


def call(method: str, path: str, body: Any, key: str, context: LambdaContext) -> tuple[int, Any]:
    from app import app

    event = api_event(ROUTES, method, path, body=body, headers={"Authorization": f"Bearer {key}"})
    response = app(event, context)
    return response["statusCode"], json.loads(response["body"])


def slow(client: Any, operation: str, context: LambdaContext, seconds: float) -> None:
    """The first ``operation`` call takes ``seconds`` of the Lambda's time."""
    taken: list[int] = []

    def take_time(**_: Any) -> None:
        if not taken:
            taken.append(1)
            context.elapsed += seconds

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-call.{service}.{operation}", take_time)


def test_a_request_without_time_for_its_rollback_starts_no_call(
    container: Any, api_key: str
) -> None:
    calls = AwsCalls(container.dynamodb, container.scheduler)
    with calls.counting() as counted:
        status, body = call(
            "POST", "/api/v1/schedules", SEED_BODY, api_key, LambdaContext(elapsed=8)
        )
    assert status == 503 and "error" in body, body
    assert counted == {}  # not even the key lookup: 20 s left < 21 s
    assert container.schedule_store.list_for_user(ALICE) == []


def test_time_running_out_mid_update_is_503_with_the_update_rolled_back(
    container: Any, api_key: str
) -> None:
    context = LambdaContext()
    status, created = call("POST", "/api/v1/schedules", SEED_BODY, api_key, context)
    assert status == 201, created
    sid = created["schedule_id"]
    before = container.schedule_store.get(ALICE, sid)

    # The DynamoDB write of the update takes 10 s: 18 s are left, the Scheduler write
    # (which would need 21 s) is not started, and the rollback runs on the time kept for it.
    context = LambdaContext()
    slow(container.dynamodb, "UpdateItem", context, 10)
    status, body = call(
        "PUT", f"/api/v1/schedules/{sid}", {"cron_expression": "0 10 * * *"}, api_key, context
    )
    assert status == 503, body
    after = container.schedule_store.get(ALICE, sid)
    assert after.cron_expression == before.cron_expression == "0 9 * * *"
    entry = container.scheduler.get_schedule(
        Name=f"sched-{sid}", GroupName=container.settings.SCHEDULE_GROUP
    )
    assert entry["ScheduleExpression"] == before.eventbridge_expressions[0]
    assert context.get_remaining_time_in_millis() > 0  # answered before the timeout


def test_a_request_with_time_is_not_affected(container: Any, api_key: str) -> None:
    context = LambdaContext(elapsed=6)  # 22 s left: every call may start
    status, created = call("POST", "/api/v1/schedules", SEED_BODY, api_key, context)
    assert status == 201, created
    status, body = call(
        "PUT",
        f"/api/v1/schedules/{created['schedule_id']}",
        {"cron_expression": "0 10 * * *"},
        api_key,
        context,
    )
    assert status == 200, body


SEARCH_ROUTES = {"paths": {"/threads/search": {"post": {}}}}


def search_red(key: str, context: LambdaContext) -> tuple[int, dict[str, Any], Any]:
    from app import app

    event = api_event(
        SEARCH_ROUTES,
        "POST",
        "/threads/search",
        body={"metadata": {"team": "red"}, "limit": 10},
        headers={"x-api-key": key},
    )
    response = app(event, context)
    return response["statusCode"], response.get("headers") or {}, json.loads(response["body"])


def sparse_threads(container: Any, *, red: bool) -> None:
    service = container.thread_service
    for _ in range(100):  # 10 Query pages of 10 (the search's page size)
        service.create(ALICE, metadata={"team": "blue"})
    if red:
        service.create(ALICE, metadata={"team": "red"})  # newest: the first match read


def pages_take_a_second(container: Any, context: LambdaContext) -> list[int]:
    pages: list[int] = []

    def take_time(**_: Any) -> None:
        pages.append(1)
        context.elapsed += 1.0

    container.dynamodb.meta.events.register("before-call.dynamodb.Query", take_time)
    return pages


def test_a_long_read_running_out_of_time_answers_a_cut_page(container: Any, api_key: str) -> None:
    # A page may start with 21 s left: 7 pages of a second each, then the read ends as at
    # its read bound — the match kept so far and the next page's link, not a 503.
    sparse_threads(container, red=True)
    context = LambdaContext()
    pages = pages_take_a_second(container, context)
    status, headers, body = search_red(api_key, context)
    assert status == 200, body
    assert [thread["metadata"] for thread in body] == [{"team": "red"}]
    assert headers.get("X-Pagination-Next") == "1"
    assert len(pages) == 8  # the 8th refused by the deadline hook before it was sent


def test_a_long_read_running_out_of_time_with_nothing_to_answer_is_a_4xx(
    container: Any, api_key: str
) -> None:
    sparse_threads(container, red=False)
    context = LambdaContext()
    pages_take_a_second(container, context)
    status, _, body = search_red(api_key, context)
    assert 400 <= status < 500, body
    assert "longer than one request may" in json.dumps(body)
