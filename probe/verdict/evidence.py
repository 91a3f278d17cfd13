"""One measurement's evidence, gathered once: DNS views per (name, resolver), flagged answers, attempts
grouped per address, what was reached. The rules (dns_rules, tcp_rules, ...) read it."""

from __future__ import annotations

from dataclasses import dataclass, field

from probe import netfacts
from probe.failures import DNS_EMPTY, DNS_NX, DNS_SERVER_FAILURES, GENERIC_TIMEOUT
from probe.fingerprints import FingerprintDB
from probe.records import HTTPAttempt, Steps
from probe.targets import Target
from probe.verdict.controls import ControlMeasurement, RunContext
from probe.verdict.reach import default_db, http_blockpage_matches
from probe.verdict.steps import ep, group, http_response, is_ip, retry_pattern, target_hosts


def fingerprints_of(ctx: RunContext) -> FingerprintDB:
    return ctx.fingerprints if ctx.fingerprints is not None else default_db()


@dataclass(slots=True)
class NameView:
    """One name as seen by one resolver (A and AAAA together, final attempts)."""

    name: str
    resolver: str
    addrs: list[str] = field(default_factory=list)
    finals: list[str | None] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.addrs:
            return "addrs"
        fails = [f for f in self.finals if f is not None]
        if any(f in DNS_NX for f in fails):
            return "nxdomain"
        if fails and all(f in DNS_SERVER_FAILURES for f in fails):
            return "servfail"
        if fails and all(f == GENERIC_TIMEOUT for f in fails):
            return "timeout"
        if all(f is None or f in DNS_EMPTY for f in self.finals):
            return "no_answer"
        if any(f in DNS_SERVER_FAILURES for f in fails):
            return "servfail"
        if any(f == GENERIC_TIMEOUT for f in fails):
            return "timeout"
        return "other"


