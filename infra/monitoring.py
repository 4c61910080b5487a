"""Alarms, the dashboard and their notification topic, for the merge template.

Every alarm watches either an AWS metric of a resource this stack creates (the two
failure queues, the three functions, the REST API) or a metric agentcron itself emits as EMF
(namespace ``agentcron``, dimension ``stage`` — see ``chalicelib.observability``); a
test checks that each of the latter is one the code emits, so no alarm can watch a
metric nobody writes. What each alarm means and what to do is in the README
("Operating agentcron").

Notifications: alarms notify ``AlarmTopicArn`` (an existing SNS topic) when it is set,
and a topic of this stack when ``AlarmEmail`` is set (CloudFormation subscribes the
address; the recipient confirms once). With neither, the alarms still show in the
console and on the dashboard.

API Gateway publishes its metrics by API *name* and stage (a REST API has no id
dimension), so the stack names its API after itself (:func:`api_name`, set in
``infra.template``): a dev and a prod stack in one account never share the alarm.
Its ``5XXError`` sees what the function's own ``Api5xx`` cannot: the integration
timing out at 29 s, the function crashing or throttled, a malformed proxy response.

Missing data is *not breaching* everywhere: a queue or a function with nothing to do
publishes nothing, and an idle stage must stay green.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.observability import NAMESPACE, Metric
from infra import policies
from infra.policies import function_name

HAS_ALARM_TOPIC = "HasAlarmTopicArn"
HAS_ALARM_EMAIL = "HasAlarmEmail"
FIVE_MINUTES = 300
API_STAGE_NAME = "api"
"""``api_gateway_stage`` of the deployed stages in ``.chalice/config.json``."""
ONE_HOUR = 3600

RUN_OUTCOMES = (
    Metric.RUNS_COMPLETED,
    Metric.RUNS_FAILED,
    Metric.RUNS_TIMED_OUT,
    Metric.RUNS_BUDGET_EXCEEDED,
)


def parameters() -> dict[str, Any]:
    return {
        "AlarmTopicArn": {
            "Type": "String",
            "Default": "",
            "Description": "An existing SNS topic the alarms notify (empty: none).",
            "AllowedPattern": "^$|^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$",
        },
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "Description": "An e-mail address subscribed to this stack's alarm topic "
            "(empty: no topic is created).",
            "AllowedPattern": "^$|^[^@\\s]+@[^@\\s]+$",
        },
        "ApiErrorRatePercent": {
            "Type": "Number",
            "Default": 5,
            "MinValue": 0,
            "MaxValue": 100,
            "Description": "Alarm when more than this % of API requests answer 5xx (5 min).",
        },
        "BudgetExceededRatePercent": {
            "Type": "Number",
            "Default": 20,
            "MinValue": 0,
            "MaxValue": 100,
            "Description": "Alarm when more than this % of finished runs hit their budget (1 h).",
        },
    }


def conditions() -> dict[str, Any]:
    return {
        HAS_ALARM_TOPIC: {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]},
        HAS_ALARM_EMAIL: {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
    }


def _actions() -> list[Any]:
    return [
        {"Fn::If": [HAS_ALARM_TOPIC, {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]},
        {"Fn::If": [HAS_ALARM_EMAIL, {"Ref": "AlarmTopic"}, {"Ref": "AWS::NoValue"}]},
    ]


def _alarm(name: str, description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": _actions(),
            "OKActions": _actions(),
            "TreatMissingData": "notBreaching",
            **properties,
        },
    }


def api_name(stage: str) -> str:
    """The REST API's name: API Gateway's ``ApiName`` metric dimension."""
    return policies.prefix(stage)


def _threshold_alarm(
    name: str,
    description: str,
    *,
    namespace: str,
    metric: str,
    dimensions: dict[str, Any],
    statistic: str,
    period: int,
    threshold: float = 0,
    evaluation_periods: int = 1,
    datapoints: int = 1,
) -> dict[str, Any]:
    return _alarm(
        name,
        description,
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        Statistic=statistic,
        Period=period,
        EvaluationPeriods=evaluation_periods,
        DatapointsToAlarm=datapoints,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
    )


def _own(metric: Metric, stage: str, period: int, label: str) -> dict[str, Any]:
    return {
        "Id": label,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": metric.value,
                "Dimensions": [{"Name": "stage", "Value": stage}],
            },
            "Period": period,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }


def _rate_alarm(
    name: str,
    description: str,
    *,
    expression: str,
    inputs: list[dict[str, Any]],
    threshold: dict[str, str],
) -> dict[str, Any]:
    return _alarm(
        name,
        description,
        Metrics=[
            *inputs,
            {"Id": "rate", "Expression": expression, "Label": "percent", "ReturnData": True},
        ],
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
    )


def alarms(stage: str, prefix: str, trigger_function: str) -> dict[str, Any]:
    def queue_alarm(queue: str, what: str) -> dict[str, Any]:
        return _threshold_alarm(
            f"{prefix}-{queue}-not-empty",
            f"{what} Run `python -m chalicelib.admin failed-fires --stage {stage}`, fix the "
            f"cause, then `… redrive --stage {stage}`.",
            namespace="AWS/SQS",
            metric="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": f"{prefix}-{queue}"},
            statistic="Maximum",
            period=FIVE_MINUTES,
        )

    def lambda_alarm(function: str, metric: str, description: str) -> dict[str, Any]:
        return _threshold_alarm(
            f"{prefix}-{function}-{metric.lower()}",
            description,
            namespace="AWS/Lambda",
            metric=metric,
            dimensions={"FunctionName": function_name(stage, function)},
            statistic="Sum",
            period=FIVE_MINUTES,
        )

    lambda_dims = {"FunctionName": trigger_function}
    outcome_ids = {m: f"o{i}" for i, m in enumerate(RUN_OUTCOMES)}
    finished = " + ".join(f"FILL({i}, 0)" for i in outcome_ids.values())
    return {
        "SchedulerDeadLetterAlarm": queue_alarm(
            "scheduler-dlq",
            "EventBridge Scheduler could not invoke the trigger (throttling, permissions, "
            "a missing function) and gave up on fires.",
        ),
        "TriggerFailureAlarm": queue_alarm(
            "trigger-failures",
            "Trigger invocations failed (an AWS error, out of memory, killed by the timeout).",
        ),
        "TriggerErrorsAlarm": _threshold_alarm(
            f"{prefix}-trigger-errors",
            "The trigger Lambda raised or timed out; each failed fire is in the failure "
            "queue. Check the function's logs (level ERROR).",
            namespace="AWS/Lambda",
            metric="Errors",
            dimensions=lambda_dims,
            statistic="Sum",
            period=FIVE_MINUTES,
        ),
        "TriggerThrottlesAlarm": _threshold_alarm(
            f"{prefix}-trigger-throttles",
            "The trigger Lambda was throttled (reserved or account concurrency): fires are "
            "retried by the Scheduler and land in its dead-letter queue if that fails.",
            namespace="AWS/Lambda",
            metric="Throttles",
            dimensions=lambda_dims,
            statistic="Sum",
            period=FIVE_MINUTES,
        ),
        "ApiErrorRateAlarm": _rate_alarm(
            f"{prefix}-api-5xx-rate",
            "More API requests than ApiErrorRatePercent answered 5xx (503: DynamoDB or the "
            "Scheduler refused a write, which was rolled back; 500: a bug, see the logs).",
            expression="100 * FILL(e, 0) / r",
            inputs=[
                _own(Metric.API_5XX, stage, FIVE_MINUTES, "e"),
                _own(Metric.API_REQUESTS, stage, FIVE_MINUTES, "r"),
            ],
            threshold={"Ref": "ApiErrorRatePercent"},
        ),
        "ApiGateway5xxAlarm": _threshold_alarm(
            f"{prefix}-api-gateway-5xx",
            "API Gateway answered 5xx: besides the function's own 5xx (ApiErrorRateAlarm), "
            "the integration timed out (29 s), the function crashed or was throttled. Check "
            "ApiErrorsAlarm / ApiThrottlesAlarm and the API function's logs.",
            namespace="AWS/ApiGateway",
            metric="5XXError",
            dimensions={"ApiName": api_name(stage), "Stage": API_STAGE_NAME},
            statistic="Sum",
            period=FIVE_MINUTES,
        ),
        "ApiErrorsAlarm": lambda_alarm(
            "api",
            "Errors",
            "The API function failed an invocation (timed out, out of memory, crashed "
            "outside the routes): the client got a 5xx from API Gateway. See its logs.",
        ),
        "ApiThrottlesAlarm": lambda_alarm(
            "api",
            "Throttles",
            "The API function was throttled (account concurrency, or runs using it all: "
            "set TriggerReservedConcurrency): clients got 5xx.",
        ),
        "ReconcilerErrorsAlarm": lambda_alarm(
            "reconciler",
            "Errors",
            "The reconciler's invocation failed (timed out, out of memory, crashed): no "
            "drift is repaired and no stuck run is ended until it runs again. See its logs.",
        ),
        "ReconcilerFailuresAlarm": _threshold_alarm(
            f"{prefix}-reconciler-sweep-errors",
            "In two of the last three 5-minute windows (each holds one drift sweep and five "
            "stuck-run sweeps) a reconciler sweep could not repair something (a part of "
            "the sweep or one record failed: ReconcilerErrors); drift stays until it "
            "succeeds. The reconciler's ERROR logs name the part or the record.",
            namespace=NAMESPACE,
            metric=Metric.RECONCILER_ERRORS.value,
            dimensions={"stage": stage},
            statistic="Sum",
            period=FIVE_MINUTES,
            evaluation_periods=3,
            datapoints=2,
        ),
        "ReconcilerRepairsAlarm": _threshold_alarm(
            f"{prefix}-reconciler-repairs",
            "The reconciler repaired drift (stuck runs, missing, wrong or orphan Scheduler "
            "entries): something failed between two writes. Find the cause in the logs.",
            namespace=NAMESPACE,
            metric=Metric.RECONCILER_REPAIRS.value,
            dimensions={"stage": stage},
            statistic="Sum",
            period=FIVE_MINUTES * 3,
        ),
        "BudgetExceededRateAlarm": _rate_alarm(
            f"{prefix}-budget-exceeded-rate",
            "More finished runs than BudgetExceededRatePercent hit their budget (their "
            "schedules are paused): budgets too low, prices changed, or a runaway agent.",
            expression=f"100 * FILL({outcome_ids[Metric.RUNS_BUDGET_EXCEEDED]}, 0) / ({finished})",
            inputs=[_own(m, stage, ONE_HOUR, i) for m, i in outcome_ids.items()],
            threshold={"Ref": "BudgetExceededRatePercent"},
        ),
    }


def alarm_topic() -> dict[str, Any]:
    return {
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            "Condition": HAS_ALARM_EMAIL,
            "Properties": {
                "Subscription": [{"Endpoint": {"Ref": "AlarmEmail"}, "Protocol": "email"}],
            },
        }
    }


def _own_metrics(stage: str, names: list[Metric], stat: str = "Sum") -> list[list[Any]]:
    return [[NAMESPACE, m.value, "stage", stage, {"stat": stat}] for m in names]


def dashboard_body(stage: str, prefix: str, trigger_function: str) -> dict[str, Any]:
    region = "${AWS::Region}"

    def widget(title: str, metrics: list[list[Any]], x: int, y: int, **extra: Any) -> Any:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "period": FIVE_MINUTES,
                "metrics": metrics,
                **extra,
            },
        }

    skipped = [
        Metric.RUNS_SKIPPED_OVERLAP,
        Metric.RUNS_SKIPPED_PAUSED,
        Metric.RUNS_SKIPPED_ENDED,
        Metric.RUNS_SKIPPED_STALE,
        Metric.RUNS_SKIPPED_LATE,
    ]
    queues = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"{prefix}-{q}"]
        for q in ("scheduler-dlq", "trigger-failures")
    ]
    errors: list[list[Any]] = [
        *(
            ["AWS/Lambda", metric, "FunctionName", function, {"stat": "Sum"}]
            for function in (
                trigger_function,
                function_name(stage, "api"),
                function_name(stage, "reconciler"),
            )
            for metric in ("Errors", "Throttles")
        ),
        ["AWS/ApiGateway", "5XXError", "ApiName", api_name(stage), "Stage", API_STAGE_NAME],
        *_own_metrics(
            stage,
            [
                Metric.API_5XX,
                Metric.API_4XX,
                Metric.WEBHOOK_FAILURES,
                Metric.FIRES_DROPPED,
                Metric.RECONCILER_REPAIRS,
                Metric.RECONCILER_ERRORS,
            ],
        ),
    ]
    return {
        "widgets": [
            widget(
                "Runs by outcome",
                _own_metrics(stage, [*RUN_OUTCOMES, Metric.RUNS_SKIPPED, Metric.FIRES_DUPLICATE]),
                0,
                0,
                stacked=True,
            ),
            widget("Skipped runs by reason", _own_metrics(stage, skipped), 12, 0, stacked=True),
            widget(
                "Cost per hour (USD) and tokens",
                [
                    *_own_metrics(stage, [Metric.RUN_COST]),
                    [
                        *_own_metrics(stage, [Metric.RUN_TOKENS])[0][:4],
                        {"stat": "Sum", "yAxis": "right"},
                    ],
                ],
                0,
                6,
                period=ONE_HOUR,
            ),
            widget(
                "Fire lateness p99 / p50 (s)",
                [
                    *_own_metrics(stage, [Metric.FIRE_LATENESS], "p99"),
                    *_own_metrics(stage, [Metric.FIRE_LATENESS], "p50"),
                ],
                12,
                6,
            ),
            widget("Errors", errors, 0, 12),
            widget("Failure queue depths", queues, 12, 12, stat="Maximum"),
            widget(
                "API requests and latency p99 (ms)",
                [
                    *_own_metrics(stage, [Metric.API_REQUESTS]),
                    [NAMESPACE, Metric.API_LATENCY.value, "stage", stage, {"stat": "p99"}],
                ],
                0,
                18,
            ),
            widget(
                "Run duration p99 / p50 (ms)",
                [
                    *_own_metrics(stage, [Metric.RUN_DURATION], "p99"),
                    *_own_metrics(stage, [Metric.RUN_DURATION], "p50"),
                ],
                12,
                18,
            ),
        ]
    }


def dashboard(stage: str, prefix: str, trigger_function: str) -> dict[str, Any]:
    body = json.dumps(dashboard_body(stage, prefix, trigger_function), separators=(",", ":"))
    return {
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {"DashboardName": prefix, "DashboardBody": {"Fn::Sub": body}},
        }
    }


def resources(stage: str, prefix: str, trigger_function: str) -> dict[str, Any]:
    return {
        **alarms(stage, prefix, trigger_function),
        **alarm_topic(),
        **dashboard(stage, prefix, trigger_function),
    }


def metrics_watched(template: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric name) of every alarm and dashboard graph in a template."""
    found: set[tuple[str, str]] = set()
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::CloudWatch::Alarm":
            if "MetricName" in props:
                found.add((props["Namespace"], props["MetricName"]))
            for query in props.get("Metrics", []):
                metric = query.get("MetricStat", {}).get("Metric")
                if metric:
                    found.add((metric["Namespace"], metric["MetricName"]))
        elif resource.get("Type") == "AWS::CloudWatch::Dashboard":
            body = props["DashboardBody"]
            text = body["Fn::Sub"] if isinstance(body, dict) else body
            for widget in json.loads(text)["widgets"]:
                for row in widget["properties"].get("metrics", []):
                    found.add((row[0], row[1]))
    return found
