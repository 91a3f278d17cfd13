"""Where fingerprints come from: OONI's and Citizen Lab's CSV formats, the shipped copies, the user's copy.

The package ships four files in ``probe/data/fingerprints/`` (provenance and licences in
``PROVENANCE.md`` there), transcribed unchanged from the public lists:

| file | from | format |
|---|---|---|
| ``ooni_fingerprints_dns.csv``, ``ooni_fingerprints_http.csv`` | ooni/blocking-fingerprints | OONI |
| ``citizenlab_dns.csv``, ``citizenlab_http.csv`` | citizenlab/filtering-annotations ``data/v1/`` | Citizen Lab |

``reachprobe fingerprints update`` writes newer copies of the same four names into
``<config dir>/fingerprints/``; each user file that is present and parses replaces its shipped twin,
one that is missing or broken falls back to the shipped one (a broken download never leaves the probe
without fingerprints).
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Iterator
from pathlib import Path

from probe.fingerprints.record import Fingerprint

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "fingerprints"
# file name -> (reader name, source label). Order matters: OONI's first (its names win on duplicates).
FILES: dict[str, tuple[str, str]] = {
    "ooni_fingerprints_dns.csv": ("ooni", "ooni"),
    "ooni_fingerprints_http.csv": ("ooni", "ooni"),
    "citizenlab_dns.csv": ("citizenlab_dns", "citizenlab"),
    "citizenlab_http.csv": ("citizenlab_http", "citizenlab"),
}


def user_dir() -> Path:
    from probe.config import config_dir

    return config_dir() / "fingerprints"


def _rows(path: str | Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(line number, row) of a CSV file; ValueError naming the file when a required column is absent."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(
                f"{path}:1: missing column(s) {', '.join(missing)} "
                f"(has {', '.join(reader.fieldnames or ()) or 'no header'})"
            )
        for row in reader:
            yield reader.line_num, row


def _countries(text: str | None) -> tuple[str, ...]:
    """ "AE,SA" (OONI) or "['RU']" / "[]" / "['']" (Citizen Lab's Python list literal)."""
    t = (text or "").strip()
    items: list[str]
    if t.startswith("["):
        try:
            items = [str(x) for x in ast.literal_eval(t)]
        except (ValueError, SyntaxError):
            items = t.strip("[]").replace("'", "").replace('"', "").split(",")
    else:
        items = t.split(",")
    return tuple(c.strip().upper() for c in items if c.strip())


def read_ooni_csv(path: str | Path, source: str = "ooni") -> list[Fingerprint]:
    """OONI's ``name, scope, other_names, location_found, pattern_type, pattern, ...``."""
    out = []
    for line, row in _rows(path, ("name", "location_found", "pattern")):
        name = (row.get("name") or "").strip()
        loc = (row.get("location_found") or "").strip().lower()
        ptype = (row.get("pattern_type") or "contains").strip().lower()
        pattern = row.get("pattern")
        if not name or not loc or not pattern:
            continue
        if ptype not in ("contains", "prefix", "full", "regexp"):
            raise ValueError(f"{path}:{line}: pattern_type {ptype!r} is not contains, prefix, full or regexp")
        scope = (row.get("scope") or "").strip().lower()
        out.append(Fingerprint(name, scope, loc, ptype, pattern, _countries(row.get("expected_countries")), source))
    return out


def read_citizenlab_http_csv(path: str | Path, source: str = "citizenlab") -> list[Fingerprint]:
    """Citizen Lab's ``name, common_name, pattern, location_found, ..., scope, expected_countries``:
    every pattern is a substring; ``header`` (no name) is matched against every ``Name: value`` line."""
    out = []
    for line, row in _rows(path, ("name", "pattern", "location_found")):
        name = (row.get("name") or "").strip()
        loc = (row.get("location_found") or "").strip().lower()
        pattern = row.get("pattern")
        if not name or not pattern:
            continue
        if loc not in ("body", "header") and not loc.startswith("header."):
            raise ValueError(f"{path}:{line}: location_found {loc!r} is not body or header")
        scope = (row.get("scope") or "").strip().lower()
        out.append(
            Fingerprint(name, scope, loc, "contains", pattern, _countries(row.get("expected_countries")), source)
        )
    return out


def read_citizenlab_dns_csv(path: str | Path, source: str = "citizenlab") -> list[Fingerprint]:
    """Citizen Lab's ``name, response, confidence_no_fp, exp_url, source, scope, expected_countries``."""
    out = []
    for _line, row in _rows(path, ("name", "response")):
        name = (row.get("name") or "").strip()
        response = (row.get("response") or "").strip()
        if not name or not response:
            continue
        scope = (row.get("scope") or "").strip().lower()
        out.append(Fingerprint(name, scope, "dns", "full", response, _countries(row.get("expected_countries")), source))
    return out


READERS = {
    "ooni": read_ooni_csv,
    "citizenlab_dns": read_citizenlab_dns_csv,
    "citizenlab_http": read_citizenlab_http_csv,
}


def read_file(path: Path) -> list[Fingerprint]:
    """One of the four known files, by its name. ValueError when it does not parse or holds nothing."""
    reader, source = FILES[path.name]
    fps = READERS[reader](path, source)
    if not fps:
        raise ValueError(f"{path}: no fingerprints in it")
    return fps
