"""``make smoke STAGE=<stage>``: prove a deployed stack works, end to end, over HTTPS.

1. read the stack's outputs (``agentcron-<stage>``: endpoint, table);
2. mint an API key with ``python -m chalicelib.admin create-key`` against that table;
3. create a schedule (Shannon API), run it now, wait for a COMPLETED run with its cost;
4. delete the schedule and revoke the key — also when a step failed.

Exits non-zero with one clear line on the first failure. Uses the caller's AWS
credentials and region (the stack's). The admin steps are the functions
:func:`mint_key` / :func:`revoke_key`, which the deployment tests run against moto.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TENANT = "smoke"
USER = "smoke"


class SmokeFailure(Exception):
    pass


def stack_outputs(stack_name: str) -> dict[str, str]:
    import boto3

    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:
        raise SmokeFailure(f"cannot read stack {stack_name}: {exc}") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def admin(args: list[str], outputs: Mapping[str, str], environ: Mapping[str, str]) -> str:
    env = {**environ, "TABLE_NAME": outputs["TableName"]}
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.admin", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SmokeFailure(f"admin {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def mint_key(outputs: Mapping[str, str], environ: Mapping[str, str]) -> tuple[str, str]:
    """(key id, plaintext key) of a new key for the smoke tenant."""
    out = admin(
        ["create-key", "--tenant", TENANT, "--user", USER, "--description", "make smoke"],
        outputs,
        environ,
    )
    key_id = re.search(r"key_id: (\S+)", out)
    key = re.search(r"api key \(shown once\): (\S+)", out)
    if not key_id or not key:
        raise SmokeFailure(f"unexpected create-key output: {out!r}")
    return key_id.group(1), key.group(1)


def revoke_key(key_id: str, outputs: Mapping[str, str], environ: Mapping[str, str]) -> None:
    admin(["revoke-key", "--tenant", TENANT, "--key-id", key_id], outputs, environ)


def _http(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        return exc.code, text


def run(stage: str, *, wait_seconds: float = 180.0) -> None:
    outputs = stack_outputs(f"agentcron-{stage}")
    base = outputs["EndpointURL"].rstrip("/") + "/api/v1"
    key_id, key = mint_key(outputs, os.environ)
    print(f"minted key {key_id}")
    schedule_id = None
    try:
        status, body = _http(
            "POST",
            f"{base}/schedules",
            key,
            {
                "name": "make smoke",
                "cron_expression": "0 3 1 1 *",
                "timezone": "UTC",
                "task_query": "Say hello in five words.",
                "max_budget_per_run_usd": 0.5,
                "timeout_seconds": 120,
            },
        )
        if status != 201 or not isinstance(body, dict):
            raise SmokeFailure(f"create schedule answered {status}: {body}")
        schedule_id = body["schedule_id"]
        print(f"created schedule {schedule_id}")
        status, body = _http("POST", f"{base}/schedules/{schedule_id}/trigger", key, {})
        if status not in (200, 202):
            raise SmokeFailure(f"run now answered {status}: {body}")
        print("run started; waiting for it to complete")
        deadline = time.monotonic() + wait_seconds
        while True:
            status, body = _http("GET", f"{base}/schedules/{schedule_id}/runs", key)
            runs = body.get("runs", []) if isinstance(body, dict) else []
            done = [r for r in runs if r.get("status") not in ("RUNNING", "PENDING")]
            if done:
                run_ = done[0]
                if run_.get("status") != "COMPLETED" or not float(run_.get("total_cost_usd") or 0):
                    raise SmokeFailure(f"the run ended {run_.get('status')}: {run_}")
                print(f"run COMPLETED, cost ${run_['total_cost_usd']}")
                break
            if time.monotonic() > deadline:
                raise SmokeFailure(f"no completed run after {wait_seconds:g} s: {body}")
            time.sleep(3)
    finally:
        if schedule_id is not None:
            status, body = _http("DELETE", f"{base}/schedules/{schedule_id}", key)
            print(f"deleted schedule {schedule_id} ({status})")
        revoke_key(key_id, outputs, os.environ)
        print(f"revoked key {key_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.smoke")
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    try:
        run(args.stage)
    except SmokeFailure as exc:
        print(f"make smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    print("make smoke: OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
