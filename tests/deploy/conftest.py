"""What ships, under test: the package is built once per session, deployed into moto's
CloudFormation, and its functions run from the unzipped bundle against moto server.

* ``package`` — ``infra.package.build("dev")``, exactly what ``make package`` runs.
* ``moto_url`` — a moto server in its own process (its state cannot be reset by the
  in-process ``mock_aws`` of other tests).
* ``stack`` — the packaged SAM template translated by ``aws-sam-translator`` (what
  CloudFormation's ``AWS::Serverless-2016-10-31`` transform does), its ``CodeUri``
  pointed at the zip uploaded to S3 (what ``sam deploy`` does), deployed with
  ``CreateStack``; names and ARNs are then read from the stack's outputs and from the
  functions CloudFormation created.
* ``functions`` — one :class:`LambdaProcess` per function, started from the unzipped
  zip with the deployed function's own environment.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("bundle_driver.py")
STAGE = "dev"
STACK_NAME = f"agentcron-{STAGE}"
REGION = "us-east-1"
# What Lambda's Python runtime provides besides the standard library (/var/runtime).
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3")
# Resource types moto's CloudFormation cannot create: test_template checks them statically
# and the stack fixture creates what the functions need (the schedule group) itself.
MOTO_UNSUPPORTED = {
    # moto's CloudFormation RestApi ignores the OpenAPI Body, so the Deployment of it
    # fails ("The REST API doesn't contain any methods"); the tests call the API
    # function's handler with API Gateway's proxy events instead.
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Scheduler::ScheduleGroup",
}
OPENAI_KEY_PARAMETER = "/agentcron/dev/openai-api-key"
MOTO_CANNOT_DEPLOY = {"AWS::ApiGateway::RestApi", "AWS::ApiGateway::Deployment"}
FUNCTIONS = {"api": "APIHandler", "run-trigger": "RunTrigger", "reconciler": "Reconciler"}


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from infra.package import build

    return build(STAGE, tmp_path_factory.mktemp("package") / STAGE)


def translate(sam: dict[str, Any], code_uri: str) -> dict[str, Any]:
    """The SAM transform, as CloudFormation applies it (no managed policies are used)."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    template = copy.deepcopy(sam)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION
    try:
        translated: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
    return translated


@pytest.fixture(scope="session")
def sam_template(package: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(package.template.read_text())
    return loaded


@pytest.fixture(scope="session")
def cfn_template(sam_template: dict[str, Any]) -> dict[str, Any]:
    return translate(sam_template, f"s3://{STACK_NAME}-artifacts/deployment.zip")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "MOTO_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        else:  # pragma: no cover - environment problem
            raise RuntimeError("moto server did not start")
        # Lambda in moto without docker: invocations are accepted, not executed (the
        # tests run the bundle themselves).
        request = urllib.request.Request(
            f"{url}/moto-api/config",
            data=json.dumps({"lambda": {"use_docker": False}}).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).read()
        yield url
    finally:
        server.terminate()
        server.wait(10)


def aws_client(service: str, moto_url: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="deployer",
        aws_secret_access_key="deployer",
        region_name=REGION,
    ).client(service, endpoint_url=moto_url)


@dataclass
class Stack:
    moto_url: str
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    environments: dict[str, dict[str, str]]  # function -> its Lambda environment
    function_names: dict[str, str]
    function_arns: dict[str, str]
    handlers: dict[str, str]
    timeouts: dict[str, int]
    role_policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return aws_client(service, self.moto_url)


def _deployable(template: dict[str, Any]) -> dict[str, Any]:
    """The template minus the resource types moto cannot create (and references to them)."""
    out = copy.deepcopy(template)
    dropped = {k for k, v in out["Resources"].items() if v["Type"] in MOTO_UNSUPPORTED}
    for name in dropped:
        del out["Resources"][name]

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("Ref") in dropped:
                return _physical_name_of_dropped(template, node["Ref"])
            if "Fn::Sub" in node:
                sub = node["Fn::Sub"]
                text = sub if isinstance(sub, str) else sub[0]
                for name in dropped:
                    if f"${{{name}}}" in text:
                        text = text.replace(
                            f"${{{name}}}", _physical_name_of_dropped(template, name)
                        )
                return {"Fn::Sub": text if isinstance(sub, str) else [text, scrub(sub[1])]}
            return {k: scrub(v) for k, v in node.items()}
        if isinstance(node, list):
            return [scrub(v) for v in node]
        return node

    for resource in out["Resources"].values():
        depends = resource.get("DependsOn")
        if isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in dropped]
        elif isinstance(depends, str) and depends in dropped:
            del resource["DependsOn"]
    scrubbed: dict[str, Any] = scrub(out)
    return scrubbed


