"""Production behaviours of issue 7: Scheduler connection errors are 503 with rollback on
both façades, bad API keys are negatively cached, the OpenAI key comes from SSM (read
once, cached), and ``make run`` rejects a short dev key in one line."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.helpers import SEED_BODY, AwsCalls, JSONClient


@pytest.fixture
def unreachable_scheduler(container: Any) -> None:
    """The Scheduler client points at a closed local port: every call is a connection
    error (botocore's EndpointConnectionError), not an AWS error response."""
    import boto3
    from botocore.config import Config

    container.__dict__["scheduler"] = boto3.client(
        "scheduler",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    container.__dict__.pop("scheduler_gateway", None)
    container.__dict__.pop("schedule_service", None)


def test_a_scheduler_connection_error_is_503_and_rolled_back_on_shannon(
    client: Any, api_key: str, container: Any, unreachable_scheduler: None
) -> None:
    shannon = JSONClient(client, api_key)
    status, body = shannon.post("/api/v1/schedules", SEED_BODY)
    assert status == 503 and "error" in body
    assert shannon.get("/api/v1/schedules")[1]["schedules"] == []


def test_a_scheduler_connection_error_is_503_and_rolled_back_on_langgraph(
    client: Any, api_key: str, container: Any, unreachable_scheduler: None
) -> None:
    langgraph = JSONClient(client, api_key, header="x-api-key")
    status, body = langgraph.post("/runs/crons", {"assistant_id": "agent", "schedule": "0 9 * * *"})
    assert status == 503 and "detail" in body
    assert langgraph.post("/runs/crons/search", {})[1] == []


def test_bad_keys_cost_no_dynamodb_read_each(client: Any, api_key: str, container: Any) -> None:
    calls = AwsCalls(container.dynamodb)
    bad = JSONClient(client, "ac_not_a_real_key_0000000")
    short = JSONClient(client, "short")
    with calls.counting() as counts:
        for _ in range(20):
            assert bad.get("/api/v1/schedules")[0] == 401
            assert short.get("/api/v1/schedules")[0] == 401
    assert counts == {"dynamodb.GetItem": 1}
    # A key minted afterwards works at once (minting forgets the negative entry).
    container.api_keys.mint("tenant-a", "carol", key="ac_not_a_real_key_0000000")
    assert bad.get("/api/v1/schedules")[0] == 200


def test_the_openai_key_is_read_from_ssm_once(aws: None, settings: Any, clock: Any) -> None:
    import threading
    from http.server import ThreadingHTTPServer

    from chalicelib.dependencies import Container
    from tests.unit.test_agents_openai import FakeProvider

    provider = FakeProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), provider.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = settings.model_copy(
            update={
                "OPENAI_API_KEY_PARAMETER": "/agentcron/dev/openai-api-key",
                "OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
            }
        )
        c = Container(config, clock=clock)
        c.ssm.put_parameter(
            Name="/agentcron/dev/openai-api-key", Value="sk-from-ssm", Type="SecureString"
        )
        agent = c.agent_factory.build(c.assistants.resolve("openai"))
        calls = AwsCalls(c.ssm)
        with calls.counting() as counts:
            for _ in range(2):
                agent._post(b"{}", 5.0, 1)  # the HTTP call a run makes
        assert counts == {"ssm.GetParameter": 1}
        assert [r.headers["authorization"] for r in provider.requests] == ["Bearer sk-from-ssm"] * 2
    finally:
        server.shutdown()
        server.server_close()


def test_make_run_with_a_short_key_prints_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.local.stack"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AGENTCRON_LOCAL_API_KEY": "short", "PORT": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "make run: AGENTCRON_LOCAL_API_KEY must be 16-256 characters (it has 5)"
    ]


def test_a_budget_pause_recreates_a_missing_scheduler_entry(container: Any, clock: Any) -> None:
    """The trigger's update→create fallback (why its role may CreateSchedule): a budget
    overrun disables the entry; if the entry is gone, it is recreated DISABLED."""
    import time
    from datetime import timedelta
    from decimal import Decimal

    from tests.functional.test_trigger import NINE, make
    from tests.helpers import scheduled_event

    sched = make(
        container, max_budget_per_run_usd=Decimal("0.0015"), context={"demo_model_calls": 5}
    )
    event = scheduled_event(container, sched.id, NINE)
    group = container.settings.SCHEDULE_GROUP
    container.scheduler.delete_schedule(Name=f"sched-{sched.id}", GroupName=group)
    clock.set(NINE + timedelta(seconds=1))
    deadline = time.monotonic() + 900
    result = container.trigger_handler(event, lambda: int((deadline - time.monotonic()) * 1000))
    assert result["status"] == "budget_exceeded"
    entry = container.scheduler.get_schedule(Name=f"sched-{sched.id}", GroupName=group)
    assert entry["State"] == "DISABLED"
