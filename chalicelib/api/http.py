"""HTTP plumbing shared by the façades: the route table, JSON in and out, errors.

**One route table.** A façade (:class:`Facade`) owns a Chalice Blueprint, the name of
its wire module (pydantic models, imported on the first request: importing ``app``
loads no pydantic), its error table and its envelope. ``@facade.route(...)``
registers a view *and* records an :class:`Operation` — method, path, request and
response model names — which is all :mod:`chalicelib.api.openapi` needs to generate
the façade's OpenAPI document. The contract a client sees and the document it reads
therefore come from the same declarations.

**Order of checks**, the same for every operation: credentials, path parameters,
query parameters, body (strict JSON, then the request model), then the view. Views
parse nothing themselves: they receive the principal, typed path values and model
instances, call one service and format the result.

**Errors.** Chalice's REST middleware never sees view exceptions, and its default
error bodies (``{"Code", "Message"}``, ``{"message"}``) match neither façade. Every
exception a view raises goes through the façade's :class:`ErrorTable` — exception
type (looked up along the MRO) to (status, message) — and comes back in the façade's
envelope; anything unexpected is logged and answered 500 in that envelope. Unknown
paths and unsupported methods are answered by the façade too (404 / 405 with
``Allow``): every path of the table gets a view for the methods it does not serve,
and each façade's path tree gets ``{proxy+}`` catch-alls (API Gateway matches them
greedily; Chalice's local server matches one segment).

**Bounded echo.** Messages quote client values through :func:`quote`: at most
:data:`QUOTE_CHARS` characters, lone surrogates replaced, so a 10 MB value never comes
back as a 10 MB error and an error body can always be encoded.

**Bounded responses.** Lambda refuses a response over 6 MiB (API Gateway then answers
502), and a list of maximal items would pass it many times over. The response's body
travels as a JSON *string* inside Lambda's proxy answer, escaped again by the
runtime's encoder (``"`` costs two bytes, a non-ASCII character up to six per UTF-16
unit on Python 3.11's runtime); :func:`payload_bytes` counts that, and every list keeps
its items within :data:`MAX_RESPONSE_BYTES`, 1 MiB below the limit for the status,
headers and the rest of the answer. A single item never comes close (DynamoDB's
400 KB, escaped at most threefold). How a list stays within the budget is the
façade's own idiom: :func:`fitting` (LangGraph: a shorter page, and
``X-Pagination-Next`` says where the next one starts) or :func:`within` (Shannon:
page numbers fix the window, so the largest items of an oversized page are abridged).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Blueprint, Request, Response

log = logging.getLogger(__name__)

# Accept any request Content-Type and parse the body as JSON ourselves: curl -d sends
# application/x-www-form-urlencoded, and an unsupported type must get the façade's 4xx,
# not Chalice's 415 envelope.
ANY_CONTENT_TYPE = ["*/*"]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
QUOTE_CHARS = 64
MAX_JSON_DEPTH = 32
"""Nesting allowed in client JSON (objects and arrays); deeper documents are 4xx, not
a recursion somewhere in the serialisers. DynamoDB itself allows 32 levels."""

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
"""The most a list response's items may add to Lambda's answer (limit: 6 MiB)."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def payload_bytes(value: Any) -> int:
    """Bytes ``value`` adds to Lambda's proxy answer: its compact JSON (as
    :func:`json_response` writes it), escaped as the answer's ``body`` string by an
    ASCII-only encoder (the larger of the runtime encoders)."""
    return len(json.dumps(json.dumps(value, ensure_ascii=False, separators=(",", ":")))) - 2


def fitting(items: Sequence[Any], budget: int = MAX_RESPONSE_BYTES) -> int:
    """How many leading ``items`` fit in ``budget`` as a JSON array (at least one)."""
    total = 2
    for count, item in enumerate(items):
        total += payload_bytes(item) + (1 if count else 0)
        if total > budget:
            return max(count, 1)
    return len(items)


def within(
    items: Sequence[Any],
    abridge: Callable[[Any, int], Any],
    budget: int = MAX_RESPONSE_BYTES,
) -> list[Any]:
    """Every item, the largest abridged (``abridge(item, max_bytes)``) to one common
    size, the largest that lets the JSON array fit in ``budget``; items at or below it
    are untouched."""
    sizes = [payload_bytes(item) for item in items]
    room = budget - 2 - max(len(items) - 1, 0)
    if sum(sizes) <= room:
        return list(items)
    # Water-filling: the cap is the largest size such that sum(min(size, cap)) <= room.
    ordered = sorted(sizes)
    cap, spent = 0, 0
    for index, size in enumerate(ordered):
        left = len(ordered) - index
        if spent + size * left > room:
            cap = (room - spent) // left
            break
        spent += size
    return [
        item if size <= cap else abridge(item, cap) for item, size in zip(items, sizes, strict=True)
    ]


