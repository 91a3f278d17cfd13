"""`reachprobe export --format ooni`: OONI-shaped measurements that `analysis.read_ooni` reads back into
the same verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pandas as pd
import pytest

import analysis
from probe.collect.export import to_ooni
from probe.records import (
    DNSAttempt,
    HTTPAttempt,
    HTTPRedirect,
    Steps,
    TCPAttempt,
    TLSAttempt,
)
from probe.results import ResultsWriter, make_record
from probe.targets import Target
from probe.verdict import RunContext, classify
from tests.unit.collect_env import REPO

URL = "https://www.facebook.com/"
HOST = "www.facebook.com"
FB = "157.240.1.35"
IR_BLOCKPAGE = '<html><head></head><body><iframe src="http://10.10.34.34?type=Invalid Site&policy=MainPolicy" ' \
               'style="width: 100%; height: 100%" scrolling="no" marginwidth="0" marginheight="0" frameborder="0" ' \
               'vspace="0" hspace="0"></iframe></body></html>'


def _dns(answers=(FB,), failure=None, rcode="NOERROR", attempt=1):
    return DNSAttempt(attempt=attempt, query=HOST, qtype="A", resolver="system", resolver_address="127.0.0.53",
                      transport="udp", t0=0.0, duration_ms=5.0, failure=failure, rcode=rcode, answers=list(answers))


def _tcp(ip=FB, failure=None, attempt=1):
    return TCPAttempt(attempt=attempt, ip=ip, port=443, t0=0.01, duration_ms=40.0, failure=failure, hostname=HOST)


def _tls(ip=FB, failure=None, attempt=1):
    return TLSAttempt(attempt=attempt, ip=ip, port=443, sni=HOST, t0=0.05, duration_ms=60.0, failure=failure,
                      cert_valid=None if failure else True, tls_version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256")


def _http(failure=None, status=200, body="<html><title>Facebook</title>hello</html>", attempt=1, redirects=()):
    return HTTPAttempt(attempt=attempt, url=URL, t0=0.2, duration_ms=120.0, failure=failure,
                       final_url=None if failure else (redirects[-1].url if redirects else URL),
                       status=None if failure else status, redirects=list(redirects),
                       headers={} if failure else {"content-type": "text/html"},
                       body_length=None if failure else len(body), body_head=None if failure else body)


SCENARIOS = {
    "ok": Steps(dns=[_dns()], tcp=[_tcp()], tls=[_tls()], http=[_http()]),
    "ok after a redirect": Steps(dns=[_dns()], tcp=[_tcp()], tls=[_tls()],
                                 http=[_http(redirects=(HTTPRedirect(URL, 302),
                                                        HTTPRedirect("https://www.facebook.com/home", 200)))]),
    "dns blockpage ip": Steps(dns=[_dns(answers=("10.10.34.34",))], tcp=[_tcp("10.10.34.34")],
                              http=[_http(body=IR_BLOCKPAGE)]),
    "nxdomain": Steps(dns=[_dns(answers=(), failure="dns_nxdomain_error", rcode="NXDOMAIN", attempt=a)
                           for a in (1, 2, 3)]),
    "tcp reset": Steps(dns=[_dns()], tcp=[_tcp(failure="connection_reset", attempt=a) for a in (1, 2, 3)]),
    "tls reset": Steps(dns=[_dns()], tcp=[_tcp()], tls=[_tls(failure="connection_reset", attempt=a) for a in (1, 2, 3)]),
    "http blockpage": Steps(dns=[_dns()], tcp=[_tcp()], tls=[_tls()], http=[_http(body=IR_BLOCKPAGE)]),
    "timeouts": Steps(dns=[_dns()], tcp=[_tcp(failure="generic_timeout_error", attempt=a) for a in (1, 2, 3)]),
}


def _records() -> list[dict]:
    target = Target(platform="facebook", name=URL, kind="web", urls=(URL,), dns_names=(HOST,), tls_name=HOST)
    out = []
    for i, (name, steps) in enumerate(SCENARIOS.items()):
        verdict = classify(target, steps, RunContext())
        out.append(make_record(run_id=f"run{i:04d}", measured_at=datetime(2026, 12, 1, 10, i, tzinfo=timezone.utc),
                               vantage={"id": "v-export", "asn": 58224, "cc": "IR", "network": "TCI"},
                               software_version="0.1.0", target={"platform": "facebook", "name": name, "kind": "web"},
                               steps=steps.to_dict(), verdict=verdict.to_dict()))
    return out


def test_scenarios_cover_several_verdicts():
    statuses = {(r["verdict"]["status"], r["verdict"]["layer"]) for r in _records()}
    assert len(statuses) >= 4, statuses


def test_ooni_base_keys_and_test_keys():
    doc = to_ooni(_records()[0])
    for key in ("annotations", "data_format_version", "input", "measurement_start_time", "probe_asn", "probe_cc",
                "probe_ip", "report_id", "software_name", "software_version", "test_keys", "test_name",
                "test_runtime", "test_start_time", "test_version"):
        assert key in doc, key
    assert doc["software_name"] == "reachprobe" and doc["test_name"] == "web_connectivity"
    assert doc["probe_asn"] == "AS58224" and doc["probe_cc"] == "IR" and doc["input"] == URL
    assert doc["measurement_start_time"] == "2026-12-01 10:00:00"
    tk = doc["test_keys"]
    assert tk["queries"][0]["answers"] == [{"answer_type": "A", "ipv4": FB, "ttl": None}]
    assert tk["tcp_connect"][0]["status"] == {"success": True, "failure": None, "blocked": None}
    assert tk["tls_handshakes"][0]["address"] == f"{FB}:443"
    assert tk["requests"][0]["response"]["code"] == 200 and tk["blocking"] is False and tk["accessible"] is True


def test_round_trip_through_read_ooni_gives_the_same_verdicts(tmp_path):
    records = _records()
    res = tmp_path / "results"
    ResultsWriter(res, fsync=False).append_many(records)
    out = tmp_path / "ooni.jsonl"
    r = subprocess.run([sys.executable, "-m", "probe", "export", "--format", "ooni", str(res), "-o", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(docs) == len(records)
    df = analysis.read_ooni(out)
    assert df.attrs["skipped"]["total"] == 0
    by_time = {rec["measured_at"][:19].replace("T", " "): rec for rec in records}
    for row in df.itertuples():
        rec = by_time[row.measured_at.strftime("%Y-%m-%d %H:%M:%S")]
        want = rec["verdict"]
        got = {k: (None if pd.isna(v) else v) for k, v in
               {"status": row.status, "layer": row.layer, "method": row.method, "rule": row.rule}.items()}
        assert got == {k: want[k] for k in got}, rec["target"]["name"]
        if want["status"] == "ok":
            assert row.ooni_blocking == "false"
        elif want["status"] == "blocked":
            assert row.ooni_blocking not in (None, "false") and not pd.isna(row.ooni_blocking)
    assert len(df) == len(records)


@pytest.mark.parametrize("bad", ["not json\n", '{"schema":"reachprobe/1"}\n'])
def test_export_tolerates_odd_lines(tmp_path, bad):
    res = tmp_path / "r"
    res.mkdir()
    (res / "2026-12-01.jsonl").write_text(json.dumps(_records()[0]) + "\n" + bad)
    r = subprocess.run([sys.executable, "-m", "probe", "export", str(res), "-o", str(tmp_path / "o.jsonl")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # both are skipped (and named on stderr): a line without the contract's fields is not a measurement
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 1
    assert "skipped" in r.stderr
