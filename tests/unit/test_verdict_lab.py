"""The lab's scenarios as the runner records them, judged by the verdict engine without the lab."""

from __future__ import annotations

import pytest

from probe.records import DNSAttempt, HTTPAttempt, InjectAttempt, TCPAttempt, TLSAttempt
from probe.targets import Endpoint
from probe.verdict import (
    ControlMeasurement,
    classify,
    run_context,
)
from tests.unit.verdict_builders import (
    CANARY,
    FB_IP,
    HTTP_T,
    HTTP_TRICKLE,
    IRAN_BODY,
    canary_run,
    dns,
    http,
    steps,
    target,
    tcp,
    tls,
)

# --- the lab's scenarios, as the runner records them ------------------------------------------------
# Addresses as in tests/lab: sites in 198.18.0.0/15 (benchmarking range), the domestic canary at
# 10.10.35.10, Iran's blockpage 10.10.34.34; resolvers "system" and the public one given with --resolver.
LAB_FB, LAB_PUB, LAB_CTL_SNI = "198.18.1.10", "198.18.8.8", "example.com"
LAB_WEB = target(urls=("https://www.facebook.lab/",), dns_names=("www.facebook.lab",), tls_name="www.facebook.lab",
                 prefixes=())
LAB_HTTP = target(name="facebook-http", urls=("http://www.facebook.lab/",), dns_names=("www.facebook.lab",), tls_name=None)
LAB_DC = target(platform="telegram", name="telegram-dc1", kind="endpoint", urls=(), dns_names=(), tls_name=None,
                endpoints=(Endpoint("198.18.3.50", 443), Endpoint("198.18.3.50", 80)))


def _lab_canary(name, ip, scope, ok=True):
    t = target(platform="canary", name=name, kind="canary", urls=(f"https://{name}.lab/",), dns_names=(f"{name}.lab",),
               tls_name=f"{name}.lab", scope=scope)
    if not ok:
        return t, steps([dns(failure="generic_timeout_error", q=f"{name}.lab", resolver=r) for r in ("system", LAB_PUB)])
    return t, steps([dns([ip], q=f"{name}.lab", resolver=r) for r in ("system", LAB_PUB)],
                    [TCPAttempt(1, ip, 443, 0, 0.4, None)], [_tls_ms(tls(ip, sni=f"{name}.lab"), 3.0)],
                    [_ttfb(http(f"https://{name}.lab/", body="<html>canary</html>", blen=16384, tput=1e9, ms=8.0), 7.9)])


def _fb_dns(answer=(LAB_FB,), failure=None, public=None, pub_failure=None):
    pub = answer if public is None else public
    return [dns(list(answer), failure, q="www.facebook.lab", resolver="system"),
            dns(list(pub), pub_failure if pub_failure is not None else (failure if public is None else None),
                q="www.facebook.lab", resolver=LAB_PUB)]


def _web(dns_, tcp_=(), tls_=(), http_=(), inject_=()):
    return steps(dns_, tcp_, tls_, http_, inject_)


def _lab_tls(failure=None, control="none", attempts=2):
    """The runner's TLS records: the target SNI (retried when failing), then the harmless-SNI control
    handshake ("none": not made, "ok": completed, else its failure)."""
    out = [tls(LAB_FB, failure, sni="www.facebook.lab", attempt=a) for a in range(1, (attempts if failure else 1) + 1)]
    if control != "none":
        out.append(tls(LAB_FB, None if control == "ok" else control, sni=LAB_CTL_SNI, control=True))
    return out


