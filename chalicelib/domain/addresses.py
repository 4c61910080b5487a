"""Which network addresses a webhook may reach: public unicast only.

A webhook URL is attacker-controlled input that makes agentcron open a connection
from inside its own network (SSRF). The same rule is applied twice: when a schedule
is written, to a host that is an IP literal (:func:`literal_address` understands
every spelling a resolver accepts), and at delivery, to every address the host name
resolves to.

**IPv4.** Refused: the IANA special-purpose blocks that are not globally reachable —
``0.0.0.0/8``, ``10/8``, ``100.64/10`` (carrier-grade NAT), ``127/8``,
``169.254/16`` (link-local, including the ``169.254.169.254`` metadata service),
``172.16/12``, ``192.0.0/24``, the three documentation nets, ``192.88.99/24``
(6to4 relays), ``192.168/16``, ``198.18/15`` (benchmarking) — plus multicast
``224/4`` and reserved ``240/4`` (with broadcast). A literal may be written in any
form ``inet_aton`` reads, which a resolver turns into the same address:
``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``.

**IPv6.** Allowed: global unicast (``2000::/3``) outside its special blocks
(``2001::/23`` protocol assignments including Teredo ``2001::/32``, documentation
``2001:db8::/32`` and ``3fff::/20``, 6to4 ``2002::/16``), and two forms that *embed*
an IPv4 address which must itself be allowed — IPv4-mapped ``::ffff:a.b.c.d`` and the
well-known NAT64 prefix ``64:ff9b::/96`` (an IPv6-only network with DNS64 reaches
every IPv4 host that way, so refusing it wholesale would break delivery there).
Everything else is refused: loopback, unspecified, IPv4-compatible ``::a.b.c.d``
(deprecated), local-use NAT64 ``64:ff9b:1::/48``, discard ``100::/64``, unique-local
``fc00::/7`` (which holds the ``fd00:ec2::254`` metadata address), link-local,
site-local and multicast. 6to4 and Teredo embed IPv4 addresses too but are obsolete
tunnelling schemes; they are refused whatever they embed.

**Host names** are checked at delivery, after resolution (and the connection goes to
the checked address, so a second resolution cannot change it). At write time only
``localhost`` and ``*.localhost`` are refused by name: they are loopback by
definition (RFC 6761).
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4_BLOCKED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_BLOCKED = (
    (ipaddress.IPv6Network("2001::/32"), "a Teredo address"),
    (ipaddress.IPv6Network("2001::/23"), "an IETF protocol-assignment address"),
    (ipaddress.IPv6Network("2001:db8::/32"), "a documentation address"),
    (ipaddress.IPv6Network("3fff::/20"), "a documentation address"),
    (ipaddress.IPv6Network("2002::/16"), "a 6to4 address"),
)
_V6_EMBEDDING = (
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix
)
_V6_NAMED = (
    (ipaddress.IPv6Network("::/96"), "an IPv4-compatible or unspecified address"),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "a local-use NAT64 address"),
)

_V4_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be contacted, or None if it is public unicast."""
    if isinstance(address, ipaddress.IPv4Address):
        if any(address in net for net in _V4_BLOCKED):
            return f"{address} is not a public unicast address"
        return None
    plain = ipaddress.IPv6Address(address.packed)  # drop any %scope
    for net in _V6_EMBEDDING:
        if plain in net:
            embedded = ipaddress.IPv4Address(plain.packed[-4:])
            inner = refusal(embedded)
            return None if inner is None else f"{plain} embeds {embedded}, which is not public"
    for net, what in _V6_NAMED:
        if plain in net:
            return f"{plain} is {what}"
    if plain not in _V6_GLOBAL_UNICAST:
        return f"{plain} is not a public unicast address"
    for net, what in _V6_BLOCKED:
        if plain in net:
            return f"{plain} is {what}"
    return None


def is_public(address: str) -> bool:
    """Whether a resolved address (as ``getaddrinfo`` returns it) may be contacted."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return refusal(parsed) is None


def literal_address(host: str) -> IPAddress | None:
    """The address a host *literal* denotes (None for a name).

    IPv6 as ``urlsplit`` gives it (no brackets, optional ``%zone``); IPv4 in every
    ``inet_aton`` spelling: 1 to 4 parts, each decimal, octal (leading ``0``) or hex
    (``0x``), the last part filling the remaining bytes.
    """
    candidate = host[:-1] if host.endswith(".") else host
    if ":" in candidate:
        try:
            return ipaddress.IPv6Address(candidate)
        except ValueError:
            return None
    parts = candidate.split(".")
    if not 1 <= len(parts) <= 4 or not all(_V4_PART.match(p) for p in parts):
        return None
    values = [_number(p) for p in parts]
    head, last = values[:-1], values[-1]
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (5 - len(values))):
        return None
    number = last
    for i, value in enumerate(head):
        number |= value << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def host_refusal(host: str) -> str | None:
    """Why a URL's host may not be used as written (checked when a schedule is saved)."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"{host} is a loopback name"
    address = literal_address(host)
    return None if address is None else refusal(address)


def _number(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)
