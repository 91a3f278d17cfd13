"""Blockpage fingerprints: DNS answers, HTTP bodies, HTTP headers (incl. redirect Location).

    db = FingerprintDB.default()                      # built-in Iran defaults
    db = FingerprintDB.from_ooni_csv(dns_csv=..., http_csv=...)   # OONI blocking-fingerprints CSVs
    db.match_body(text)        -> [{"name", "pattern", "location", "scope"}]   (blockpage matches only)
    db.match_dns_answer(ip)    -> {"name", "pattern", "location", "scope"} | None
    db.match_headers(headers)  -> [...]   (header.server, header.location, header.via, ...)
    db.match_location(url)     -> [...]   (a redirect target checked as header.location)
    db.challenge(text, headers) -> str | None   (a CDN challenge/captcha page: NOT a blockpage)

OONI's CSV columns: ``name, scope, other_names, location_found, pattern_type, pattern,
confidence_no_fp, expected_countries, source, exp_url, notes``; ``pattern_type`` is
``full | contains | prefix | regexp``; ``location_found`` is ``dns``, ``body`` or ``header.<name>``.

Scopes (ooni/blocking-fingerprints): ``nat`` national, ``isp``, ``prod`` a filtering product, ``inst``
an institution, ``vbw`` a vague blocking word ("Web Page Blocked"), ``prov`` a provider's own geoblock,
``fp`` known false positives, ``injb`` benign injections (router update notices). ``fp`` and ``injb``
never count as blockpages; ``vbw`` matches are returned (the verdict treats them as weak).

Matching speed: the body is scanned once by a single compiled regex built as a trie of every literal
``contains`` pattern, inside a lookahead so overlapping patterns are all found (about 0.2 s for a 1 MB
body with OONI's 1,300 body patterns, milliseconds for a normal page); ``regexp`` patterns are
compiled once; ``prefix``/``full`` are string compares.
"""

from __future__ import annotations

import csv
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

# Iran's national blockpage addresses, with the names OONI's fingerprint list gives them.
IRAN_BLOCKPAGE_DNS: tuple[tuple[str, str], ...] = (
    ("10.10.34.34", "ooni.ir_4"), ("10.10.34.35", "ooni.ir_5"),
    ("10.10.34.36", "ooni.ir_10dot10_ipv4_1"), ("d0::11", "ooni.ir_ipv6_1"),
)
IRAN_BLOCKPAGE_IPS = tuple(ip for ip, _ in IRAN_BLOCKPAGE_DNS)

# Scopes that are never evidence of blocking.
BENIGN_SCOPES = frozenset({"fp", "injb"})
# Scopes whose match is weak evidence (a vague word can appear on an ordinary page).
WEAK_SCOPES = frozenset({"vbw"})

# CDN / anti-bot challenge pages: the site's own protection answering, not a censor. Literal markers
# from Cloudflare's "Just a moment" / "Attention Required" / managed-challenge pages, plus the
# Cloudflare-related patterns that OONI's list files under "prod" (ooni.in_6, ooni.id_39, ooni.mm_http_2:
# "<title>Please Wait... | Cloudflare</title>"), which are challenges, not blockpages.
_CHALLENGE_MARKERS: tuple[tuple[str, str], ...] = (
    ("cloudflare_challenge", "cf-browser-verification"),
    ("cloudflare_challenge", "/cdn-cgi/challenge-platform/"),
    ("cloudflare_challenge", "cf_chl_opt"),
    ("cloudflare_challenge", "cf-chl-"),
    ("cloudflare_challenge", "<title>Just a moment...</title>"),
    ("cloudflare_challenge", "Checking your browser before accessing"),
    ("cloudflare_challenge", "Attention Required! | Cloudflare"),
    ("cloudflare_challenge", "<title>Please Wait... | Cloudflare</title>"),
    ("cloudflare_challenge", "DDoS protection by Cloudflare"),
    ("ddos_guard_challenge", "<title>DDoS-Guard</title>"),
    ("sucuri_challenge", "Sucuri WebSite Firewall - Access Denied"),
    ("akamai_bot_manager", "/_sec/cp_challenge/"),
)
_CHALLENGE_HEADER = ("cf-mitigated", "challenge")  # Cloudflare sets "cf-mitigated: challenge"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    name: str
    scope: str  # nat | isp | prod | inst | vbw | prov | fp | injb | ...
    location: str  # "dns" | "body" | "header.<lowercase name>"
    pattern_type: str  # full | contains | prefix | regexp
    pattern: str
    countries: tuple[str, ...] = ()

    def as_match(self, location: str | None = None) -> dict[str, str]:
        return {"name": self.name, "pattern": self.pattern, "location": location or self.location,
                "scope": self.scope}

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


def _norm_ip(text: str) -> str:
    t = text.strip().strip("[]")
    try:
        return ipaddress.ip_address(t).compressed
    except ValueError:
        return t