def _physical_name_of_dropped(template: dict[str, Any], logical: str) -> Any:
    resource = template["Resources"][logical]
    if resource["Type"] == "AWS::Scheduler::ScheduleGroup":
        return resource["Properties"]["Name"]  # Ref of a schedule group is its name
    if resource["Type"] == "AWS::ApiGateway::RestApi":
        return "restapi0"  # an id, as API Gateway would assign
    raise AssertionError(f"nothing may reference {logical} ({resource['Type']})")


def _inline_policies(iam: Any, role: str) -> list[dict[str, Any]]:
    """The role's policies as IAM stores them (moto returns a created-by-CloudFormation
    document as the repr of a dict, and keeps ``Fn::If``'s ``AWS::NoValue`` as ``None``)."""
    import ast

    out = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError:
                document = ast.literal_eval(document)
        document["Statement"] = [s for s in document["Statement"] if s is not None]
        out.append(document)
    return out


@pytest.fixture(scope="session")
def stack(package: Any, sam_template: dict[str, Any], moto_url: str) -> Stack:
    s3 = aws_client("s3", moto_url)
    bucket = f"{STACK_NAME}-artifacts"
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(package.bundle), bucket, "deployment.zip")
    translated = translate(sam_template, f"s3://{bucket}/deployment.zip")
    deployable = _deployable(translated)
    cfn = aws_client("cloudformation", moto_url)
    cfn.create_stack(
        StackName=STACK_NAME,
        TemplateBody=json.dumps(deployable),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        Parameters=[
            {"ParameterKey": "OpenAIApiKeyParameter", "ParameterValue": OPENAI_KEY_PARAMETER}
        ],
    )
    described = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
        if r.get("PhysicalResourceId")
    }
    # The one unsupported resource the functions need, created as CloudFormation would.
    group = translated["Resources"]["ScheduleGroup"]["Properties"]["Name"]
    aws_client("scheduler", moto_url).create_schedule_group(Name=group)

    lam = aws_client("lambda", moto_url)
    iam = aws_client("iam", moto_url)
    environments, names, arns, handlers, timeouts, policies = {}, {}, {}, {}, {}, {}
    for function, logical in FUNCTIONS.items():
        config = lam.get_function_configuration(FunctionName=resources[logical])
        environments[function] = dict(config.get("Environment", {}).get("Variables", {}))
        names[function] = config["FunctionName"]
        arns[function] = config["FunctionArn"]
        handlers[function] = config["Handler"]
        timeouts[function] = int(config["Timeout"])
        role = config["Role"].rsplit("/", 1)[1]
        policies[function] = _inline_policies(iam, role)
    policies["scheduler-role"] = _inline_policies(
        iam, outputs["SchedulerRoleArn"].rsplit("/", 1)[1]
    )
    return Stack(
        moto_url=moto_url,
        outputs=outputs,
        resources=resources,
        environments=environments,
        function_names=names,
        function_arns=arns,
        handlers=handlers,
        timeouts=timeouts,
        role_policies=policies,
    )


@pytest.fixture(scope="session")
def unzipped(package: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    task = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(package.bundle) as archive:
        archive.extractall(task)
    return task


@pytest.fixture(scope="session")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only what Lambda's runtime adds to the standard library: boto3 and its dependencies."""
    import importlib.util

    runtime = tmp_path_factory.mktemp("var-runtime")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    return runtime


class LambdaProcess:
    """One warm Lambda container of a function, running the unzipped bundle."""

    def __init__(
        self, function: str, stack: Stack, bundle: Path, runtime: Path, extra_env: dict[str, str]
    ) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_ACCESS_KEY_ID": f"{function}-role",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": stack.function_names[function],
            "AGENTCRON_FUNCTION_ARN": stack.function_arns[function],
            "AGENTCRON_FUNCTION": function,
            "AGENTCRON_TIMEOUT_MS": str(stack.timeouts[function] * 1000),
            "AWS_ENDPOINT_URL": stack.moto_url,
            **stack.environments[function],
            **extra_env,
        }
        self.function = function
        handler = stack.handlers[function]
        self.log = tempfile.NamedTemporaryFile(prefix=f"{function}-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(DRIVER), str(bundle), str(runtime), handler],
            env=env,
            cwd=str(bundle),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.calls: list[dict[str, Any]] = []
        self.last: dict[str, Any] = {}

    def invoke(self, event: dict[str, Any]) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"event": event}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(10)
            raise AssertionError(f"{self.function} process died:\n{self.output()}")
        reply: dict[str, Any] = json.loads(line)
        self.last = reply
        self.calls.extend(reply["calls"])
        if "error" in reply:
            raise AssertionError(f"{self.function} handler raised:\n{reply['error']}")
        return reply["result"]

    def output(self) -> str:
        """What the function logged (its CloudWatch stream)."""
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="session")
def functions(
    stack: Stack, unzipped: Path, runtime_dir: Path
) -> Iterator[dict[str, LambdaProcess]]:
    processes = {f: LambdaProcess(f, stack, unzipped, runtime_dir, {}) for f in FUNCTIONS}
    yield processes
    for process in processes.values():
        process.close()
