"""Threads in DynamoDB: one partition per (tenant, user), sorted by thread id (UUIDv7 = time).

Kept threads may carry ``expires_at`` (DynamoDB TTL). TTL deletion is lazy on AWS
and never happens in moto, so every read filters out expired items itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.adapters.dynamodb_common import aws_errors_unavailable, is_conditional_failure
from chalicelib.domain.errors import (
    ConflictError,
    SchedulingUnavailableError,
    ThreadNotFoundError,
)
from chalicelib.domain.models import Principal, Thread
from chalicelib.domain.ports import Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDBThreadStore:
    def __init__(self, client: DynamoDBClient, table_name: str, clock: Clock) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    @aws_errors_unavailable
    def create(self, thread: Thread) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=codec.thread_to_item(thread),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise ConflictError(f"Thread {thread.thread_id} already exists") from exc
            raise SchedulingUnavailableError(str(exc)) from exc

    @aws_errors_unavailable
    def put(self, thread: Thread) -> None:
        self._client.put_item(TableName=self._table, Item=codec.thread_to_item(thread))

    @aws_errors_unavailable
    def find(self, tenant_id: str, user_id: str, thread_id: str) -> Thread | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=self._key(tenant_id, user_id, thread_id),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        thread = codec.item_to_thread(dict(item))
        return None if self._expired(thread, self._clock.now()) else thread

    @aws_errors_unavailable
    def get(self, principal: Principal, thread_id: str) -> Thread:
        found = self.find(principal.tenant_id, principal.user_id, thread_id)
        if found is None:
            raise ThreadNotFoundError(thread_id)
        return found

    @aws_errors_unavailable
    def exists(self, principal: Principal, thread_id: str) -> bool:
        return self.find(principal.tenant_id, principal.user_id, thread_id) is not None

    @aws_errors_unavailable
    def delete(self, principal: Principal, thread_id: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(principal.tenant_id, principal.user_id, thread_id),
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise ThreadNotFoundError(thread_id) from exc
            raise SchedulingUnavailableError(str(exc)) from exc

    @aws_errors_unavailable
    def list_for_user(self, principal: Principal) -> list[Thread]:
        """All live threads of the caller, newest first."""
        now = self._clock.now()
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {
                ":pk": codec.s(codec.threads_pk(principal.tenant_id, principal.user_id))
            },
            "ScanIndexForward": False,
        }
        out: list[Thread] = []
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                thread = codec.item_to_thread(dict(item))
                if not self._expired(thread, now):
                    out.append(thread)
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _expired(thread: Thread, now: datetime) -> bool:
        return thread.expires_at is not None and thread.expires_at <= now

    def _key(self, tenant_id: str, user_id: str, thread_id: str) -> dict[str, Any]:
        return {
            "pk": codec.s(codec.threads_pk(tenant_id, user_id)),
            "sk": codec.s(thread_id),
        }