def _trie_regex(words: Iterable[str]) -> str:
    """A regex source matching any of ``words`` whose alternations follow a character trie, so that at
    each text position only the branch for the next character is explored."""
    root: dict = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True

    def build(node: dict) -> str:
        # Iterative over long single-child chains to keep recursion shallow for long patterns.
        parts: list[str] = []
        while True:
            keys = [k for k in node if k != ""]
            if len(keys) == 1 and "" not in node:
                parts.append(re.escape(keys[0]))
                node = node[keys[0]]
                continue
            break
        keys = sorted(k for k in node if k != "")
        if not keys:
            return "".join(parts)
        alts = [re.escape(k) + build(node[k]) for k in keys]
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if "" in node:
            body = "(?:" + body + ")?"
        return "".join(parts) + body

    return build(root) if root else r"(?!)"


class _BodyMatcher:
    """All body fingerprints, compiled once."""

    def __init__(self, fps: list[Fingerprint]):
        self.by_literal: dict[str, list[Fingerprint]] = {}
        self.prefix: list[Fingerprint] = []
        self.full: dict[str, list[Fingerprint]] = {}
        self.regexps: list[tuple[re.Pattern[str], Fingerprint]] = []
        for fp in fps:
            if fp.pattern_type == "contains" and fp.pattern:
                self.by_literal.setdefault(fp.pattern, []).append(fp)
            elif fp.pattern_type == "prefix":
                self.prefix.append(fp)
            elif fp.pattern_type == "full":
                self.full.setdefault(fp.pattern, []).append(fp)
            elif fp.pattern_type == "regexp":
                try:
                    self.regexps.append((re.compile(fp.pattern), fp))
                except re.error:
                    pass
        literals = sorted(self.by_literal)
        self._rx = re.compile("(?=(" + _trie_regex(literals) + "))") if literals else None
        self._lits = set(literals)

    def scan(self, text: str) -> list[Fingerprint]:
        found: dict[str, Fingerprint] = {}
        if self._rx is not None and text:
            seen_at: set[str] = set()
            for m in self._rx.finditer(text):
                longest = m.group(1)
                # Every literal matching at this position is a prefix of the longest one.
                for k in range(1, len(longest) + 1):
                    cand = longest[:k]
                    if cand in self._lits and cand not in seen_at:
                        seen_at.add(cand)
                        for fp in self.by_literal[cand]:
                            found[fp.name] = fp
        for fp in self.prefix:
            if text.startswith(fp.pattern):
                found[fp.name] = fp
        for fp in self.full.get(text, ()):
            found[fp.name] = fp
        if self.full:
            stripped = text.strip()
            for fp in self.full.get(stripped, ()):
                found[fp.name] = fp
        for rx, fp in self.regexps:
            if rx.search(text):
                found[fp.name] = fp
        return list(found.values())


