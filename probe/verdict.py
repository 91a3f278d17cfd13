"""Verdicts: pure functions from step records (+ run controls) to a Verdict. No I/O here.

Interface used by the runner (stable):

    health = canary_health(canary_measurements)          # from the canaries of the same run
    ctx = run_context([(target, steps), ...], fingerprints=db)   # or RunContext(health=health, ...)
    verdict = classify(target, steps, ctx)                # optional: control=ControlMeasurement(...)

Every verdict names the rule that produced it (``Verdict.rule``, a stable id documented in
``docs/verdicts.md``). The rules are evaluated as evidence *findings*, then one decision:

1. nothing measured                                  -> ``inconclusive.no_steps``
2. canaries of the run failed and the target was not cleanly reached
                                                     -> ``outage.*`` (never ``blocked``)
   the run's path is lossy (timeouts that cleared on retry, in several measurements) and the canaries
   did not go through cleanly: timeout-only findings are set aside (``flaky.lossy_path`` if nothing
   else decides)
3. a strong or controlled finding (fingerprint, injected answer, SNI reset with harmless-SNI
   success, resolver disagreement, ...)              -> ``blocked`` (even if reached another way)
4. the target was reached (valid TLS for the name, or an HTTP answer that is not a blockpage)
                                                     -> ``blocked/throttled``, ``flaky`` or ``ok``
5. the target is down (refused everywhere, NXDOMAIN everywhere, the control fails too)
                                                     -> ``down``
6. a finding by elimination only (bare timeouts, resets without a control), with healthy canaries
                                                     -> ``blocked`` (never confirmed)
7. only timeouts set aside on a lossy path           -> ``flaky.lossy_path``
8. otherwise                                         -> ``inconclusive.*`` with the reason

``confirmed`` is true only for a fingerprint match or an unambiguous signature: a known blockpage IP,
a DNS answer contradicted by another resolver with a special-purpose address, an injected DNS answer,
a TLS reset/EOF for the target's SNI while a harmless SNI to the same IP completes.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable
from urllib.parse import urlsplit

from probe import netfacts
from probe.fingerprints import WEAK_SCOPES, FingerprintDB
from probe.records import HTTPAttempt, InjectAttempt, Steps, Verdict
from probe.targets import Target

# --- OONI failure strings, grouped -------------------------------------------------------------
TIMEOUT = "generic_timeout_error"
RESET = "connection_reset"
REFUSED = "connection_refused"
EOF = "eof_error"
NXDOMAIN = "dns_nxdomain_error"
NO_ANSWER = "dns_no_answer"
DNS_NO_DATA = frozenset({NO_ANSWER, "dns_no_data"})
# Not network evidence: Android's resolver cache (EAI_NODATA from the device), a probe bug.
DNS_SERVFAIL = frozenset({"dns_servfail_error", "dns_refused_error", "dns_server_failure"})
DNS_NX = frozenset({NXDOMAIN, "dns_name_error"})  # dns_name_error: OONI's pre-2020 spelling
UNREACHABLE = frozenset({"network_unreachable", "host_unreachable"})
CERT_FAILURES = frozenset({"ssl_invalid_hostname", "ssl_unknown_authority", "ssl_invalid_certificate"})
# The HTTP exchange completed but the client refused to follow the answer (a site's own broken
# redirect): the server was reached.
REDIRECT_FAILURES = frozenset({"http_invalid_redirect_url", "http_too_many_redirects", "too_many_redirects"})

# Throttling. OONI's design notes call a 10x slowdown extreme throttling; that is a ratio of raw rates.
# Here the latency a fresh fetch needs (its round trips at the target's own connect time) is taken out
# of the target's time before comparing, and the reference is the SLOWEST canary's transfer rate, itself
# a lower bound (see run_context()): a 5x gap between those bounds is at least 5x in bandwidth.
THROTTLE_RATIO = 5.0
# Without those figures (canary_throughput_bps only: rates measured from the first body byte, latency
# included) the raw rates are compared at OONI's 10x.
THROTTLE_RATIO_RAW = 10.0
# Absolute slowness: a fetch shorter than this is never throttling, however many times slower than the
# canaries (40 ms against 5 ms is 8x, and nobody is throttled by 35 ms: scheduling, server time and a
# round trip or two are that size). Half a second is also longer than one lost segment's retransmission
# (Linux's minimum RTO is 200 ms), so a lone loss in the body does not make a trickle.
THROTTLE_MIN_SECONDS = 0.5
# Tiny bodies have no meaningful throughput (one round trip): the raw-rate comparison needs a body this big
# (or a body that took THROTTLE_MIN_SECONDS).
THROTTLE_MIN_BYTES = 64 * 1024
# A bandwidth-shaped link slows the certificate flight too; a busy server does not. A handshake this many
# times the canaries' (round trips allowed for) is shaped. Higher than THROTTLE_RATIO: handshakes are
# a few packets and jitter more.
THROTTLE_HANDSHAKE_RATIO = 10.0
# Round trips of a fresh fetch before the body: TCP (1), TLS (2, TLS 1.2's worst case; https only), the
# request (1); then TCP slow start from a 10-segment initial window (RFC 6928) adds a round trip per
# doubling of the bytes beyond the first window.
INIT_WINDOW_BYTES = 10 * 1460

# Path loss (a lossy vantage, not censorship): a step whose timeout did not reproduce (it timed out, and
# succeeded on another attempt) is a loss event. A run is lossy with at least this many such steps in at
# least this many different measurements (one target with retries is that target's business; the same in
# several targets, or in a canary, is the path).
LOSSY_MIN_EVENTS = 2
LOSSY_MIN_MEASUREMENTS = 2

_LAYER_ORDER = {"dns": 0, "tcp": 1, "tls": 2, "http": 3, None: 4}
_GRADE_ORDER = {"strong": 0, "good": 1, "weak": 2}


# --- the rule table (documented in docs/verdicts.md; tests check both agree) ----------------------
# id -> (status, layer, method, confirmed, meaning). "confirmed" is what the rule can set at most.
RULES: dict[str, tuple[str, str | None, str | None, bool, str]] = {
    "ok.tls_valid": ("ok", "tls", None, False, "valid certificate for the name: the authentic service"),
    "ok.http": ("ok", "http", None, False, "an HTTP answer with no blockpage fingerprint"),
    "ok.http_challenge": ("ok", "http", None, False, "a CDN challenge/captcha page: the site's own protection"),
    "ok.tcp_endpoint": ("ok", "tcp", None, False, "fixed endpoint / in-prefix address accepts TCP (no app check)"),
    "flaky.retry_succeeded": ("flaky", None, None, False, "a failed step succeeded on retry"),
    "flaky.intermittent": ("flaky", None, None, False, "a step failed after having succeeded"),
    "flaky.lossy_path": ("flaky", None, None, False,
                         "only timeouts, on a path that lost packets in the same run (retries needed elsewhere)"),
    "dns.injected": ("blocked", "dns", "injected", True, "several different DNS responses / wrong source"),
    "dns.blockpage_ip": ("blocked", "dns", "blockpage_ip", True, "answer is a fingerprinted blockpage address"),
    "dns.bogon": ("blocked", "dns", "bogon", True, "special-purpose answer contradicted by another resolver, or sinkhole"),
    "dns.nxdomain": ("blocked", "dns", "nxdomain", False, "NXDOMAIN while another resolver/control answers"),
    "dns.no_answer": ("blocked", "dns", "no_answer", False, "no address while another resolver/control answers"),
    "dns.servfail": ("blocked", "dns", "servfail", False, "SERVFAIL for the target only, another resolver answers"),
    "dns.timeout": ("blocked", "dns", "timeout", False, "resolver silent for the target only, another answers"),
    "dns.unexpected_answer": ("blocked", "dns", "unexpected_answer", False,
                              "answer outside the platform's prefixes, contradicted, no valid cert there"),
    "tcp.ip_blackhole": ("blocked", "tcp", "ip_blackhole", False, "every connection to every address times out"),
    "tcp.rst": ("blocked", "tcp", "rst", False, "connections reset, or refused here but not from the control"),
    "tcp.unreachable": ("blocked", "tcp", "unreachable", False, "ICMP unreachable here, control connects"),
    "tls.sni_rst": ("blocked", "tls", "sni_rst", True, "reset for the target SNI, harmless SNI completes"),
    "tls.sni_eof": ("blocked", "tls", "sni_eof", True, "EOF for the target SNI, harmless SNI completes"),
    "tls.sni_timeout": ("blocked", "tls", "sni_timeout", False, "timeout for the target SNI, harmless SNI completes"),
    "tls.rst": ("blocked", "tls", "rst", False, "TLS reset; control handshake fine (or weak, no control)"),
    "tls.timeout": ("blocked", "tls", "timeout", False, "TLS timeout; control handshake fine (or weak, no control)"),
    "tls.invalid_cert": ("blocked", "tls", "invalid_cert", False, "invalid certificate here, valid at the control"),
    "http.blockpage": ("blocked", "http", "blockpage", True, "blockpage fingerprint (body, header, redirect)"),
    "http.blockpage_weak": ("blocked", "http", "blockpage", False, "only vague blocking words matched"),
    "http.redirect_bogon": ("blocked", "http", "blockpage", False, "redirect to a private/special address"),
    "http.rst": ("blocked", "http", "http_rst", False, "GET reset/cut after TCP connected"),
    "http.host_rst": ("blocked", "http", "http_rst", True,
                      "GET reset/cut on every attempt, harmless-Host GET to the same address answered"),
    "http.timeout": ("blocked", "http", "http_timeout", False, "GET times out after TCP connected"),
    "http.throttled": ("blocked", "http", "throttled", False,
                       ">=5x slower transfer than the slowest canary, >=0.5 s, bandwidth-shaped"),
    "down.refused": ("down", "tcp", "refused", False, "every connection refused, canaries fine"),
    "down.nxdomain": ("down", "dns", "nxdomain", False, "every resolver and the control say NXDOMAIN"),
    "down.no_answer": ("down", "dns", "no_answer", False, "no resolver has an address for the name"),
    "down.nxdomain_rewritten": ("down", "dns", "nxdomain", False, "control NXDOMAIN; local resolver rewrites it"),
    "down.control_agrees": ("down", None, None, False, "the control fails the same way"),
    "outage.canaries": ("outage", None, "canaries_failed", False, "every canary failed in the same run"),
    "outage.international_shutdown": ("outage", None, "international_shutdown", False,
                                       "domestic canaries fine, international all failing"),
    "outage.resolver": ("outage", "dns", "resolver_down", False, "the system resolver failed the canaries too"),
    "inconclusive.no_steps": ("inconclusive", None, None, False, "nothing measured"),
    "inconclusive.nxdomain_single_resolver": ("inconclusive", "dns", "nxdomain", False,
                                              "NXDOMAIN from the only resolver asked"),
    "inconclusive.no_answer_single_resolver": ("inconclusive", "dns", "no_answer", False,
                                               "no address from the only resolver asked"),
    "inconclusive.dns_timeout": ("inconclusive", "dns", "timeout", False, "resolver timeout, nothing to compare"),
    "inconclusive.dns_servfail": ("inconclusive", "dns", "servfail", False, "SERVFAIL, nothing to compare"),
    "inconclusive.dns_only": ("inconclusive", "dns", None, False, "only DNS measured"),
    "inconclusive.tcp_unreachable": ("inconclusive", "tcp", "unreachable", False, "ICMP unreachable, no control"),
    "inconclusive.tcp_failure": ("inconclusive", "tcp", None, False, "unclassified connect failures"),
    "inconclusive.tls_any_sni": ("inconclusive", "tls", None, False, "TLS fails for the harmless SNI too"),
    "inconclusive.tls_invalid_cert": ("inconclusive", "tls", "invalid_cert", False, "invalid cert, no control"),
    "inconclusive.probe_error": ("inconclusive", "http", None, False, "probe-side error, not network evidence"),
    "inconclusive.no_controls": ("inconclusive", None, None, False, "weak evidence, no canaries and no control"),
    "inconclusive.degraded_vantage": ("inconclusive", None, None, False, "weak evidence, most canaries failing"),
    "inconclusive.canary_failed": ("inconclusive", None, None, False, "a canary failed on weak evidence"),
    "inconclusive.control_failed": ("inconclusive", None, None, False, "not reached; the control failed"),
    "inconclusive.unexplained": ("inconclusive", None, None, False, "not reached, no rule explains why"),
    "inconclusive.no_test_keys": ("inconclusive", None, None, False, "(OONI import) measurement without test keys"),
}


# --- controls ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CanaryHealth:
    """How the vantage itself fared in this run, from the canaries measured alongside the targets."""

    domestic_ok: int = 0
    domestic_total: int = 0
    international_ok: int = 0
    international_total: int = 0
    # Resolvers (DNSAttempt.resolver ids) that answered no canary query at all (timeouts, SERVFAIL,
    # refused) and resolvers that answered at least one.
    failing_resolvers: frozenset[str] = frozenset()
    answering_resolvers: frozenset[str] = frozenset()
    # A canary was reached (valid TLS / TCP) at a special-purpose address: this network serves real
    # sites from private space (a lab, a split-horizon network), so only sinkhole answers are bogons.
    special_answers_normal: bool = False
    # Every failed canary failed at DNS (no resolver gave it an address).
    dns_only_failures: bool = False
    # Path loss seen by the canaries: attempts that timed out (any step, retried or not), and steps whose
    # timeout did not reproduce (timed out, then succeeded). 0 / 0: the canaries never timed out.
    timeout_attempts: int = 0
    loss_events: int = 0

    @property
    def total(self) -> int:
        return self.domestic_total + self.international_total

    @property
    def ok(self) -> int:
        return self.domestic_ok + self.international_ok

    @property
    def known(self) -> bool:
        return self.total > 0

    @property
    def all_failed(self) -> bool:
        return self.total > 0 and self.ok == 0

    @property
    def international_shutdown(self) -> bool:
        return (self.domestic_total > 0 and self.domestic_ok > 0
                and self.international_total > 0 and self.international_ok == 0)

    @property
    def spotless(self) -> bool:
        """Canaries were measured, every one was reached, and none ever timed out (on any attempt)."""
        return self.total > 0 and self.ok == self.total and self.timeout_attempts == 0

    @property
    def degraded(self) -> bool:
        """More than half the canaries failed (but not all): weak evidence is not trusted."""
        return self.total > 0 and 0 < self.ok and self.ok * 2 < self.total


@dataclass(frozen=True, slots=True)
class RunContext:
    health: CanaryHealth = CanaryHealth()
    canary_throughput_bps: float | None = None
    fingerprints: FingerprintDB | None = None  # None: FingerprintDB.default() (Iran built-ins)
    # Names known to exist from an out-of-band source (a test specification, an earlier DoH run):
    # with a single resolver, NXDOMAIN for one of these is blocking rather than inconclusive.
    known_existing_names: frozenset[str] = frozenset()
    # Special-purpose ranges that are normal answers in this network (e.g. a lab's 10.0.0.0/8).
    bogon_exempt: tuple[netfacts.IPNetwork, ...] = ()
    throttle_ratio: float = THROTTLE_RATIO
    system_resolver: str = "system"
    # Whole-fetch goodput (body bytes / whole HTTP attempt time) of the SLOWEST canary fetch, and the
    # canaries' median TCP connect time: the throttling reference (see run_context()).
    canary_fetch_bps: float | None = None
    canary_rtt_ms: float | None = None
    canary_tls_ms: float | None = None  # canaries' median (non-control, successful) TLS handshake time
    # Addresses that, in this run, reset TLS for the target's SNI and for the harmless SNI alike (after
    # TCP connected): an HTTP reset to one of them is IP-level RST injection, not Host filtering.
    reset_addresses: frozenset[str] = frozenset()
    # The SLOWEST canary's transfer rate: body bytes / (whole fetch time minus its round trips at that
    # canary's own connect time; at most half the fetch time is taken off). The throttling reference.
    canary_transfer_bps: float | None = None
    # Addresses where, in this run, an HTTP body trickled in (>= THROTTLE_MIN_SECONDS after the first byte,
    # >= throttle_ratio below the canaries' transfer rate): bandwidth shaping of that address. It tells a slow
    # HTTPS fetch there (whose small body arrives in one TLS record) from a server that thinks long.
    trickle_addresses: frozenset[str] = frozenset()
    # Path loss in the run (see LOSSY_MIN_EVENTS): steps, over every measurement of the run, whose timeout
    # did not reproduce, and in how many measurements (targets and canaries) they were.
    loss_events: int = 0
    loss_measurements: int = 0

    @property
    def lossy(self) -> bool:
        """The vantage's path lost packets in this run: timeouts that cleared on retry, in several
        measurements. Timeouts are then not blocking evidence (unless the canaries never timed out)."""
        return self.loss_events >= LOSSY_MIN_EVENTS and self.loss_measurements >= LOSSY_MIN_MEASUREMENTS


@dataclass(slots=True)
class ControlMeasurement:
    """A measurement of the same target from an uncensored place (OONI's test helper), when one exists.
    ``None`` fields mean "not measured". ``failed`` means the control itself could not be obtained."""

    source: str = "control"
    failed: str | None = None
    dns_addrs: list[str] | None = None  # addresses (names such as CNAMEs are ignored)
    dns_failure: str | None = None
    tcp: dict[str, str | None] = field(default_factory=dict)  # "ip:port" / "[v6]:port" -> failure
    tls: dict[str, str | None] = field(default_factory=dict)  # "ip:port" -> failure
    http_failure: str | None = None
    http_status: int | None = None
    http_body_length: int | None = None
    http_title: str | None = None

    def dns_ips(self) -> list[str]:
        return [a for a in (self.dns_addrs or []) if netfacts.parse_ip(a) is not None]

    def dns_says_nx(self) -> bool:
        if self.failed:
            return False
        if self.dns_failure in DNS_NX:
            return True
        # Only a CNAME and no address, and the control's own fetch failed at DNS: the name is gone.
        return (self.dns_addrs is not None and not self.dns_ips()
                and (self.http_failure or "").startswith("dns_"))

    def http_ok(self) -> bool:
        return not self.failed and self.http_failure is None and (self.http_status or 0) > 0

    def http_failed(self) -> bool:
        return not self.failed and self.http_failure is not None


# --- helpers -----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _default_db() -> FingerprintDB:
    return FingerprintDB.default()


def _db(ctx: RunContext) -> FingerprintDB:
    return ctx.fingerprints if ctx.fingerprints is not None else _default_db()


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _host(url: str | None) -> str:
    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


def _scheme(url: str | None) -> str:
    try:
        return urlsplit(url or "").scheme.lower()
    except ValueError:
        return ""


def _is_ip(text: str | None) -> bool:
    return bool(text) and netfacts.parse_ip(text) is not None  # type: ignore[arg-type]


def _group(attempts: Iterable, key) -> dict:
    out: dict = defaultdict(list)
    for a in attempts:
        out[key(a)].append(a)
    for v in out.values():
        v.sort(key=lambda a: a.attempt)
    return out


def _retry_pattern(attempts: list) -> str | None:
    """'retry_succeeded' if a failure was followed by a success, 'intermittent' if a success was
    followed by a failure, None if all attempts agree."""
    seen_fail = seen_ok = False
    for a in attempts:
        if a.failure is None:
            if seen_fail:
                return "retry_succeeded"
            seen_ok = True
        else:
            if seen_ok:
                return "intermittent"
            seen_fail = True
    return None


def _http_response(a: HTTPAttempt) -> bool:
    return (a.status or 0) > 0 and (a.failure is None or a.failure in REDIRECT_FAILURES)


@dataclass(slots=True)
class _Finding:
    status: str
    layer: str | None
    method: str | None
    rule: str
    confidence: float
    confirmed: bool
    grade: str  # strong | good | weak | down | note
    reason: str
    # The evidence is timeouts and nothing else (every failed attempt behind it timed out): random loss
    # produces it too, so on a lossy path it is not blocking evidence (classify()).
    timeout_only: bool = False

    def verdict(self) -> Verdict:
        return Verdict(self.status, self.layer, self.method, self.rule, round(self.confidence, 2),
                       self.confirmed, self.reason)


def _best(findings: list[_Finding]) -> _Finding:
    return sorted(findings, key=lambda f: (_GRADE_ORDER.get(f.grade, 9), _LAYER_ORDER.get(f.layer, 9),
                                           -f.confidence))[0]


# --- reach ---------------------------------------------------------------------------------------
def _http_blockpage_matches(a: HTTPAttempt, db: FingerprintDB, target_hosts: set[str]) -> list[dict[str, str]]:
    """Blockpage fingerprints of one HTTP attempt: the runner's full-body matches, header and redirect
    Location matches, and body_head when the runner matched nothing. Body matches on content that came
    over validated HTTPS from the requested host are dropped (a censor cannot present that name's
    certificate), as are vague words on CDN challenge pages."""
    matches: list[dict[str, str]] = []
    body = list(a.fingerprints)
    if not body and a.body_head:
        body = db.match_body(a.body_head)
    final = a.final_url or a.url
    if body and _scheme(final) == "https" and _http_response(a) and _host(final) in target_hosts:
        body = [m for m in body if m.get("location", "body") != "body"]
    if body and db.challenge(a.body_head, a.headers) is not None:
        body = [m for m in body if (m.get("scope") or db.scope_of(m.get("name", "")) or "") in ("nat", "isp")]
    matches.extend(body)
    matches.extend(db.match_headers(a.headers))
    for hop in [r.url for r in a.redirects] + ([a.final_url] if a.final_url and a.final_url != a.url else []):
        matches.extend(db.match_location(hop))
    seen: set[tuple[str, str]] = set()
    out = []
    for m in matches:
        k = (m.get("name", ""), m.get("location", ""))
        if k not in seen:
            seen.add(k)
            out.append(m)
    return out


def _weak_only(matches: list[dict[str, str]], db: FingerprintDB) -> bool:
    return all((m.get("scope") or db.scope_of(m.get("name", "")) or "") in WEAK_SCOPES for m in matches)


def split_host_controls(steps: Steps) -> tuple[Steps, list[HTTPAttempt]]:
    """The steps without harmless-Host control GETs, and those controls. A control response is the
    address answering *another* name: it must never count as reaching the target."""
    if not any(a.control for a in steps.http):
        return steps, []
    return (Steps(dns=steps.dns, tcp=steps.tcp, tls=steps.tls, http=[a for a in steps.http if not a.control],
                  inject=steps.inject),
            [a for a in steps.http if a.control])


def _no_controls(measurements: Iterable[tuple[Target, Steps]]) -> list[tuple[Target, Steps]]:
    return [(t, split_host_controls(s)[0]) for t, s in measurements]


def target_reached(steps: Steps, target: Target | None = None, db: FingerprintDB | None = None) -> bool:
    """The authentic service answered: a validated TLS handshake for the name (not a control
    handshake), or an HTTP response that is not a blockpage."""
    steps = split_host_controls(steps)[0]
    if any(a.failure is None and a.cert_valid and not a.control for a in steps.tls):
        return True
    db = db or _default_db()
    hosts = _target_hosts(target, steps) if target is not None else {_host(a.url) for a in steps.http}
    for a in steps.http:
        if _http_response(a):
            m = _http_blockpage_matches(a, db, hosts)
            if not m or _weak_only(m, db):
                return True
    return False


def _target_hosts(target: Target, steps: Steps) -> set[str]:
    hosts = {h.lower() for h in target.url_hosts() if h}
    hosts |= {n.lower().rstrip(".") for n in target.dns_names}
    if target.tls_name:
        hosts.add(target.tls_name.lower())
    hosts |= {_host(a.url) for a in steps.http}
    hosts.discard("")
    return hosts


# --- canary health -------------------------------------------------------------------------------
def canary_health(measurements: list[tuple[Target, Steps]]) -> CanaryHealth:
    measurements = _no_controls(measurements)
    d_ok = d_tot = i_ok = i_tot = 0
    answered: set[str] = set()
    queried_failed: set[str] = set()
    special_normal = False
    failed_dns_only: list[bool] = []
    timeouts = loss = 0
    for target, steps in measurements:
        ok = target_reached(steps, target)
        if target.scope == "domestic":
            d_tot += 1
            d_ok += ok
        else:
            i_tot += 1
            i_ok += ok
        got_address = False
        for key, atts in _group(steps.dns, lambda a: (a.query, a.qtype, a.resolver)).items():
            resolver = key[2]
            if any(a.failure is None or a.answers for a in atts) or any(a.failure in DNS_NX | DNS_NO_DATA for a in atts):
                answered.add(resolver)  # an NXDOMAIN or empty answer is still an answer
            else:
                queried_failed.add(resolver)
            if any(a.answers for a in atts):
                got_address = True
        timeouts += sum(1 for a in _attempts(steps) if a.failure == TIMEOUT)
        loss += _loss_events(steps)
        if ok:
            for a in steps.tls:
                if a.failure is None and a.cert_valid and not a.control:
                    sp = netfacts.special_purpose(a.ip)
                    if sp and not netfacts.is_sinkhole(a.ip):
                        special_normal = True
        else:
            failed_dns_only.append(not got_address and not steps.tcp)
    return CanaryHealth(
        d_ok, d_tot, i_ok, i_tot,
        failing_resolvers=frozenset(queried_failed - answered),
        answering_resolvers=frozenset(answered),
        special_answers_normal=special_normal,
        dns_only_failures=bool(failed_dns_only) and all(failed_dns_only),
        timeout_attempts=timeouts,
        loss_events=loss,
    )


def _attempts(steps: Steps) -> list:
    return [*steps.dns, *steps.tcp, *steps.tls, *steps.http]


def _loss_events(steps: Steps) -> int:
    """Steps (one DNS query, one TCP address, one TLS address+SNI, one URL) whose timeout did not
    reproduce: some attempt timed out and another succeeded. Random loss makes these; a censor that
    drops a flow makes every attempt time out."""
    groups = [_group(steps.dns, lambda a: (a.query.lower().rstrip("."), a.qtype, a.resolver)),
              _group(steps.tcp, lambda a: (a.ip, a.port)),
              _group(steps.tls, lambda a: (a.ip, a.port, a.sni.lower(), a.control)),
              _group(steps.http, lambda a: a.url)]
    return sum(1 for g in groups for atts in g.values()
               if any(a.failure == TIMEOUT for a in atts) and any(a.failure is None for a in atts))


def _min_connect_s(steps: Steps) -> float | None:
    """The target's round trip time, as well as it is known: its fastest successful TCP connect."""
    rtts = [a.duration_ms for a in steps.tcp if a.failure is None and a.duration_ms > 0]
    return min(rtts) / 1000 if rtts else None


def _fetch_round_trips(url: str, body_length: int) -> int:
    """Round trips a fresh fetch of ``url`` needs besides the transfer itself: TCP, TLS (https), the request,
    and one per slow-start doubling beyond the initial window."""
    rounds = 0
    sent = INIT_WINDOW_BYTES
    while sent < body_length:
        rounds += 1
        sent += INIT_WINDOW_BYTES * (2 ** rounds)
    return 1 + (2 if _scheme(url) == "https" else 0) + 1 + rounds


def _body_trickle_bps(a: HTTPAttempt) -> float | None:
    """The body's own rate when it kept coming for >= THROTTLE_MIN_SECONDS after the first byte (the time
    is then transfer, not round trips or server time); None when it did not, or timings are unknown."""
    if a.ttfb_ms is None or not a.body_length or not a.duration_ms or a.failure not in (None, TIMEOUT):
        return None
    body_s = (a.duration_ms - a.ttfb_ms) / 1000
    if body_s < THROTTLE_MIN_SECONDS:
        return None
    return a.body_length / body_s


def _host_addresses(steps: Steps, host: str) -> set[str]:
    if _is_ip(host):
        return {host}
    return {ip for a in steps.dns if a.query.lower().rstrip(".") == host for ip in a.answers}


def address_evidence(measurements: Iterable[tuple[Target, Steps]]) -> frozenset[str]:
    """Addresses that reset (or cut) every TLS handshake, for the target's SNI and for the harmless
    control SNI, after the TCP connection succeeded: the address is reset whatever the name."""
    measurements = _no_controls(measurements)
    out: set[str] = set()
    for _, steps in measurements:
        tcp_ok = {(a.ip, a.port) for a in steps.tcp if a.failure is None}
        by_ip: dict[tuple[str, int], list] = defaultdict(list)
        for a in steps.tls:
            by_ip[(a.ip, a.port)].append(a)
        for (ip, port), atts in by_ip.items():
            real = [a for a in atts if not a.control]
            ctl = [a for a in atts if a.control]
            if (ip, port) in tcp_ok and real and ctl and all(a.failure in (RESET, EOF) for a in real + ctl):
                out.add(ip)
    return frozenset(out)


def run_context(measurements: list[tuple[Target, Steps]], **kwargs) -> RunContext:
    """Everything a run's verdicts need from the run itself, in one call:

        ctx = run_context([(target, steps) for every target of the run, canaries included],
                          fingerprints=db, bogon_exempt=..., known_existing_names=...)

    health from the canaries; ``canary_throughput_bps`` the median of the canaries' body throughput;
    ``canary_fetch_bps`` the slowest canary's whole-fetch goodput and ``canary_transfer_bps`` the slowest
    canary's transfer rate (its round trips taken out, at most half its time): conservative, random loss
    on one canary makes the reference slower, never a target "throttled"; ``canary_rtt_ms`` /
    ``canary_tls_ms`` the canaries' median TCP connect / TLS handshake time; ``trickle_addresses`` and
    ``reset_addresses`` from every target; ``loss_events`` / ``loss_measurements`` (path loss) from every
    measurement. Keyword arguments override."""
    measurements = _no_controls(measurements)
    canaries = [(t, s) for t, s in measurements if t.is_canary]
    fetches = [a for _, s in canaries for a in s.http
               if a.failure is None and a.body_length and a.duration_ms and a.duration_ms > 0]
    rates = [a.throughput_bps for a in fetches if a.throughput_bps]
    rtts = [a.duration_ms for _, s in canaries for a in s.tcp if a.failure is None and a.duration_ms > 0]
    tlss = [a.duration_ms for _, s in canaries for a in s.tls if a.failure is None and not a.control and a.duration_ms > 0]
    transfer = []
    for _, s in canaries:
        rtt = _min_connect_s(s) or 0.0
        for a in s.http:
            if a.failure is None and a.body_length and a.duration_ms and a.duration_ms > 0:
                took = a.duration_ms / 1000
                moving = max(took - _fetch_round_trips(a.url, a.body_length) * rtt, took / 2)
                transfer.append(a.body_length / moving)
    transfer_bps = min(transfer) if transfer else None
    fetch_bps = min(a.body_length / (a.duration_ms / 1000) for a in fetches) if fetches else None  # type: ignore[operator]
    ratio = kwargs.get("throttle_ratio", THROTTLE_RATIO)
    ref = kwargs.get("canary_transfer_bps", transfer_bps) or kwargs.get("canary_fetch_bps", fetch_bps)
    trickle: set[str] = set()
    loss_events = loss_measurements = 0
    for t, s in measurements:
        n = _loss_events(s)
        loss_events += n
        loss_measurements += n > 0
        if t.is_canary or not ref:
            continue
        for a in s.http:
            bps = _body_trickle_bps(a)
            if bps is not None and bps * ratio <= ref:
                trickle |= _host_addresses(s, _host(a.url))
    values = dict(
        health=canary_health(canaries),
        canary_throughput_bps=statistics.median(rates) if rates else None,
        canary_fetch_bps=fetch_bps,
        canary_transfer_bps=transfer_bps,
        canary_rtt_ms=statistics.median(rtts) if rtts else None,
        canary_tls_ms=statistics.median(tlss) if tlss else None,
        reset_addresses=address_evidence(measurements),
        trickle_addresses=frozenset(trickle),
        loss_events=loss_events,
        loss_measurements=loss_measurements,
    )
    values.update(kwargs)
    return RunContext(**values)


# --- evidence ------------------------------------------------------------------------------------
@dataclass(slots=True)
class _NameView:
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
        if fails and all(f in DNS_SERVFAIL for f in fails):
            return "servfail"
        if fails and all(f == TIMEOUT for f in fails):
            return "timeout"
        if all(f is None or f in DNS_NO_DATA for f in self.finals):
            return "no_answer"
        if any(f in DNS_SERVFAIL for f in fails):
            return "servfail"
        if any(f == TIMEOUT for f in fails):
            return "timeout"
        return "other"


class _Evidence:
    def __init__(self, target: Target, steps: Steps, ctx: RunContext, control: ControlMeasurement | None):
        self.t = target
        self.s = steps
        self.ctx = ctx
        self.db = _db(ctx)
        self.control = control if control is not None and not control.failed else None
        self.control_failed = control.failed if control is not None else None
        self.hosts = _target_hosts(target, steps)
        self.expected = netfacts.expected_prefixes_for(target.platform, target.expected_prefixes)
        self.use_tls = not (target.kind == "endpoint" and not target.tls_name)
        self.host_controls: dict[str, HTTPAttempt] = {}  # url -> harmless-Host GET, set by classify

        # DNS: per (name, resolver)
        self.views: dict[tuple[str, str], _NameView] = {}
        self.dns_flaky: list[str] = []
        for (q, qt, r), atts in _group(steps.dns, lambda a: (a.query.lower().rstrip("."), a.qtype, a.resolver)).items():
            v = self.views.setdefault((q, r), _NameView(q, r))
            for a in atts:
                for ans in a.answers:
                    if netfacts.parse_ip(ans) is not None and ans not in v.addrs:
                        v.addrs.append(ans)
            v.finals.append(atts[-1].failure)
            p = _retry_pattern(atts)
            if p:
                self.dns_flaky.append(f"DNS {qt} {q} via {r}: {p}")
        # Flags per answered address
        self.blockpage_ips: dict[str, tuple[_NameView, dict]] = {}
        self.bogon_ips: dict[str, _NameView] = {}
        for v in self.views.values():
            for ip in v.addrs:
                m = self.db.match_dns_answer(ip)
                if m is not None:
                    self.blockpage_ips.setdefault(ip, (v, m))
                elif self._bogon(ip, v.name):
                    self.bogon_ips.setdefault(ip, v)
        self.flagged = set(self.blockpage_ips) | set(self.bogon_ips)

        self.tcp = _group(steps.tcp, lambda a: (a.ip, a.port))
        self.tls = _group([a for a in steps.tls if self.use_tls], lambda a: (a.ip, a.port, a.sni.lower(), a.control))
        self.http = _group(steps.http, lambda a: a.url)
        self.flaky: list[str] = list(self.dns_flaky)
        for (ip, port), atts in self.tcp.items():
            p = _retry_pattern(atts)
            if p:
                self.flaky.append(f"TCP {_ep(ip, port)}: {p}")
        for (ip, port, sni, ctl), atts in self.tls.items():
            p = _retry_pattern(atts)
            if p and not ctl:
                self.flaky.append(f"TLS {_ep(ip, port)} SNI {sni}: {p}")
        for url, atts in self.http.items():
            p = _retry_pattern(atts)
            if p:
                self.flaky.append(f"HTTP {url}: {p}")

        self.tls_valid = [a for a in steps.tls if a.failure is None and a.cert_valid and not a.control]
        self.tls_valid_ips = {a.ip for a in self.tls_valid}
        self.http_ok: list[HTTPAttempt] = []
        self.http_challenge: list[tuple[HTTPAttempt, str]] = []
        self.http_blockpages: list[tuple[HTTPAttempt, list[dict[str, str]]]] = []
        for a in steps.http:
            if not _http_response(a):
                continue
            m = _http_blockpage_matches(a, self.db, self.hosts)
            if m:
                # Even vague words only ("Website Blocked") keep the answer from counting as reached;
                # they are judged as weak evidence when nothing else answered.
                self.http_blockpages.append((a, m))
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

    def others(self, name: str, resolver: str) -> list[_NameView]:
        return [v for (n, r), v in self.views.items() if n == name and r != resolver]

    def other_clean_addrs(self, name: str, resolver: str) -> list[str]:
        out = [ip for v in self.others(name, resolver) for ip in v.addrs if ip not in self.flagged]
        if self.control is not None:
            out += [ip for ip in self.control.dns_ips() if not netfacts.is_bogon(ip)]
        return out

    @property
    def reached(self) -> bool:
        return bool(self.tls_valid or self.http_ok)

    def endpoint_reached(self) -> bool:
        """Reached at TCP level, when TCP is the only application check there is (Telegram DCs, OONI's
        Messenger test): a connection to a fixed endpoint or to an address inside the platform's
        prefixes. Never used when a TLS or HTTP step was attempted (those decide then)."""
        if self.tls or self.s.http:
            return False
        eps = {(e.host, e.port) for e in self.t.endpoints if _is_ip(e.host)}
        return any(a.failure is None for k, atts in self.tcp.items() for a in atts
                   if k[0] not in self.flagged and (k in eps or netfacts.in_prefixes(k[0], self.expected)))


# --- rules ---------------------------------------------------------------------------------------
def _dns_findings(ev: _Evidence) -> list[_Finding]:
    out: list[_Finding] = []
    ctx = ev.ctx
    # dns.injected: the raw-query check saw several different answers, or an answer from a wrong source
    for ia in ev.s.inject:
        why = injection_evidence(ia)
        if why:
            out.append(_Finding("blocked", "dns", "injected", "dns.injected", 0.995, True, "strong",
                                f"on-path DNS injection for {ia.query} via {ia.resolver}: {why}"))
    # dns.blockpage_ip: an answer is a known blockpage address
    for ip, (v, m) in ev.blockpage_ips.items():
        if netfacts.is_sinkhole(ip):  # 0.0.0.0 / 127.0.0.1 are listed by some fingerprint sets: a sinkhole
            out.append(_Finding("blocked", "dns", "bogon", "dns.bogon", 0.97, True, "strong",
                                f"{v.resolver} answered {v.name} with {ip}, a sinkhole address known as a DNS "
                                f"blocking answer ({m['name']})"))
            continue
        out.append(_Finding("blocked", "dns", "blockpage_ip", "dns.blockpage_ip", 0.99, True, "strong",
                            f"{v.resolver} answered {v.name} with {ip}, a known blockpage address ({m['name']})"))
    # dns.bogon: a special-purpose answer that another resolver / the control contradicts, or a sinkhole
    for ip, v in ev.bogon_ips.items():
        other = [a for a in ev.other_clean_addrs(v.name, v.resolver) if a != ip]
        agreed = any(ip in o.addrs for o in ev.others(v.name, v.resolver)) or (
            ev.control is not None and ip in ev.control.dns_ips())
        label = netfacts.special_purpose(ip)
        if netfacts.is_sinkhole(ip):
            # 0.0.0.0/8, 127/8, ::, ::1 are never a public server, even when every resolver says so
            # (a censor intercepting all DNS); published exceptions are in netfacts.LEGIT_SPECIAL_ANSWERS.
            out.append(_Finding("blocked", "dns", "bogon", "dns.bogon", 0.95, True, "strong",
                                f"{v.resolver} answered {v.name} with {ip} ({label}), a sinkhole address"
                                + (f"; another resolver/control answered {', '.join(sorted(set(other))[:3])}" if other else "")))
            continue
        if agreed and not other:
            continue  # every resolver gives this private address: split horizon, not tampering
        if other:
            out.append(_Finding("blocked", "dns", "bogon", "dns.bogon", 0.95, True, "strong",
                                f"{v.resolver} answered {v.name} with {ip} ({label}) while another resolver/control "
                                f"answered {', '.join(sorted(set(other))[:3])}"))
        else:
            out.append(_Finding("blocked", "dns", "bogon", "dns.bogon", 0.8, False, "good",
                                f"{v.resolver} answered {v.name} with {ip} ({label}), not a public server address"))
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
            ctl_nx = ev.control is not None and ev.control.dns_says_nx()
            authentic_other = [ip for ip in clean_other if ip in ev.tls_valid_ips or netfacts.in_prefixes(ip, ev.expected)]
            if st in ("nxdomain", "no_answer"):
                method = "nxdomain" if st == "nxdomain" else "no_answer"
                if clean_other:
                    conf = 0.9 if authentic_other else 0.85
                    src = "the control" if ev.control is not None and not [o for o in ev.others(name, v.resolver) if o.addrs] else "another resolver"
                    out.append(_Finding("blocked", "dns", method, f"dns.{method}", conf, False, "good",
                                        f"{v.resolver} said {st.upper() if st == 'nxdomain' else 'no answer'} for {name} "
                                        f"while {src} answered {', '.join(sorted(set(clean_other))[:3])}"
                                        + (" (authenticated)" if authentic_other else "")))
                elif others_nx or ctl_nx:
                    who = ", ".join(sorted({o.resolver for o in others_nx} | ({"the control"} if ctl_nx else set())))
                    out.append(_Finding("down", "dns", method, f"down.{method}", 0.85, False, "down",
                                        f"{name}: {st} from {v.resolver} and from {who}: the name does not resolve anywhere"))
                elif name in ctx.known_existing_names:
                    out.append(_Finding("blocked", "dns", method, f"dns.{method}", 0.65, False, "good",
                                        f"{v.resolver} said {st} for {name}, a name known to exist; no second resolver to compare"))
                else:
                    out.append(_Finding("inconclusive", "dns", method, f"inconclusive.{method}_single_resolver", 0.2,
                                        False, "note",
                                        f"{v.resolver} said {st} for {name} and no other resolver or control was asked: "
                                        "censorship and a name that no longer exists look the same"))
            elif st in ("servfail", "timeout"):
                if v.resolver in ctx.health.failing_resolvers:
                    out.append(_Finding("outage", "dns", "resolver_down", "outage.resolver", 0.8, False, "outage",
                                        f"resolver {v.resolver} also failed every canary ({st})"))
                elif clean_other and (v.resolver in ctx.health.answering_resolvers):
                    # A timeout is never more than elimination (random loss produces it too).
                    out.append(_Finding("blocked", "dns", st, f"dns.{st}", 0.6 if st == "servfail" else 0.5, False,
                                        "good" if st == "servfail" else "weak",
                                        f"{v.resolver} gave {st} for {name} while it answered the canaries and another "
                                        f"resolver answered {', '.join(sorted(set(clean_other))[:3])}",
                                        timeout_only=st == "timeout"))
                else:
                    out.append(_Finding("inconclusive", "dns", st, f"inconclusive.dns_{st}", 0.2, False, "note",
                                        f"{v.resolver} gave {st} for {name}; nothing shows whether the resolver or the name is at fault",
                                        timeout_only=st == "timeout"))
    # dns.unexpected_answer: outside the platform's prefixes, contradicted, and not authenticated by TLS
    if ev.expected:
        for v in ev.views.values():
            if not v.addrs or any(ip in ev.flagged for ip in v.addrs):
                continue
            outside = [ip for ip in v.addrs if not netfacts.in_prefixes(ip, ev.expected)]
            if len(outside) != len(v.addrs) or any(ip in ev.tls_valid_ips for ip in outside):
                continue
            inside_other = [ip for ip in ev.other_clean_addrs(v.name, v.resolver) if netfacts.in_prefixes(ip, ev.expected)]
            if inside_other:
                out.append(_Finding("blocked", "dns", "unexpected_answer", "dns.unexpected_answer", 0.7, False, "good",
                                    f"{v.resolver} answered {v.name} with {', '.join(outside[:3])}, outside {ev.t.platform}'s "
                                    f"prefixes, while another resolver/control answered {', '.join(inside_other[:3])}; "
                                    "no valid certificate was obtained there"))
    return out


def _tcp_findings(ev: _Evidence) -> list[_Finding]:
    out: list[_Finding] = []
    keys = [k for k in ev.tcp if k[0] not in ev.flagged]
    if not keys:
        return out
    if any(any(a.failure is None for a in ev.tcp[k]) for k in keys):
        return out  # at least one address connects: no IP-level blocking of the target
    finals = {k: ev.tcp[k][-1].failure for k in keys}
    # An IPv6 address that is unreachable while IPv4 addresses exist: the vantage has no IPv6.
    v4 = [k for k in keys if ":" not in k[0]]
    considered = [k for k in keys if not (":" in k[0] and finals[k] in UNREACHABLE and v4)]
    if not considered:
        return out
    fails = {finals[k] for k in considered}
    eps = ", ".join(_ep(*k) for k in considered[:3]) + ("..." if len(considered) > 3 else "")
    ctl = ev.control
    ctl_ok = ctl is not None and any(ctl.tcp.get(_ep(*k), "x") is None for k in considered)
    ctl_fail = ctl is not None and any(_ep(*k) in ctl.tcp for k in considered) and not ctl_ok
    if fails == {TIMEOUT}:
        only_timeouts = all(a.failure == TIMEOUT for k in considered for a in ev.tcp[k])
        if ctl_ok:
            out.append(_Finding("blocked", "tcp", "ip_blackhole", "tcp.ip_blackhole", 0.8, False, "good",
                                f"every connection to {eps} timed out while the control connected",
                                timeout_only=only_timeouts))
        elif ctl_fail:
            out.append(_Finding("down", "tcp", "unreachable", "down.control_agrees", 0.7, False, "down",
                                f"connections to {eps} timed out here and from the control too"))
        else:
            out.append(_Finding("blocked", "tcp", "ip_blackhole", "tcp.ip_blackhole", 0.65, False, "weak",
                                f"every connection to {eps} timed out on every attempt while the canaries connected",
                                timeout_only=only_timeouts))
    elif fails == {REFUSED}:
        if ctl_ok:
            out.append(_Finding("blocked", "tcp", "rst", "tcp.rst", 0.75, False, "good",
                                f"connections to {eps} were refused (RST to SYN) here but not from the control"))
        else:
            out.append(_Finding("down", "tcp", "refused", "down.refused", 0.8 if ev.ctx.health.known else 0.6, False,
                                "down", f"every connection to {eps} was refused: nothing listens there (site down)"))
    elif fails <= {RESET, EOF}:
        out.append(_Finding("blocked", "tcp", "rst", "tcp.rst", 0.75 if ctl_ok else 0.6, False, "good" if ctl_ok else "weak",
                            f"connections to {eps} were reset during the TCP handshake"))
    elif fails <= UNREACHABLE:
        if ctl_ok:
            out.append(_Finding("blocked", "tcp", "unreachable", "tcp.unreachable", 0.65, False, "good",
                                f"{eps} unreachable here ({', '.join(sorted(fails))}) while the control connected"))
        else:
            out.append(_Finding("inconclusive", "tcp", "unreachable", "inconclusive.tcp_unreachable", 0.2, False, "note",
                                f"{eps} unreachable ({', '.join(sorted(fails))}): a routing problem as likely as a block"))
    elif fails <= {TIMEOUT, REFUSED, RESET, EOF} | UNREACHABLE and TIMEOUT in fails:
        out.append(_Finding("blocked", "tcp", "ip_blackhole", "tcp.ip_blackhole", 0.55, False, "weak",
                            f"no connection to {eps} succeeded ({', '.join(sorted(f or '' for f in fails))})"))
    else:
        out.append(_Finding("inconclusive", "tcp", None, "inconclusive.tcp_failure", 0.2, False, "note",
                            f"no connection to {eps} succeeded ({', '.join(sorted(f or '' for f in fails))})"))
    return out


def _tls_findings(ev: _Evidence) -> list[_Finding]:
    out: list[_Finding] = []
    ctl = ev.control
    for (ip, port, sni, is_control), atts in ev.tls.items():
        if is_control or ip in ev.flagged:
            continue
        if any(a.failure is None for a in atts):
            continue  # succeeded at least once (flakiness is judged elsewhere)
        fail = atts[-1].failure
        controls = [a for (cip, cport, _, c), cat in ev.tls.items() if c and cip == ip and cport == port for a in cat]
        harmless_ok = any(a.failure is None for a in controls)
        ep = _ep(ip, port)
        n = len(atts)
        ctl_tls = ctl.tls.get(ep, "missing") if ctl is not None else "missing"
        only_timeouts = all(a.failure == TIMEOUT for a in atts)
        if fail in (RESET, EOF, TIMEOUT):
            if harmless_ok:
                harmless = next(a.sni for a in controls if a.failure is None)
                if fail == RESET:
                    out.append(_Finding("blocked", "tls", "sni_rst", "tls.sni_rst", 0.97, True, "strong",
                                        f"TLS to {ep} with SNI {sni} was reset ({n} attempt(s)) while SNI {harmless} "
                                        "to the same address completed: SNI filtering"))
                elif fail == EOF:
                    out.append(_Finding("blocked", "tls", "sni_eof", "tls.sni_eof", 0.95, True, "strong",
                                        f"TLS to {ep} with SNI {sni} was cut (EOF) while SNI {harmless} "
                                        "to the same address completed: SNI filtering"))
                else:
                    out.append(_Finding("blocked", "tls", "sni_timeout", "tls.sni_timeout", 0.85, False, "good",
                                        f"TLS to {ep} with SNI {sni} timed out ({n} attempt(s)) while SNI {harmless} "
                                        "to the same address completed: SNI filtering by dropping",
                                        timeout_only=only_timeouts))
            elif controls and fail in (RESET, EOF) and all(a.failure in (RESET, EOF) for a in controls) \
                    and any(a.failure is None for a in ev.tcp.get((ip, port), [])):
                out.append(_Finding("blocked", "tcp", "rst", "tcp.rst", 0.6, False, "weak",
                                    f"TCP to {ep} connects, then TLS is {'reset' if fail == RESET else 'cut'} for SNI {sni} "
                                    "and for a harmless SNI alike: the address itself is reset (IP-based RST injection)"))
            elif controls:
                out.append(_Finding("inconclusive", "tls", None, "inconclusive.tls_any_sni", 0.25, False, "note",
                                    f"TLS to {ep} fails ({fail}) for SNI {sni} and for a harmless SNI too: the address "
                                    "(or the server) breaks every handshake",
                                    timeout_only=only_timeouts and all(a.failure == TIMEOUT for a in controls)))
            elif ctl_tls is None:
                method = {RESET: "rst", EOF: "rst", TIMEOUT: "timeout"}[fail]
                out.append(_Finding("blocked", "tls", method, f"tls.{method}", 0.75, False, "good",
                                    f"TLS to {ep} with SNI {sni} failed ({fail}) while the control's handshake succeeded",
                                    timeout_only=only_timeouts))
            else:
                method = {RESET: "rst", EOF: "rst", TIMEOUT: "timeout"}[fail]
                out.append(_Finding("blocked", "tls", method, f"tls.{method}", 0.5, False, "weak",
                                    f"TLS to {ep} with SNI {sni} failed ({fail}) on every attempt; no harmless-SNI control",
                                    timeout_only=only_timeouts))
        elif fail in CERT_FAILURES:
            out.extend(_cert_finding(ev, ep, sni, fail, ctl_tls))
    return out


def _cert_finding(ev: _Evidence, ep: str, sni: str, fail: str, ctl_tls: str | None) -> list[_Finding]:
    ctl = ev.control
    if ctl_tls is None or (ctl is not None and ctl_tls == "missing" and ctl.http_ok() and _scheme_of_target(ev) == "https"):
        return [_Finding("blocked", "tls", "invalid_cert", "tls.invalid_cert", 0.75, False, "good",
                         f"the certificate at {ep} is not valid for {sni} ({fail}) while the control validated it: "
                         "interception or a redirect to another server")]
    if ctl is not None and (ctl_tls not in (None, "missing") or ctl.http_failed()):
        return [_Finding("down", "tls", "invalid_cert", "down.control_agrees", 0.65, False, "down",
                         f"the certificate at {ep} is not valid for {sni} ({fail}) and the control failed too: "
                         "the site's own certificate problem")]
    return [_Finding("inconclusive", "tls", "invalid_cert", "inconclusive.tls_invalid_cert", 0.25, False, "note",
                     f"the certificate at {ep} is not valid for {sni} ({fail}): interception and a site's own "
                     "misconfiguration look the same without a control")]


def _scheme_of_target(ev: _Evidence) -> str:
    return _scheme(ev.t.urls[0]) if ev.t.urls else ""


def _http_findings(ev: _Evidence) -> list[_Finding]:
    out: list[_Finding] = []
    db = ev.db
    for a, matches in ev.http_blockpages:
        names = ", ".join(sorted({m["name"] for m in matches})[:3])
        where = sorted({m.get("location", "body") for m in matches})
        if _weak_only(matches, db):
            out.append(_Finding("blocked", "http", "blockpage", "http.blockpage_weak", 0.55, False, "weak",
                                f"{a.url}: only vague blocking words matched ({names})"))
        else:
            out.append(_Finding("blocked", "http", "blockpage", "http.blockpage", 0.97, True, "strong",
                                f"{a.url} answered a blockpage: fingerprint {names} in {', '.join(where)}"))
    # A redirect from a public site to a special-purpose address (a filter's portal on the LAN).
    for a in ev.s.http:
        if not _http_response(a) and not a.redirects:
            continue
        hops = [r.url for r in a.redirects] + [a.headers.get(k) for k in a.headers if k.lower() == "location"]
        hops += [a.final_url] if a.final_url and a.final_url != a.url else []
        for hop in hops:
            h = _host(hop)
            if h and _is_ip(h) and netfacts.is_bogon(h) and not _is_ip(_host(a.url)) \
                    and not netfacts.in_prefixes(h, ev.ctx.bogon_exempt) and not ev.ctx.health.special_answers_normal:
                out.append(_Finding("blocked", "http", "blockpage", "http.redirect_bogon", 0.75, False, "good",
                                    f"{a.url} redirected to {hop}, a {netfacts.special_purpose(h)} address: a filter's portal"))
                break
    # Failures of the GET itself (for https URLs the TLS records decide, when there are any).
    tls_hosts = {sni for (_, _, sni, c) in ev.tls if not c}
    for url, atts in ev.http.items():
        if any(_http_response(a) for a in atts):
            continue
        fail = atts[-1].failure
        if fail is None:
            continue
        before = len(out)
        _http_failure_findings(ev, url, atts, fail, tls_hosts, out)
        ctl = ev.control
        if len(out) == before and ctl is not None and ctl.http_failed() and not (ctl.http_failure or "").startswith("dns_") \
                and not fail.startswith("dns_"):
            out.append(_Finding("down", "http", None, "down.control_agrees", 0.65, False, "down",
                                f"GET {url} failed ({fail[:60]}) and the control's fetch failed too ({ctl.http_failure})"))
    return out


def _http_failure_findings(ev: _Evidence, url: str, atts: list[HTTPAttempt], fail: str, tls_hosts: set[str],
                           out: list[_Finding]) -> None:
    https = _scheme(url) == "https"
    host = _host(url)
    tcp_ok = bool(ev.tcp_ok_ips)
    if fail in (RESET, EOF):
        if https and host in tls_hosts:
            return
        reset_ips = sorted({ip for (n, _), v in ev.views.items() if n == host for ip in v.addrs}
                           & ev.ctx.reset_addresses)
        hc = ev.host_controls.get(url)
        if tcp_ok and reset_ips:
            out.append(_Finding("blocked", "tcp", "rst", "tcp.rst", 0.6, False, "weak",
                                f"GET {url} was reset, and in the same run {', '.join(reset_ips[:3])} reset TLS for "
                                "any SNI too: the address is reset, not the Host"))
        elif tcp_ok and not https and hc is not None and hc.status is not None:
            out.append(_Finding("blocked", "http", "http_rst", "http.host_rst", 0.95, True, "strong",
                                f"GET {url} was {'reset' if fail == RESET else 'cut (EOF)'} on every attempt while "
                                f"the same address answered a GET with Host {hc.host_header} (HTTP {hc.status}): "
                                "the filter keys on the Host"))
        elif tcp_ok and not https and hc is not None and hc.failure in (RESET, EOF):
            out.append(_Finding("blocked", "tcp", "rst", "tcp.rst", 0.6, False, "weak",
                                f"GET {url} was reset, and so was a GET with the harmless Host {hc.host_header}: "
                                "the address is reset, not the Host"))
        elif tcp_ok and not https:
            out.append(_Finding("blocked", "http", "http_rst", "http.rst", 0.75, False, "good",
                                f"GET {url} was {'reset' if fail == RESET else 'cut (EOF)'} on every attempt after "
                                "the TCP connection succeeded: Host-based filtering"))
        elif ev.control is not None and ev.control.http_ok():
            out.append(_Finding("blocked", "http", "http_rst", "http.rst", 0.7, False, "good",
                                f"GET {url} failed ({fail}) while the control fetched it"))
        else:
            out.append(_Finding("blocked", "http", "http_rst", "http.rst", 0.5, False, "weak",
                                f"GET {url} failed ({fail}) on every attempt"))
    elif fail == TIMEOUT:
        if https and host in tls_hosts:
            return
        thr = _throttle(ev, atts)
        if thr is not None:
            out.append(thr)
        elif tcp_ok and not https:
            out.append(_Finding("blocked", "http", "http_timeout", "http.timeout", 0.5, False, "weak",
                                f"GET {url} timed out on every attempt after the TCP connection succeeded",
                                timeout_only=all(a.failure == TIMEOUT for a in atts)))
    elif fail in CERT_FAILURES:
        if host in tls_hosts:
            return
        ctl_tls = "missing"
        out.extend(_cert_finding(ev, host, host, fail, ctl_tls))
    elif fail.startswith("unknown_failure") or fail in ("unknown_error",):
        out.append(_Finding("inconclusive", "http", None, "inconclusive.probe_error", 0.1, False, "note",
                            f"GET {url} failed with an unclassified error ({fail[:80]}): a probe-side problem, "
                            "not network evidence"))


def _throttle(ev: _Evidence, attempts: list[HTTPAttempt] | None = None) -> _Finding | None:
    """Throttling: every usable fetch of the target is >= ``throttle_ratio`` times slower than the slowest
    canary, the time is bandwidth, and the path is clean.

    With ``canary_transfer_bps`` / ``canary_fetch_bps`` (run_context) a fetch counts when
    * it took >= THROTTLE_MIN_SECONDS (absolute slowness: a 40 ms fetch against 5 ms is not throttling);
    * its transfer time (whole time minus its round trips at the target's own connect time: latency is not
      throttling) is >= ``throttle_ratio`` times what the slowest canary's rate predicts for its bytes;
    * the time went into moving bytes, not into a server thinking: the body itself trickled after the first
      byte, or the TLS handshake was shaped too, or another fetch from the same address trickled in this run
      (over HTTPS a small body arrives in one TLS record with the headers, so the first byte says little).
    Never on a lossy path (one retransmission timeout stalls a fetch for 0.2-1 s), nor unless every canary
    was reached. Without those fields the runner's body throughput is compared with
    ``canary_throughput_bps`` at THROTTLE_RATIO_RAW, for bodies >= 64 KiB or taking >= 0.5 s."""
    ctx = ev.ctx
    pool = [a for a in (attempts if attempts is not None else ev.s.http)
            if a.body_length and (a.failure is None or a.failure == TIMEOUT)]
    if not pool or ctx.lossy:
        return None
    ref = ctx.canary_transfer_bps or ctx.canary_fetch_bps
    if ref:
        if not (ctx.health.known and ctx.health.ok == ctx.health.total):
            return None  # a canary failed: the reference is not the vantage's normal
        rtt = _min_connect_s(ev.s)
        if rtt is None:
            rtt = (ctx.canary_rtt_ms or 0.0) / 1000
        judged = []
        for a in pool:
            took = (a.duration_ms or 0.0) / 1000
            trips = _fetch_round_trips(a.url, a.body_length or 0)
            moving = took - trips * rtt
            expected = (a.body_length or 0) / ref
            slow = moving / expected if expected > 0 else 0.0
            if took < THROTTLE_MIN_SECONDS or slow < ctx.throttle_ratio:
                if a.failure is None:
                    return None  # a fetch came at a normal pace (or too fast to judge): not throttled
                continue
            judged.append((a, took, trips, expected, slow))
        if not judged:
            return None
        a, took, trips, expected, slow = min(judged, key=lambda j: j[4])
        why = _bandwidth_evidence(ev, a, ref, rtt)
        if why is None:
            return None  # the time went before the first byte while the handshakes were normal: a slow server
        return _Finding("blocked", "http", "throttled", "http.throttled", 0.7, False, "good",
                        f"{a.url}: {a.body_length} B took {took * 1000:,.0f} ms; less {trips} round trips at "
                        f"{rtt * 1000:,.0f} ms that is {slow:,.0f}x the {expected * 1000:,.0f} ms the slowest canary's "
                        f"rate ({ref:,.0f} B/s) predicts (threshold {ctx.throttle_ratio:g}x); {why}")
    ref = ctx.canary_throughput_bps
    if not ref or ref <= 0:
        return None
    samples2 = [a for a in pool if a.throughput_bps and a.throughput_bps > 0
                and (a.body_length >= THROTTLE_MIN_BYTES  # type: ignore[operator]
                     or a.body_length / a.throughput_bps >= THROTTLE_MIN_SECONDS)]  # type: ignore[operator]
    if not samples2:
        return None
    best = max(samples2, key=lambda a: a.throughput_bps or 0.0)
    tp = best.throughput_bps or 0.0
    ratio = max(ctx.throttle_ratio, THROTTLE_RATIO_RAW)
    if tp * ratio <= ref:
        return _Finding("blocked", "http", "throttled", "http.throttled", 0.7, False, "good",
                        f"{best.url}: {tp:,.0f} B/s against {ref:,.0f} B/s for the canaries "
                        f"({ref / tp:,.0f}x slower, threshold {ratio:g}x)")
    return None


def _bandwidth_evidence(ev: _Evidence, a: HTTPAttempt, ref: float, rtt: float) -> str | None:
    """Why a slow fetch is bandwidth and not a server thinking, or None. Unknown timings (no time to first
    byte recorded) are not held against it; a wait before the first byte needs a shaped handshake or a
    trickle from the same address."""
    ctx = ev.ctx
    if a.ttfb_ms is None:
        return "time to first byte not recorded"
    bps = _body_trickle_bps(a)
    if bps is not None and bps * ctx.throttle_ratio <= ref:
        return f"the body itself trickled in at {bps:,.0f} B/s after the first byte"
    tls_ms = [t.duration_ms for t in ev.s.tls if t.failure is None and not t.control and t.duration_ms > 0]
    if tls_ms and ctx.canary_tls_ms:
        median_tls = statistics.median(tls_ms)
        extra_rtt_ms = max(0.0, rtt * 1000 - (ctx.canary_rtt_ms or 0.0))
        allowed = THROTTLE_HANDSHAKE_RATIO * (ctx.canary_tls_ms + 2 * extra_rtt_ms)
        if median_tls >= max(30.0, allowed):
            return f"the TLS handshake was shaped too ({median_tls:,.0f} ms against the canaries' {ctx.canary_tls_ms:,.0f} ms)"
    shaped = sorted(_host_addresses(ev.s, _host(a.url)) & ctx.trickle_addresses)
    if shaped:
        return f"in the same run a body from {', '.join(shaped[:3])} trickled in (bandwidth shaping of the address)"
    return None


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
        desc = "; ".join(f"{k[0]} {list(k[1])} from {v.get('src')} ttl={v.get('ttl')} after {v.get('delay_ms')}ms"
                         for k, v in list(distinct.items())[:3])
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


# --- decision ------------------------------------------------------------------------------------
def classify(target: Target, steps: Steps, ctx: RunContext | None = None,
             control: ControlMeasurement | None = None) -> Verdict:
    ctx = ctx or RunContext()
    if not (steps.dns or steps.tcp or steps.tls or steps.http or steps.inject):
        return Verdict("inconclusive", rule="inconclusive.no_steps", confidence=0.0,
                       reason="nothing was measured for this target")
    steps, host_controls = split_host_controls(steps)
    ev = _Evidence(target, steps, ctx, control)
    ev.host_controls = {a.url: a for a in host_controls}
    findings = _dns_findings(ev) + _tcp_findings(ev) + _tls_findings(ev) + _http_findings(ev)
    # A lossy path: timeouts are what random loss looks like. Unless the canaries went through on every
    # attempt (then the loss is not the vantage's), timeout-only findings are not blocking evidence.
    lost: list[_Finding] = []
    if ctx.lossy and not ctx.health.spotless:
        lost = [f for f in findings if f.timeout_only]
        findings = [f for f in findings if not f.timeout_only]
    blocking = [f for f in findings if f.status == "blocked"]
    strong = [f for f in blocking if f.grade in ("strong", "good")]
    weak = [f for f in blocking if f.grade == "weak"]
    downs = [f for f in findings if f.grade == "down"]
    notes = [f for f in findings if f.grade == "note"]
    reached = ev.reached or ev.endpoint_reached()
    health = ctx.health

    # 2. the vantage's own outage: never blocking
    resolver_outage = [f for f in findings if f.grade == "outage"]
    if health.all_failed and not (reached and not strong):
        if health.dns_only_failures and resolver_outage:
            return _Finding("outage", "dns", "resolver_down", "outage.resolver", 0.85, False, "outage",
                            f"every canary failed at DNS and {resolver_outage[0].reason}").verdict()
        extra = f"; the target also showed {_best(strong).method}" if strong else ""
        return Verdict("outage", None, "canaries_failed", "outage.canaries", 0.85, False,
                       f"all {health.total} canaries failed in the same run: the vantage's network is down{extra}")
    if health.international_shutdown and not reached:
        return Verdict("outage", None, "international_shutdown", "outage.international_shutdown", 0.85, False,
                       f"domestic canaries answered ({health.domestic_ok}/{health.domestic_total}) but no international "
                       f"canary did (0/{health.international_total}): an international shutdown, not a platform block")
    if resolver_outage and ctx.system_resolver in health.failing_resolvers and not strong \
            and any(v.resolver == ctx.system_resolver and v.status in ("timeout", "servfail") for v in ev.views.values()):
        return resolver_outage[0].verdict()

    # 3. strong / controlled evidence of blocking
    if strong:
        return _best(strong).verdict()

    # 3b. the control says the name does not exist, yet a resolver here answered: NXDOMAIN rewriting
    if ev.control is not None and ev.control.dns_says_nx() and not ev.tls_valid:
        local = [v for v in ev.views.values() if v.addrs]
        if local:
            v = local[0]
            return Verdict("down", "dns", "nxdomain", "down.nxdomain_rewritten", 0.75, False,
                           f"the control resolver says {v.name} does not exist, while {v.resolver} answered "
                           f"{', '.join(v.addrs[:3])}: a resolver rewriting NXDOMAIN to its own page; the name is gone")

    # 4. reached
    if reached:
        thr = None if health.all_failed else _throttle(ev)
        if thr is not None:
            return thr.verdict()
        decisive = [f for f in lost if f.grade in ("strong", "good")]  # weak findings never beat reaching
        if decisive:
            return _lossy_verdict(ev, decisive, reached=True)
        if ev.flaky:
            intermittent = any(x.endswith("intermittent") for x in ev.flaky)
            rule = "flaky.intermittent" if intermittent else "flaky.retry_succeeded"
            return Verdict("flaky", None, None, rule, 0.7, False,
                           f"reached, but {'a step failed after succeeding' if intermittent else 'a failed step succeeded on retry'}: "
                           + "; ".join(ev.flaky[:3]))
        return _ok_verdict(ev)

    # 5. down
    if downs:
        return _best(downs).verdict()

    # 6. evidence by elimination
    if weak:
        best = _best(weak)
        if target.is_canary:
            return Verdict("inconclusive", best.layer, best.method, "inconclusive.canary_failed", 0.3, False,
                           f"this canary failed ({best.reason}); canaries are not judged as blocked on weak evidence")
        if not health.known and ev.control is None:
            why = "no canaries were measured" + (f" and the control failed ({ev.control_failed})" if ev.control_failed else
                                                 " and there is no control")
            return Verdict("inconclusive", best.layer, best.method, "inconclusive.no_controls", 0.3, False,
                           f"{best.reason}; {why}, so an outage cannot be ruled out")
        if health.degraded:
            return Verdict("inconclusive", best.layer, best.method, "inconclusive.degraded_vantage", 0.3, False,
                           f"{best.reason}; but {health.total - health.ok}/{health.total} canaries failed too")
        return best.verdict()

    # 6b. only timeouts, on a lossy path
    if lost:
        return _lossy_verdict(ev, lost, reached=False)

    # 7. inconclusive
    if not (steps.tcp or steps.tls or steps.http) and any(v.addrs for v in ev.views.values()) and not notes:
        addrs = [ip for v in ev.views.values() for ip in v.addrs]
        inside = [ip for ip in addrs if netfacts.in_prefixes(ip, ev.expected)]
        auth = (f"; {len(inside)}/{len(addrs)} answers are inside {target.platform}'s prefixes (authentic)"
                if ev.expected else "")
        return Verdict("inconclusive", "dns", None, "inconclusive.dns_only", 0.2, False,
                       f"only DNS was measured and it answered{auth}; no connection was attempted")
    if ev.flaky and not notes:
        return Verdict("flaky", None, None, "flaky.retry_succeeded", 0.5, False,
                       "steps failed and succeeded on retry, and nothing persistent was seen: " + "; ".join(ev.flaky[:3]))
    if notes:
        n = _best(notes)
        return Verdict("inconclusive", n.layer, n.method, n.rule, n.confidence, False, n.reason)
    if ev.control_failed:
        return Verdict("inconclusive", None, None, "inconclusive.control_failed", 0.1, False,
                       f"the target was not reached and the control measurement failed ({ev.control_failed})")
    return Verdict("inconclusive", None, None, "inconclusive.unexplained", 0.0, False,
                   "the target was not reached and no rule explains why")


def _lossy_verdict(ev: _Evidence, lost: list[_Finding], reached: bool) -> Verdict:
    ctx = ev.ctx
    best = _best(lost)
    h = ctx.health
    canaries = (f"{h.timeout_attempts} canary attempt(s) timed out too" if h.timeout_attempts else
                f"{h.total - h.ok}/{h.total} canaries failed" if h.known and h.ok < h.total else "no canary went through cleanly")
    return Verdict("flaky", None, None, "flaky.lossy_path", 0.5, False,
                   f"{'reached; ' if reached else ''}the only evidence is timeouts ({best.reason}), on a path that lost "
                   f"packets in this run ({ctx.loss_events} step(s) in {ctx.loss_measurements} measurements timed out and "
                   f"then succeeded; {canaries}): random loss explains them, so they are not judged as blocking")


def _ok_verdict(ev: _Evidence) -> Verdict:
    if ev.tls_valid:
        a = ev.tls_valid[0]
        where = f" at {_ep(a.ip, a.port)}" if a.ip else ""
        return Verdict("ok", "tls", None, "ok.tls_valid", 0.95, False,
                       f"valid certificate for {a.sni}{where}: the authentic service answered")
    if ev.http_ok:
        ch = ev.http_challenge[0] if ev.http_challenge and len(ev.http_challenge) == len(ev.http_ok) else None
        if ch is not None:
            return Verdict("ok", "http", None, "ok.http_challenge", 0.7, False,
                           f"{ch[0].url} answered a {ch[1]} page: the site's own CDN protection, not a blockpage")
        a = ev.http_ok[0]
        return Verdict("ok", "http", None, "ok.http", 0.8, False,
                       f"{a.url} answered HTTP {a.status} with no blockpage fingerprint")
    return Verdict("ok", "tcp", None, "ok.tcp_endpoint", 0.6, False,
                   "the fixed endpoint(s) accepted TCP connections (no application check)")


__all__ = [
    "RULES", "CanaryHealth", "RunContext", "ControlMeasurement", "canary_health", "run_context", "address_evidence",
    "classify", "target_reached",
    "injection_evidence", "THROTTLE_MIN_BYTES", "THROTTLE_MIN_SECONDS", "THROTTLE_RATIO",
]
