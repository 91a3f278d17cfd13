"""Verdict engine: one table row per rule (step records in, verdict out), plus properties.

Rows are built from the same step records the runner produces; the expected verdict is the exact
(status, layer, method, rule, confirmed). A hypothesis property checks that with every canary failing
no combination of steps is ever called ``blocked``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.fingerprints import FingerprintDB
from probe.records import (DNSAttempt, HTTPAttempt, HTTPRedirect, InjectAttempt, Steps, TCPAttempt,
                           TLSAttempt)
from probe.targets import Endpoint, Target
from probe.verdict import (RULES, CanaryHealth, ControlMeasurement, RunContext, canary_health, classify, run_context,
                           injection_evidence, target_reached)

FB = "www.facebook.com"
FB_IP = "157.240.1.35"
FB_IP2 = "157.240.1.36"
ALT = "10.0.0.2:53"  # the second (uncensored) resolver given with --resolver


# --- builders ------------------------------------------------------------------------------------
def target(platform="facebook", name="facebook-web", kind="web", urls=(f"https://{FB}/",), dns_names=(FB,),
           tls_name=FB, endpoints=(), scope=None, prefixes=()) -> Target:
    return Target(platform=platform, name=name, kind=kind, urls=tuple(urls), dns_names=tuple(dns_names),
                  tls_name=tls_name, endpoints=tuple(endpoints), scope=scope, expected_prefixes=tuple(prefixes))


def dns(answers=(), failure=None, q=FB, resolver="system", qtype="A", attempt=1) -> DNSAttempt:
    rcode = {"dns_nxdomain_error": "NXDOMAIN", "dns_servfail_error": "SERVFAIL"}.get(failure or "", "NOERROR")
    return DNSAttempt(attempt=attempt, query=q, qtype=qtype, resolver=resolver, resolver_address=None,
                      transport="udp", t0=0.0, duration_ms=5.0, failure=failure, rcode=rcode, answers=list(answers))


def tcp(ip=FB_IP, failure=None, port=443, attempt=1) -> TCPAttempt:
    return TCPAttempt(attempt=attempt, ip=ip, port=port, t0=0.1, duration_ms=20.0, failure=failure)


def tls(ip=FB_IP, failure=None, sni=FB, valid=None, control=False, attempt=1) -> TLSAttempt:
    if valid is None and failure is None and not control:
        valid = True
    return TLSAttempt(attempt=attempt, ip=ip, port=443, sni=sni, t0=0.2, duration_ms=30.0, failure=failure,
                      control=control, cert_valid=valid)


def host_control(url, status=None, failure=None) -> HTTPAttempt:
    """The runner's harmless-Host GET (Host: example.com) to the same URL and address."""
    a = http(url, status=status, failure=failure)
    a.control, a.host_header = True, "example.com"
    return a


def http(url=f"https://{FB}/", status=200, failure=None, body=None, fps=None, headers=None, final_url=None,
         tput=None, blen=None, attempt=1, redirects=(), ms=100.0) -> HTTPAttempt:
    db = FingerprintDB.default()
    return HTTPAttempt(attempt=attempt, url=url, t0=0.3, duration_ms=ms, failure=failure,
                       final_url=final_url or url, status=status if failure is None or status else None,
                       headers=dict(headers or {}), body_head=body, body_length=blen if blen is not None else (len(body) if body else None),
                       throughput_bps=tput, redirects=[HTTPRedirect(u, 302) for u in redirects],
                       fingerprints=list(fps) if fps is not None else (db.match_body(body) if body else []))


def _titled(a: HTTPAttempt, title: str) -> HTTPAttempt:
    a.title = title
    return a


def _hop(a: HTTPAttempt, failed_url: str) -> HTTPAttempt:
    a.failed_url = failed_url
    return a


def _rst(a, mismatch: bool, rst_ttl: int = 64, server_ttl: int = 55):
    """An attempt whose RST the run's packet capture saw (probe.measure.packets)."""
    a.rst_ttl_mismatch = mismatch
    a.packets = {"synack_ttl": server_ttl, "server_ttls": [server_ttl],
                 "rst": [{"ttl": rst_ttl, "ip_id": 0, "flags": "R", "hops": 0, "ttl_delta": rst_ttl - server_ttl}],
                 "reference": "address", "connections": 1}
    return a


def steps(dns_=(), tcp_=(), tls_=(), http_=(), inject_=()) -> Steps:
    return Steps(dns=list(dns_), tcp=list(tcp_), tls=list(tls_), http=list(http_), inject=list(inject_))


HEALTH = CanaryHealth(1, 1, 2, 2, answering_resolvers=frozenset({"system", ALT}))
CTX = RunContext(health=HEALTH, canary_throughput_bps=2_000_000.0)
NO_CANARIES = RunContext()
ALL_FAILED = RunContext(health=CanaryHealth(0, 1, 0, 2, answering_resolvers=frozenset({"system"})))
INTL_DOWN = RunContext(health=CanaryHealth(1, 1, 0, 2, answering_resolvers=frozenset({"system"})))
RESOLVER_DOWN = RunContext(health=CanaryHealth(0, 1, 0, 2, failing_resolvers=frozenset({"system"}),
                                               dns_only_failures=True))
DEGRADED = RunContext(health=CanaryHealth(0, 2, 1, 3, answering_resolvers=frozenset({"system"})))

IRAN_BODY = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
             '<title>M1-6</title></head><body><iframe src="http://10.10.34.34?type=Invalid Site&policy=MainPolicy" '
             'style="width: 100%; height: 100%" scrolling="no"></iframe></body></html>')
CF_CHALLENGE = ('<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>'
                '<div>Checking your browser before accessing example.org. Web Page Blocked? no.</div>'
                '<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/jsch/v1"></script></body></html>')
TG = target(platform="telegram", name="telegram-dc1", kind="endpoint", urls=(), dns_names=(), tls_name=None,
            endpoints=(Endpoint("149.154.175.50", 443),))
HTTP_T = target(urls=(f"http://{FB}/",))
CANARY = target(platform="canary", name="canary-1", kind="canary", urls=("https://canary.example/",),
                dns_names=("canary.example",), tls_name="canary.example", scope="international")
OK_STEPS = steps([dns([FB_IP])], [tcp()], [tls()], [http()])
TO = "generic_timeout_error"

# Path loss: canaries and other targets needed retries after timeouts in the same run.
LOSSY = RunContext(health=CanaryHealth(1, 1, 2, 2, answering_resolvers=frozenset({"system", ALT}), timeout_attempts=3,
                                       loss_events=2), canary_throughput_bps=2_000_000.0, loss_events=6, loss_measurements=4)
# ... the same loss elsewhere in the run, but the canaries never timed out: the pattern is unambiguous.
LOSSY_CLEAN_CANARIES = RunContext(health=HEALTH, loss_events=3, loss_measurements=2)
SNI_TIMEOUTS = [tls(failure=TO, attempt=a) for a in (1, 2, 3, 4)] + [tls(sni="example.org", control=True)]


def timed(a: HTTPAttempt, ttfb: float) -> HTTPAttempt:
    a.ttfb_ms = ttfb
    return a


def canary_run(fetch_ms: float, tcp_ms: float = 5.0, tls_ms: float = 30.0, ip: str = "93.184.216.34") -> Steps:
    t = tls(ip, sni="canary.example")
    t.duration_ms = tls_ms
    return steps([dns([ip], q="canary.example")], [TCPAttempt(1, ip, 443, 0.0, tcp_ms, None)], [t],
                 [timed(http("https://canary.example/", body="<html>canary</html>", blen=16384, tput=5e7, ms=fetch_ms),
                        fetch_ms - 1.0)])


# The lab's throttling as measured: 16 KiB over http in ~880 ms, the body trickling after a 125 ms first
# byte; canaries fetch 16 KiB in ~110 ms.
CANARIES_110MS = run_context([(CANARY, canary_run(110.0))])
CANARIES_SLOW = run_context([(CANARY, canary_run(1100.0))])  # a slow canary: the vantage is slow today
CANARIES_5MS = run_context([(CANARY, canary_run(5.0, tcp_ms=0.3, tls_ms=2.0))])
HTTP_TRICKLE = steps([dns([FB_IP])], [TCPAttempt(1, FB_IP, 80, 0.0, 40.0, None)], [],
                     [timed(http(f"http://{FB}/", body="<html>fb</html>", blen=16384, ms=880.0), 125.0)])
