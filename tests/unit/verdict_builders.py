"""Builders of step records, targets and run contexts for the verdict tests (shared by test_verdict*.py)."""

from __future__ import annotations

from probe.fingerprints import FingerprintDB
from probe.records import DNSAttempt, HTTPAttempt, HTTPRedirect, Steps, TCPAttempt, TLSAttempt
from probe.targets import Endpoint, Target
from probe.verdict import (
    CanaryHealth,
    RunContext,
    run_context,
)

FB = "www.facebook.com"
FB_IP = "157.240.1.35"
FB_IP2 = "157.240.1.36"
ALT = "10.0.0.2:53"  # the second (uncensored) resolver given with --resolver


# --- builders ------------------------------------------------------------------------------------
def target(platform="facebook", name="facebook-web", kind="web", urls=(f"https://{FB}/",), dns_names=(FB,),
           tls_name=FB, endpoints=(), scope=None, prefixes=()) -> Target:
    return Target(platform=platform, name=name, kind=kind, urls=tuple(urls), dns_names=tuple(dns_names),
                  tls_name=tls_name, endpoints=tuple(endpoints), scope=scope, expected_prefixes=tuple(prefixes))


def dns(answers=(), failure=None, q=FB, resolver="system", qtype="A", attempt=1) -> DNSAttempt:
    rcode = {"dns_nxdomain_error": "NXDOMAIN", "dns_servfail_error": "SERVFAIL"}.get(failure or "", "NOERROR")
    return DNSAttempt(attempt=attempt, query=q, qtype=qtype, resolver=resolver, resolver_address=None,
                      transport="udp", t0=0.0, duration_ms=5.0, failure=failure, rcode=rcode, answers=list(answers))


def tcp(ip=FB_IP, failure=None, port=443, attempt=1) -> TCPAttempt:
    return TCPAttempt(attempt=attempt, ip=ip, port=port, t0=0.1, duration_ms=20.0, failure=failure)


def tls(ip=FB_IP, failure=None, sni=FB, valid=None, control=False, attempt=1) -> TLSAttempt:
    if valid is None and failure is None and not control:
        valid = True
    return TLSAttempt(attempt=attempt, ip=ip, port=443, sni=sni, t0=0.2, duration_ms=30.0, failure=failure,
                      control=control, cert_valid=valid)


def host_control(url, status=None, failure=None) -> HTTPAttempt:
    """The runner's harmless-Host GET (Host: example.com) to the same URL and address."""
    a = http(url, status=status, failure=failure)
    a.control, a.host_header = True, "example.com"
    return a


def http(url=f"https://{FB}/", status=200, failure=None, body=None, fps=None, headers=None, final_url=None,
         tput=None, blen=None, attempt=1, redirects=(), ms=100.0) -> HTTPAttempt:
    db = FingerprintDB.default()
    return HTTPAttempt(attempt=attempt, url=url, t0=0.3, duration_ms=ms, failure=failure,
                       final_url=final_url or url, status=status if failure is None or status else None,
                       headers=dict(headers or {}), body_head=body, body_length=blen if blen is not None else (len(body) if body else None),
                       throughput_bps=tput, redirects=[HTTPRedirect(u, 302) for u in redirects],
                       fingerprints=list(fps) if fps is not None else (db.match_body(body) if body else []))


def _titled(a: HTTPAttempt, title: str) -> HTTPAttempt:
    a.title = title
    return a


def _hop(a: HTTPAttempt, failed_url: str) -> HTTPAttempt:
    a.failed_url = failed_url
    return a


def _rst(a, mismatch: bool, rst_ttl: int = 64, server_ttl: int = 55):
    """An attempt whose RST the run's packet capture saw (probe.measure.packets)."""
    a.rst_ttl_mismatch = mismatch
    a.packets = {"synack_ttl": server_ttl, "server_ttls": [server_ttl],
                 "rst": [{"ttl": rst_ttl, "ip_id": 0, "flags": "R", "hops": 0, "ttl_delta": rst_ttl - server_ttl}],
                 "reference": "address", "connections": 1}
    return a


def steps(dns_=(), tcp_=(), tls_=(), http_=(), inject_=()) -> Steps:
    return Steps(dns=list(dns_), tcp=list(tcp_), tls=list(tls_), http=list(http_), inject=list(inject_))


HEALTH = CanaryHealth(1, 1, 2, 2, answering_resolvers=frozenset({"system", ALT}))
CTX = RunContext(health=HEALTH, canary_throughput_bps=2_000_000.0)
NO_CANARIES = RunContext()
ALL_FAILED = RunContext(health=CanaryHealth(0, 1, 0, 2, answering_resolvers=frozenset({"system"})))
INTL_DOWN = RunContext(health=CanaryHealth(1, 1, 0, 2, answering_resolvers=frozenset({"system"})))
RESOLVER_DOWN = RunContext(health=CanaryHealth(0, 1, 0, 2, failing_resolvers=frozenset({"system"}),
                                               dns_only_failures=True))
DEGRADED = RunContext(health=CanaryHealth(0, 2, 1, 3, answering_resolvers=frozenset({"system"})))

IRAN_BODY = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
             '<title>M1-6</title></head><body><iframe src="http://10.10.34.34?type=Invalid Site&policy=MainPolicy" '
             'style="width: 100%; height: 100%" scrolling="no"></iframe></body></html>')
CF_CHALLENGE = ('<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>'
                '<div>Checking your browser before accessing example.org. Web Page Blocked? no.</div>'
                '<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/jsch/v1"></script></body></html>')
TG = target(platform="telegram", name="telegram-dc1", kind="endpoint", urls=(), dns_names=(), tls_name=None,
            endpoints=(Endpoint("149.154.175.50", 443),))
HTTP_T = target(urls=(f"http://{FB}/",))
CANARY = target(platform="canary", name="canary-1", kind="canary", urls=("https://canary.example/",),
                dns_names=("canary.example",), tls_name="canary.example", scope="international")
OK_STEPS = steps([dns([FB_IP])], [tcp()], [tls()], [http()])
TO = "generic_timeout_error"

# Path loss: canaries and other targets needed retries after timeouts in the same run.
LOSSY = RunContext(health=CanaryHealth(1, 1, 2, 2, answering_resolvers=frozenset({"system", ALT}), timeout_attempts=3,
                                       loss_events=2), canary_throughput_bps=2_000_000.0, loss_events=6, loss_measurements=4)
# ... the same loss elsewhere in the run, but the canaries never timed out: the pattern is unambiguous.
LOSSY_CLEAN_CANARIES = RunContext(health=HEALTH, loss_events=3, loss_measurements=2)
SNI_TIMEOUTS = [tls(failure=TO, attempt=a) for a in (1, 2, 3, 4)] + [tls(sni="example.org", control=True)]


def timed(a: HTTPAttempt, ttfb: float) -> HTTPAttempt:
    a.ttfb_ms = ttfb
    return a


def canary_run(fetch_ms: float, tcp_ms: float = 5.0, tls_ms: float = 30.0, ip: str = "93.184.216.34") -> Steps:
    t = tls(ip, sni="canary.example")
    t.duration_ms = tls_ms
    return steps([dns([ip], q="canary.example")], [TCPAttempt(1, ip, 443, 0.0, tcp_ms, None)], [t],
                 [timed(http("https://canary.example/", body="<html>canary</html>", blen=16384, tput=5e7, ms=fetch_ms),
                        fetch_ms - 1.0)])


# The lab's throttling as measured: 16 KiB over http in ~880 ms, the body trickling after a 125 ms first
# byte; canaries fetch 16 KiB in ~110 ms.
CANARIES_110MS = run_context([(CANARY, canary_run(110.0))])
CANARIES_SLOW = run_context([(CANARY, canary_run(1100.0))])  # a slow canary: the vantage is slow today
CANARIES_5MS = run_context([(CANARY, canary_run(5.0, tcp_ms=0.3, tls_ms=2.0))])
HTTP_TRICKLE = steps([dns([FB_IP])], [TCPAttempt(1, FB_IP, 80, 0.0, 40.0, None)], [],
                     [timed(http(f"http://{FB}/", body="<html>fb</html>", blen=16384, ms=880.0), 125.0)])
HTTPS_SLOW = steps([dns([FB_IP])], [TCPAttempt(1, FB_IP, 443, 0.0, 40.0, None)], [tls()],
                   [timed(http(body="<html>fb</html>", blen=16384, tput=5e7, ms=2390.0), 2388.0)])
