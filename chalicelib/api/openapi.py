"""OpenAPI 3.1 documents, generated from each façade's route table and pydantic models.

One document per façade, served at the façade's root — ``GET /openapi.json`` (LangGraph,
where LangGraph's own server serves it) and ``GET /api/v1/openapi.json`` (Shannon) —
and committed under ``openapi/``; a test fails when the committed files differ from
what this module generates. Regenerate with ``make openapi``
(``python -m chalicelib.api.openapi openapi/``).

Every operation comes from :class:`chalicelib.api.http.Facade`'s table: path, method,
the request model (``requestBody``), the query model (one parameter per field), path
parameters, the response model per status, and the error statuses (the façade's error
model). Schemas come from ``pydantic.json_schema.models_json_schema`` with references
rewritten to ``#/components/schemas``. A response named ``Model[]`` is an array of
``Model``; ``Model[]*`` an array of ``ModelSelection`` — the model with no key required,
for searches whose ``select`` projects each item; ``int`` a bare integer; ``object`` any
JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.api.http import Facade, Operation

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaMode

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
_PRIMITIVES: dict[str, dict[str, Any]] = {"int": {"type": "integer"}, "object": {"type": "object"}}


def build(facade: Facade) -> dict[str, Any]:
    """The façade's OpenAPI document (deterministic: same tables, same bytes)."""
    from pydantic.json_schema import models_json_schema

    names = sorted(_model_names(facade))
    pairs: list[tuple[Any, JsonSchemaMode]] = [(facade.model(n), mode) for n, mode in names]
    schemas, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    refs = {(n, mode): schemas[pair] for (n, mode), pair in zip(names, pairs, strict=True)}
    components = dict(defs.get("$defs", {}))
    for op in facade.operations:
        for model in op.responses.values():
            if model and model.endswith("*"):
                base = model.removesuffix("[]*")
                target = components[refs[(base, "serialization")]["$ref"].rsplit("/", 1)[1]]
                selection = {k: v for k, v in target.items() if k != "required"}
                selection["title"] = f"{target['title']}Selection"
                selection["description"] = "With `select`, only the selected keys."
                components[selection["title"]] = selection
    paths: dict[str, dict[str, Any]] = {}
    for op in facade.operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(facade, op, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": facade.title, "version": API_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _model_names(facade: Facade) -> set[tuple[str, JsonSchemaMode]]:
    names: set[tuple[str, JsonSchemaMode]] = {(facade.error_model, "serialization")}
    for op in facade.operations:
        if op.body:
            names.add((op.body, "validation"))
        for model in op.responses.values():
            base = (model or "").removesuffix("*").removesuffix("[]")
            if base and base not in _PRIMITIVES:
                names.add((base, "serialization"))
    return names


def _schema(name: str | None, mode: str, refs: dict[Any, Any]) -> dict[str, Any]:
    if name is None:
        return {}
    if name.endswith("[]*"):
        target = _schema(name[:-3], mode, refs)["$ref"]
        return {"type": "array", "items": {"$ref": f"{target}Selection"}}
    if name.endswith("[]"):
        return {"type": "array", "items": _schema(name[:-2], mode, refs)}
    if name in _PRIMITIVES:
        return dict(_PRIMITIVES[name])
    return dict(refs[(name, mode)])


def _operation(facade: Facade, op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.name, "summary": op.summary, "tags": list(op.tags)}
    params: list[dict[str, Any]] = []
    for name in _path_names(op.path):
        param = facade.path_params[name]
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": param.description,
                "schema": dict(param.schema),
            }
        )
    if op.query:
        query = facade.model(op.query).model_json_schema(mode="validation")
        for name, schema in query.get("properties", {}).items():
            schema = _not_null({k: v for k, v in schema.items() if k not in ("title", "default")})
            params.append({"name": name, "in": "query", "required": False, "schema": schema})
    if params:
        out["parameters"] = params
    if op.body:
        out["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": _schema(op.body, "validation", refs)}},
        }
    responses: dict[str, Any] = {}
    for status, model in sorted(op.responses.items()):
        if model is None:
            responses[str(status)] = {"description": "No content"}
        else:
            responses[str(status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": _schema(model, "serialization", refs)}},
            }
        if op.links:
            responses[str(status)]["links"] = {
                target: {"operationId": target, "parameters": dict(parameters)}
                for target, parameters in sorted(op.links.items())
            }
    error = {
        "content": {
            "application/json": {"schema": _schema(facade.error_model, "serialization", refs)}
        }
    }
    for status in sorted({*op.errors, *((401,) if op.auth else ())}):
        responses[str(status)] = {"description": _REASONS.get(status, "Error"), **error}
    out["responses"] = responses
    out["security"] = [{"apiKey": []}, {"bearer": []}] if op.auth else []
    return out


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is a string on the wire: it is never ``null``."""
    variants = [v for v in schema.get("anyOf", []) if v != {"type": "null"}]
    if len(variants) == 1:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**variants[0], **rest}
    return schema


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


_REASONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Validation error",
    503: "AWS refused the write; nothing was changed",
}


_cache: dict[str, dict[str, Any]] = {}


def served(facade: Facade) -> dict[str, Any]:
    """The façade's document, built once per process (on its first request)."""
    if facade.title not in _cache:
        _cache[facade.title] = build(facade)
    return _cache[facade.title]


def documents() -> dict[str, dict[str, Any]]:
    """File name → document, for both façades."""
    from chalicelib.api.langgraph import facade as langgraph
    from chalicelib.api.shannon.routes import facade as shannon

    return {"langgraph.json": build(langgraph), "shannon.json": build(shannon)}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "openapi")
    target.mkdir(parents=True, exist_ok=True)
    for name, document in documents().items():
        (target / name).write_text(render(document), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
