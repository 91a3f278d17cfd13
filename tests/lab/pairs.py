"""Censored cases beside their innocent twins (issue #11): each pair looks the same from the vantage alone,
and only the outside control tells them apart. ``TWINS`` maps each censored case to its twin."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from probe.failures import (
    SSL_UNKNOWN_AUTHORITY,
)
from tests.lab import topology as T
from tests.lab.scenario_model import (
    ALL,
    BAD_CERT,
    FACEBOOK,
    FB,
    FB_BLOCKED_CHECKS,
    REFUSED,
    RESET,
    TIMEOUT,
    TWIN,
    UNSURE,
    Scenario,
    blocked,
    expect,
    reached_except,
    single,
    twin,
)

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
