"""Webhook delivery: https only, public addresses only (after DNS), pinned, never raises."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain import addresses
from chalicelib.domain.errors import InvalidRequestError
from chalicelib.services.schedules import validate_webhook_url
from chalicelib.services.webhooks import WebhookSender, is_public_address

# Every address form the rules name; each must be refused both as a URL host at write
# time and as a resolved address at delivery (see chalicelib.domain.addresses).
REFUSED = [
    # IPv4 special-purpose space, multicast, reserved
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # instance metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    # IPv6 special space
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "fc00::1",
    "fd00:ec2::254",  # IPv6 instance metadata
    "ff02::1",
    "100::1",  # discard
    "2001:db8::1",
    "3fff::1",
    # IPv4-mapped (checked through), IPv4-compatible (refused)
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "::8.8.8.8",
    # 6to4 and Teredo (refused whatever they embed)
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "2002:808:808::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001::1",
    # NAT64: the well-known prefix is checked through, local-use is refused
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::10.0.0.1",
    "64:ff9b:1::808:808",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert is_public_address(address) is False
    assert addresses.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_unicast_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address) is True


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("017700000001", "127.0.0.1"),  # octal
        ("0x7f000001", "127.0.0.1"),  # hex
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("134744072", "8.8.8.8"),
    ],
)
def test_every_ipv4_spelling_a_resolver_accepts_is_understood(host: str, address: str) -> None:
    assert addresses.literal_address(host) == ipaddress.ip_address(address)
    # The resolver agrees (numeric forms only: no DNS query is made).
    if not host.endswith("."):
        infos = socket.getaddrinfo(host, 443, flags=socket.AI_NUMERICHOST)
        assert {i[4][0] for i in infos} == {address}


@pytest.mark.parametrize("host", ["hooks.example.com", "08.1.1.1", "1.2.3.4.5", "256.1.1.1.1"])
def test_names_are_not_literals(host: str) -> None:
    assert addresses.literal_address(host) is None


def _url_host(address: str) -> str:
    return f"[{address.replace('%', '%25')}]" if ":" in address else address


@pytest.mark.parametrize(
    "host",
    [_url_host(a) for a in REFUSED]
    + ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0xa9fea9fe", "localhost", "api.localhost"]
    + ["１２７.０.０.１"],  # full-width digits: IDNA maps them to 127.0.0.1
)
def test_a_webhook_host_outside_public_space_is_refused_when_saved(host: str) -> None:
    with pytest.raises(InvalidRequestError, match="Webhook URL must point to a public address"):
        validate_webhook_url(f"https://{host}/hook")


@pytest.mark.parametrize(
    "url",
    [f"https://{_url_host(a)}/hook" for a in ALLOWED]
    + ["https://hooks.example.com:8443/x?y=1", "https://134744072/", "https://例子.测试/hook"],
)
def test_public_webhook_hosts_are_accepted_when_saved(url: str) -> None:
    validate_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com:99999/", "https://bad_host.example/", "https://a b/", "ftp://x/"],
)
def test_malformed_webhook_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequestError):
        validate_webhook_url(url)


def resolver(mapping: dict[str, list[str]]) -> Any:
    return lambda host, _port: mapping.get(host, [])


@pytest.mark.parametrize(
    ("url", "resolved", "outcome", "error"),
    [
        ("http://hooks.example.com/x", ["8.8.8.8"], "refused", "webhook URL must be https"),
        ("https://hooks.example.com/x", ["127.0.0.1"], "refused", "non-public address (127.0.0.1)"),
        (
            "https://hooks.example.com/x",
            ["8.8.8.8", "10.0.0.1"],
            "refused",
            "non-public address (10.0.0.1)",
        ),
        ("https://hooks.example.com/x", [], "failed", "does not resolve"),
        ("https://0x7f.1/x", ["127.0.0.1"], "refused", "127.0.0.1 is not a public unicast"),
        ("https://localhost/x", ["127.0.0.1"], "refused", "localhost is a loopback name"),
    ]
    + [("https://hooks.example.com/x", [a], "refused", "non-public address") for a in REFUSED],
)
def test_refused_destinations_are_never_contacted(
    url: str, resolved: list[str], outcome: str, error: str
) -> None:
    contacted: list[Any] = []

    def connect(*args: Any, **kwargs: Any) -> Any:
        contacted.append((args, kwargs))
        raise AssertionError("a refused destination was contacted")

    sender = WebhookSender(
        timeout_seconds=1,
        resolver=resolver({"hooks.example.com": resolved}),
        connection_factory=connect,
    )
    result = sender.send(url, {"x": 1})
    assert (result.outcome, result.delivered) == (outcome, False)
    assert result.error is not None and error in result.error
    assert result.summary() == f"{outcome}: {result.error}"
    assert contacted == []


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
            if self.path.startswith("/redirect"):
                self.send_response(307)
                self.send_header("Location", "/landed")
                self.send_header("Content-Length", "0")
            else:
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
    assert result.summary() == "delivered (HTTP 204)"
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
    # Redirects are not followed: a 3xx is a failed delivery, and its target is never asked.
    redirected = sender.send(f"https://hooks.example.com:{port}/redirect", {"x": 2})
    assert (redirected.outcome, redirected.status, redirected.error) == ("failed", 307, "HTTP 307")
    assert [r["path"] for r in received] == ["/agentcron?k=v", "/redirect"]


def test_a_dead_endpoint_is_reported_not_raised() -> None:
    sender = WebhookSender(
        timeout_seconds=0.5,
        resolver=resolver({"hooks.example.com": ["127.0.0.1"]}),
        address_allowed=lambda _a: True,
    )
    result = sender.send("https://hooks.example.com:9/x", {"x": 1})
    assert not result.delivered and result.error
