"""The single agentcron table's plumbing: keys, item ↔ model mapping, paginated queries,
transactions with conflict retries, and AWS errors as domain errors (one module, so
that a store's walk is the store and this).

Keys: ``dynamodb_table.py``.

Free-form JSON (inputs, config, context, metadata) is stored as a JSON *string*:
it round-trips exactly (``1.0`` stays ``1.0``, no float→Decimal conversion, no
32-level nesting limit) and agentcron never filters on it server-side.
Timestamps are fixed-width UTC strings (``2026-01-01T09:00:00.000000Z``) so that
lexical order is time order in sort keys.
"""

from __future__ import annotations

import functools
import json
import random
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.botocore_deadline import RequestDeadlineReached
from chalicelib.domain.enums import RunStatus, RunTrigger
from chalicelib.domain.errors import ReadLimitError, SchedulingUnavailableError
from chalicelib.domain.models import (
    ApiKey,
    Run,
    RunningMarker,
    Schedule,
    Thread,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PaginatorConfigTypeDef,
        TransactWriteItemTypeDef,
    )

    Item = dict[str, AttributeValueTypeDef]
else:
    Item = dict

# --- keys ----------------------------------------------------------------------------------


def user_pk(tenant_id: str, user_id: str) -> str:
    return f"T#{tenant_id}#U#{user_id}"


def schedule_sk(schedule_id: str) -> str:
    return f"S#{schedule_id}"


COUNTER_SK = "COUNTER"
SCHEDULE_SK_PREFIX = "S#"


# Every key of user-owned data holds the tenant *and* the user (schedules, counters, runs,
# threads, and the thread-runs index): a read is scoped by its key, so no caller can
# forget the owner check, and two users of one tenant never share a partition — even
# when they pick the same client-chosen thread id.


def runs_pk(tenant_id: str, user_id: str, schedule_id: str) -> str:
    return f"T#{tenant_id}#U#{user_id}#R#{schedule_id}"


def run_sk(run: Run) -> str:
    return run_sort_key(run.scheduled_time, run.trigger, run.run_id)


def run_sort_key(scheduled_time: datetime, trigger: RunTrigger, run_id: str) -> str:
    # Scheduled fires are keyed by their fire time alone: that is the dedupe key that
    # absorbs at-least-once redelivery and the double fire of a split (Vixie OR) schedule.
    # Manual runs are unique by run id.
    if trigger is RunTrigger.SCHEDULE:
        return f"{ts(scheduled_time)}#S"
    return f"{ts(scheduled_time)}#M#{run_id}"


def thread_runs_gsi_pk(tenant_id: str, user_id: str, thread_id: str) -> str:
    return f"T#{tenant_id}#U#{user_id}#TH#{thread_id}"


def threads_pk(tenant_id: str, user_id: str) -> str:
    return f"T#{tenant_id}#U#{user_id}#TH"


def key_pk(key_hash: str) -> str:
    return f"KEY#{key_hash}"


KEY_SK = "KEY"


def tenant_keys_gsi_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#KEYS"


# The reconciler's two sweeps read sharded, sparse index partitions instead of scanning:
# every schedule is in one of ``SHARDS`` ``SCHEDULES#<n>`` partitions of gsi1, and every
# *running* run in one of the ``RUNNING#<n>`` partitions of gsi2, sorted by the instant
# after which it is stuck (the finish write drops the attributes, leaving the index).
SHARDS = 8


def shard_of(identifier: str) -> int:
    return zlib.crc32(identifier.encode()) % SHARDS


def schedules_gsi_pk(shard: int) -> str:
    return f"SCHEDULES#{shard}"


def running_gsi_pk(shard: int) -> str:
    return f"RUNNING#{shard}"


# --- scalar codecs ---------------------------------------------------------------------------


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n(value: int | Decimal) -> AttributeValueTypeDef:
    return {"N": str(value)}


def opt_s(value: str | None) -> AttributeValueTypeDef:
    return {"NULL": True} if value is None else {"S": value}


def opt_ts(value: datetime | None) -> AttributeValueTypeDef:
    return {"NULL": True} if value is None else {"S": ts(value)}


def js(value: Any) -> AttributeValueTypeDef:
    return {"S": json.dumps(value, ensure_ascii=False, separators=(",", ":"))}


