"""HTTP rules: blockpages, redirects to a filter's portal, GETs reset or timing out after TCP connected,
Host filtering (the harmless-Host GET to the same address is answered)."""

from __future__ import annotations

from probe import netfacts
from probe.failures import CERT_FAILURES, CONNECTION_RESET, GENERIC_TIMEOUT, RESET_OR_EOF, UNKNOWN_ERROR, UNKNOWN_FAILURE
from probe.records import HTTPAttempt
from probe.verdict.controls import control_agrees
from probe.verdict.evidence import Evidence
from probe.verdict.finding import Finding, finding
from probe.verdict.reach import weak_only
from probe.verdict.rules import RULES
from probe.verdict.steps import host, http_response, is_ip, scheme
from probe.verdict.tcp_rules import address_reset
from probe.verdict.throttle import throttle
from probe.verdict.tls_rules import cert_finding
from probe.vocab import Layer


def http_findings(ev: Evidence) -> list[Finding]:
    out: list[Finding] = []
    db = ev.db
    for a, matches in ev.http_blockpages:
        names = ", ".join(sorted({m["name"] for m in matches})[:3])
        where = sorted({m.get("location", "body") for m in matches})
        if weak_only(matches, db):
            out.append(finding(RULES["http.blockpage_weak"], 0.55,
                               f"{a.url}: only vague blocking words matched ({names})"))
        else:
            out.append(finding(RULES["http.blockpage"], 0.97,
                               f"{a.url} answered a blockpage: fingerprint {names} in {', '.join(where)}"))
    # A redirect from a public site to a special-purpose address (a filter's portal on the LAN).
    for a in ev.s.http:
        if not http_response(a) and not a.redirects:
            continue
        hops = [r.url for r in a.redirects] + [a.headers.get(k) for k in a.headers if k.lower() == "location"]
        hops += [a.final_url] if a.final_url and a.final_url != a.url else []
        for hop in hops:
            h = host(hop)
            if h and is_ip(h) and netfacts.is_bogon(h) and not is_ip(host(a.url)) \
                    and not netfacts.in_prefixes(h, ev.ctx.bogon_exempt) and not ev.ctx.health.special_answers_normal:
                out.append(finding(RULES["http.redirect_bogon"], 0.75,
                                   f"{a.url} redirected to {hop}, a {netfacts.special_purpose(h)} address: a filter's portal"))
                break
    # Failures of the GET itself (for https URLs the TLS records decide, when there are any).
    tls_hosts = {sni for (_, _, sni, c) in ev.tls if not c}
    for url, atts in ev.http.items():
        if any(http_response(a) for a in atts):
            continue
        fail = atts[-1].failure
        if fail is None:
            continue
        before = len(out)
        http_failure_findings(ev, url, atts, fail, tls_hosts, out)
        ctl = ev.control
        if len(out) == before and ctl is not None and ctl.http_failed() and not (ctl.http_failure or "").startswith("dns_") \
                and not fail.startswith("dns_"):
            out.append(control_agrees(Layer.HTTP, None, 0.65,
                                      f"GET {url} failed ({fail[:60]}) and the control's fetch failed too ({ctl.http_failure})"))
    return out


def http_failure_findings(ev: Evidence, url: str, atts: list[HTTPAttempt], fail: str, tls_hosts: set[str],
                          out: list[Finding]) -> None:
    https = scheme(url) == "https"
    name = host(url)
    tcp_ok = bool(ev.tcp_ok_ips)
    if fail in RESET_OR_EOF:
        if https and name in tls_hosts:
            return
        reset_ips = sorted({ip for (n, _), v in ev.views.items() if n == name for ip in v.addrs}
                           & ev.ctx.reset_addresses)
        hc = ev.host_controls.get(url)
        if tcp_ok and reset_ips:
            out.append(address_reset(f"GET {url} was reset, and in the same run {', '.join(reset_ips[:3])} reset TLS "
                                     "for any SNI too: the address is reset, not the Host"))
        elif tcp_ok and not https and hc is not None and hc.status is not None:
            out.append(finding(RULES["http.host_rst"], 0.95,
                               f"GET {url} was {'reset' if fail == CONNECTION_RESET else 'cut (EOF)'} on every attempt while "
                               f"the same address answered a GET with Host {hc.host_header} (HTTP {hc.status}): "
                               "the filter keys on the Host"))
        elif tcp_ok and not https and hc is not None and hc.failure in RESET_OR_EOF:
            out.append(address_reset(f"GET {url} was reset, and so was a GET with the harmless Host {hc.host_header}: "
                                     "the address is reset, not the Host"))
        elif tcp_ok and not https:
            out.append(finding(RULES["http.rst"], 0.75,
                               f"GET {url} was {'reset' if fail == CONNECTION_RESET else 'cut (EOF)'} on every attempt after "
                               "the TCP connection succeeded: Host-based filtering", grade="good"))
        elif ev.control is not None and ev.control.http_ok():
            out.append(finding(RULES["http.rst"], 0.7,
                               f"GET {url} failed ({fail}) while the control fetched it", grade="good"))
        else:
            out.append(finding(RULES["http.rst"], 0.5,
                               f"GET {url} failed ({fail}) on every attempt", grade="weak"))
    elif fail == GENERIC_TIMEOUT:
        if https and name in tls_hosts:
            return
        thr = throttle(ev, atts)
        if thr is not None:
            out.append(thr)
        elif tcp_ok and not https:
            out.append(finding(RULES["http.timeout"], 0.5,
                               f"GET {url} timed out on every attempt after the TCP connection succeeded",
                               timeout_only=all(a.failure == GENERIC_TIMEOUT for a in atts)))
    elif fail in CERT_FAILURES:
        if name in tls_hosts:
            return
        ctl_tls = "missing"
        out.extend(cert_finding(ev, name, name, fail, ctl_tls))
    elif fail.startswith(UNKNOWN_FAILURE) or fail == UNKNOWN_ERROR:
        out.append(finding(RULES["inconclusive.probe_error"], 0.1,
                           f"GET {url} failed with an unclassified error ({fail[:80]}): a probe-side problem, "
                           "not network evidence"))
