"""The template as CloudFormation reads it: Chalice's packaged SAM template, translated
by ``aws-sam-translator``, lint-clean, acyclic, deployed into moto's CloudFormation, and
each resource moto cannot create checked here statically."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.adapters.dynamodb_table import TTL_ATTRIBUTE, table_definition
from tests.deploy.conftest import MOTO_CANNOT_DEPLOY, MOTO_UNSUPPORTED, STAGE, Stack

ROOT = Path(__file__).resolve().parents[2]


def _lint(template: dict[str, Any], tmp: Path) -> list[str]:
    """cfn-lint's command line, as a developer runs it (its Python ``lint_all`` took
    minutes on this template where the CLI takes a second)."""
    path = tmp / "template.json"
    path.write_text(json.dumps(template))
    done = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    matches = json.loads(done.stdout or "[]")
    return [f"{m['Rule']['Id']}: {m['Message']}" for m in matches if m["Level"] != "Informational"]


def test_the_translated_template_lints_clean(
    sam_template: dict[str, Any], cfn_template: dict[str, Any], tmp_path: Path
) -> None:
    assert _lint(cfn_template, tmp_path) == []  # what CloudFormation runs, after the transform
    assert _lint(sam_template, tmp_path) == []


def test_every_path_parameter_is_declared(cfn_template: dict[str, Any]) -> None:
    """The OpenAPI body API Gateway imports declares every ``{name}`` — and every greedy
    ``{name+}`` of the façades' 404/405 catch-alls, named without its ``+`` as API
    Gateway's proxy resources are — in every operation of its path; the body is then
    valid Swagger 2.0 (greedy segments read as plain ones: the validator does not know
    API Gateway's ``+``)."""
    from openapi_spec_validator import validate

    api = next(
        r for r in cfn_template["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"
    )
    body = api["Properties"]["Body"]
    undeclared = []
    greedy = 0
    for path, item in body["paths"].items():
        names = re.findall(r"\{(\w+)\+?\}", path)
        greedy += "+}" in path
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            undeclared += [f"{method} {path}: {n}" for n in names if n not in declared]
    assert undeclared == []
    assert greedy >= 2  # both façades have catch-alls, so the check above covered them
    validate(json.loads(json.dumps(body).replace("+}", "}")))


def _references(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if "Ref" in node:
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in node:
            sub = node["Fn::Sub"]
            text = sub if isinstance(sub, str) else sub[0]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
        for value in node.values():
            found |= _references(value)
    elif isinstance(node, list):
        for value in node:
            found |= _references(value)
    return found


def test_no_resource_depends_on_itself(cfn_template: dict[str, Any]) -> None:
    """cfn-lint's E3004 says the same; this is the graph, checked independently."""
    resources = cfn_template["Resources"]
    graph = {
        name: (_references(r.get("Properties", {})) | set(_as_list(r.get("DependsOn", []))))
        & set(resources)
        for name, r in resources.items()
    }
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        assert node not in visiting, f"cycle: {' -> '.join([*path, node])}"
        if node in done:
            return
        visiting.add(node)
        for nxt in graph[node]:
            visit(nxt, [*path, node])
        visiting.discard(node)
        done.add(node)

    for name in graph:
        visit(name, [])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_what_moto_cannot_create_is_checked_statically(cfn_template: dict[str, Any]) -> None:
    from moto.cloudformation.parsing import resource_class_from_type

    resources = cfn_template["Resources"]
    types = {r["Type"] for r in resources.values()}
    missing = {t for t in types if resource_class_from_type(t) is None}
    assert missing | MOTO_CANNOT_DEPLOY == MOTO_UNSUPPORTED

    # moto's CloudFormation ignores the table's TTL specification.
    ttl = resources["AgentcronTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    invoke_config = resources["RunTriggerInvokeConfig"]["Properties"]
    assert invoke_config["FunctionName"] == {"Ref": "RunTrigger"}
    assert invoke_config["MaximumRetryAttempts"] == 0  # a retried run would spend twice
    destination = invoke_config["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["TriggerFailureQueue", "Arn"]}
    assert resources["ScheduleGroup"]["Properties"] == {"Name": f"agentcron-{STAGE}"}
    api = next(r for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi")
    paths = api["Properties"]["Body"]["paths"]
    assert {"/api/v1/schedules", "/runs/crons", "/runs/crons/{cron_id}"} <= set(paths)
    stage = next(r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage")
    throttling = stage["Properties"]["MethodSettings"][0]
    assert throttling["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert throttling["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert stage["Properties"]["StageName"] == "api"


def test_the_stack_creates_what_the_functions_are_told(stack: Stack) -> None:
    out = stack.outputs
    for function, env in stack.environments.items():
        assert env["TABLE_NAME"] == out["TableName"] == f"agentcron-{STAGE}", function
        assert env["SCHEDULE_GROUP"] == out["ScheduleGroupName"]
        assert env["SCHEDULER_ROLE_ARN"] == out["SchedulerRoleArn"]
        assert env["SCHEDULER_DLQ_ARN"] == out["SchedulerDeadLetterQueueArn"]
        # Run now and the Scheduler target invoke the function CloudFormation created.
        assert env["TRIGGER_FUNCTION_ARN"] == stack.function_arns["run-trigger"]
        assert "OPENAI_API_KEY" not in env  # secrets are read at run time, by name
    table = stack.client("dynamodb").describe_table(TableName=out["TableName"])["Table"]
    definition = table_definition(out["TableName"])
    assert table["KeySchema"] == definition["KeySchema"]
    assert sorted(g["IndexName"] for g in table["GlobalSecondaryIndexes"]) == sorted(
        g["IndexName"] for g in definition["GlobalSecondaryIndexes"]
    )
    groups = stack.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/agentcron")
    retention = {g["logGroupName"]: g.get("retentionInDays") for g in groups["logGroups"]}
    assert retention == {f"/aws/lambda/{name}": 30 for name in stack.function_names.values()}


def test_the_api_function_answers_within_api_gateways_29_seconds(stack: Stack) -> None:
    """A request's AWS calls cannot be bounded by a count (an update under contention
    retries and converges: 64 calls at the very worst, see chalicelib/observability.py), so
    the API function has a request deadline. With the deployed settings: every call that
    starts can end (with all its attempts timing out and the backoff) before the Lambda
    timeout, and a forward call starts only if a 3-call rollback still fits after it —
    which leaves a request a useful window for its forward calls."""
    from chalicelib.observability import DEADLINE_MARGIN_SECONDS as MARGIN_SECONDS
    from chalicelib.observability import ROLLBACK_CALLS

    env = stack.environments["api"]
    assert env["API_REQUEST_DEADLINE"] == "true"
    attempts = int(env["AWS_MAX_ATTEMPTS"])
    per_attempt = float(env["AWS_CONNECT_TIMEOUT_SECONDS"]) + float(env["AWS_READ_TIMEOUT_SECONDS"])
    # botocore's standard retry mode waits at most 1, 2, 4 … s before the 2nd, 3rd … attempt.
    backoff = sum(min(2**n, 20) for n in range(attempts - 1))
    call = attempts * per_attempt + backoff
    timeout = stack.timeouts["api"]
    assert timeout < 29
    assert call + MARGIN_SECONDS <= timeout  # a compensating call always ends in time
    forward_window = timeout - ((1 + ROLLBACK_CALLS) * call + MARGIN_SECONDS)
    assert forward_window >= 5, forward_window  # forward calls may start for ≥ 5 s
    # The other functions run without a request deadline and with patient clients.
    for function in ("run-trigger", "reconciler"):
        assert "API_REQUEST_DEADLINE" not in stack.environments[function]


def test_production_defaults(stack: Stack) -> None:
    from infra.template import merge_template

    prod = merge_template("prod")
    default = prod["Parameters"]["DefaultAssistant"]["Default"]
    registry = json.loads((ROOT / "chalicelib" / "agents" / "assistants.json").read_text())
    assert registry[default]["agent"] not in ("demo",)
    assert prod["Resources"]["RunTrigger"]["Properties"]["Environment"]["Variables"][
        "DEFAULT_ASSISTANT"
    ] == {"Ref": "DefaultAssistant"}
    config = (ROOT / ".chalice" / "config.json").read_text()
    assert 'OPENAI_API_KEY"' not in config and "sk-" not in config
    assert stack.environments["run-trigger"]["OPENAI_API_KEY_PARAMETER"].startswith("/")


def test_the_package_ships_no_dev_dependency(package: Any) -> None:
    from infra.package import FORBIDDEN, MAX_ZIP_BYTES

    assert package.bundle.stat().st_size <= MAX_ZIP_BYTES
    shipped = {name.removesuffix(".py").lower() for name in package.top_level()}
    assert not shipped & set(FORBIDDEN)
    assert {"app", "chalicelib", "pydantic", "croniter", "aws_lambda_powertools"} <= shipped


def test_stage_configuration_uses_the_table_module_names() -> None:
    from chalicelib.adapters.dynamodb_table import schedule_group_name, table_name

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage, settings in config["stages"].items():
        env = settings["environment_variables"]
        assert env["TABLE_NAME"] == table_name(stage)
        assert env["SCHEDULE_GROUP"] == schedule_group_name(stage)


def test_the_openai_key_parameter_takes_only_what_the_trigger_may_read() -> None:
    """The trigger's role may read the named SSM parameter (``ssm:GetParameter`` on its
    ARN) and nothing else. A Secrets Manager secret read through SSM's bridge
    (``/aws/reference/secretsmanager/<id>``) would also need
    ``secretsmanager:GetSecretValue`` on the secret, which the role does not have: the
    parameter refuses such names at deploy time rather than failing every run."""
    from infra.policies import OPENAI_KEY_PARAMETER
    from infra.template import parameters

    pattern = parameters("prod")[OPENAI_KEY_PARAMETER]["AllowedPattern"]
    allowed = ("", "/agentcron/prod/openai-api-key", "/team/awsome/key", "/a")
    refused = (
        "/aws/reference/secretsmanager/openai",
        "/aws/service/ami-amazon-linux-latest/x",
        "openai-key",
        "/bad name",
    )
    assert all(re.fullmatch(pattern, name) for name in allowed)
    assert not any(re.fullmatch(pattern, name) for name in refused)
