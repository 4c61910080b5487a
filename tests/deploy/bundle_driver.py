"""A Lambda-like Python process for one function of the unzipped bundle.

Run as ``python -I -S bundle_driver.py <bundle dir> <runtime dir> <handler>``: isolated
(no user site, no environment-derived paths, no ``site``), so ``sys.path`` is the
standard library, the unzipped ``deployment.zip`` (``/var/task``) and a directory with
only what Lambda's Python runtime provides (boto3, botocore and their dependencies,
``/var/runtime``) — no repository root, no dev venv. The function's environment is
this process's environment (the test passes exactly the variables the deployed
function has). Like a warm Lambda container it handles many events: one JSON line in
(``{"event": …}``), one JSON line out (``{"result": …, "calls": […]}`` or
``{"error": …}``), until stdin closes.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
import uuid
from pathlib import Path

bundle, runtime, handler = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path[:0] = [bundle, runtime]
# Replies go to the original stdout; what the function prints (its JSON log lines, as
# CloudWatch would receive them) goes to stderr.
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

# The call recorder (standard library only) is loaded by path, not from sys.path.
_spec = importlib.util.spec_from_file_location(
    "agentcron_calls", Path(__file__).with_name("aws_calls.py")
)
assert _spec is not None and _spec.loader is not None
calls = importlib.util.module_from_spec(_spec)
sys.modules["agentcron_calls"] = calls
_spec.loader.exec_module(calls)
calls.FUNCTION = os.environ["AGENTCRON_FUNCTION"]
os.environ["BOTOCORE_EXPERIMENTAL__PLUGINS"] = "agentcron_calls=agentcron_calls"


class Context:
    """The attributes of Lambda's context object that code may use."""

    def __init__(self, timeout_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.invoked_function_arn = os.environ.get("AGENTCRON_FUNCTION_ARN", "")
        self.memory_limit_in_mb = "128"
        self.aws_request_id = str(uuid.uuid4())
        self._timeout_ms = timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms


def main() -> int:
    module_name, _, attribute = handler.rpartition(".")
    function = getattr(importlib.import_module(module_name), attribute)
    timeout_ms = int(os.environ.get("AGENTCRON_TIMEOUT_MS", "900000"))
    for line in sys.stdin:
        request = json.loads(line)
        del calls.RECORDED[:]
        try:
            result = function(request["event"], Context(timeout_ms))
            reply = {"result": result}
        except Exception:
            reply = {"error": traceback.format_exc()}
        reply["calls"] = list(calls.RECORDED)
        reply["modules"] = sorted({m.split(".")[0] for m in sys.modules if not m.startswith("_")})
        reply["paths"] = sorted(
            {
                str(Path(m.__file__).resolve())
                for m in list(sys.modules.values())
                if getattr(m, "__file__", None)
            }
        )
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
