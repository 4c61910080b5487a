"""The events AWS delivers to each function, built the way the services build them.

* API Gateway's REST proxy event: the route is found in the packaged OpenAPI body the
  way API Gateway matches it (a literal segment beats a ``{parameter}``), and
  ``requestContext.resourcePath`` carries the template — Chalice dispatches on it.
* EventBridge Scheduler's delivery: the schedule's registered ``Target.Input`` with the
  ``<aws.scheduler.*>`` context attributes substituted.
* EventBridge's scheduled event for the reconciler's rule.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any


def route_of(openapi: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, str]]:
    """The resource API Gateway picks: the most literal segments, then the fewest greedy
    ones (``{proxy+}`` matches one or more segments, and is named without its ``+``)."""
    best: tuple[tuple[int, int], str, dict[str, str]] | None = None
    for template, methods in openapi["paths"].items():
        if method.lower() not in methods and "x-amazon-apigateway-any-method" not in methods:
            continue
        pattern = re.sub(r"\\{(\w+)\\\+\\}", r"(?P<\1>.+)", re.escape(template))
        pattern = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", pattern) + "$"
        match = re.match(pattern, path)
        if match:
            rank = (template.count("/") - template.count("{"), -template.count("+}"))
            if best is None or rank > best[0]:
                best = (rank, template, match.groupdict())
    assert best is not None, f"no route for {method} {path}"
    return best[1], best[2]


def api_event(
    openapi: dict[str, Any],
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    stage: str = "api",
) -> dict[str, Any]:
    resource, params = route_of(openapi, method, path)
    all_headers = {"Content-Type": "application/json", "Host": "example.execute-api"}
    all_headers.update(headers or {})
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.7"},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def scheduler_event(registered: dict[str, Any], when: datetime, attempt: int = 1) -> Any:
    text = registered["Target"]["Input"]
    for name, value in {
        "scheduled-time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "attempt-number": str(attempt),
        "schedule-arn": registered["Arn"],
        "execution-id": str(uuid.uuid4()),
    }.items():
        text = text.replace(f"<aws.scheduler.{name}>", value)
    return json.loads(text)


def rule_event(account: str, region: str, rule_arn: str, when: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }
