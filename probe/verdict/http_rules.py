"""HTTP rules: blockpages, redirects to a filter's portal, GETs reset or timing out after TCP connected,
Host filtering (the harmless-Host GET to the same address is answered)."""

from __future__ import annotations

from probe import netfacts
from probe.failures import (
    CERT_FAILURES,
    CONNECTION_RESET,
    GENERIC_TIMEOUT,
    RESET_OR_EOF,
    UNKNOWN_ERROR,
    UNKNOWN_FAILURE,
)
from probe.records import HTTPAttempt
from probe.verdict.controls import control_agrees
from probe.verdict.evidence import Evidence
from probe.verdict.finding import Finding, finding
from probe.verdict.reach import weak_only
from probe.verdict.rules import RULES
from probe.verdict.steps import forged_rst, host, http_response, is_ip, scheme
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
            differs = _differs_from_control(ev, a)
            out.append(
                finding(
                    RULES["http.blockpage_weak"],
                    0.7 if differs else 0.55,
                    f"{a.url}: only vague blocking words matched ({names})" + (f"; {differs}" if differs else ""),
                    grade="good" if differs else "weak",
                )
            )
        else:
            out.append(
                finding(
                    RULES["http.blockpage"],
                    0.97,
                    f"{a.url} answered a blockpage: fingerprint {names} in {', '.join(where)}",
                )
            )
    # A page unlike the one the control got for the same URL, with no fingerprint: a blockpage candidate.
    for a in ev.http_ok:
        differs = _differs_from_control(ev, a)
        if differs:
            out.append(finding(RULES["http.blockpage_diff"], 0.7, f"{a.url} answered a page {differs}"))
            break
    # A redirect from a public site to a special-purpose address (a filter's portal on the LAN).
    for a in ev.s.http:
        if not http_response(a) and not a.redirects:
            continue
        hops = [r.url for r in a.redirects] + [a.headers.get(k) for k in a.headers if k.lower() == "location"]
        hops += [a.final_url] if a.final_url and a.final_url != a.url else []
        for hop in hops:
            h = host(hop)
            if (
                h
                and is_ip(h)
                and netfacts.is_bogon(h)
                and not is_ip(host(a.url))
                and not netfacts.in_prefixes(h, ev.ctx.bogon_exempt)
                and not ev.ctx.health.special_answers_normal
            ):
                out.append(
                    finding(
                        RULES["http.redirect_bogon"],
                        0.75,
                        f"{a.url} redirected to {hop}, a {netfacts.special_purpose(h)} address: a filter's portal",
                    )
                )
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
        if (
            len(out) == before
            and ctl is not None
            and ctl.http_failed()
            and not (ctl.http_failure or "").startswith("dns_")
            and not fail.startswith("dns_")
        ):
            out.append(
                control_agrees(
                    Layer.HTTP,
                    None,
                    0.65,
                    f"GET {url} failed ({fail[:60]}) and the control's fetch failed too ({ctl.http_failure})",
                )
            )
    return out


# OONI's http-diff: bodies whose lengths are within this proportion of each other are "the same size".
_BODY_PROPORTION = 0.7


def _norm_title(t: str | None) -> str:
    return " ".join((t or "").split()).casefold()


def _differs_from_control(ev: Evidence, a: HTTPAttempt) -> str | None:
    """How an answer over plain HTTP differs from the control's fetch of the same URL, when it differs
    sharply: another title AND another size (or status). A validated HTTPS page is authentic, never a
    candidate; a site's own "access denied" page is what the control gets too."""
    ctl = ev.control
    if ctl is None or not ctl.http_ok() or scheme(a.final_url or a.url) == "https":
        return None
    if ev.t.urls and a.url != ev.t.urls[0]:
        return None  # the control fetched the target's first URL only
    ours, theirs = _norm_title(a.title), _norm_title(ctl.http_title)
    if not theirs or not ours or ours == theirs:  # no title of ours (a body not kept): nothing to compare
        return None
    size_differs = False
    if a.body_length is not None and ctl.http_body_length and ctl.http_body_length > 0:
        small, big = sorted((a.body_length, ctl.http_body_length))
        size_differs = big == 0 or small / big < _BODY_PROPORTION
    status_differs = ctl.http_status is not None and a.status is not None and ctl.http_status != a.status
    if not (size_differs or status_differs):
        return None
    https_title = {_norm_title(h.title) for h in ev.http_ok if scheme(h.final_url or h.url) == "https"}
    if ours in https_title:
        return None  # the authentic HTTPS page of the same target is this very page: the site's own
    same_https = " (and this target's own HTTPS page has the control's title)" if theirs in https_title else ""
    return (
        f"unlike the control's: title {a.title!r} against {ctl.http_title!r}, {a.body_length} B against "
        f"{ctl.http_body_length} B, HTTP {a.status} against {ctl.http_status}{same_https}"
    )


