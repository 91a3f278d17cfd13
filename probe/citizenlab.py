"""Import Citizen Lab test lists (``url,category_code,category_description,date_added,source,notes``)
into the targets-file structure.

Each URL becomes one ``web`` target. Its platform comes from the host: the longest matching domain
suffix (label-wise: ``m.facebook.com`` matches ``facebook.com``, ``edx.com`` does not match ``x.com``)
in the built-in :data:`DEFAULT_PLATFORM_MAP`, overridden by a user map; anything unmatched goes to
platform ``other``. Names are derived from the URL so they stay the same from one import to the next.
Malformed rows are skipped and reported with their CSV line; repeated URLs are imported once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from probe import netfacts
from probe.endpoint import bracket_host
from probe.fileio import read_regular
from probe.targets.model import KNOWN_PLATFORMS, check_dns_name, check_url

__all__ = [
    "DEFAULT_PLATFORM_MAP",
    "PLATFORM_ASNS",
    "CitizenLabError",
    "ImportResult",
    "import_citizenlab",
    "read_citizenlab",
    "load_platform_map",
    "parse_map_entry",
    "platform_for",
    "dump_targets_yaml",
]

# Domain -> platform. Subdomains match (label-wise); the longest match wins, so a user entry such as
# music.youtube.com=other can carve out a subdomain.
DEFAULT_PLATFORM_MAP: dict[str, str] = {
    # Meta: Facebook and Messenger
    "facebook.com": "facebook",
    "fb.com": "facebook",
    "fb.me": "facebook",
    "facebook.net": "facebook",
    "fbcdn.net": "facebook",
    "fbsbx.com": "facebook",
    "messenger.com": "facebook",
    "m.me": "facebook",
    # Meta: Instagram
    "instagram.com": "instagram",
    "cdninstagram.com": "instagram",
    # Meta: WhatsApp
    "whatsapp.com": "whatsapp",
    "whatsapp.net": "whatsapp",
    "wa.me": "whatsapp",
    # Twitter / X
    "twitter.com": "twitter",
    "x.com": "twitter",
    "twimg.com": "twitter",
    "t.co": "twitter",
    # Telegram
    "telegram.org": "telegram",
    "t.me": "telegram",
    "telegram.me": "telegram",
    "telegra.ph": "telegram",
    # YouTube (before google: youtube.com is not a google.com subdomain, but keep them apart anyway)
    "youtube.com": "youtube",
    "youtu.be": "youtube",
    "ytimg.com": "youtube",
    "youtube-nocookie.com": "youtube",
    "googlevideo.com": "youtube",
    # Signal
    "signal.org": "signal",
    "whispersystems.org": "signal",
    "signal.me": "signal",
    # TikTok
    "tiktok.com": "tiktok",
    "tiktokcdn.com": "tiktok",
    # Wikipedia and sister projects
    "wikipedia.org": "wikipedia",
    "wikimedia.org": "wikipedia",
    # Google (other than YouTube)
    "google.com": "google",
    "gstatic.com": "google",
    "googleapis.com": "google",
}

# AS numbers written into imported platforms come from the one table the verdict engine uses too,
# so imported targets are checked for authenticity offline just like the shipped ones.
PLATFORM_ASNS = netfacts.PLATFORM_ASNS

# Hosts served from caches inside ISPs' networks (Facebook FNA, Google Global Cache) or third-party
# CDNs: their answers are legitimately outside the platform's ASNs, so imported targets on these
# get no ASN expectation (asns: []) instead of false "unexpected ASN" flags.
_NO_ASN_SUFFIXES: tuple[str, ...] = ("fna.fbcdn.net", "fna.whatsapp.net", "googlevideo.com", "twimg.com")

_MAX_NAME = 80


class CitizenLabError(Exception):
    """The input cannot be imported at all (missing file, no url column, bad platform map)."""


@dataclass(slots=True)
class ImportResult:
    data: dict[str, Any]  # the targets-file structure
    rows: int = 0  # data rows read
    imported: int = 0
    filtered: int = 0  # rows left out by the category filter
    duplicates: list[int] = field(default_factory=list)  # CSV lines of repeated URLs
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (CSV line, reason)

    @property
    def platforms(self) -> list[str]:
        return list(self.data["platforms"])


# ---------------------------------------------------------------------------------------------
# Platform map
# ---------------------------------------------------------------------------------------------


def parse_map_entry(domain: str, platform: str) -> tuple[str, str]:
    """Validate one ``domain -> platform`` entry; raises ValueError with a message to show."""
    domain = domain.strip().lower().removeprefix("*.").rstrip(".")
    platform = platform.strip()
    check_dns_name(domain)
    if platform not in KNOWN_PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; known platforms: {', '.join(KNOWN_PLATFORMS)}")
    return domain, platform


def load_platform_map(path: str | Path) -> dict[str, str]:
    """Read ``domain,platform`` lines (``#`` comments and blank lines allowed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CitizenLabError(
            f"{path}: cannot read the platform map: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    mapping: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        domain, sep, platform = line.partition(",")
        if not sep or "," in platform:
            raise CitizenLabError(f"{path}:{n}: expected 'domain,platform', got {raw.strip()!r}")
        try:
            key, value = parse_map_entry(domain, platform)
        except ValueError as exc:
            raise CitizenLabError(f"{path}:{n}: {exc}") from None
        mapping[key] = value
    return mapping


def platform_for(host: str, mapping: Mapping[str, str]) -> str:
    """The platform of the longest domain suffix of ``host`` in ``mapping``; ``other`` if none."""
    labels = host.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        platform = mapping.get(".".join(labels[i:]))
        if platform is not None:
            return platform
    return "other"


def _has_suffix(host: str, suffixes: Iterable[str]) -> bool:
    return any(host == s or host.endswith("." + s) for s in suffixes)


# ---------------------------------------------------------------------------------------------
# Names and de-duplication
# ---------------------------------------------------------------------------------------------


def _url_key(url: str) -> str:
    """URLs that fetch the same thing compare equal (case of scheme/host, default port, empty path)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    netloc = bracket_host(host)
    if port is not None and port != default:
        netloc += f":{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path or '/'}{query}"


def _base_name(url: str) -> str:
    """``https://www.facebook.com/kambizhosseini/`` -> ``facebook.com-kambizhosseini``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").removeprefix("www.")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        pass
    host = re.sub(r"[^a-z0-9.-]+", "-", host.lower())
    if parts.port:
        host += f"-{parts.port}"
    rest = unquote(parts.path) + (f"-{unquote(parts.query)}" if parts.query else "")
    tail = re.sub(r"[^a-z0-9]+", "-", rest.lower()).strip("-")
    name = f"{host}-{tail}" if tail else host
    name = re.sub(r"^[^a-z0-9]+", "", name)[:_MAX_NAME].rstrip(".-_")
    return name or "url"


def _unique_name(url: str, taken: set[str]) -> str:
    # A collision (http and https of one URL, or paths that differ only in characters the slug
    # drops) gets a suffix from the URL's hash: it depends on the URL alone, not on row order.
    name = _base_name(url)
    if name in taken:
        digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
        name = f"{name[: _MAX_NAME - 9]}-{digest}"
        n = 2
        while name in taken:  # practically never: two URLs with the same slug and hash prefix
            name = f"{name}-{n}"
            n += 1
    taken.add(name)
    return name


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------


MAX_CSV_BYTES = 64 * 1024 * 1024  # the global test list is ~2 MB


def _rows(path: Path) -> Iterable[tuple[int, dict[str | None, Any]]]:
    """(first CSV line of the record, row) for each data row. Raises CitizenLabError on bad files."""
    try:  # a regular file, capped: /dev/zero or a FIFO is refused, not read forever
        data = read_regular(path, MAX_CSV_BYTES)
    except OSError as exc:
        raise CitizenLabError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        handle = io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError:
        raise CitizenLabError(f"{path}: not UTF-8 text") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            missing = [c for c in ("url", "category_code") if c not in header]
            if missing:
                raise CitizenLabError(
                    f"{path}:1: not a Citizen Lab test list: missing column(s) {', '.join(missing)} "
                    "(expected url,category_code,category_description,date_added,source,notes)"
                )
            start = reader.line_num + 1
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        except UnicodeDecodeError:
            raise CitizenLabError(f"{path}: not UTF-8 text") from None
        except csv.Error as exc:
            raise CitizenLabError(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from None


def _row_problem(row: dict[str | None, Any], width: int) -> str | None:
    if None in row:  # DictReader puts surplus fields under the key None
        return f"too many columns ({width + len(row[None])}, expected {width})"
    if any(v is None for v in row.values()):
        return f"too few columns ({sum(v is not None for v in row.values())}, expected {width})"
    url = (row.get("url") or "").strip()
    if not url:
        return "empty url"
    try:
        check_url(url)
    except ValueError as exc:
        return str(exc)
    if not (row.get("category_code") or "").strip():
        return "empty category_code"
    return None


def read_citizenlab(
    csv_path: str | Path,
    platform_map: Mapping[str, str] | None = None,
    *,
    categories: Iterable[str] | None = None,
) -> ImportResult:
    """Import a Citizen Lab CSV; ``platform_map`` entries override :data:`DEFAULT_PLATFORM_MAP`,
    ``categories`` (codes such as ``GRP``, case-insensitive) keeps only those rows."""
    path = Path(csv_path)
    mapping = dict(DEFAULT_PLATFORM_MAP)
    for domain, platform in (platform_map or {}).items():
        try:
            key, value = parse_map_entry(domain, platform)
        except ValueError as exc:
            raise CitizenLabError(f"platform map entry {domain}={platform}: {exc}") from None
        mapping[key] = value
    wanted = {c.strip().upper() for c in categories} if categories else None

    result = ImportResult(data={})
    by_platform: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    taken: set[str] = set()
    width = 0
    for line, row in _rows(path):
        result.rows += 1
        width = width or len([k for k in row if k is not None])
        problem = _row_problem(row, width)
        if problem:
            result.skipped.append((line, problem))
            continue
        if wanted is not None and row["category_code"].strip().upper() not in wanted:
            result.filtered += 1
            continue
        url = row["url"].strip()
        key = _url_key(url)
        if key in seen:
            result.duplicates.append(line)
            continue
        seen.add(key)
        host = (urlsplit(url).hostname or "").rstrip(".")
        platform = platform_for(host, mapping)
        target: dict[str, Any] = {"name": _unique_name(url, taken), "kind": "web", "urls": [url]}
        if platform in PLATFORM_ASNS and _has_suffix(host, _NO_ASN_SUFFIXES):
            target["asns"] = []
        by_platform.setdefault(platform, []).append(target)
        result.imported += 1

    platforms: dict[str, Any] = {}
    for platform in KNOWN_PLATFORMS:  # a fixed order keeps re-imports diff-friendly
        if platform in by_platform:
            entry: dict[str, Any] = {}
            if platform in PLATFORM_ASNS:
                entry["asns"] = list(PLATFORM_ASNS[platform])
            entry["targets"] = by_platform[platform]
            platforms[platform] = entry
    result.data = {"version": 1, "platforms": platforms}
    return result


def import_citizenlab(
    csv_path: str | Path,
    platform_map: dict[str, str] | None = None,
    *,
    categories: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The targets-file structure for a Citizen Lab CSV (see :func:`read_citizenlab` for counts)."""
    return read_citizenlab(csv_path, platform_map, categories=categories).data


class _Dumper(yaml.SafeDumper):
    """Short lists of scalars (urls: [...], asns: [...]) in flow style; everything else in block style."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    flow = all(isinstance(item, (str, int, float)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_targets_yaml(data: Mapping[str, Any], header: Iterable[str] = ()) -> str:
    """YAML text of a targets structure, with ``header`` lines as leading comments."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    body = yaml.dump(
        dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096
    )
    return comments + body
