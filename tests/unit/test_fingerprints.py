"""Blockpage fingerprints against the real captured blockpages and real ordinary pages."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from probe.fingerprints import FingerprintDB


def _shared() -> Path:
    env = os.environ.get("REACHPROBE_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


SHARED = _shared()
FP = SHARED / "data" / "fingerprints"
BLOCKPAGES = FP / "citizenlab" / "blockpage_html"
OONI_REAL = SHARED / "data" / "ooni_real" / "ALL_REAL_raw_measurements.jsonl"
needs_shared = pytest.mark.skipif(not FP.is_dir(), reason=f"shared reference data not found at {SHARED}")


@pytest.fixture(scope="module")
def ooni_db() -> FingerprintDB:
    if not FP.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED}")
    return FingerprintDB.from_ooni_csv(dns_csv=FP / "ooni_fingerprints_dns.csv", http_csv=FP / "ooni_fingerprints_http.csv")


def _normal_pages() -> list[tuple[str, str]]:
    """Bodies of ordinary pages from real OONI measurements (sites OONI and the control agree are fine)."""
    normal_inputs = {"http://www.collegehumor.com/", "http://www.postmaster.co.uk/", "http://prachatai.com",
                     "https://www.theguardian.com/", "https://www.instagram.com/", "https://nexa.polito.it/",
                     "http://firefox.com/", "https://www.csmonitor.com", "https://www.youtube.com/",
                     "http://www.religioustolerance.org"}
    out = []
    for line in OONI_REAL.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        inp = d.get("input") if isinstance(d.get("input"), str) else None
        if inp not in normal_inputs and d.get("test_name") not in ("telegram", "whatsapp"):
            continue
        for r in (d.get("test_keys") or {}).get("requests") or []:
            b = (r.get("response") or {}).get("body")
            if isinstance(b, dict):
                data = b.get("data") or ""
                b = base64.b64decode(data + "=" * (-len(data) % 4)).decode("utf-8", "replace")
            if b and len(b) > 100:
                out.append((f"{d.get('input') or d['test_name']} {r['request']['url']}", b))
    return out


@pytest.mark.parametrize("db", [FingerprintDB.iran(), FingerprintDB.default()], ids=["iran", "default"])
def test_default_matches_iran_and_nothing_else(db):
    assert db.match_dns_answer("10.10.34.34")["name"]
    assert db.match_dns_answer("10.10.34.36") is not None
    assert db.match_dns_answer("d0:0:0:0:0:0:0:11") is not None  # normalised
    assert db.match_dns_answer("157.240.1.35") is None
    body = '<iframe src="http://10.10.34.34?type=Invalid Site&policy=MainPolicy"></iframe>'
    assert {m["location"] for m in db.match_body(body)} == {"body"}
    assert db.match_body("see https://peyvandha.ir/1-2.html")
    assert db.match_body("internet.ir/1-2")
    assert db.match_body("<html>hello</html>") == []
    assert db.match_body("") == [] and db.match_body(None) == []


@needs_shared
def test_nat_ir_blockpage_matches():
    page = (BLOCKPAGES / "nat_ir.html").read_text(encoding="utf-8", errors="replace")
    names = {m["name"] for m in FingerprintDB.default().match_body(page)}
    assert names, "Iran's national blockpage must match the built-in defaults"
    assert all(m["scope"] == "nat" for m in FingerprintDB.default().match_body(page))


@needs_shared
def test_ooni_csv_loads_and_matches_captured_blockpages(ooni_db):
    assert len(ooni_db.dns) >= 200 and len(ooni_db.body) >= 1000 and ooni_db.headers.get("location")
    assert ooni_db.match_body((BLOCKPAGES / "nat_ir.html").read_text(errors="replace"))
    pages = sorted(BLOCKPAGES.glob("*.html"))
    assert len(pages) > 100
    matched = [p.name for p in pages if ooni_db.match_body(p.read_text(encoding="utf-8", errors="replace"))]
    # A few captured pages carry only a redirect or are empty; OONI's list covers the rest.
    assert len(matched) / len(pages) >= 0.9, sorted(set(p.name for p in pages) - set(matched))


@needs_shared
def test_normal_pages_do_not_match(ooni_db):
    pages = _normal_pages()
    assert len(pages) >= 8
    for label, body in pages:
        assert FingerprintDB.default().match_body(body) == [], label
        hits = ooni_db.match_body(body)
        assert hits == [], (label, hits)


@needs_shared
def test_benign_and_weak_patterns(ooni_db):
    # S3's AccessDenied error: a vague word ("Access Denied") next to a known false positive.
    s3 = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'
    assert ooni_db.match_body(s3) == []
    assert ooni_db.match_benign(s3)
    # Cloudflare challenge pages are not blockpages, even when OONI's list files them under "prod".
    cf = "<html><head><title>Please Wait... | Cloudflare</title></head><body>Web Page Blocked?" \
         "<script src='/cdn-cgi/challenge-platform/x.js'></script></body></html>"
    assert FingerprintDB.challenge(cf) == "cloudflare_challenge"
    assert ooni_db.match_body(cf) == []
    assert FingerprintDB.challenge(None, {"cf-mitigated": "challenge"}) == "cloudflare_challenge"
    # "Ray ID:" is a known false positive (fp scope): never returned as a blockpage
    assert ooni_db.match_body("<p>Cloudflare Ray ID: 12345</p>") == []
    # a vague word alone is returned, marked weak (vbw)
    assert {m["scope"] for m in ooni_db.match_body("<h1>Website Blocked</h1>")} == {"vbw"}


@needs_shared
def test_header_and_location_fingerprints(ooni_db):
    hits = ooni_db.match_headers({"Server": "Protected by WireFilter 8000", "X-Other": "y"})
    assert [h["location"] for h in hits] == ["header.server"]
    assert ooni_db.match_location("http://lamanlabuh.aduankonten.id/")
    assert ooni_db.match_location("http://10.1.1.1/UserCheck/PortalMain?IID=abc&origUrl=x")
    assert ooni_db.match_location("https://www.facebook.com/") == []
    assert ooni_db.match_headers({"Location": "http://89.223.47.135/index.html"})
    assert ooni_db.match_dns_answer("10.10.34.35") is not None


@needs_shared
def test_body_matching_is_fast(ooni_db):
    page = (BLOCKPAGES / "isp_ru_rostelcom_block.html").read_text(errors="replace")
    big = ("<div>" + "ordinary page text with links <a href='/x'>x</a> " * 20 + "</div>\n") * 1000  # ~1 MB
    ooni_db.match_body("warm up")
    t = time.perf_counter()
    for _ in range(20):
        ooni_db.match_body(page)
    small = (time.perf_counter() - t) / 20
    t = time.perf_counter()
    assert ooni_db.match_body(big) == []
    large = time.perf_counter() - t
    assert small < 0.05, small
    assert large < 2.0, large


def test_overlapping_patterns_all_found(tmp_path):
    csv = tmp_path / "h.csv"
    csv.write_text("name,scope,location_found,pattern_type,pattern,expected_countries\n"
                   "a,isp,body,contains,abc,\nb,isp,body,contains,bcd,\nc,isp,body,contains,ab,\n"
                   "d,isp,body,regexp,x[0-9]+y,\ne,isp,body,prefix,<html>blocked,\nf,isp,body,full,BLOCKED,\n")
    db = FingerprintDB.from_ooni_csv(http_csv=csv, include_defaults=False)
    assert {m["name"] for m in db.match_body("zzabcdzz x42y")} == {"a", "b", "c", "d"}
    assert {m["name"] for m in db.match_body("<html>blocked here")} == {"e"}
    assert {m["name"] for m in db.match_body("BLOCKED")} == {"f"}
