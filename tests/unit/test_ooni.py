"""analysis.importers.ooni.read_ooni on the 76 real OONI measurements in the shared reference data."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.importers.ooni import SUPPORTED_TESTS, read_ooni
from probe.fingerprints import FingerprintDB


def _shared() -> Path:
    env = os.environ.get("REACHPROBE_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


SHARED = _shared()
RAW = SHARED / "data" / "ooni_real" / "ALL_REAL_raw_measurements.jsonl"
FP = SHARED / "data" / "fingerprints"
pytestmark = pytest.mark.skipif(not RAW.is_file(), reason=f"shared OONI data not found at {SHARED}")

# Measurements where OONI's label is known to be wrong, with our verdict and why (docs/verdicts.md).
# key: (test_name, probe_cc, target) -> (status, rule)
OONI_WRONG = {
    ("web_connectivity", "ID", "http://archive.org"): ("blocked", "http.blockpage"),  # Kominfo redirect missed
    ("web_connectivity", "NL", "https://fa.wikipedia.org/"): ("inconclusive", "inconclusive.probe_error"),
    ("web_connectivity", "SK", "http://www.wikispaces.com/"): ("down", "down.nxdomain"),  # gone everywhere
    ("web_connectivity", "CN", "http://www.efindlove.com"): ("down", "down.nxdomain_rewritten"),
    ("web_connectivity", "IE", "http://www.efindlove.com/"): ("ok", "ok.http"),  # parked domain, same IP
    ("signal", "AM", "signal"): ("ok", "ok.tls_valid"),  # outdated CA pin in signal test 0.2.0
    ("signal", "US", "signal"): ("ok", "ok.tls_valid"),  # android_dns_cache_no_data
    ("whatsapp", "IE", "whatsapp"): ("ok", "ok.tls_valid"),  # HTTP 400 over valid TLS
    ("telegram", "RU", "telegram"): ("flaky", "flaky.intermittent"),  # reached in the same run
    ("facebook_messenger", "RU", "facebook_messenger"): ("inconclusive", "inconclusive.dns_only"),
}


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    db = FingerprintDB.from_ooni_csv(dns_csv=FP / "ooni_fingerprints_dns.csv", http_csv=FP / "ooni_fingerprints_http.csv")
    return read_ooni(RAW, fingerprints=db)


def _row(df, test, cc, target):
    sel = df[(df.test_name == test) & (df.probe_cc == cc) & (df.target == target)]
    assert len(sel) == 1, (test, cc, target, len(sel))
    return sel.iloc[0]


def test_reads_all_76(df):
    n_lines = sum(1 for line in RAW.read_text(encoding="utf-8").splitlines() if line.strip())
    assert n_lines == 76
    skipped = df.attrs["skipped"]
    assert len(df) + skipped["total"] == 76
    assert set(df.test_name) <= set(SUPPORTED_TESTS)
    assert len(df) == 41  # web_connectivity 28, telegram 3, whatsapp 3, facebook_messenger 2, signal 5
    assert all(s["reason"] for s in skipped["items"])
    assert skipped["by_test"]["tor"] == 4 and "web_connectivity" not in skipped["by_test"]
    for col in ("measurement_uid", "measured_at", "probe_cc", "probe_asn", "test_name", "target", "status", "layer",
                "method", "rule", "confidence", "confirmed", "ooni_blocking"):
        assert col in df.columns
    assert str(df.measured_at.dt.tz) == "UTC" and df.measured_at.notna().all()
    assert str(df.probe_asn.dtype) == "Int64"
    assert df.measurement_uid.is_unique
    assert set(df.status) <= {"ok", "blocked", "down", "outage", "flaky", "inconclusive"}


def test_iran_facebook_dns_blocking(df):
    r = _row(df, "web_connectivity", "IR", "https://www.facebook.com/")
    assert (r.status, r.layer, r.method, r.rule, bool(r.confirmed)) == ("blocked", "dns", "blockpage_ip", "dns.blockpage_ip", True)
    assert r.probe_asn == 197207 and r.ooni_blocking == "dns"
    assert "10.10.34.36" in r.reason
    r = _row(df, "web_connectivity", "IR", "https://fa.wikipedia.org")
    assert (r.status, r.method, bool(r.confirmed)) == ("blocked", "blockpage_ip", True)


def test_iran_without_ooni_csv_uses_builtin_defaults():
    d = read_ooni(RAW)
    r = _row(d, "web_connectivity", "IR", "https://www.facebook.com/")
    assert (r.status, r.method, bool(r.confirmed)) == ("blocked", "blockpage_ip", True)


def test_agrees_with_ooni_where_ooni_is_right(df):
    labelled = df[df.ooni_blocking.notna()]
    assert len(labelled) >= 30
    disagreements = []
    for _, r in labelled.iterrows():
        key = (r.test_name, r.probe_cc, r.target)
        if key in OONI_WRONG:
            continue
        ooni_blocked = r.ooni_blocking != "false"
        if ooni_blocked != (r.status == "blocked"):
            disagreements.append((key, r.ooni_blocking, r.status, r.rule, r.reason))
    assert not disagreements, disagreements


def test_known_ooni_errors_are_right_in_ours(df):
    for (test, cc, target), (status, rule) in OONI_WRONG.items():
        r = _row(df, test, cc, target)
        assert (r.status, r.rule) == (status, rule), (test, cc, target, r.reason)


def test_specific_verdicts(df):
    assert _row(df, "web_connectivity", "RU", "http://rutor.org/").rule == "http.blockpage"
    assert _row(df, "whatsapp", "JP", "whatsapp").rule == "dns.bogon"
    r = _row(df, "signal", "IR", "signal")
    assert (r.status, r.layer, r.method) == ("blocked", "dns", "nxdomain")
    assert _row(df, "web_connectivity", "AU", "http://www.feminist.org").method == "blockpage"
    # OONI's own control failed: weak evidence stays inconclusive
    assert _row(df, "web_connectivity", "AE", "http://thepiratebay.org/").rule == "inconclusive.no_controls"
    assert _row(df, "web_connectivity", "US", "http://mail.google.com").rule == "inconclusive.no_test_keys"


def test_other_file_shapes(tmp_path):
    lines = RAW.read_text(encoding="utf-8").splitlines()
    ir = next(line for line in lines if '"https://www.facebook.com/"' in line and '"IR"' in line)
    (tmp_path / "one.json").write_text(json.dumps(json.loads(ir), indent=2))
    with gzip.open(tmp_path / "two.jsonl.gz", "wt") as f:
        f.write(ir + "\n{not json\n")
    d = read_ooni(tmp_path)
    assert list(d.status) == ["blocked", "blocked"]
    assert d.attrs["skipped"]["total"] == 1 and "unparseable" in d.attrs["skipped"]["items"][0]["reason"]
    assert len(read_ooni([tmp_path / "one.json"])) == 1


def test_analysis_does_not_import_probe_measure():
    root = Path(__file__).resolve().parents[2]
    code = ("import sys, analysis.importers.ooni; "
            "bad = [m for m in sys.modules if m.startswith('probe.measure')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
