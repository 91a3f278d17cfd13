"""Blockpage fingerprints (stub interface; the verdict engine issue fills it in).

    db = FingerprintDB.default()
    db.match_body(text) -> list[{"name", "pattern", "location"}]
    db.match_dns_answer(ip) -> {"name", "pattern"} | None
"""

from __future__ import annotations

from dataclasses import dataclass, field

IRAN_BLOCKPAGE_IPS = ("10.10.34.34", "10.10.34.35", "10.10.34.36", "d0::11")


@dataclass(slots=True)
class FingerprintDB:
    body_patterns: list[tuple[str, str]] = field(default_factory=list)  # (name, substring)
    dns_ips: dict[str, str] = field(default_factory=dict)  # ip -> name

    @classmethod
    def default(cls) -> "FingerprintDB":
        return cls(
            body_patterns=[("nat_ir_peyvandha", "peyvandha.ir"), ("nat_ir_iframe_10_10", 'iframe src="http://10.10.')],
            dns_ips={ip: "nat_ir_dns" for ip in IRAN_BLOCKPAGE_IPS},
        )

    def match_body(self, text: str) -> list[dict[str, str]]:
        return [{"name": n, "pattern": p, "location": "body"} for n, p in self.body_patterns if p in text]

    def match_dns_answer(self, ip: str) -> dict[str, str] | None:
        name = self.dns_ips.get(ip)
        return {"name": name, "pattern": ip} if name else None
