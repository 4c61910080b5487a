"""The Lambda bundle as shipped: ``deployment.zip`` unzipped into an empty directory and
run by an isolated interpreter that has only that directory and boto3/botocore (as
Lambda's runtime has), with each function's environment exactly as CloudFormation
created it, against the stack deployed into moto server.

This is the smoke scenario of ``make smoke`` on the stack's own resources: a key minted
with the admin command against the stack's table, both façades driven through API
Gateway proxy events (create, list, get, pause, resume, run now, delete), a real run
fired by an EventBridge Scheduler delivery of the registered ``Input`` (demo agent,
history row written, cost booked), and the reconciler's scheduled event repairing
drift. Every AWS call the three processes make is recorded for ``test_iam.py``.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.deploy.conftest import REGION, LambdaProcess, Stack
from tests.deploy.events import api_event, rule_event, scheduler_event


class Api:
    def __init__(self, process: LambdaProcess, openapi: dict[str, Any], key: str) -> None:
        self.process, self.openapi, self.key = process, openapi, key

    def __call__(
        self, method: str, path: str, body: Any = None, *, header: str = "bearer"
    ) -> tuple[int, Any]:
        auth = (
            {"Authorization": f"Bearer {self.key}"}
            if header == "bearer"
            else {"x-api-key": self.key}
        )
        response = self.process.invoke(
            api_event(self.openapi, method, path, body=body, headers=auth)
        )
        text = response.get("body") or ""
        return response["statusCode"], (json.loads(text) if text else None)


def _admin_env(stack: Stack) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": stack.moto_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }


def test_the_bundle_imports_nothing_but_itself_and_the_runtime(
    functions: dict[str, LambdaProcess],
    unzipped: Path,
    runtime_dir: Path,
    sam_template: dict[str, Any],
) -> None:
    api = functions["api"]
    openapi = sam_template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    # /ok needs no key and no AWS call: the cheapest full trip through the app.
    assert api.invoke(api_event(openapi, "GET", "/ok"))["statusCode"] == 200
    # The catch-all {proxy+} resources answer in each façade's own envelope.
    for path, envelope in (
        ("/no/such/route", {"detail": "Not Found"}),
        ("/api/v1/schedules/s-1/nothing/here", {"error": "Not found"}),
    ):
        response = api.invoke(api_event(openapi, "GET", path))
        assert (response["statusCode"], json.loads(response["body"])) == (404, envelope)
    stdlib = Path(os.__file__).resolve().parent
    # The runtime directory holds symlinks; the driver reports resolved paths.
    runtime = tuple(entry.resolve() for entry in runtime_dir.iterdir())
    allowed = (unzipped.resolve(), runtime_dir.resolve(), *runtime, stdlib)
    loaded = [Path(p) for p in api.last["paths"]]
    # The driver itself and its recorder are the test harness, loaded by path.
    harness = {
        Path(__file__).with_name("bundle_driver.py"),
        Path(__file__).with_name("aws_calls.py"),
    }
    strays = [
        str(p)
        for p in loaded
        if p not in {h.resolve() for h in harness}
        and not any(p.is_relative_to(a) for a in allowed)
        and not p.is_relative_to(Path(sys.base_prefix).resolve())
    ]
    assert strays == []
    assert "infra" not in api.last["modules"] and "tests" not in api.last["modules"]


def test_the_shipped_functions_serve_fire_and_reconcile(
    stack: Stack, functions: dict[str, LambdaProcess], sam_template: dict[str, Any]
) -> None:
    from infra.smoke import mint_key, revoke_key

    openapi = sam_template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    key_id, key = mint_key(stack.outputs, _admin_env(stack))
    api = Api(functions["api"], openapi, key)
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    # --- Shannon façade -------------------------------------------------------------
    status, created = api(
        "POST",
        "/api/v1/schedules",
        {
            "name": "bundle",
            "cron_expression": f"{now.minute} * * * *",
            "timezone": "UTC",
            "task_query": "summarise yesterday",
            "max_budget_per_run_usd": 1.0,
        },
    )
    assert status == 201, created
    sid = created["schedule_id"]
    status, listed = api("GET", "/api/v1/schedules")
    assert status == 200 and [s["schedule_id"] for s in listed["schedules"]] == [sid]
    status, got = api("GET", f"/api/v1/schedules/{sid}")
    assert status == 200 and got["status"] == "ACTIVE"
    assert api("POST", f"/api/v1/schedules/{sid}/pause", {"reason": "check"})[0] == 200
    assert api("GET", f"/api/v1/schedules/{sid}")[1]["status"] == "PAUSED"
    assert api("POST", f"/api/v1/schedules/{sid}/resume", {})[0] == 200
    # Run now: an asynchronous invoke of the trigger CloudFormation named.
    status, accepted = api("POST", f"/api/v1/schedules/{sid}/trigger", {})
    assert status == 202, accepted

    # --- the trigger: EventBridge Scheduler's delivery of the registered Input -------
    scheduler = stack.client("scheduler")
    group = stack.outputs["ScheduleGroupName"]
    registered = scheduler.get_schedule(Name=f"sched-{sid}", GroupName=group)
    assert registered["Target"]["Arn"] == stack.function_arns["run-trigger"]
    assert registered["Target"]["RoleArn"] == stack.outputs["SchedulerRoleArn"]
    result = functions["run-trigger"].invoke(scheduler_event(registered, now))
    assert result["status"] == "success", result
    status, runs = api("GET", f"/api/v1/schedules/{sid}/runs")
    assert status == 200
    assert [r["status"] for r in runs["runs"]] == ["COMPLETED"]
    assert float(runs["runs"][0]["total_cost_usd"]) > 0
    assert api("GET", f"/api/v1/schedules/{sid}")[1]["total_runs"] == 1

    # --- LangGraph façade (x-api-key), same store ------------------------------------
    status, cron = api(
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "0 9 * * *", "input": {"messages": []}},
        header="x-api-key",
    )
    assert status == 200, cron
    cid = cron["cron_id"]
    status, found = api("POST", "/runs/crons/search", {}, header="x-api-key")
    assert status == 200 and {c["cron_id"] for c in found} == {sid, cid}
    assert api("GET", f"/runs/crons/{cid}", header="x-api-key")[0] == 200
    status, patched = api("PATCH", f"/runs/crons/{cid}", {"enabled": False}, header="x-api-key")
    assert status == 200 and patched["enabled"] is False, patched

    # --- the reconciler repairs drift made behind the app's back --------------------
    scheduler.delete_schedule(Name=f"sched-{sid}", GroupName=group)
    stray = {**registered}
    scheduler.create_schedule(
        Name="sched-00000000-0000-4000-8000-000000000000",
        GroupName=group,
        ScheduleExpression="cron(0 0 * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": stray["Target"]["Arn"], "RoleArn": stray["Target"]["RoleArn"]},
    )
    rule = stack.resources.get("ReconcilerReconcilerEvent", "reconciler-rule")
    rule_arn = f"arn:aws:events:{REGION}:123456789012:rule/{rule}"
    # The rule fires every minute; the fire of every 5th minute also repairs drift.
    drift_fire = now.replace(minute=now.minute - now.minute % 5)
    summary = functions["reconciler"].invoke(
        rule_event("123456789012", REGION, rule_arn, drift_fire)
    )
    names = {s["Name"]: s["State"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]}
    assert names == {f"sched-{sid}": "ENABLED", f"sched-{cid}": "DISABLED"}, (summary, names)

    # --- delete through both façades --------------------------------------------------
    assert api("DELETE", f"/runs/crons/{cid}", header="x-api-key")[0] == 204
    assert api("DELETE", f"/api/v1/schedules/{sid}")[0] == 200
    assert api("GET", "/api/v1/schedules")[1]["schedules"] == []
    assert scheduler.list_schedules(GroupName=group)["Schedules"] == []
    revoke_key(key_id, stack.outputs, _admin_env(stack))
