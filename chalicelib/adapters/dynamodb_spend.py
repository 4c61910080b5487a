"""Monthly caps and usage in DynamoDB: cap overrides, month counters, the spend guard,
and the daily usage rollups the usage endpoint reads.

Items (keys in ``dynamodb_table.py``'s table, built here):

=========================  ==========================  ====================================
item                       pk                          sk
=========================  ==========================  ====================================
tenant cap override        ``CAP#T#<t>``               ``TENANT``
user cap override          ``CAP#T#<t>``               ``U#<u>``
user month counter         ``T#<t>#U#<u>#USE``         ``M#<YYYY-MM>``
user daily rollup          ``T#<t>#U#<u>#USE``         ``D#<YYYY-MM-DD>#S#<schedule_id>``
tenant month counter       ``T#<t>#USE``               ``M#<YYYY-MM>``
=========================  ==========================  ====================================

**Counters and the guard.** A month counter holds ``used`` (spent + held by calls in
flight) and ``spent``. DynamoDB conditions cannot add, so the guard reserves a call's
worst case with ``ADD used :amount`` conditioned on ``used <= :cap - :amount`` — one
conditional UpdateItem, atomic on the item, so concurrent runs of one user can never
hold more than the cap between them. With a user *and* a tenant cap the user counter is
reserved first, then the tenant's; if the tenant refuses, the user reservation is
returned (``ADD used -:amount``). Between the two writes the user counter over-counts,
which can only refuse a concurrent call, never admit one. Settling replaces the
reservation with what was booked (``ADD used :charged - :reserved, spent :charged``),
unconditionally. A refused call is recorded on the *user's own* month item (the cap's
scope and value and the refused worst case: ``refused_scope``, ``refused_cap``,
``refused_usd``), never on a tenant's shared counter: the trigger skips that user's
later fires while the same cap stands with less left than the refused call, so one
user's oversized call cannot stop the tenant's other users. A run
whose process dies mid-call leaves its hold in ``used`` — over-counted, never under.

The counters are written by the guard only, i.e. only while a cap is in force: spend
made before a cap was first configured in a month is not counted against it (the
usage endpoint's month-to-date, read from the rollups, is).

**Rollups.** The finish transaction (and a skip's) adds one Update item per run to the
user's daily rollup of its schedule: cost, tokens and a count per status. The usage
endpoint reads a window with one Query of the user's ``#USE`` partition (no Scan), so
it is isolated by key like every other user-owned read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.adapters.dynamodb_codec import (
    aws_errors_unavailable,
    is_conditional_failure,
    query_items,
)
from chalicelib.agents.base import CapExceeded
from chalicelib.domain.caps import (
    Cap,
    CapDefaults,
    CapOverride,
    CapScope,
    CapUsage,
    Rollup,
    RollupRow,
    month_of,
    resolve,
)
from chalicelib.domain.enums import RunStatus
from chalicelib.domain.models import Run

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

Key = dict[str, Any]

# --- keys ----------------------------------------------------------------------------------


def cap_pk(tenant_id: str) -> str:
    return f"CAP#T#{tenant_id}"


TENANT_CAP_SK = "TENANT"


def user_cap_sk(user_id: str) -> str:
    return f"U#{user_id}"


def user_usage_pk(tenant_id: str, user_id: str) -> str:
    return f"T#{tenant_id}#U#{user_id}#USE"


def tenant_usage_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#USE"


def month_sk(month: str) -> str:
    return f"M#{month}"


def rollup_sk(day: str, schedule_id: str) -> str:
    return f"D#{day}#S#{schedule_id}"


def _key(pk: str, sk: str) -> Key:
    return {"pk": codec.s(pk), "sk": codec.s(sk)}


def override_keys(tenant_id: str, user_id: str) -> list[Key]:
    """The two override items of one user (the trigger adds them to its fire read)."""
    return [
        _key(cap_pk(tenant_id), user_cap_sk(user_id)),
        _key(cap_pk(tenant_id), TENANT_CAP_SK),
    ]


def counter_key(scope: CapScope, tenant_id: str, user_id: str, month: str) -> Key:
    if scope is CapScope.USER:
        return _key(user_usage_pk(tenant_id, user_id), month_sk(month))
    return _key(tenant_usage_pk(tenant_id), month_sk(month))


# --- items ---------------------------------------------------------------------------------


def _dec(item: dict[str, Any], name: str) -> Decimal:
    value = item.get(name)
    return Decimal(0) if value is None or "N" not in value else Decimal(value["N"])


def _opt_dec(item: dict[str, Any], name: str) -> Decimal | None:
    value = item.get(name)
    return None if value is None or "N" not in value else Decimal(value["N"])


def overrides_of(
    items: Iterable[dict[str, Any]], tenant_id: str, user_id: str
) -> tuple[CapOverride | None, CapOverride | None]:
    """(user override, tenant override) among ``items`` (others are ignored)."""
    user = tenant = None
    for item in items:
        if codec.get_s(item, "pk") != cap_pk(tenant_id):
            continue
        override = _override_of(item)
        if override.scope is CapScope.TENANT:
            tenant = override
        elif override.user_id == user_id:
            user = override
    return user, tenant


def _override_of(item: dict[str, Any]) -> CapOverride:
    sk = codec.get_s(item, "sk")
    scope = CapScope.TENANT if sk == TENANT_CAP_SK else CapScope.USER
    return CapOverride(
        scope=scope,
        tenant_id=codec.get_s(item, "tenant"),
        user_id=None if scope is CapScope.TENANT else sk[2:],
        monthly_usd=_opt_dec(item, "monthly_usd"),
    )


def rollup_update(table: str, run: Run) -> TransactWriteItemTypeDef:
    """The finish (or skip) transaction's usage item for ``run``: ADDs only, no condition."""
    at = run.started_at or run.completed_at or run.created_at
    day = codec.ts(at)[:10]  # the UTC day (``ts`` is fixed-width UTC)
    names = {"#n": f"n_{run.status.value}"}
    values: dict[str, Any] = {
        ":one": codec.n(1),
        ":c": codec.n(run.usage.cost_usd),
        ":i": codec.n(run.usage.input_tokens),
        ":o": codec.n(run.usage.output_tokens),
        ":sid": codec.s(run.schedule_id),
        ":day": codec.s(day),
    }
    return {
        "Update": {
            "TableName": table,
            "Key": _key(user_usage_pk(run.tenant_id, run.user_id), rollup_sk(day, run.schedule_id)),
            "UpdateExpression": (
                "ADD #n :one, cost :c, tin :i, tout :o SET schedule_id = :sid, #d = :day"
            ),
            "ExpressionAttributeNames": {**names, "#d": "day"},
            "ExpressionAttributeValues": values,
        }
    }


