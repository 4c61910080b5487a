"""``make smoke`` when the API misbehaves: a refused connection or a dropped one is one
clear line and a non-zero exit — never a traceback — and the smoke key is revoked even
when the schedule's DELETE itself fails. The HTTP side is a local server; the key is
minted and revoked with the real admin command against the stack's table in moto (as
``test_bundle.py``'s smoke scenario does)."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.deploy.conftest import Stack
from tests.deploy.test_bundle import _admin_env


class Dropping(BaseHTTPRequestHandler):
    """Creates the schedule, then closes the connection without answering anything else."""

    seen: ClassVar[list[str]] = []

    def _drop(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        if self.command == "POST" and self.path.endswith("/schedules"):
            body = json.dumps({"schedule_id": "s-1"}).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_DELETE = _drop

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def dropping() -> Iterator[str]:
    Dropping.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Dropping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def refusing() -> str:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/"


def _smoke(stack: Stack, endpoint: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from infra.smoke import check

    outputs = {**stack.outputs, "EndpointURL": endpoint}
    code = check(outputs, _admin_env(stack), wait_seconds=1, poll_seconds=0.01)
    out, err = capsys.readouterr()
    [minted] = re.findall(r"minted key (\S+)", out)
    return code, minted, err


def _revoked(stack: Stack, key_id: str) -> bool:
    from chalicelib.adapters.dynamodb_keys import DynamoDBApiKeyStore

    store = DynamoDBApiKeyStore(stack.client("dynamodb"), stack.outputs["TableName"])
    [key] = [k for k in store.list_for_tenant("smoke") if k.key_id == key_id]
    return key.revoked_at is not None


def test_a_refused_connection_is_one_line_and_the_key_is_revoked(
    stack: Stack, refusing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, key_id, err = _smoke(stack, refusing, capsys)
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith("make smoke: FAILED: POST ") and "/schedules" in line, err
    assert "Traceback" not in err
    assert _revoked(stack, key_id)


def test_a_dropped_connection_and_a_failed_delete_still_revoke_the_key(
    stack: Stack, dropping: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, key_id, err = _smoke(stack, dropping, capsys)
    assert code == 1
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[0].startswith("make smoke: FAILED: POST ") and "/trigger" in lines[0], err
    # The cleanup's own failure is reported too, on its own line; the key is revoked.
    assert any(line.startswith("make smoke: cleanup FAILED: DELETE ") for line in lines), err
    assert Dropping.seen[-1] == "DELETE /api/api/v1/schedules/s-1"
    assert _revoked(stack, key_id)
