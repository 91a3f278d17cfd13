"""Verdict engine: one table row per rule (step records in, verdict out), plus properties.

Rows are built from the same step records the runner produces; the expected verdict is the exact
(status, layer, method, rule, confirmed). A hypothesis property checks that with every canary failing
no combination of steps is ever called ``blocked``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probe.fingerprints import FingerprintDB
from probe.records import InjectAttempt, TCPAttempt
from probe.verdict import (
    RULES,
    CanaryHealth,
    ControlMeasurement,
    RunContext,
    canary_health,
    classify,
    injection_evidence,
    run_context,
    target_reached,
)
from tests.unit.verdict_builders import (
    ALL_FAILED,
    ALT,
    CANARIES_5MS,
    CANARIES_110MS,
    CANARIES_SLOW,
    CANARY,
    CF_CHALLENGE,
    CTX,
    DEGRADED,
    FB,
    FB_IP,
    FB_IP2,
    HEALTH,
    HTTP_T,
    HTTP_TRICKLE,
    HTTPS_SLOW,
    INTL_DOWN,
    IRAN_BODY,
    LOSSY,
    LOSSY_CLEAN_CANARIES,
    NO_CANARIES,
    OK_STEPS,
    RESOLVER_DOWN,
    SNI_TIMEOUTS,
    TG,
    TO,
    _hop,
    _rst,
    _titled,
    canary_run,
    dns,
    host_control,
    http,
    steps,
    target,
    tcp,
    timed,
    tls,
)

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
    # A target with two listed names, one refused while the resolver answers the other: the censor picking
    # names, or (its innocent twin) a name the site retired under a stale list. Only a view of that very
    # name from outside tells them apart; the control asked about the other name does not.
    ("inconclusive.nxdomain_one_name (one listed name refused, the other answered, no control)",
     target(dns_names=(FB, "facebook.com")),
     steps([dns(failure="dns_nxdomain_error"), dns([FB_IP], q="facebook.com")]),
     RunContext(health=HEALTH, known_existing_names=frozenset({FB, "facebook.com"})), None,
     ("inconclusive", "dns", "nxdomain", "inconclusive.nxdomain_one_name", False)),
    ("inconclusive.nxdomain_one_name (the control resolved the other name only)",
     target(dns_names=(FB, "facebook.com")),
     steps([dns(failure="dns_nxdomain_error"), dns([FB_IP], q="facebook.com")]),
     RunContext(health=HEALTH, known_existing_names=frozenset({FB, "facebook.com"})),
     ControlMeasurement(dns_addrs=[FB_IP], dns_name="facebook.com"),
     ("inconclusive", "dns", "nxdomain", "inconclusive.nxdomain_one_name", False)),
    ("dns.nxdomain (two listed names refused while the resolver answers the third: not a retired name)",
     target(dns_names=(FB, "m.facebook.com", "facebook.com")),
     steps([dns(failure="dns_nxdomain_error"), dns(failure="dns_nxdomain_error", q="m.facebook.com"),
            dns([FB_IP], q="facebook.com")]),
     RunContext(health=HEALTH, known_existing_names=frozenset({FB, "m.facebook.com", "facebook.com"})), None,
     ("blocked", "dns", "nxdomain", "dns.nxdomain", False)),
    ("dns.nxdomain (the control resolved this very name)",
     target(dns_names=(FB, "facebook.com")),
     steps([dns(failure="dns_nxdomain_error"), dns([FB_IP], q="facebook.com")]),
     RunContext(health=HEALTH, known_existing_names=frozenset({FB, "facebook.com"})),
     ControlMeasurement(dns_addrs=[FB_IP], dns_name=FB.upper() + "."),
     ("blocked", "dns", "nxdomain", "dns.nxdomain", False)),
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