def _row_of(item: dict[str, Any]) -> RollupRow:
    runs = {
        status.value: codec.get_int(item, f"n_{status.value}")
        for status in RunStatus
        if f"n_{status.value}" in item
    }
    return RollupRow(
        day=codec.get_s(item, "day"),
        schedule_id=codec.get_s(item, "schedule_id"),
        usage=Rollup(
            cost_usd=_dec(item, "cost"),
            input_tokens=codec.get_int(item, "tin"),
            output_tokens=codec.get_int(item, "tout"),
            runs=runs,
        ),
    )


def usage_of(cap: Cap, item: dict[str, Any] | None, own: dict[str, Any] | None) -> CapUsage:
    """``item``: the cap's counter; ``own``: the user's month item (its refusal record)."""
    item, own = item or {}, own or {}
    refused = None
    if (
        own.get("refused_scope", {}).get("S") == cap.scope.value
        and _opt_dec(own, "refused_cap") == cap.monthly_usd
    ):
        refused = _opt_dec(own, "refused_usd")
    return CapUsage(
        cap=cap,
        used_usd=_dec(item, "used"),
        spent_usd=_dec(item, "spent"),
        refused_usd=refused,
    )


# --- the store -------------------------------------------------------------------------------


class DynamoDBSpendStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @property
    def table(self) -> str:
        return self._table

    def override_keys(self, tenant_id: str, user_id: str) -> list[Key]:
        return override_keys(tenant_id, user_id)

    def caps_from(
        self, items: Iterable[dict[str, Any]], tenant_id: str, user_id: str, defaults: CapDefaults
    ) -> tuple[Cap, ...]:
        """The caps in force for the user, from the override items read with its fire."""
        if not items and defaults.user_usd is None and defaults.tenant_usd is None:
            return ()  # the common case, decided without leaving this line
        user, tenant = overrides_of(items, tenant_id, user_id)
        return resolve(defaults, user, tenant)

    @aws_errors_unavailable
    def caps_for(self, tenant_id: str, user_id: str, defaults: CapDefaults) -> tuple[Cap, ...]:
        """The caps in force for the user (one BatchGetItem; the API's read)."""
        return self.caps_from(
            self.get_many(override_keys(tenant_id, user_id)), tenant_id, user_id, defaults
        )

    # overrides (operators) ---------------------------------------------------------------

    @aws_errors_unavailable
    def set_override(self, override: CapOverride, now: datetime) -> None:
        sk = TENANT_CAP_SK if override.user_id is None else user_cap_sk(override.user_id)
        item: dict[str, Any] = {
            **_key(cap_pk(override.tenant_id), sk),
            "type": codec.s("cap"),
            "tenant": codec.s(override.tenant_id),
            "monthly_usd": (
                {"NULL": True} if override.monthly_usd is None else codec.n(override.monthly_usd)
            ),
            "updated_at": codec.s(codec.ts(now)),
        }
        self._client.put_item(TableName=self._table, Item=item)

    @aws_errors_unavailable
    def clear_override(self, tenant_id: str, user_id: str | None) -> None:
        sk = TENANT_CAP_SK if user_id is None else user_cap_sk(user_id)
        self._client.delete_item(TableName=self._table, Key=_key(cap_pk(tenant_id), sk))

    @aws_errors_unavailable
    def list_overrides(self, tenant_id: str) -> list[CapOverride]:
        """Every override of one tenant (its own and its users'): one Query."""
        items = query_items(
            self._client,
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": codec.s(cap_pk(tenant_id))},
        )
        return [_override_of(i) for i in items]

    # reads -----------------------------------------------------------------------------------

    @aws_errors_unavailable
    def get_many(self, keys: Sequence[Key]) -> list[dict[str, Any]]:
        """Consistent BatchGetItem of up to 100 keys (unprocessed keys retried)."""
        request: dict[str, Any] = {self._table: {"Keys": list(keys), "ConsistentRead": True}}
        found: list[dict[str, Any]] = []
        for _ in range(5):
            response = self._client.batch_get_item(RequestItems=request)
            found.extend(dict(i) for i in response.get("Responses", {}).get(self._table, []))
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
        return found

    def usage(
        self, caps: Sequence[Cap], tenant_id: str, user_id: str, month: str
    ) -> list[CapUsage]:
        """Each cap with its month counter (one BatchGetItem; none without caps)."""
        if not caps:
            return []
        keys = [counter_key(c.scope, tenant_id, user_id, month) for c in caps]
        own_key = counter_key(CapScope.USER, tenant_id, user_id, month)
        wanted = keys if own_key in keys else [*keys, own_key]
        found = {(codec.get_s(i, "pk"), codec.get_s(i, "sk")): i for i in self.get_many(wanted)}
        own = found.get((own_key["pk"]["S"], own_key["sk"]["S"]))
        return [
            usage_of(cap, found.get((key["pk"]["S"], key["sk"]["S"])), own)
            for cap, key in zip(caps, keys, strict=True)
        ]

    @aws_errors_unavailable
    def rollups(
        self, tenant_id: str, user_id: str, first_day: str, last_day: str
    ) -> list[RollupRow]:
        """The user's daily rollups from ``first_day`` to ``last_day`` (inclusive): one Query."""
        items = query_items(
            self._client,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": codec.s(user_usage_pk(tenant_id, user_id)),
                ":lo": codec.s(f"D#{first_day}"),
                ":hi": codec.s(f"D#{last_day}#~"),
            },
        )
        return [_row_of(i) for i in items]

    # the guard --------------------------------------------------------------------------------

    def guard(
        self, caps: Sequence[Cap], tenant_id: str, user_id: str, started: datetime
    ) -> DynamoDBSpendGuard:
        month = month_of(started)
        return DynamoDBSpendGuard(
            self._client,
            self._table,
            [(c, counter_key(c.scope, tenant_id, user_id, month)) for c in caps],
            counter_key(CapScope.USER, tenant_id, user_id, month),
        )


