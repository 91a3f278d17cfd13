"""Verdict engine properties (hypothesis): with every canary failing nothing is ever blocked, and any input gets
a documented verdict consistent with its rule's row."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.records import InjectAttempt
from probe.verdict import (
    RULES,
    CanaryHealth,
    ControlMeasurement,
    RunContext,
    classify,
)
from tests.unit.verdict_builders import (
    ALT,
    CANARY,
    CF_CHALLENGE,
    CTX,
    FB,
    FB_IP,
    FB_IP2,
    HTTP_T,
    IRAN_BODY,
    TG,
    dns,
    http,
    steps,
    target,
    tcp,
    tls,
)

# --- properties ----------------------------------------------------------------------------------
FAILURES = st.sampled_from([None, None, "generic_timeout_error", "connection_reset", "connection_refused", "eof_error",
                            "dns_nxdomain_error", "dns_no_answer", "dns_servfail_error", "ssl_invalid_hostname",
                            "ssl_unknown_authority", "network_unreachable", "unknown_failure x"])
IPS = st.sampled_from([FB_IP, FB_IP2, "10.10.34.34", "0.0.0.0", "127.0.0.1", "192.168.1.1", "93.184.216.34", "d0::11",
                       "2a03:2880::1"])
RESOLVERS = st.sampled_from(["system", ALT])
attempt_no = st.integers(1, 3)

dns_st = st.builds(lambda ans, f, r, q, a: dns(ans, f, resolver=r, qtype=q, attempt=a),
                   st.lists(IPS, max_size=2), FAILURES, RESOLVERS, st.sampled_from(["A", "AAAA"]), attempt_no)
tcp_st = st.builds(lambda ip, f, a, p: tcp(ip, f, port=p, attempt=a), IPS, FAILURES, attempt_no, st.sampled_from([80, 443]))
tls_st = st.builds(lambda ip, f, c, a, v: tls(ip, f, sni="example.org" if c else FB, control=c, attempt=a,
                                              valid=v if f is None else False),
                   IPS, FAILURES, st.booleans(), attempt_no, st.booleans())
http_st = st.builds(lambda u, s, f, body, tput, blen, a: http(u, status=s, failure=f, body=body, tput=tput, blen=blen, attempt=a),
                    st.sampled_from([f"http://{FB}/", f"https://{FB}/"]), st.sampled_from([None, 200, 302, 403, 503]),
                    FAILURES, st.sampled_from([None, "<html>ok</html>", IRAN_BODY, CF_CHALLENGE]),
                    st.sampled_from([None, 10.0, 1e7]), st.sampled_from([None, 1000, 10**6]), attempt_no)
inject_st = st.builds(lambda a, b: InjectAttempt(1, FB, "10.0.0.1", 0.0, 1.0, None,
                                                 responses=[{"src": "10.0.0.1", "answers": [a], "rcode": "NOERROR"},
                                                            {"src": "10.0.0.9", "answers": [b], "rcode": "NOERROR"}]),
                      IPS, IPS)
steps_st = st.builds(steps, st.lists(dns_st, max_size=5), st.lists(tcp_st, max_size=4), st.lists(tls_st, max_size=4),
                     st.lists(http_st, max_size=3), st.lists(inject_st, max_size=1))
all_failed_health = st.builds(
    lambda d, i, fr, dom: CanaryHealth(0, d, 0, i, failing_resolvers=frozenset(fr), dns_only_failures=dom,
                                       answering_resolvers=frozenset({"system", ALT}) - frozenset(fr)),
    st.integers(0, 3), st.integers(0, 3), st.sets(RESOLVERS), st.booleans()).filter(lambda h: h.total > 0)
controls = st.one_of(st.none(), st.builds(
    lambda ok, addrs: ControlMeasurement(dns_addrs=addrs, tcp={f"{FB_IP}:443": None if ok else "generic_timeout_error"},
                                         tls={f"{FB_IP}:443": None if ok else "connection_reset"},
                                         http_status=200 if ok else None, http_failure=None if ok else "unknown_error"),
    st.booleans(), st.lists(IPS, max_size=2)))
targets = st.sampled_from([target(), HTTP_T, TG, CANARY, target(urls=(f"http://{FB}/", f"https://{FB}/"))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tgt=targets, stp=steps_st, health=all_failed_health, control=controls,
       tput=st.sampled_from([None, 1e6, 1e9]))
def test_all_canaries_failing_never_blocked(tgt, stp, health, control, tput):
    v = classify(tgt, stp, RunContext(health=health, canary_throughput_bps=tput), control=control)
    assert v.status != "blocked", (v, stp)
    assert v.rule in RULES


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tgt=targets, stp=steps_st, control=controls)
def test_any_input_gives_a_documented_consistent_verdict(tgt, stp, control):
    v = classify(tgt, stp, CTX, control=control)
    r = RULES[v.rule]
    status, layer, method, confirmed_max = r.status, r.layer, r.method, r.confirmed
    assert v.status == status
    assert not v.confirmed or confirmed_max
    assert not v.confirmed or v.status == "blocked"
    if v.status == "blocked" and v.method in ("timeout", "ip_blackhole", "sni_timeout", "http_timeout"):
        assert not v.confirmed  # a bare timeout is never confirmed
