"""One blockpage fingerprint as the public lists give it (OONI's and Citizen Lab's): the record the
list readers (``probe.fingerprints.sources``) produce and the matcher (``probe.fingerprints``) compiles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Scopes whose match is a confirmed block: a national or an ISP's own blockpage.
CONFIRMING_SCOPES = frozenset({"nat", "isp"})
# Scopes that are never evidence of blocking.
BENIGN_SCOPES = frozenset({"fp", "injb"})


@dataclass(frozen=True, slots=True)
class Fingerprint:
    name: str
    scope: str  # nat | isp | prod | inst | vbw | prov | fp | injb | ...
    location: str  # "dns" | "body" | "header.<lowercase name>"
    pattern_type: str  # full | contains | prefix | regexp
    pattern: str
    countries: tuple[str, ...] = ()
    source: str = ""  # "ooni" | "citizenlab" | "builtin" | "" (a CSV given by hand)
    listed_scope: str | None = None  # the list's own scope when ``scope`` was lowered to "vbw"

    @property
    def confirmed(self) -> bool:
        return self.scope in CONFIRMING_SCOPES

    def as_match(self, location: str | None = None) -> dict[str, Any]:
        out = {
            "name": self.name,
            "pattern": self.pattern,
            "location": location or self.location,
            "scope": self.scope,
            "confirmed": self.confirmed,
            "countries": list(self.countries),
            "source": self.source,
        }
        if self.listed_scope is not None:
            out["listed_scope"] = self.listed_scope
        return out

    @property
    def benign(self) -> bool:
        if self.scope in BENIGN_SCOPES:
            return True
        return "cloudflare" in (self.name + self.pattern).lower() and self.scope not in ("nat", "isp")

    def matches_text(self, text: str) -> bool:
        t = self.pattern_type
        if t == "contains":
            return self.pattern in text
        if t == "prefix":
            return text.startswith(self.pattern)
        if t == "full":
            return text == self.pattern
        if t == "regexp":
            try:
                return re.search(self.pattern, text) is not None
            except re.error:
                return False
        return False