HTTPS_SLOW = steps([dns([FB_IP])], [TCPAttempt(1, FB_IP, 443, 0.0, 40.0, None)], [tls()],
                   [timed(http(body="<html>fb</html>", blen=16384, tput=5e7, ms=2390.0), 2388.0)])


# --- the table -----------------------------------------------------------------------------------
# (id, target, steps, ctx, control, (status, layer, method, rule, confirmed))
ROWS = [
    ("ok.tls_valid", target(), OK_STEPS, CTX, None, ("ok", "tls", None, "ok.tls_valid", False)),
    ("ok.http", HTTP_T, steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", body="<html>hello</html>")]),
     CTX, None, ("ok", "http", None, "ok.http", False)),
    ("ok.http_challenge (a captcha is not a blockpage)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=403, body=CF_CHALLENGE,
                                                      fps=[{"name": "cl.vbw_web_page_blocked", "pattern": "Web Page Blocked",
                                                            "location": "body", "scope": "vbw"}])]),
     CTX, None, ("ok", "http", None, "ok.http_challenge", False)),
    ("ok.tcp_endpoint", TG, steps([], [tcp("149.154.175.50")]), CTX, None, ("ok", "tcp", None, "ok.tcp_endpoint", False)),
    ("flaky.retry_succeeded", target(),
     steps([dns([FB_IP])], [tcp(failure="generic_timeout_error", attempt=1), tcp(attempt=2)], [tls()], [http()]),
     CTX, None, ("flaky", None, None, "flaky.retry_succeeded", False)),
    ("flaky.intermittent", target(),
     steps([dns([FB_IP])], [tcp(attempt=1), tcp(failure="generic_timeout_error", attempt=2)], [tls()], [http()]),
     CTX, None, ("flaky", None, None, "flaky.intermittent", False)),
    ("dns.blockpage_ip (even when reached via the second resolver)", target(),
     steps([dns(["10.10.34.34"]), dns([FB_IP], resolver=ALT)],
           [tcp("10.10.34.34", failure="generic_timeout_error"), tcp()], [tls()], []),
     CTX, None, ("blocked", "dns", "blockpage_ip", "dns.blockpage_ip", True)),
    ("dns.blockpage_ip ipv6 d0::11", target(), steps([dns(["d0::11"], qtype="AAAA")]), CTX, None,
     ("blocked", "dns", "blockpage_ip", "dns.blockpage_ip", True)),
    ("dns.bogon contradicted", target(), steps([dns(["127.0.0.2"]), dns([FB_IP], resolver=ALT)], [tcp()], [tls()]),
     CTX, None, ("blocked", "dns", "bogon", "dns.bogon", True)),
    ("dns.bogon single resolver", target(), steps([dns(["192.168.77.7"])], [tcp("192.168.77.7", failure="connection_refused")]),
     CTX, None, ("blocked", "dns", "bogon", "dns.bogon", False)),
    ("bogon agreed by every resolver is the real record", target(platform="signal", urls=("https://uptime.signal.org/",),
                                                                dns_names=("uptime.signal.org",), tls_name=None),
     steps([dns(["127.0.0.1"], q="uptime.signal.org")]), CTX, None,
     ("inconclusive", "dns", None, "inconclusive.dns_only", False)),
    ("dns.nxdomain (resolvers disagree)", target(),
     steps([dns(failure="dns_nxdomain_error"), dns(failure="dns_nxdomain_error", qtype="AAAA"), dns([FB_IP], resolver=ALT)],
           [tcp()], [tls()]),
     CTX, None, ("blocked", "dns", "nxdomain", "dns.nxdomain", False)),
    ("down.nxdomain (gone everywhere)", target(),
     steps([dns(failure="dns_nxdomain_error"), dns(failure="dns_nxdomain_error", resolver=ALT)]),
     CTX, None, ("down", "dns", "nxdomain", "down.nxdomain", False)),
    ("inconclusive.nxdomain_single_resolver", target(), steps([dns(failure="dns_nxdomain_error")]), CTX, None,
     ("inconclusive", "dns", "nxdomain", "inconclusive.nxdomain_single_resolver", False)),
    ("dns.nxdomain for a name known to exist", target(), steps([dns(failure="dns_nxdomain_error")]),
     RunContext(health=HEALTH, known_existing_names=frozenset({FB})), None,
     ("inconclusive", "dns", "nxdomain", "inconclusive.nxdomain_everywhere", False)),
    ("dns.nxdomain (NXDOMAIN at every resolver here, the control resolves it)", target(),
     steps([dns(failure="dns_nxdomain_error"), dns(failure="dns_nxdomain_error", resolver=ALT)]),
     RunContext(health=HEALTH, known_existing_names=frozenset({FB})), ControlMeasurement(dns_addrs=[FB_IP]),
     ("blocked", "dns", "nxdomain", "dns.nxdomain", False)),
    ("down.nxdomain (NXDOMAIN here and at the control: the name is gone)", target(),
     steps([dns(failure="dns_nxdomain_error"), dns(failure="dns_nxdomain_error", resolver=ALT)]),
     RunContext(health=HEALTH, known_existing_names=frozenset({FB})),
     ControlMeasurement(dns_failure="dns_nxdomain_error", http_failure="dns_nxdomain_error"),
     ("down", "dns", "nxdomain", "down.nxdomain", False)),
    ("dns.no_answer", target(),
     steps([dns(failure="dns_no_answer"), dns(failure="dns_no_answer", qtype="AAAA"), dns([FB_IP], resolver=ALT)]),
     CTX, None, ("blocked", "dns", "no_answer", "dns.no_answer", False)),
    ("down.no_answer", target(), steps([dns(failure="dns_no_answer"), dns(failure="dns_no_answer", resolver=ALT)]),
     CTX, None, ("down", "dns", "no_answer", "down.no_answer", False)),
    ("dns.injected", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [],
           [InjectAttempt(1, FB, "10.0.0.1", 0.0, 2000.0, None,
                          responses=[{"src": "10.0.0.1", "ttl": 60, "answers": ["10.10.34.34"], "rcode": "NOERROR", "delay_ms": 3},
                                     {"src": "10.0.0.1", "ttl": 52, "answers": [FB_IP], "rcode": "NOERROR", "delay_ms": 40}])]),
     CTX, None, ("blocked", "dns", "injected", "dns.injected", True)),
    ("dns.timeout for the target only (weak: nothing reached)", target(),
     steps([dns(failure="generic_timeout_error", attempt=i) for i in (1, 2)] + [dns([FB_IP], resolver=ALT)],
           [tcp(failure="generic_timeout_error")]),
     CTX, None, ("inconclusive", "dns", "timeout", "inconclusive.needs_control", False)),
    ("dns.timeout (the control resolved the name)", target(),
     steps([dns(failure="generic_timeout_error", attempt=i) for i in (1, 2)] + [dns([FB_IP], resolver=ALT)],
           [tcp(failure="generic_timeout_error")]),
     CTX, ControlMeasurement(dns_addrs=[FB_IP]), ("blocked", "dns", "timeout", "dns.timeout", False)),
    ("the control gets the same special-purpose answer: the site's own record", target(),
     steps([dns(["127.0.0.1"])]), CTX, ControlMeasurement(dns_addrs=["127.0.0.1"]),
     ("inconclusive", "dns", None, "inconclusive.dns_only", False)),
    ("a resolver timeout while the target is reached is not blocking", target(),
     steps([dns(failure="generic_timeout_error", attempt=i) for i in (1, 2)] + [dns([FB_IP], resolver=ALT)], [tcp()], [tls()]),
     CTX, None, ("ok", "tls", None, "ok.tls_valid", False)),
    ("dns.servfail for the target only", target(),
     steps([dns(failure="dns_servfail_error"), dns([FB_IP], resolver=ALT)]),
     CTX, None, ("blocked", "dns", "servfail", "dns.servfail", False)),
    ("inconclusive.dns_timeout", target(), steps([dns(failure="generic_timeout_error")]), CTX, None,
     ("inconclusive", "dns", "timeout", "inconclusive.dns_timeout", False)),
    ("dns.unexpected_answer", target(),
     steps([dns(["93.184.216.34"]), dns([FB_IP], resolver=ALT)], [tcp("93.184.216.34")],
           [tls("93.184.216.34", failure="ssl_invalid_hostname", valid=False)]),
     NO_CANARIES, None, ("blocked", "dns", "unexpected_answer", "dns.unexpected_answer", False)),
    ("every connection timed out, no control: a dead host looks the same", target(),
     steps([dns([FB_IP, FB_IP2])], [tcp(ip, failure="generic_timeout_error", attempt=a) for ip in (FB_IP, FB_IP2) for a in (1, 2)]),
     CTX, None, ("inconclusive", "tcp", "ip_blackhole", "inconclusive.needs_control", False)),
    ("tcp.ip_blackhole (the control connects)", target(),
     steps([dns([FB_IP, FB_IP2])], [tcp(ip, failure="generic_timeout_error", attempt=a) for ip in (FB_IP, FB_IP2) for a in (1, 2)]),
     CTX, ControlMeasurement(dns_addrs=[FB_IP], tcp={f"{FB_IP}:443": None, f"{FB_IP2}:443": None}),
     ("blocked", "tcp", "ip_blackhole", "tcp.ip_blackhole", False)),
    ("a dead host: the control times out too", target(),
     steps([dns([FB_IP])], [tcp(failure="generic_timeout_error", attempt=a) for a in (1, 2)]),
     CTX, ControlMeasurement(dns_addrs=[FB_IP], tcp={f"{FB_IP}:443": "generic_timeout_error"},
                             http_failure="generic_timeout_error"),
     ("down", "tcp", "unreachable", "down.control_agrees", False)),
    ("ipv6 unreachable is the vantage's, not a block", target(),
     steps([dns([FB_IP]), dns(["2a03:2880::1"], qtype="AAAA")],
           [tcp(failure="generic_timeout_error"), tcp("2a03:2880::1", failure="network_unreachable")]),
     CTX, None, ("inconclusive", "tcp", "ip_blackhole", "inconclusive.needs_control", False)),
    ("tcp.rst (refused here, control connects)", target(), steps([dns([FB_IP])], [tcp(failure="connection_refused")]),
     NO_CANARIES, ControlMeasurement(dns_addrs=[FB_IP], tcp={f"{FB_IP}:443": None}),
     ("blocked", "tcp", "rst", "tcp.rst", False)),
    ("reset during the handshake, no control", target(), steps([dns([FB_IP])], [tcp(failure="connection_reset")]), CTX, None,
     ("inconclusive", "tcp", "rst", "inconclusive.needs_control", False)),
    ("tcp.unreachable (control connects)", target(), steps([dns([FB_IP])], [tcp(failure="host_unreachable")]),
     NO_CANARIES, ControlMeasurement(tcp={f"{FB_IP}:443": None}),
     ("blocked", "tcp", "unreachable", "tcp.unreachable", False)),
    ("inconclusive.tcp_unreachable", target(), steps([dns([FB_IP])], [tcp(failure="host_unreachable")]), CTX, None,
     ("inconclusive", "tcp", "unreachable", "inconclusive.tcp_unreachable", False)),
    ("inconclusive.tcp_failure", target(), steps([dns([FB_IP])], [tcp(failure="unknown_failure oops")]), CTX, None,
     ("inconclusive", "tcp", None, "inconclusive.tcp_failure", False)),
    ("down.refused (site down, canaries fine)", target(),
     steps([dns([FB_IP])], [tcp(failure="connection_refused", attempt=a) for a in (1, 2, 3)]),
     CTX, ControlMeasurement(dns_addrs=[FB_IP], tcp={f"{FB_IP}:443": "connection_refused"}),
     ("down", "tcp", "refused", "down.refused", False)),
    ("tcp.rst_injected (the RST's TTL is not the server's)", target(),
     steps([dns([FB_IP])], [_rst(tcp(failure="connection_refused", attempt=a), True) for a in (1, 2)]),
     CTX, None, ("blocked", "tcp", "rst", "tcp.rst_injected", True)),
    ("a server's own RST (same TTL as its SYN-ACKs) accuses nobody", target(),
     steps([dns([FB_IP])], [_rst(tcp(failure="connection_refused", attempt=a), False, 55) for a in (1, 2)]),
     CTX, None, ("inconclusive", "tcp", "refused", "inconclusive.tcp_refused", False)),
    ("http.rst_injected (a body reset by a RST with another TTL)", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [_rst(http(status=200, failure="connection_reset", attempt=a), True)
                                              for a in (1, 2)]),
     CTX, None, ("blocked", "http", "http_rst", "http.rst_injected", True)),
    ("a server crashing mid-body resets with its own TTL: nobody accused", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [_rst(http(status=200, failure="connection_reset", attempt=a), False, 55)
                                              for a in (1, 2)]),
     CTX, None, ("inconclusive", "http", "http_rst", "inconclusive.needs_control", False)),
    ("inconclusive.tcp_refused (a censor's RST and nothing listening look the same)", target(),
     steps([dns([FB_IP])], [tcp(failure="connection_refused", attempt=a) for a in (1, 2, 3)]),
     CTX, None, ("inconclusive", "tcp", "refused", "inconclusive.tcp_refused", False)),
    ("tls.sni_rst", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="connection_reset", attempt=a) for a in (1, 2)]
           + [tls(sni="example.org", control=True)]),
     CTX, None, ("blocked", "tls", "sni_rst", "tls.sni_rst", True)),
    ("tls.sni_eof", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="eof_error"), tls(sni="example.org", control=True)]),
     CTX, None, ("blocked", "tls", "sni_eof", "tls.sni_eof", True)),
    ("tls.sni_timeout", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="generic_timeout_error"), tls(sni="example.org", control=True)]),
     CTX, None, ("blocked", "tls", "sni_timeout", "tls.sni_timeout", False)),
    ("inconclusive.tls_any_sni", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="generic_timeout_error"),
                                     tls(sni="example.org", control=True, failure="generic_timeout_error")]),
     CTX, None, ("inconclusive", "tls", None, "inconclusive.tls_any_sni", False)),
    ("tcp.rst (TLS reset for any SNI: the address is reset)", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="connection_reset", attempt=a) for a in (1, 2)]
           + [tls(sni="example.org", control=True, failure="connection_reset")]),
     CTX, None, ("inconclusive", "tcp", "rst", "inconclusive.needs_control", False)),
    ("tcp.rst (HTTP reset on an address the run saw reset for any SNI)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="connection_reset")]),
     RunContext(health=HEALTH, reset_addresses=frozenset({FB_IP})), None, ("inconclusive", "tcp", "rst", "inconclusive.needs_control", False)),
    ("tls.rst (OONI control handshake fine)", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="connection_reset")]),
     NO_CANARIES, ControlMeasurement(tls={f"{FB_IP}:443": None}),
     ("blocked", "tls", "rst", "tls.rst", False)),
    ("tls.timeout (weak: no control of any kind)", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="generic_timeout_error")]),
     CTX, None, ("inconclusive", "tls", "timeout", "inconclusive.needs_control", False)),
    ("tls.timeout (the control's handshake completed)", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="generic_timeout_error")]),
     CTX, ControlMeasurement(tls={f"{FB_IP}:443": None}), ("blocked", "tls", "timeout", "tls.timeout", False)),
    ("tls.invalid_cert (valid at the control)", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="ssl_unknown_authority", valid=False)]),
     NO_CANARIES, ControlMeasurement(tls={f"{FB_IP}:443": None}),
     ("blocked", "tls", "invalid_cert", "tls.invalid_cert", False)),
    ("inconclusive.tls_invalid_cert", target(),
     steps([dns([FB_IP])], [tcp()], [tls(failure="ssl_invalid_hostname", valid=False)]),
     CTX, None, ("inconclusive", "tls", "invalid_cert", "inconclusive.tls_invalid_cert", False)),
    ("http.blockpage (Iran's iframe)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", body=IRAN_BODY)]),
     CTX, None, ("blocked", "http", "blockpage", "http.blockpage", True)),
    ("http.blockpage from body_head when the runner matched nothing", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", body=IRAN_BODY, fps=[])]),
     CTX, None, ("blocked", "http", "blockpage", "http.blockpage", True)),
    ("http.blockpage_weak (vague words only, nothing else answered)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=200, body="<h1>Website Blocked</h1>",
                                                      fps=[{"name": "cl.vbw_websiteblocked", "pattern": "Website Blocked",
                                                            "location": "body", "scope": "vbw"}])]),
     CTX, None, ("inconclusive", "http", "blockpage", "inconclusive.needs_control", False)),
    ("http.blockpage_weak (vague words, the control got another page)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [_titled(http(f"http://{FB}/", status=200, body="<h1>Website Blocked</h1>",
                                                              fps=[{"name": "cl.vbw_websiteblocked", "pattern": "Website Blocked",
                                                                    "location": "body", "scope": "vbw"}]), "Blocked")]),
     CTX, ControlMeasurement(http_status=200, http_title="Facebook", http_body_length=90000),
     ("blocked", "http", "blockpage", "http.blockpage_weak", False)),
    ("http.blockpage_diff (no fingerprint; title and size unlike the control's)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [_titled(http(f"http://{FB}/", status=403, body="<html>forbidden</html>",
                                                             fps=[]), "Access to this site is restricted")]),
     CTX, ControlMeasurement(http_status=200, http_title="Facebook - log in or sign up", http_body_length=90000),
     ("blocked", "http", "blockpage", "http.blockpage_diff", False)),
    ("a site's own access-denied page is what the control gets too", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [_titled(http(f"http://{FB}/", status=403, body="<html>denied</html>",
                                                             fps=[]), "Access denied")]),
     CTX, ControlMeasurement(http_status=403, http_title="Access denied", http_body_length=20),
     ("down", "http", "http_error", "down.control_agrees", False)),
    ("a site's own access-denied page, no control: the site answered", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [_titled(http(f"http://{FB}/", status=403, body="<html>denied</html>",
                                                             fps=[]), "Access denied")]),
     CTX, None, ("ok", "http", None, "ok.http", False)),
    ("http.redirect_hop (the hop failed here, the control fetched the whole chain)", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [_hop(http(status=302, failure=TO, redirects=[f"https://{FB}/"]),
                                                   "https://blocked.example/")]),
     CTX, ControlMeasurement(http_status=200), ("blocked", "http", "redirect_hop", "http.redirect_hop", False)),
    ("a redirect to a dead host: the control's fetch fails too", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [_hop(http(status=302, failure=TO, redirects=[f"https://{FB}/"]),
                                                   "https://dead.example/")]),
     CTX, ControlMeasurement(http_failure=TO), ("down", "http", None, "down.control_agrees", False)),
    ("a failed redirect hop without the control accuses nobody", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [_hop(http(status=302, failure=TO, redirects=[f"https://{FB}/"]),
                                                   "https://blocked.example/")]),
     CTX, None, ("inconclusive", "http", "redirect_hop", "inconclusive.needs_control", False)),
    ("a body cut after a valid handshake is not ok (the control fetched it)", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [http(status=200, failure="connection_reset", attempt=a) for a in (1, 2)]),
     CTX, ControlMeasurement(http_status=200), ("blocked", "http", "http_rst", "http.rst", False)),
    ("a server crashing mid-body after a valid handshake: the control's fetch fails too", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [http(status=200, failure="connection_reset", attempt=a) for a in (1, 2)]),
     CTX, ControlMeasurement(http_failure="connection_reset"), ("down", "http", None, "down.control_agrees", False)),
    ("http.redirect_bogon", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=307, failure="http_invalid_redirect_url",
                                                      headers={"Location": "http://192.168.22.1/portal?orig=x"})]),
     CTX, None, ("blocked", "http", "blockpage", "http.redirect_bogon", False)),
    ("http.rst (Host filtering)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="connection_reset", attempt=a)
                                                 for a in (1, 2)]),
     CTX, None, ("inconclusive", "http", "http_rst", "inconclusive.needs_control", False)),
    ("http.rst (reset here, the control fetched it)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="connection_reset", attempt=a)
                                                 for a in (1, 2)]),
     CTX, ControlMeasurement(dns_addrs=[FB_IP], http_status=200, http_body_length=5000),
     ("blocked", "http", "http_rst", "http.rst", False)),
    ("a server that resets every request: the control's fetch fails too", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=200, failure="connection_reset", attempt=a)
                                                 for a in (1, 2)]),
     CTX, ControlMeasurement(dns_addrs=[FB_IP], http_failure="connection_reset"),
     ("down", "http", None, "down.control_agrees", False)),
    ("a harmless-Host GET cut after its 200 is not 'answered' (a crashing server)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=200, failure="connection_reset", attempt=a)
                                                 for a in (1, 2)] + [host_control(f"http://{FB}/", status=200,
                                                                                  failure="connection_reset")]),
     CTX, None, ("inconclusive", "http", "http_rst", "inconclusive.needs_control", False)),
    ("http.host_rst (harmless Host answered)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="connection_reset", attempt=a)
                                                 for a in (1, 2)] + [host_control(f"http://{FB}/", status=404)]),
     CTX, None, ("blocked", "http", "http_rst", "http.host_rst", True)),
    ("harmless Host reset too: the address, not the Host", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="connection_reset", attempt=a)
                                                 for a in (1, 2)] + [host_control(f"http://{FB}/", failure="connection_reset")]),
     CTX, None, ("inconclusive", "tcp", "rst", "inconclusive.needs_control", False)),
    ("a control GET's answer never counts as reaching the target", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="eof_error", attempt=a)
                                                 for a in (1, 2)] + [host_control(f"http://{FB}/", status=200)]),
     CTX, None, ("blocked", "http", "http_rst", "http.host_rst", True)),
    ("http.timeout (weak)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="generic_timeout_error")]),
     CTX, None, ("inconclusive", "http", "http_timeout", "inconclusive.needs_control", False)),
    ("http.timeout (the control fetched it)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="generic_timeout_error")]),
     CTX, ControlMeasurement(http_status=200), ("blocked", "http", "http_timeout", "http.timeout", False)),
    ("a slowloris server: the control's fetch times out too", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="generic_timeout_error")]),
     CTX, ControlMeasurement(http_failure="generic_timeout_error"), ("down", "http", None, "down.control_agrees", False)),
    ("http.throttled", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [http(body="<html>big</html>", blen=500_000, tput=50_000.0)]),
     CTX, ControlMeasurement(http_status=200, http_duration_ms=80.0), ("blocked", "http", "throttled", "http.throttled", False)),
    ("a slow fetch with no outside timing: throttling and a slow server look the same", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [http(body="<html>big</html>", blen=500_000, tput=50_000.0)]),
     CTX, None, ("inconclusive", "http", "throttled", "inconclusive.needs_control", False)),
    ("a server slow from outside too is not throttled", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [http(body="<html>big</html>", blen=500_000, tput=50_000.0, ms=10_000.0)]),
     CTX, ControlMeasurement(http_status=200, http_duration_ms=9_000.0), ("ok", "tls", None, "ok.tls_valid", False)),
    ("http.throttled (whole-fetch time against the slowest canary)", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [http(body="<html>16k</html>", blen=16384, tput=5e7, ms=600.0)]),
     RunContext(health=HEALTH, canary_fetch_bps=1_600_000.0, canary_rtt_ms=20.0),
     ControlMeasurement(http_status=200, http_duration_ms=30.0),
     ("blocked", "http", "throttled", "http.throttled", False)),
    ("a far-away target is slow, not throttled (round trip allowed for)", target(),
     steps([dns([FB_IP])], [TCPAttempt(1, FB_IP, 443, 0.0, 200.0, None)], [tls()],
           [http(body="<html>16k</html>", blen=16384, tput=5e7, ms=600.0)]),
     RunContext(health=HEALTH, canary_fetch_bps=1_600_000.0, canary_rtt_ms=10.0), None,
     ("ok", "tls", None, "ok.tls_valid", False)),
    ("http.throttled (http: every fetch >=5x slower after latency, the body trickled)", HTTP_T, HTTP_TRICKLE,
     CANARIES_110MS, ControlMeasurement(http_status=200, http_duration_ms=50.0),
     ("blocked", "http", "throttled", "http.throttled", False)),
    ("http.throttled (https: a small body in one TLS record, a trickle from the same address in the run)", target(),
     HTTPS_SLOW, run_context([(CANARY, canary_run(110.0))], trickle_addresses=frozenset({FB_IP})),
     ControlMeasurement(http_status=200, http_duration_ms=50.0),
     ("blocked", "http", "throttled", "http.throttled", False)),
    ("a slow https fetch with a normal handshake and no trickle is a slow server, not throttling", target(),
     HTTPS_SLOW, CANARIES_110MS, None, ("ok", "tls", None, "ok.tls_valid", False)),
    ("a slow canary never makes a target throttled", HTTP_T, HTTP_TRICKLE, CANARIES_SLOW, None,
     ("ok", "http", None, "ok.http", False)),
    ("a small page in 40 ms against 5 ms is not throttling (absolute minimum 0.5 s)", HTTP_T,
     steps([dns([FB_IP])], [TCPAttempt(1, FB_IP, 80, 0.0, 0.3, None)], [],
           [timed(http(f"http://{FB}/", body="<html>fb</html>", blen=16384, ms=40.0), 3.0)]),
     CANARIES_5MS, None, ("ok", "http", None, "ok.http", False)),
    ("no throttling on a lossy run (a retransmission stalls a fetch)", HTTP_T, HTTP_TRICKLE,
     run_context([(CANARY, canary_run(110.0))], loss_events=4, loss_measurements=3), None,
     ("ok", "http", None, "ok.http", False)),
    ("no throttling when a canary failed", HTTP_T, HTTP_TRICKLE,
     run_context([(CANARY, canary_run(110.0)), (target(platform="canary", name="c2", kind="canary", scope="domestic"),
                                                 steps([dns(failure=TO)]))]), None,
     ("ok", "http", None, "ok.http", False)),
    ("flaky.lossy_path (a lossy run's SNI timeout, the harmless handshake got through once)", target(),
     steps([dns([FB_IP])], [tcp()], SNI_TIMEOUTS, [http()]), LOSSY, None,
     ("flaky", None, None, "flaky.lossy_path", False)),
    ("flaky.lossy_path (a lossy run's SNI timeout, nothing reached)", target(),
     steps([dns([FB_IP])], [tcp()], SNI_TIMEOUTS), LOSSY, None, ("flaky", None, None, "flaky.lossy_path", False)),
    ("tls.sni_timeout on a lossy run whose canaries never timed out (unambiguous)", target(),
     steps([dns([FB_IP])], [tcp()], SNI_TIMEOUTS), LOSSY_CLEAN_CANARIES, None,
     ("blocked", "tls", "sni_timeout", "tls.sni_timeout", False)),
    ("a lossy run's DNS timeouts (every resolver) are flaky, not inconclusive", target(),
     steps([dns(failure=TO, resolver=r, attempt=a) for r in ("system", ALT) for a in (1, 2, 3, 4)]), LOSSY, None,
     ("flaky", None, None, "flaky.lossy_path", False)),
    ("a lossy run's DNS timeout for the target only is not dns.timeout", target(),
     steps([dns(failure=TO, attempt=a) for a in (1, 2, 3, 4)] + [dns([FB_IP], resolver=ALT)],
           [tcp(failure=TO, attempt=a) for a in (1, 2, 3, 4)]), LOSSY, None,
     ("flaky", None, None, "flaky.lossy_path", False)),
    ("a lossy run's connect timeouts are not an IP blackhole", TG,
     steps([], [tcp("149.154.175.50", failure=TO, attempt=a) for a in (1, 2, 3, 4)]), LOSSY, None,
     ("flaky", None, None, "flaky.lossy_path", False)),
    ("a lossy run's GET timeouts are not http.timeout", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure=TO, attempt=a) for a in (1, 2, 3, 4)]),
     LOSSY, None, ("flaky", None, None, "flaky.lossy_path", False)),
    ("a lossy run's resets are still judged (loss does not reset)", HTTP_T,
     steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="connection_reset", attempt=a)
                                                 for a in (1, 2)]),
     LOSSY, None, ("inconclusive", "http", "http_rst", "inconclusive.needs_control", False)),
    ("small fast body is not throttling", target(),
     steps([dns([FB_IP])], [tcp()], [tls()], [http(body="<html>small</html>", blen=4000, tput=150_000.0)]),
     CTX, None, ("ok", "tls", None, "ok.tls_valid", False)),
    ("outage.canaries", target(), steps([dns(failure="generic_timeout_error")]), ALL_FAILED, None,
     ("outage", None, "canaries_failed", "outage.canaries", False)),
    ("outage.canaries beats a blockpage", target(), steps([dns(["10.10.34.34"])]), ALL_FAILED, None,
     ("outage", None, "canaries_failed", "outage.canaries", False)),
    ("outage.international_shutdown", target(), steps([dns([FB_IP])], [tcp(failure="generic_timeout_error")]),
     INTL_DOWN, None, ("outage", None, "international_shutdown", "outage.international_shutdown", False)),
    ("outage.resolver", target(), steps([dns(failure="generic_timeout_error")]), RESOLVER_DOWN, None,
     ("outage", "dns", "resolver_down", "outage.resolver", False)),
    ("inconclusive.no_steps", target(), steps(), CTX, None, ("inconclusive", None, None, "inconclusive.no_steps", False)),
    ("inconclusive.degraded_vantage", target(), steps([dns([FB_IP])], [tcp(failure="generic_timeout_error")]),
     DEGRADED, None, ("inconclusive", "tcp", "ip_blackhole", "inconclusive.degraded_vantage", False)),
    ("inconclusive.no_controls", target(), steps([dns([FB_IP])], [tcp(failure="generic_timeout_error")]),
     NO_CANARIES, None, ("inconclusive", "tcp", "ip_blackhole", "inconclusive.no_controls", False)),
    ("inconclusive.canary_failed", CANARY, steps([dns([FB_IP], q="canary.example")], [tcp(failure="generic_timeout_error")]),
     CTX, None, ("inconclusive", "tcp", "ip_blackhole", "inconclusive.canary_failed", False)),
    ("inconclusive.probe_error", target(), steps([dns([FB_IP])], [tcp()], [], [http(status=None, failure="unknown_failure 'ascii' codec")]),
     CTX, None, ("inconclusive", "http", None, "inconclusive.probe_error", False)),
    ("inconclusive.dns_only", target(), steps([dns([FB_IP])]), CTX, None,
     ("inconclusive", "dns", None, "inconclusive.dns_only", False)),
    ("down.control_agrees", HTTP_T, steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="response_never_received")]),
     NO_CANARIES, ControlMeasurement(dns_addrs=[FB_IP], http_failure="unknown_error"),
     ("down", "http", None, "down.control_agrees", False)),
    ("down.nxdomain_rewritten", HTTP_T,
     steps([dns(["61.183.1.186"])], [tcp("61.183.1.186", port=80)], [],
           [http(f"http://{FB}/", status=302, failure="http_invalid_redirect_url", headers={"Location": "http://search.114so.cn/"})]),
     NO_CANARIES, ControlMeasurement(dns_addrs=[], dns_failure="dns_nxdomain_error", http_failure="dns_lookup_error"),
     ("down", "dns", "nxdomain", "down.nxdomain_rewritten", False)),
    ("inconclusive.control_failed", HTTP_T, steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="something_odd")]),
     NO_CANARIES, ControlMeasurement(failed="json_parse_error"),
     ("inconclusive", None, None, "inconclusive.control_failed", False)),
    ("inconclusive.unexplained", HTTP_T, steps([dns([FB_IP])], [tcp(port=80)], [], [http(f"http://{FB}/", status=None, failure="something_odd")]),
     CTX, None, ("inconclusive", None, None, "inconclusive.unexplained", False)),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_rule_table(row):
    _, tgt, stp, ctx, control, expected = row
    v = classify(tgt, stp, ctx, control=control)
    assert (v.status, v.layer, v.method, v.rule, v.confirmed) == expected, v.reason
    assert v.rule in RULES
    assert v.reason
    assert 0.0 <= v.confidence <= 1.0


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


