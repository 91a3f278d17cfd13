"""The probe uses the test helper (issue #11 part 2): the converter (also for OONI's real controls),
the runner asking a real helper on 127.0.0.1 beside its own steps, the results line's ``control``
field, failing helpers as no evidence, and ``reachprobe run --control``."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import probe.runner as runner_mod
from probe.control.ask import DEADLINE_FAILURE, check_helper_url, control_endpoints
from probe.control.client import ControlResult, HelperFailure
from probe.control.convert import (
    EMPTY_CONTROL,
    from_result,
    normalize_failure,
    to_measurement,
)
from probe.control.measure import BODY_RATE_MIN_SECONDS, _set_timing
from probe.control.model import ControlRequest, ControlResponse, HTTPRequestResult
from probe.pipeline import run_once
from probe.records import Vantage
from probe.results import iter_results
from probe.runner import RunConfig
from probe.targets import Endpoint, Target

pytest_plugins = ("tests.unit.helper_fixtures",)  # the helper, zone and guard_trips fixtures
pytestmark = pytest.mark.timeout(180)


def _shared() -> Path:
    env = os.environ.get("REACHPROBE_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


RAW = _shared() / "data" / "ooni_real" / "ALL_REAL_raw_measurements.jsonl"
needs_raw = pytest.mark.skipif(not RAW.is_file(), reason=f"shared OONI data not found at {RAW}")


# ------------------------------------------------------------------------------------ converter
def test_converter_reads_our_helpers_answer():
    resp = ControlResponse.model_validate({
        "dns": {"failure": None, "addrs": ["127.0.0.1", "::1"]},
        "tcp_connect": {"127.0.0.1:443": {"status": True, "failure": None},
                        "[::1]:443": {"status": False, "failure": "connection_refused_error"}},
        "tls_handshake": {"127.0.0.1:443": {"server_name": "ok.test", "status": False,
                                            "failure": "ssl_invalid_hostname"}},
        "http_request": {"body_length": 1234, "failure": None, "title": "OK page", "headers": {},
                         "status_code": 200, "x_duration_ms": 52.5, "x_body_bytes_per_s": 81920.0},
    })
    m = to_measurement(resp, "https://ok.test/")
    assert m.source == "control" and m.failed is None
    assert m.dns_addrs == ["127.0.0.1", "::1"] and m.dns_failure is None
    assert m.tcp == {"127.0.0.1:443": None, "[::1]:443": "connection_refused"}  # today's df-007 spelling
    assert m.tls == {"127.0.0.1:443": "ssl_invalid_hostname"}
    assert (m.http_failure, m.http_status, m.http_body_length, m.http_title) == (None, 200, 1234, "OK page")
    assert (m.http_duration_ms, m.http_body_bps) == (52.5, 81920.0)
    assert m.http_ok()



def test_converter_names_the_resolved_host():
    """The control's DNS answer is about its URL's host only: a target's other names get no evidence from it."""
    resp = ControlResponse.model_validate({"dns": {"failure": None, "addrs": ["127.0.0.1"]}})
    m = to_measurement(resp, "https://www.ok.test:8443/path")
    assert m.dns_name == "www.ok.test"
    assert m.speaks_for("WWW.OK.TEST.") and not m.speaks_for("api.ok.test")
    lit = to_measurement(resp, "https://127.0.0.1:8443/")
    assert lit.dns_name is None and lit.dns_addrs is None

