"""``chalice deploy`` cannot half-deploy agentcron.

Chalice's own deployer creates no table, schedule group, roles or queues, so a
``chalice deploy`` must fail before it creates anything, with a message pointing at
``make deploy``. The mechanism: every stage (set once at the top of
``.chalice/config.json``, so a stage added later inherits it) has
``manage_iam_role: false`` and an ``iam_role_arn`` that is no ARN but that message.
Chalice's first AWS write is then the first function's ``CreateFunction``, which the
Lambda API rejects for its role.

Checked two ways: every stage's configuration *as Chalice resolves it* (its ``Config``
object, per function), and one real ``chalice deploy`` of a copy of the project against
a moto server of its own — it must exit non-zero, print the message, and leave no
function, role, REST API, rule or deployment record behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import REGION, ROOT, _free_port

FUNCTIONS = ("api_handler", "run_trigger", "reconciler")
ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/")


def _config() -> dict[str, object]:
    loaded: dict[str, object] = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return loaded


def test_every_stage_and_function_points_chalice_deploy_at_make_deploy() -> None:
    from chalice.config import Config

    disk = _config()
    stages = disk["stages"]
    assert isinstance(stages, dict)
    for stage in stages:
        for function in FUNCTIONS:
            config = Config(chalice_stage=stage, function_name=function, config_from_disk=disk)
            assert config.manage_iam_role is False, (stage, function)
            role = config.iam_role_arn
            assert not ROLE_ARN.match(role), (stage, function)
            assert "make deploy" in role, (stage, function)


@pytest.fixture
def private_moto() -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_chalice_deploy_fails_first_and_creates_nothing(private_moto: str, tmp_path: Path) -> None:
    import boto3

    from infra.package import chalice_environment

    project = tmp_path / "project"
    project.mkdir()
    for name in ("app.py", "requirements.txt"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib")
    (project / ".chalice").mkdir()
    shutil.copy(ROOT / ".chalice" / "config.json", project / ".chalice" / "config.json")
    env = {
        **chalice_environment(),
        "AWS_ENDPOINT_URL": private_moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from chalice.cli import main; sys.exit(main())",
            "--project-dir",
            str(project),
            "deploy",
            "--stage",
            "dev",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "make deploy" in re.sub(r"\s+", " ", output)

    def client(service: str) -> object:
        return boto3.client(
            service,
            endpoint_url=private_moto,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    assert client("lambda").list_functions()["Functions"] == []  # type: ignore[attr-defined]
    assert client("iam").list_roles()["Roles"] == []  # type: ignore[attr-defined]
    assert client("apigateway").get_rest_apis()["items"] == []  # type: ignore[attr-defined]
    assert client("events").list_rules()["Rules"] == []  # type: ignore[attr-defined]
    # No deployment record either (a later `chalice delete` would act on it).
    assert set(os.listdir(project / ".chalice")) <= {"config.json", "deployments"}