def test_rule_table_is_documented():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "verdicts.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\|\s*`([a-z_]+\.[a-z_]+)`", doc, re.M))
    assert set(RULES) <= documented, sorted(set(RULES) - documented)
    assert documented <= set(RULES), sorted(documented - set(RULES))
    src = "".join(f.read_text(encoding="utf-8")
                  for f in sorted((Path(__file__).resolve().parents[2] / "probe" / "verdict").glob("*.py")))
    literal = set(re.findall(r'"((?:ok|dns|tcp|tls|http|down|outage|flaky|inconclusive)\.[a-z_]+)"', src))
    assert literal <= set(RULES), sorted(literal - set(RULES))


def test_every_row_rule_exists_and_table_covers_rules():
    produced = {r[5][3] for r in ROWS}
    missing = set(RULES) - produced - {"inconclusive.no_test_keys",
                                       "inconclusive.no_answer_single_resolver", "inconclusive.dns_servfail",
                                       "inconclusive.deadline"}  # needs deadline_exceeded: test_badinput.py
    assert not missing, sorted(missing)


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


# --- the lab's scenarios, as the runner records them ------------------------------------------------
# Addresses as in tests/lab: sites in 198.18.0.0/15 (benchmarking range), the domestic canary at
# 10.10.35.10, Iran's blockpage 10.10.34.34; resolvers "system" and the public one given with --resolver.
LAB_FB, LAB_PUB, LAB_CTL_SNI = "198.18.1.10", "198.18.8.8", "example.com"
LAB_WEB = target(urls=("https://www.facebook.lab/",), dns_names=("www.facebook.lab",), tls_name="www.facebook.lab",
                 prefixes=())
