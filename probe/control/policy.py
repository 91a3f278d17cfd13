"""Which destinations the helper may connect to: the SSRF guard.

The helper fetches URLs that strangers send it. Without a guard, ``http://169.254.169.254/`` or
``http://10.0.0.5:8500/`` would read the helper host's own network. Every address the helper is
about to connect to (each tcp_connect endpoint, the URL's host, every redirect hop) is checked here
first, and the connection is then made to that very address (see ``measure.PinnedGuardBackend``),
so a name that resolves differently the second time (DNS rebinding) cannot slip past.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from probe.netfacts import IPAddress, IPNetwork, parse_ip, special_purpose


@dataclass(frozen=True)
class AddressPolicy:
    """Refuses special-purpose addresses (private, loopback, link-local, multicast, reserved, ...)
    unless they fall in one of ``allow`` (``--allow-net``: a lab, a test, a private deployment)."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def refusal(self, ip: str | IPAddress) -> str | None:
        """Why a connection to ``ip`` is refused ("loopback", "private", ...), or None if allowed."""
        addr = parse_ip(ip) if isinstance(ip, str) else ip
        if addr is None:
            return "not-an-address"
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 to the kernel
        if any(addr.version == net.version and addr in net for net in self.allow):
            return None
        label = special_purpose(addr)
        if label is None and not addr.is_global:
            label = "non-global"  # anything else the IANA registries mark not globally reachable
        return label

    def allows(self, ip: str | IPAddress) -> bool:
        return self.refusal(ip) is None