def get_s(item: Item, name: str) -> str:
    return item[name]["S"]


def get_opt_s(item: Item, name: str) -> str | None:
    value = item.get(name)
    if value is None or "NULL" in value:
        return None
    return value["S"]


def get_opt_ts(item: Item, name: str) -> datetime | None:
    raw = get_opt_s(item, name)
    return None if raw is None else parse_ts(raw)


def get_int(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return default if value is None or "N" not in value else int(value["N"])


def get_dec(item: Item, name: str) -> Decimal:
    return Decimal(item[name]["N"])


def get_json(item: Item, name: str, default: Any = None) -> Any:
    raw = get_opt_s(item, name)
    return default if raw is None else json.loads(raw)


# --- schedules -------------------------------------------------------------------------------

# What a client edits (create/update/patch) lives in one JSON attribute, ``spec``: it is
# written whole by an update and never read by a condition. What the trigger and the
# state changes read or write in conditions and update expressions — status, version,
# counters, the running marker, pause fields — are top-level attributes, so an API
# update can never clobber counters written concurrently by a run. Fewer attributes
# also means smaller items (attribute names count toward DynamoDB's item size).
SPEC_FIELDS = frozenset(
    {
        "origin",
        "name",
        "description",
        "cron_expression",
        "timezone",
        "graph_id",
        "assistant_id",
        "input",
        "config",
        "context",
        "metadata",
        "extras",
        "thread_id",
        "on_run_completed",
        "end_time",
        "max_budget_per_run_usd",
        "timeout_seconds",
        "overlap_policy",
        "webhook",
        "max_attempts_per_call",
        "initial_backoff_seconds",
        "pause_after_failures",
        "eventbridge_expressions",
        "eventbridge_names",
        "created_at",
    }
)


def schedule_spec(sch: Schedule) -> AttributeValueTypeDef:
    return js(sch.model_dump(mode="json", include=set(SPEC_FIELDS)))


def schedule_to_item(sch: Schedule) -> Item:
    item: Item = {
        "pk": s(user_pk(sch.tenant_id, sch.user_id)),
        "sk": s(schedule_sk(sch.id)),
        "type": s("schedule"),
        "id": s(sch.id),
        "tenant": s(sch.tenant_id),
        "user": s(sch.user_id),
        "spec": schedule_spec(sch),
        "status": s(sch.status.value),
        "paused_at": opt_ts(sch.paused_at),
        "pause_reason": opt_s(sch.pause_reason),
        "paused_by": opt_s(None if sch.paused_by is None else sch.paused_by.value),
        "total_runs": n(sch.total_runs),
        "successful_runs": n(sch.successful_runs),
        "failed_runs": n(sch.failed_runs),
        "history_count": n(sch.history_count),
        "consecutive_failures": n(sch.consecutive_failures),
        "last_run_at": opt_ts(sch.last_run_at),
        "updated_at": s(ts(sch.updated_at)),
        "version": n(sch.version),
        "gsi1pk": s(schedules_gsi_pk(shard_of(sch.id))),
        "gsi1sk": s(sch.id),
    }
    if sch.webhook_secret is not None:
        # Top-level, outside ``spec``: an update never rewrites it, and no read returns it.
        item["webhook_secret"] = s(sch.webhook_secret)
    if sch.running is not None:
        item["running_run_id"] = s(sch.running.run_id)
        item["running_until"] = s(ts(sch.running.until))
    return item


def item_to_schedule(item: Item) -> Schedule:
    running = None
    if "running_run_id" in item and "running_until" in item:
        running = RunningMarker(
            run_id=get_s(item, "running_run_id"), until=parse_ts(get_s(item, "running_until"))
        )
    return Schedule.model_validate(
        {
            **get_json(item, "spec", {}),
            "id": get_s(item, "id"),
            "tenant_id": get_s(item, "tenant"),
            "user_id": get_s(item, "user"),
            "status": get_s(item, "status"),
            "paused_at": get_opt_ts(item, "paused_at"),
            "pause_reason": get_opt_s(item, "pause_reason"),
            "paused_by": get_opt_s(item, "paused_by"),
            "total_runs": get_int(item, "total_runs"),
            "successful_runs": get_int(item, "successful_runs"),
            "failed_runs": get_int(item, "failed_runs"),
            "history_count": get_int(item, "history_count"),
            "consecutive_failures": get_int(item, "consecutive_failures"),
            "webhook_secret": get_opt_s(item, "webhook_secret"),
            "last_run_at": get_opt_ts(item, "last_run_at"),
            "running": running,
            "updated_at": parse_ts(get_s(item, "updated_at")),
            "version": get_int(item, "version", 1),
        }
    )


# --- runs -----------------------------------------------------------------------------------

# ``status`` (the finish condition, the thread-runs status filter) and ``run_id`` (found on a
# thread's GSI) are top-level, and so is ``webhook_status``, set after the finish by its own
# UpdateItem; the rest of the record is one JSON document. A running run's heartbeat (its
# own UpdateItem, see ``services.runs``) also writes top-level attributes — the time,
# the spend so far and the moved ``gsi2sk`` — which the finish's Put replaces.
RUN_DOC_EXCLUDE = frozenset({"run_id", "status", "webhook_status"})
HEARTBEAT_AT = "heartbeat_at"
HEARTBEAT_COST = "hb_cost_usd"
HEARTBEAT_INPUT_TOKENS = "hb_input_tokens"
HEARTBEAT_OUTPUT_TOKENS = "hb_output_tokens"


def run_to_item(run: Run) -> Item:
    item: Item = {
        "pk": s(runs_pk(run.tenant_id, run.user_id, run.schedule_id)),
        "sk": s(run_sk(run)),
        "type": s("run"),
        "run_id": s(run.run_id),
        "status": s(run.status.value),
        "doc": js(run.model_dump(mode="json", exclude=set(RUN_DOC_EXCLUDE))),
    }
    if run.webhook_status is not None:
        item["webhook_status"] = s(run.webhook_status)
    if run.thread_id is not None:
        item["gsi1pk"] = s(thread_runs_gsi_pk(run.tenant_id, run.user_id, run.thread_id))
        item["gsi1sk"] = s(f"{ts(run.created_at)}#{run.run_id}")
    if run.status is RunStatus.RUNNING and run.stuck_after is not None:
        item["gsi2pk"] = s(running_gsi_pk(shard_of(run.run_id)))
        item["gsi2sk"] = s(f"{ts(run.stuck_after)}#{run.run_id}")
    return item


def item_to_run(item: Item) -> Run:
    doc: dict[str, Any] = {
        **get_json(item, "doc", {}),
        "run_id": get_s(item, "run_id"),
        "status": get_s(item, "status"),
        "webhook_status": get_opt_s(item, "webhook_status"),
    }
    if HEARTBEAT_AT in item:
        # A running run's last heartbeat: its time, the spend reported so far (settled +
        # in-flight reservations) and the instant it is stuck after (the index key).
        doc[HEARTBEAT_AT] = get_s(item, HEARTBEAT_AT)
        doc["usage"] = {
            "input_tokens": get_int(item, HEARTBEAT_INPUT_TOKENS),
            "output_tokens": get_int(item, HEARTBEAT_OUTPUT_TOKENS),
            "cost_usd": str(get_dec(item, HEARTBEAT_COST)),
        }
    if "gsi2sk" in item:
        doc["stuck_after"] = get_s(item, "gsi2sk").rsplit("#", 1)[0]
    return Run.model_validate(doc)


# --- threads ---------------------------------------------------------------------------------

THREAD_DOC_EXCLUDE = frozenset({"thread_id", "expires_at"})


def thread_to_item(thread: Thread) -> Item:
    item: Item = {
        "pk": s(threads_pk(thread.tenant_id, thread.user_id)),
        "sk": s(thread.thread_id),
        "type": s("thread"),
        "thread_id": s(thread.thread_id),
        "doc": js(thread.model_dump(mode="json", exclude=set(THREAD_DOC_EXCLUDE))),
    }
    if thread.expires_at is not None:
        item["expires_at"] = n(int(thread.expires_at.timestamp()))
    return item


def item_to_thread(item: Item) -> Thread:
    expires = item.get("expires_at")
    return Thread.model_validate(
        {
            **get_json(item, "doc", {}),
            "thread_id": get_s(item, "thread_id"),
            "expires_at": (
                None
                if expires is None or "N" not in expires
                else datetime.fromtimestamp(int(expires["N"]), UTC)
            ),
        }
    )


# --- API keys ---------------------------------------------------------------------------------


def api_key_to_item(key: ApiKey) -> Item:
    return {
        "pk": s(key_pk(key.key_hash)),
        "sk": s(KEY_SK),
        "type": s("api_key"),
        "key_hash": s(key.key_hash),
        "key_id": s(key.key_id),
        "tenant": s(key.tenant_id),
        "user": s(key.user_id),
        "description": s(key.description),
        "created_at": s(ts(key.created_at)),
        "revoked_at": opt_ts(key.revoked_at),
        "gsi1pk": s(tenant_keys_gsi_pk(key.tenant_id)),
        "gsi1sk": s(f"{ts(key.created_at)}#{key.key_id}"),
    }


def item_to_api_key(item: Item) -> ApiKey:
    return ApiKey(
        key_hash=get_s(item, "key_hash"),
        key_id=get_s(item, "key_id"),
        tenant_id=get_s(item, "tenant"),
        user_id=get_s(item, "user"),
        description=get_s(item, "description"),
        created_at=parse_ts(get_s(item, "created_at")),
        revoked_at=get_opt_ts(item, "revoked_at"),
    )


# --- queries, transactions, errors ----------------------------------------------------------

TRANSACTION_ATTEMPTS = 6


class TransactionCancelled(Exception):
    """A transaction failed a condition; ``reasons`` line up with the transaction's items."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__([r.get("Code") for r in reasons])
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        return (
            index < len(self.reasons)
            and self.reasons[index].get("Code") == "ConditionalCheckFailed"
        )

    def old_item(self, index: int) -> dict[str, Any] | None:
        if index >= len(self.reasons):
            return None
        item = self.reasons[index].get("Item")
        return dict(item) if item else None


# --- read bounds -------------------------------------------------------------------------------
#
# An API request's reads are bounded, not only its answer: a Query page holds at most
# 1 MB of stored items (DynamoDB's own limit, before any filter), so a request that
# reads at most ``READ_PAGES`` pages reads, transfers and parses at most that many
# megabytes, in a bounded time, whatever the partition holds. Items a request skips
# (an offset) are counted by their key and dropped undecoded; the items it keeps are
# counted by :func:`item_bytes`, and a page stops keeping once ``KEPT_BYTES`` are kept —
# twice the response budget (``chalicelib.api.http.MAX_RESPONSE_BYTES``, 5 MiB): stored
# bytes never shrink on the wire, so what is kept beyond that could never be answered.
READ_PAGES = 64
"""The most Query pages (≤ 1 MB each) one API read may take: ≤ 64 MB read, about a
second or two of DynamoDB time — far inside the API function's 512 MB and 28 s."""
KEPT_BYTES = 10 * 1024 * 1024
"""The most stored item bytes one API read keeps for its answer."""
COUNT_PAGES_PER_READ_PAGE = 8
"""A ``Select=COUNT`` Query transfers nothing (only DynamoDB's time): 8× the pages."""

# The pages are bounded by the API's request deadline too (``chalicelib/observability.py``):
# a page the request has no time left for is refused by the client's deadline hook before
# it is requested, and a read that has pages behind it ends there as it ends at the read
# bound — a cut page or a ReadLimitError (4xx), never a 503 a client would retry forever.
# Only the first page's refusal stays a 503: a request with no time for one page.


@dataclass(frozen=True)
class ReadBound:
    """The read bound of one API request (a store's constructor argument: the
    production values by default, smaller ones where a test proves the bound)."""

    pages: int = READ_PAGES
    kept_bytes: int = KEPT_BYTES

    @property
    def count_pages(self) -> int:
        return COUNT_PAGES_PER_READ_PAGE * self.pages


READ_BOUND = ReadBound()


def item_bytes(item: Item) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (strings in
    UTF-8; numbers, booleans and nulls a few bytes; anything else by its JSON)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        raw = value.get("S")
        if raw is not None:
            total += len(raw.encode())
        elif "N" in value:
            total += len(value["N"]) // 2 + 1
        elif "NULL" in value or "BOOL" in value:
            total += 1
        else:
            total += len(json.dumps(value, default=str).encode())
    return total


def query_items(
    client: DynamoDBClient,
    *,
    max_items: int | None = None,
    page_size: int | None = None,
    max_pages: int | None = None,
    **query: Any,
) -> Iterator[dict[str, Any]]:
    """The items of a Query across its pages (botocore's paginator follows
    ``LastEvaluatedKey``). Lazy: a caller that stops iterating stops the reads; ``max_items``
    and ``page_size`` bound them up front.

    Raises:
        ReadLimitError: items remain after ``max_pages`` pages (raised when the
            caller asks for the first item beyond them, never before).
    """
    config: PaginatorConfigTypeDef = {}
    if max_items is not None:
        config["MaxItems"] = max_items
    if page_size is not None:
        config["PageSize"] = page_size
    pages = client.get_paginator("query").paginate(**query, PaginationConfig=config)
    for number, page in _bounded_pages(pages, "answering"):
        for item in page.get("Items", []):
            yield dict(item)
        if max_pages is not None and number >= max_pages and page.get("LastEvaluatedKey"):
            raise ReadLimitError(
                f"answering would read more than {max_pages} MB of stored items, the most one"
                " request reads: ask for a smaller offset or an earlier page"
            )


def query_count(client: DynamoDBClient, *, max_pages: int | None = None, **query: Any) -> int:
    """``Select=COUNT`` over every page of a Query (ReadLimitError past ``max_pages``)."""
    total = 0
    pages = client.get_paginator("query").paginate(**query, Select="COUNT")
    for number, page in _bounded_pages(pages, "counting"):
        total += page.get("Count", 0)
        if max_pages is not None and number >= max_pages and page.get("LastEvaluatedKey"):
            raise ReadLimitError(
                f"counting would read more than {max_pages} MB of stored items, the most one"
                " request reads"
            )
    return total


def _bounded_pages(pages: Any, doing: str) -> Iterator[tuple[int, Any]]:
    """``pages`` numbered from 1; a page after the first that the request deadline refuses
    (the client's own hook, asked before the page is requested) ends the read with a
    ReadLimitError — see the read bounds above."""
    iterator = iter(pages)
    number = 0
    while True:
        try:
            page = next(iterator)
        except StopIteration:
            return
        except RequestDeadlineReached as exc:
            if number == 0:
                raise
            raise ReadLimitError(
                f"{doing} would take longer than one request may ({number} pages of stored"
                " items read): ask for a smaller offset or an earlier page"
            ) from exc
        number += 1
        yield number, page


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def transact(client: DynamoDBClient, items: Sequence[TransactWriteItemTypeDef]) -> None:
    """``TransactWriteItems``, retrying only ``TransactionConflict`` (concurrent transactions).

    Condition failures surface as :class:`TransactionCancelled`; any other AWS error
    becomes :class:`SchedulingUnavailableError` (a 503: nothing was written).
    """
    for attempt in range(TRANSACTION_ATTEMPTS):
        try:
            client.transact_write_items(TransactItems=list(items))
            return
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise SchedulingUnavailableError(str(exc)) from exc
            reasons = cast("list[dict[str, Any]]", exc.response.get("CancellationReasons", []))
            codes = {r.get("Code") for r in reasons}
            if "ConditionalCheckFailed" in codes:
                raise TransactionCancelled(reasons) from exc
            if "TransactionConflict" in codes and attempt + 1 < TRANSACTION_ATTEMPTS:
                time.sleep(random.uniform(0, 0.02 * 2**attempt))
                continue
            raise SchedulingUnavailableError(str(exc)) from exc
    raise SchedulingUnavailableError("transaction conflict")  # pragma: no cover


F = TypeVar("F", bound=Callable[..., Any])


def aws_errors_unavailable(method: F) -> F:
    """Any AWS error a method did not handle itself becomes a 503-class domain error."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except ClientError as exc:
            raise SchedulingUnavailableError(str(exc)) from exc
        except BotoCoreError as exc:
            raise SchedulingUnavailableError(str(exc)) from exc

    return cast("F", wrapper)


def is_conditional_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def old_item_of(exc: ClientError) -> dict[str, Any] | None:
    item = cast("dict[str, Any] | None", exc.response.get("Item"))
    return dict(item) if item else None
