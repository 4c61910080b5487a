"""Webhook delivery: https only, public addresses only (after DNS), pinned, never raises."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.services.webhooks import WebhookSender, is_public_address


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # instance metadata
        ("fd00:ec2::254", False),  # IPv6 instance metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
    ],
)
def test_only_globally_routable_addresses_are_allowed(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def resolver(mapping: dict[str, list[str]]) -> Any:
    return lambda host, _port: mapping.get(host, [])


@pytest.mark.parametrize(
    ("url", "addresses", "error"),
    [
        ("http://hooks.example.com/x", ["8.8.8.8"], "webhook URL must be https"),
        ("https://hooks.example.com/x", ["127.0.0.1"], "non-public address (127.0.0.1)"),
        ("https://hooks.example.com/x", ["8.8.8.8", "10.0.0.1"], "non-public address (10.0.0.1)"),
        ("https://hooks.example.com/x", ["169.254.169.254"], "non-public address"),
        ("https://hooks.example.com/x", [], "does not resolve"),
    ],
)
def test_refused_destinations_are_never_contacted(
    url: str, addresses: list[str], error: str
) -> None:
    sender = WebhookSender(timeout_seconds=1, resolver=resolver({"hooks.example.com": addresses}))
    result = sender.send(url, {"x": 1})
    assert not result.delivered
    assert result.error is not None and error in result.error


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.com")]), False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def https_receiver(tls_files: tuple[Path, Path]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()


def test_delivery_posts_json_to_the_vetted_address_with_tls_for_the_host_name(
    https_receiver: tuple[int, list[dict[str, Any]]], tls_files: tuple[Path, Path]
) -> None:
    port, received = https_receiver
    trust = ssl.create_default_context(cafile=str(tls_files[0]))
    # The test's receiver lives on loopback, so this one sender is told loopback is fine;
    # the production policy is the table above. TLS still checks "hooks.example.com".
    sender = WebhookSender(
        timeout_seconds=2,
        resolver=resolver({"hooks.example.com": ["127.0.0.1"]}),
        address_allowed=lambda address: address == "127.0.0.1",
        ssl_context=trust,
    )
    result = sender.send(f"https://hooks.example.com:{port}/agentcron?k=v", {"status": "success"})
    assert result.delivered and result.status == 204
    [request] = received
    assert request["path"] == "/agentcron?k=v"
    assert request["body"] == {"status": "success"}
    assert request["headers"]["Content-Type"] == "application/json"
    # A certificate for another name is refused: the pinned connection still verifies TLS.
    other = WebhookSender(
        timeout_seconds=2,
        resolver=resolver({"evil.example.net": ["127.0.0.1"]}),
        address_allowed=lambda address: address == "127.0.0.1",
        ssl_context=trust,
    )
    refused = other.send(f"https://evil.example.net:{port}/", {"x": 1})
    assert not refused.delivered and len(received) == 1


def test_a_dead_endpoint_is_reported_not_raised() -> None:
    sender = WebhookSender(
        timeout_seconds=0.5,
        resolver=resolver({"hooks.example.com": ["127.0.0.1"]}),
        address_allowed=lambda _a: True,
    )
    result = sender.send("https://hooks.example.com:9/x", {"x": 1})
    assert not result.delivered and result.error
