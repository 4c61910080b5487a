"""API keys in DynamoDB: the item key is the SHA-256 of the key; the key itself is never stored."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.adapters.dynamodb_codec import (
    aws_errors_unavailable,
    is_conditional_failure,
    query_items,
)
from chalicelib.adapters.dynamodb_table import GSI1
from chalicelib.domain.models import ApiKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDBApiKeyStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @aws_errors_unavailable
    def put(self, key: ApiKey) -> None:
        self._client.put_item(TableName=self._table, Item=codec.api_key_to_item(key))

    @aws_errors_unavailable
    def find(self, key_hash: str) -> ApiKey | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": codec.s(codec.key_pk(key_hash)), "sk": codec.s(codec.KEY_SK)},
        )
        item = response.get("Item")
        return None if item is None else codec.item_to_api_key(dict(item))

    @aws_errors_unavailable
    def list_for_tenant(self, tenant_id: str) -> list[ApiKey]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": codec.s(codec.tenant_keys_gsi_pk(tenant_id))},
        }
        return [codec.item_to_api_key(i) for i in query_items(self._client, **kwargs)]

    @aws_errors_unavailable
    def revoke(self, key_hash: str, at: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": codec.s(codec.key_pk(key_hash)), "sk": codec.s(codec.KEY_SK)},
                UpdateExpression="SET revoked_at = :at",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": codec.s(codec.ts(at))},
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True
