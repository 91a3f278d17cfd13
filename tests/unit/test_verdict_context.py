"""Verdict engine pieces outside the rule table: fingerprints on HTTP answers, the harmless-SNI control,
special-purpose answers in a lab, canary health, the run context, reach, injection evidence."""

from __future__ import annotations

import pytest

from probe.fingerprints import FingerprintDB
from probe.records import InjectAttempt, TCPAttempt
from probe.verdict import (
    CanaryHealth,
    RunContext,
    canary_health,
    classify,
    injection_evidence,
    target_reached,
)
from tests.unit.verdict_builders import (
    CANARY,
    CTX,
    FB,
    FB_IP,
    FB_IP2,
    HEALTH,
    HTTP_T,
    IRAN_BODY,
    OK_STEPS,
    dns,
    http,
    steps,
    target,
    tcp,
    tls,
)


def test_location_fingerprint_with_ooni_db(tmp_path):
    csv = tmp_path / "http.csv"
    csv.write_text("name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n"
                   "ooni.id_lamanlabuh_kominfo,nat,,header.location,prefix,http://lamanlabuh.aduankonten.id,5,ID,ooni,,\n"
                   "cl.vbw_websiteblocked,vbw,,body,contains,Website Blocked,8,,,,\n")
    db = FingerprintDB.from_ooni_csv(http_csv=csv)
    s = steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", body="<html>x</html>", fps=[],
                                                       final_url="http://lamanlabuh.aduankonten.id/", redirects=[f"http://{FB}/"])])
    v = classify(HTTP_T, s, RunContext(health=HEALTH, fingerprints=db))
    assert (v.status, v.layer, v.method, v.rule, v.confirmed) == ("blocked", "http", "blockpage", "http.blockpage", True)
    # vague words alone, nothing else reached: weak blockpage
    s = steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=403, body="<h1>Website Blocked</h1>", fps=[])])
    v = classify(HTTP_T, s, RunContext(health=HEALTH, fingerprints=db))
    # vague words are elimination: without the outside control they accuse nobody
    assert (v.status, v.method, v.rule, v.confirmed) == ("inconclusive", "blockpage", "inconclusive.needs_control", False)
    # ... and a valid certificate for the name elsewhere does not change what the http:// URL gave a person
    s.tls.append(tls())
    assert classify(HTTP_T, s, RunContext(health=HEALTH, fingerprints=db)).rule == "inconclusive.needs_control"


def test_fingerprint_on_authentic_https_is_ignored():
    # A page served over validated HTTPS by the requested host cannot be a censor's page.
    s = steps([dns([FB_IP])], [tcp()], [tls()], [http(body="<p>Access Denied</p>",
                                                     fps=[{"name": "cp.f_gen_access_denied", "pattern": "Access Denied",
                                                           "location": "body", "scope": "vbw"}])])
    assert classify(target(), s, CTX).rule == "ok.tls_valid"


def test_sni_control_needs_same_ip():
    s = steps([dns([FB_IP])], [tcp()], [tls(failure="connection_reset"), tls(ip=FB_IP2, sni="example.org", control=True)])
    v = classify(target(), s, CTX)  # weak (no harmless-SNI control on the same address): nobody accused
    assert (v.rule, v.layer, v.method) == ("inconclusive.needs_control", "tls", "rst")


def test_special_answers_normal_in_a_lab():
    """In a lab where every real site lives at 10.x, a private answer that resolvers agree on is fine."""
    lab = RunContext(health=CanaryHealth(1, 1, 1, 1, special_answers_normal=True, answering_resolvers=frozenset({"system"})))
    s = steps([dns(["10.1.0.5"])], [tcp("10.1.0.5")], [tls("10.1.0.5")])
    assert classify(target(), s, lab).rule == "ok.tls_valid"
    s = steps([dns(["0.0.0.0"])])
    assert classify(target(), s, lab).rule == "dns.bogon"  # a sinkhole stays a sinkhole


def test_canary_health():
    ok_c = (CANARY, OK_STEPS)
    dom = target(platform="canary", name="c-dom", kind="canary", scope="domestic")
    bad = steps([dns(failure="generic_timeout_error")])
    h = canary_health([ok_c, (dom, OK_STEPS)])
    assert (h.ok, h.total, h.all_failed, h.international_shutdown) == (2, 2, False, False)
    h = canary_health([(CANARY, bad), (dom, OK_STEPS)])
    assert h.international_shutdown and not h.all_failed
    h = canary_health([(CANARY, bad), (dom, bad)])
    assert h.all_failed and h.dns_only_failures and "system" in h.failing_resolvers
    lab = canary_health([(CANARY, steps([dns(["10.9.0.1"])], [tcp("10.9.0.1")], [tls("10.9.0.1", sni="canary.example")]))])
    assert lab.special_answers_normal


def test_run_context_builder():
    from probe.verdict import address_evidence, run_context
    canary_fast = steps([dns(["10.9.0.1"], q="canary.example")], [TCPAttempt(1, "10.9.0.1", 443, 0, 2.0, None)],
                        [tls("10.9.0.1", sni="canary.example")],
                        [http("https://canary.example/", body="x" * 100, blen=16384, tput=9e8, ms=10.0)])
    rst = steps([dns([FB_IP])], [tcp()], [tls(failure="connection_reset"),
                                         tls(sni="example.org", control=True, failure="connection_reset")])
    http_t = steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="connection_reset")])
    ctx = run_context([(CANARY, canary_fast), (target(), rst), (HTTP_T, http_t)], throttle_ratio=8.0)
    assert ctx.health.ok == 1 and ctx.health.special_answers_normal
    assert ctx.canary_fetch_bps == pytest.approx(16384 / 0.010) and ctx.canary_rtt_ms == 2.0
    assert ctx.canary_throughput_bps == 9e8 and ctx.throttle_ratio == 8.0
    assert ctx.reset_addresses == address_evidence([(target(), rst)]) == frozenset({FB_IP})
    assert (classify(target(), rst, ctx).layer, classify(target(), rst, ctx).method) == ("tcp", "rst")
    assert (classify(HTTP_T, http_t, ctx).layer, classify(HTTP_T, http_t, ctx).method) == ("tcp", "rst")
    # without the run-level evidence the same HTTP reset is Host filtering
    assert classify(HTTP_T, http_t, CTX).method == "http_rst"


def test_target_reached():
    assert target_reached(OK_STEPS)
    assert not target_reached(steps([dns([FB_IP])], [tcp()], [tls(sni="x", control=True)]))
    assert not target_reached(steps(http_=[http(f"http://{FB}/", body=IRAN_BODY)]))


def test_injection_evidence():
    base = dict(attempt=1, query=FB, resolver="10.0.0.1:53", t0=0.0, duration_ms=1.0, failure=None)
    same = InjectAttempt(**base, responses=[{"src": "10.0.0.1", "answers": [FB_IP], "rcode": "NOERROR"}] * 2)
    assert injection_evidence(same) is None  # duplicates are not injection
    wrong = InjectAttempt(**base, responses=[{"src": "10.9.9.9", "answers": [FB_IP], "rcode": "NOERROR"}])
    assert "instead of 10.0.0.1" in injection_evidence(wrong)
    assert injection_evidence(InjectAttempt(**base, skipped="no CAP_NET_RAW")) is None