def test_converter_sentinels_and_missing_fields():
    failed_fetch = ControlResponse.model_validate({
        "dns": {"failure": "dns_name_error", "addrs": None},
        "http_request": {"body_length": -1, "failure": "dns_lookup_error", "title": "", "status_code": -1,
                         "x_duration_ms": 3.0, "x_body_bytes_per_s": None},
    })
    m = to_measurement(failed_fetch, "https://gone.test/")
    assert m.dns_failure == "dns_nxdomain_error" and m.dns_addrs == [] and m.dns_says_nx()
    assert (m.http_status, m.http_body_length, m.http_title) == (None, None, None)  # -1: failed, not a value
    assert m.http_failed() and m.http_duration_ms == 3.0 and m.http_body_bps is None

    # An old helper: no timing, no TLS; garbage in the extension is ignored, not trusted.
    old = ControlResponse.model_validate({"dns": {"failure": None, "addrs": ["1.2.3.4"]}, "tcp_connect": {},
                                         "http_request": {"status_code": 200, "body_length": 10,
                                                          "x_duration_ms": "fast", "x_body_bytes_per_s": -5}})
    m = to_measurement(old, "http://x.test/")
    assert m.tls == {} and m.http_duration_ms is None and m.http_body_bps is None and m.http_status == 200

    # No DNS for an address literal: empty addrs there are "not measured", not "no addresses".
    lit = ControlResponse.model_validate({"dns": {"failure": None, "addrs": []},
                                          "http_request": {"failure": "dns_lookup_error"}})
    assert to_measurement(lit, "https://127.0.0.1:8443/").dns_addrs is None
    assert not to_measurement(lit, "https://127.0.0.1:8443/").dns_says_nx()

    # A helper that answered {} measured nothing: a failed control, no evidence either way.
    empty = to_measurement(ControlResponse.model_validate({}), "https://x.test/")
    assert empty.failed == EMPTY_CONTROL and not empty.dns_says_nx() and not empty.http_ok()


def test_from_result():
    req = ControlRequest(http_request="https://ok.test/")
    assert from_result(None) is None  # no control asked: the verdict gets control=None
    dead = ControlResult(request=req, failures=[HelperFailure("http://127.0.0.1:1/", "connection_refused"),
                                                HelperFailure("http://127.0.0.1:2/", "http_status_503", 503)])
    m = from_result(dead)
    assert m.failed == "all_helpers_failed" and not m.http_failed() and not m.dns_says_nx()
    ok = ControlResult(request=req, response=ControlResponse.model_validate({"http_request": {"status_code": 200}}),
                       helper="http://127.0.0.1:3/")
    assert from_result(ok).http_ok()


def test_normalize_failure():
    assert normalize_failure(None) is None and normalize_failure("") is None
    assert normalize_failure("connection_refused_error") == "connection_refused"
    assert normalize_failure("dns_name_error") == "dns_nxdomain_error"
    assert normalize_failure("generic_timeout_error") == "generic_timeout_error"
    assert normalize_failure("ssl_error: certificate verify failed") == "ssl_invalid_certificate"
    assert normalize_failure("connect_error") == "connect_error"


@needs_raw
def test_real_ooni_controls_through_the_importer():
    from analysis.importers.ooni import _control

    seen = {}
    for line in RAW.read_text().splitlines():
        m = json.loads(line)
        tk = m.get("test_keys") or {}
        if "control" in tk:
            seen[m["input"]] = _control(tk, m["input"])
    assert len(seen) >= 20
    assert all(c is None or c.source == "ooni_th" for c in seen.values())
    assert all(c is None or (c.http_duration_ms is None and c.http_body_bps is None) for c in seen.values())
    fb = seen["https://www.facebook.com/"]
    assert fb.tcp["10.10.34.36:443"] == "generic_timeout_error"  # Iran's blockpage address, as the helper saw
    gone = seen["http://www.wikispaces.com/"]
    assert gone.http_failure == "dns_lookup_error" and gone.http_status is None and gone.http_body_length is None
    wiki = seen["https://fa.wikipedia.org/"]
    assert wiki.http_body_length == 127734 and wiki.dns_ips() == ["91.198.174.192"]  # the CNAME is no address
    archive = seen["http://archive.org"]
    assert archive.http_title.startswith("Internet Archive") and archive.http_ok()
    doh = seen["https://8.8.4.4/dns-query?dns=q80BAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"]
    assert doh.dns_addrs is None  # an address URL: the helper did no DNS


# ------------------------------------------------------------------------------ helper pieces
def test_timing_extension():
    r = HTTPRequestResult()
    _set_timing(r, started=0.0, first_byte=None, last_byte=None, length=0)  # failed before any body
    assert r.x_duration_ms >= 0 and r.x_body_bytes_per_s is None
    _set_timing(r, started=0.0, first_byte=1.0, last_byte=1.0 + BODY_RATE_MIN_SECONDS / 2, length=5000)
    assert r.x_body_bytes_per_s is None  # too short to be a rate
    _set_timing(r, started=0.0, first_byte=1.0, last_byte=3.0, length=5000)
    assert r.x_body_bytes_per_s == 2500.0
    assert ControlResponse.model_validate({"http_request": r.model_dump()}).http_request.model_extra[
        "x_body_bytes_per_s"] == 2500.0


