"""Import rules for deployed code: what Chalice bundles must import only what it bundles.

Deployed entry points are ``app.py`` and ``chalicelib/`` minus ``chalicelib/local/``
(the local stack) and ``chalicelib/admin.py`` (an operator's command). Every import they
contain — at module level or deferred inside a function — must name the standard
library, ``chalicelib`` itself, a distribution pinned in ``requirements.txt``, or
boto3/botocore (Lambda's runtime provides them). ``chalicelib.local`` must not be
imported by any of them. The bundle test proves the same at run time for the paths it
drives; this test covers every path, statically.
"""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {"boto3", "botocore"}
# Optional, user-provided: the langgraph agent imports the user's graph packages lazily
# and says so when they are missing (they are added to requirements.txt by whoever
# registers a LangGraph assistant).
OPTIONAL = {"langgraph", "langchain_core"}
TYPE_ONLY = {"mypy_boto3_dynamodb", "mypy_boto3_scheduler", "mypy_boto3_lambda"}
# Chalice bundles its own runtime module (chalice/app.py) into every package.
ALWAYS = {"chalicelib", "app", "__future__", "chalice"} | RUNTIME | OPTIONAL | TYPE_ONLY


def deployed_modules() -> list[Path]:
    files = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    return [f for f in files if "chalicelib/local/" not in f.as_posix() and f.name != "admin.py"]


def _imports(tree: ast.Module) -> list[tuple[str, int]]:
    type_checking_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                type_checking_lines.add(getattr(child, "lineno", -1))
    found = []
    for node in ast.walk(tree):
        if node.lineno in type_checking_lines if hasattr(node, "lineno") else False:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found


def _requirements() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(line.split("==")[0].lower().replace("_", "-"))
    return names


def test_deployed_code_imports_only_what_the_bundle_has() -> None:
    pinned = _requirements()
    distributions = packages_distributions()
    problems = []
    for path in deployed_modules():
        for module, line in _imports(ast.parse(path.read_text())):
            top = module.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            if module.startswith("chalicelib.local") or module == "chalicelib.admin":
                problems.append(f"{where} (dev/operator code)")
            elif top in sys.stdlib_module_names or top in ALWAYS:
                continue
            else:
                owners = {d.lower().replace("_", "-") for d in distributions.get(top, [])}
                if not owners & pinned:
                    problems.append(f"{where} (not in requirements.txt)")
    assert problems == []


def test_the_rule_catches_the_old_layout(tmp_path: Path) -> None:
    """What issue 7's first blocker was: an adapter importing infra/."""
    tree = ast.parse("from infra.tables import GSI1\n")
    assert _imports(tree) == [("infra.tables", 1)]
    assert "infra" not in sys.stdlib_module_names
    assert "infra" not in packages_distributions()
