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
of the development-only packages of :data:`FORBIDDEN` inside.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

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
        shutil.move(Path(scratch) / "deployment.zip", directory / "deployment.zip")
        shutil.move(Path(scratch) / "sam.json", directory / "sam.json")
    package = Package(directory, directory / "sam.json", directory / "deployment.zip")
    check(package)
    return package


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
