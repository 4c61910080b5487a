"""IAM is exactly what the code uses: every recorded call is allowed by its function's
policy as CloudFormation created it, and every granted action is used.

The calls come from two places (``aws_calls.py`` records both with botocore hooks):
the bundle's three functions in ``test_bundle.py`` (their own process each, against
the stack's real names), and the whole in-process suite (attributed to a function by
its entry point), whose configuration names (``agentcron-test`` …) are mapped onto the
stack's. The policies are read back from (moto's) IAM after ``CreateStack``, so
intrinsic functions are resolved as CloudFormation resolved them, and evaluated by
``iam.py`` (why not moto's own evaluator: see there).

These tests run last (``tests/conftest.py`` orders them), after everything that records.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from tests.deploy import aws_calls, iam
from tests.deploy.conftest import STAGE, LambdaProcess, Stack

# Granted for AWS services acting with the role, not for calls in our code.
SERVICE_USED = {
    "api": {"logs:createlogstream", "logs:putlogevents"},
    "reconciler": {"logs:createlogstream", "logs:putlogevents"},
    # + Lambda writing failed asynchronous invocations to the OnFailure queue.
    "run-trigger": {"logs:createlogstream", "logs:putlogevents", "sqs:sendmessage"},
    "scheduler-role": set(),
}
SUITES = ("tests/unit", "tests/functional", "tests/compat", "tests/deploy")


def _suite_names(stack: Stack) -> list[tuple[str, str]]:
    """The in-process suite's configuration (tests/conftest.py and Settings' defaults)
    → the stack's names: the same function, deployed."""
    from chalicelib.settings import Settings

    defaults = Settings()
    return [
        (defaults.TRIGGER_FUNCTION_ARN, stack.outputs["TriggerFunctionArn"]),
        (defaults.SCHEDULER_ROLE_ARN, stack.outputs["SchedulerRoleArn"]),
        (defaults.SCHEDULER_DLQ_ARN, stack.outputs["SchedulerDeadLetterQueueArn"]),
        (":table/agentcron-test", f":table/agentcron-{STAGE}"),
        (":schedule/agentcron-test/", f":schedule/agentcron-{STAGE}/"),
        # the local stack's stage (tests/e2e)
        (":table/agentcron-local", f":table/agentcron-{STAGE}"),
        (":schedule/agentcron-local/", f":schedule/agentcron-{STAGE}/"),
    ]


Functions = dict[str, LambdaProcess]


def requests(stack: Stack, functions: Functions) -> list[tuple[str, str, str, dict[str, str], str]]:
    """(principal, action, resource, context, origin) of every recorded call."""
    out = []
    for call in (c for process in functions.values() for c in process.calls):
        for who, action, resource, ctx in aws_calls.iam_requests(call):
            out.append((who, action, resource, ctx, "bundle"))
    mapping = _suite_names(stack)
    for call in list(aws_calls.RECORDED):
        for who, action, resource, ctx in aws_calls.iam_requests(call):
            for old, new in mapping:
                resource = resource.replace(old, new)
            out.append((who, action, resource, ctx, "suite"))
    return out


def test_the_evaluator_matches_as_iam_does() -> None:
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "dynamodb:Get*",
                "Resource": "arn:aws:dynamodb:r:1:table/t",
            },
            {"Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": "*/index/*"},
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "arn:aws:iam::1:role/x",
                "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            },
        ]
    }
    assert iam.allowed([policy], "DynamoDB:getitem", "arn:aws:dynamodb:r:1:table/t")
    assert not iam.allowed([policy], "dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/T")
    assert not iam.allowed([policy], "dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/t2")
    assert not iam.allowed([policy], "dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/t/index/g")
    assert not iam.allowed([policy], "dynamodb:PutItem", "arn:aws:dynamodb:r:1:table/t")
    assert not iam.allowed([policy], "iam:PassRole", "arn:aws:iam::1:role/x")
    assert iam.allowed(
        [policy],
        "iam:PassRole",
        "arn:aws:iam::1:role/x",
        {"iam:PassedToService": "scheduler.amazonaws.com"},
    )


