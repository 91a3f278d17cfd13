"""Offline network facts the verdict engine checks DNS answers against. No I/O, no lookups.

* Special-purpose ("bogon") address ranges: an A/AAAA answer inside one of these for a public name is
  not a real server address. Transcribed from the IANA IPv4/IPv6 special-purpose registries (RFC 6890
  and updates) and the classic list in ``c2theg/DDoS_lists`` ``blacklist_bogon.txt`` (26 ranges, kept
  in the shared reference data).
* *Sinkhole* addresses: the conventional "this name is blocked" answers (0.0.0.0, 127.0.0.1, ::, ::1,
  see Citizen Lab ``dns.csv`` ``dns_br_allzero``). A private (RFC 1918) answer can be normal in a lab or
  a split-horizon network; a sinkhole answer never is.
* Per-platform prefixes for offline authenticity checks, aggregated (``collapse_addresses``, then
  rounded up to the covering allocation where the whole allocation is the platform's) from
  ``SM443/IP-Prefix-List`` (Facebook 498 prefixes, Telegram 24) and Telegram's published CIDR list
  (``core.telegram.org/resources/cidr.txt`` as quoted in the shared ``telegram_endpoints.csv``).
  Prefix lists go stale: an answer *inside* the table is evidence of authenticity; an answer *outside*
  it is never blocking evidence on its own (WhatsApp's chat servers, for one, live on AWS addresses).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (network, label). IPv4: IANA special-purpose registry + multicast/reserved.
_SPECIAL_V4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared-cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "ietf-protocol"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4-relay-anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
)

# IPv6: anything outside 2000::/3 (global unicast) is special or unallocated (this covers ::/128,
# ::1/128, ::ffff:0:0/96, ::/96, 0000::/8 where Iran's d0::11 lives, fc00::/7, fe80::/10, ff00::/8);
# inside 2000::/3 the special-purpose blocks below. 2002::/16 (6to4) counts when it embeds a bogon
# IPv4 address (c2theg lists 2002:a00::/24, 2002:7f00::/24, ...): checked by embedding.
_SPECIAL_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "ipv4-mapped"),
    ("64:ff9b:1::/48", "local-nat64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "orchid"),
    ("2001:20::/28", "orchidv2"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("3ffe::/16", "6bone-returned"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")

SPECIAL_PURPOSE: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(n), label) for n, label in _SPECIAL_V4 + _SPECIAL_V6
)

# Conventional DNS-blocking answers: never a real server, in any network.
SINKHOLES: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "255.255.255.255/32", "::/128", "::1/128")
)

# Platform -> prefixes (offline authenticity table). See module docstring for provenance.
_FACEBOOK = (
    "31.13.24.0/21",
    "31.13.64.0/18",
    "45.64.40.0/22",
    "57.141.0.0/20",
    "57.144.0.0/14",
    "66.220.144.0/20",
    "69.63.176.0/20",
    "69.171.224.0/19",
    "74.119.76.0/22",
    "102.132.96.0/20",
    "102.221.188.0/22",
    "103.4.96.0/22",
    "129.134.0.0/16",
    "157.240.0.0/16",
    "163.70.128.0/17",
    "163.114.128.0/20",
    "173.252.64.0/18",
    "179.60.192.0/22",
    "185.60.216.0/22",
    "185.89.216.0/22",
    "199.201.64.0/22",
    "204.15.20.0/22",
    "2620:0:1c00::/40",
    "2620:10d:c090::/44",
    "2a03:2880::/29",
    "2c0f:ef78::/32",
)
_TELEGRAM = (
    "91.105.192.0/23",
    "91.108.4.0/22",
    "91.108.8.0/21",
    "91.108.16.0/21",
    "91.108.56.0/22",
    "95.161.64.0/20",
    "149.154.160.0/20",
    "185.76.151.0/24",
    "2001:67c:4e8::/48",
    "2001:b28:f23c::/47",
    "2001:b28:f23f::/48",
    "2a0a:f280::/32",
)
PLATFORM_PREFIXES: dict[str, tuple[IPNetwork, ...]] = {
    "facebook": tuple(ipaddress.ip_network(n) for n in _FACEBOOK),
    "instagram": tuple(ipaddress.ip_network(n) for n in _FACEBOOK),  # same AS32934 front ends
    "telegram": tuple(ipaddress.ip_network(n) for n in _TELEGRAM),
    # whatsapp: deliberately absent: web/v.whatsapp.net are on Facebook's prefixes, the chat
    # servers eN.whatsapp.net on AWS Global Accelerator (15.197.0.0/16, 3.33.0.0/16).
}
# Published records that are special-purpose on purpose (not tampering): Signal's uptime check name
# resolves to 127.0.0.1 everywhere (OONI's signal test resolves it).
LEGIT_SPECIAL_ANSWERS: dict[str, str] = {"uptime.signal.org": "127.0.0.1"}

PLATFORM_ASNS: dict[str, tuple[int, ...]] = {
    "facebook": (32934,),
    "instagram": (32934,),
    "whatsapp": (32934,),
    "twitter": (13414,),
    "telegram": (62041, 59930, 44907),
    "youtube": (15169, 36040),
    "google": (15169,),
    "wikipedia": (14907,),  # Wikimedia Foundation
}


def is_ip_literal(host: str) -> bool:
    """``host`` is an address literal (v4 or v6), not a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress | None:
    """An address from an answer string ("1.2.3.4", "d0::11", "[::1]", "fe80::1%eth0"); None if not one."""
    t = text.strip().strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(t)
    except ValueError:
        return None


def special_purpose(ip: str | IPAddress) -> str | None:
    """The special-purpose label of an address ("private", "loopback", ...) or None for a global one."""
    addr = parse_ip(ip) if isinstance(ip, str) else ip
    if addr is None:
        return None
    if addr.version == 6:
        assert isinstance(addr, ipaddress.IPv6Address)
        if addr.ipv4_mapped is not None:
            return "ipv4-mapped"
        for net, label in SPECIAL_PURPOSE:
            if net.version == 6 and addr in net:
                return label
        if addr in _SIX_TO_FOUR and addr.sixtofour is not None and special_purpose(addr.sixtofour):
            return "6to4-bogon"
        if addr not in _GLOBAL_UNICAST_V6:
            return "reserved-v6"
        return None
    for net, label in SPECIAL_PURPOSE:
        if net.version == 4 and addr in net:
            return label
    return None


def is_bogon(ip: str | IPAddress) -> bool:
    return special_purpose(ip) is not None


def is_sinkhole(ip: str | IPAddress) -> bool:
    addr = parse_ip(ip) if isinstance(ip, str) else ip
    return addr is not None and any(addr.version == n.version and addr in n for n in SINKHOLES)


def in_prefixes(ip: str | IPAddress, prefixes: Iterable[IPNetwork]) -> bool:
    addr = parse_ip(ip) if isinstance(ip, str) else ip
    return addr is not None and any(addr.version == n.version and addr in n for n in prefixes)


def expected_prefixes_for(platform: str, declared: Iterable[IPNetwork] = ()) -> tuple[IPNetwork, ...]:
    """The target's own declared prefixes, else the built-in table for its platform (may be empty)."""
    declared = tuple(declared)
    return declared if declared else PLATFORM_PREFIXES.get(platform, ())
