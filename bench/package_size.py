"""The Lambda bundle's size as ``make package`` builds it (budget: ≤ 10 MB zipped)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def run() -> dict[str, float]:
    from infra.package import MAX_ZIP_BYTES, build, summary

    with tempfile.TemporaryDirectory(prefix="agentcron-bench-package-") as scratch:
        package = build("dev", Path(scratch) / "dev")
        size = package.bundle.stat().st_size
        print(summary(package))
    budget = MAX_ZIP_BYTES / 2**20
    print(f"zip size                      {size / 2**20:7.2f} MiB  (budget ≤ {budget:.0f} MiB)")
    return {"zip_bytes": float(size)}
