"""LangGraph Platform's wire format (``langgraph_sdk`` 0.4.x): field types and the formatter.

One module per resource (:mod:`.crons`, :mod:`.threads`, :mod:`.runs`,
:mod:`.assistants`) holds that resource's request and response models; this one holds
the field types they share and :func:`message`, which turns pydantic's errors into
the one-line ``detail`` strings clients see (``<field>: must be a string``,
``'schedule' is a required property`` …).

**Pages are byte-bounded.** Every list (crons, threads, runs, assistants) answers at
most ``limit`` items *and* at most :data:`~chalicelib.api.http.MAX_RESPONSE_BYTES`
(:func:`sized_page`): a page of large items stops early, and ``X-Pagination-Next``
names the offset it stopped at — LangGraph's own offset paging, so the next request
continues exactly there.

Requests are strict JSON (no coercion: ``"10"`` is not an integer). Unknown keys are
accepted — the reference keeps them in a cron's ``payload`` — but are bounded like
every other value: at most :data:`~chalicelib.api.http.MAX_JSON_DEPTH` levels of
nesting and no lone surrogates, so nothing a client sends can fail later in a
serialiser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WrapValidator, model_validator
from pydantic_core import PydanticCustomError

from chalicelib.api.http import (
    Problem,
    checked_json,
    checked_text,
    documented,
    fitting,
    integer_param,
    json_problem,
    quote,
    worded,
)
from chalicelib.api.langgraph.common import canonical_uuid

MAX_LIMIT: Final = 1000
SORT_ORDERS: Final = ("asc", "desc")


def iso(value: datetime | None) -> str | None:
    """UTC ``isoformat()`` as the reference emits it (microseconds only when non-zero)."""
    return None if value is None else value.astimezone(UTC).isoformat()


# --- field types ------------------------------------------------------------------------------


def _must(what: str) -> WrapValidator:
    return WrapValidator(worded("{path}: must be " + what))


Text = Annotated[
    str, _must("a string"), AfterValidator(checked_text("{path}: must be valid Unicode text"))
]
Flag = Annotated[bool, _must("a boolean")]
JSONObject = Annotated[
    dict[str, Any], _must("an object"), AfterValidator(checked_json("{path}: {problem}"))
]
Integer = Annotated[int, _must("an integer")]


def _finite_number(value: Any, handler: Any) -> Any:
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        raise PydanticCustomError("worded", "{path}: must be a number")
    return worded("{path}: must be a number")(value, handler)


Number = Annotated[float, WrapValidator(_finite_number)]


def choice(*allowed: str) -> Any:
    """A string from ``allowed``: ``<field>: 'x' is not one of 'a', 'b'`` otherwise."""
    words = ", ".join(repr(a) for a in allowed)

    def check(value: Any) -> Any:
        if not isinstance(value, str) or value not in allowed:
            raise PydanticCustomError(
                "worded", "{path}: " + f"{quote(repr(value))} is not one of {words}"
            )
        return value

    from pydantic import BeforeValidator

    return Annotated[str, BeforeValidator(check), Field(json_schema_extra={"enum": list(allowed)})]


def selection(allowed: Sequence[str]) -> Any:
    """A list of field names for ``select`` (duplicates dropped, order kept)."""
    words = ", ".join(repr(a) for a in allowed)

    def check(value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PydanticCustomError("worded", "{path}: must be a list of strings")
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise PydanticCustomError(
                "worded", "{path}: " + f"{quote(repr(unknown[0]))} is not one of {words}"
            )
        return list(dict.fromkeys(value))

    from pydantic import BeforeValidator

    return Annotated[
        list[str],
        BeforeValidator(check),
        Field(json_schema_extra={"items": {"type": "string", "enum": list(allowed)}}),
    ]


def _limit(value: Any, handler: Any) -> Any:
    number = worded("{path}: must be an integer")(value, handler)
    if not 1 <= number <= MAX_LIMIT:
        raise PydanticCustomError("worded", "{path}: " + f"must be between 1 and {MAX_LIMIT}")
    return number


def _offset(value: Any, handler: Any) -> Any:
    number = worded("{path}: must be an integer")(value, handler)
    if number < 0:
        raise PydanticCustomError("worded", "{path}: must be at least 0")
    return number


Limit = Annotated[int, WrapValidator(_limit), documented(minimum=1, maximum=MAX_LIMIT)]
Offset = Annotated[int, WrapValidator(_offset), documented(minimum=0)]


def thread_ref(value: Any) -> str:
    return uuid_param_as_error(value, "thread")


def uuid_param_as_error(value: Any, what: str) -> str:
    """A body id: like :func:`uuid_param`, as a validation error (so it is worded the same)."""
    found = canonical_uuid(value)
    if found is None:
        raise PydanticCustomError("worded", f"Invalid {what} ID: must be a UUID")
    return found


ThreadRef = Annotated[str, AfterValidator(thread_ref), Field(json_schema_extra={"format": "uuid"})]


def query_int(name: str, default: int, low: int, high: int | None) -> Any:
    """A query-string integer: ASCII digits only (no ``+5``, `` 5`` or ``٣``)."""
    from pydantic import BeforeValidator

    top = high if high is not None else 2**31 - 1

    def parse(value: Any) -> Any:
        if value is None or value == "":
            return default
        if not isinstance(value, str) or integer_param(value, -(2**31), 2**31 - 1) is None:
            raise PydanticCustomError("worded", f"{name}: must be an integer")
        number = int(value)
        if not low <= number <= top:
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise PydanticCustomError("worded", f"{name}: must be {bound}")
        return number

    return Annotated[int, BeforeValidator(parse), documented(minimum=low, maximum=top)]


class Body(BaseModel):
    """A request body: strict types; unknown keys ignored unless a model keeps them."""

    model_config = ConfigDict(strict=True, extra="ignore", defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _bounded_extras(cls, data: Any) -> Any:
        # Keys the model does not declare (kept in a payload, or ignored) are bounded too:
        # the declared ones are checked by their own types, in their own words.
        if isinstance(data, dict):
            for key, value in data.items():
                if key not in cls.model_fields:
                    problem = json_problem({key: value})
                    if problem is not None:
                        raise PydanticCustomError("worded", f"{quote(key, 40)}: {problem}")
        return data


class Out(BaseModel):
    """A response body."""

    model_config = ConfigDict(defer_build=True)


class ErrorResponse(Out):
    detail: str


Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Id = Annotated[str, Field(json_schema_extra={"format": "uuid"})]


# --- pages ----------------------------------------------------------------------------------

T = TypeVar("T")


def sort_nulls_like_postgres(
    items: Iterable[T],
    value: Callable[[T], Any],
    tie: Callable[[T], str],
    *,
    descending: bool,
) -> list[T]:
    """Sort by ``value``: nulls last ascending, first descending (PostgreSQL's default)."""

    def key(item: T) -> tuple[bool, Any, str]:
        v = value(item)
        return (v is None, "" if v is None else v, tie(item))

    return sorted(items, key=key, reverse=descending)


def pagination_headers(offset: int, limit: int, returned: int, more: bool) -> dict[str, str]:
    """The reference's ``X-Pagination-*`` headers, computed from one extra row, not a count."""
    if more:
        return {
            "X-Pagination-Next": str(offset + limit),
            "X-Pagination-Total": str(offset + limit + 1),
        }
    return {"X-Pagination-Total": str(offset + returned)}


def sized_page(
    bodies: list[dict[str, Any]], offset: int, limit: int, more: bool | None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The leading ``bodies`` that fit the response budget, and the pagination headers.

    ``more`` says whether items follow ``bodies`` (None: the list sends no headers
    unless the budget cuts it short). A cut page's ``X-Pagination-Next`` is the offset
    of its first left-out item."""
    shown = fitting(bodies)
    if shown < len(bodies):
        return bodies[:shown], pagination_headers(offset, shown, shown, True)
    if more is None:
        return bodies, {}
    return bodies, pagination_headers(offset, limit, len(bodies), more)


def project(body: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    return body if not select else {k: body[k] for k in select if k in body}


# --- the formatter ----------------------------------------------------------------------------


def message(found: list[Problem]) -> tuple[int, str]:
    """(status, detail) for the first problem, in LangGraph's words."""
    first = found[0]
    if first.type in ("model_type", "dict_type") and not first.loc:
        return 422, "Request body must be a JSON object"
    if first.type == "missing":
        return 422, f"'{first.field}' is a required property"
    if first.type == "empty":
        return 400, first.message
    if first.type == "worded":
        return 422, first.message.replace("{path}", first.path)
    return 422, f"{first.path}: {first.message}"


def sized(low: int, high: int) -> Any:
    """A string of ``low`` to ``high`` characters (``<field>: must be 1 to 9 characters``)."""

    def check(value: str) -> str:
        if not low <= len(value) <= high:
            raise PydanticCustomError("worded", "{path}: " + f"must be {low} to {high} characters")
        return value

    return Annotated[
        Text, AfterValidator(check), Field(json_schema_extra={"minLength": low, "maxLength": high})
    ]
