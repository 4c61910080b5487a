"""The OpenAPI documents: generated from the route tables and models, committed, valid, served,
and — for LangGraph — in agreement with the official server's schemas.

If ``test_committed_documents_match_the_generated_ones`` fails, the API changed: run
``make openapi`` and commit ``openapi/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from chalicelib.api import openapi

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "the API changed: run `make openapi` and commit openapi/"


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, Any]]:
    return openapi.documents()


def test_committed_documents_match_the_generated_ones(generated: dict[str, Any]) -> None:
    for name, document in generated.items():
        committed = (ROOT / "openapi" / name).read_text(encoding="utf-8")
        assert committed == openapi.render(document), f"openapi/{name}: {REGENERATE}"


def test_documents_are_valid_openapi_3_1(generated: dict[str, Any]) -> None:
    for document in generated.values():
        assert document["openapi"] == "3.1.0"
        validate(document)


def test_every_api_route_is_documented(generated: dict[str, Any]) -> None:
    from app import app

    documented = {
        (method.upper(), path)
        for document in generated.values()
        for path, item in document["paths"].items()
        for method in item
    }
    served = {
        (method, path)
        for path, views in app.routes.items()
        for method, entry in views.items()
        if not entry.view_name.startswith("not_allowed_") and not path.startswith("/console")
    }
    assert served == documented


def test_the_app_serves_both_documents(client: Any) -> None:
    for path, name in (
        ("/openapi.json", "langgraph.json"),
        ("/api/v1/openapi.json", "shannon.json"),
    ):
        response = client.http.get(path)
        assert response.status_code == 200
        committed = json.loads((ROOT / "openapi" / name).read_text(encoding="utf-8"))
        assert json.loads(response.body) == committed


# The official LangGraph server's schemas (langgraph-api 0.16.7's openapi.json), for the
# fields agentcron serves: name → (JSON types without null, format or "", required).
OFFICIAL: dict[str, dict[str, tuple[frozenset[str], str, bool]]] = {
    "Cron": {
        "cron_id": (frozenset({"string"}), "uuid", True),
        "assistant_id": (frozenset({"string"}), "uuid", False),
        "thread_id": (frozenset({"string"}), "uuid", True),
        "end_time": (frozenset({"string"}), "date-time", True),
        "schedule": (frozenset({"string"}), "", True),
        "created_at": (frozenset({"string"}), "date-time", True),
        "updated_at": (frozenset({"string"}), "date-time", True),
        "user_id": (frozenset({"string"}), "", False),
        "payload": (frozenset({"object"}), "", True),
        "next_run_date": (frozenset({"string"}), "date-time", False),
        "metadata": (frozenset({"object"}), "", False),
        "enabled": (frozenset({"boolean"}), "", True),
    },
    "ThreadOut": {
        "thread_id": (frozenset({"string"}), "uuid", True),
        "created_at": (frozenset({"string"}), "date-time", True),
        "updated_at": (frozenset({"string"}), "date-time", True),
        "state_updated_at": (frozenset({"string"}), "date-time", False),
        "metadata": (frozenset({"object"}), "", True),
        "config": (frozenset({"object"}), "", False),
        "status": (frozenset({"string"}), "", True),
        "values": (frozenset({"object"}), "", False),
        "interrupts": (frozenset({"object"}), "", False),
    },
    "AssistantOut": {
        "assistant_id": (frozenset({"string"}), "uuid", True),
        "graph_id": (frozenset({"string"}), "", True),
        "config": (frozenset({"object"}), "", True),
        "context": (frozenset({"object"}), "", False),
        "created_at": (frozenset({"string"}), "date-time", True),
        "updated_at": (frozenset({"string"}), "date-time", True),
        "metadata": (frozenset({"object"}), "", True),
        "version": (frozenset({"integer"}), "", False),
        "name": (frozenset({"string"}), "", False),
        "description": (frozenset({"string"}), "", False),
    },
    "RunOut": {
        "run_id": (frozenset({"string"}), "uuid", True),
        "thread_id": (frozenset({"string"}), "uuid", True),
        "assistant_id": (frozenset({"string"}), "uuid", True),
        "created_at": (frozenset({"string"}), "date-time", True),
        "updated_at": (frozenset({"string"}), "date-time", True),
        "status": (frozenset({"string"}), "", True),
        "metadata": (frozenset({"object"}), "", True),
        "kwargs": (frozenset({"object"}), "", True),
        "multitask_strategy": (frozenset({"string"}), "", True),
        "langsmith_session_name": (frozenset({"string"}), "", False),
    },
    "CronCreate": {
        "schedule": (frozenset({"string"}), "", True),
        "timezone": (frozenset({"string"}), "", False),
        "end_time": (frozenset({"string"}), "date-time", False),
        "assistant_id": (frozenset({"string"}), "", True),
        "input": (frozenset({"array", "object"}), "", False),
        "metadata": (frozenset({"object"}), "", False),
        "config": (frozenset({"object"}), "", False),
        "context": (frozenset({"object"}), "", False),
        "webhook": (frozenset({"string"}), "", False),
        "interrupt_before": (frozenset({"string", "array"}), "", False),
        "interrupt_after": (frozenset({"string", "array"}), "", False),
        "on_run_completed": (frozenset({"string"}), "", False),
        "enabled": (frozenset({"boolean"}), "", False),
        "stream_mode": (frozenset({"array", "string"}), "", False),
        "stream_subgraphs": (frozenset({"boolean"}), "", False),
        "stream_resumable": (frozenset({"boolean"}), "", False),
        "durability": (frozenset({"string"}), "", False),
    },
    "CronSearch": {
        "assistant_id": (frozenset({"string"}), "", False),
        "thread_id": (frozenset({"string"}), "uuid", False),
        "enabled": (frozenset({"boolean"}), "", False),
        "metadata": (frozenset({"object"}), "", False),
        "limit": (frozenset({"integer"}), "", False),
        "offset": (frozenset({"integer"}), "", False),
        "sort_by": (frozenset({"string"}), "", False),
        "sort_order": (frozenset({"string"}), "", False),
        "select": (frozenset({"array"}), "", False),
    },
    "ThreadCreate": {
        "thread_id": (frozenset({"string"}), "uuid", False),
        "metadata": (frozenset({"object"}), "", False),
        "if_exists": (frozenset({"string"}), "", False),
        "ttl": (frozenset({"object"}), "", False),
    },
}
# Where agentcron is nullable and the official schema is not: stateless crons have no
# thread and most crons no end time (the reference server and the SDK return null there);
# a skipped fire ran on no thread; a run's multitask strategy is not recorded per run; the
# run record's assistant is optional in the domain.
NULLABLE_BY_DESIGN = {
    ("Cron", "thread_id"),
    ("Cron", "end_time"),
    ("RunOut", "thread_id"),
    ("RunOut", "assistant_id"),
    ("RunOut", "multitask_strategy"),
}


def _types(schema: dict[str, Any], components: dict[str, Any]) -> tuple[set[str], str, bool]:
    """(types without null, format, nullable) of a property schema."""
    if "$ref" in schema:
        return {"object"}, "", False
    variants = schema.get("anyOf") or schema.get("oneOf") or [schema]
    types: set[str] = set()
    fmt = schema.get("format", "")
    nullable = False
    for variant in variants:
        if "$ref" in variant:
            types.add("object")
            continue
        kind = variant.get("type")
        if kind == "null":
            nullable = True
        elif kind is not None:
            types.add(kind)
        elif "enum" in variant:
            types.add("string")
        fmt = fmt or variant.get("format", "")
    return types, fmt, nullable


def test_langgraph_schemas_agree_with_the_official_server(generated: dict[str, Any]) -> None:
    components = generated["langgraph.json"]["components"]["schemas"]
    for model, fields in OFFICIAL.items():
        schema = components[model]
        required = set(schema.get("required", []))
        for name, (types, fmt, official_required) in fields.items():
            assert name in schema["properties"], (model, name)
            ours, our_format, nullable = _types(schema["properties"][name], components)
            assert ours == set(types), (model, name, ours, types)
            assert our_format == fmt, (model, name, our_format, fmt)
            if official_required and model in ("Cron", "ThreadOut", "AssistantOut", "RunOut"):
                assert name in required, (model, name)
            if nullable and official_required:
                assert (model, name) in NULLABLE_BY_DESIGN, (model, name)


def _webhook_bounds(node: Any) -> list[int]:
    found: list[int] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "webhook":
                variants = value.get("anyOf", [value]) if isinstance(value, dict) else []
                found += [v["maxLength"] for v in variants if "maxLength" in v]
            found += _webhook_bounds(value)
    elif isinstance(node, list):
        for value in node:
            found += _webhook_bounds(value)
    return found


def test_documents_advertise_the_domains_webhook_limit(generated: dict[str, Any]) -> None:
    """A client reading either document learns the length the server enforces."""
    from chalicelib.domain.models import MAX_WEBHOOK_CHARS

    for name, document in generated.items():
        bounds = _webhook_bounds(document["components"]["schemas"])
        assert bounds, name
        assert set(bounds) == {MAX_WEBHOOK_CHARS}, name
