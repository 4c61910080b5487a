"""Shared DynamoDB plumbing: paginated queries, transactions with conflict retries, errors."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import SchedulingUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PaginatorConfigTypeDef, TransactWriteItemTypeDef

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


def query_items(
    client: DynamoDBClient,
    *,
    max_items: int | None = None,
    page_size: int | None = None,
    **query: Any,
) -> Iterator[dict[str, Any]]:
    """The items of a Query across its pages (botocore's paginator follows
    ``LastEvaluatedKey``). Lazy: a caller that stops iterating stops the reads; ``max_items``
    and ``page_size`` bound them up front."""
    config: PaginatorConfigTypeDef = {}
    if max_items is not None:
        config["MaxItems"] = max_items
    if page_size is not None:
        config["PageSize"] = page_size
    for page in client.get_paginator("query").paginate(**query, PaginationConfig=config):
        for item in page.get("Items", []):
            yield dict(item)


def query_count(client: DynamoDBClient, **query: Any) -> int:
    """``Select=COUNT`` over every page of a Query."""
    pages = client.get_paginator("query").paginate(**query, Select="COUNT")
    return sum(page.get("Count", 0) for page in pages)


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
