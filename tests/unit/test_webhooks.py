"""Webhook delivery: https only, public addresses only (after DNS), pinned, never raises."""

from __future__ import annotations

import ipaddress
import socket
import ssl
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


def test_deliveries_are_signed_over_the_exact_body_with_a_timestamp(
    https_receiver: tuple[int, list[dict[str, Any]]], tls_files: tuple[Path, Path]
) -> None:
    from chalicelib.services.webhooks import SIGNATURE_HEADER, verify

    port, received = https_receiver
    sender = WebhookSender(
        timeout_seconds=2,
        resolver=resolver({"hooks.example.com": ["127.0.0.1"]}),
        address_allowed=lambda address: address == "127.0.0.1",
        ssl_context=ssl.create_default_context(cafile=str(tls_files[0])),
        wall_clock=lambda: 1_800_000_000.5,
    )
    payload = {"event": "schedule.paused", "note": "naïve ✓"}
    assert sender.send(f"https://hooks.example.com:{port}/h", payload, secret="whsec_k").delivered
    assert sender.send(f"https://hooks.example.com:{port}/h", payload).delivered
    signed, unsigned = received
    header = signed["headers"][SIGNATURE_HEADER]
    assert header.startswith("t=1800000000,v1=") and len(header.split("v1=")[1]) == 64
    assert signed["headers"]["X-Agentcron-Event"] == "schedule.paused"
    # The receiver's check, on the raw bytes: right key and fresh → valid; anything else not.
    raw = signed["raw"]
    assert verify("whsec_k", header, raw, now=1_800_000_100)
    assert not verify("whsec_other", header, raw, now=1_800_000_100)
    assert not verify("whsec_k", header, raw + b" ", now=1_800_000_100)
    assert not verify("whsec_k", header, raw, now=1_800_000_000 + 301)  # a replay, too late
    assert not verify("whsec_k", "v1=00", raw, now=1_800_000_000)
    assert SIGNATURE_HEADER not in unsigned["headers"]  # no secret (older schedules): unsigned


def test_the_readme_verification_snippet_accepts_our_signatures_only() -> None:
    import re
    import time

    from chalicelib.services.webhooks import signature

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Signatures", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet is not None
    namespace: dict[str, Any] = {}
    exec(snippet.group(1), namespace)  # the receiver's code, as documented
    body = b'{"event":"schedule.paused"}'
    header = signature("whsec_k", int(time.time()), body)
    assert namespace["verify"]("whsec_k", header, body)
    assert not namespace["verify"]("whsec_x", header, body)
    assert not namespace["verify"]("whsec_k", signature("whsec_k", 1, body), body)
    assert not namespace["verify"]("whsec_k", f"t={int(time.time())},v1=é\u2603", body)


@pytest.mark.parametrize("forged", ["é" * 64, "\u2603", "\udcff", "0" * 63 + "é"])
def test_a_non_ascii_signature_is_rejected_not_raised(forged: str) -> None:
    from chalicelib.services.webhooks import verify

    header = f"t=1800000000,v1={forged}"
    assert not verify("whsec_k", header, b"{}", now=1_800_000_000)
