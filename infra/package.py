"""``make package STAGE=<stage>``: the Lambda bundle and the SAM template, as they ship.

Writes ``build/<stage>/`` with ``deployment.zip``, ``sam.json`` (Chalice's packaged
SAM template, merged with :func:`infra.template.merge_template`) and ``merge.json``.

Works from a fresh clone with no AWS credentials and no region configured:

* ``chalice package`` needs a region but makes no AWS call; the template uses
  ``${AWS::Region}`` throughout, so the region given here (``AWS_DEFAULT_REGION``, else
  ``us-east-1``) ends up nowhere in the output;
* it installs ``requirements.txt`` for Lambda's platform with pip. ``make venv`` fills
  a wheelhouse (``.venv/wheelhouse``: Lambda-platform wheels of every runtime pin) while
  the package index is reachable; packaging then installs from it with
  ``PIP_NO_INDEX=1`` and ``PIP_FIND_LINKS``, so it also works offline.

The bundle is checked before it is accepted: at most :data:`MAX_ZIP_BYTES`, and none
of the development-only packages of :data:`FORBIDDEN` inside. Packages the Lambda
runtime provides that a dependency pulls in (:data:`RUNTIME_PROVIDED`) are left out.

One fix is applied to Chalice's template (:func:`declare_path_parameters`): Chalice
declares a route's path parameters from ``{word}`` segments only, so the façades'
catch-all routes (``<parent>/{proxy+}``, which answer 404/405 in each façade's
envelope) reach the OpenAPI body with an undeclared path parameter — invalid Swagger
2.0 (each templated segment must be declared by every operation of its path). It is
declared as API Gateway's own documentation of proxy resources does:
``name: proxy, in: path, required: true`` (the ``+`` is not part of the name).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.template import merge_template

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
MAX_ZIP_BYTES = 10 * 1024 * 1024
# Top-level names in the zip that would mean dev/test code or dependencies shipped.
FORBIDDEN = (
    "moto",
    "pytest",
    "_pytest",
    "hypothesis",
    "werkzeug",
    "langgraph",
    "langchain_core",
    "flask",
    "boto3",
    "botocore",
    "infra",
    "tests",
    "bench",
)


class PackageError(Exception):
    """The package could not be built or breaks a rule."""


@dataclass(frozen=True)
class Package:
    directory: Path
    template: Path
    bundle: Path

    def top_level(self) -> Counter[str]:
        """Bytes per top-level entry of the zip (files and packages)."""
        sizes: Counter[str] = Counter()
        with zipfile.ZipFile(self.bundle) as archive:
            for info in archive.infolist():
                sizes[info.filename.split("/", 1)[0]] += info.file_size
        return sizes


def chalice_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if WHEELHOUSE.is_dir() and any(WHEELHOUSE.iterdir()):
        env["PIP_NO_INDEX"] = "1"
        env["PIP_FIND_LINKS"] = str(WHEELHOUSE)
    env.pop("AWS_ENDPOINT_URL", None)
    return env


def build(stage: str, out: Path | None = None) -> Package:
    """Package ``stage`` into ``out`` (default ``build/<stage>``) and check the bundle."""
    directory = (out or ROOT / "build" / stage).resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    merge = directory / "merge.json"
    merge.write_text(json.dumps(merge_template(stage), indent=2) + "\n")
    with tempfile.TemporaryDirectory(prefix="agentcron-package-") as scratch:
        command = [
            sys.executable,
            "-c",
            "import sys; from chalice.cli import main; sys.exit(main())",
            "--project-dir",
            str(ROOT),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(merge),
            scratch,
        ]
        done = subprocess.run(
            command, cwd=ROOT, env=chalice_environment(), capture_output=True, text=True
        )
        if done.returncode != 0:
            raise PackageError(f"chalice package failed:\n{done.stdout}{done.stderr}")
        without_runtime_packages(Path(scratch) / "deployment.zip", directory / "deployment.zip")
        template = json.loads((Path(scratch) / "sam.json").read_text())
        declare_path_parameters(template)
        (directory / "sam.json").write_text(json.dumps(template, indent=2) + "\n")
    package = Package(directory, directory / "sam.json", directory / "deployment.zip")
    check(package)
    return package


_PATH_PARAMETER = re.compile(r"\{(\w+)\+?\}")
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


def declare_path_parameters(template: dict[str, Any]) -> None:
    """Declare every ``{name}`` and greedy ``{name+}`` of every path of the template's
    REST APIs in each of its operations (see the module docstring)."""
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        for path, item in resource["Properties"]["DefinitionBody"]["paths"].items():
            names = _PATH_PARAMETER.findall(path)
            for method, operation in item.items():
                if method not in _HTTP_METHODS:
                    continue
                parameters = operation.setdefault("parameters", [])
                declared = {p["name"] for p in parameters if p.get("in") == "path"}
                parameters.extend(
                    {"name": name, "in": "path", "required": True, "type": "string"}
                    for name in names
                    if name not in declared
                )


# Pulled in as dependencies of a runtime pin (aws-xray-sdk → botocore → urllib3) but
# provided by Lambda's Python runtime, like boto3 itself: shipping them would add ~20 MB
# and a second botocore that shadows the runtime's.
RUNTIME_PROVIDED = ("botocore", "urllib3")


def _runtime_provided(name: str) -> bool:
    top = name.split("/", 1)[0].lower()
    return any(
        top == package or (top.startswith(f"{package}-") and top.endswith(".dist-info"))
        for package in RUNTIME_PROVIDED
    )


def without_runtime_packages(source: Path, target: Path) -> None:
    """Copy Chalice's zip without :data:`RUNTIME_PROVIDED` (entries keep their metadata)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            if not _runtime_provided(info.filename):
                zout.writestr(info, zin.read(info), compress_type=info.compress_type)


def check(package: Package) -> None:
    size = package.bundle.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise PackageError(f"deployment.zip is {size} bytes, over {MAX_ZIP_BYTES}")
    shipped = {name.lower().removesuffix(".py") for name in package.top_level()}
    bad = sorted(shipped & set(FORBIDDEN))
    if bad:
        raise PackageError(f"deployment.zip contains development-only packages: {bad}")


def summary(package: Package) -> str:
    sizes = package.top_level()
    where = package.bundle
    where = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
    lines = [
        f"{where}: {package.bundle.stat().st_size / 1e6:.2f} MB zipped, "
        f"{sum(sizes.values()) / 1e6:.2f} MB unzipped, {len(sizes)} top-level entries"
    ]
    for name, size in sizes.most_common(8):
        lines.append(f"  {size / 1e6:7.2f} MB  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package")
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        package = build(args.stage, args.out)
    except PackageError as exc:
        print(f"make package: {exc}", file=sys.stderr)
        return 1
    print(summary(package))
    print(f"template: {package.template}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
