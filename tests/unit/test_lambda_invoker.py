"""Run-now in AWS is an asynchronous Lambda invoke of the trigger with our event."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.lambda_invoker import LambdaRunInvoker
from chalicelib.domain.errors import SchedulingUnavailableError

ARN = "arn:aws:lambda:us-east-1:123456789012:function:agentcron-prod-run_trigger"


def client() -> object:
    return boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_invoke_is_asynchronous_with_the_trigger_event() -> None:
    lam = client()
    event = {"tenant_id": "t", "user_id": "u", "schedule_id": "s", "trigger": "manual"}
    with Stubber(lam) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": ARN,
                "InvocationType": "Event",
                "Payload": json.dumps(event, separators=(",", ":")).encode(),
            },
        )
        LambdaRunInvoker(lam, ARN).invoke(event)  # type: ignore[arg-type]
        stub.assert_no_pending_responses()


def test_a_refused_invoke_is_a_scheduling_error() -> None:
    lam = client()
    with Stubber(lam) as stub:
        stub.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
        with pytest.raises(SchedulingUnavailableError):
            LambdaRunInvoker(lam, ARN).invoke({"x": 1})  # type: ignore[arg-type]
