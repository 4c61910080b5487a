"""The official ``shannon-sdk`` (0.7.0), unmodified, against the local stack over HTTP.

Where the SDK and the seed document disagree, agentcron follows the seed; the
differences show up here as assertions on what the SDK then does:

* pausing a paused schedule is 409 in the seed; the SDK has no 409 mapping, so it
  raises ``ConnectionError("HTTP 409: Schedule already paused")``;
* list responses carry both ``total`` (seed) and ``total_count`` (the SDK's key), and
  every list item is the full schedule (the SDK needs ``created_at``);
* the SDK only sends ``task_context`` when it is non-empty, and types it as
  ``Dict[str, str]``; agentcron stores and returns any JSON object unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.models import Principal

shannon = pytest.importorskip("shannon")


@pytest.fixture(params=["api_key", "bearer_token"])
def sdk(stack: Any, request: Any) -> Any:
    from shannon import ShannonClient

    client = ShannonClient(base_url=stack.api_url, **{request.param: stack.api_key})
    yield client
    client.close()


def test_create_list_get_update_pause_resume_runs_delete(sdk: Any) -> None:
    from shannon import errors

    created = sdk.create_schedule(
        name="每日摘要",
        cron_expression="0 9 * * *",
        task_query="总结昨天的活动",
        description="生成每日活动摘要",
        timezone="Asia/Shanghai",
        task_context={"report_format": "markdown"},
        max_budget_per_run_usd=5.0,
        timeout_seconds=600,
    )
    sid = created["schedule_id"]
    assert created["message"] == "Schedule created successfully"

    summaries, total = sdk.list_schedules(page=1, page_size=50, status="ACTIVE")
    assert total >= 1
    mine = next(s for s in summaries if s.schedule_id == sid)
    assert (mine.name, mine.cron_expression, mine.task_query) == (
        "每日摘要",
        "0 9 * * *",
        "总结昨天的活动",
    )
    assert mine.next_run_at is not None and mine.next_run_at.utcoffset().total_seconds() == 8 * 3600

    schedule = sdk.get_schedule(sid)
    assert schedule.schedule_id == sid
    assert schedule.timezone == "Asia/Shanghai"
    assert schedule.task_context == {"report_format": "markdown"}
    assert schedule.max_budget_per_run_usd == 5.0 and schedule.timeout_seconds == 600
    assert schedule.status == "ACTIVE" and schedule.total_runs == 0
    assert schedule.paused_at is None and schedule.pause_reason is None
    assert schedule.user_id == "dev"

    updated = sdk.update_schedule(sid, cron_expression="0 10 * * *", max_budget_per_run_usd=8.0)
    assert updated["success"] is True and updated["next_run_at"].endswith("T10:00:00+08:00")
    assert sdk.update_schedule(sid, clear_task_context=True)["success"] is True
    assert sdk.get_schedule(sid).task_context == {}

    with pytest.raises(errors.ValidationError, match="Invalid cron expression"):
        sdk.update_schedule(sid, cron_expression="61 * * * *")

    assert sdk.pause_schedule(sid, reason="临时维护") is True
    paused = sdk.get_schedule(sid)
    assert (paused.status, paused.pause_reason) == ("PAUSED", "临时维护")
    assert paused.paused_at is not None and paused.next_run_at is None
    with pytest.raises(errors.ConnectionError, match="HTTP 409: Schedule already paused"):
        sdk.pause_schedule(sid)
    assert sdk.resume_schedule(sid, reason="维护完成") is True
    assert sdk.get_schedule(sid).status == "ACTIVE"

    runs, run_total = sdk.get_schedule_runs(sid, page=1, page_size=20)
    assert (runs, run_total) == ([], 0)

    assert sdk.delete_schedule(sid) is True
    with pytest.raises(errors.ShannonError, match="Schedule not found"):
        sdk.get_schedule(sid)


def test_errors_map_to_the_sdks_exceptions(sdk: Any, stack: Any) -> None:
    from shannon import ShannonClient, errors

    with pytest.raises(errors.ValidationError, match="Invalid cron expression: 6-field"):
        sdk.create_schedule(name="n", cron_expression="* * * * * *", task_query="q")
    with pytest.raises(errors.ValidationError, match="Invalid timezone: Mars/Base"):
        sdk.create_schedule(
            name="n", cron_expression="0 9 * * *", task_query="q", timezone="Mars/Base"
        )
    with pytest.raises(errors.ValidationError, match=r"Budget exceeds limit: \$20.00 > \$10.00"):
        sdk.create_schedule(
            name="n", cron_expression="0 9 * * *", task_query="q", max_budget_per_run_usd=20
        )
    with pytest.raises(errors.ShannonError, match="Schedule not found"):
        sdk.get_schedule("00000000-0000-0000-0000-000000000000")
    stranger = ShannonClient(base_url=stack.api_url, api_key="ac_not_a_real_key_at_all")
    try:
        with pytest.raises(errors.AuthenticationError, match="Invalid token"):
            stranger.list_schedules()
    finally:
        stranger.close()


def test_runs_are_read_by_the_sdk(sdk: Any, stack: Any) -> None:
    import time

    created = sdk.create_schedule(name="hourly", cron_expression="0 * * * *", task_query="ping")
    sid = created["schedule_id"]
    stack.container.run_service.trigger_now(Principal(tenant_id="local", user_id="dev"), sid)
    deadline = time.monotonic() + 10
    runs: list[Any] = []
    while time.monotonic() < deadline and not (runs and runs[0].status == "COMPLETED"):
        runs, _ = sdk.get_schedule_runs(sid)
        time.sleep(0.05)
    [run] = runs
    assert run.status == "COMPLETED" and run.query == "ping"
    assert run.total_tokens > 0 and run.total_cost_usd > 0
    assert run.started_at is not None and run.completed_at is not None
    assert sdk.get_schedule(sid).total_runs == 1
    sdk.delete_schedule(sid)
