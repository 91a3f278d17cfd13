"""Blockpage fingerprints: DNS answers, HTTP bodies, HTTP headers (incl. redirect Location).

    db = FingerprintDB.default()     # OONI's and Citizen Lab's sets, shipped (or the user's updated copy)
    db = FingerprintDB.iran()        # only Iran's national blockpage (the old built-in set)
    db = FingerprintDB.from_ooni_csv(dns_csv=..., http_csv=...)          # OONI blocking-fingerprints CSVs
    db = FingerprintDB.from_citizenlab_csv(dns_csv=..., http_csv=...)    # Citizen Lab filtering-annotations
    db.match_body(text)        -> [{"name", "pattern", "location", "scope", "confirmed", "countries", "source"}]
    db.match_dns_answer(ip)    -> {...} | None
    db.match_headers(headers)  -> [...]   (header.server, header.location, header.via, ...)
    db.match_location(url)     -> [...]   (a redirect target checked as header.location)

A match's ``confirmed`` is true for a national (``nat``) or ISP (``isp``) fingerprint: those patterns
name one censor's own page, so a match identifies it. Where the sets come from, their licences and
``reachprobe fingerprints update``: :mod:`probe.fingerprints.sources` and docs/fingerprints.md.
    db.challenge(text, headers) -> str | None   (a CDN challenge/captcha page: NOT a blockpage)

Citizen Lab's ``http.csv`` has no ``pattern_type`` (every pattern is a substring) and its
``location_found`` is ``body`` or ``header`` without a name: such a pattern is matched against every
header rendered as ``Name: value`` (its list has both ``Location: http://...`` and bare host patterns).
Its ``dns.csv`` names the answer ``response``; ``expected_countries`` is a Python list literal.

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
import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from probe.fingerprints.record import BENIGN_SCOPES, CONFIRMING_SCOPES, Fingerprint
from probe.fingerprints.sources import (
    FILES,
    SHIPPED_DIR,
    read_citizenlab_dns_csv,
    read_citizenlab_http_csv,
    read_file,
    read_ooni_csv,
    user_dir,
)

# Iran's national blockpage addresses, with the names OONI's fingerprint list gives them.
IRAN_BLOCKPAGE_DNS: tuple[tuple[str, str], ...] = (
    ("10.10.34.34", "ooni.ir_4"),
    ("10.10.34.35", "ooni.ir_5"),
    ("10.10.34.36", "ooni.ir_10dot10_ipv4_1"),
    ("d0::11", "ooni.ir_ipv6_1"),
)
IRAN_BLOCKPAGE_IPS = tuple(ip for ip, _ in IRAN_BLOCKPAGE_DNS)

# Scopes whose match is weak evidence (a vague word can appear on an ordinary page).
WEAK_SCOPES = frozenset({"vbw"})
# A national or ISP blockpage names one censor: a match on it identifies the censor (confirmed).
# Citizen Lab's header patterns name no header: they are matched against every "Name: value" line.
ANY_HEADER = "*"

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
    """Fingerprints of blockpages: DNS answers, body patterns, header patterns.

    A pattern already held (same place, same text) is not added again, so OONI's list, which carries
    most of Citizen Lab's as ``cl.*``, and Citizen Lab's own files load side by side; the first loaded
    wins (``default()`` loads OONI's first)."""

    dns: dict[str, Fingerprint] = field(default_factory=dict)  # normalised ip -> fingerprint
    body: list[Fingerprint] = field(default_factory=list)
    headers: dict[str, list[Fingerprint]] = field(default_factory=dict)  # lowercase header | "*" -> fps
    sources: list[str] = field(default_factory=list)  # where the fingerprints came from (files, "builtin")
    _keys: set[tuple[str, str]] = field(default_factory=set, repr=False)
    _body_matcher: _BodyMatcher | None = field(default=None, repr=False)
    _benign_matcher: _BodyMatcher | None = field(default=None, repr=False)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def default(cls) -> FingerprintDB:
        """Every country's blockpages: OONI's and Citizen Lab's sets as shipped with the package, or
        the user's copy from ``reachprobe fingerprints update`` where one is present and loads. Parsed
        and compiled once per process; each call returns an independent copy sharing the compiled
        matchers (adding to a copy never changes the cached set)."""
        return load_default().copy()

    @classmethod
    def iran(cls) -> FingerprintDB:
        """Iran's national blockpage only (OONI ooni.ir_* / Citizen Lab nat_ir_*), DNS and body."""
        db = cls(sources=["builtin"])
        for ip, name in IRAN_BLOCKPAGE_DNS:
            db.add(Fingerprint(name, "nat", "dns", "full", ip, ("IR",), "builtin"))
        for name, pat in (
            ("ooni.ir_3", "peyvandha.ir/1-2"),
            ("nat_ir_peyvandha", "peyvandha.ir"),
            ("ooni.ir_2", "internet.ir/1-2"),
            ("cl.nat_ir_iframe_forward_ipv4", 'iframe src="http://10.10.'),
            ("ooni.ir_1", 'iframe src="http://[d0:0:0:0:0:0:0:11:80]"'),
        ):
            db.add(Fingerprint(name, "nat", "body", "contains", pat, ("IR",), "builtin"))
        return db

    @classmethod
    def from_ooni_csv(
        cls, dns_csv: str | Path | None = None, http_csv: str | Path | None = None, *, include_defaults: bool = True
    ) -> FingerprintDB:
        """Load OONI blocking-fingerprints CSVs (either may be omitted), added to the default set
        unless ``include_defaults=False``. Raises ValueError naming file and line on a bad file."""
        db = cls.default() if include_defaults else cls()
        for path in (dns_csv, http_csv):
            if path is not None:
                db.extend(read_ooni_csv(path), str(path))
        return db

    @classmethod
    def from_citizenlab_csv(
        cls, dns_csv: str | Path | None = None, http_csv: str | Path | None = None, *, include_defaults: bool = True
    ) -> FingerprintDB:
        """Load Citizen Lab filtering-annotations ``dns.csv`` / ``http.csv`` (either may be omitted)."""
        db = cls.default() if include_defaults else cls()
        if dns_csv is not None:
            db.extend(read_citizenlab_dns_csv(dns_csv), str(dns_csv))
        if http_csv is not None:
            db.extend(read_citizenlab_http_csv(http_csv), str(http_csv))
        return db

    def copy(self) -> FingerprintDB:
        return FingerprintDB(
            dns=dict(self.dns),
            body=list(self.body),
            headers={k: list(v) for k, v in self.headers.items()},
            sources=list(self.sources),
            _keys=set(self._keys),
            _body_matcher=self._body_matcher,
            _benign_matcher=self._benign_matcher,
        )

    def extend(self, fps: Iterable[Fingerprint], source: str | None = None) -> int:
        """Add fingerprints; returns how many were new."""
        n = 0
        for fp in fps:
            n += self.add(fp)
        if source is not None:
            self.sources.append(source)
        return n

    def add(self, fp: Fingerprint) -> bool:
        loc = fp.location
        kind = "header" if loc.startswith("header") else loc
        key = (kind, _norm_ip(fp.pattern) if kind == "dns" else fp.pattern)
        if key in self._keys:
            return False
        if loc == "dns":
            self.dns[key[1]] = fp
        elif loc == "body":
            self.body.append(fp)
            self._body_matcher = self._benign_matcher = None
        elif kind == "header":
            hname = loc.split(".", 1)[1].lower() if "." in loc else ANY_HEADER
            self.headers.setdefault(hname, []).append(fp)
        else:
            return False
        self._keys.add(key)
        return True

    def __len__(self) -> int:
        return len(self.dns) + len(self.body) + sum(len(v) for v in self.headers.values())

    # -- matching ----------------------------------------------------------------------------
    def _matchers(self) -> tuple[_BodyMatcher, _BodyMatcher]:
        if self._body_matcher is None or self._benign_matcher is None:
            vague = {_plain(f.pattern) for f in self.body if f.scope in WEAK_SCOPES}
            self._body_matcher = _BodyMatcher([_demote_generic(f, vague) for f in self.body if not f.benign])
            self._benign_matcher = _BodyMatcher([f for f in self.body if f.benign])
        return self._body_matcher, self._benign_matcher

    def match_body(self, text: str | bytes | None) -> list[dict[str, Any]]:
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

    def match_benign(self, text: str | None) -> list[dict[str, Any]]:
        """Known false-positive / benign patterns (scope fp, injb, Cloudflare), for explanations."""
        if not text:
            return []
        _, benign = self._matchers()
        return [h.as_match("body") for h in sorted(benign.scan(text), key=lambda h: h.name)]

    def match_dns_answer(self, ip: str) -> dict[str, Any] | None:
        fp = self.dns.get(_norm_ip(ip))
        # 0.0.0.0 / 127.0.0.1 are listed as vague (vbw): any sinkhole answers them, and the bogon rule
        # judges those; only a specific censor's address is a DNS blockpage fingerprint.
        if fp is None or fp.benign or fp.scope in WEAK_SCOPES:
            return None
        return fp.as_match("dns")

    def match_headers(self, headers: Mapping[str, str] | None) -> list[dict[str, Any]]:
        """Header fingerprints (header.server, header.location, header.via, ...; case-insensitive
        names), and the name-less ones (Citizen Lab's) against every ``Name: value`` line."""
        if not headers:
            return []
        out: list[dict[str, Any]] = []
        anywhere = self.headers.get(ANY_HEADER, ())
        for k, v in headers.items():
            if not isinstance(v, str):
                continue
            name = k.lower()
            for fp in self.headers.get(name, ()):
                if not fp.benign and fp.matches_text(v):
                    out.append(fp.as_match(f"header.{name}"))
            if anywhere:
                line = f"{_header_case(name)}: {v}"
                for fp in anywhere:
                    if not fp.benign and fp.pattern in line:
                        out.append(fp.as_match(f"header.{name}"))
        return out

    def match_location(self, url: str | None) -> list[dict[str, Any]]:
        """A redirect target checked against header.location fingerprints (and name-less ones)."""
        if not url:
            return []
        out = [
            fp.as_match("header.location")
            for fp in self.headers.get("location", ())
            if not fp.benign and fp.matches_text(url)
        ]
        line = f"Location: {url}"
        out += [
            fp.as_match("header.location")
            for fp in self.headers.get(ANY_HEADER, ())
            if not fp.benign and fp.pattern in line
        ]
        return out

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


_TAG_RE = re.compile(r"<[^>]*>")


def _plain(pattern: str) -> str:
    return " ".join(_TAG_RE.sub(" ", pattern).split()).lower()


def _demote_generic(fp: Fingerprint, vague: set[str]) -> Fingerprint:
    """A pattern that is only a vague blocking word in markup (OONI's ``<title>Access Denied</title>``
    listed as one institution's page) cannot tell a censor's page from a site's own "access denied"
    (Akamai's, Apache's): it counts as weak (scope "vbw"), its listed scope kept in ``listed_scope``."""
    if fp.scope in WEAK_SCOPES or fp.pattern_type == "regexp" or _plain(fp.pattern) not in vague:
        return fp
    return replace(fp, scope="vbw", listed_scope=fp.scope)


def _header_case(name: str) -> str:
    """ "x-app-url" -> "X-App-Url": how Citizen Lab's "Location: ..." patterns were written."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


# --- the default set and extra lists (files read by probe.fingerprints.sources) ---------------------
def load_dir(shipped: Path = SHIPPED_DIR, user: Path | None = None) -> FingerprintDB:
    """The four files, each from ``user`` when present and loadable there, else from ``shipped``."""
    db = FingerprintDB.iran()  # Iran's national page is never missing, whatever the files hold
    for name in FILES:
        chosen = None
        if user is not None and (user / name).is_file():
            try:
                fps = read_file(user / name)
                chosen = user / name
            except (OSError, ValueError, UnicodeDecodeError, csv.Error):
                chosen = None  # a broken update: the shipped copy stands in
        if chosen is None and (shipped / name).is_file():
            fps = read_file(shipped / name)
            chosen = shipped / name
        if chosen is not None:
            db.extend(fps, str(chosen))
    db._matchers()  # compile once, here, so every copy shares the compiled patterns
    return db


@functools.lru_cache(maxsize=4)
def _cached(shipped: str, user: str | None) -> FingerprintDB:
    return load_dir(Path(shipped), Path(user) if user else None)


def load_default() -> FingerprintDB:
    """The default set, parsed and compiled once per process (per user directory)."""
    return _cached(str(SHIPPED_DIR), str(user_dir()))


def clear_cache() -> None:
    """After ``fingerprints update``: the next ``default()`` reads the new files."""
    _cached.cache_clear()


def load_extra_dir(d: str | Path) -> FingerprintDB:
    """The default set plus the lists found in directory ``d`` (``--fingerprints DIR``): OONI's
    ``ooni_fingerprints_{dns,http}.csv`` / ``fingerprints_{dns,http}.csv`` and Citizen Lab's
    ``dns.csv`` / ``http.csv`` (in ``d`` or ``d/citizenlab/``). ValueError when none is there or one
    does not parse."""
    d = Path(d)
    readers = {
        "ooni_fingerprints_dns.csv": read_ooni_csv,
        "ooni_fingerprints_http.csv": read_ooni_csv,
        "fingerprints_dns.csv": read_ooni_csv,
        "fingerprints_http.csv": read_ooni_csv,
        "dns.csv": read_citizenlab_dns_csv,
        "http.csv": read_citizenlab_http_csv,
        "citizenlab/dns.csv": read_citizenlab_dns_csv,
        "citizenlab/http.csv": read_citizenlab_http_csv,
    }
    db = FingerprintDB.default()
    found = 0
    for rel, reader in readers.items():
        path = d / rel
        if path.is_file():
            try:
                db.extend(reader(path, "ooni" if reader is read_ooni_csv else "citizenlab"), str(path))
            except (UnicodeDecodeError, csv.Error) as exc:
                raise ValueError(f"{path}: {exc}") from exc
            found += 1
    if not found:
        raise ValueError(f"{d}: none of {', '.join(readers)} there")
    return db


__all__ = [
    "BENIGN_SCOPES",
    "CONFIRMING_SCOPES",
    "WEAK_SCOPES",
    "Fingerprint",
    "FingerprintDB",
    "clear_cache",
    "load_default",
    "load_extra_dir",
]
