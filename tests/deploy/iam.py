"""IAM's policy evaluation for identity policies: action, resource and condition matching.

Why not moto's access control (``INITIAL_NO_AUTH_ACTION_COUNT``)? moto evaluates the
*action* of a request but passes ``"*"`` as the resource for every service except S3,
SQS, IAM and STS (``moto/core/responses.py``: ``call_action`` uses a
``_determine_resource`` only those services define), and its matcher compares the
statement's resource pattern against that ``"*"`` — so a policy scoped to
``table/agentcron-dev`` would be denied everything, and one with ``"*"`` allowed
everything: resource scoping, the point of the test, would go unchecked.

This evaluator implements what the IAM documentation specifies for the elements our
policies use (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

* ``Action``/``NotAction``: case-insensitive match, ``*`` and ``?`` wildcards;
* ``Resource``/``NotResource``: case-sensitive ARN match, ``*`` and ``?`` wildcards
  (a wildcard may span ``:`` and ``/``);
* ``Condition``: ``StringEquals``, ``StringLike`` (and their ``IfExists``/``Not``
  forms) against the request's context keys; any other operator fails the statement
  (so an unsupported condition can only make the test stricter);
* an explicit ``Deny`` wins; otherwise any matching ``Allow`` allows; otherwise denied.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    regex = fnmatch.translate(pattern)  # * → .*, ? → . ; [..] does not occur in ARNs we use
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.match(regex, value, flags) is not None


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in conditions.items():
        base = operator.removesuffix("IfExists")
        negated = base.startswith("StringNot")
        kind = base.replace("StringNot", "String")
        if kind not in ("StringEquals", "StringLike"):
            return False
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            if kind == "StringEquals":
                matched = actual in _as_list(expected)
            else:
                matched = any(_glob(e, actual, case_sensitive=True) for e in _as_list(expected))
            if matched == negated:
                return False
    return True


def _statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    if "Action" in statement:
        if not any(_glob(a, action, case_sensitive=False) for a in _as_list(statement["Action"])):
            return False
    elif any(_glob(a, action, case_sensitive=False) for a in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        resources = _as_list(statement["Resource"])
        if not any(_glob(r, resource, case_sensitive=True) for r in resources):
            return False
    elif any(_glob(r, resource, case_sensitive=True) for r in _as_list(statement["NotResource"])):
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def statements(policies: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for p in policies for s in _as_list(p["Statement"]) if s]


def allowed(
    policies: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    ctx = context or {}
    verdict = False
    for statement in statements(policies):
        if _statement_applies(statement, action, resource, ctx):
            if statement["Effect"] == "Deny":
                return False
            verdict = True
    return verdict


def granted_actions(policies: Iterable[Mapping[str, Any]]) -> set[str]:
    return {
        a.lower()
        for s in statements(policies)
        if s["Effect"] == "Allow"
        for a in _as_list(s.get("Action", []))
    }