def test_check_helper_url():
    assert check_helper_url("https://th.example.org/") is None
    assert check_helper_url("http://127.0.0.1:8080/") is None
    assert "https://" in check_helper_url("ftp://th.example.org/")
    assert "https://" in check_helper_url("th.example.org")
    assert "no host" in check_helper_url("https:///x")
    assert "not a URL" in check_helper_url("https://th.example.org:99999/")


def test_control_endpoints():
    resolved = {"ok.test": ["127.0.0.1", "127.0.0.2", "::1", "127.0.0.1"]}
    assert control_endpoints("https://ok.test:8443/x", resolved, ipv6=False) == ["127.0.0.1:8443", "127.0.0.2:8443"]
    assert control_endpoints("http://OK.test/", resolved, ipv6=True) == ["127.0.0.1:80", "127.0.0.2:80", "[::1]:80"]
    assert control_endpoints("https://127.0.0.9/", resolved, ipv6=False) == ["127.0.0.9:443"]
    assert control_endpoints("https://gone.test/", resolved, ipv6=False) == []


# ------------------------------------------------------------------------------- the runner
def dead_url() -> str:
    """A loopback port nobody listens on: connection refused, at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def world(zone, https_server, pki, tmp_path):
    hs = https_server.port
    targets = [
        Target("facebook", "fb-ok", "web", urls=(f"https://ok.test:{hs}/", f"https://ok.test:{hs}/blockpage"),
               dns_names=("ok.test",)),
        Target("telegram", "tg-dc", "endpoint", endpoints=(Endpoint("127.0.0.1", hs),)),
        Target("canary", "canary-int", "canary", urls=(f"https://ok.test:{hs}/",), dns_names=("ok.test",),
               scope="international"),
    ]
    cfg = RunConfig(vantage=Vantage(id="unit"), results_dir=tmp_path / "results", system_resolver=False,
                    resolvers=(zone.address,), ca_bundle=str(pki.ca_pem), timeout=5.0, retries=0, backoff=0.01,
                    concurrency=4, inject_check=False, target_deadline=60.0, control_timeout=30.0,
                    bogon_exempt=(ipaddress.ip_network("127.0.0.0/8"),))
    return cfg, targets, hs


@pytest.fixture
def classified(monkeypatch):
    """What the runner passed to classify(..., control=...), per target name."""
    seen: dict[str, object] = {}
    real = runner_mod.classify

    def spy(target, steps, ctx=None, control=None, **kw):
        seen[target.name] = control
        return real(target, steps, ctx, control=control, **kw)

    monkeypatch.setattr(runner_mod, "classify", spy)
    return seen


def lines(cfg) -> dict[str, dict]:
    return {rec["target"]["name"]: rec for rec in iter_results(cfg.results_dir)}


def test_no_control_configured(world, classified):
    cfg, targets, _ = world
    summary = run_once(cfg, targets)
    assert all("control" not in rec for rec in lines(cfg).values())  # the line is as before
    assert classified["fb-ok"] is None
    assert summary.without_control() == (2, 2)  # one web target and one endpoint target, no control


def test_control_in_results_line_and_verdict(world, helper, classified):
    cfg, targets, hs = world
    th = helper()
    cfg.controls = (th.url,)
    summary = run_once(cfg, targets)
    rec = lines(cfg)["fb-ok"]
    ctl = rec["control"]
    assert ctl["helper"] == th.url and ctl["failure"] is None and ctl["failures"] == []
    assert ctl["request"]["http_request"] == f"https://ok.test:{hs}/"  # the FIRST url
    assert ctl["request"]["tcp_connect"] == [f"127.0.0.1:{hs}"]  # what the probe resolved
    resp = ctl["response"]
    assert resp["dns"]["addrs"] == ["127.0.0.1"]
    assert resp["tcp_connect"][f"127.0.0.1:{hs}"]["status"] is True
    assert resp["tls_handshake"][f"127.0.0.1:{hs}"]["status"] is True
    assert resp["http_request"]["status_code"] == 200 and resp["http_request"]["title"] == "OK page"
    assert resp["http_request"]["x_duration_ms"] > 0
    # every existing field is still there, unchanged in kind
    assert {"schema", "id", "run_id", "measured_at", "vantage", "software", "target", "steps", "verdict",
            "deadline_exceeded", "controls", "config"} <= set(rec)
    assert not rec["deadline_exceeded"]
    # web and endpoint targets are asked about (a DC by its address), canaries never
    assert lines(cfg)["tg-dc"]["control"]["request"]["http_request"] == f"https://127.0.0.1:{hs}/" or \
        lines(cfg)["tg-dc"]["control"]["request"]["http_request"].startswith("http://127.0.0.1:")
    assert "control" not in lines(cfg)["canary-int"]

    got = classified["fb-ok"]
    assert got is not None and got.failed is None and got.http_ok() and got.http_status == 200
    assert got.tcp == {f"127.0.0.1:{hs}": None} and got.dns_ips() == ["127.0.0.1"]
    assert got.http_duration_ms is not None
    assert classified["tg-dc"] is not None and classified["canary-int"] is None
    assert summary.without_control() == (0, 2)
    assert summary.results[0].verdict.status == "ok"

    import analysis  # the analysts' reader takes lines with and without the field alike

    df = analysis.load(cfg.results_dir)
    assert len(df) == 3 and set(df["status"].astype(str)) == {"ok"}


def test_control_does_not_change_the_steps(world, helper):
    cfg, targets, _ = world

    def shape(summary):
        r = {x.target.name: x for x in summary.results}["fb-ok"]
        return ([(a.ip, a.port, a.failure) for a in r.steps.tcp], [(a.sni, a.failure) for a in r.steps.tls],
                [(a.url, a.status, a.failure) for a in r.steps.http], r.verdict.status)

    cfg.results_dir = None
    plain = shape(run_once(cfg, targets))
    cfg.controls = (helper().url,)
    assert shape(run_once(cfg, targets)) == plain


def test_dead_helper_first_then_live(world, helper, classified):
    cfg, targets, _ = world
    dead, th = dead_url(), helper()
    cfg.controls = (dead, th.url)
    run_once(cfg, targets)
    ctl = lines(cfg)["fb-ok"]["control"]
    assert ctl["helper"] == th.url and ctl["failure"] is None and ctl["response"] is not None
    assert [f["helper"] for f in ctl["failures"]] == [dead]
    assert ctl["failures"][0]["failure"] == "connection_refused"
    assert classified["fb-ok"].failed is None


def test_all_helpers_dead(world, classified, tmp_path):
    cfg, targets, _ = world
    # The target itself does not answer either (nothing listens): weak evidence that a dead control
    # must never turn into "blocked".
    refused = int(dead_url().rsplit(":", 1)[1].strip("/"))
    targets = targets + [Target("twitter", "tw-refused", "web", urls=(f"https://ok.test:{refused}/",),
                                dns_names=("ok.test",))]
    cfg.controls = (dead_url(), dead_url())
    summary = run_once(cfg, targets)
    recs = lines(cfg)
    for name in ("fb-ok", "tw-refused"):
        ctl = recs[name]["control"]
        assert ctl["failure"] == "all_helpers_failed" and ctl["response"] is None and ctl["helper"] is None
        assert [f["failure"] for f in ctl["failures"]] == ["connection_refused"] * 2
        assert classified[name].failed == "all_helpers_failed"
    res = {r.target.name: r for r in summary.results}
    assert res["fb-ok"].verdict.status == "ok"
    assert res["tw-refused"].verdict.status != "blocked"
    assert summary.without_control() == (3, 3)


def test_slow_helper_bounded_by_target_deadline(world, raw_listener, classified):
    cfg, targets, _ = world
    hang = raw_listener("hang")  # accepts, never answers
    cfg.target_deadline = 6.0
    cfg.controls = (f"http://127.0.0.1:{hang.port}/", dead_url())
    summary = run_once(cfg, targets[:1])
    r = summary.results[0]
    assert not r.deadline_exceeded  # the helper's wait is not the target's
    assert r.verdict.status == "ok"
    failures = [f.failure for f in r.control.failures]
    assert failures == ["generic_timeout_error", DEADLINE_FAILURE]
    assert lines(cfg)["fb-ok"]["control"]["failure"] == "all_helpers_failed"


# ---------------------------------------------------------------------------------------- CLI
TARGETS = textwrap.dedent("""
    platforms:
      facebook:
        targets:
          - name: fb-web
            kind: web
            urls: ["https://ok.test:{port}/"]
    """).lstrip()


@pytest.fixture
def cli(tmp_path, monkeypatch, zone, https_server, pki):
    from probe.cli import common

    real = common.build_config

    def build_config(o):
        cfg, targets = real(o)
        cfg.system_resolver = False  # only the loopback zone is asked
        cfg.inject_check = False
        return cfg, targets

    monkeypatch.setattr(common, "build_config", build_config)
    path = tmp_path / "targets.yaml"
    path.write_text(TARGETS.format(port=https_server.port))
    base = ["run", "--targets", str(path), "--results", str(tmp_path / "results"), "--resolver", zone.address,
            "--ca-bundle", str(pki.ca_pem), "--allow-answers", "127.0.0.0/8", "--retries", "0", "--timeout", "5"]
    env = {"COLUMNS": "200", "REACHPROBE_CONSENT": "yes", "REACHPROBE_CONFIG_DIR": str(tmp_path / "config"),
           "REACHPROBE_CONTROL": None}

    def invoke(*args, **extra_env):
        from probe.cli import main

        return CliRunner(env={**env, **extra_env}).invoke(main, base + list(args), catch_exceptions=False)

    return invoke


def test_cli_summary_says_when_no_control(cli):
    result = cli()
    assert result.exit_code == 0, result.output
    assert "1 of 1 web verdicts made without an outside control (no --control configured)" in result.output


def test_cli_control_from_env_all_dead(cli, tmp_path):
    # REACHPROBE_CONTROL: whitespace-separated, tried in order
    dead1, dead2 = dead_url(), dead_url()
    result = cli(REACHPROBE_CONTROL=f"{dead1}  {dead2}")
    assert result.exit_code == 0, result.output
    assert "1 of 1 web verdicts made without an outside control (no helper answered)" in result.output
    rec = next(iter_results(tmp_path / "results"))
    assert [f["helper"] for f in rec["control"]["failures"]] == [dead1, dead2]
    assert rec["verdict"]["status"] == "ok"


def test_cli_control_live(cli, helper, tmp_path):
    th = helper()
    result = cli("--control", dead_url(), "--control", th.url)
    assert result.exit_code == 0, result.output
    assert "without an outside control" not in result.output
    rec = next(iter_results(tmp_path / "results"))
    assert rec["control"]["helper"] == th.url


@pytest.mark.parametrize("url, words", [("ftp://th.example.org/", "https://"), ("th.example.org", "https://"),
                                        ("https://", "no host")])
def test_cli_rejects_bad_control_url(cli, url, words):
    result = cli("--control", url)
    assert result.exit_code == 2
    err = result.output.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"reachprobe: --control {url!r}:") and words in err[0]


def test_cli_control_ca_bundle_must_exist(cli, tmp_path):
    result = cli("--control", "https://th.example.org/", "--control-ca-bundle", str(tmp_path / "missing.pem"))
    assert result.exit_code == 2 and "--control-ca-bundle" in result.output


def test_unreadable_control_ca_bundle(cli, tmp_path, world):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    result = cli("--control", "https://127.0.0.1:9/", "--control-ca-bundle", str(bad))
    assert result.exit_code == 2 and result.output.startswith("reachprobe: --control-ca-bundle")
    # Past the CLI (the file changed under a daemon, say): a failed helper, the target measured anyway.
    cfg, targets, _ = world
    cfg.controls, cfg.control_ca_bundle = ("https://127.0.0.1:9/",), str(bad)
    r = run_once(cfg, targets[:1]).results[0]
    assert r.verdict.status == "ok" and not r.control.ok and len(r.control.failures) == 1
