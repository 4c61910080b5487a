"""The deployment merge template: retries off for the trigger, one table definition, lint-clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.adapters.dynamodb_table import table_definition
from infra.template import merge_template

ROOT = Path(__file__).resolve().parents[2]


def test_the_trigger_function_never_retries_asynchronously() -> None:
    resources = merge_template("prod")["Resources"]
    config = resources["RunTriggerInvokeConfig"]
    assert config["Type"] == "AWS::Lambda::EventInvokeConfig"
    assert config["Properties"]["FunctionName"] == {"Ref": "RunTrigger"}
    assert config["Properties"]["MaximumRetryAttempts"] == 0
    assert "OnFailure" in config["Properties"]["DestinationConfig"]


def test_the_table_is_the_one_definition_the_tests_use() -> None:
    table = merge_template("dev")["Resources"]["AgentcronTable"]["Properties"]
    for key, value in table_definition("agentcron-dev").items():
        assert table[key] == value
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_trigger_lambda_timeout_leaves_room_for_the_run_deadline() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["lambda_functions"]["run_trigger"]["lambda_timeout"] == 900
    env = config["environment_variables"]
    assert int(env["SCHEDULE_MAX_TIMEOUT_SECONDS"]) + int(env["RUN_DEADLINE_MARGIN_SECONDS"]) <= 900


def test_merged_template_passes_cfn_lint(tmp_path: Path) -> None:
    """Merge into a stand-in of ``chalice package``'s SAM output and lint it offline."""
    from cfnlint.api import lint_all

    function: dict[str, Any] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Runtime": "python3.11",
            "Handler": "app.run_trigger",
            "CodeUri": "./deployment.zip",
            "MemorySize": 1024,
            "Timeout": 900,
            "Environment": {"Variables": {"STAGE": "dev"}},
        },
    }
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "RunTrigger": json.loads(json.dumps(function)),
            "APIHandler": json.loads(json.dumps(function)),
            "Reconciler": json.loads(json.dumps(function)),
        },
    }
    merge = merge_template("dev")
    for name, resource in merge["Resources"].items():
        if name in template["Resources"]:
            variables = resource["Properties"]["Environment"]["Variables"]
            template["Resources"][name]["Properties"]["Environment"]["Variables"].update(variables)
        else:
            template["Resources"][name] = resource
    template["Outputs"] = merge["Outputs"]
    problems = [m for m in lint_all(json.dumps(template)) if m.rule.id[0] in ("E", "W")]
    assert problems == [], [str(p) for p in problems]


def test_stage_configuration_uses_the_infra_names() -> None:
    from chalicelib.adapters.dynamodb_table import schedule_group_name, table_name

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage, settings in config["stages"].items():
        env = settings["environment_variables"]
        assert env["TABLE_NAME"] == table_name(stage)
        assert env["SCHEDULE_GROUP"] == schedule_group_name(stage)
