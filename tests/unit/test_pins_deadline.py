"""Issue #13 part 5: pins are per target (a redirect never connects to another target's DNS answer), and a
target cut off by its deadline is not judged as if its steps were complete."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from probe.records import DNSAttempt, Steps, TCPAttempt, TLSAttempt, Vantage
from probe.runner import RunConfig, run_async
from probe.targets import Target
from probe.verdict import RunContext, canary_health, classify
from tests.unit.servers import ZoneEntry


# ------------------------------------------------------------------------------- part 5: pins
class _Redirector(BaseHTTPRequestHandler):
    """``/away`` redirects to http://localhost:<same port>/; ``/`` answers a page."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        if self.path == "/away":
            body, extra = b"", {"Location": f"http://localhost:{self.server.server_address[1]}/"}
            self.send_response(302)
        else:
            body, extra = b"<title>landed</title>", {}
            self.send_response(200)
        for k, v in {"Content-Length": str(len(body)), **extra}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def test_pins_are_per_target_a_redirect_never_uses_another_targets_answer(dns_server):
    """Target A's DNS step says localhost is 127.0.0.2; target B's redirect to localhost must not be
    sent there (it was, through one pin table per run)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        dns = dns_server({"localhost": ZoneEntry(a=["127.0.0.2"]), "b.test": ZoneEntry(a=["127.0.0.1"])})
        a = Target("facebook", "a", "web", urls=(f"http://localhost:{port}/",), dns_names=("localhost",))
        b = Target("twitter", "b", "web", urls=(f"http://b.test:{port}/away",), dns_names=("b.test",))
        cfg = RunConfig(vantage=Vantage(id="unit"), results_dir=None, system_resolver=False,
                        resolvers=(dns.address,), timeout=5.0, retries=0, concurrency=1, inject_check=False)
        summary = asyncio.run(run_async(cfg, [a, b]))  # concurrency 1: A is done (and pinned) before B
        res = {r.target.name: r for r in summary.results}
        assert res["a"].steps.http[0].failure == "connection_refused"  # A went to its own answer
        hop = res["b"].steps.http[0]
        assert hop.failure is None and hop.status == 200 and hop.title == "landed", hop
        assert hop.final_url == f"http://localhost:{port}/"
    finally:
        srv.shutdown()
        srv.server_close()


# ------------------------------------------------------------------------------- part 5: deadline
FB, FB_IP = "www.facebook.com", "157.240.1.35"


def _dns(answers=(FB_IP,)):
    return DNSAttempt(attempt=1, query=FB, qtype="A", resolver="system", resolver_address=None, transport="udp",
                      t0=0.0, duration_ms=5.0, failure=None, rcode="NOERROR", answers=list(answers))


def _healthy() -> RunContext:
    canary = Target("canary", "c", "canary", urls=("https://example.org/",), dns_names=("example.org",),
                    scope="international")
    ok = Steps(dns=[], tcp=[TCPAttempt(attempt=1, ip="93.184.216.34", port=443, t0=0, duration_ms=5, failure=None)],
               tls=[TLSAttempt(attempt=1, ip="93.184.216.34", port=443, sni="example.org", t0=0, duration_ms=5,
                               failure=None, cert_valid=True)])
    return RunContext(health=canary_health([(canary, ok)] * 2))


FB_TARGET = Target("facebook", "fb", "web", urls=(f"https://{FB}/",), dns_names=(FB,), tls_name=FB)


def test_deadline_cut_unreached_target_is_inconclusive_not_blocked():
    steps = Steps(dns=[_dns()], tcp=[TCPAttempt(attempt=i, ip=FB_IP, port=443, t0=0, duration_ms=5000,
                                                failure="generic_timeout_error") for i in (1, 2)])
    ctx = _healthy()
    # as if the steps were complete: elimination, nobody accused without the outside control
    assert classify(FB_TARGET, steps, ctx).rule == "inconclusive.needs_control"
    v = classify(FB_TARGET, steps, ctx, deadline_exceeded=True)
    assert (v.status, v.rule, v.confirmed) == ("inconclusive", "inconclusive.deadline", False)


def test_deadline_keeps_strong_findings_and_reached_targets():
    hijacked = Steps(dns=[_dns(("10.10.34.34",))])
    v = classify(FB_TARGET, hijacked, _healthy(), deadline_exceeded=True)
    assert (v.status, v.rule) == ("blocked", "dns.blockpage_ip")
    reached = Steps(dns=[_dns()], tcp=[TCPAttempt(attempt=1, ip=FB_IP, port=443, t0=0, duration_ms=5, failure=None)],
                    tls=[TLSAttempt(attempt=1, ip=FB_IP, port=443, sni=FB, t0=0, duration_ms=5, failure=None,
                                    cert_valid=True)])
    assert classify(FB_TARGET, reached, _healthy(), deadline_exceeded=True).status == "ok"


def test_a_server_stalling_past_the_deadline_is_not_blocked(dns_server, raw_listener, http_server):
    """The runner passes the deadline to the verdict: a handshake that never ends is cut off by
    --target-deadline, and the target is inconclusive, not blocked."""
    hang = raw_listener("hang")
    dns = dns_server({"ok.test": ZoneEntry(a=["127.0.0.1"])})
    import ipaddress

    stalled = Target("facebook", "fb-stall", "web", urls=(f"https://ok.test:{hang.port}/",), dns_names=("ok.test",))
    canary = Target("canary", "c", "canary", urls=(f"http://127.0.0.1:{http_server.port}/",), scope="international")
    cfg = RunConfig(vantage=Vantage(id="unit"), results_dir=None, system_resolver=False, resolvers=(dns.address,),
                    timeout=30.0, target_deadline=1.0, retries=0, inject_check=False,
                    bogon_exempt=(ipaddress.ip_network("127.0.0.0/8"),))
    summary = asyncio.run(run_async(cfg, [stalled, canary]))
    r = next(r for r in summary.results if r.target.name == "fb-stall")
    assert r.deadline_exceeded and r.steps.tcp and r.verdict.status != "blocked"
    assert r.verdict.rule == "inconclusive.deadline"
    line = next(x for x in summary.records if x["target"]["name"] == "fb-stall")
    assert line["deadline_exceeded"] is True and line["verdict"]["rule"] == "inconclusive.deadline"