LAB_HTTP = target(name="facebook-http", urls=("http://www.facebook.lab/",), dns_names=("www.facebook.lab",), tls_name=None)
LAB_DC = target(platform="telegram", name="telegram-dc1", kind="endpoint", urls=(), dns_names=(), tls_name=None,
                endpoints=(Endpoint("198.18.3.50", 443), Endpoint("198.18.3.50", 80)))


def _lab_canary(name, ip, scope, ok=True):
    t = target(platform="canary", name=name, kind="canary", urls=(f"https://{name}.lab/",), dns_names=(f"{name}.lab",),
               tls_name=f"{name}.lab", scope=scope)
    if not ok:
        return t, steps([dns(failure="generic_timeout_error", q=f"{name}.lab", resolver=r) for r in ("system", LAB_PUB)])
    return t, steps([dns([ip], q=f"{name}.lab", resolver=r) for r in ("system", LAB_PUB)],
                    [TCPAttempt(1, ip, 443, 0, 0.4, None)], [_tls_ms(tls(ip, sni=f"{name}.lab"), 3.0)],
                    [_ttfb(http(f"https://{name}.lab/", body="<html>canary</html>", blen=16384, tput=1e9, ms=8.0), 7.9)])


def _fb_dns(answer=(LAB_FB,), failure=None, public=None, pub_failure=None):
    pub = answer if public is None else public
    return [dns(list(answer), failure, q="www.facebook.lab", resolver="system"),
            dns(list(pub), pub_failure if pub_failure is not None else (failure if public is None else None),
                q="www.facebook.lab", resolver=LAB_PUB)]


