"""``make smoke STAGE=<stage>``: prove a deployed stack works, end to end, over HTTPS.

1. read the stack's outputs (``agentcron-<stage>``: endpoint, table);
2. mint an API key with ``python -m chalicelib.admin create-key`` against that table;
3. create a schedule (Shannon API), run it now, wait for a COMPLETED run with its cost;
4. delete the schedule and revoke the key — also when a step failed, each attempted on
   its own (a failed DELETE does not leave the key valid).

Exits non-zero with one clear line per failure (the step's, then the cleanup's): an
HTTP error, a refused or dropped connection, a timeout or a body that is not JSON —
never a traceback. Uses the caller's AWS
credentials and region (the stack's). The admin steps are the functions
:func:`mint_key` / :func:`revoke_key`, which the deployment tests run against moto.
"""

from __future__ import annotations

import argparse
import http.client
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
    """One request; an HTTP error status is returned, anything else that goes wrong (a
    refused or dropped connection, a timeout, a body that is not JSON) is a
    :class:`SmokeFailure` naming the request."""
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
        text = exc.read().decode(errors="replace")
        return exc.code, text
    except urllib.error.URLError as exc:
        raise SmokeFailure(f"{method} {url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # A dropped connection (RemoteDisconnected, reset), a timeout, a truncated or
        # non-JSON body.
        raise SmokeFailure(f"{method} {url}: {type(exc).__name__}: {exc}") from exc


def _report(what: str, problem: object) -> None:
    """One line on stderr, whatever the problem's text holds (e.g. an HTML error page)."""
    print(f"make smoke: {what}: {' '.join(str(problem).split())}", file=sys.stderr, flush=True)


def _scenario(
    base: str, key: str, created: list[str], *, wait_seconds: float, poll_seconds: float
) -> None:
    """Create, run now, wait for a COMPLETED run with its cost; the schedule's id is
    appended to ``created`` as soon as it exists (for the cleanup)."""
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
    if status != 201 or not isinstance(body, dict) or "schedule_id" not in body:
        raise SmokeFailure(f"create schedule answered {status}: {body}")
    schedule_id = body["schedule_id"]
    created.append(schedule_id)
    print(f"created schedule {schedule_id}", flush=True)
    status, body = _http("POST", f"{base}/schedules/{schedule_id}/trigger", key, {})
    if status not in (200, 202):
        raise SmokeFailure(f"run now answered {status}: {body}")
    print("run started; waiting for it to complete", flush=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        status, body = _http("GET", f"{base}/schedules/{schedule_id}/runs", key)
        runs = body.get("runs", []) if isinstance(body, dict) else []
        done = [r for r in runs if r.get("status") not in ("RUNNING", "PENDING")]
        if done:
            run_ = done[0]
            if run_.get("status") != "COMPLETED" or not float(run_.get("total_cost_usd") or 0):
                raise SmokeFailure(f"the run ended {run_.get('status')}: {run_}")
            print(f"run COMPLETED, cost ${run_['total_cost_usd']}", flush=True)
            return
        if time.monotonic() > deadline:
            raise SmokeFailure(f"no completed run after {wait_seconds:g} s: {body}")
        time.sleep(poll_seconds)


def _cleanup(
    base: str,
    key: str,
    key_id: str,
    created: list[str],
    outputs: Mapping[str, str],
    environ: Mapping[str, str],
) -> bool:
    """Delete the schedule (if one was created) and revoke the key — each attempted on
    its own, so a failed DELETE never leaves the key valid. False if either failed."""
    ok = True
    for schedule_id in created:
        try:
            status, body = _http("DELETE", f"{base}/schedules/{schedule_id}", key)
            if status >= 300:
                raise SmokeFailure(f"delete schedule answered {status}: {body}")
            print(f"deleted schedule {schedule_id} ({status})", flush=True)
        except SmokeFailure as exc:
            _report("cleanup FAILED", exc)
            ok = False
    try:
        revoke_key(key_id, outputs, environ)
        print(f"revoked key {key_id}", flush=True)
    except SmokeFailure as exc:
        _report(
            "cleanup FAILED",
            f"{exc} (revoke it: python -m chalicelib.admin revoke-key --tenant {TENANT} "
            f"--key-id {key_id})",
        )
        ok = False
    return ok


def check(
    outputs: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    wait_seconds: float = 180.0,
    poll_seconds: float = 3.0,
) -> int:
    """The scenario against a stack's outputs; returns the exit code. Each failure is one
    line on stderr (the step's, then the cleanup's); the cleanup always runs once a key
    was minted, even when a step failed in an unexpected way."""
    try:
        base = outputs["EndpointURL"].rstrip("/") + "/api/v1"
        key_id, key = mint_key(outputs, environ)
    except (KeyError, SmokeFailure) as exc:
        _report("FAILED", exc if isinstance(exc, SmokeFailure) else f"no stack output {exc}")
        return 1
    print(f"minted key {key_id}", flush=True)
    created: list[str] = []
    failed = False
    try:
        _scenario(base, key, created, wait_seconds=wait_seconds, poll_seconds=poll_seconds)
    except SmokeFailure as exc:
        _report("FAILED", exc)
        failed = True
    finally:
        cleaned = _cleanup(base, key, key_id, created, outputs, environ)
    if failed or not cleaned:
        return 1
    print("make smoke: OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.smoke")
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    try:
        outputs = stack_outputs(f"agentcron-{args.stage}")
    except SmokeFailure as exc:
        _report("FAILED", exc)
        return 1
    return check(outputs, os.environ)


if __name__ == "__main__":
    raise SystemExit(main())
