"""targets.yaml: the model of what to measure, validated on load.

File shape (see the shipped ``targets.yaml``)::

    version: 1
    platforms:
      facebook:
        asns: [32934]
        prefixes: ["31.13.24.0/21", ...]          # optional, for offline authenticity checks
        targets:
          - name: facebook-web
            kind: web                              # web | endpoint
            urls: ["https://www.facebook.com/"]
            dns: ["www.facebook.com"]              # optional; default: the hosts of urls/endpoints
            tls_name: www.facebook.com             # optional; default: the host of the URL
      telegram:
        asns: [62041, 59930, 44907]
        targets:
          - name: telegram-dc1
            kind: endpoint
            endpoints: ["149.154.175.50:443"]
    canaries:
      - name: canary-example
        scope: international                       # domestic | international
        urls: ["https://www.example.org/"]

Errors are raised as :class:`TargetsError`, whose message names the file, the line and the field.
The full format (per-target ``asns``/``prefixes`` overrides, canary rules) is in docs/targets.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from probe.endpoint import format_endpoint
from probe.netfacts import is_ip_literal

# Platforms the probe knows. An unknown key in targets.yaml is an error (a typo such as "facebok"
# would otherwise silently create a platform nobody analyses). "other" holds imported URLs that
# belong to no listed platform.
KNOWN_PLATFORMS: tuple[str, ...] = (
    "facebook",
    "twitter",
    "telegram",
    "instagram",
    "youtube",
    "whatsapp",
    "signal",
    "tiktok",
    "wikipedia",
    "google",
    "other",
)
CANARY_PLATFORM = "canary"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str  # IP literal or name
    port: int

    def __str__(self) -> str:
        return format_endpoint(self.host, self.port)


@dataclass(frozen=True, slots=True)
class Target:
    platform: str  # a KNOWN_PLATFORMS key, or "canary"
    name: str  # unique in the file
    kind: Literal["web", "endpoint", "canary"]
    urls: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    dns_names: tuple[str, ...] = ()  # names to resolve (defaulted from urls/endpoints on load)
    scope: Literal["domestic", "international"] | None = None  # canaries only
    tls_name: str | None = None
    expected_asns: tuple[int, ...] = ()
    expected_prefixes: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    line: int | None = None  # line in the targets file, for messages

    @property
    def is_canary(self) -> bool:
        return self.kind == "canary"

    @property
    def known_to_exist(self) -> bool:
        """The names of a platform's (or canary's) own target come from the targets file, which is
        curated: they exist, so NXDOMAIN for them at every resolver is not "the site is gone". URLs
        imported under "other" (a test list) carry no such promise: sites on those lists do vanish."""
        return self.platform != "other"

    def url_hosts(self) -> list[str]:
        return [urlsplit(u).hostname or "" for u in self.urls]

    def to_dict(self) -> dict[str, Any]:
        """Everything about the target, JSON-safe (`targets list --format json`). Results lines carry
        less: their ``target`` is platform, name, kind and scope (built by probe.runner)."""
        return {
            "platform": self.platform,
            "name": self.name,
            "kind": self.kind,
            "urls": list(self.urls),
            "endpoints": [str(e) for e in self.endpoints],
            "dns_names": list(self.dns_names),
            "scope": self.scope,
            "tls_name": self.tls_name,
            "expected_asns": list(self.expected_asns),
            "expected_prefixes": [str(p) for p in self.expected_prefixes],
            "known_to_exist": self.known_to_exist,
        }


@dataclass(slots=True)
class TargetSet:
    path: Path
    targets: list[Target] = field(default_factory=list)

    @property
    def canaries(self) -> list[Target]:
        return [t for t in self.targets if t.is_canary]

    def platforms(self) -> list[str]:
        return sorted({t.platform for t in self.targets})


class TargetsError(Exception):
    """A targets file that cannot be used. ``str()`` is the message to show the user."""

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        field: str | None,
        message: str,
        *,
        more: Sequence[TargetsError] = (),
    ):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        # What reaches the terminal never carries raw control characters (an ESC in a YAML key or a
        # file name would be an escape sequence): they are shown escaped.
        shown_path, shown_field = printable(self.path), printable(field) if field else field
        # Further problems found in the same file (the loader reports the earliest one first);
        # `reachprobe targets check` prints them all.
        self.more: tuple[TargetsError, ...] = tuple(more)
        where = shown_path + (f":{line}" if line else "")
        what = f" {shown_field}:" if shown_field else ""
        tail = f" (+{len(self.more)} more problem{'s' if len(self.more) > 1 else ''})" if self.more else ""
        super().__init__(f"{where}:{what} {message}{tail}")

    def all_messages(self) -> list[str]:
        """One line per problem: this one, then the others (without the "+N more" tail)."""
        first = TargetsError(self.path, self.line, self.field, self.message)
        return [str(first)] + [str(e) for e in self.more]


# ---------------------------------------------------------------------------------------------
# Value checks (plain functions raising ValueError; the loader and the Citizen Lab importer use them)
# ---------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1: ESC and NUL among them


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``), safe to print on a terminal."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def check_no_control(text: str, what: str) -> str:
    """Refuse control characters (ESC, NUL, ...) in a name or URL: they would reach terminals
    (``targets list``) and other tools' parsers through the results."""
    m = _CONTROL.search(text)
    if m:
        raise ValueError(f"{what} {text!r} contains a control character (U+{ord(m.group(0)):04X})")
    return text


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")  # "_" occurs in real names (_dmarc, CDNs)


