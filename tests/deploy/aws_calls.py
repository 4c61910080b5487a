"""Which AWS operations each function performs, recorded with botocore's own hooks.

Standard library only: the bundle driver loads this file by path inside a Lambda-like
interpreter that has nothing but the bundle and boto3/botocore.

Every botocore client created in a process gets :func:`initialize_client_plugin`
through botocore's client-plugin hook (``BOTOCORE_EXPERIMENTAL__PLUGINS`` =
``name=module``; set in ``tests/conftest.py`` for the suite and by the bundle driver
for itself), which registers a ``before-parameter-build`` handler. That event fires
before botocore's Stubber and before any request is sent, so calls answered by a Stubber
(the Bedrock tests) are recorded too.

Each call becomes the IAM requests AWS authorises for it — :func:`iam_requests`: an
action, a resource ARN and the request context keys we use in conditions — e.g.
``TransactWriteItems`` is authorised per item as ``PutItem`` / ``UpdateItem`` /
``DeleteItem`` / ``ConditionCheckItem`` on that item's table, and a ``CreateSchedule``
also passes the Scheduler role (``iam:PassRole``) and commits the Scheduler execution
role to invoking its target and writing to its dead-letter queue.

In the suite (one process plays every function), a call is attributed to the function
whose entry point is the innermost one on the stack: the trigger handler, an agent or a
run's heartbeat →
``run-trigger``; the reconciler → ``reconciler``; a façade view → ``api``. Calls made
by test set-up, the admin CLI or the local dispatcher belong to no function.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

PARTITION = "aws"
ACCOUNT = "123456789012"  # moto's default account

# (path fragment of a frame's file [#its function], Lambda function) — first match walking
# outwards wins. The trigger's body is ``RunExecutor.execute`` (``services/runs.py`` also
# holds ``RunService``, which the API calls).
ENTRY_POINTS = (
    ("/chalicelib/services/runs.py#execute", "run-trigger"),
    ("/chalicelib/agents/", "run-trigger"),
    ("/chalicelib/services/runs.py#_beat", "run-trigger"),  # a run's heartbeat thread
    ("/chalicelib/services/reconciler.py", "reconciler"),
    ("/chalicelib/api/", "api"),
)
SCHEDULER_ROLE = "scheduler-role"

_lock = threading.Lock()
RECORDED: list[dict[str, Any]] = []
FUNCTION: str | None = None
"""Set by a process that plays exactly one function (the bundle driver)."""


def entry_point() -> str | None:
    if FUNCTION is not None:
        return FUNCTION
    frame: Any = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename.replace("\\", "/")
        for fragment, function in ENTRY_POINTS:
            path, _, name = fragment.partition("#")
            if path in filename and (not name or frame.f_code.co_name == name):
                return function
        frame = frame.f_back
    return None


def _record(params: Any, model: Any, **_: Any) -> None:
    function = entry_point()
    if function is None:
        return
    service = model.service_model.service_id.hyphenize()
    region = getattr(model, "_agentcron_region", None)
    entry = {
        "function": function,
        "service": service,
        "operation": model.name,
        "params": _slim(params),
        "region": region,
    }
    with _lock:
        RECORDED.append(entry)


def initialize_client_plugin(client: Any) -> None:
    region = client.meta.region_name

    def hook(params: Any, model: Any, **kwargs: Any) -> None:
        model._agentcron_region = region
        _record(params, model, **kwargs)

    client.meta.events.register("before-parameter-build.*.*", hook)


def _slim(params: Any) -> dict[str, Any]:
    """Only what resources are derived from (no item payloads)."""
    keep = (
        "TableName",
        "IndexName",
        "Name",
        "GroupName",
        "FunctionName",
        "modelId",
        "QueueUrl",
        "Names",
    )
    out: dict[str, Any] = {k: params[k] for k in keep if k in params}
    if "RequestItems" in params:
        out["RequestItems"] = sorted(params["RequestItems"])
    if "TransactItems" in params:
        out["TransactItems"] = [
            {kind: {"TableName": body.get("TableName")} for kind, body in item.items()}
            for item in params["TransactItems"]
        ]
    target = params.get("Target")
    if isinstance(target, dict):
        out["Target"] = {
            "Arn": target.get("Arn"),
            "RoleArn": target.get("RoleArn"),
            "DeadLetterArn": (target.get("DeadLetterConfig") or {}).get("Arn"),
        }
    return out


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def iam_requests(
    call: dict[str, Any], *, account: str = ACCOUNT
) -> list[tuple[str, str, str, dict[str, str]]]:
    """(principal, action, resource, context) for one recorded call."""
    who, service, op, p = call["function"], call["service"], call["operation"], call["params"]
    region = call.get("region") or "us-east-1"
    out: list[tuple[str, str, str, dict[str, str]]] = []

    def add(action: str, resource: str, context: dict[str, str] | None = None) -> None:
        out.append((who, action, resource, context or {}))

    if service == "dynamodb":

        def table(name: str, index: str | None = None) -> str:
            arn = _arn("dynamodb", region, account, f"table/{name}")
            return f"{arn}/index/{index}" if index else arn

        if op in ("TransactWriteItems", "TransactGetItems"):
            actions = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
                "Get": "GetItem",
            }
            for item in p.get("TransactItems", []):
                for kind, body in item.items():
                    add(f"dynamodb:{actions[kind]}", table(body["TableName"]))
        elif op in ("BatchGetItem", "BatchWriteItem"):
            for name in p.get("RequestItems", []):
                add(f"dynamodb:{op}", table(name))
        else:
            add(f"dynamodb:{op}", table(p["TableName"], p.get("IndexName")))
    elif service == "scheduler":
        if op == "ListSchedules":
            add("scheduler:ListSchedules", "*")
        else:
            group = p.get("GroupName") or "default"
            add(
                f"scheduler:{op}",
                _arn("scheduler", region, account, f"schedule/{group}/{p['Name']}"),
            )
        target = p.get("Target")
        if target:
            add(
                "iam:PassRole",
                target["RoleArn"],
                {"iam:PassedToService": "scheduler.amazonaws.com"},
            )
            # What the Scheduler will do with that role when the schedule fires.
            out.append((SCHEDULER_ROLE, "lambda:InvokeFunction", target["Arn"], {}))
            if target.get("DeadLetterArn"):
                out.append((SCHEDULER_ROLE, "sqs:SendMessage", target["DeadLetterArn"], {}))
    elif service == "lambda" and op == "Invoke":
        name = p["FunctionName"]
        arn = (
            name if name.startswith("arn:") else _arn("lambda", region, account, f"function:{name}")
        )
        add("lambda:InvokeFunction", arn)
    elif service == "ssm" and op == "GetParameter":
        name = p["Name"]
        add(
            "ssm:GetParameter",
            _arn(
                "ssm", region, account, "parameter" + ("" if name.startswith("/") else "/") + name
            ),
        )
    elif service == "bedrock-runtime":
        action = {"ConverseStream": "InvokeModelWithResponseStream"}.get(op, "InvokeModel")
        model = p["modelId"]
        arn = (
            model
            if model.startswith("arn:")
            else f"arn:{PARTITION}:bedrock:{region}::foundation-model/{model}"
        )
        add(f"bedrock:{action}", arn)
    elif service == "sqs" and op == "SendMessage":
        _, _, host_path = p["QueueUrl"].partition("://")
        parts = host_path.split("/")
        add("sqs:SendMessage", _arn("sqs", region, parts[-2], parts[-1]))
    else:
        add(f"{service}:{op}", "*")
    return out