def _web(dns_, tcp_=(), tls_=(), http_=(), inject_=()):
    return steps(dns_, tcp_, tls_, http_, inject_)


def _lab_tls(failure=None, control="none", attempts=2):
    """The runner's TLS records: the target SNI (retried when failing), then the harmless-SNI control
    handshake ("none": not made, "ok": completed, else its failure)."""
    out = [tls(LAB_FB, failure, sni="www.facebook.lab", attempt=a) for a in range(1, (attempts if failure else 1) + 1)]
    if control != "none":
        out.append(tls(LAB_FB, None if control == "ok" else control, sni=LAB_CTL_SNI, control=True))
    return out


OKWEB = _web(_fb_dns(), [tcp(LAB_FB)], _lab_tls(), [http("https://www.facebook.lab/", body="<html>fb</html>", blen=16384, ms=9.0)])
OKHTTP = _web(_fb_dns(), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", body="<html>fb</html>", blen=16384, ms=5.0)])
TO = "generic_timeout_error"
FORGED = InjectAttempt(1, "www.facebook.lab", "198.18.0.53:53", 0.0, 1000.0, None,
                       responses=[{"src": "198.18.0.53", "ttl": 63, "answers": ["10.10.34.36"], "rcode": "NOERROR", "delay_ms": 1},
                                  {"src": "198.18.0.53", "ttl": 63, "answers": [LAB_FB], "rcode": "NOERROR", "delay_ms": 301}])
SLOW = dict(body="<html>fb</html>", blen=16384, ms=650.0, tput=2.5e4)


def _ttfb(a: HTTPAttempt, ms: float) -> HTTPAttempt:
    a.ttfb_ms = ms
    return a


def _tls_ms(a: TLSAttempt, ms: float) -> TLSAttempt:
    a.duration_ms = ms
    return a

LAB = [
    # name, canaries ok (int, dom), web steps, http steps, expected web, expected http
    ("control", (True, True), OKWEB, OKHTTP, ("ok",), ("ok",)),
    ("dns_hijack", (True, True),
     _web(_fb_dns(["10.10.34.34"]), [tcp("10.10.34.34")], [tls("10.10.34.34", "ssl_invalid_hostname", sni="www.facebook.lab", valid=False)]),
     _web(_fb_dns(["10.10.34.34"]), [tcp("10.10.34.34", port=80)], [], [http("http://www.facebook.lab/", status=403, body=IRAN_BODY)]),
     ("blocked", "dns", "blockpage_ip"), ("blocked", "dns", "blockpage_ip")),
    ("nxdomain", (True, True),
     _web(_fb_dns((), "dns_nxdomain_error", public=[LAB_FB]), [tcp(LAB_FB)], _lab_tls()),
     _web(_fb_dns((), "dns_nxdomain_error", public=[LAB_FB]), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", body="x")]),
     ("blocked", "dns", "nxdomain"), ("blocked", "dns", "nxdomain")),
    ("bogon", (True, True),
     _web(_fb_dns(["127.0.0.2"]), [tcp("127.0.0.2", "connection_refused")]),
     _web(_fb_dns(["127.0.0.2"]), [tcp("127.0.0.2", "connection_refused", port=80)], [],
          [http("http://www.facebook.lab/", status=None, failure="connection_refused")]),
     ("blocked", "dns", "bogon"), ("blocked", "dns", "bogon")),
    ("dns_injection", (True, True),
     _web(_fb_dns(["10.10.34.36"]), [tcp("10.10.34.36", TO)], [], [], [FORGED]),
     _web(_fb_dns(["10.10.34.36"]), [tcp("10.10.34.36", port=80)], [], [http("http://www.facebook.lab/", status=403, body=IRAN_BODY)], [FORGED]),
     ("blocked", "dns", "injected"), ("blocked", "dns", "injected")),
    ("ip_blackhole", (True, True),
     _web(_fb_dns(), [tcp(LAB_FB, TO, attempt=a) for a in (1, 2)]),
     _web(_fb_dns(), [tcp(LAB_FB, TO, port=80, attempt=a) for a in (1, 2)], [],
          [http("http://www.facebook.lab/", status=None, failure=TO, attempt=a) for a in (1, 2)]),
     ("inconclusive", "tcp", "ip_blackhole"), ("inconclusive", "tcp", "ip_blackhole")),
    ("tcp_rst", (True, True),
     _web(_fb_dns(), [tcp(LAB_FB)], _lab_tls("connection_reset", "connection_reset")),
     _web(_fb_dns(), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", status=None, failure="connection_reset", attempt=a)
                                                  for a in (1, 2)]),
     ("inconclusive", "tcp", "rst"), ("inconclusive", "tcp", "rst")),
    ("sni_rst", (True, True), _web(_fb_dns(), [tcp(LAB_FB)], _lab_tls("connection_reset", "ok")), OKHTTP,
     ("blocked", "tls", "sni_rst"), ("ok",)),
    ("sni_drop", (True, True), _web(_fb_dns(), [tcp(LAB_FB)], _lab_tls(TO, "ok")), OKHTTP,
     ("blocked", "tls", "sni_timeout"), ("ok",)),
    ("http_host_rst", (True, True), OKWEB,
     _web(_fb_dns(), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", status=None, failure="connection_reset", attempt=a)
                                                  for a in (1, 2)]),
     ("ok",), ("inconclusive", "http", "http_rst")),
    ("http_blockpage_ir", (True, True), OKWEB,
     _web(_fb_dns(), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", status=403, body=IRAN_BODY)]),
     ("ok",), ("blocked", "http", "blockpage")),
    # over HTTPS the small body comes with the headers (ttfb ~ whole fetch) but the handshake is shaped;
    # over HTTP the body trickles after the first byte
    ("throttling", (True, True),
     _web(_fb_dns(), [TCPAttempt(1, LAB_FB, 443, 0, 2.0, None)], [_tls_ms(t, 140.0) for t in _lab_tls()],
          [_ttfb(http("https://www.facebook.lab/", **{**SLOW, "tput": 5e7}), 649.0)]),
     _web(_fb_dns(), [TCPAttempt(1, LAB_FB, 80, 0, 2.0, None)], [], [_ttfb(http("http://www.facebook.lab/", **SLOW), 20.0)]),
     ("inconclusive", "http", "throttled"), ("inconclusive", "http", "throttled")),
    ("a slow server is not throttling (the wait is before the first byte, handshakes normal)", (True, True),
     _web(_fb_dns(), [TCPAttempt(1, LAB_FB, 443, 0, 2.0, None)], [_tls_ms(t, 4.0) for t in _lab_tls()],
          [_ttfb(http("https://www.facebook.lab/", **{**SLOW, "tput": 5e7}), 640.0)]),
     _web(_fb_dns(), [TCPAttempt(1, LAB_FB, 80, 0, 2.0, None)], [], [_ttfb(http("http://www.facebook.lab/", **SLOW), 645.0)]),
     ("ok",), ("ok",)),
    ("site_down", (True, True),
     _web(_fb_dns(), [tcp(LAB_FB, "connection_refused", attempt=a) for a in (1, 2)]),
     _web(_fb_dns(), [tcp(LAB_FB, "connection_refused", port=80, attempt=a) for a in (1, 2)], [],
          [http("http://www.facebook.lab/", status=None, failure="connection_refused")]),
     ("inconclusive", "tcp", "refused"), ("inconclusive", "tcp", "refused")),
    ("name_gone", (True, True),
     _web(_fb_dns((), "dns_nxdomain_error")), _web(_fb_dns((), "dns_nxdomain_error")), ("down", "dns"), ("down", "dns")),
    ("vantage_outage", (False, False), _web(_fb_dns((), TO)), _web(_fb_dns((), TO)), ("outage",), ("outage",)),
    ("international_shutdown", (False, True),
     _web(_fb_dns(pub_failure=TO, public=()), [tcp(LAB_FB, TO)]),
     _web(_fb_dns(pub_failure=TO, public=()), [tcp(LAB_FB, TO, port=80)]),
     ("outage", None, "international_shutdown"), ("outage", None, "international_shutdown")),
    ("glitch_retry", (True, True),
     _web(_fb_dns(), [tcp(LAB_FB)], [tls(LAB_FB, "connection_reset", sni="www.facebook.lab", attempt=1),
                                     tls(LAB_FB, sni="www.facebook.lab", attempt=2)], [http("https://www.facebook.lab/", body="x")]),
     OKHTTP, ("flaky",), ("ok",)),
]


@pytest.mark.parametrize("row", LAB, ids=[r[0] for r in LAB])
def test_lab_scenarios_as_recorded(row):
    name, (int_ok, dom_ok), web, http_, exp_web, exp_http = row
    canaries = [_lab_canary("canary-int", "198.18.9.10", "international", int_ok),
                _lab_canary("canary-dom", "10.10.35.10", "domestic", dom_ok)]
    dc = steps([], [tcp("198.18.3.50", None if (int_ok or name == "resolver_down") else TO, port=p) for p in (443, 80)])
    ctx = run_context(canaries + [(LAB_WEB, web), (LAB_HTTP, http_), (LAB_DC, dc)])
    for tgt, stp, exp in ((LAB_WEB, web, exp_web), (LAB_HTTP, http_, exp_http)):
        v = classify(tgt, stp, ctx)
        got = (v.status, v.layer, v.method)[:len(exp)]
        assert got == exp, (tgt.name, v.rule, v.reason)
    for t, s in canaries:  # canaries are judged too: ok, or an outage, never blocked
        assert classify(t, s, ctx).status in ("ok", "outage")


def test_lab_resolver_down():
    canaries = [_lab_canary("canary-int", "198.18.9.10", "international", False),
                _lab_canary("canary-dom", "10.10.35.10", "domestic", False)]
    dc = steps([], [tcp("198.18.3.50", port=p) for p in (443, 80)])
    web = _web(_fb_dns((), "connection_refused"))
    ctx = run_context(canaries + [(LAB_WEB, web), (LAB_DC, dc)])
    assert classify(LAB_WEB, web, ctx).status == "outage"
    assert classify(LAB_DC, dc, ctx).rule == "ok.tcp_endpoint"


def _att(cls, failures, **kw):
    """Attempts 1..n of one step, one per failure (None: success)."""
    return [cls(attempt=i, failure=f, **kw) for i, f in enumerate(failures, 1)]


def _lab_dns(name, ip, failures=(None,), resolvers=("system", LAB_PUB)):
    return [a for r in resolvers for a in _att(DNSAttempt, failures, query=name, qtype="A", resolver=r, resolver_address=None,
                                               transport="udp", t0=0.0, duration_ms=5.0, rcode="NOERROR",
                                               answers=[ip] if failures[-1] is None else [])]


def test_lab_throttling_as_measured():
    """The lab's `throttling` run as the probe recorded it (tc htb 128 kbit/s on facebook's address, 2 cores
    busy): connect times of the first targets inflated by load, the https page in one TLS record."""
    def site(t, ip, port, tcp_ms, tls_ms, ms, ttfb, tput):
        https = port == 443
        tls_ = [_tls_ms(tls(ip, sni=t.tls_name), tls_ms)] if https else []
        url = t.urls[0]
        return t, steps(_lab_dns(t.dns_names[0], ip), [TCPAttempt(1, ip, port, 0.0, tcp_ms, None)], tls_,
                        [_ttfb(http(url, body="<html>x</html>", blen=16384, tput=tput, ms=ms), ttfb)])

    c_int = target(platform="canary", name="canary-int", kind="canary", urls=("https://canary-int.lab/",),
                   dns_names=("canary-int.lab",), tls_name="canary-int.lab", scope="international")
    c_dom = target(platform="canary", name="canary-dom", kind="canary", urls=("https://canary-dom.lab/",),
                   dns_names=("canary-dom.lab",), tls_name="canary-dom.lab", scope="domestic")
    tw = target(platform="twitter", name="twitter-web", urls=("https://twitter.lab/",), dns_names=("twitter.lab",),
                tls_name="twitter.lab")
    run = [site(c_int, "198.18.9.1", 443, 5.7, 52.0, 107.7, 99.3, 2.0e6),
           site(c_dom, "10.10.35.10", 443, 1.6, 4.9, 42.0, 37.9, 4.0e6),
           site(LAB_WEB, "198.18.1.1", 443, 46.8, 73.9, 2381.9, 2378.8, 5.5e6),
           site(LAB_HTTP, "198.18.1.1", 80, 43.5, 0.0, 880.9, 124.7, 21668.0),
           site(tw, "198.18.2.1", 443, 41.0, 56.2, 122.3, 105.4, 970000.0)]
    ctx = run_context(run)
    # our helper fetched facebook's page from outside in 40 ms: the slowness is the path's
    fast = ControlMeasurement(http_status=200, http_body_length=16384, http_duration_ms=40.0)
    got = {t.name: classify(t, s, ctx, control=fast if t.platform == "facebook" else None) for t, s in run}
    assert (got["facebook-web"].status, got["facebook-web"].method) == ("blocked", "throttled"), got["facebook-web"].reason
    assert (got["facebook-http"].status, got["facebook-http"].method) == ("blocked", "throttled"), got["facebook-http"].reason
    assert all(got[n].status == "ok" for n in ("twitter-web", "canary-int", "canary-dom"))
    # the https page alone (no http:// sibling trickling at the same address, handshake unshaped): a slow
    # server cannot be ruled out
    alone = run_context([r for r in run if r[0] is not LAB_HTTP])
    assert classify(LAB_WEB, run[2][1], alone, control=fast).status == "ok"
    # the same run on a lossy path: nothing is throttled
    lossy = run_context(run, loss_events=5, loss_measurements=3)
    assert classify(LAB_HTTP, run[3][1], lossy, control=fast).status == "ok"
    # without the outside timing the same slow fetches accuse nobody (a server that trickles its own body)
    assert {classify(t, s, ctx).rule for t, s in run[2:4]} == {"inconclusive.needs_control"}
    # and a server as slow from outside is not throttled
    slow = ControlMeasurement(http_status=200, http_body_length=16384, http_duration_ms=2000.0)
    assert classify(LAB_WEB, run[2][1], ctx, control=slow).status == "ok"


def test_lab_flaky_loss_as_measured():
    """The lab's `flaky_loss` (30 % random loss both ways, --retries 3), patterns seen in real runs: the
    canaries need retries too; facebook-web's TLS timed out 4 times while the single harmless-SNI handshake
    got through; facebook-http's GET timed out 4 times after TCP connected; a DC's connects all timed out;
    a name timed out on both resolvers. Never blocked, never inconclusive: flaky (or ok)."""
    c_int = target(platform="canary", name="canary-int", kind="canary", urls=("https://canary-int.lab/",),
                   dns_names=("canary-int.lab",), tls_name="canary-int.lab", scope="international")
    c_dom = target(platform="canary", name="canary-dom", kind="canary", urls=("https://canary-dom.lab/",),
                   dns_names=("canary-dom.lab",), tls_name="canary-dom.lab", scope="domestic")
    tw = target(platform="twitter", name="twitter-web", urls=("https://twitter.lab/",), dns_names=("twitter.lab",),
                tls_name="twitter.lab")

    def canary(t, ip):
        return t, steps(_lab_dns(t.dns_names[0], ip, (TO, None)), _att(TCPAttempt, (TO, None), ip=ip, port=443, t0=0.0,
                                                                       duration_ms=1000.0),
                        [tls(ip, sni=t.tls_name)], [http(t.urls[0], body="<html>c</html>", blen=16384, ms=1200.0)])

    fb_ip = "198.18.1.1"
    web = steps(_lab_dns("www.facebook.lab", fb_ip, (TO, TO, None)), [TCPAttempt(1, fb_ip, 443, 0.0, 1.0, None)],
                [tls(fb_ip, TO, sni="www.facebook.lab", attempt=a) for a in (1, 2, 3, 4)]
                + [tls(fb_ip, sni=LAB_CTL_SNI, control=True)],
                [http("https://www.facebook.lab/", body="<html>fb</html>", blen=16384, ms=1500.0)])
    web_unreached = steps(web.dns, web.tcp, web.tls, [])
    http_ = steps(_lab_dns("www.facebook.lab", fb_ip), [TCPAttempt(1, fb_ip, 80, 0.0, 1004.0, None)], [],
                  [http("http://www.facebook.lab/", status=None, failure=TO, attempt=a) for a in (1, 2, 3, 4)])
    dc = steps([], _att(TCPAttempt, (TO, TO, TO, TO), ip="198.18.3.50", port=443, t0=0.0, duration_ms=2000.0)
               + _att(TCPAttempt, (TO, TO, TO, TO), ip="198.18.3.50", port=80, t0=0.0, duration_ms=2000.0))
    twitter = steps(_lab_dns("twitter.lab", "198.18.2.1", (TO, TO, TO, TO)))
    run = [canary(c_int, "198.18.9.1"), canary(c_dom, "10.10.35.10"), (LAB_WEB, web), (LAB_HTTP, http_),
           (LAB_DC, dc), (tw, twitter)]
    ctx = run_context(run)
    assert ctx.lossy and not ctx.health.spotless and ctx.health.timeout_attempts == 6
    for t, s in run + [(LAB_WEB, web_unreached)]:
        v = classify(t, s, ctx)
        assert v.status in ("ok", "flaky"), (t.name, v.rule, v.reason)
    assert classify(LAB_WEB, web, ctx).rule == "flaky.lossy_path"
    # the same target records in a clean run (no loss anywhere else) are judged as before
    clean = run_context([(c_int, _lab_canary("canary-int", "198.18.9.1", "international")[1]),
                         (c_dom, _lab_canary("canary-dom", "10.10.35.10", "domestic")[1]), (LAB_WEB, web_unreached),
                         (LAB_HTTP, http_)])
    assert not clean.lossy
    assert classify(LAB_WEB, web_unreached, clean).rule == "tls.sni_timeout"
    assert classify(LAB_HTTP, http_, clean).rule == "inconclusive.needs_control"  # a slowloris server looks the same
    assert classify(LAB_HTTP, http_, clean, control=ControlMeasurement(http_status=200)).rule == "http.timeout"


def test_run_context_path_loss_and_throttling_reference():
    lossy_canary = steps([dns(failure=TO, q="canary.example", attempt=1), dns(["93.184.216.34"], q="canary.example", attempt=2)],
                         [TCPAttempt(1, "93.184.216.34", 443, 0.0, 5.0, None)], [tls("93.184.216.34", sni="canary.example")],
                         [http("https://canary.example/", body="x", blen=16384, ms=110.0)])
    retried = steps([dns([FB_IP])], [tcp(failure=TO, attempt=1), tcp(attempt=2)], [tls()], [http()])
    once = steps([dns([FB_IP])], [tcp(failure="connection_reset", attempt=1), tcp(attempt=2)], [tls()], [http()])
    ctx = run_context([(CANARY, lossy_canary), (target(), retried), (HTTP_T, once)])
    assert (ctx.loss_events, ctx.loss_measurements, ctx.lossy) == (2, 2, True)  # a reset that cleared is no loss
    assert (ctx.health.timeout_attempts, ctx.health.loss_events, ctx.health.spotless) == (1, 1, False)
    # the slowest canary's transfer rate: 110 ms less 5 round trips at 5 ms
    assert ctx.canary_transfer_bps == pytest.approx(16384 / 0.085)
    assert ctx.canary_fetch_bps == pytest.approx(16384 / 0.110)
    # one target's own retries are that target's business
    ctx = run_context([(CANARY, canary_run(110.0)), (target(), retried)])
    assert (ctx.loss_events, ctx.loss_measurements, ctx.lossy, ctx.health.spotless) == (1, 1, False, True)
    # a canary's latency takes off at most half its time (one slow handshake cannot make the reference fast)
    ctx = run_context([(CANARY, canary_run(110.0, tcp_ms=100.0))])
    assert ctx.canary_transfer_bps == pytest.approx(16384 / 0.055)
    # trickle addresses: an http body that kept trickling >= 0.5 s at >= 5x below the canaries' rate
    ctx = run_context([(CANARY, canary_run(110.0)), (HTTP_T, HTTP_TRICKLE)])
    assert ctx.trickle_addresses == frozenset({FB_IP})
    ctx = run_context([(CANARY, canary_run(1100.0)), (HTTP_T, HTTP_TRICKLE)])
    assert ctx.trickle_addresses == frozenset()
