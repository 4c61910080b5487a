"""Webhook delivery: POST the finished run as JSON to the user's https URL.

A webhook is attacker-controlled input that makes *our* Lambda open a connection,
so delivery refuses anything but public unicast addresses (SSRF; the rules are in
:mod:`chalicelib.domain.addresses`): the host is checked as written (an IP literal in
any spelling, ``localhost``), then resolved once, and every address it resolves to
must be allowed; the connection goes to the vetted address itself, with the original
host name used for TLS (SNI and certificate check). Resolving once and connecting to
that address closes the DNS-rebinding gap between check and use. Redirects are not
followed (a 3xx is a failed delivery). The timeout is short.

:meth:`WebhookSender.send` never raises: it returns a :class:`WebhookResult` —
``delivered``, ``failed`` (the receiver answered non-2xx, or the connection failed)
or ``refused`` (the address rules) — which the run engine logs with the run id and
records on the run as ``webhook_status``. Delivery can never change the run's outcome.

**Signatures.** Every delivery of a schedule that has a signing secret (every schedule
created since signatures exist) carries ``X-Agentcron-Signature: t=<unix seconds>,
v1=<hex>``, where ``v1`` is HMAC-SHA256 keyed with the schedule's secret over the
bytes ``<t>.<body>`` — the exact body sent, so a receiver verifies the raw bytes before
parsing them. Signing the timestamp with the body lets a receiver refuse replays (an
old ``t``) without trusting an unsigned header (the scheme Stripe documents).

The secret is stored as is in the schedule's item (top-level ``webhook_secret``,
never in a read response): HMAC needs the key itself at every delivery, so a hash
would be useless, and encrypting it under a key held by the same Lambda that reads it
would add a KMS call per delivery but no protection against anyone who can read the
table *and* invoke that Lambda. DynamoDB encrypts the table at rest; the secret is
shown once, in the create response.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from chalicelib.domain.addresses import host_refusal, is_public

Resolver = Callable[[str, int], Sequence[str]]


class ConnectionFactory(Protocol):
    """Opens the HTTPS connection to the vetted ``address`` (TLS checks ``host``)."""

    def __call__(
        self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext
    ) -> http.client.HTTPSConnection: ...


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    return is_public(address)


SIGNATURE_HEADER = "X-Agentcron-Signature"
EVENT_HEADER = "X-Agentcron-Event"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Agentcron-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (the README's snippet, kept honest by the tests)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    # Compare bytes: compare_digest raises TypeError on a non-ASCII str, and the
    # header is whatever the sender (or an attacker) put there.
    return hmac.compare_digest(expected.encode(), fields.get("v1", "").encode("utf-8", "replace"))


@dataclass(frozen=True)
class WebhookResult:
    outcome: Literal["delivered", "failed", "refused"]
    status: int | None = None
    """The receiver's HTTP status, when it answered."""
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"

    def summary(self) -> str:
        """One line for the run record and the log: ``delivered (HTTP 204)``, ``refused: …``."""
        if self.delivered:
            return f"delivered (HTTP {self.status})"
        return f"{self.outcome}: {self.error}"


class WebhookSender:
    def __init__(
        self,
        *,
        timeout_seconds: float,
        resolver: Resolver = resolve,
        address_allowed: Callable[[str], bool] = is_public_address,
        ssl_context: ssl.SSLContext | None = None,
        connection_factory: ConnectionFactory | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._timeout = timeout_seconds
        self._time = wall_clock
        self._resolve = resolver
        self._allowed = address_allowed
        self._ssl = ssl_context or ssl.create_default_context()
        self._connection = connection_factory or _PinnedHTTPSConnection

    def send(
        self, url: str, payload: dict[str, Any], *, secret: str | None = None
    ) -> WebhookResult:
        try:
            return self._send(url, payload, secret)
        except Exception as exc:
            return WebhookResult("failed", error=str(exc) or type(exc).__name__)

    def _send(self, url: str, payload: dict[str, Any], secret: str | None) -> WebhookResult:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            return WebhookResult("refused", error="webhook URL must be https")
        host = parts.hostname
        port = parts.port or 443
        reason = host_refusal(host)
        if reason is not None:
            return WebhookResult("refused", error=reason)
        addresses = list(self._resolve(host, port))
        if not addresses:
            return WebhookResult("failed", error=f"{host} does not resolve")
        refused = [a for a in addresses if not self._allowed(a)]
        if refused:
            return WebhookResult(
                "refused", error=f"{host} resolves to a non-public address ({refused[0]})"
            )
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "agentcron-webhook/1"}
        if isinstance(payload.get("event"), str):
            headers[EVENT_HEADER] = payload["event"]
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, int(self._time()), body)
        connection = self._connection(
            host, port, address=addresses[0], timeout=self._timeout, context=self._ssl
        )
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(65536)
            if 200 <= response.status < 300:
                return WebhookResult("delivered", status=response.status)
            return WebhookResult("failed", status=response.status, error=f"HTTP {response.status}")
        finally:
            connection.close()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to a pre-resolved address; TLS still verifies the original host name."""

    def __init__(
        self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
