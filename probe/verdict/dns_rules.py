"""DNS rules: injected, blockpage and special-purpose answers, resolvers that disagree or fall silent."""

from __future__ import annotations

from probe import netfacts
from probe.records import InjectAttempt
from probe.verdict.evidence import Evidence
from probe.verdict.finding import Finding, finding
from probe.verdict.rules import RULES

# A resolver's "no" for a name (NXDOMAIN, or no address), by what the other resolvers and the control say:
# they answer (blocked), they say no too (the name is gone), nobody else was asked (cannot tell).
_REFUSED_NAME = {"nxdomain": RULES["dns.nxdomain"], "no_answer": RULES["dns.no_answer"]}
_GONE_NAME = {"nxdomain": RULES["down.nxdomain"], "no_answer": RULES["down.no_answer"]}
_LONE_NO = {
    "nxdomain": RULES["inconclusive.nxdomain_single_resolver"],
    "no_answer": RULES["inconclusive.no_answer_single_resolver"],
}
# A resolver that fails (SERVFAIL, silence) for the target only, while another answers; or with nothing to compare.
_FAILS_FOR_TARGET = {"servfail": RULES["dns.servfail"], "timeout": RULES["dns.timeout"]}
_LONE_FAILURE = {"servfail": RULES["inconclusive.dns_servfail"], "timeout": RULES["inconclusive.dns_timeout"]}


def dns_findings(ev: Evidence) -> list[Finding]:
    out: list[Finding] = []
    ctx = ev.ctx
    # dns.injected: the raw-query check saw several different answers, or an answer from a wrong source
    for ia in ev.s.inject:
        why = injection_evidence(ia)
        if why:
            out.append(
                finding(RULES["dns.injected"], 0.995, f"on-path DNS injection for {ia.query} via {ia.resolver}: {why}")
            )
    # dns.blockpage_ip: an answer is a known blockpage address
    for ip, (v, m) in ev.blockpage_ips.items():
        if netfacts.is_sinkhole(ip):  # 0.0.0.0 / 127.0.0.1 are listed by some fingerprint sets: a sinkhole
            out.append(
                finding(
                    RULES["dns.bogon"],
                    0.97,
                    f"{v.resolver} answered {v.name} with {ip}, a sinkhole address known as a DNS "
                    f"blocking answer ({m['name']})",
                    grade="strong",
                )
            )
            continue
        out.append(
            finding(
                RULES["dns.blockpage_ip"],
                0.99,
                f"{v.resolver} answered {v.name} with {ip}, a known blockpage address ({m['name']})",
            )
        )
    # dns.bogon: a special-purpose answer that another resolver / the control contradicts, or a sinkhole
    for ip, v in ev.bogon_ips.items():
        other = [a for a in ev.other_clean_addrs(v.name, v.resolver) if a != ip]
        ctl_same = ev.control is not None and ev.control.speaks_for(v.name) and ip in ev.control.dns_ips()
        agreed = any(ip in o.addrs for o in ev.others(v.name, v.resolver)) or ctl_same
        label = netfacts.special_purpose(ip)
        if ctl_same:
            continue  # the control, outside, gets the same special-purpose answer: the site's own record
        if netfacts.is_sinkhole(ip):
            # 0.0.0.0/8, 127/8, ::, ::1 are never a public server, even when every resolver says so
            # (a censor intercepting all DNS); published exceptions are in netfacts.LEGIT_SPECIAL_ANSWERS.
            out.append(
                finding(
                    RULES["dns.bogon"],
                    0.95,
                    f"{v.resolver} answered {v.name} with {ip} ({label}), a sinkhole address"
                    + (f"; another resolver/control answered {', '.join(sorted(set(other))[:3])}" if other else ""),
                    grade="strong",
                )
            )
            continue
        if agreed and not other:
            continue  # every resolver gives this private address: split horizon, not tampering
        if other:
            out.append(
                finding(
                    RULES["dns.bogon"],
                    0.95,
                    f"{v.resolver} answered {v.name} with {ip} ({label}) while another resolver/control "
                    f"answered {', '.join(sorted(set(other))[:3])}",
                    grade="strong",
                )
            )
        else:
            out.append(
                finding(
                    RULES["dns.bogon"],
                    0.8,
                    f"{v.resolver} answered {v.name} with {ip} ({label}), not a public server address",
                    grade="good",
                    confirmed=False,
                )
            )
    # per-name outcomes that are not addresses
    names = sorted({n for (n, _) in ev.views})
    for name in names:
        views = [v for (n, _), v in ev.views.items() if n == name]
        for v in views:
            st = v.status
            if st in ("addrs", "other"):
                continue
            clean_other = ev.other_clean_addrs(name, v.resolver)
            others_nx = [o for o in ev.others(name, v.resolver) if o.status in ("nxdomain", "no_answer")]
            ctl_nx = ev.control is not None and ev.control.speaks_for(name) and ev.control.dns_says_nx()
            authentic_other = [
                ip for ip in clean_other if ip in ev.tls_valid_ips or netfacts.in_prefixes(ip, ev.expected)
            ]
            if st in ("nxdomain", "no_answer"):
                if clean_other:
                    conf = 0.9 if authentic_other else 0.85
                    src = (
                        "the control"
                        if ev.control is not None and not [o for o in ev.others(name, v.resolver) if o.addrs]
                        else "another resolver"
                    )
                    out.append(
                        finding(
                            _REFUSED_NAME[st],
                            conf,
                            f"{v.resolver} said {st.upper() if st == 'nxdomain' else 'no answer'} for {name} "
                            f"while {src} answered {', '.join(sorted(set(clean_other))[:3])}"
                            + (" (authenticated)" if authentic_other else ""),
                        )
                    )
                elif (
                    st == "nxdomain"
                    and not ctl_nx
                    and name in ctx.known_existing_names
                    and any(o.addrs for (n2, r2), o in ev.views.items() if n2 != name and r2 == v.resolver)
                ):
                    # The same resolver answers the target's other names and refuses listed ones: a resolver that
                    # picks names. One refused name is also what a name the platform retired under a stale list
                    # looks like (test lists keep retired endpoints: OONI's Signal list has uptime.signal.org), so
                    # it takes an outside view of that very name; several refused at once (Iran, Signal, 2021:
                    # every *.signal.org name, while whispersystems.org resolved) is not how platforms retire names.
                    refused = sorted(
                        n2
                        for (n2, r2), o in ev.views.items()
                        if r2 == v.resolver and o.status == "nxdomain" and n2 in ctx.known_existing_names
                    )
                    if len(refused) >= 2:
                        out.append(
                            finding(
                                RULES["dns.nxdomain"],
                                0.65,
                                f"{v.resolver} said NXDOMAIN for {len(refused)} names the targets file lists "
                                f"({', '.join(refused[:4])}), while it answered the target's other names",
                            )
                        )
                    else:
                        out.append(
                            finding(
                                RULES["inconclusive.nxdomain_one_name"],
                                0.3,
                                f"{v.resolver} said NXDOMAIN for {name}, a name the targets file lists, while it "
                                "answered the target's other names; no outside view of this name: a resolver that "
                                "picks names and a name the site retired look the same",
                            )
                        )
                elif st == "nxdomain" and not ctl_nx and name in ctx.known_existing_names:
                    # Every resolver asked says the name does not exist, but the targets file lists it: a censor
                    # intercepting all port-53 traffic (Iran) looks exactly like a name that is gone. Only the
                    # outside control (or an encrypted resolver the interceptor cannot rewrite) can tell.
                    asked = ", ".join(sorted({v.resolver} | {o.resolver for o in others_nx}))
                    out.append(
                        finding(
                            RULES["inconclusive.nxdomain_everywhere"],
                            0.3,
                            f"NXDOMAIN for {name} from every resolver asked ({asked}), a name the targets file "
                            "lists; without the outside control a censor answering for every resolver and a "
                            "name that is gone look the same",
                        )
                    )
                elif others_nx or ctl_nx:
                    who = ", ".join(sorted({o.resolver for o in others_nx} | ({"the control"} if ctl_nx else set())))
                    out.append(
                        finding(
                            _GONE_NAME[st],
                            0.85,
                            f"{name}: {st} from {v.resolver} and from {who}: the name does not resolve anywhere",
                        )
                    )
                else:
                    out.append(
                        finding(
                            _LONE_NO[st],
                            0.2,
                            f"{v.resolver} said {st} for {name} and no other resolver or control was asked: "
                            "censorship and a name that no longer exists look the same",
                        )
                    )
            elif st in ("servfail", "timeout"):
                if v.resolver in ctx.health.failing_resolvers:
                    out.append(
                        finding(RULES["outage.resolver"], 0.8, f"resolver {v.resolver} also failed every canary ({st})")
                    )
                elif clean_other and (v.resolver in ctx.health.answering_resolvers):
                    # A timeout is never more than elimination (random loss produces it too).
                    ctl_resolved = ev.control is not None and ev.control.speaks_for(name) and bool(ev.control.dns_ips())
                    out.append(
                        finding(
                            _FAILS_FOR_TARGET[st],
                            0.6 if st == "servfail" or ctl_resolved else 0.5,
                            f"{v.resolver} gave {st} for {name} while it answered the canaries and another "
                            f"resolver answered {', '.join(sorted(set(clean_other))[:3])}"
                            + ("; the control resolved it too" if ctl_resolved and st == "timeout" else ""),
                            grade=None if st == "servfail" else ("good" if ctl_resolved else "weak"),
                            timeout_only=st == "timeout",
                        )
                    )
                else:
                    out.append(
                        finding(
                            _LONE_FAILURE[st],
                            0.2,
                            f"{v.resolver} gave {st} for {name}; nothing shows whether the resolver or the name is at fault",
                            timeout_only=st == "timeout",
                        )
                    )
    # dns.unexpected_answer: outside the platform's prefixes, contradicted, and not authenticated by TLS
    if ev.expected:
        for v in ev.views.values():
            if not v.addrs or any(ip in ev.flagged for ip in v.addrs):
                continue
            outside = [ip for ip in v.addrs if not netfacts.in_prefixes(ip, ev.expected)]
            if len(outside) != len(v.addrs) or any(ip in ev.tls_valid_ips for ip in outside):
                continue
            inside_other = [
                ip for ip in ev.other_clean_addrs(v.name, v.resolver) if netfacts.in_prefixes(ip, ev.expected)
            ]
            if inside_other:
                out.append(
                    finding(
                        RULES["dns.unexpected_answer"],
                        0.7,
                        f"{v.resolver} answered {v.name} with {', '.join(outside[:3])}, outside {ev.t.platform}'s "
                        f"prefixes, while another resolver/control answered {', '.join(inside_other[:3])}; "
                        "no valid certificate was obtained there",
                    )
                )
    return out


