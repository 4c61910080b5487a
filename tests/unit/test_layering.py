"""The layering is a test, not a convention: import-linter's contracts (``pyproject.toml``'s
issue-10 block) must hold, and ``app.py`` — a module, outside import-linter's packages —
imports only the façades, the composition root, observability and the trigger."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_app_imports_nothing_local() -> None:
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    ours = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib")
    }
    allowed = {
        "chalicelib.api",
        "chalicelib.console",
        "chalicelib.dependencies",
        "chalicelib.observability",
        "chalicelib.services",
    }
    assert {m for m in ours if not any(m == a or m.startswith(a + ".") for a in allowed)} == set()
    assert not any(m.startswith("chalicelib.local") for m in ours)