class DynamoDBSpendGuard:
    """:class:`~chalicelib.agents.base.SpendGuard` over the month counters of one run's owner.

    Per model call: one conditional UpdateItem per cap to reserve, one UpdateItem per
    cap to settle (see the module docstring). Thread-safe: it keeps no state but the keys.
    """

    def __init__(
        self, client: DynamoDBClient, table: str, counters: list[tuple[Cap, Key]], own: Key
    ):
        self._client = client
        self._table = table
        self._counters = counters
        self._own = own
        """The run owner's month item, where a refusal is recorded."""
        self._lock = threading.Lock()
        self.calls = 0
        """AWS calls made (the bench reads it)."""
        self.refused = False
        """A call of this run was refused by a cap (the run ends without a pause)."""

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def reserve(self, amount: Decimal) -> None:
        done: list[Key] = []
        try:
            for cap, key in self._counters:
                self._reserve_one(cap, key, amount)
                done.append(key)
        except BaseException:
            for key in done:
                self._add(key, -amount, Decimal(0))
            raise

    def _reserve_one(self, cap: Cap, key: Key, amount: Decimal) -> None:
        limit = cap.monthly_usd - amount
        if limit < 0:
            self._refused(cap, None, amount)
        self._count()
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="ADD used :a",
                ConditionExpression="attribute_not_exists(used) OR used <= :lim",
                ExpressionAttributeValues={":a": codec.n(amount), ":lim": codec.n(limit)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            self._refused(cap, codec.old_item_of(exc), amount)

    def _refused(self, cap: Cap, old: dict[str, Any] | None, amount: Decimal) -> None:
        """Record the refusal on the owner's own month item (their later fires of the
        month are skipped while it still applies) and raise."""
        self.refused = True
        self._count()
        self._client.update_item(
            TableName=self._table,
            Key=self._own,
            UpdateExpression="SET refused_scope = :scope, refused_cap = :cap, refused_usd = :a",
            ExpressionAttributeValues={
                ":scope": codec.s(cap.scope.value),
                ":cap": codec.n(cap.monthly_usd),
                ":a": codec.n(amount),
            },
        )
        used = _dec(old or {}, "used")
        raise CapExceeded(cap.scope.value, cap.monthly_usd, used, amount)

    def settle(self, reserved: Decimal, charged: Decimal) -> None:
        for _, key in self._counters:
            self._add(key, charged - reserved, charged)

    def _add(self, key: Key, used: Decimal, spent: Decimal) -> None:
        self._count()
        self._client.update_item(
            TableName=self._table,
            Key=key,
            UpdateExpression="ADD used :u, spent :s",
            ExpressionAttributeValues={":u": codec.n(used), ":s": codec.n(spent)},
        )
