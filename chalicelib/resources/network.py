"""Where a task may connect: the outbound address policy of HTTP Tasks.

A definition chooses the URLs its HTTP Tasks call (``order-notification`` takes its
webhook from the execution's input), so without a policy anyone who may start an
execution could make the service call what only it can reach: the instance metadata
service at 169.254.169.254, Redis, the Lambda runtime API on loopback, other hosts in
the VPC. By default only public addresses are reached. Refused are loopback
(127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10), private (RFC 1918,
fc00::/7), shared CGNAT space (100.64.0.0/10), multicast, reserved, unspecified
(0.0.0.0, ::) and every other range that is not globally routable, IPv4 and IPv6;
IPv4 addresses carried in IPv6 ones (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``,
6to4, Teredo) are judged as the IPv4 address they carry.

The check applies to the address the socket connects to: the host is resolved once
(``getaddrinfo``, which reads every spelling of an IPv4 address, ``2130706433``,
``0177.0.0.1``, ``0x7f.1``, ``127.1``, as the address it means), the first address
that passes is the one connected to, and the Host header and TLS server name keep
the URL's host. There is no second lookup that DNS rebinding could answer
differently.

``ALLOWED_HTTP_HOSTS`` (comma-separated) opens what a deployment needs: a host name
(matched against the URL's host, case-insensitively; it is allowed whatever it
resolves to), an IP address or a CIDR block (matched against the resolved address).
"""
from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

SETTING = "ALLOWED_HTTP_HOSTS"

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """The destination is not one the policy allows; the message says why."""


@dataclass(frozen=True)
class Policy:
    names: frozenset[str] = frozenset()
    networks: tuple[_Network, ...] = ()

    @classmethod
    def from_setting(cls, text: str | None) -> "Policy":
        names: set[str] = set()
        networks: list[_Network] = []
        for entry in (text or "").split(","):
            entry = entry.strip()
            if not entry:
                continue
            try:
                network = ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                names.add(_name(entry))
                continue
            mapped = network.network_address.ipv4_mapped if network.version == 6 else None
            if mapped is not None and network.prefixlen >= 96:  # ::ffff:10.0.0.0/104 is 10.0.0.0/8
                network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
            networks.append(network)
        return cls(frozenset(names), tuple(networks))

    def refusal(self, host: str, address: _Address) -> str | None:
        """Why connecting to ``address`` (which ``host`` resolved to) is refused; None when allowed."""
        if _name(host) in self.names:
            return None
        judged = embedded_ipv4(address)
        if any(candidate in network for candidate in {address, judged} for network in self.networks
               if candidate.version == network.version):
            return None
        return blocked_kind(judged)


def policy() -> Policy:
    """The policy in force: ``ALLOWED_HTTP_HOSTS`` as the environment has it now."""
    return Policy.from_setting(os.environ.get(SETTING))


def _name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def embedded_ipv4(address: _Address) -> _Address:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo client), else itself."""
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def blocked_kind(address: _Address) -> str | None:
    """What kind of non-public address this is ("loopback", "private", ...); None for a public one."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.version == 4 and address in _CGNAT:
        return "shared (CGNAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


def resolve(host: str, port: int, rules: Policy) -> tuple[int, tuple]:
    """``(family, socket address)`` to connect to for ``host``: resolved once, checked.

    Raises :class:`Refused` when no address ``host`` resolves to is allowed, and
    ``OSError`` when it does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    reasons = []
    for family, _kind, _proto, _canonical, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        reason = rules.refusal(host, address)
        if reason is None:
            return family, sockaddr
        reasons.append(f"{address} ({reason})")
    raise Refused(f"{host} resolves only to addresses that are not public: {', '.join(dict.fromkeys(reasons))}; "
                  f"{SETTING} does not allow them")


def connect(family: int, sockaddr: tuple, timeout: float | None) -> socket.socket:
    """A connected TCP socket to exactly ``sockaddr``."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock
