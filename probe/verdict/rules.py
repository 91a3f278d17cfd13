"""The rule table: every verdict names one of these rules (``Verdict.rule``), and this table is the source.

Findings and verdicts are built from a row (``finding(RULES["dns.bogon"], confidence, reason)``), so a
rule's status, layer and method are written once, here. docs/verdicts.md's table is generated from it
(``python -m probe.verdict.doc``). An id never changes meaning; a new meaning gets a new id. Each id is
written as a literal in exactly one emitting module, so ``grep -rn '"dns.timeout"' probe/`` finds the
row and the code that emits it.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.vocab import Layer, Status

OK, BLOCKED, DOWN, OUTAGE, FLAKY, INCONCLUSIVE = Status
DNS, TCP, TLS, HTTP = Layer

# How much a finding weighs in the decision (probe.verdict.decide), strongest first.
GRADES = ("strong", "good", "weak", "down", "note", "outage")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    status: Status
    # None: no layer, or (for rules whose method is None too) the layer of the evidence behind the verdict.
    layer: Layer | None
    method: str | None
    # The most the rule can set: only an unambiguous signature is confirmed; elimination never is.
    confirmed: bool
    # "strong/good": the evidence at hand says which; "": a decision, not a finding.
    grade: str
    meaning: str
    # Without the outside control (a test helper's measurement from elsewhere) this rule cannot tell the
    # censored case from its innocent twin: its evidence is by elimination, or it fires only with the
    # control. Documentation for now; the verdicts do not read it.
    needs_control: bool = False

    @property
    def grades(self) -> tuple[str, ...]:
        return tuple(g for g in self.grade.split("/") if g)


def _table(*rules: Rule) -> dict[str, Rule]:
    table: dict[str, Rule] = {}
    for r in rules:
        if r.id in table:
            raise ValueError(f"rule {r.id} listed twice")
        if not set(r.grades) <= set(GRADES):
            raise ValueError(f"rule {r.id}: unknown grade {r.grade!r}")
        table[r.id] = r
    return table


# One row per rule, laid out by hand so the table reads as a table: id, status, layer, method, confirmed,
# grade, then the meaning (and needs_control where it holds).
# fmt: off
RULES: dict[str, Rule] = _table(
    Rule("ok.tls_valid", OK, TLS, None, False, "",
        "a non-control TLS handshake validated the certificate for the name: the authentic service (a censor "
        "cannot present it)"),
    Rule("ok.http", OK, HTTP, None, False, "",
        "an HTTP answer (any status, including a site's own broken redirect) with no blockpage fingerprint"),
    Rule("ok.http_challenge", OK, HTTP, None, False, "",
        "the answer is a CDN challenge/captcha (Cloudflare \"Just a moment\", `cf-mitigated: challenge`, ...): the "
        "site's own protection, **not** a blockpage"),
    Rule("ok.tcp_endpoint", OK, TCP, None, False, "",
        "only TCP was measured (Telegram DCs, OONI's Messenger test): a fixed endpoint or an address inside the "
        "platform's prefixes accepted the connection"),
    Rule("flaky.retry_succeeded", FLAKY, None, None, False, "",
        "reached, but some step failed and then succeeded on retry: a glitch"),
    Rule("flaky.intermittent", FLAKY, None, None, False, "",
        "reached, but a step failed after having succeeded (OONI data has no retry order)"),
    Rule("flaky.lossy_path", FLAKY, None, None, False, "",
        "the only evidence against the target is timeouts (`dns.timeout`, `tcp.ip_blackhole` from timeouts, "
        "`tls.sni_timeout`, `tls.timeout`, `http.timeout`, or a timeout note), on a path that lost packets in the "
        "same run (`RunContext.lossy`) while the canaries did not go through cleanly: random loss, not blocking "
        "(see Path loss)"),
    Rule("dns.injected", BLOCKED, DNS, "injected", True, "strong",
        "the injection check saw ≥2 different responses to one query, or a response from an address other than "
        "the resolver asked"),
    Rule("dns.blockpage_ip", BLOCKED, DNS, "blockpage_ip", True, "strong",
        "an answer is a fingerprinted blockpage address (Iran 10.10.34.34–36, d0::11; OONI's DNS list)"),
    Rule("dns.bogon", BLOCKED, DNS, "bogon", True, "strong/good",
        "a special-purpose answer. A *sinkhole* (0.0.0.0/8, 127/8, ::, ::1) is always confirmed, even when every "
        "resolver gives it (a censor intercepting all DNS), except published records (`uptime.signal.org` → "
        "127.0.0.1, `netfacts.LEGIT_SPECIAL_ANSWERS`). Other special ranges (RFC 1918, CGNAT, benchmarking, ...): "
        "confirmed when another resolver/the control answers a public address, unconfirmed with a single "
        "resolver, skipped when every resolver agrees (split horizon) or when canaries are reached at special "
        "addresses (a lab, `RunContext.bogon_exempt`)"),
    Rule("dns.nxdomain", BLOCKED, DNS, "nxdomain", False, "good",
        "NXDOMAIN from one resolver while another resolver, or the control resolving that same name, returns "
        "addresses; or for two or more names the targets file lists while the same resolver answered the target's "
        "other names (a platform may retire one name under a stale list, not several at once)"),
    Rule("dns.no_answer", BLOCKED, DNS, "no_answer", False, "good",
        "no address (NOERROR/NODATA) from one resolver while another answers"),
    Rule("dns.servfail", BLOCKED, DNS, "servfail", False, "good",
        "SERVFAIL/REFUSED for the target from a resolver that answered the canaries, while another resolver "
        "answers"),
    Rule("dns.timeout", BLOCKED, DNS, "timeout", False, "good/weak",
        "a resolver that answered the canaries stays silent for the target on every attempt, another resolver "
        "answers, and the target is not reached; good when the control resolved the name too, weak otherwise "
        "(random loss produces lone timeouts)", needs_control=True),
    Rule("dns.unexpected_answer", BLOCKED, DNS, "unexpected_answer", False, "good",
        "all answers of a resolver lie outside the platform's prefixes, another resolver/the control answers "
        "inside them, and no valid certificate was obtained at the outside address"),
    Rule("tcp.ip_blackhole", BLOCKED, TCP, "ip_blackhole", False, "good/weak",
        "every connection to every (non-flagged) address timed out on every attempt; good when the control "
        "connected, weak otherwise. IPv6 `network_unreachable` next to IPv4 addresses is ignored (the vantage has "
        "no IPv6)", needs_control=True),
    Rule("tcp.rst", BLOCKED, TCP, "rst", False, "good/weak",
        "the address itself is reset: connections reset during the handshake; refused here while the control "
        "connects (good); TCP connects, then TLS is reset for the target's SNI *and* the harmless SNI (weak); an "
        "http:// GET reset on an address that, in the same run, reset TLS for any SNI "
        "(`RunContext.reset_addresses`, weak)", needs_control=True),
    Rule("tcp.rst_injected", BLOCKED, TCP, "rst", True, "strong",
        "the RST that refused or reset the connection came with an IP TTL 2 or more away from every TTL the "
        "server itself sent (its SYN-ACK on this connection, or on another connection of the run): forged by a "
        "box on the path nearer than the server (`packets` on the attempt; needs CAP_NET_RAW). A server with "
        "nothing listening, or crashing, resets with its own TTL"),
    Rule("tcp.unreachable", BLOCKED, TCP, "unreachable", False, "good",
        "ICMP unreachable here while the control connects", needs_control=True),
    Rule("tls.sni_rst", BLOCKED, TLS, "sni_rst", True, "strong",
        "TLS with the target's SNI reset on every attempt while the harmless-SNI control handshake to the same "
        "address completed"),
    Rule("tls.sni_eof", BLOCKED, TLS, "sni_eof", True, "strong",
        "same, with the connection closed (EOF) instead of reset"),
    Rule("tls.sni_timeout", BLOCKED, TLS, "sni_timeout", False, "good",
        "same, with a timeout (packets dropped after the ClientHello)"),
    Rule("tls.rst", BLOCKED, TLS, "rst", False, "good/weak",
        "TLS reset/EOF for the target with no harmless-SNI control; good when OONI's control handshake to the "
        "same address succeeded, weak otherwise", needs_control=True),
    Rule("tls.timeout", BLOCKED, TLS, "timeout", False, "good/weak",
        "same with a timeout", needs_control=True),
    Rule("tls.invalid_cert", BLOCKED, TLS, "invalid_cert", False, "good",
        "the certificate is not valid for the name here but validates at the control: interception or a redirect "
        "to another server", needs_control=True),
    Rule("http.blockpage", BLOCKED, HTTP, "blockpage", True, "strong",
        "a blockpage fingerprint (nat/isp/prod/inst scope) in the body (full body, matched by the runner), a "
        "header (Server, Via, ...) or a redirect target (Location)"),
    Rule("http.blockpage_weak", BLOCKED, HTTP, "blockpage", False, "good/weak",
        "only vague blocking words (OONI scope `vbw`, e.g. \"Website Blocked\") and nothing else answered; good "
        "when the control got another page for the URL, weak otherwise", needs_control=True),
    Rule("http.redirect_bogon", BLOCKED, HTTP, "blockpage", False, "good",
        "a public site redirected to a private/special address (a filter's portal on the LAN)"),
    Rule("http.rst", BLOCKED, HTTP, "http_rst", False, "good/weak",
        "the GET of an http:// URL was reset/cut on every attempt after the TCP connection to the same target "
        "succeeded, and the address does not reset everything (Host filtering)", needs_control=True),
    Rule("http.rst_injected", BLOCKED, HTTP, "http_rst", True, "strong",
        "the GET (or its body) was reset on every attempt by a RST whose IP TTL is 2 or more away from every TTL "
        "the server sent on the same connection: forged on the path (a server crashing mid-body resets with its "
        "own TTL)"),
    Rule("http.host_rst", BLOCKED, HTTP, "http_rst", True, "strong",
        "the GET of an http:// URL was reset/cut on every attempt while one GET of the same URL, to the same "
        "address, with a harmless `Host` (`--control-sni`, recorded as an `http` step with `control: true`) was "
        "answered: the filter keys on the Host. The HTTP counterpart of `tls.sni_rst`. When the harmless Host is "
        "reset too, the address is reset: `tcp.rst`"),
    Rule("http.timeout", BLOCKED, HTTP, "http_timeout", False, "good/weak",
        "the GET of the URL timed out on every attempt after TCP (and TLS) connected; good when the control "
        "fetched it, weak otherwise (a slowloris server looks the same)", needs_control=True),
    Rule("http.redirect_hop", BLOCKED, HTTP, "redirect_hop", False, "good/weak",
        "the URL's own server answered with a redirect, and the next hop failed (reset, refused, timed out, not "
        "resolved) on every attempt: a person cannot load the URL. Good when the control fetched the URL through "
        "its whole chain; weak otherwise (a redirect to a dead host looks the same)", needs_control=True),
    Rule("http.blockpage_diff", BLOCKED, HTTP, "blockpage", False, "good",
        "an http:// answer whose title and length both differ sharply from the control's fetch of the same URL "
        "(and from this target's own HTTPS page, when it was fetched): a blockpage candidate with no fingerprint "
        "(OONI's http-diff)", needs_control=True),
    Rule("http.throttled", BLOCKED, HTTP, "throttled", False, "good/weak",
        "every fetch of the target took ≥0.5 s and, its round trips taken out, ≥`throttle_ratio` (5) times what "
        "the slowest canary's transfer rate predicts, the time went into moving bytes (body trickle, shaped "
        "handshake, or a trickle from the same address in the run), the path was clean and every canary reached "
        "(see Throttling below). Good when the control fetched the same URL fast (our helper's timing) or the TLS "
        "handshake itself was shaped; weak otherwise (a server that trickles its own body looks the same)", needs_control=True),
    Rule("down.refused", DOWN, TCP, "refused", False, "down",
        "every connection to every address refused here and from the control too (nothing listens): the site is "
        "down", needs_control=True),
    Rule("down.nxdomain", DOWN, DNS, "nxdomain", False, "down",
        "every resolver asked says NXDOMAIN and so does the control, or (no control) the name is not one the "
        "targets file lists as existing: the name is gone everywhere", needs_control=True),
    Rule("down.no_answer", DOWN, DNS, "no_answer", False, "down",
        "no resolver has an address for the name", needs_control=True),
    Rule("down.nxdomain_rewritten", DOWN, DNS, "nxdomain", False, "down",
        "the control says NXDOMAIN but a local resolver answered (an ISP rewriting NXDOMAIN to a search/ad page): "
        "the name is gone", needs_control=True),
    Rule("down.control_agrees", DOWN, None, None, False, "down",
        "the target fails here and the control's fetch/handshake fails too (a broken certificate, a server that "
        "never answers); layer and method are those of the failing step", needs_control=True),
    Rule("outage.canaries", OUTAGE, None, "canaries_failed", False, "",
        "every canary failed in the same run: the vantage's own network"),
    Rule("outage.international_shutdown", OUTAGE, None, "international_shutdown", False, "",
        "domestic canaries answered, no international canary did"),
    Rule("outage.resolver", OUTAGE, DNS, "resolver_down", False, "outage",
        "the system resolver failed every canary query too (resolver down)"),
    Rule("inconclusive.no_steps", INCONCLUSIVE, None, None, False, "",
        "nothing was measured"),
    Rule("inconclusive.nxdomain_single_resolver", INCONCLUSIVE, DNS, "nxdomain", False, "note",
        "NXDOMAIN from the only resolver asked, no control: censorship and a dead name look the same"),
    Rule("inconclusive.no_answer_single_resolver", INCONCLUSIVE, DNS, "no_answer", False, "note",
        "same for an empty answer"),
    Rule("inconclusive.dns_timeout", INCONCLUSIVE, DNS, "timeout", False, "note",
        "resolver timeout with nothing to compare"),
    Rule("inconclusive.dns_servfail", INCONCLUSIVE, DNS, "servfail", False, "note",
        "SERVFAIL with nothing to compare"),
    Rule("inconclusive.dns_only", INCONCLUSIVE, DNS, None, False, "",
        "only DNS was measured (the reason says whether the answers are inside the platform's prefixes)"),
    Rule("inconclusive.tcp_unreachable", INCONCLUSIVE, TCP, "unreachable", False, "note",
        "ICMP unreachable without a control"),
    Rule("inconclusive.tcp_refused", INCONCLUSIVE, TCP, "refused", False, "note",
        "every connection refused (a RST to the SYN) and no control: a censor's RST and a server with nothing "
        "listening look the same from one vantage (a RST whose IP TTL gives it away is `tcp.rst_injected`)"),
    Rule("inconclusive.nxdomain_everywhere", INCONCLUSIVE, DNS, "nxdomain", False, "note",
        "NXDOMAIN from every resolver for a name the targets file lists (known to exist), and no control: a "
        "censor intercepting all DNS (Iran) and a name that is gone look the same; not called `down`"),
    Rule("inconclusive.nxdomain_one_name", INCONCLUSIVE, DNS, "nxdomain", False, "note",
        "NXDOMAIN for one name the targets file lists (the only one refused) while the same resolver answered the "
        "target's other names, and no resolver or control answered this name: a resolver that picks names and a "
        "name the site retired (a stale endpoint list) look the same", needs_control=True),
    Rule("inconclusive.tcp_failure", INCONCLUSIVE, TCP, None, False, "note",
        "connect failures of unclassified kinds"),
    Rule("inconclusive.tls_any_sni", INCONCLUSIVE, TLS, None, False, "note",
        "TLS times out (or fails mixed ways) for the target's SNI and for the harmless SNI too: the address or "
        "the server breaks every handshake (resets for both are `tcp.rst`)"),
    Rule("inconclusive.tls_invalid_cert", INCONCLUSIVE, TLS, "invalid_cert", False, "note",
        "invalid certificate and no control: interception and a site's own misconfiguration look the same"),
    Rule("inconclusive.probe_error", INCONCLUSIVE, HTTP, None, False, "note",
        "an unclassified probe-side error (`unknown_failure ...`), not network evidence"),
    Rule("inconclusive.needs_control", INCONCLUSIVE, None, None, False, "",
        "evidence by elimination only (every connection timed out, a reset with no harmless-SNI/Host signature, a "
        "body that stopped, a slow fetch, a failed redirect hop) and no outside control that settles it: the "
        "censored case and its innocent twin (a dead, slow or crashing server) look the same from one vantage, so "
        "nobody is accused (layer and method: the finding's). Run with `--control`"),
    Rule("inconclusive.no_controls", INCONCLUSIVE, None, None, False, "",
        "weak evidence, but no canaries and no (working) control: an outage cannot be ruled out (layer and "
        "method: the weak finding's)"),
    Rule("inconclusive.degraded_vantage", INCONCLUSIVE, None, None, False, "",
        "weak evidence while more than half the canaries failed too (layer and method: the weak finding's)"),
    Rule("inconclusive.canary_failed", INCONCLUSIVE, None, None, False, "",
        "a canary failed on weak evidence (canaries are not judged blocked on elimination; layer and method: the "
        "weak finding's)"),
    Rule("inconclusive.control_failed", INCONCLUSIVE, None, None, False, "",
        "not reached, and the control measurement itself failed"),
    Rule("inconclusive.deadline", INCONCLUSIVE, None, None, False, "",
        "the target's deadline (`--target-deadline`) cut its steps short and it was not reached, with no strong "
        "finding: what was never measured is not evidence"),
    Rule("inconclusive.unexplained", INCONCLUSIVE, None, None, False, "",
        "not reached and no rule explains why"),
    Rule("inconclusive.no_test_keys", INCONCLUSIVE, None, None, False, "",
        "(OONI import) a measurement without test keys"),

)
# fmt: on

# Ids no module under probe.verdict emits: the OONI importer (analysis.importers.ooni) writes this one
# for a measurement without test keys. Listed so every id an analyst meets is in one table.
TABLE_ONLY = frozenset({"inconclusive.no_test_keys"})
