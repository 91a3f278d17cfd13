"""The lab's scenario catalog: every scenario with its ground truth (the data model is in
:mod:`tests.lab.scenario_model`, the censored/innocent pairs in :mod:`tests.lab.pairs`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tests.lab import topology as T
from tests.lab.pairs import TWIN_SCENARIOS, TWINS
from tests.lab.scenario_model import (
    ALL,
    FACEBOOK,
    FB,
    FB_BLACKHOLED,
    FB_BLOCKED_CHECKS,
    OK,
    REFUSED,
    RESET,
    TARGETS,
    TELEGRAM_DCS,
    TG,
    TG_BLACKHOLED,
    TG_BLOCKED_CHECKS,
    TIMEOUT,
    TWIN,
    UNSURE,
    Run,
    Scenario,
    _tl,
    blocked,
    expect,
    others,
    reached_except,
    single,
    twin,
)

# What the lab's tests and hand tool import from here.
__all__ = ["BY_NAME", "CATALOG", "OK", "TARGETS", "TWINS", "Run", "Scenario"]

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
CATALOG = CATALOG + TWIN_SCENARIOS

BY_NAME: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in CATALOG})
assert len(BY_NAME) == len(CATALOG), "duplicate scenario names"
