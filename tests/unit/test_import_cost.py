"""``import app`` stays cheap: both Lambda functions import it on every cold start.

Counted in modules, not milliseconds (timings belong to ``make bench``): importing the
app must not pull in boto3, pydantic, croniter or either façade's wire models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "boto3",
    "botocore",
    "pydantic",
    "croniter",
    "cron_descriptor",
    "chalicelib.api.langgraph.wire",
    "chalicelib.api.shannon.wire",
    "chalicelib.dependencies",
    "chalicelib.settings",
)


def test_importing_the_app_loads_no_heavy_module() -> None:
    probe = (
        "import json, sys, app; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