@dataclass(slots=True)
class FingerprintDB:
    """Fingerprints of blockpages. Built-in Iran defaults, or OONI's CSVs (which include them)."""

    dns: dict[str, Fingerprint] = field(default_factory=dict)  # normalised ip -> fingerprint
    body: list[Fingerprint] = field(default_factory=list)
    headers: dict[str, list[Fingerprint]] = field(default_factory=dict)  # lowercase header -> fps
    _body_matcher: _BodyMatcher | None = field(default=None, repr=False)
    _benign_matcher: _BodyMatcher | None = field(default=None, repr=False)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def default(cls) -> "FingerprintDB":
        """Iran's national blockpage (OONI ooni.ir_* / Citizen Lab nat_ir_*), DNS and body."""
        db = cls()
        for ip, name in IRAN_BLOCKPAGE_DNS:
            db.add(Fingerprint(name, "nat", "dns", "full", ip, ("IR",)))
        for name, pat in (
            ("ooni.ir_3", "peyvandha.ir/1-2"),
            ("nat_ir_peyvandha", "peyvandha.ir"),
            ("ooni.ir_2", "internet.ir/1-2"),
            ("cl.nat_ir_iframe_forward_ipv4", 'iframe src="http://10.10.'),
            ("ooni.ir_1", 'iframe src="http://[d0:0:0:0:0:0:0:11:80]"'),
        ):
            db.add(Fingerprint(name, "nat", "body", "contains", pat, ("IR",)))
        return db

    @classmethod
    def from_ooni_csv(cls, dns_csv: str | Path | None = None, http_csv: str | Path | None = None,
                      *, include_defaults: bool = True) -> "FingerprintDB":
        """Load OONI blocking-fingerprints CSVs (either may be omitted). The built-in Iran defaults are
        kept unless ``include_defaults=False`` (OONI's list contains them too; names de-duplicate)."""
        db = cls.default() if include_defaults else cls()
        for path in (dns_csv, http_csv):
            if path is None:
                continue
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    fp = _row_to_fp(row)
                    if fp is not None:
                        db.add(fp)
        return db

    def add(self, fp: Fingerprint) -> None:
        loc = fp.location
        if loc == "dns":
            self.dns[_norm_ip(fp.pattern)] = fp
        elif loc == "body":
            if not any(x.name == fp.name and x.pattern == fp.pattern for x in self.body):
                self.body.append(fp)
            self._body_matcher = self._benign_matcher = None
        elif loc.startswith("header"):
            hname = loc.split(".", 1)[1].lower() if "." in loc else "*"
            self.headers.setdefault(hname, []).append(fp)

    def __len__(self) -> int:
        return len(self.dns) + len(self.body) + sum(len(v) for v in self.headers.values())

    # -- matching ----------------------------------------------------------------------------
    def _matchers(self) -> tuple[_BodyMatcher, _BodyMatcher]:
        if self._body_matcher is None or self._benign_matcher is None:
            self._body_matcher = _BodyMatcher([f for f in self.body if not f.benign])
            self._benign_matcher = _BodyMatcher([f for f in self.body if f.benign])
        return self._body_matcher, self._benign_matcher

    def match_body(self, text: str | bytes | None) -> list[dict[str, str]]:
        """Blockpage fingerprints found in a body. Benign/false-positive patterns are not returned, and
        on a CDN challenge page the vague and CDN-related matches are dropped (a captcha is not a
        blockpage)."""
        if not text:
            return []
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        matcher, benign = self._matchers()
        hits = matcher.scan(text)
        if hits and self.challenge(text) is not None:
            hits = [h for h in hits if h.scope in ("nat", "isp")]
        if hits and all(h.scope in WEAK_SCOPES for h in hits) and benign.scan(text):
            # Only vague words ("Access Denied") on a page that also carries a known benign pattern
            # (an S3 AccessDenied error, a default server page): not a blockpage.
            hits = []
        return [h.as_match("body") for h in sorted(hits, key=lambda h: h.name)]

    def match_benign(self, text: str | None) -> list[dict[str, str]]:
        """Known false-positive / benign patterns (scope fp, injb, Cloudflare), for explanations."""
        if not text:
            return []
        _, benign = self._matchers()
        return [h.as_match("body") for h in sorted(benign.scan(text), key=lambda h: h.name)]

    def match_dns_answer(self, ip: str) -> dict[str, str] | None:
        fp = self.dns.get(_norm_ip(ip))
        return fp.as_match("dns") if fp is not None else None

    def match_headers(self, headers: Mapping[str, str] | None) -> list[dict[str, str]]:
        """Header fingerprints (header.server, header.location, header.via, ...); case-insensitive names."""
        if not headers:
            return []
        out: list[dict[str, str]] = []
        for k, v in headers.items():
            if not isinstance(v, str):
                continue
            for fp in self.headers.get(k.lower(), ()):
                if not fp.benign and fp.matches_text(v):
                    out.append(fp.as_match(f"header.{k.lower()}"))
        return out

    def match_location(self, url: str | None) -> list[dict[str, str]]:
        """A redirect target checked against header.location fingerprints."""
        if not url:
            return []
        return [fp.as_match("header.location") for fp in self.headers.get("location", ())
                if not fp.benign and fp.matches_text(url)]

    def scope_of(self, name: str) -> str | None:
        for fp in self.body:
            if fp.name == name:
                return fp.scope
        for fps in self.headers.values():
            for fp in fps:
                if fp.name == name:
                    return fp.scope
        for fp in self.dns.values():
            if fp.name == name:
                return fp.scope
        return None

    @staticmethod
    def challenge(text: str | None, headers: Mapping[str, str] | None = None) -> str | None:
        """Name of the CDN challenge (captcha / browser check) this response is, or None."""
        if headers:
            for k, v in headers.items():
                if k.lower() == _CHALLENGE_HEADER[0] and isinstance(v, str) and _CHALLENGE_HEADER[1] in v.lower():
                    return "cloudflare_challenge"
        if text:
            for name, marker in _CHALLENGE_MARKERS:
                if marker in text:
                    return name
        return None


def _row_to_fp(row: Mapping[str, str | None]) -> Fingerprint | None:
    name = (row.get("name") or "").strip()
    loc = (row.get("location_found") or "").strip().lower()
    ptype = (row.get("pattern_type") or "contains").strip().lower()
    pattern = row.get("pattern")
    if not name or not loc or pattern is None or pattern == "":
        return None
    scope = (row.get("scope") or "").strip().lower()
    countries = tuple(c.strip().upper() for c in (row.get("expected_countries") or "").split(",") if c.strip())
    if loc == "header":  # Citizen Lab style: unspecified header; treat as Location (their forwards)
        loc = "header.location"
    return Fingerprint(name, scope, loc, ptype, pattern, countries)
