"""The CloudFormation merge template for ``chalice package --merge-template``.

``chalice package`` emits a SAM template with the two functions (``APIHandler`` for
the routes, ``RunTrigger`` for ``@app.lambda_function(name="run_trigger")``); this
module adds everything around them, built from the same definitions the local
stack and the tests use (:mod:`chalicelib.adapters.dynamodb_table`):

* the table (key schema, GSI, TTL on ``expires_at``, point-in-time recovery);
* the stage's schedule group;
* the scheduler execution role (trusted by ``scheduler.amazonaws.com`` for this
  account only; may invoke the trigger function and send to the DLQ);
* the Scheduler dead-letter queue, and the trigger's ``OnFailure`` queue;
* ``AWS::Lambda::EventInvokeConfig`` on ``RunTrigger`` with **MaximumRetryAttempts 0**:
  Scheduler invokes Lambda asynchronously, and Lambda's default two retries would
  re-run an agent — and spend its budget — after an error or a timeout. Failed
  invocations go to the ``OnFailure`` queue instead;
* the ARNs and names the functions (API, trigger, reconciler) read from their environment.

Usage::

    python -m infra.template --stage dev > build/merge.json
    chalice package --stage dev --merge-template build/merge.json build/
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chalicelib.adapters.dynamodb_table import (
    TTL_ATTRIBUTE,
    schedule_group_name,
    table_definition,
    table_name,
)


def merge_template(stage: str) -> dict[str, Any]:
    prefix = f"agentcron-{stage}"
    table = table_definition(table_name(stage))
    env = {
        "TABLE_NAME": {"Ref": "AgentcronTable"},
        "SCHEDULE_GROUP": {"Ref": "ScheduleGroup"},
        "TRIGGER_FUNCTION_ARN": {"Fn::GetAtt": ["RunTrigger", "Arn"]},
        "SCHEDULER_ROLE_ARN": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
        "SCHEDULER_DLQ_ARN": {"Fn::GetAtt": ["SchedulerDeadLetterQueue", "Arn"]},
    }
    return {
        "Resources": {
            "AgentcronTable": {
                "Type": "AWS::DynamoDB::Table",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    **table,
                    "TimeToLiveSpecification": {
                        "AttributeName": TTL_ATTRIBUTE,
                        "Enabled": True,
                    },
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
                },
            },
            "TriggerFailureQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": f"{prefix}-trigger-failures",
                    "MessageRetentionPeriod": 1209600,
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
                        {
                            "PolicyName": "invoke-trigger",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": "lambda:InvokeFunction",
                                        "Resource": [
                                            {"Fn::GetAtt": ["RunTrigger", "Arn"]},
                                            {"Fn::Sub": "${RunTrigger.Arn}:*"},
                                        ],
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": "sqs:SendMessage",
                                        "Resource": {
                                            "Fn::GetAtt": ["SchedulerDeadLetterQueue", "Arn"]
                                        },
                                    },
                                ],
                            },
                        }
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
            "APIHandler": {"Properties": {"Environment": {"Variables": env}}},
            "RunTrigger": {"Properties": {"Environment": {"Variables": env}}},
            "Reconciler": {"Properties": {"Environment": {"Variables": env}}},
        },
        "Outputs": {
            "TableName": {"Value": {"Ref": "AgentcronTable"}},
            "ScheduleGroupName": {"Value": {"Ref": "ScheduleGroup"}},
            "TriggerFailureQueueUrl": {"Value": {"Ref": "TriggerFailureQueue"}},
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
