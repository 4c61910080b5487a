"""Alarms, dashboard and tracing in the template as CloudFormation reads it (after the SAM
transform), and the dashboard as moto's CloudFormation created it.

moto's CloudFormation creates no alarms, so they are checked here statically: each
watches a resource of this stack or a metric of the ``agentcron`` namespace (that those
are emitted is ``tests/functional/test_observability.py``'s last test), and notifies the
optional topics.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.observability import Metric
from infra.monitoring import metrics_watched
from tests.deploy.conftest import STAGE, Stack

ALARMS = {
    "SchedulerDeadLetterAlarm",
    "TriggerFailureAlarm",
    "TriggerErrorsAlarm",
    "TriggerThrottlesAlarm",
    "ApiErrorRateAlarm",
    "ApiGateway5xxAlarm",
    "ApiErrorsAlarm",
    "ApiThrottlesAlarm",
    "ReconcilerRepairsAlarm",
    "ReconcilerErrorsAlarm",
    "ReconcilerFailuresAlarm",
    "BudgetExceededRateAlarm",
}


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_alarms_watch_this_stacks_resources_and_emitted_metrics(
    cfn_template: dict[str, Any],
) -> None:
    resources = cfn_template["Resources"]
    alarms = _alarms(cfn_template)
    assert set(alarms) == ALARMS
    queues = {
        r["Properties"]["QueueName"] for r in resources.values() if r["Type"] == "AWS::SQS::Queue"
    }
    functions = {
        r["Properties"]["FunctionName"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    [api] = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    [api_stage] = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Stage" and r["Properties"]["StageName"] != "Stage"
    ]
    # API Gateway names its metrics by the API's name (no id dimension): the name is this
    # stack's, in the Name property and in the definition's title, so whichever wins the
    # dimension matches — and another stage's API in the account is not counted.
    api_name = api["Properties"]["Name"]
    assert api_name == api["Properties"]["Body"]["info"]["title"] == f"agentcron-{STAGE}"
    watched_functions = set()
    for name, alarm in alarms.items():
        watched = metrics_watched(
            {"Resources": {name: {"Type": "AWS::CloudWatch::Alarm", "Properties": alarm}}}
        )
        assert watched, name
        for namespace, metric in watched:
            if namespace == "agentcron":
                assert Metric(metric), name
            elif namespace == "AWS/SQS":
                assert {d["Value"] for d in alarm["Dimensions"]} <= queues, name
            elif namespace == "AWS/ApiGateway":
                assert alarm["Dimensions"] == [
                    {"Name": "ApiName", "Value": api_name},
                    {"Name": "Stage", "Value": api_stage["Properties"]["StageName"]},
                ], name
            else:
                # AWS/Lambda: emitted by Lambda itself for the functions this stack creates.
                assert namespace == "AWS/Lambda", name
                [dimension] = alarm["Dimensions"]
                assert dimension["Name"] == "FunctionName", name
                assert dimension["Value"] in functions, name
                watched_functions.add((metric, dimension["Value"]))
        assert alarm["TreatMissingData"] == "notBreaching"  # an idle stage stays green
        assert alarm["AlarmActions"] == alarm["OKActions"]
        topics = [action["Fn::If"][1] for action in alarm["AlarmActions"]]
        assert topics == [{"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]
        for query in alarm.get("Metrics", []):
            if "MetricStat" in query:
                dims = query["MetricStat"]["Metric"]["Dimensions"]
                assert dims == [{"Name": "stage", "Value": STAGE}], name
    # Every function's failures alarm (an uncaught error, a timeout, out of memory);
    # the request-serving and the firing functions' throttles too.
    assert {f for metric, f in watched_functions if metric == "Errors"} == functions
    assert {f for metric, f in watched_functions if metric == "Throttles"} == {
        resources[logical]["Properties"]["FunctionName"] for logical in ("APIHandler", "RunTrigger")
    }
    topic = resources["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["Subscription"][0]["Protocol"] == "email"


def test_functions_are_traced(cfn_template: dict[str, Any], stack: Stack) -> None:
    for logical in ("APIHandler", "RunTrigger", "Reconciler"):
        properties = cfn_template["Resources"][logical]["Properties"]
        assert properties["TracingConfig"] == {"Mode": "Active"}, logical
    for function, env in stack.environments.items():
        assert env["TRACING"] == "true", function


def test_the_dashboard_is_deployed_with_every_graph(stack: Stack) -> None:
    name = stack.outputs["DashboardName"]
    body = json.loads(stack.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Runs by outcome",
        "Skipped runs by reason",
        "Cost per hour (USD) and tokens",
        "Fire lateness p99 / p50 (s)",
        "Errors",
        "Failure queue depths",
        "API requests and latency p99 (ms)",
        "Run duration p99 / p50 (ms)",
    ]
    assert {w["properties"]["region"] for w in body["widgets"]} == {"us-east-1"}
    lateness = body["widgets"][3]["properties"]["metrics"]
    assert lateness[0] == ["agentcron", "FireLateness", "stage", STAGE, {"stat": "p99"}]