OKWEB = _web(_fb_dns(), [tcp(LAB_FB)], _lab_tls(), [http("https://www.facebook.lab/", body="<html>fb</html>", blen=16384, ms=9.0)])
OKHTTP = _web(_fb_dns(), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", body="<html>fb</html>", blen=16384, ms=5.0)])
TO = "generic_timeout_error"
FORGED = InjectAttempt(1, "www.facebook.lab", "198.18.0.53:53", 0.0, 1000.0, None,
                       responses=[{"src": "198.18.0.53", "ttl": 63, "answers": ["10.10.34.36"], "rcode": "NOERROR", "delay_ms": 1},
                                  {"src": "198.18.0.53", "ttl": 63, "answers": [LAB_FB], "rcode": "NOERROR", "delay_ms": 301}])
SLOW = dict(body="<html>fb</html>", blen=16384, ms=650.0, tput=2.5e4)


def _ttfb(a: HTTPAttempt, ms: float) -> HTTPAttempt:
    a.ttfb_ms = ms
    return a


def _tls_ms(a: TLSAttempt, ms: float) -> TLSAttempt:
    a.duration_ms = ms
    return a

LAB = [
    # name, canaries ok (int, dom), web steps, http steps, expected web, expected http
    ("control", (True, True), OKWEB, OKHTTP, ("ok",), ("ok",)),
    ("dns_hijack", (True, True),
     _web(_fb_dns(["10.10.34.34"]), [tcp("10.10.34.34")], [tls("10.10.34.34", "ssl_invalid_hostname", sni="www.facebook.lab", valid=False)]),
     _web(_fb_dns(["10.10.34.34"]), [tcp("10.10.34.34", port=80)], [], [http("http://www.facebook.lab/", status=403, body=IRAN_BODY)]),
     ("blocked", "dns", "blockpage_ip"), ("blocked", "dns", "blockpage_ip")),
    ("nxdomain", (True, True),
     _web(_fb_dns((), "dns_nxdomain_error", public=[LAB_FB]), [tcp(LAB_FB)], _lab_tls()),
     _web(_fb_dns((), "dns_nxdomain_error", public=[LAB_FB]), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", body="x")]),
     ("blocked", "dns", "nxdomain"), ("blocked", "dns", "nxdomain")),
    ("bogon", (True, True),
     _web(_fb_dns(["127.0.0.2"]), [tcp("127.0.0.2", "connection_refused")]),
     _web(_fb_dns(["127.0.0.2"]), [tcp("127.0.0.2", "connection_refused", port=80)], [],
          [http("http://www.facebook.lab/", status=None, failure="connection_refused")]),
     ("blocked", "dns", "bogon"), ("blocked", "dns", "bogon")),
    ("dns_injection", (True, True),
     _web(_fb_dns(["10.10.34.36"]), [tcp("10.10.34.36", TO)], [], [], [FORGED]),
     _web(_fb_dns(["10.10.34.36"]), [tcp("10.10.34.36", port=80)], [], [http("http://www.facebook.lab/", status=403, body=IRAN_BODY)], [FORGED]),
     ("blocked", "dns", "injected"), ("blocked", "dns", "injected")),
    ("ip_blackhole", (True, True),
     _web(_fb_dns(), [tcp(LAB_FB, TO, attempt=a) for a in (1, 2)]),
     _web(_fb_dns(), [tcp(LAB_FB, TO, port=80, attempt=a) for a in (1, 2)], [],
          [http("http://www.facebook.lab/", status=None, failure=TO, attempt=a) for a in (1, 2)]),
     ("inconclusive", "tcp", "ip_blackhole"), ("inconclusive", "tcp", "ip_blackhole")),
    ("tcp_rst", (True, True),
     _web(_fb_dns(), [tcp(LAB_FB)], _lab_tls("connection_reset", "connection_reset")),
     _web(_fb_dns(), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", status=None, failure="connection_reset", attempt=a)
                                                  for a in (1, 2)]),
     ("inconclusive", "tcp", "rst"), ("inconclusive", "tcp", "rst")),
    ("sni_rst", (True, True), _web(_fb_dns(), [tcp(LAB_FB)], _lab_tls("connection_reset", "ok")), OKHTTP,
     ("blocked", "tls", "sni_rst"), ("ok",)),
    ("sni_drop", (True, True), _web(_fb_dns(), [tcp(LAB_FB)], _lab_tls(TO, "ok")), OKHTTP,
     ("blocked", "tls", "sni_timeout"), ("ok",)),
    ("http_host_rst", (True, True), OKWEB,
     _web(_fb_dns(), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", status=None, failure="connection_reset", attempt=a)
                                                  for a in (1, 2)]),
     ("ok",), ("inconclusive", "http", "http_rst")),
    ("http_blockpage_ir", (True, True), OKWEB,
     _web(_fb_dns(), [tcp(LAB_FB, port=80)], [], [http("http://www.facebook.lab/", status=403, body=IRAN_BODY)]),
     ("ok",), ("blocked", "http", "blockpage")),
    # over HTTPS the small body comes with the headers (ttfb ~ whole fetch) but the handshake is shaped;
    # over HTTP the body trickles after the first byte
    ("throttling", (True, True),
     _web(_fb_dns(), [TCPAttempt(1, LAB_FB, 443, 0, 2.0, None)], [_tls_ms(t, 140.0) for t in _lab_tls()],
          [_ttfb(http("https://www.facebook.lab/", **{**SLOW, "tput": 5e7}), 649.0)]),
     _web(_fb_dns(), [TCPAttempt(1, LAB_FB, 80, 0, 2.0, None)], [], [_ttfb(http("http://www.facebook.lab/", **SLOW), 20.0)]),
     ("inconclusive", "http", "throttled"), ("inconclusive", "http", "throttled")),
    ("a slow server is not throttling (the wait is before the first byte, handshakes normal)", (True, True),
     _web(_fb_dns(), [TCPAttempt(1, LAB_FB, 443, 0, 2.0, None)], [_tls_ms(t, 4.0) for t in _lab_tls()],
          [_ttfb(http("https://www.facebook.lab/", **{**SLOW, "tput": 5e7}), 640.0)]),
     _web(_fb_dns(), [TCPAttempt(1, LAB_FB, 80, 0, 2.0, None)], [], [_ttfb(http("http://www.facebook.lab/", **SLOW), 645.0)]),
     ("ok",), ("ok",)),
    ("site_down", (True, True),
     _web(_fb_dns(), [tcp(LAB_FB, "connection_refused", attempt=a) for a in (1, 2)]),
     _web(_fb_dns(), [tcp(LAB_FB, "connection_refused", port=80, attempt=a) for a in (1, 2)], [],
          [http("http://www.facebook.lab/", status=None, failure="connection_refused")]),
     ("inconclusive", "tcp", "refused"), ("inconclusive", "tcp", "refused")),
    ("name_gone", (True, True),
     _web(_fb_dns((), "dns_nxdomain_error")), _web(_fb_dns((), "dns_nxdomain_error")), ("down", "dns"), ("down", "dns")),
    ("vantage_outage", (False, False), _web(_fb_dns((), TO)), _web(_fb_dns((), TO)), ("outage",), ("outage",)),
    ("international_shutdown", (False, True),
     _web(_fb_dns(pub_failure=TO, public=()), [tcp(LAB_FB, TO)]),
     _web(_fb_dns(pub_failure=TO, public=()), [tcp(LAB_FB, TO, port=80)]),
     ("outage", None, "international_shutdown"), ("outage", None, "international_shutdown")),
    ("glitch_retry", (True, True),
     _web(_fb_dns(), [tcp(LAB_FB)], [tls(LAB_FB, "connection_reset", sni="www.facebook.lab", attempt=1),
                                     tls(LAB_FB, sni="www.facebook.lab", attempt=2)], [http("https://www.facebook.lab/", body="x")]),
     OKHTTP, ("flaky",), ("ok",)),
]


