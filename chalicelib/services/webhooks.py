"""Webhook delivery: POST the finished run as JSON to the user's https URL.

A webhook is attacker-controlled input that makes *our* Lambda open a connection,
so delivery refuses anything but public addresses (SSRF): the host is resolved
once, every address must be globally routable (no private, loopback, link-local —
which includes the 169.254.169.254 metadata service —, multicast or reserved
ranges), and the connection goes to the vetted address itself, with the original
host name used for TLS (SNI and certificate check). Resolving once and connecting
to that address closes the DNS-rebinding gap between check and use. Redirects are
not followed. The timeout is short, and a failure is logged, never raised: it
cannot change the run's outcome.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Sequence[str]]


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class WebhookResult:
    delivered: bool
    status: int | None = None
    error: str | None = None


class WebhookSender:
    def __init__(
        self,
        *,
        timeout_seconds: float,
        resolver: Resolver = resolve,
        address_allowed: Callable[[str], bool] = is_public_address,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._resolve = resolver
        self._allowed = address_allowed
        self._ssl = ssl_context or ssl.create_default_context()

    def send(self, url: str, payload: dict[str, Any]) -> WebhookResult:
        try:
            return self._send(url, payload)
        except Exception as exc:
            log.warning("webhook delivery failed: %s", exc)
            return WebhookResult(delivered=False, error=str(exc))

    def _send(self, url: str, payload: dict[str, Any]) -> WebhookResult:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            return WebhookResult(delivered=False, error="webhook URL must be https")
        host = parts.hostname
        port = parts.port or 443
        addresses = list(self._resolve(host, port))
        if not addresses:
            return WebhookResult(delivered=False, error=f"{host} does not resolve")
        refused = [a for a in addresses if not self._allowed(a)]
        if refused:
            return WebhookResult(
                delivered=False, error=f"{host} resolves to a non-public address ({refused[0]})"
            )
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        connection = _PinnedHTTPSConnection(
            host, port, address=addresses[0], timeout=self._timeout, context=self._ssl
        )
        try:
            connection.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "agentcron-webhook/1",
                },
            )
            response = connection.getresponse()
            response.read(65536)
            ok = 200 <= response.status < 300
            return WebhookResult(
                delivered=ok,
                status=response.status,
                error=None if ok else f"HTTP {response.status}",
            )
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