def known_existing_names(targets: Sequence[Target]) -> frozenset[str]:
    """Every name the targets file vouches for (see ``Target.known_to_exist``), lower case, for
    ``probe.verdict.RunContext.known_existing_names``."""
    out: set[str] = set()
    for t in targets:
        if not t.known_to_exist:
            continue
        for h in [*t.dns_names, *t.url_hosts(), *(e.host for e in t.endpoints)]:
            if h and not is_ip_literal(h):
                out.add(h.lower().rstrip("."))
    return frozenset(out)


def check_dns_name(name: str) -> str:
    """A resolvable host name (not an IP literal). Returns it lower-cased, without a final dot."""
    if not name:
        raise ValueError("empty host name")
    if any(c.isspace() for c in name):
        raise ValueError(f"host name {name!r} contains whitespace")
    if is_ip_literal(name):
        raise ValueError(f"{name!r} is an IP address, not a name to resolve")
    ascii_name = name.rstrip(".")
    if not ascii_name.isascii():
        try:  # internationalised names are checked in their on-the-wire (punycode) form
            ascii_name = ascii_name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"host name {name!r} is not a valid internationalised name") from None
    if len(ascii_name) > 253:
        raise ValueError(f"host name {name[:40]!r}... is longer than 253 characters")
    labels = ascii_name.split(".")
    bad = next((label for label in labels if not _LABEL.match(label)), None)
    if bad is not None:
        raise ValueError(f"host name {name!r} has an invalid label {bad!r}")
    if labels[-1].isdigit():  # e.g. 300.1.1.1: meant as an IP, but not a valid one
        raise ValueError(f"{name!r} is neither a valid IP address nor a host name")
    return name.rstrip(".").lower()


def check_host(host: str) -> str:
    """An IP literal or a host name. Returns the normal form (compressed IPv6, lower-case name)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return check_dns_name(host)


def check_url(url: str) -> str:
    """An absolute http(s) URL with a valid host and port. Returns the URL unchanged."""
    check_no_control(url, "URL")
    if not url or any(c.isspace() for c in url):
        raise ValueError(f"URL {url!r} is empty or contains whitespace")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"URL {url!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"URL {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        # credentials would be copied into every results line
        raise ValueError(f"URL {url!r} must not contain user:password@")
    if port == 0:
        raise ValueError(f"URL {url!r} has port 0 (must be 1-65535)")
    try:
        check_host(parts.hostname)
    except ValueError as exc:
        raise ValueError(f"URL {url!r}: {exc}") from None
    return url


def _parse_port(text: str, endpoint: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"endpoint {endpoint!r} has an invalid port {text!r} (must be 1-65535)")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"endpoint {endpoint!r} has port {port} (must be 1-65535)")
    return port


def parse_endpoint(text: str) -> Endpoint:
    """``host:port`` or ``[ipv6]:port`` -> :class:`Endpoint` (IP hosts normalised)."""
    if not isinstance(text, str) or not text or any(c.isspace() for c in text):
        raise ValueError(f"endpoint {text!r} is empty or contains whitespace")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"endpoint {text!r} must look like [2001:db8::1]:443")
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"endpoint {text!r}: {host!r} is not an IPv6 address") from None
        return Endpoint(str(ip), _parse_port(rest[1:], text))
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"endpoint {text!r} must look like host:port, e.g. 149.154.175.50:443")
    if ":" in host:  # a bare IPv6 address: the port cannot be told apart from the last group
        raise ValueError(f"endpoint {text!r}: write IPv6 endpoints with brackets, e.g. [2001:db8::1]:443")
    try:
        host = check_host(host)
    except ValueError as exc:
        raise ValueError(f"endpoint {text!r}: {exc}") from None
    return Endpoint(host, _parse_port(port_text, text))


def parse_prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR prefix such as ``31.13.24.0/21``; host bits must be zero (a typo guard)."""
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"prefix {text!r} must be in CIDR form, e.g. 31.13.24.0/21")
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"prefix {text!r} is not a valid CIDR prefix: {exc}") from None