@pytest.mark.parametrize("row", LAB, ids=[r[0] for r in LAB])
def test_lab_scenarios_as_recorded(row):
    name, (int_ok, dom_ok), web, http_, exp_web, exp_http = row
    canaries = [_lab_canary("canary-int", "198.18.9.10", "international", int_ok),
                _lab_canary("canary-dom", "10.10.35.10", "domestic", dom_ok)]
    dc = steps([], [tcp("198.18.3.50", None if (int_ok or name == "resolver_down") else TO, port=p) for p in (443, 80)])
    ctx = run_context(canaries + [(LAB_WEB, web), (LAB_HTTP, http_), (LAB_DC, dc)])
    for tgt, stp, exp in ((LAB_WEB, web, exp_web), (LAB_HTTP, http_, exp_http)):
        v = classify(tgt, stp, ctx)
        got = (v.status, v.layer, v.method)[:len(exp)]
        assert got == exp, (tgt.name, v.rule, v.reason)
    for t, s in canaries:  # canaries are judged too: ok, or an outage, never blocked
        assert classify(t, s, ctx).status in ("ok", "outage")


def test_lab_resolver_down():
    canaries = [_lab_canary("canary-int", "198.18.9.10", "international", False),
                _lab_canary("canary-dom", "10.10.35.10", "domestic", False)]
    dc = steps([], [tcp("198.18.3.50", port=p) for p in (443, 80)])
    web = _web(_fb_dns((), "connection_refused"))
    ctx = run_context(canaries + [(LAB_WEB, web), (LAB_DC, dc)])
    assert classify(LAB_WEB, web, ctx).status == "outage"
    assert classify(LAB_DC, dc, ctx).rule == "ok.tcp_endpoint"


def _att(cls, failures, **kw):
    """Attempts 1..n of one step, one per failure (None: success)."""
    return [cls(attempt=i, failure=f, **kw) for i, f in enumerate(failures, 1)]


def _lab_dns(name, ip, failures=(None,), resolvers=("system", LAB_PUB)):
    return [a for r in resolvers for a in _att(DNSAttempt, failures, query=name, qtype="A", resolver=r, resolver_address=None,
                                               transport="udp", t0=0.0, duration_ms=5.0, rcode="NOERROR",
                                               answers=[ip] if failures[-1] is None else [])]


def test_lab_throttling_as_measured():
    """The lab's `throttling` run as the probe recorded it (tc htb 128 kbit/s on facebook's address, 2 cores
    busy): connect times of the first targets inflated by load, the https page in one TLS record."""
    def site(t, ip, port, tcp_ms, tls_ms, ms, ttfb, tput):
        https = port == 443
        tls_ = [_tls_ms(tls(ip, sni=t.tls_name), tls_ms)] if https else []
        url = t.urls[0]
        return t, steps(_lab_dns(t.dns_names[0], ip), [TCPAttempt(1, ip, port, 0.0, tcp_ms, None)], tls_,
                        [_ttfb(http(url, body="<html>x</html>", blen=16384, tput=tput, ms=ms), ttfb)])

    c_int = target(platform="canary", name="canary-int", kind="canary", urls=("https://canary-int.lab/",),
                   dns_names=("canary-int.lab",), tls_name="canary-int.lab", scope="international")
    c_dom = target(platform="canary", name="canary-dom", kind="canary", urls=("https://canary-dom.lab/",),
                   dns_names=("canary-dom.lab",), tls_name="canary-dom.lab", scope="domestic")
    tw = target(platform="twitter", name="twitter-web", urls=("https://twitter.lab/",), dns_names=("twitter.lab",),
                tls_name="twitter.lab")
    run = [site(c_int, "198.18.9.1", 443, 5.7, 52.0, 107.7, 99.3, 2.0e6),
           site(c_dom, "10.10.35.10", 443, 1.6, 4.9, 42.0, 37.9, 4.0e6),
           site(LAB_WEB, "198.18.1.1", 443, 46.8, 73.9, 2381.9, 2378.8, 5.5e6),
           site(LAB_HTTP, "198.18.1.1", 80, 43.5, 0.0, 880.9, 124.7, 21668.0),
           site(tw, "198.18.2.1", 443, 41.0, 56.2, 122.3, 105.4, 970000.0)]
    ctx = run_context(run)
    # our helper fetched facebook's page from outside in 40 ms: the slowness is the path's
    fast = ControlMeasurement(http_status=200, http_body_length=16384, http_duration_ms=40.0)
    got = {t.name: classify(t, s, ctx, control=fast if t.platform == "facebook" else None) for t, s in run}
    assert (got["facebook-web"].status, got["facebook-web"].method) == ("blocked", "throttled"), got["facebook-web"].reason
    assert (got["facebook-http"].status, got["facebook-http"].method) == ("blocked", "throttled"), got["facebook-http"].reason
    assert all(got[n].status == "ok" for n in ("twitter-web", "canary-int", "canary-dom"))
    # the https page alone (no http:// sibling trickling at the same address, handshake unshaped): a slow
    # server cannot be ruled out
    alone = run_context([r for r in run if r[0] is not LAB_HTTP])
    assert classify(LAB_WEB, run[2][1], alone, control=fast).status == "ok"
    # the same run on a lossy path: nothing is throttled
    lossy = run_context(run, loss_events=5, loss_measurements=3)
    assert classify(LAB_HTTP, run[3][1], lossy, control=fast).status == "ok"
    # without the outside timing the same slow fetches accuse nobody (a server that trickles its own body)
    assert {classify(t, s, ctx).rule for t, s in run[2:4]} == {"inconclusive.needs_control"}
    # and a server as slow from outside is not throttled
    slow = ControlMeasurement(http_status=200, http_body_length=16384, http_duration_ms=2000.0)
    assert classify(LAB_WEB, run[2][1], ctx, control=slow).status == "ok"


