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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

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
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


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
        """JSON-safe description (for `targets list --format json` and the `target` of results lines)."""
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
        # Further problems found in the same file (the loader reports the earliest one first);
        # `reachprobe targets check` prints them all.
        self.more: tuple[TargetsError, ...] = tuple(more)
        where = self.path + (f":{line}" if line else "")
        what = f" {field}:" if field else ""
        tail = f" (+{len(self.more)} more problem{'s' if len(self.more) > 1 else ''})" if self.more else ""
        super().__init__(f"{where}:{what} {message}{tail}")

    def all_messages(self) -> list[str]:
        """One line per problem: this one, then the others (without the "+N more" tail)."""
        first = TargetsError(self.path, self.line, self.field, self.message)
        return [str(first)] + [str(e) for e in self.more]


def known_existing_names(targets: Sequence[Target]) -> frozenset[str]:
    """Every name the targets file vouches for (see ``Target.known_to_exist``), lower case, for
    ``probe.verdict.RunContext.known_existing_names``."""
    out: set[str] = set()
    for t in targets:
        if not t.known_to_exist:
            continue
        hosts = list(t.dns_names) + t.url_hosts() + [e.host for e in t.endpoints]
        for h in hosts:
            try:
                ipaddress.ip_address(h)
            except ValueError:
                if h:
                    out.add(h.lower().rstrip("."))
    return frozenset(out)


def load_targets(path: str | Path) -> TargetSet:
    """Read and validate a targets file. Raises TargetsError naming file, line and field."""
    from probe.targets_load import load  # the YAML/pydantic machinery lives apart from the model

    return load(Path(path))
