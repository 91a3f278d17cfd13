"""An offline prefix -> AS number table for the helper's ``ip_info`` (never an online lookup).

Format: one ``PREFIX ASN`` per line (tab, space or comma between), ``#`` and ``;`` comments allowed: the
``ipasn`` files that pyasn's ``pyasn_util_convert.py`` writes from a RouteViews RIB are in this
format. Longest prefix wins. Without a table every ASN is 0, as oohelperd reports on a miss.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from probe.netfacts import parse_ip


class ASNTable:
    def __init__(self, entries: dict[tuple[int, int], dict[int, int]] | None = None):
        # (ip version, prefix length) -> {network address as int: asn}
        self._by_len = entries or {}
        self._lengths = {
            4: sorted({p for v, p in self._by_len if v == 4}, reverse=True),
            6: sorted({p for v, p in self._by_len if v == 6}, reverse=True),
        }

    @classmethod
    def load(cls, path: str | Path) -> ASNTable:
        """Raise ValueError naming file and line on a malformed line."""
        entries: dict[tuple[int, int], dict[int, int]] = {}
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                text = line.split("#", 1)[0].strip()
                if not text or text.startswith(";"):  # pyasn's header lines
                    continue
                parts = re.split(r"[\s,]+", text)
                try:
                    net = ipaddress.ip_network(parts[0], strict=False)
                    asn = int(parts[1].upper().removeprefix("AS"))
                except (ValueError, IndexError) as exc:
                    raise ValueError(f"{path}:{lineno}: expected 'PREFIX ASN', got {text!r} ({exc})") from None
                entries.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = asn
        return cls(entries)

    def lookup(self, ip: str) -> int:
        addr = parse_ip(ip)
        if addr is None:
            return 0
        bits = addr.max_prefixlen
        value = int(addr)
        for plen in self._lengths[addr.version]:
            key = (value >> (bits - plen)) << (bits - plen) if plen else 0
            asn = self._by_len[(addr.version, plen)].get(key)
            if asn is not None:
                return asn
        return 0
