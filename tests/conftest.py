"""Shared fixtures: moto-backed AWS, a fresh dependency container, the Chalice test client.

Every test gets empty AWS state (``mock_aws``), the real table and schedule group
created from ``chalicelib/adapters/dynamodb_table.py``, and a container whose clients
are created inside the mock. Nothing of ours is patched: tests install a container with
``dependencies.override`` and inject a fixed clock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Fake credentials before anything imports boto3: a real key must never be used by tests.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
# Every botocore client of the suite records the calls it makes, attributed to the
# function (API, trigger, reconciler) whose code made them: tests/deploy/test_iam.py
# checks them against the deployed policies (see tests/deploy/aws_calls.py).
os.environ["BOTOCORE_EXPERIMENTAL__PLUGINS"] = "agentcron_calls=tests.deploy.aws_calls"

START = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)

# A local HTTPS webhook receiver (``https_receiver``, ``tls_files``) for any test.
pytest_plugins = ["tests.fixtures.webhook_receiver"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The IAM tests judge the calls the rest of the suite recorded: they run last."""
    last = [i for i in items if i.path.name == "test_iam.py"]
    items[:] = [i for i in items if i.path.name != "test_iam.py"] + last


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override per test module/test to change limits."""
    return {}


@pytest.fixture
def settings(settings_overrides: dict[str, Any]) -> Any:
    from chalicelib.settings import Settings

    base: dict[str, Any] = {
        "STAGE": "test",
        "TABLE_NAME": "agentcron-test",
        "SCHEDULE_GROUP": "agentcron-test",
        "RUN_INVOKER": "local",
        "API_KEY_CACHE_SECONDS": 60,
    }
    base.update(settings_overrides)
    return Settings.model_validate(base)


@pytest.fixture
def clock() -> Any:
    from chalicelib.clock import FixedClock

    return FixedClock(START)


@pytest.fixture(scope="session")
def boto_session() -> Any:
    """One botocore session for every test's container: clients then share its loaded
    service models instead of re-reading them per test. moto's handler must be known
    to botocore before the session is made; each test still gets empty AWS state."""
    import boto3
    import moto  # noqa: F401  - registers its handler with botocore before the session exists

    return boto3.session.Session()


@pytest.fixture
def container(aws: None, settings: Any, clock: Any, boto_session: Any) -> Iterator[Any]:
    from chalicelib import dependencies
    from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table
    from chalicelib.adapters.local_invoker import InlineRunInvoker
    from chalicelib.dependencies import Container

    holder: dict[str, Any] = {}
    invoker = InlineRunInvoker(lambda e, r: holder["c"].trigger_handler(e, r))
    c = Container(settings, clock=clock, invoker=invoker, boto_session=boto_session)
    holder["c"] = c
    create_table(c.dynamodb, settings.TABLE_NAME)
    create_schedule_group(c.scheduler, settings.SCHEDULE_GROUP)
    dependencies.override(c)
    yield c
    dependencies.override(None)


@pytest.fixture
def client(container: Any) -> Iterator[Any]:
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local", project_dir=str(ROOT)) as test_client:
        yield test_client


@pytest.fixture
def api_key(container: Any) -> str:
    key, _ = container.api_keys.mint("tenant-a", "alice", key="ac_test_key_alice_0001")
    return key


@pytest.fixture
def other_keys(container: Any) -> dict[str, str]:
    """A second user of the same tenant and a user of another tenant."""
    same_tenant, _ = container.api_keys.mint("tenant-a", "bob", key="ac_test_key_bob_00001")
    other_tenant, _ = container.api_keys.mint("tenant-b", "alice", key="ac_test_key_eve_00001")
    return {"same_tenant": same_tenant, "other_tenant": other_tenant}