def test_every_call_each_function_makes_is_allowed_by_its_own_policy(
    stack: Stack, functions: Functions
) -> None:
    recorded = requests(stack, functions)
    assert {r[0] for r in recorded if r[4] == "bundle"} >= {
        "api",
        "run-trigger",
        "reconciler",
        "scheduler-role",
    }
    denied = sorted(
        {
            f"{who}: {action} on {resource} ({origin})"
            for who, action, resource, ctx, origin in recorded
            if not iam.allowed(stack.role_policies[who], action, resource, ctx)
        }
    )
    assert denied == []


def test_every_granted_action_is_used(
    stack: Stack, functions: Functions, request: pytest.FixtureRequest
) -> None:
    collected = {
        str(item.path.relative_to(request.config.rootpath)) for item in request.session.items
    }
    if not all(any(path.startswith(suite) for path in collected) for suite in SUITES):
        pytest.skip("needs the whole suite (make test): unit, functional, compat and deploy tests")
    used: dict[str, set[str]] = defaultdict(set)
    for who, action, _, _, _ in requests(stack, functions):
        used[who].add(action.lower())
    unused = {
        who: sorted(iam.granted_actions(policies) - used[who] - SERVICE_USED[who])
        for who, policies in stack.role_policies.items()
    }
    assert unused == {who: [] for who in stack.role_policies}


def test_a_dev_function_cannot_touch_prod(stack: Stack, functions: Functions) -> None:
    checked = 0
    for who, action, resource, ctx, _ in requests(stack, functions):
        if resource == "*" or f"agentcron-{STAGE}" not in resource:
            continue
        prod = resource.replace(f"agentcron-{STAGE}", "agentcron-prod")
        assert not iam.allowed(stack.role_policies[who], action, prod, ctx), (who, action, prod)
        other_region = resource.replace(":us-east-1:", ":eu-west-1:")
        if other_region != resource:
            assert not iam.allowed(stack.role_policies[who], action, other_region, ctx)
        checked += 1
    assert checked > 20


def test_star_only_where_the_action_has_no_resource_level_permission(stack: Stack) -> None:
    starred = {
        (who, action.lower())
        for who, policies in stack.role_policies.items()
        for s in iam.statements(policies)
        if "*" in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert starred == {("reconciler", "scheduler:listschedules")}


def test_parliament_finds_nothing_above_low(stack: Stack) -> None:
    from parliament import analyze_policy_string
    from parliament import config as parliament_config

    findings: list[str] = []
    for who, policies in stack.role_policies.items():
        for policy in policies:
            analyzed = analyze_policy_string(json.dumps(policy))
            for finding in analyzed.findings:
                severity = parliament_config.get(finding.issue, {}).get("severity", "UNKNOWN")
                if _parliament_bedrock_false_positive(finding, policy):
                    continue
                if severity not in ("LOW", "INFO", "MUTE"):
                    findings.append(f"{who}: {severity} {finding.issue} {finding.detail}")
    assert findings == []


def _parliament_bedrock_false_positive(finding: Any, policy: dict[str, Any]) -> bool:
    """parliament 1.6.4 reports RESOURCE_MISMATCH (MEDIUM) for *every* foundation-model
    ARN, including one of the very format it lists as required
    (``arn:*:bedrock:*::foundation-model/*``). Accepted only when the finding is about
    ``bedrock:InvokeModel`` alone and each Bedrock resource does match that format."""
    if finding.issue != "RESOURCE_MISMATCH":
        return False
    if {d["action"] for d in finding.detail} != {"bedrock:InvokeModel"}:
        return False
    resources = [
        r
        for s in iam.statements([policy])
        if "bedrock:InvokeModel"
        in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    return bool(resources) and all(
        iam.allowed(
            [
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "*",
                            "Resource": "arn:*:bedrock:*::foundation-model/*",
                        }
                    ]
                }
            ],
            "bedrock:InvokeModel",
            r,
        )
        for r in resources
    )