def test_lab_flaky_loss_as_measured():
    """The lab's `flaky_loss` (30 % random loss both ways, --retries 3), patterns seen in real runs: the
    canaries need retries too; facebook-web's TLS timed out 4 times while the single harmless-SNI handshake
    got through; facebook-http's GET timed out 4 times after TCP connected; a DC's connects all timed out;
    a name timed out on both resolvers. Never blocked, never inconclusive: flaky (or ok)."""
    c_int = target(platform="canary", name="canary-int", kind="canary", urls=("https://canary-int.lab/",),
                   dns_names=("canary-int.lab",), tls_name="canary-int.lab", scope="international")
    c_dom = target(platform="canary", name="canary-dom", kind="canary", urls=("https://canary-dom.lab/",),
                   dns_names=("canary-dom.lab",), tls_name="canary-dom.lab", scope="domestic")
    tw = target(platform="twitter", name="twitter-web", urls=("https://twitter.lab/",), dns_names=("twitter.lab",),
                tls_name="twitter.lab")

    def canary(t, ip):
        return t, steps(_lab_dns(t.dns_names[0], ip, (TO, None)), _att(TCPAttempt, (TO, None), ip=ip, port=443, t0=0.0,
                                                                       duration_ms=1000.0),
                        [tls(ip, sni=t.tls_name)], [http(t.urls[0], body="<html>c</html>", blen=16384, ms=1200.0)])

    fb_ip = "198.18.1.1"
    web = steps(_lab_dns("www.facebook.lab", fb_ip, (TO, TO, None)), [TCPAttempt(1, fb_ip, 443, 0.0, 1.0, None)],
                [tls(fb_ip, TO, sni="www.facebook.lab", attempt=a) for a in (1, 2, 3, 4)]
                + [tls(fb_ip, sni=LAB_CTL_SNI, control=True)],
                [http("https://www.facebook.lab/", body="<html>fb</html>", blen=16384, ms=1500.0)])
    web_unreached = steps(web.dns, web.tcp, web.tls, [])
    http_ = steps(_lab_dns("www.facebook.lab", fb_ip), [TCPAttempt(1, fb_ip, 80, 0.0, 1004.0, None)], [],
                  [http("http://www.facebook.lab/", status=None, failure=TO, attempt=a) for a in (1, 2, 3, 4)])
    dc = steps([], _att(TCPAttempt, (TO, TO, TO, TO), ip="198.18.3.50", port=443, t0=0.0, duration_ms=2000.0)
               + _att(TCPAttempt, (TO, TO, TO, TO), ip="198.18.3.50", port=80, t0=0.0, duration_ms=2000.0))
    twitter = steps(_lab_dns("twitter.lab", "198.18.2.1", (TO, TO, TO, TO)))
    run = [canary(c_int, "198.18.9.1"), canary(c_dom, "10.10.35.10"), (LAB_WEB, web), (LAB_HTTP, http_),
           (LAB_DC, dc), (tw, twitter)]
    ctx = run_context(run)
    assert ctx.lossy and not ctx.health.spotless and ctx.health.timeout_attempts == 6
    for t, s in run + [(LAB_WEB, web_unreached)]:
        v = classify(t, s, ctx)
        assert v.status in ("ok", "flaky"), (t.name, v.rule, v.reason)
    assert classify(LAB_WEB, web, ctx).rule == "flaky.lossy_path"
    # the same target records in a clean run (no loss anywhere else) are judged as before
    clean = run_context([(c_int, _lab_canary("canary-int", "198.18.9.1", "international")[1]),
                         (c_dom, _lab_canary("canary-dom", "10.10.35.10", "domestic")[1]), (LAB_WEB, web_unreached),
                         (LAB_HTTP, http_)])
    assert not clean.lossy
    assert classify(LAB_WEB, web_unreached, clean).rule == "tls.sni_timeout"
    assert classify(LAB_HTTP, http_, clean).rule == "inconclusive.needs_control"  # a slowloris server looks the same
    assert classify(LAB_HTTP, http_, clean, control=ControlMeasurement(http_status=200)).rule == "http.timeout"


