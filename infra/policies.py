"""Each function's IAM policy, and the Scheduler execution role's: exactly the calls the code makes.

The statements are CloudFormation values (``Fn::Sub`` / ``Fn::GetAtt``), so every
resource is scoped to this stack's partition, region, account and stage names. The
policy test (``tests/deploy/test_iam.py``) records the AWS operations each function
performs across the test suite and checks both directions: every recorded call is
allowed, and every granted action is used by some test (or is listed there as used by
the Lambda or Scheduler service on the function's behalf).

``"*"`` appears only for ``scheduler:ListSchedules`` and X-Ray's
``PutTraceSegments``/``PutTelemetryRecords`` (active tracing), which support no
resource-level permission (the Service Authorization Reference lists no resource type
for them).

Which function makes which call (read from the adapters, confirmed by the recording):

* **API**: schedule, thread, run and key items (``GetItem``, ``PutItem``,
  ``UpdateItem``, ``DeleteItem``, ``Query`` on the table and its indexes);
  ``Create/Update/DeleteSchedule`` with ``iam:PassRole`` of the Scheduler role;
  ``lambda:InvokeFunction`` of the trigger (run now).
* **Trigger**: ``BatchGetItem`` (the schedule and the fire's earlier run in one read),
  the claim and finish transactions (``Put``/``Update``/``DeleteItem``), thread items,
  a long run's heartbeat and the webhook status (``UpdateItem``);
  ``UpdateSchedule`` (system pause on a budget overrun) and ``CreateSchedule`` (its
  update→create fallback when the entry is missing) with ``iam:PassRole``;
  ``bedrock:InvokeModel`` (Converse) on the registered models; ``ssm:GetParameter`` of
  the OpenAI key parameter, when one is configured.
* **Reconciler**: index ``Query``s, the finish transaction for stuck runs,
  ``ListSchedules``, ``GetSchedule`` (every entry is compared whole with its record) and
  ``Create/Update/DeleteSchedule`` (drift repair) with ``iam:PassRole``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FUNCTIONS = ("api", "run-trigger", "reconciler")
LOGICAL_IDS = {"api": "APIHandler", "run-trigger": "RunTrigger", "reconciler": "Reconciler"}
ROLE_IDS = {
    "api": "ApiHandlerRole",
    "run-trigger": "RunTriggerRole",
    "reconciler": "ReconcilerRole",
}
OPENAI_KEY_PARAMETER = "OpenAIApiKeyParameter"
HAS_OPENAI_KEY = "HasOpenAIApiKeyParameter"

_ARN = "arn:${AWS::Partition}"
_REGIONAL = "${AWS::Region}:${AWS::AccountId}"
# Region prefixes of Bedrock cross-region inference profile ids (``us.anthropic…``).
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.")


def prefix(stage: str) -> str:
    return f"agentcron-{stage}"


def function_name(stage: str, function: str) -> str:
    """Fixed function names: every ARN is then known without referencing the function
    (no dependency cycle between the trigger, its role and the Scheduler role)."""
    return f"{prefix(stage)}-{function}"


def function_arn(stage: str, function: str) -> dict[str, str]:
    return {"Fn::Sub": f"{_ARN}:lambda:{_REGIONAL}:function:{function_name(stage, function)}"}


def log_group_name(stage: str, function: str) -> str:
    return f"/aws/lambda/{function_name(stage, function)}"


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _table_arns(stage: str) -> list[dict[str, str]]:
    table = f"{_ARN}:dynamodb:{_REGIONAL}:table/{prefix(stage)}"
    return [_sub(table), _sub(f"{table}/index/*")]


def _schedules_arn(stage: str) -> dict[str, str]:
    return _sub(f"{_ARN}:scheduler:{_REGIONAL}:schedule/{prefix(stage)}/*")


def _logs(stage: str, function: str) -> dict[str, Any]:
    # The log group is a stack resource (with retention), so no logs:CreateLogGroup.
    group = log_group_name(stage, function)
    return {
        "Sid": "OwnLogGroup",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": _sub(f"{_ARN}:logs:{_REGIONAL}:log-group:{group}:*"),
    }


def _pass_scheduler_role() -> dict[str, Any]:
    return {
        "Sid": "PassSchedulerRole",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
        "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
    }


def _table(sid: str, stage: str, actions: list[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": [f"dynamodb:{a}" for a in actions],
        "Resource": _table_arns(stage),
    }


def _schedules(stage: str, actions: list[str]) -> dict[str, Any]:
    return {
        "Sid": "Schedules",
        "Effect": "Allow",
        "Action": [f"scheduler:{a}" for a in actions],
        "Resource": _schedules_arn(stage),
    }


def bedrock_model_arns(assistants_file: Path) -> list[dict[str, str]]:
    """The Bedrock models the registry configures: foundation models in this region;
    a cross-region inference profile, plus its model in the regions it routes to."""
    registry = json.loads(assistants_file.read_text())
    arns: list[dict[str, str]] = []
    for name, entry in sorted(registry.items()):
        if name.startswith("_") or entry.get("agent") != "bedrock":
            continue
        model = str(entry["model"])
        if model.startswith(_PROFILE_PREFIXES):
            base = model.split(".", 1)[1]
            arns.append(_sub(f"{_ARN}:bedrock:{_REGIONAL}:inference-profile/{model}"))
            arns.append(_sub(f"{_ARN}:bedrock:*::foundation-model/{base}"))
        else:
            arns.append(_sub(f"{_ARN}:bedrock:${{AWS::Region}}::foundation-model/{model}"))
    return arns


def _traces() -> dict[str, Any]:
    # Active tracing: the Lambda service sends the function's X-Ray segments with its role.
    # Neither action supports resource-level permissions, so "*" is the only scope.
    return {
        "Sid": "XRayTraces",
        "Effect": "Allow",
        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
        "Resource": "*",
    }


def function_policy(stage: str, function: str, assistants_file: Path) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [_logs(stage, function), _traces()]
    if function == "api":
        statements += [
            _table(
                "Table",
                stage,
                ["BatchGetItem", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"],
            ),
            _schedules(stage, ["CreateSchedule", "UpdateSchedule", "DeleteSchedule"]),
            _pass_scheduler_role(),
            {
                "Sid": "RunNow",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": function_arn(stage, "run-trigger"),
            },
        ]
    elif function == "run-trigger":
        statements += [
            _table(
                "Table",
                stage,
                ["BatchGetItem", "GetItem", "PutItem", "UpdateItem", "DeleteItem"],
            ),
            _schedules(stage, ["UpdateSchedule", "CreateSchedule"]),
            _pass_scheduler_role(),
            {
                # Lambda sends failed asynchronous invocations here with the function's role.
                "Sid": "OnFailureDestination",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": ["TriggerFailureQueue", "Arn"]},
            },
            {
                "Fn::If": [
                    HAS_OPENAI_KEY,
                    {
                        "Sid": "OpenAIApiKey",
                        "Effect": "Allow",
                        "Action": "ssm:GetParameter",
                        # The parameter name starts with "/" (the template parameter's pattern).
                        "Resource": _sub(
                            f"{_ARN}:ssm:{_REGIONAL}:parameter${{{OPENAI_KEY_PARAMETER}}}"
                        ),
                    },
                    {"Ref": "AWS::NoValue"},
                ]
            },
        ]
        models = bedrock_model_arns(assistants_file)
        if models:
            statements.append(
                {
                    "Sid": "BedrockModels",
                    "Effect": "Allow",
                    "Action": "bedrock:InvokeModel",
                    "Resource": models,
                }
            )
    elif function == "reconciler":
        statements += [
            _table("Table", stage, ["GetItem", "Query", "UpdateItem", "PutItem", "DeleteItem"]),
            # GetSchedule: the sweep compares each entry whole with its record.
            _schedules(
                stage, ["GetSchedule", "CreateSchedule", "UpdateSchedule", "DeleteSchedule"]
            ),
            {
                # ListSchedules has no resource-level permission: "*" is the only scope.
                "Sid": "ListSchedules",
                "Effect": "Allow",
                "Action": "scheduler:ListSchedules",
                "Resource": "*",
            },
            _pass_scheduler_role(),
        ]
    else:  # pragma: no cover - a programming error
        raise ValueError(function)
    return {"Version": "2012-10-17", "Statement": statements}


def scheduler_role_policy(stage: str) -> dict[str, Any]:
    """What EventBridge Scheduler does with the execution role: invoke the trigger, and
    send an event it could not deliver to the dead-letter queue."""
    trigger = function_name(stage, "run-trigger")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeTrigger",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": [
                    function_arn(stage, "run-trigger"),
                    _sub(f"{_ARN}:lambda:{_REGIONAL}:function:{trigger}:*"),
                ],
            },
            {
                "Sid": "DeadLetterQueue",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": ["SchedulerDeadLetterQueue", "Arn"]},
            },
        ],
    }
