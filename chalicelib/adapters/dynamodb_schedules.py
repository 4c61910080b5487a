"""Schedules in DynamoDB, with a race-free per-user limit.

Every key contains the tenant and the user, so another caller's id is simply not
found. Lists are one Query on the caller's partition (newest first; schedule ids
are UUIDv7, so the sort key orders by creation).

**The limit.** ``create`` is one ``TransactWriteItems``: ``ADD 1`` to the user's
counter on the condition that it is below the limit, plus the conditional put of
the schedule. Concurrent creates therefore cannot overshoot. ``delete`` is a
single ``DeleteItem`` that returns the old record (the service needs it to remove
the EventBridge entries, and to put it back if that fails) and does *not*
decrement the counter: the counter is an upper bound of the user's schedules.
When a create finds the counter at the limit it recounts the partition (a
consistent ``Select=COUNT`` Query) and, if there is room, writes ``count + 1``
conditioned on the counter value it observed, in the same transaction as the
put. Any create that committed meanwhile changed the counter and fails that
condition, so the recount is race-free too. The effect: create and delete stay
at one DynamoDB call each, and only a user who reaches the limit after deletes
pays for one extra Query.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.adapters.dynamodb_codec import (
    TransactionCancelled,
    aws_errors_unavailable,
    is_conditional_failure,
    old_item_of,
    query_count,
    query_items,
    transact,
)
from chalicelib.adapters.dynamodb_table import GSI1
from chalicelib.domain.enums import PausedBy, ScheduleStatus
from chalicelib.domain.errors import (
    ConflictError,
    ScheduleAlreadyPausedError,
    ScheduleLimitReachedError,
    ScheduleNotFoundError,
    ScheduleNotPausedError,
    SchedulingUnavailableError,
)
from chalicelib.domain.models import Principal, Schedule

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

RECOUNT_ATTEMPTS = 5


class DynamoDBScheduleStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # --- create ----------------------------------------------------------------------------

    @aws_errors_unavailable
    def create(self, schedule: Schedule, *, limit: int) -> None:
        pk = codec.user_pk(schedule.tenant_id, schedule.user_id)
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self._table,
                "Item": codec.schedule_to_item(schedule),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        bump: TransactWriteItemTypeDef = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": codec.s(pk), "sk": codec.s(codec.COUNTER_SK)},
                "UpdateExpression": "ADD #n :one",
                "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
                "ExpressionAttributeNames": {"#n": "schedules"},
                "ExpressionAttributeValues": {":one": codec.n(1), ":limit": codec.n(limit)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        try:
            transact(self._client, [bump, put])
            return
        except TransactionCancelled as exc:
            if exc.failed(1):
                raise ConflictError(f"schedule {schedule.id} already exists") from exc
            old = exc.old_item(0)
            observed = 0 if old is None else codec.get_int(old, "schedules")
        self._create_after_recount(schedule, limit, put, observed)

    def _create_after_recount(
        self, schedule: Schedule, limit: int, put: TransactWriteItemTypeDef, observed: int
    ) -> None:
        pk = codec.user_pk(schedule.tenant_id, schedule.user_id)
        for _ in range(RECOUNT_ATTEMPTS):
            actual = self._count(pk)
            if actual >= limit:
                raise ScheduleLimitReachedError(actual, limit)
            reset: TransactWriteItemTypeDef = {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": codec.s(pk), "sk": codec.s(codec.COUNTER_SK)},
                    "UpdateExpression": "SET #n = :next",
                    "ConditionExpression": "#n = :observed",
                    "ExpressionAttributeNames": {"#n": "schedules"},
                    "ExpressionAttributeValues": {
                        ":next": codec.n(actual + 1),
                        ":observed": codec.n(observed),
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            try:
                transact(self._client, [reset, put])
                return
            except TransactionCancelled as exc:
                if exc.failed(1):
                    raise ConflictError(f"schedule {schedule.id} already exists") from exc
                old = exc.old_item(0)
                observed = 0 if old is None else codec.get_int(old, "schedules")
        raise SchedulingUnavailableError("the schedule counter kept changing; try again")

    def _count(self, pk: str) -> int:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": codec.s(pk),
                ":prefix": codec.s(codec.SCHEDULE_SK_PREFIX),
            },
            "ConsistentRead": True,
        }
        return query_count(self._client, **kwargs)

    # --- reads -----------------------------------------------------------------------------

    @aws_errors_unavailable
    def get(self, principal: Principal, schedule_id: str) -> Schedule:
        found = self.find(principal.tenant_id, principal.user_id, schedule_id)
        if found is None:
            raise ScheduleNotFoundError(schedule_id)
        return found

    @aws_errors_unavailable
    def find(self, tenant_id: str, user_id: str, schedule_id: str) -> Schedule | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=self._key(tenant_id, user_id, schedule_id),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else codec.item_to_schedule(dict(item))

    @aws_errors_unavailable
    def list_for_user(self, principal: Principal) -> list[Schedule]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": codec.s(codec.user_pk(principal.tenant_id, principal.user_id)),
                ":prefix": codec.s(codec.SCHEDULE_SK_PREFIX),
            },
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        return [codec.item_to_schedule(i) for i in query_items(self._client, **kwargs)]

    @aws_errors_unavailable
    def all_schedules(self) -> list[Schedule]:
        """Every schedule of every tenant, for the reconciler (gsi1 shards; no Scan)."""
        out: list[Schedule] = []
        for shard in range(codec.SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": GSI1,
                "KeyConditionExpression": "gsi1pk = :pk",
                "ExpressionAttributeValues": {":pk": codec.s(codec.schedules_gsi_pk(shard))},
            }
            out.extend(codec.item_to_schedule(i) for i in query_items(self._client, **kwargs))
        return out

    # --- writes ----------------------------------------------------------------------------

    @aws_errors_unavailable
    def update(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        """Write the client-editable attributes if the version is still ``expected_version``."""
        names = {"#ver": "version"}
        values = {
            ":spec": codec.schedule_spec(schedule),
            ":uat": codec.s(codec.ts(schedule.updated_at)),
            ":expected": codec.n(expected_version),
            ":one": codec.n(1),
        }
        old = self._conditional_update(
            schedule.tenant_id,
            schedule.user_id,
            schedule.id,
            update="SET spec = :spec, updated_at = :uat, #ver = #ver + :one",
            condition="attribute_exists(pk) AND #ver = :expected",
            names=names,
            values=values,
            on_failure=lambda old: ConflictError(
                f"schedule {schedule.id} changed concurrently (version {old['version']['N']})"
            ),
        )
        return old.model_copy(
            update={
                **{f: getattr(schedule, f) for f in codec.SPEC_FIELDS if f != "created_at"},
                "updated_at": schedule.updated_at,
                "version": old.version + 1,
            }
        )

    @aws_errors_unavailable
    def pause(
        self,
        principal: Principal,
        schedule_id: str,
        *,
        at: datetime,
        reason: str | None,
        by: str,
    ) -> tuple[Schedule, Schedule]:
        """ACTIVE → PAUSED; returns (before, after)."""
        old = self._conditional_update(
            principal.tenant_id,
            principal.user_id,
            schedule_id,
            update=(
                "SET #st = :paused, paused_at = :at, pause_reason = :reason, paused_by = :by, "
                "updated_at = :at, #ver = #ver + :one"
            ),
            condition="attribute_exists(pk) AND #st = :active",
            names={"#st": "status", "#ver": "version"},
            values={
                ":paused": codec.s(ScheduleStatus.PAUSED.value),
                ":active": codec.s(ScheduleStatus.ACTIVE.value),
                ":at": codec.s(codec.ts(at)),
                ":reason": codec.opt_s(reason),
                ":by": codec.s(PausedBy(by).value),
                ":one": codec.n(1),
            },
            on_failure=lambda _old: ScheduleAlreadyPausedError(schedule_id),
        )
        return old, old.model_copy(
            update={
                "status": ScheduleStatus.PAUSED,
                "paused_at": at,
                "pause_reason": reason,
                "paused_by": PausedBy(by),
                "updated_at": at,
                "version": old.version + 1,
            }
        )

    @aws_errors_unavailable
    def resume(
        self, principal: Principal, schedule_id: str, *, at: datetime
    ) -> tuple[Schedule, Schedule]:
        """PAUSED → ACTIVE; returns (before, after)."""
        old = self._conditional_update(
            principal.tenant_id,
            principal.user_id,
            schedule_id,
            update=(
                "SET #st = :active, paused_at = :null, pause_reason = :null, paused_by = :null, "
                "consecutive_failures = :zero, updated_at = :at, #ver = #ver + :one"
            ),
            condition="attribute_exists(pk) AND #st = :paused",
            names={"#st": "status", "#ver": "version"},
            values={
                ":paused": codec.s(ScheduleStatus.PAUSED.value),
                ":active": codec.s(ScheduleStatus.ACTIVE.value),
                ":at": codec.s(codec.ts(at)),
                ":null": {"NULL": True},
                ":one": codec.n(1),
                ":zero": codec.n(0),
            },
            on_failure=lambda _old: ScheduleNotPausedError(schedule_id),
        )
        return old, old.model_copy(
            update={
                "status": ScheduleStatus.ACTIVE,
                "paused_at": None,
                "pause_reason": None,
                "paused_by": None,
                "consecutive_failures": 0,
                "updated_at": at,
                "version": old.version + 1,
            }
        )

    @aws_errors_unavailable
    def restore_state(self, previous: Schedule, *, expected_version: int) -> None:
        """Compensation for pause/resume: put status and pause fields back as they were."""
        self._conditional_update(
            previous.tenant_id,
            previous.user_id,
            previous.id,
            update=(
                "SET #st = :st, paused_at = :pat, pause_reason = :pr, paused_by = :pb, "
                "updated_at = :uat, #ver = #ver + :one"
            ),
            condition="attribute_exists(pk) AND #ver = :expected",
            names={"#st": "status", "#ver": "version"},
            values={
                ":st": codec.s(previous.status.value),
                ":pat": codec.opt_ts(previous.paused_at),
                ":pr": codec.opt_s(previous.pause_reason),
                ":pb": codec.opt_s(
                    None if previous.paused_by is None else previous.paused_by.value
                ),
                ":uat": codec.s(codec.ts(previous.updated_at)),
                ":expected": codec.n(expected_version),
                ":one": codec.n(1),
            },
            on_failure=lambda _old: ConflictError(f"schedule {previous.id} changed concurrently"),
        )

    @aws_errors_unavailable
    def delete(self, principal: Principal, schedule_id: str) -> Schedule:
        try:
            response = self._client.delete_item(
                TableName=self._table,
                Key=self._key(principal.tenant_id, principal.user_id, schedule_id),
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise ScheduleNotFoundError(schedule_id) from exc
            raise SchedulingUnavailableError(str(exc)) from exc
        return codec.item_to_schedule(dict(response["Attributes"]))

    @aws_errors_unavailable
    def restore(self, schedule: Schedule) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=codec.schedule_to_item(schedule),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return
            raise SchedulingUnavailableError(str(exc)) from exc

    # --- helpers ---------------------------------------------------------------------------

    def _key(self, tenant_id: str, user_id: str, schedule_id: str) -> dict[str, Any]:
        return {
            "pk": codec.s(codec.user_pk(tenant_id, user_id)),
            "sk": codec.s(codec.schedule_sk(schedule_id)),
        }

    def _conditional_update(
        self,
        tenant_id: str,
        user_id: str,
        schedule_id: str,
        *,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        on_failure: Any,
    ) -> Schedule:
        """One conditional UpdateItem; returns the record as it was *before* the update."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key(tenant_id, user_id, schedule_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise SchedulingUnavailableError(str(exc)) from exc
            old = old_item_of(exc)
            if old is None:
                raise ScheduleNotFoundError(schedule_id) from exc
            raise on_failure(old) from exc
        return codec.item_to_schedule(dict(response["Attributes"]))
