"""The one definition of agentcron's DynamoDB table and EventBridge schedule group.

The deployment template, ``make run`` and the test fixtures all create resources
from these functions, so a key schema can never drift between them.

agentcron uses a single table (all access patterns are key lookups or Queries on
a partition, and cross-item transactions — claim a run and mark its schedule,
finish a run and bump counters — need the items in one table anyway):

================================  ======================  ==================================
item                              pk                      sk
================================  ======================  ==================================
schedule                          ``T#<t>#U#<u>``         ``S#<schedule_id>``
per-user schedule counter         ``T#<t>#U#<u>``         ``COUNTER``
run                               ``T#<t>#U#<u>#R#<sid>`` ``<scheduled_time>#<kind>[#<run_id>]``
thread                            ``T#<t>#U#<u>#TH``      ``<thread_id>``
API key (hash only)               ``KEY#<sha256>``        ``KEY``
================================  ======================  ==================================

GSI ``gsi1`` (sparse) indexes runs by their owner's thread
(``T#<t>#U#<u>#TH#<thread_id>`` / ``<created>#<run_id>``),
API keys by tenant (``T#<t>#KEYS`` / ``<created>#<key_id>``) and every schedule in one of a
few shards (``SCHEDULES#<n>`` / ``<schedule_id>``) for the reconciler. GSI ``gsi2`` (sparse)
holds only *running* runs (``RUNNING#<n>`` / ``<stuck_after>#<run_id>``; a running
run's heartbeat moves the sort key forward), so the reconciler finds stuck runs
without a Scan. ``expires_at`` (epoch seconds) is the TTL
attribute used for kept threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

GSI1 = "gsi1"
GSI2 = "gsi2"
TTL_ATTRIBUTE = "expires_at"


def table_name(stage: str) -> str:
    """The stage's table: ``agentcron-<stage>`` (``TABLE_NAME`` in every stage's config)."""
    return f"agentcron-{stage}"


def schedule_group_name(stage: str) -> str:
    """One EventBridge Scheduler group per stage (``SCHEDULE_GROUP``), created by infra."""
    return f"agentcron-{stage}"


def table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments (also the shape of the CloudFormation resource)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
            {"AttributeName": "gsi2pk", "AttributeType": "S"},
            {"AttributeName": "gsi2sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI1,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": GSI2,
                "KeySchema": [
                    {"AttributeName": "gsi2pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    }


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the table (if missing) and enable TTL on ``expires_at``."""
    existing = client.list_tables().get("TableNames", [])
    if table_name not in existing:
        client.create_table(**table_definition(table_name))
        client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def create_schedule_group(client: EventBridgeSchedulerClient, group_name: str) -> None:
    """Create the stage's schedule group once.

    Checked first because moto silently *replaces* an existing group (wiping its
    schedules) on a duplicate create, where AWS would answer ``ConflictException``.
    """
    groups = client.list_schedule_groups(NamePrefix=group_name).get("ScheduleGroups", [])
    if any(g.get("Name") == group_name for g in groups):
        return
    client.create_schedule_group(Name=group_name)