class BadJSONError(ValueError):
    """The request body is not a JSON document (or not one the operation accepts)."""


class WireError(Exception):
    """A request the façade answers itself, with ``status`` and its own ``detail`` words."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RouteNotFoundError(LookupError):
    """No operation at this path."""


class MethodNotAllowedError(LookupError):
    """The path exists; the method does not."""

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = list(allowed)


# --- values -----------------------------------------------------------------------------------


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """A bounded, always-encodable rendering of a client value for an error message."""
    text = value if isinstance(value, str) else repr(value)
    clipped = text[:limit] + ("…" if len(text) > limit else "")
    return _SURROGATE.sub("\ufffd", clipped)


def has_surrogate(text: str) -> bool:
    """A lone UTF-16 surrogate (``"\\ud800"`` in JSON): not Unicode text, not storable."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``value`` (parsed JSON) is unacceptable — too deep, or a key or string holding a
    lone surrogate — or None. Iterative, so it cannot itself overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if has_surrogate(item):
                return "must be valid Unicode text (it holds a lone surrogate)"
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                return f"nests deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    if has_surrogate(key):
                        return "must be valid Unicode text (a key holds a lone surrogate)"
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def integer_param(raw: str, low: int, high: int) -> int | None:
    """A query integer: ASCII digits (one optional leading ``-``), within [low, high].

    ``int()`` would also take ``+5``, `` 5`` and non-ASCII digits such as ``٣``."""
    if not re.fullmatch(r"-?[0-9]{1,10}", raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None


# --- JSON in and out ----------------------------------------------------------------------


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    try:
        payload = (
            "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        )
        payload.encode()
    except UnicodeEncodeError:  # a stored lone surrogate: escape it rather than drop the answer
        payload = json.dumps(body, separators=(",", ":"))
    merged: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    if headers:
        merged.update(headers)
    return Response(body=payload, status_code=status, headers=merged)


def empty_response(status: int = 204) -> Response:
    return Response(body="", status_code=status, headers={})


def _reject_constant(name: str) -> Any:
    raise BadJSONError(f"{name} is not valid JSON")


def parse_json(raw: bytes | str | None, *, allow_empty: bool) -> Any:
    """Strict JSON: no NaN/Infinity, UTF-8 only; ``None`` for an empty body when allowed."""
    if raw is None or (isinstance(raw, bytes | str) and not raw.strip()):
        if allow_empty:
            return None
        raise BadJSONError("empty body")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadJSONError(str(exc)) from exc


def credentials(headers: Mapping[str, str]) -> str | None:
    """The API key from ``x-api-key`` or ``Authorization: Bearer <key>``."""
    key = headers.get("x-api-key")
    if key:
        return key.strip() or None
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


# --- validation errors ----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One pydantic error, façade-neutral: where, what kind, the message, the input."""

    loc: tuple[str | int, ...]
    type: str
    message: str
    input: Any

    @property
    def field(self) -> str:
        return str(self.loc[0]) if self.loc else ""

    @property
    def path(self) -> str:
        """``config.tags`` for nested fields; list indexes are left out."""
        return ".".join(str(p) for p in self.loc if not isinstance(p, int))


def problems(exc: Any) -> list[Problem]:
    """The errors of a pydantic ``ValidationError``, in field order."""
    return [
        Problem(
            loc=tuple(e.get("loc", ())),
            type=str(e.get("type", "")),
            message=str(e.get("msg", "")),
            input=e.get("input"),
        )
        for e in exc.errors(include_url=False)
    ]


_CONSTRAINTS = frozenset(
    {
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "too_short",
        "too_long",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
    }
)


def worded(message: str) -> Callable[[Any, Any], Any]:
    """A wrap validator replacing the *type* error of the wrapped type by ``message``
    (error type ``worded``): how each façade puts its own words on its own types.
    Constraint errors (lengths, bounds) pass through for the façade's formatter."""

    def validate(value: Any, handler: Any) -> Any:
        from pydantic import ValidationError
        from pydantic_core import PydanticCustomError

        try:
            return handler(value)
        except ValidationError as exc:
            if any(e["type"] in _CONSTRAINTS for e in exc.errors()):
                raise
            raise PydanticCustomError("worded", message) from None

    return validate


# --- errors → envelopes ---------------------------------------------------------------------

Formatter = Callable[[Any], tuple[int, str]]


class ErrorTable:
    """Exception type → (status, message), resolved along the MRO (subclasses first);
    pydantic's ``ValidationError`` goes to ``validation``, which words its problems.

    A key may also be ``(operation name, exception type)``: the same domain error in
    another operation's words (e.g. the thread of a new cron is missing), still in the
    one table."""

    def __init__(
        self,
        entries: Mapping[type[BaseException] | tuple[str, type[BaseException]], Formatter],
        *,
        validation: Callable[[list[Problem]], tuple[int, str]],
        envelope: Callable[[int, str, BaseException], Response],
        internal: tuple[int, str],
    ) -> None:
        self._entries = dict(entries)
        self._validation = validation
        self._envelope = envelope
        self._internal = internal

    def response(self, exc: BaseException, operation: str = "") -> Response | None:
        kind = type(exc)
        if kind.__name__ == "ValidationError" and kind.__module__.startswith("pydantic"):
            status, message = self._validation(problems(exc))
            return self._envelope(status, message, exc)
        for cls in kind.__mro__:
            formatter = self._entries.get((operation, cls)) or self._entries.get(cls)
            if formatter is not None:
                status, message = formatter(exc)
                return self._envelope(status, message, exc)
        return None

    def internal_error(self) -> Response:
        status, message = self._internal
        return self._envelope(status, message, RuntimeError(message))


# --- the route table ------------------------------------------------------------------------


@dataclass(frozen=True)
class PathParam:
    """How a façade reads one path parameter: ``parse`` raises the façade's error."""

    parse: Callable[[str], str]
    schema: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """One documented operation: what :mod:`chalicelib.api.openapi` turns into a path item."""

    method: str
    path: str
    name: str
    summary: str
    body: str | None
    body_optional: bool
    query: str | None
    responses: Mapping[int, str | None]
    auth: bool
    tags: tuple[str, ...]
    errors: tuple[int, ...]
    links: Mapping[str, Mapping[str, str]]
    """OpenAPI links of the success response: operation name → {parameter: expression}."""


@dataclass
class Facade:
    """One API façade: Blueprint, wire module, error table, authentication, path params."""

    title: str
    blueprint: Blueprint
    prefix: str
    wire: str
    """Dotted name of the module holding the façade's pydantic models."""
    errors: ErrorTable
    authenticate: Callable[[Mapping[str, str]], Any]
    path_params: Mapping[str, PathParam]
    error_model: str
    operations: list[Operation] = field(default_factory=list)

    def model(self, name: str) -> Any:
        """A wire model by name: ``Model`` in the wire module, or ``module.Model`` in one of
        its submodules (imported on first use)."""
        module, _, cls = name.rpartition(".")
        return getattr(
            importlib.import_module(f"{self.wire}.{module}" if module else self.wire), cls
        )

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        responses: Mapping[int, str | None],
        body: str | None = None,
        body_optional: bool = False,
        query: str | None = None,
        auth: bool = True,
        tags: tuple[str, ...] = (),
        errors: tuple[int, ...] = (),
        links: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        """Register ``view`` for ``method path`` and record it in the route table."""

        def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
            # Credentials and bodies are always checked; a view gets what it names.
            wants = set(inspect.signature(view).parameters)
            self.operations.append(
                Operation(
                    method=method,
                    path=self.prefix + path,
                    name=view.__name__,
                    summary=summary,
                    body=body,
                    body_optional=body_optional,
                    query=query,
                    responses=dict(responses),
                    auth=auth,
                    tags=tags,
                    errors=errors,
                    links=dict(links or {}),
                )
            )

            @functools.wraps(view)
            def endpoint(**raw_path: str) -> Response:
                def call() -> Response:
                    request = self.blueprint.current_request
                    kwargs: dict[str, Any] = {}
                    if auth:
                        principal = self.authenticate(request.headers)
                        if "principal" in wants:
                            kwargs["principal"] = principal
                    for name, value in raw_path.items():
                        kwargs[name] = self.path_params[name].parse(value)
                    if query is not None:
                        kwargs["query"] = self._validate(query, query_values(request))
                    if body is not None:
                        # An optional body may be left out; a JSON ``null`` is not left out.
                        empty = body_optional and not (request.raw_body or b"").strip()
                        raw = None if empty else parse_json(request.raw_body, allow_empty=False)
                        parsed = None if empty else self._validate(body, raw)
                        if "body" in wants:
                            kwargs["body"] = parsed
                    return view(**kwargs)

                return self.guarded(call, view.__name__)

            # Any Content-Type: a body is parsed as JSON by us, and an unexpected type must
            # not get Chalice's own 415 envelope.
            self.blueprint.route(path, methods=[method], content_types=ANY_CONTENT_TYPE)(endpoint)
            return view

        return decorate

    def _validate(self, model_name: str, value: Any) -> Any:
        return self.model(model_name).model_validate(value)

    def guarded(self, call: Callable[[], Response], name: str) -> Response:
        try:
            return call()
        except Exception as exc:
            response = self.errors.response(exc, name)
            if response is not None:
                return response
            log.exception("unhandled error in %s", name)
            return self.errors.internal_error()

    def serve_document(self) -> None:
        """``GET <prefix>/openapi.json``: the façade's OpenAPI document, without a key."""

        @self.route(
            "/openapi.json",
            "GET",
            summary="This document (OpenAPI 3.1)",
            responses={200: "object"},
            auth=False,
            tags=("meta",),
        )
        def openapi_document() -> Response:
            from chalicelib.api import openapi

            return json_response(openapi.served(self))

    def install_fallbacks(self) -> None:
        """404 / 405 in the façade's envelope for every path and method it does not serve."""
        served: dict[str, list[str]] = {}
        for op in self.operations:
            served.setdefault(op.path[len(self.prefix) :], []).append(op.method)

        def refuse(allowed: Sequence[str]) -> Callable[..., Response]:
            def view(**_: str) -> Response:
                def call() -> Response:
                    if allowed:
                        raise MethodNotAllowedError(allowed)
                    raise RouteNotFoundError(self.blueprint.current_request.path)

                return self.guarded(call, "fallback")

            return view

        for path, methods in served.items():
            missing = [m for m in METHODS if m not in methods]
            if missing:
                self.blueprint.route(path, methods=missing, content_types=ANY_CONTENT_TYPE)(
                    _named(refuse(sorted(methods)), path, "method")
                )
        for parent in _catch_all_parents(served):
            self.blueprint.route(
                f"{parent}/{{proxy+}}", methods=list(METHODS), content_types=ANY_CONTENT_TYPE
            )(_named(refuse([]), parent, "path"))


def _named(view: Callable[..., Response], path: str, kind: str) -> Callable[..., Response]:
    # Chalice keys views by function name within a Blueprint: make each one unique.
    slug = re.sub(r"[^a-zA-Z0-9]+", "_", path).strip("_") or "root"
    view.__name__ = f"not_allowed_{kind}_{slug}"
    return view


def _catch_all_parents(paths: Mapping[str, Any]) -> Iterator[str]:
    """Every resource of the tree (the root included) without a variable child: API Gateway
    allows one variable child per resource, and ``{proxy+}`` is one."""
    nodes: set[str] = {""}
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            nodes.add("/" + "/".join(parts[:i]))
    for node in sorted(nodes):
        depth = 0 if node == "" else node.count("/")
        children = {n for n in nodes if n.startswith(node + "/") and n.count("/") == depth + 1}
        if not any(c.rsplit("/", 1)[1].startswith("{") for c in children):
            yield node


def query_values(request: Request) -> dict[str, Any]:
    """Query parameters: a repeated one becomes a list."""
    params = request.query_params
    if not params:
        return {}
    out: dict[str, Any] = {}
    for key in params:
        values = params.getlist(key)
        out[key] = values[0] if len(values) == 1 else list(values)
    return out


def documented(**schema: Any) -> Any:
    """JSON Schema keywords for the document only (``minimum``, ``pattern`` …): the
    façade's own validators enforce them, in the façade's words."""
    from pydantic import Field

    return Field(json_schema_extra=schema)


def checked_text(template: str) -> Callable[[str], str]:
    """An after-validator refusing lone surrogates, worded by ``template`` (``{path}`` is
    filled in by the façade's formatter)."""

    def validate(value: str) -> str:
        if has_surrogate(value):
            from pydantic_core import PydanticCustomError

            raise PydanticCustomError("worded", template)
        return value

    return validate


def checked_json(template: str) -> Callable[[Any], Any]:
    """An after-validator bounding client JSON (:func:`json_problem`); ``{problem}`` in
    ``template`` says what is wrong."""

    def validate(value: Any) -> Any:
        problem = json_problem(value)
        if problem is not None:
            from pydantic_core import PydanticCustomError

            raise PydanticCustomError("worded", template.replace("{problem}", problem))
        return value

    return validate
