"""Cold-start proxy: the wall time of a fresh interpreter importing ``app`` vs ``boto3``.

Both are measured interleaved in the same run (7 rounds, median), so machine noise
hits them alike; the figure that matters is the ratio (budget: ≤ 1.25).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.stats import median

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 7
# What a function has imported once its first request or run starts: the app, boto3 (every
# route and run uses DynamoDB) and Powertools' Logger (built by the first unit of work).
FIRST_UNIT = "import app, boto3; from chalicelib import observability; observability.telemetry()"


def _time(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, check=True)
    return time.perf_counter() - started


def run() -> dict[str, float]:
    for statement in ("import app", "import boto3"):  # warm .pyc files first
        _time(statement)
    app_times, boto_times, both_times, first_times = [], [], [], []
    for _ in range(ROUNDS):
        app_times.append(_time("import app"))
        boto_times.append(_time("import boto3"))
        both_times.append(_time("import app, boto3"))
        first_times.append(_time(FIRST_UNIT))
    app_ms, boto_ms = median(app_times) * 1000, median(boto_times) * 1000
    both_ms = median(both_times) * 1000
    first_ms = median(first_times) * 1000
    print(f"fresh `import app`            {app_ms:7.1f} ms (median of {ROUNDS})")
    print(f"fresh `import boto3`          {boto_ms:7.1f} ms")
    print(f"fresh `import app, boto3`     {both_ms:7.1f} ms")
    print(f"+ Powertools (first request)  {first_ms:7.1f} ms")
    print(f"ratio app / boto3             {app_ms / boto_ms:7.2f}   (budget ≤ 1.25)")
    print(f"ratio first request / boto3   {first_ms / boto_ms:7.2f}")
    return {
        "app_ms": app_ms,
        "boto3_ms": boto_ms,
        "ratio": app_ms / boto_ms,
        "first_unit_ms": first_ms,
    }
