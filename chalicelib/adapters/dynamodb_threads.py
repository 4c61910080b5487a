"""Threads in DynamoDB: one partition per (tenant, user), sorted by thread id (UUIDv7 = time).

Kept threads may carry ``expires_at`` (DynamoDB TTL). TTL deletion is lazy on AWS
and never happens in moto, so every read filters out expired items itself.

``search`` and ``count`` serve the LangGraph façade's thread search. Metadata and
values are stored as JSON strings, so their filters cannot be DynamoDB expressions:
the caller passes a predicate, and ``search`` reads pages in sort-key order only
until it has ``stop_after`` matches. Expired items are dropped server-side by a
``FilterExpression`` (they still cost read capacity, but not transfer).

**Reads are bounded** (:class:`~chalicelib.adapters.dynamodb_codec.ReadBound`): a
search skips its offset (undecoded when unfiltered), keeps at most ``kept_bytes`` and
reads at most ``pages`` Query pages (DynamoDB's pages are ≤ 1 MB). A page that reaches
the bound after keeping a thread ends there and says so (``cut``); one that cannot keep
any — an offset deeper than the pages reach — is a ReadLimitError. An exact sort
(``sort_by``) needs every match: it keeps them all, within the pages alone, and past
them is a ReadLimitError too. The simplest correct choice: sort keys live inside the
``doc`` JSON, so a projected first pass could not read them, and an index per sort key
would cost a write per index on every run's finish; 64 MB of threads is tens of
thousands of ordinary ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters import dynamodb_codec as codec
from chalicelib.adapters.dynamodb_codec import (
    READ_BOUND,
    ReadBound,
    aws_errors_unavailable,
    is_conditional_failure,
    item_bytes,
    query_count,
    query_items,
)
from chalicelib.domain.errors import (
    ReadLimitError,
    SchedulingUnavailableError,
    ThreadAlreadyExistsError,
    ThreadNotFoundError,
)
from chalicelib.domain.models import Principal, Thread
from chalicelib.domain.ports import Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDBThreadStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        clock: Clock,
        *,
        bound: ReadBound = READ_BOUND,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._bound = bound

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
                raise ThreadAlreadyExistsError(thread.thread_id) from exc
            raise SchedulingUnavailableError(str(exc)) from exc

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
        threads = (codec.item_to_thread(i) for i in query_items(self._client, **kwargs))
        return [t for t in threads if not self._expired(t, now)]

    @aws_errors_unavailable
    def search(
        self,
        principal: Principal,
        predicate: Callable[[Thread], bool] | None,
        *,
        skip: int = 0,
        keep: int | None,
        newest_first: bool = True,
    ) -> tuple[list[Thread], bool]:
        """Live threads matching ``predicate`` in thread-id order (newest first by default),
        after the first ``skip`` matches; and whether the read bound cut them short.

        Reads one page after another and stops as soon as ``keep`` threads are kept. With
        ``keep``, the threads kept stop at :data:`~dynamodb_codec.KEPT_BYTES` (cut: at
        least one is kept) and the pages at :data:`~dynamodb_codec.READ_PAGES` (cut, or
        ReadLimitError while still skipping). ``keep=None`` keeps every match (a sort):
        bounded by the pages alone, ReadLimitError past them.
        """
        if keep is not None and keep <= 0:
            return [], False
        now = self._clock.now()
        kwargs = self._live_query(principal, now)
        kwargs["ScanIndexForward"] = not newest_first
        # Dense matches need no more than skip + keep items; sparse ones read on.
        page_size = None if keep is None else min(max(skip + keep, 10), 1000)
        out: list[Thread] = []
        kept_bytes, skipped = 0, 0
        items = query_items(
            self._client, page_size=page_size, max_pages=self._bound.pages, **kwargs
        )
        try:
            for item in items:
                thread = self._live_match(item, predicate, now, decode=skipped >= skip)
                if thread is None:
                    continue
                if skipped < skip:
                    skipped += 1  # counted by its key, dropped undecoded when unfiltered
                    continue
                assert isinstance(thread, Thread)  # decoded: nothing skipped any more
                out.append(thread)
                kept_bytes += item_bytes(item)
                if keep is not None and (len(out) >= keep or kept_bytes >= self._bound.kept_bytes):
                    return out, len(out) < keep
        except ReadLimitError:
            if keep is None or not out:
                raise
            return out, True
        return out, False

    def _live_match(
        self,
        item: dict[str, Any],
        predicate: Callable[[Thread], bool] | None,
        now: datetime,
        *,
        decode: bool,
    ) -> Thread | bool | None:
        """The thread of ``item`` if it is live and matches (``True`` instead of it when
        ``decode`` is false and nothing needs decoding); None otherwise."""
        expires = item.get("expires_at")
        if expires is not None and "N" in expires and int(expires["N"]) <= now.timestamp():
            return None
        if predicate is None and not decode:
            return True
        thread = codec.item_to_thread(item)
        return thread if predicate is None or predicate(thread) else None

    @aws_errors_unavailable
    def count(self, principal: Principal, predicate: Callable[[Thread], bool] | None) -> int:
        """How many live threads match (``Select=COUNT`` when there is no predicate); both
        bounded in pages (ReadLimitError past them)."""
        now = self._clock.now()
        kwargs = self._live_query(principal, now)
        if predicate is None:
            return query_count(self._client, max_pages=self._bound.count_pages, **kwargs)
        items = query_items(self._client, max_pages=self._bound.pages, **kwargs)
        try:
            return sum(1 for item in items if self._live_match(item, predicate, now, decode=True))
        except ReadLimitError as exc:
            raise ReadLimitError(
                f"a filtered count reads every thread, and there are more than the"
                f" {self._bound.pages} MB one request reads: count without a filter"
            ) from exc

    def _live_query(self, principal: Principal, now: datetime) -> dict[str, Any]:
        # expires_at is epoch seconds: an item is live while expires_at > now.
        return {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "attribute_not_exists(expires_at) OR expires_at > :now",
            "ExpressionAttributeValues": {
                ":pk": codec.s(codec.threads_pk(principal.tenant_id, principal.user_id)),
                ":now": codec.n(int(now.timestamp())),
            },
        }

    @staticmethod
    def _expired(thread: Thread, now: datetime) -> bool:
        return thread.expires_at is not None and thread.expires_at <= now

    def _key(self, tenant_id: str, user_id: str, thread_id: str) -> dict[str, Any]:
        return {
            "pk": codec.s(codec.threads_pk(tenant_id, user_id)),
            "sk": codec.s(thread_id),
        }
