"""The CloudFormation merge template for ``chalice package --merge-template``.

``chalice package`` emits a SAM template with the three functions (``APIHandler`` for
the routes, ``RunTrigger`` for ``@app.lambda_function(name="run_trigger")``,
``Reconciler`` for the maintenance rule) and the REST API; this module adds
everything around them, built from the definitions the local stack and the tests use
(:mod:`chalicelib.adapters.dynamodb_table`, :mod:`infra.policies`):

* the table (key schema, GSIs, TTL on ``expires_at``, point-in-time recovery, retained
  on stack deletion);
* the stage's schedule group, the Scheduler dead-letter queue and the trigger's
  ``OnFailure`` queue;
* one IAM role per function and the Scheduler execution role, with the policies of
  :mod:`infra.policies` (every resource scoped to this stack's partition, region,
  account and stage names);
* **fixed function names** (``agentcron-<stage>-api|run-trigger|reconciler``): the
  trigger's ARN is then an ``Fn::Sub`` of known values, so neither the Scheduler role
  nor the functions' environment references ``RunTrigger`` — chalice's default
  (``GetAtt RunTrigger.Arn`` in ``RunTrigger``'s own environment, and a Scheduler role
  that references the function whose environment references the role) is a circular
  dependency CloudFormation rejects;
* ``AWS::Lambda::EventInvokeConfig`` on ``RunTrigger`` with **MaximumRetryAttempts 0**:
  Scheduler invokes Lambda asynchronously, and Lambda's default two retries would
  re-run an agent — and spend its budget — after an error or a timeout. Failed
  invocations go to the ``OnFailure`` queue instead;
* a log group with retention per function, API Gateway stage throttling, and the
  trigger's reserved concurrency, all template parameters;
* the secrets: the OpenAI key is an SSM SecureString *name* (a parameter), read by the
  trigger at run time — never a value in the template.

Usage (``make package STAGE=<stage>`` does this)::

    python -m infra.template --stage dev > build/dev/merge.json
    chalice package --stage dev --merge-template build/dev/merge.json build/dev/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.adapters.dynamodb_table import (
    TTL_ATTRIBUTE,
    schedule_group_name,
    table_definition,
    table_name,
)
from infra import monitoring, policies
from infra.policies import (
    FUNCTIONS,
    HAS_OPENAI_KEY,
    LOGICAL_IDS,
    OPENAI_KEY_PARAMETER,
    ROLE_IDS,
    function_arn,
    function_name,
    function_policy,
    log_group_name,
    scheduler_role_policy,
)

ROOT = Path(__file__).resolve().parents[1]
ASSISTANTS_FILE = ROOT / "chalicelib" / "agents" / "assistants.json"
# A stage's default for the DefaultAssistant parameter: prod runs a real model.
DEFAULT_ASSISTANT = {"prod": "bedrock"}
HAS_RESERVED_CONCURRENCY = "HasTriggerReservedConcurrency"
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]


def parameters(stage: str) -> dict[str, Any]:
    return {
        "DefaultAssistant": {
            "Type": "String",
            "Default": DEFAULT_ASSISTANT.get(stage, "demo"),
            "Description": "The assistant (graph id of assistants.json) Shannon schedules run.",
            "MinLength": 1,
        },
        OPENAI_KEY_PARAMETER: {
            "Type": "String",
            "Default": "",
            "Description": "Name of an SSM SecureString holding the OpenAI API key "
            "(e.g. /agentcron/prod/openai-api-key); empty if the openai agent is unused. "
            "Not a /aws/... name: the trigger may read only this parameter (a Secrets "
            "Manager reference would need secretsmanager:GetSecretValue too).",
            # Java regular expression (CloudFormation's): the lookahead refuses AWS's
            # reserved /aws/ tree — public parameters and the Secrets Manager bridge.
            "AllowedPattern": "^$|^/(?!aws/)[a-zA-Z0-9_.\\-/]{1,1010}$",
        },
        "ApiThrottlingRateLimit": {
            "Type": "Number",
            "Default": 50,
            "MinValue": 1,
            "Description": "API Gateway stage steady-state requests per second.",
        },
        "ApiThrottlingBurstLimit": {
            "Type": "Number",
            "Default": 100,
            "MinValue": 1,
            "Description": "API Gateway stage burst.",
        },
        "TriggerReservedConcurrency": {
            "Type": "Number",
            "Default": 0,
            "MinValue": 0,
            "Description": "Concurrent runs the trigger may use (reserved, so runs cannot "
            "starve the API); 0 = no reservation (accounts with a small quota).",
        },
        "MonthlyCapUserUsd": {
            "Type": "String",
            "Default": "",
            "Description": "Default monthly spend cap per user in USD (UTC months); empty = "
            "none. Operators override it per user with python -m chalicelib.admin set-cap.",
            "AllowedPattern": "^$|^[0-9]{1,9}(\\.[0-9]{1,6})?$",
        },
        "MonthlyCapTenantUsd": {
            "Type": "String",
            "Default": "",
            "Description": "Default monthly spend cap per tenant in USD (UTC months); empty "
            "= none. Operators override it per tenant with python -m chalicelib.admin set-cap.",
            "AllowedPattern": "^$|^[0-9]{1,9}(\\.[0-9]{1,6})?$",
        },
        "LogRetentionDays": {
            "Type": "Number",
            "Default": 30,
            "AllowedValues": LOG_RETENTION_DAYS,
            "Description": "CloudWatch Logs retention of every function's log group.",
        },
    }


def environment(stage: str) -> dict[str, Any]:
    """What every function reads from its environment, beyond ``.chalice/config.json``."""
    return {
        "STAGE": stage,
        "TABLE_NAME": {"Ref": "AgentcronTable"},
        "SCHEDULE_GROUP": {"Ref": "ScheduleGroup"},
        "TRIGGER_FUNCTION_ARN": function_arn(stage, "run-trigger"),
        "SCHEDULER_ROLE_ARN": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
        "SCHEDULER_DLQ_ARN": {"Fn::GetAtt": ["SchedulerDeadLetterQueue", "Arn"]},
        "DEFAULT_ASSISTANT": {"Ref": "DefaultAssistant"},
        "OPENAI_API_KEY_PARAMETER": {"Ref": OPENAI_KEY_PARAMETER},
        "MONTHLY_CAP_USER_USD": {"Ref": "MonthlyCapUserUsd"},
        "MONTHLY_CAP_TENANT_USD": {"Ref": "MonthlyCapTenantUsd"},
        # Powertools' Tracer: X-Ray subsegments with the schedule and run ids as annotations.
        "TRACING": "true",
    }


# The API function's time budget (chalicelib/observability.py): one AWS call's worst case is
# 2 attempts x (0.5 s connect + 1.5 s read) + 1 s backoff = 5 s; a request starts a
# forward call only while 4 such calls (it and a 3-call rollback) + 1 s fit before its
# 28 s timeout, i.e. during its first 7 s, and a compensating call while 6 s are left.
# So every request answers within 28 s, below API Gateway's 29 s, whatever AWS does
# (tests/deploy/test_template.py does the arithmetic). Chalice does not apply
# per-function environment variables to the API handler, so they are set here.
API_CLIENT_ENVIRONMENT = {
    "AWS_CONNECT_TIMEOUT_SECONDS": "0.5",
    "AWS_READ_TIMEOUT_SECONDS": "1.5",
    "AWS_MAX_ATTEMPTS": "2",
    "API_REQUEST_DEADLINE": "true",
}


def _lambda_role(stage: str, function: str) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": function,
                    "PolicyDocument": function_policy(stage, function, ASSISTANTS_FILE),
                }
            ],
        },
    }


def _log_group_id(function: str) -> str:
    return f"{LOGICAL_IDS[function]}LogGroup"


def merge_template(stage: str) -> dict[str, Any]:
    prefix = policies.prefix(stage)
    table = table_definition(table_name(stage))
    env = environment(stage)
    resources: dict[str, Any] = {
        "AgentcronTable": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                **table,
                "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        },
        "ScheduleGroup": {
            "Type": "AWS::Scheduler::ScheduleGroup",
            "Properties": {"Name": schedule_group_name(stage)},
        },
        "SchedulerDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": f"{prefix}-scheduler-dlq",
                "MessageRetentionPeriod": 1209600,
                "SqsManagedSseEnabled": True,
            },
        },
        "TriggerFailureQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": f"{prefix}-trigger-failures",
                "MessageRetentionPeriod": 1209600,
                "SqsManagedSseEnabled": True,
            },
        },
        "SchedulerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": f"{prefix}-scheduler",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                            },
                        }
                    ],
                },
                "Policies": [
                    {"PolicyName": "invoke-trigger", "PolicyDocument": scheduler_role_policy(stage)}
                ],
            },
        },
        "RunTriggerInvokeConfig": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": "RunTrigger"},
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": 0,
                "DestinationConfig": {
                    "OnFailure": {"Destination": {"Fn::GetAtt": ["TriggerFailureQueue", "Arn"]}}
                },
            },
        },
        "RestAPI": {
            "Properties": {
                # API Gateway's metrics are keyed by the API's name: this stack's own
                # (the definition's title too, which an import would otherwise apply).
                "Name": monitoring.api_name(stage),
                "DefinitionBody": {"info": {"title": monitoring.api_name(stage)}},
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
                        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
                    }
                ],
            }
        },
    }
    for function in FUNCTIONS:
        logical = LOGICAL_IDS[function]
        resources[ROLE_IDS[function]] = _lambda_role(stage, function)
        resources[_log_group_id(function)] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": log_group_name(stage, function),
                "RetentionInDays": {"Ref": "LogRetentionDays"},
            },
        }
        properties: dict[str, Any] = {
            "FunctionName": function_name(stage, function),
            "Tracing": "Active",
            "Role": {"Fn::GetAtt": [ROLE_IDS[function], "Arn"]},
            "Environment": {
                "Variables": {**env, **(API_CLIENT_ENVIRONMENT if function == "api" else {})}
            },
        }
        if function == "run-trigger":
            properties["ReservedConcurrentExecutions"] = {
                "Fn::If": [
                    HAS_RESERVED_CONCURRENCY,
                    {"Ref": "TriggerReservedConcurrency"},
                    {"Ref": "AWS::NoValue"},
                ]
            }
        # The log group exists (with its retention) before the function can write to it.
        resources[logical] = {"DependsOn": [_log_group_id(function)], "Properties": properties}
    resources.update(monitoring.resources(stage, prefix, function_name(stage, "run-trigger")))
    return {
        "Parameters": {**parameters(stage), **monitoring.parameters()},
        "Conditions": {
            **monitoring.conditions(),
            HAS_OPENAI_KEY: {"Fn::Not": [{"Fn::Equals": [{"Ref": OPENAI_KEY_PARAMETER}, ""]}]},
            HAS_RESERVED_CONCURRENCY: {
                "Fn::Not": [{"Fn::Equals": [{"Ref": "TriggerReservedConcurrency"}, "0"]}]
            },
        },
        "Resources": resources,
        "Outputs": {
            "Stage": {"Value": stage},
            "TableName": {"Value": {"Ref": "AgentcronTable"}},
            "ScheduleGroupName": {"Value": {"Ref": "ScheduleGroup"}},
            "SchedulerRoleArn": {"Value": {"Fn::GetAtt": ["SchedulerRole", "Arn"]}},
            "SchedulerDeadLetterQueueArn": {
                "Value": {"Fn::GetAtt": ["SchedulerDeadLetterQueue", "Arn"]}
            },
            "TriggerFunctionArn": {"Value": function_arn(stage, "run-trigger")},
            "TriggerFailureQueueUrl": {"Value": {"Ref": "TriggerFailureQueue"}},
            "ApiFunctionName": {"Value": {"Ref": "APIHandler"}},
            "ReconcilerFunctionName": {"Value": {"Ref": "Reconciler"}},
            "DashboardName": {"Value": {"Ref": "Dashboard"}},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.template")
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    json.dump(merge_template(args.stage), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
