"""The protocol model against OONI's real controls (every ``control`` object in the shared data),
and the helper's small parts: address policy, rate limiter, ASN table, command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import main
from probe.control.asn import ASNTable
from probe.control.limits import RateLimiter, parse_rate
from probe.control.model import ControlRequest, ControlResponse
from probe.control.policy import AddressPolicy


def _shared() -> Path:
    env = os.environ.get("REACHPROBE_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


RAW = _shared() / "data" / "ooni_real" / "ALL_REAL_raw_measurements.jsonl"
needs_raw = pytest.mark.skipif(not RAW.is_file(), reason=f"shared OONI data not found at {RAW}")


def _real(key: str) -> list[tuple[str, dict]]:
    out = []
    for line in RAW.read_text().splitlines():
        m = json.loads(line)
        tk = m.get("test_keys") or {}
        if key in tk:
            out.append((m["input"], tk[key]))
    return out


@needs_raw
def test_every_real_ooni_control_parses():
    controls = _real("control")
    assert len(controls) == 27  # web_connectivity 0.0.1 .. 0.5.28
    parsed = {url: ControlResponse.model_validate(c) for url, c in controls}
    assert len(parsed) == len({u for u, _ in controls})
    for resp in parsed.values():
        assert ControlResponse.model_validate(resp.to_wire()) == resp

    archive = parsed["http://archive.org"]
    assert archive.tls_handshake["207.241.224.2:443"].server_name == "archive.org"
    assert archive.http_request.title.startswith("Internet Archive")
    wiki = parsed["https://fa.wikipedia.org/"]
    assert wiki.dns.addrs == ["dyna.wikimedia.org", "91.198.174.192"]  # old helpers listed CNAMEs
    assert wiki.http_request.body_length == 127734
    gone = parsed["http://www.wikispaces.com/"]
    assert gone.http_request.failure == "dns_lookup_error" and gone.http_request.status_code == -1
    fb = parsed["https://www.facebook.com/"]
    assert fb.tcp_connect["10.10.34.36:443"].failure == "generic_timeout_error"  # Iran's blockpage IP
    doh = parsed["https://8.8.4.4/dns-query?dns=q80BAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"]
    assert doh.ip_info["8.8.4.4"].asn == 15169 and doh.ip_info["8.8.4.4"].flags == 9
    assert doh.http_request.discovered_h3_endpoint == "8.8.4.4:443" and doh.http3_request is None


@needs_raw
def test_empty_and_null_controls_read_as_empty():
    empty = [c for _, c in _real("control") if c == {}]
    assert len(empty) == 1
    resp = ControlResponse.model_validate(empty[0])
    assert resp.http_request.status_code == -1 and resp.tcp_connect == {} and resp.dns.addrs == []
    nulls = ControlResponse.model_validate({"dns": {"addrs": None, "failure": "dns_name_error"},
                                            "tcp_connect": None, "http_request": {"headers": None, "title": None}})
    assert nulls.dns.addrs == [] and nulls.http_request.headers == {} and nulls.http_request.title == ""


@needs_raw
def test_real_control_requests_parse():
    requests = _real("x_control_request")
    assert len(requests) == 7
    for _, r in requests:
        req = ControlRequest.model_validate(r)
        assert req.http_request.startswith("http") and req.tcp_connect
        assert ControlRequest.model_validate_json(req.model_dump_json()) == req


def test_unknown_fields_are_kept():
    resp = ControlResponse.model_validate({"http_request": {"status_code": 200, "x_new": 1}, "x_future": True})
    assert resp.to_wire()["x_future"] is True and resp.to_wire()["http_request"]["x_new"] == 1
    old = ControlRequest.model_validate({"http_request": "http://a/", "http_request_headers": {"User-Agent": "x"}})
    assert old.http_request_headers == {"User-Agent": ["x"]}


# ----------------------------------------------------------------------------------- the parts
@pytest.mark.parametrize("ip,reason", [
    ("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared-cgnat"), ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"), ("0.0.0.0", "this-network"),
    ("::1", "loopback"), ("fe80::1", "link-local"), ("fd00::1", "unique-local"), ("::ffff:10.0.0.1", "private"),
    ("8.8.8.8", None), ("2001:4860:4860::8888", None), ("nonsense", "not-an-address"),
])
def test_policy_refuses_special_purpose(ip, reason):
    assert AddressPolicy().refusal(ip) == reason


def test_policy_allow_net():
    p = AddressPolicy.from_cidrs(["127.0.0.0/8", "fd00::/8"])
    assert p.allows("127.0.0.5") and p.allows("::ffff:127.0.0.1") and p.allows("fd00::2")
    assert not p.allows("10.0.0.1") and p.allows("1.1.1.1")


def test_rate_limiter_bucket():
    now = [0.0]
    rl = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0], max_clients=2)
    assert [rl.allow("a") for _ in range(3)] == [True, True, False]
    assert rl.allow("b")  # per client
    now[0] += 1.0
    assert rl.allow("a") and not rl.allow("a")
    now[0] += 10.0
    rl.allow("c")  # the table is bounded: idle full buckets go first
    assert len(rl) <= 2
    assert all(isinstance(k, bytes) and len(k) == 16 for k in rl._buckets)  # a keyed hash, not the address


@pytest.mark.parametrize("text,rate", [("5/s", 5.0), ("120/m", 2.0), ("36/h", 0.01), ("0.5/s", 0.5)])
def test_parse_rate(text, rate):
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["5", "x/s", "0/s", "5/d"])
def test_parse_rate_rejects(text):
    with pytest.raises(ValueError):
        parse_rate(text)


def test_asn_table(tmp_path):
    f = tmp_path / "ipasn.dat"
    f.write_text("; IP-ASN32-DAT file\n# comment\n8.8.8.0/24\t15169\n8.0.0.0/8 3356\n2001:4860::/32,AS15169\n")
    t = ASNTable.load(f)
    assert t.lookup("8.8.8.8") == 15169 and t.lookup("8.1.1.1") == 3356 and t.lookup("1.1.1.1") == 0
    assert t.lookup("2001:4860:4860::8888") == 15169 and t.lookup("not an ip") == 0
    f.write_text("8.8.8.0/24 fifteen\n")
    with pytest.raises(ValueError, match=r"ipasn.dat:1"):
        ASNTable.load(f)


def test_helper_command_registered_and_validates(tmp_path):
    runner = CliRunner()
    assert "--allow-net" in runner.invoke(main, ["helper", "--help"]).output
    for bad in (["--allow-net", "10.0.0.0/33"], ["--rate", "fast"], ["--listen", "example.com:80"],
                ["--resolver", "dns.example"], ["--certfile", str(tmp_path / "missing.pem")]):
        result = runner.invoke(main, ["helper", *bad])
        assert result.exit_code == 2, (bad, result.output)
    bad_table = tmp_path / "t.dat"
    bad_table.write_text("nope\n")
    result = runner.invoke(main, ["helper", "--asn-table", str(bad_table)])
    assert result.exit_code == 2 and "t.dat:1" in result.output