def injection_evidence(ia: InjectAttempt) -> str | None:
    """Why an injection-check record shows on-path injection, or None. Two or more responses with
    different answers/rcodes, or a response from an address other than the resolver asked."""
    if ia.skipped or not ia.responses:
        return None
    resolver_ip = _resolver_ip(ia.resolver)
    distinct: dict[tuple, dict] = {}
    wrong_src = []
    for r in ia.responses:
        key = (r.get("rcode"), tuple(sorted(r.get("answers") or [])))
        distinct.setdefault(key, r)
        src = str(r.get("src") or "")
        src_ip = _resolver_ip(src)
        if resolver_ip and src_ip and src_ip != resolver_ip:
            wrong_src.append(src)
    parts = []
    if len(distinct) >= 2:
        desc = "; ".join(
            f"{k[0]} {list(k[1])} from {v.get('src')} ttl={v.get('ttl')} after {v.get('delay_ms')}ms"
            for k, v in list(distinct.items())[:3]
        )
        parts.append(f"{len(distinct)} different responses ({desc})")
    if wrong_src:
        parts.append(f"response(s) from {', '.join(sorted(set(wrong_src)))} instead of {resolver_ip}")
    return " and ".join(parts) or None


def _resolver_ip(text: str) -> str | None:
    t = text.strip()
    if t.startswith("["):
        t = t[1:].split("]", 1)[0]
    elif t.count(":") == 1:
        t = t.split(":", 1)[0]
    a = netfacts.parse_ip(t)
    return a.compressed if a is not None else None
