"""Tracing as X-Ray receives it: a Lambda-like process (its own, because the X-Ray SDK
patches botocore process-wide) runs a unit of work with tracing on, and the X-Ray
daemon's UDP port — a socket of this test — receives the subsegment with the
correlation ids as annotations."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRACE = "1-5759e988-bd862e3fe1be46a994272793"
UNIT = """
from chalicelib import observability
observability.configure(tracing=True, emit_metrics=False)
with observability.unit("run_trigger", tenant="tenant-a", schedule_id="s-1", trigger="schedule"):
    observability.bind(run_id="r-1", user="alice")
"""


def test_a_unit_of_work_is_a_subsegment_annotated_with_its_ids() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(10)
        env = {
            **os.environ,
            # What Lambda sets for a function with active tracing.
            "AWS_LAMBDA_FUNCTION_NAME": "agentcron-test-run-trigger",
            "LAMBDA_TASK_ROOT": str(ROOT),
            "_X_AMZN_TRACE_ID": f"Root={TRACE};Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        }
        done = subprocess.run(
            [sys.executable, "-c", UNIT], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        header, document = daemon.recv(65536).decode().split("\n", 1)
    assert json.loads(header) == {"format": "json", "version": 1}
    subsegment = json.loads(document)
    assert (subsegment["name"], subsegment["trace_id"]) == ("## run_trigger", TRACE)
    assert subsegment["annotations"] == {
        "tenant": "tenant-a",
        "schedule_id": "s-1",
        "trigger": "schedule",
        "run_id": "r-1",
    }
    assert "user" not in subsegment["annotations"]