def http_failure_findings(
    ev: Evidence, url: str, atts: list[HTTPAttempt], fail: str, tls_hosts: set[str], out: list[Finding]
) -> None:
    """Why the fetch of ``url`` failed on every attempt. What a person would get decides: a valid handshake
    before it proves the hop authentic, not the page loaded. The outside control decides between the
    censored case and its innocent twin; without it, elimination is only ever ``weak``."""
    https = scheme(url) == "https"
    name = host(url)
    tcp_ok = bool(ev.tcp_ok_ips)
    ctl = ev.control
    hop = atts[-1].failed_url if all(a.failed_url for a in atts) else None
    if https and name in tls_hosts and name not in ev.tls_ok_hosts and not hop:
        return  # the handshake itself failed: the TLS rules decide
    if fail.startswith(UNKNOWN_FAILURE) or fail == UNKNOWN_ERROR:
        out.append(
            finding(
                RULES["inconclusive.probe_error"],
                0.1,
                f"GET {url} failed with an unclassified error ({fail[:80]}): a probe-side problem, "
                "not network evidence",
            )
        )
        return
    if (
        ctl is not None
        and ctl.http_failed()
        and not (ctl.http_failure or "").startswith("dns_")
        and fail not in CERT_FAILURES
    ):
        out.append(
            control_agrees(
                Layer.HTTP,
                None,
                0.7,
                f"GET {url} failed ({fail[:60]}) here and the control's fetch of it failed too "
                f"({ctl.http_failure}): the site's own failure",
            )
        )
        return
    ctl_ok = ctl is not None and ctl.http_ok()
    only_timeouts = all(a.failure == GENERIC_TIMEOUT for a in atts)
    if hop:
        if ctl_ok:
            out.append(
                finding(
                    RULES["http.redirect_hop"],
                    0.75,
                    f"{url} redirected to {hop}, which failed ({fail}) on every attempt, while the control "
                    "fetched the URL through its whole redirect chain",
                    grade="good",
                    timeout_only=only_timeouts,
                )
            )
        else:
            out.append(
                finding(
                    RULES["http.redirect_hop"],
                    0.45,
                    f"{url} redirected to {hop}, which failed ({fail}) on every attempt",
                    grade="weak",
                    timeout_only=only_timeouts,
                )
            )
        return
    status = atts[-1].status
    began = f" after the page began (HTTP {status})" if status else ""
    if fail in RESET_OR_EOF:
        cut = "reset" if fail == CONNECTION_RESET else "cut (EOF)"
        reset_ips = sorted(
            {ip for (n, _), v in ev.views.items() if n == name for ip in v.addrs} & ev.ctx.reset_addresses
        )
        hc = ev.host_controls.get(url)
        # A harmless-Host GET counts as answered only when it completed: a response that was then cut
        # (a server crashing mid-body does that to every Host) proves nothing about the Host.
        hc_answered = hc is not None and hc.failure is None and (hc.status or 0) > 0
        forged = forged_rst(atts)
        hc_reset = tcp_ok and not https and hc is not None and hc.failure in RESET_OR_EOF
        if tcp_ok and not https and hc is not None and hc_answered:
            out.append(
                finding(
                    RULES["http.host_rst"],
                    0.95,
                    f"GET {url} was {cut} on every attempt while the same address answered a GET with "
                    f"Host {hc.host_header} (HTTP {hc.status}) in full: the filter keys on the Host",
                )
            )
        elif not status and ((tcp_ok and reset_ips) or hc_reset):  # reset before any answer, whatever the Host
            why = (
                f"GET {url} was {cut}{began}, and in the same run {', '.join(reset_ips[:3])} reset TLS for any SNI too"
                if reset_ips
                else f"GET {url} was {cut}{began}, and so was a GET with the harmless Host {hc.host_header if hc else ''}"
            )
            out.append(address_reset(f"{why}: the address is reset, not the Host", atts, control_ok=ctl_ok))
        elif forged:
            out.append(
                finding(RULES["http.rst_injected"], 0.97, f"GET {url} was {cut}{began} on every attempt; {forged}")
            )
        elif ctl_ok:
            out.append(
                finding(
                    RULES["http.rst"],
                    0.75,
                    f"GET {url} was {cut}{began} on every attempt while the control fetched it",
                    grade="good",
                )
            )
        else:
            out.append(finding(RULES["http.rst"], 0.5, f"GET {url} was {cut}{began} on every attempt", grade="weak"))
    elif fail == GENERIC_TIMEOUT:
        thr = throttle(ev, atts)
        if thr is not None:
            out.append(thr)
        elif tcp_ok:
            out.append(
                finding(
                    RULES["http.timeout"],
                    0.7 if ctl_ok else 0.5,
                    f"GET {url} timed out{began} on every attempt after the connection succeeded"
                    + (" while the control fetched it" if ctl_ok else ""),
                    grade="good" if ctl_ok else "weak",
                    timeout_only=only_timeouts,
                )
            )
    elif fail in CERT_FAILURES:
        if name in tls_hosts:
            return
        ctl_tls = "missing"
        out.extend(cert_finding(ev, name, name, fail, ctl_tls))
