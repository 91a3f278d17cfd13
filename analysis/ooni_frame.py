"""OONI measurements as frame rows: what ``read_ooni`` returns mapped onto the frame's columns, the
platform derived from the input URL or the test name where it has none."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import frame as fr
from analysis.selection import concat

_PLATFORM_HOSTS = {
    "facebook": ("facebook.com", "fb.com", "fbcdn.net", "messenger.com", "facebook.net"),
    "twitter": ("twitter.com", "x.com", "twimg.com", "t.co"),
    "instagram": ("instagram.com", "cdninstagram.com"),
    "telegram": ("telegram.org", "t.me", "telegram.me", "telesco.pe"),
    "whatsapp": ("whatsapp.com", "whatsapp.net", "wa.me"),
    "youtube": ("youtube.com", "youtu.be", "ytimg.com", "googlevideo.com"),
    "signal": ("signal.org", "whispersystems.org"),
    "wikipedia": ("wikipedia.org",),
    "google": ("google.com",),
    "tiktok": ("tiktok.com",),
}
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "or", "ne", "go", "gen", "nic"}
_TEST_PLATFORM = {
    "telegram": "telegram",
    "whatsapp": "whatsapp",
    "facebook_messenger": "facebook",
    "signal": "signal",
    "tor": "tor",
    "vanilla_tor": "tor",
    "torsf": "tor",
    "psiphon": "psiphon",
}


def platform_of(url: Any, test_name: Any = None) -> str | None:
    """Platform from an OONI input URL (host suffix) or, for IM tests, from the test name."""
    if isinstance(test_name, str) and test_name in _TEST_PLATFORM:
        return _TEST_PLATFORM[test_name]
    if not isinstance(url, str) or not url:
        return test_name if isinstance(test_name, str) else None
    from urllib.parse import urlsplit

    host = (urlsplit(url if "://" in url else "//" + url).hostname or "").lower().rstrip(".")
    for platform, suffixes in _PLATFORM_HOSTS.items():
        if any(host == s or host.endswith("." + s) for s in suffixes):
            return platform
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
        return host  # an address, not a name
    except ValueError:
        pass
    parts = host.removeprefix("www.").split(".")
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in _SECOND_LEVEL:
        return ".".join(parts[-3:])  # example.co.uk, example.com.br
    return ".".join(parts[-2:]) if len(parts) >= 2 else (host or None)


def ooni_frame(d: pd.DataFrame) -> pd.DataFrame:
    """A frame from :func:`analysis.importers.ooni.read_ooni` -> frame rows: ``vantage = "ooni-AS<asn>"``,
    ``target`` = the OONI input (URL), ``platform`` from read_ooni or else derived from the input URL
    or the test name, ``source = "ooni"``."""
    return _ooni_from_frame(d)


def _ooni_from_frame(d: pd.DataFrame) -> pd.DataFrame:
    """A frame from ``read_ooni`` (OONI or frame column names) -> frame rows, vectorised."""
    n = len(d)

    def col(*names: str) -> pd.Series:
        for name in names:
            if name in d.columns:
                return d[name].astype(object).where(d[name].notna(), None).reset_index(drop=True)
        return pd.Series([None] * n, dtype=object)

    asn = col("asn", "probe_asn").map(fr._as_asn)
    inp = col("input", "url")
    target = inp.where(inp.notna(), col("target"))
    test = col("test_name")
    platform = col("platform")
    derived = pd.Series([platform_of(u, t) for u, t in zip(target, test, strict=False)], dtype=object)
    platform = platform.where(platform.notna() & (platform != "other"), derived)
    ts = col("measured_at", "measurement_start_time")
    ts = ts.map(lambda v: v.replace(" ", "T") + "Z" if isinstance(v, str) and "T" not in v and "+" not in v else v)
    out = pd.DataFrame(
        {
            "measured_at": pd.to_datetime(ts, utc=True, errors="coerce", format="mixed") if n else ts,
            "vantage": asn.map(lambda a: f"ooni-AS{a}" if a is not None else "ooni"),
            "asn": asn,
            "cc": col("cc", "probe_cc"),
            "network": col("network", "probe_network_name"),
            "platform": platform,
            "target": target,
            "kind": col("kind").where(col("kind").notna(), "web"),
            "scope": col("scope"),
            "status": col("status"),
            "layer": col("layer"),
            "method": col("method"),
            "rule": col("rule"),
            "confidence": col("confidence"),
            "confirmed": col("confirmed"),
            "run_id": col("run_id", "report_id"),
            "id": col("id", "measurement_uid"),
            "source": "ooni",
        }
    )
    return fr.normalize(out)


def load_ooni(files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """OONI measurement files through ``analysis.importers.ooni.read_ooni``, as frame rows."""
    from analysis.importers.ooni import read_ooni  # lazily: it pulls in the verdict rules and fingerprints

    frames = [ooni_frame(read_ooni(Path(f))) for f in files]
    df = concat(frames) if frames else fr.empty_frame()
    df = df.reset_index(drop=True)
    df.attrs["read_report"] = {
        "files": len(files),
        "lines": len(df),
        "torn_final": [],
        "bad_lines": [],
        "skipped": 0,
        "summary": "",
    }
    return df