def test_run_context_path_loss_and_throttling_reference():
    lossy_canary = steps([dns(failure=TO, q="canary.example", attempt=1), dns(["93.184.216.34"], q="canary.example", attempt=2)],
                         [TCPAttempt(1, "93.184.216.34", 443, 0.0, 5.0, None)], [tls("93.184.216.34", sni="canary.example")],
                         [http("https://canary.example/", body="x", blen=16384, ms=110.0)])
    retried = steps([dns([FB_IP])], [tcp(failure=TO, attempt=1), tcp(attempt=2)], [tls()], [http()])
    once = steps([dns([FB_IP])], [tcp(failure="connection_reset", attempt=1), tcp(attempt=2)], [tls()], [http()])
    ctx = run_context([(CANARY, lossy_canary), (target(), retried), (HTTP_T, once)])
    assert (ctx.loss_events, ctx.loss_measurements, ctx.lossy) == (2, 2, True)  # a reset that cleared is no loss
    assert (ctx.health.timeout_attempts, ctx.health.loss_events, ctx.health.spotless) == (1, 1, False)
    # the slowest canary's transfer rate: 110 ms less 5 round trips at 5 ms
    assert ctx.canary_transfer_bps == pytest.approx(16384 / 0.085)
    assert ctx.canary_fetch_bps == pytest.approx(16384 / 0.110)
    # one target's own retries are that target's business
    ctx = run_context([(CANARY, canary_run(110.0)), (target(), retried)])
    assert (ctx.loss_events, ctx.loss_measurements, ctx.lossy, ctx.health.spotless) == (1, 1, False, True)
    # a canary's latency takes off at most half its time (one slow handshake cannot make the reference fast)
    ctx = run_context([(CANARY, canary_run(110.0, tcp_ms=100.0))])
    assert ctx.canary_transfer_bps == pytest.approx(16384 / 0.055)
    # trickle addresses: an http body that kept trickling >= 0.5 s at >= 5x below the canaries' rate
    ctx = run_context([(CANARY, canary_run(110.0)), (HTTP_T, HTTP_TRICKLE)])
    assert ctx.trickle_addresses == frozenset({FB_IP})
    ctx = run_context([(CANARY, canary_run(1100.0)), (HTTP_T, HTTP_TRICKLE)])
    assert ctx.trickle_addresses == frozenset()
