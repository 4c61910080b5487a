"""Fixtures of the LangGraph-façade tests: one AWS world per module, one tenant per test.

``tests/conftest.py`` builds a fresh moto world, table, schedule group and Chalice
client for every test (about 0.4 s each). These tests share one per module and
isolate each test the way production isolates callers: every key holds the tenant
and the user, so a test with a tenant of its own sees nothing of the others (the
EventBridge schedule group aside, which tests query by their own cron ids). The
fixtures keep the shared names — ``container``, ``clock``, ``client``, ``api_key``,
``other_keys`` — and add ``principal``, plus the real ``langgraph_sdk`` clients
``lg`` (sync) and ``alg`` (async).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient

from chalicelib.domain.models import Principal
from tests.compat.bridge import async_client, sync_client

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)  # tests/conftest.py's FixedClock start

_tenants = itertools.count(1)


@dataclass
class SharedEnv:
    container: Any
    clock: Any
    client: Any


@pytest.fixture(scope="module")
def lg_env() -> Iterator[SharedEnv]:
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib import dependencies
    from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table
    from chalicelib.adapters.local_invoker import InlineRunInvoker
    from chalicelib.clock import FixedClock
    from chalicelib.dependencies import Container
    from chalicelib.settings import Settings

    settings = Settings.model_validate(
        {
            "STAGE": "test",
            "TABLE_NAME": "agentcron-test",
            "SCHEDULE_GROUP": "agentcron-test",
            "RUN_INVOKER": "local",
            "API_KEY_CACHE_SECONDS": 60,
            # Small, so the limit test fills it quickly; no other test comes close.
            "SCHEDULE_MAX_PER_USER": 8,
        }
    )
    with mock_aws():
        clock = FixedClock(START)
        holder: dict[str, Any] = {}
        invoker = InlineRunInvoker(lambda e, r: holder["c"].trigger_handler(e, r))
        container = Container(settings, clock=clock, invoker=invoker)
        holder["c"] = container
        create_table(container.dynamodb, settings.TABLE_NAME)
        create_schedule_group(container.scheduler, settings.SCHEDULE_GROUP)
        dependencies.override(container)
        try:
            with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
                yield SharedEnv(container=container, clock=clock, client=client)
        finally:
            dependencies.override(None)


@pytest.fixture
def tenant(lg_env: SharedEnv) -> str:
    """A tenant of this test's own (and a fresh clock): nothing of other tests is visible."""
    from chalicelib import dependencies

    lg_env.clock.set(START)
    dependencies.override(lg_env.container)  # in case a function-scoped container replaced it
    return f"lg-tenant-{next(_tenants)}"


@pytest.fixture
def container(lg_env: SharedEnv, tenant: str) -> Any:
    return lg_env.container


@pytest.fixture
def clock(lg_env: SharedEnv, tenant: str) -> Any:
    return lg_env.clock


@pytest.fixture
def client(lg_env: SharedEnv, tenant: str) -> Any:
    return lg_env.client


@pytest.fixture
def principal(tenant: str) -> Principal:
    return Principal(tenant_id=tenant, user_id="alice")


@pytest.fixture
def api_key(lg_env: SharedEnv, tenant: str) -> str:
    key, _ = lg_env.container.api_keys.mint(tenant, "alice", key=f"ac_test_{tenant}_alice_key")
    return key


@pytest.fixture
def other_keys(lg_env: SharedEnv, tenant: str) -> dict[str, str]:
    """A second user of the same tenant and the same user name in another tenant."""
    keys = lg_env.container.api_keys
    same_tenant, _ = keys.mint(tenant, "bob", key=f"ac_test_{tenant}_bob_key__")
    other_tenant, _ = keys.mint(f"{tenant}-b", "alice", key=f"ac_test_{tenant}_other_key")
    return {"same_tenant": same_tenant, "other_tenant": other_tenant}


@pytest.fixture
def lg(client: Any, api_key: str) -> Iterator[SyncLangGraphClient]:
    """``get_sync_client(url=..., api_key=<alice's key>)``, served in process."""
    sdk = sync_client(client, api_key)
    yield sdk
    sdk.close()


@pytest.fixture
def alg(client: Any, api_key: str) -> LangGraphClient:
    """``get_client(url=..., api_key=<alice's key>)``; a test drives it with asyncio.run."""
    return async_client(client, api_key)