class Evidence:
    def __init__(self, target: Target, steps: Steps, ctx: RunContext, control: ControlMeasurement | None):
        self.t = target
        self.s = steps
        self.ctx = ctx
        self.db = fingerprints_of(ctx)
        self.control = control if control is not None and not control.failed else None
        self.control_failed = control.failed if control is not None else None
        self.hosts = target_hosts(target, steps)
        self.expected = netfacts.expected_prefixes_for(target.platform, target.expected_prefixes)
        self.use_tls = not (target.kind == "endpoint" and not target.tls_name)
        self.host_controls: dict[str, HTTPAttempt] = {}  # url -> harmless-Host GET, set by classify

        # DNS: per (name, resolver)
        self.views: dict[tuple[str, str], NameView] = {}
        self.dns_flaky: list[str] = []
        for (q, qt, r), atts in group(steps.dns, lambda a: (a.query.lower().rstrip("."), a.qtype, a.resolver)).items():
            v = self.views.setdefault((q, r), NameView(q, r))
            for a in atts:
                for ans in a.answers:
                    if netfacts.parse_ip(ans) is not None and ans not in v.addrs:
                        v.addrs.append(ans)
            v.finals.append(atts[-1].failure)
            p = retry_pattern(atts)
            if p:
                self.dns_flaky.append(f"DNS {qt} {q} via {r}: {p}")
        # Flags per answered address
        self.blockpage_ips: dict[str, tuple[NameView, dict]] = {}
        self.bogon_ips: dict[str, NameView] = {}
        for v in self.views.values():
            for ip in v.addrs:
                m = self.db.match_dns_answer(ip)
                if m is not None:
                    self.blockpage_ips.setdefault(ip, (v, m))
                elif self._bogon(ip, v.name):
                    self.bogon_ips.setdefault(ip, v)
        self.flagged = set(self.blockpage_ips) | set(self.bogon_ips)

        self.tcp = group(steps.tcp, lambda a: (a.ip, a.port))
        self.tls = group([a for a in steps.tls if self.use_tls], lambda a: (a.ip, a.port, a.sni.lower(), a.control))
        self.http = group(steps.http, lambda a: a.url)
        self.flaky: list[str] = list(self.dns_flaky)
        for (ip, port), atts in self.tcp.items():
            p = retry_pattern(atts)
            if p:
                self.flaky.append(f"TCP {ep(ip, port)}: {p}")
        for (ip, port, sni, ctl), atts in self.tls.items():
            p = retry_pattern(atts)
            if p and not ctl:
                self.flaky.append(f"TLS {ep(ip, port)} SNI {sni}: {p}")
        for url, atts in self.http.items():
            p = retry_pattern(atts)
            if p:
                self.flaky.append(f"HTTP {url}: {p}")

        self.tls_valid = [a for a in steps.tls if a.failure is None and a.cert_valid and not a.control]
        self.tls_valid_ips = {a.ip for a in self.tls_valid}
        # Names whose own handshake completed at least once (valid or not): a later HTTP failure is the fetch's.
        self.tls_ok_hosts = {
            sni for (_, _, sni, c), atts in self.tls.items() if not c and any(a.failure is None for a in atts)
        }
        self.http_ok: list[HTTPAttempt] = []
        self.http_challenge: list[tuple[HTTPAttempt, str]] = []
        self.http_blockpages: list[tuple[HTTPAttempt, list[dict[str, str]]]] = []
        for a in steps.http:
            if not http_response(a):
                continue
            bp = http_blockpage_matches(a, self.db, self.hosts)
            if bp:
                # Even vague words only ("Website Blocked") keep the answer from counting as reached;
                # they are judged as weak evidence when nothing else answered.
                self.http_blockpages.append((a, bp))
                continue
            ch = self.db.challenge(a.body_head, a.headers)
            if ch:
                self.http_challenge.append((a, ch))
            self.http_ok.append(a)
        self.tcp_ok_ips = {ip for (ip, _), atts in self.tcp.items() if any(a.failure is None for a in atts)}

    # -- address classification --
    def _bogon(self, ip: str, name: str = "") -> bool:
        if netfacts.LEGIT_SPECIAL_ANSWERS.get(name.lower().rstrip(".")) == ip:
            return False
        addr = netfacts.parse_ip(ip)
        if addr is None or not netfacts.is_bogon(addr):
            return False
        if netfacts.in_prefixes(addr, self.ctx.bogon_exempt):
            return False
        if self.ctx.health.special_answers_normal and not netfacts.is_sinkhole(addr):
            return False
        return True

    def others(self, name: str, resolver: str) -> list[NameView]:
        return [v for (n, r), v in self.views.items() if n == name and r != resolver]

    def other_clean_addrs(self, name: str, resolver: str) -> list[str]:
        out = [ip for v in self.others(name, resolver) for ip in v.addrs if ip not in self.flagged]
        if self.control is not None and self.control.speaks_for(name):
            out += [ip for ip in self.control.dns_ips() if not self._bogon(ip, name)]
        return out

    @property
    def reached(self) -> bool:
        """Could a person load it here? When the URL was fetched, the fetch through its whole redirect chain
        decides (a valid certificate proves that hop is authentic, not that the page loads: a body cut after
        the handshake, a redirect into a blocked host). Only without any fetch does a valid handshake count."""
        if self.http:
            return bool(self.http_ok)
        return bool(self.tls_valid)

    def endpoint_reached(self) -> bool:
        """Reached at TCP level, when TCP is the only application check there is (Telegram DCs, OONI's
        Messenger test): a connection to a fixed endpoint or to an address inside the platform's
        prefixes. Never used when a TLS or HTTP step was attempted (those decide then)."""
        if self.tls or self.s.http:
            return False
        eps = {(e.host, e.port) for e in self.t.endpoints if is_ip(e.host)}
        return any(
            a.failure is None
            for k, atts in self.tcp.items()
            for a in atts
            if k[0] not in self.flagged and (k in eps or netfacts.in_prefixes(k[0], self.expected))
        )
