"""The lab's scenario catalog: censorship (and non-censorship) situations with known ground truth.

A scenario is data:

- ``timeline``: censor actions ``(t_seconds, action, args)``; ``action`` names a method of
  :class:`tests.lab.censor.Censor` (the README lists them).
- ``runs``: when the real probe is run (seconds after t=0), and for each run the expected verdict of
  every target of ``targets.lab.yaml`` plus step-level checks. A timed scenario has several runs
  with different expectations; ``window`` says the interval the run must start and end in for its
  expectation to hold (a run that overflows its window is a lab *timing* failure, reported as such).
- ``expect``: the scenario's headline verdicts (the first run's).

Events run in time order, one at a time: an action or a run at ``t`` starts at ``t`` or when the
previous event finished, whichever is later. Timed *censorship* (unblocking windows, glitches) is a
kernel-side nft set element with a timeout, so it is exact even when a run is slow.

Expectations are ``{"status": ..., "layer": ..., "method": ...}``; a key that is absent is not
asserted, and ``status`` may be a tuple of acceptable values. Checks are tuples
``(kind, target_or_targets, *args)`` evaluated on the recorded steps by :mod:`tests.lab.checks`;
they assert what the probe must record regardless of the verdict engine's rules.

Ground-truth conventions: in single-method scenarios facebook is the censored platform and every
other platform is a control; telegram's DCs are IP endpoints; canary-int sits on the "internet" side
(behind the international gateway, the censor), canary-dom on the domestic side (the censor's own
network).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from probe.failures import (
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    GENERIC_TIMEOUT,
    SSL_INVALID_CERTIFICATE,
    SSL_UNKNOWN_AUTHORITY,
)
from tests.lab import topology as T

# name -> (platform, kind, site key). Must match targets.lab.yaml (test_catalog checks it).
TARGETS: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    "facebook-web": ("facebook", "web", "facebook"),
    "facebook-http": ("facebook", "web", "facebook"),
    "twitter-web": ("twitter", "web", "twitter"),
    "telegram-web": ("telegram", "web", "telegram"),
    "telegram-dc1": ("telegram", "endpoint", "telegram-dc"),
    "telegram-dc2": ("telegram", "endpoint", "telegram-dc"),
    "instagram-web": ("instagram", "web", "instagram"),
    "youtube-web": ("youtube", "web", "youtube"),
    "whatsapp-web": ("whatsapp", "web", "whatsapp"),
    "canary-int": ("canary", "canary", "canary-int"),
    "canary-dom": ("canary", "canary", "canary-dom"),
})
ALL = tuple(TARGETS)
CANARIES = ("canary-int", "canary-dom")
FACEBOOK = ("facebook-web", "facebook-http")
TELEGRAM_DCS = ("telegram-dc1", "telegram-dc2")

TIMEOUT = (GENERIC_TIMEOUT,)
BAD_CERT = (SSL_UNKNOWN_AUTHORITY, SSL_INVALID_CERTIFICATE)
RESET = (CONNECTION_RESET,)
REFUSED = (CONNECTION_REFUSED,)

OK: Mapping[str, Any] = MappingProxyType({"status": "ok"})


def blocked(layer: str, method: str) -> dict[str, Any]:
    return {"status": "blocked", "layer": layer, "method": method}


def expect(default: Mapping[str, Any] = OK, **by_target: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """Expected verdict for every lab target: ``default`` unless given (use _ for - in names)."""
    given = {k.replace("_", "-"): v for k, v in by_target.items()}
    unknown = set(given) - set(TARGETS)
    if unknown:
        raise KeyError(f"unknown lab targets: {sorted(unknown)}")
    return MappingProxyType({t: MappingProxyType(dict(given.get(t, default))) for t in TARGETS})


def others(*excluded: str) -> tuple[str, ...]:
    return tuple(t for t in TARGETS if t not in excluded)


def reached_except(*excluded: str) -> tuple[tuple, ...]:
    """Every target not excluded reaches its authentic server (the controls of the scenario)."""
    return (("reached", others(*excluded)),)


@dataclass(frozen=True)
class Run:
    at: float
    expect: Mapping[str, Mapping[str, Any]]  # with the outside control (the test helper)
    checks: tuple[tuple, ...] = ()
    window: tuple[float, float] | None = None
    label: str = ""
    # Without the outside control (None: the same as ``expect``). A censored case and its innocent
    # twin look alike from one vantage: without the control the twin must never be blocked nor
    # confirmed, and the censored case may only be as sure as its own evidence allows.
    expect_without_control: Mapping[str, Mapping[str, Any]] | None = None

    def expected(self, control: bool) -> Mapping[str, Mapping[str, Any]]:
        if control or self.expect_without_control is None:
            return self.expect
        return self.expect_without_control


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    timeline: tuple[tuple[float, str, Mapping[str, Any]], ...]
    runs: tuple[Run, ...]
    probe_args: tuple[str, ...] = ()  # appended to the default lab probe arguments
    tags: tuple[str, ...] = field(default=())

    @property
    def expect(self) -> Mapping[str, Mapping[str, Any]]:
        return self.runs[0].expect

    @property
    def timed(self) -> bool:
        return len(self.runs) > 1 or any(t > 0 for t, _, _ in self.timeline)

    @property
    def duration(self) -> float:
        return max([r.at for r in self.runs] + [t for t, _, _ in self.timeline])


def single(name: str, description: str, actions: list[tuple[str, dict]], exp, checks=(), probe_args=(),
           tags=(), without_control=None) -> Scenario:
    """A one-run scenario: every action at t=0, one probe run."""
    return Scenario(name, description, tuple((0.0, a, MappingProxyType(args)) for a, args in actions),
                    (Run(0.0, exp, tuple(checks), expect_without_control=without_control),), tuple(probe_args),
                    tuple(tags))


def _tl(*events: tuple[float, str, dict]) -> tuple:
    return tuple((float(t), a, MappingProxyType(args)) for t, a, args in events)


# An innocent twin (the site itself dead, slow, misconfigured, gone): never blocked, never
# confirmed, with or without the outside control.
TWIN: Mapping[str, Any] = MappingProxyType({"status": ("down", "inconclusive"), "confirmed": False})
# A censored case whose twin looks the same from the vantage alone: without the control it may be
# called blocked only on its own evidence (a censor's TTL, a shaped handshake), else inconclusive.
UNSURE: Mapping[str, Any] = MappingProxyType({"status": ("blocked", "inconclusive")})


def twin(**fields: Any) -> dict[str, Any]:
    return {**TWIN, **fields}


FB = {"sites": ["facebook"]}
FB_BLOCKED_CHECKS = reached_except(*FACEBOOK) + (("not_reached", FACEBOOK),)
FB_BLACKHOLED = expect(facebook_web=blocked("tcp", "ip_blackhole"), facebook_http=blocked("tcp", "ip_blackhole"))
TELEGRAM = ("telegram-web", *TELEGRAM_DCS)
TG = {"sites": ["telegram", "telegram-dc"]}
TG_BLACKHOLED = expect(**{t.replace("-", "_"): blocked("tcp", "ip_blackhole") for t in TELEGRAM})
TG_BLOCKED_CHECKS = reached_except(*TELEGRAM) + (("not_reached", TELEGRAM), ("tcp_failure", TELEGRAM, TIMEOUT))

# ---------------------------------------------------------------------------------------------

CATALOG: tuple[Scenario, ...] = (
    single(
        "control",
        "No censorship: every platform, both Telegram DCs and both canaries are reached; DNS answers "
        "are the lab's real addresses.",
        [("nothing", {})],
        expect(),
        checks=(("reached", ALL), ("dns_authentic", others(*TELEGRAM_DCS)), ("tcp_ok", TELEGRAM_DCS)),
    ),
    single(
        "dns_hijack",
        "Iran's DNS hijack: every DNS query is DNATed to a lying resolver that answers 10.10.34.34 for "
        "facebook's names; the GET then lands on the blockpage server (Iran's national blockpage).",
        [("dns_hijack", FB)],
        expect(facebook_web=blocked("dns", "blockpage_ip"), facebook_http=blocked("dns", "blockpage_ip")),
        checks=FB_BLOCKED_CHECKS + (("dns_answer", FACEBOOK, T.BLOCKPAGE_IP), ("http_blockpage", "facebook-http")),
    ),
    single(
        "nxdomain",
        "The vantage's resolver lies NXDOMAIN for facebook's names (queries to it are DNATed to a "
        "lying dnsmasq); the names exist: the public resolver (198.18.8.8, asked with --resolver) "
        "answers them, and facebook is reachable at that address.",
        [("dns_nxdomain", {"sites": ["facebook"], "intercept": "system"})],
        expect(facebook_web=blocked("dns", "nxdomain"), facebook_http=blocked("dns", "nxdomain")),
        checks=reached_except() + (("dns_nxdomain", FACEBOOK, "system"),
                                   ("dns_authentic", FACEBOOK, T.PUBLIC_RESOLVER_IP)),
    ),
    single(
        "bogon",
        "The lying resolver answers a bogon address (127.0.0.2) for facebook's names.",
        [("dns_bogon", {"sites": ["facebook"], "answer": T.BOGON_IP})],
        expect(facebook_web=blocked("dns", "bogon"), facebook_http=blocked("dns", "bogon")),
        checks=FB_BLOCKED_CHECKS + (("dns_answer", FACEBOOK, T.BOGON_IP),),
    ),
    single(
        "dns_injection",
        "On-path injection: a scapy injector on the censor forges an A answer (10.10.34.36) for "
        "facebook's names the moment the query passes; the real answer from the (slow, 300 ms) "
        "resolver arrives later. The system lookup takes the forged one; a raw query sees both.",
        [("dns_inject", {"sites": ["facebook"], "answer": T.INJECTED_IP, "delay": 0.3})],
        expect(facebook_web=blocked("dns", "injected"), facebook_http=blocked("dns", "injected")),
        checks=FB_BLOCKED_CHECKS + (("dns_answer", FACEBOOK, T.INJECTED_IP), ("inject_seen", FACEBOOK)),
    ),
    single(
        "ip_blackhole",
        "Facebook's IP is blackholed (every packet silently dropped): connects time out. Twin: "
        "dead_host.",
        [("ip_blackhole", FB)],
        FB_BLACKHOLED,
        checks=FB_BLOCKED_CHECKS + (("dns_authentic", FACEBOOK), ("tcp_failure", FACEBOOK, TIMEOUT)),
        without_control=expect(facebook_web=UNSURE, facebook_http=UNSURE),
    ),
    single(
        "tcp_rst",
        "IP-based RST injection: the handshake completes, then every data segment to facebook's IP "
        "is answered with a TCP RST by the censor, whatever the SNI (the harmless-SNI control is reset "
        "too, unlike SNI filtering).",
        [("tcp_rst", FB)],
        expect(facebook_web=blocked("tcp", "rst"), facebook_http=blocked("tcp", "rst")),
        checks=FB_BLOCKED_CHECKS + (("tcp_ok", FACEBOOK), ("tls_failure", "facebook-web", RESET),
                                    ("tls_control_failure", "facebook-web", RESET),
                                    ("http_failure", "facebook-http", RESET)),
    ),
    single(
        "sni_rst",
        "SNI filtering: `-m string` on 'facebook.lab' in the ClientHello, answered with a RST; the "
        "same IP completes a handshake for a harmless SNI; plain HTTP to facebook is untouched.",
        [("sni_block", {"patterns": ["facebook.lab"], "mode": "rst"})],
        expect(facebook_web=blocked("tls", "sni_rst")),
        checks=reached_except("facebook-web") + (("not_reached", "facebook-web"), ("tcp_ok", "facebook-web"),
                                                 ("tls_failure", "facebook-web", RESET),
                                                 ("tls_control_ok", "facebook-web")),
    ),
    single(
        "sni_drop",
        "SNI filtering by silent drop: the ClientHello naming facebook.lab (and its retransmissions) "
        "is dropped, so the handshake times out; the harmless SNI completes.",
        [("sni_block", {"patterns": ["facebook.lab"], "mode": "drop"})],
        expect(facebook_web=blocked("tls", "sni_timeout")),
        checks=reached_except("facebook-web") + (("not_reached", "facebook-web"), ("tcp_ok", "facebook-web"),
                                                 ("tls_failure", "facebook-web", TIMEOUT),
                                                 ("tls_control_ok", "facebook-web")),
    ),
    single(
        "http_host_rst",
        "HTTP Host filtering: `-m string` on 'Host: www.facebook.lab' in plain HTTP, answered with a "
        "RST; HTTPS to the same IP works.",
        [("http_host_block", {"hosts": ["www.facebook.lab"], "mode": "rst"})],
        expect(facebook_http=blocked("http", "http_rst")),
        checks=reached_except("facebook-http") + (("not_reached", "facebook-http"), ("tcp_ok", "facebook-http"),
                                                  ("http_failure", "facebook-http", RESET),
                                                  ("http_control_ok", "facebook-http")),
    ),
    single(
        "http_blockpage_ir",
        "HTTP blockpage: tcp/80 to facebook's IP is DNATed to the blockpage server, which serves Iran's "
        "national blockpage (403, iframe to 10.10.34.34); DNS and HTTPS are untouched.",
        [("http_blockpage", FB)],
        expect(facebook_http=blocked("http", "blockpage")),
        checks=reached_except("facebook-http") + (("not_reached", "facebook-http"), ("dns_authentic", FACEBOOK),
                                                  ("http_blockpage", "facebook-http")),
    ),
    single(
        "throttling",
        "Bandwidth throttling: every site serves a realistic 192 KiB home page, and tc htb shapes traffic "
        "from facebook's IP to 512 kbit/s (the kernel has no netem): facebook's page takes about 3 s, the "
        "other sites' a few milliseconds.",
        [("pages", {"size": T.BIG_PAGE_BYTES}), ("throttle", {"sites": ["facebook"], "rate": "512kbit"})],
        expect(facebook_web=blocked("http", "throttled"), facebook_http=blocked("http", "throttled")),
        checks=(("reached", ALL), ("shaped", FACEBOOK, "512kbit", T.BIG_PAGE_BYTES),
                ("page_size", others(*FACEBOOK, *TELEGRAM_DCS), T.BIG_PAGE_BYTES)),
        probe_args=("--timeout", "8"),
    ),
    single(
        "site_down",
        "Facebook's own web server is stopped (no censorship): its IP answers every connect with a "
        "RST from the host, on the internet side (TTL 55 on arrival, like every packet of the "
        "server). Twin of syn_rst.",
        [("site_down", FB)],
        expect(facebook_web=twin(status="down", layer="tcp"), facebook_http=twin(status="down", layer="tcp")),
        checks=FB_BLOCKED_CHECKS + (("dns_authentic", FACEBOOK), ("tcp_failure", FACEBOOK, REFUSED)),
        without_control=expect(facebook_web=TWIN, facebook_http=TWIN),
    ),
    single(
        "name_gone",
        "Facebook's names are removed from the real resolvers (no censorship): a genuine NXDOMAIN "
        "from the vantage's resolver and from the public one alike (what tells it from the nxdomain "
        "scenario). Twin of nxdomain_all.",
        [("name_gone", FB)],
        expect(facebook_web=twin(status="down", layer="dns"), facebook_http=twin(status="down", layer="dns")),
        checks=FB_BLOCKED_CHECKS + (("dns_nxdomain", FACEBOOK),),
        without_control=expect(facebook_web=twin(layer="dns"), facebook_http=twin(layer="dns")),
    ),
    Scenario(
        "vantage_outage",
        "The vantage's uplink dies (the censor-side end of the vantage link goes down): everything, "
        "canaries included, times out; a second run after the link is back finds everything ok.",
        _tl((0, "vantage_link_down", {}), (25, "vantage_link_up", {})),
        (
            Run(0.0, expect({"status": "outage"}), (("not_reached", ALL), ("dns_failed", others(*TELEGRAM_DCS))),
                window=(0, 25), label="link down"),
            Run(25.5, expect(), (("reached", ALL),), window=(25, 1e9), label="link up again"),
        ),
        tags=("timed",),
    ),
    single(
        "resolver_down",
        "The vantage's resolver is stopped: every lookup fails, canaries included (an outage of the "
        "vantage, not censorship); Telegram's DCs, IP endpoints, are still reached.",
        [("resolver_down", {})],
        expect({"status": "outage"}, telegram_dc1=OK, telegram_dc2=OK),
        checks=(("dns_failed", others(*TELEGRAM_DCS)), ("not_reached", others(*TELEGRAM_DCS)),
                ("reached", TELEGRAM_DCS)),
    ),
    single(
        "flaky_loss",
        "30 % of packets dropped at random on the vantage link in both directions, no censorship: "
        "every failure is a timeout that retries get past; no target may be called blocked.",
        [("loss", {"probability": 0.3})],
        expect({"status": ("ok", "flaky")}),
        checks=(("no_censorship_signals", ALL), ("reached_most", ALL, 0.6)),
        probe_args=("--timeout", "2", "--retries", "3"),
    ),
    Scenario(
        "glitch",
        "Facebook is blackholed and the block is lifted for 10 s in the middle (an nft set element "
        "with a 10 s timeout, removed by the kernel): the run inside the gap reaches facebook, the "
        "runs before and after are blocked. A single-measurement blip, not an unblocking window.",
        _tl((0, "ip_blackhole", FB), (15, "open_window", {"sites": ["facebook"], "seconds": 10})),
        (
            Run(0.0, FB_BLACKHOLED, FB_BLOCKED_CHECKS + (("tcp_failure", FACEBOOK, TIMEOUT),),
                window=(0, 15), label="blocked"),
            Run(15.3, expect(), (("reached", ALL),), window=(15, 25), label="lifted"),
            Run(25.5, FB_BLACKHOLED, FB_BLOCKED_CHECKS + (("tcp_failure", FACEBOOK, TIMEOUT),),
                window=(25, 1e9), label="blocked again"),
        ),
        tags=("timed",),
    ),
    Scenario(
        "unblocking_window",
        "Telegram (web and both DCs) is blackholed, opens for 20 s (an nft set element with a 20 s "
        "timeout: the kernel closes the window, not the test) and is blocked again; the probe runs "
        "repeatedly: blocked, open x3, blocked.",
        _tl((0, "ip_blackhole", TG), (15, "open_window", {**TG, "seconds": 20})),
        (
            Run(0.0, TG_BLACKHOLED, TG_BLOCKED_CHECKS, window=(0, 15), label="blocked"),
            Run(15.3, expect(), (("reached", ALL),), window=(15, 35), label="open 1"),
            Run(21.8, expect(), (("reached", ALL),), window=(15, 35), label="open 2"),
            Run(28.3, expect(), (("reached", ALL),), window=(15, 35), label="open 3"),
            Run(35.5, TG_BLACKHOLED, TG_BLOCKED_CHECKS, window=(35, 1e9), label="closed"),
        ),
        tags=("timed",),
    ),
    single(
        "mixed_iran",
        "Iran's configuration: facebook and twitter DNS-hijacked to 10.10.34.34, Telegram's DC IPs "
        "blackholed, instagram (and the rest) open.",
        [("dns_hijack", {"sites": ["facebook", "twitter"]}), ("ip_blackhole", {"sites": ["telegram-dc"]})],
        expect(facebook_web=blocked("dns", "blockpage_ip"), facebook_http=blocked("dns", "blockpage_ip"),
               twitter_web=blocked("dns", "blockpage_ip"),
               telegram_dc1=blocked("tcp", "ip_blackhole"), telegram_dc2=blocked("tcp", "ip_blackhole")),
        checks=reached_except(*FACEBOOK, "twitter-web", *TELEGRAM_DCS)
        + (("not_reached", (*FACEBOOK, "twitter-web", *TELEGRAM_DCS)),
           ("dns_answer", (*FACEBOOK, "twitter-web"), T.BLOCKPAGE_IP), ("http_blockpage", "facebook-http"),
           ("tcp_failure", TELEGRAM_DCS, TIMEOUT), ("dns_authentic", "instagram-web")),
    ),
    # -- beyond the 20 of issue #3 ---------------------------------------------------------------
    single(
        "international_shutdown",
        "International shutdown (Iran, November 2019): nothing crosses the international gateway "
        "except DNS to the national resolver; the domestic canary is reached, the international one "
        "and every platform time out.",
        [("intl_shutdown", {})],
        expect({"status": "outage", "method": "international_shutdown"}, canary_dom=OK),
        checks=(("reached", "canary-dom"), ("not_reached", others("canary-dom")),
                ("tcp_failure", others("canary-dom"), TIMEOUT)),
    ),
    single(
        "glitch_retry",
        "A one-off glitch: only the first TLS ClientHello to facebook is reset (an nft set element "
        "that deletes itself on first match); the retry succeeds. Not blocking: flaky.",
        [("rst_once", {"sites": ["facebook"], "port": 443})],
        expect(facebook_web={"status": "flaky"}),
        checks=(("reached", ALL), ("failed_then_ok", "facebook-web", RESET)),
    ),
)

# -- censored cases and their innocent twins (issue #11) -----------------------------------------
# Each pair looks alike from the vantage; the outside control (the test helper on the internet
# side, which resolves with the real resolver and never crosses the censor) tells them apart.

# OONI's fingerprints for the blockpage pair. The DNS injection check has nothing to find there and
# is off: its first use imports scapy on the probe's event loop, and that stall plus the first
# compile of OONI's 1,300 body patterns times out every in-flight DNS query on a loaded machine
# (the controls then turn flaky; a probe issue, reported).
FINGERPRINTS_ARGS = ("--fingerprints", str(T.fingerprints_dir()), "--no-inject-check")
THROTTLE_RATE_BPS = 8000  # sni_throttle: 64 kbit/s
THROTTLE_FREE_BYTES = 8192  # htb burst + cburst (4k each): what may pass before the rate bites
TRICKLE_CHUNK, TRICKLE_INTERVAL = 1024, 0.1  # slow_server: 1 KiB every 100 ms = 10240 B/s
REDIRECT = ("site_redirect", {"sites": ["instagram"], "to": "https://www.facebook.lab/"})
REDIRECT_CHECKS = reached_except(*FACEBOOK, "instagram-web") + (
    ("not_reached", FACEBOOK), ("tls_valid", "instagram-web"),
    ("http_redirect_failed", "instagram-web", TIMEOUT), ("tcp_failure", FACEBOOK, TIMEOUT))

TWIN_SCENARIOS: tuple[Scenario, ...] = (
    single(
        "dead_host",
        "Facebook's host vanishes (no censorship): every packet to its IP is dropped on the internet "
        "side (nft set in the internet namespace), for the vantage and the outside control alike. "
        "Twin of ip_blackhole: the same timeouts from the vantage.",
        [("host_dead", FB)],
        expect(facebook_web=TWIN, facebook_http=TWIN),
        checks=FB_BLOCKED_CHECKS + (("dns_authentic", FACEBOOK), ("tcp_failure", FACEBOOK, TIMEOUT)),
    ),
    single(
        "syn_rst",
        "The censor answers every SYN to facebook's IP with a RST (nft reject with tcp reset, the "
        "server's address spoofed), one hop from the vantage (TTL 64 on arrival) while the server "
        "is several hops away (TTL 55): the connect is refused. Twin: site_down.",
        [("syn_rst", FB)],
        expect(facebook_web=blocked("tcp", "rst"), facebook_http=blocked("tcp", "rst")),
        checks=FB_BLOCKED_CHECKS + (("dns_authentic", FACEBOOK), ("tcp_failure", FACEBOOK, REFUSED + RESET)),
        without_control=expect(facebook_web=UNSURE, facebook_http=UNSURE),
    ),
    single(
        "nxdomain_all",
        "Every port-53 query from the vantage, to any resolver (the 'public' one included), is "
        "DNATed to the censor's liar, which answers NXDOMAIN for facebook's names (Iran). Twin: "
        "name_gone; only the outside control, resolving with the real resolver, tells them apart.",
        [("dns_nxdomain", {"sites": ["facebook"], "intercept": "all"})],
        expect(facebook_web=blocked("dns", "nxdomain"), facebook_http=blocked("dns", "nxdomain")),
        checks=FB_BLOCKED_CHECKS + (("dns_nxdomain", FACEBOOK), ("dns_nxdomain", FACEBOOK, T.PUBLIC_RESOLVER_IP)),
        without_control=expect(facebook_web={"status": ("down", "inconclusive"), "layer": "dns"},
                               facebook_http={"status": ("down", "inconclusive"), "layer": "dns"}),
    ),
    single(
        "dns_drop",
        "DNS blocking by silence: the censor drops every port-53 query naming facebook's names (udp "
        "and tcp, to any resolver, the 'public' one included); the same resolvers answer every other "
        "name. Twin: dead_nameserver; only the outside control, which resolves the names, tells them "
        "apart.",
        [("dns_drop", FB)],
        expect(facebook_web=blocked("dns", "timeout"), facebook_http=blocked("dns", "timeout")),
        checks=FB_BLOCKED_CHECKS + (("dns_failed", FACEBOOK), ("dns_failed", FACEBOOK, T.PUBLIC_RESOLVER_IP)),
        # A timeout is elimination: without the control it is never more than inconclusive.
        without_control=expect(facebook_web={"status": "inconclusive", "layer": "dns"},
                               facebook_http={"status": "inconclusive", "layer": "dns"}),
    ),
    single(
        "forged_cert",
        "TLS interception: the censor DNATs tcp/443 of facebook's IP to its own TLS server, which "
        "presents a certificate for facebook's names issued by 'ISP Security Gateway CA' (not "
        "trusted by the vantage). Plain HTTP is untouched. Twin: self_signed_cert.",
        [("tls_mitm", FB)],
        expect(facebook_web=blocked("tls", "invalid_cert")),
        checks=reached_except("facebook-web") + (
            ("not_reached", "facebook-web"), ("tcp_ok", "facebook-web"),
            ("tls_failure", "facebook-web", (SSL_UNKNOWN_AUTHORITY,)),
            ("tls_issuer", "facebook-web", "ISP Security Gateway")),
        without_control=expect(facebook_web={"status": ("blocked", "inconclusive"), "layer": "tls"}),
    ),
    single(
        "self_signed_cert",
        "Facebook's own server is misconfigured (no censorship): it presents a self-signed "
        "certificate for its names, to the vantage and the outside control alike. Twin of forged_cert.",
        [("site_cert", {"sites": ["facebook"], "cert": "selfsigned"})],
        expect(facebook_web=TWIN),
        checks=reached_except("facebook-web") + (
            ("not_reached", "facebook-web"), ("tcp_ok", "facebook-web"),
            ("tls_failure", "facebook-web", BAD_CERT), ("tls_issuer", "facebook-web", "www.facebook.lab")),
    ),
    single(
        "midbody_rst",
        "The censor resets facebook's connections mid-body: once the server has sent 4000 bytes on a "
        "connection (-m connbytes), the vantage's next segment is answered with a RST from the "
        "censor (TTL 64, the server's packets arrive with 55). The 200 and the first bytes arrive, "
        "the page never completes. Twin: server_crash.",
        [("midbody_rst", {"sites": ["facebook"], "after": 4000})],
        expect(facebook_web={"status": "blocked", "layer": "http"}, facebook_http={"status": "blocked", "layer": "http"}),
        checks=reached_except(*FACEBOOK) + (("tcp_ok", FACEBOOK), ("tls_valid", "facebook-web"),
                                            ("http_cut", FACEBOOK, RESET)),
        without_control=expect(facebook_web=UNSURE, facebook_http=UNSURE),
    ),
    single(
        "server_crash",
        "Facebook's server crashes mid-response (no censorship): it answers 200, sends 4096 body "
        "bytes and dies with a RST of its own (SO_LINGER 0), to everyone. Twin of midbody_rst.",
        [("site_crash", {"sites": ["facebook"], "after": 4096})],
        expect(facebook_web=TWIN, facebook_http=TWIN),
        checks=reached_except(*FACEBOOK) + (("tcp_ok", FACEBOOK), ("tls_valid", "facebook-web"),
                                            ("http_cut", FACEBOOK, RESET)),
    ),
    single(
        "server_resets",
        "Facebook's own server resets every connection at its first data segment (no censorship): "
        "the handshake completes, then the ClientHello (any SNI) or the GET is answered with the "
        "host's own RST (TTL 55), for the vantage and the outside control alike. Twin of tcp_rst.",
        [("site_reset", FB)],
        expect(facebook_web=TWIN, facebook_http=TWIN),
        checks=FB_BLOCKED_CHECKS + (("dns_authentic", FACEBOOK), ("tcp_ok", FACEBOOK),
                                    ("tls_failure", "facebook-web", RESET),
                                    ("tls_control_failure", "facebook-web", RESET),
                                    ("http_failure", "facebook-http", RESET)),
    ),
    single(
        "sni_throttle",
        "SNI-keyed throttling: the ClientHello naming facebook.lab marks its connection (CONNMARK) "
        "and tc htb shapes the server's packets of marked connections to 64 kbit/s; the harmless "
        "SNI and plain HTTP to the same IP run at full speed. Twin: slow_server.",
        [("sni_throttle", {"patterns": ["facebook.lab"], "rate": "64kbit"})],
        expect(facebook_web=blocked("http", "throttled")),
        checks=(("reached", ALL), ("min_fetch_time", "facebook-web", THROTTLE_RATE_BPS, THROTTLE_FREE_BYTES)),
        probe_args=("--timeout", "4"),
        without_control=expect(facebook_web=UNSURE),
    ),
    single(
        "slow_server",
        "Facebook's server is slow by itself (no censorship): it trickles the page, 1 KiB every "
        "100 ms, over an unshaped network, to everyone. Twin of sni_throttle.",
        [("site_trickle", {"sites": ["facebook"], "chunk": TRICKLE_CHUNK, "interval": TRICKLE_INTERVAL})],
        expect(facebook_web=twin(status=("ok", "inconclusive")), facebook_http=twin(status=("ok", "inconclusive"))),
        checks=(("reached", ALL), ("min_fetch_time", FACEBOOK, TRICKLE_CHUNK / TRICKLE_INTERVAL, TRICKLE_CHUNK)),
        probe_args=("--timeout", "4"),
    ),
    single(
        "redirect_blocked",
        "Instagram redirects (302) to https://www.facebook.lab/ and the censor blackholes facebook's "
        "IP: instagram's own server answers, the hop into facebook times out. Twin: redirect_dead.",
        [REDIRECT, ("ip_blackhole", FB)],
        expect(instagram_web={"status": "blocked"}, facebook_web=blocked("tcp", "ip_blackhole"),
               facebook_http=blocked("tcp", "ip_blackhole")),
        checks=REDIRECT_CHECKS,
        without_control=expect(instagram_web=UNSURE, facebook_web=UNSURE, facebook_http=UNSURE),
    ),
    single(
        "redirect_dead",
        "Instagram redirects (302) to https://www.facebook.lab/, whose host is dead (dropped on the "
        "internet side, no censorship). Twin of redirect_blocked.",
        [REDIRECT, ("host_dead", FB)],
        expect(instagram_web=TWIN, facebook_web=TWIN, facebook_http=TWIN),
        checks=REDIRECT_CHECKS,
    ),
    single(
        "blockpage_foreign",
        "Another country's blockpage: tcp/80 to facebook's IP is DNATed to a server on the censor "
        "serving a real Russian ISP's blockpage (Citizen Lab's isp_ru_akado_block.html, read from "
        "../shared at run time) with 200. The probe gets OONI's fingerprints (and no DNS injection "
        "check). Twin: site_403.",
        [("foreign_blockpage", FB)],
        expect(facebook_http={**blocked("http", "blockpage"), "confirmed": True}),
        checks=reached_except("facebook-http") + (
            ("not_reached", "facebook-http"), ("dns_authentic", FACEBOOK),
            ("http_fingerprint", "facebook-http", "akado"), ("http_blockpage", "facebook-http")),
        probe_args=FINGERPRINTS_ARGS,
    ),
    single(
        "site_403",
        "Facebook's own server answers every request with 403 and its own 'Access denied' page "
        "(no censorship), over HTTP and HTTPS (valid certificate). The probe gets OONI's "
        "fingerprints, as in blockpage_foreign. Twin of blockpage_foreign.",
        [("site_forbidden", FB)],
        expect(facebook_web=TWIN, facebook_http=TWIN),
        checks=reached_except(*FACEBOOK) + (("dns_authentic", FACEBOOK), ("tls_valid", "facebook-web"),
                                            ("http_status", FACEBOOK, 403, "Access denied")),
        probe_args=FINGERPRINTS_ARGS,
        # Alone, the vantage sees the authentic site answer 403: reached (ok); with the control's own 403
        # it is the site's refusal (down). Never blocked, never confirmed.
        without_control=expect(facebook_web=twin(status=("ok", "down", "inconclusive")),
                               facebook_http=twin(status=("ok", "down", "inconclusive"))),
    ),
    single(
        "dead_nameserver",
        "Facebook's authoritative name server falls silent (no censorship): the real resolver "
        "forwards facebook's names to a server that never answers, so lookups time out for the "
        "vantage and the outside control alike, while every other name is answered. Twin of dns_drop.",
        [("name_silent", FB)],
        expect(facebook_web=twin(layer="dns"), facebook_http=twin(layer="dns")),
        checks=FB_BLOCKED_CHECKS + (("dns_failed", FACEBOOK), ("dns_failed", FACEBOOK, T.PUBLIC_RESOLVER_IP)),
        without_control=expect(facebook_web=twin(layer="dns"), facebook_http=twin(layer="dns")),
    ),
)
CATALOG = CATALOG + TWIN_SCENARIOS

# censored case -> its innocent twin
TWINS: Mapping[str, str] = MappingProxyType({
    "ip_blackhole": "dead_host",
    "syn_rst": "site_down",
    "nxdomain_all": "name_gone",
    "dns_drop": "dead_nameserver",
    "forged_cert": "self_signed_cert",
    "midbody_rst": "server_crash",
    "tcp_rst": "server_resets",
    "sni_throttle": "slow_server",
    "redirect_blocked": "redirect_dead",
    "blockpage_foreign": "site_403",
})

BY_NAME: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in CATALOG})
assert len(BY_NAME) == len(CATALOG), "duplicate scenario names"
