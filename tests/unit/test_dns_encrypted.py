"""DNS over HTTPS and over TLS against servers on 127.0.0.1 with the test CA (never anything else)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.rcode
import dns.rrset
import pytest

from probe.measure.dns import ResolverSpec, lookup
from tests.unit.servers import make_pki

ZONE = {"www.facebook.com": "157.240.1.35"}  # the honest answer, as a DoH/DoT resolver gives it


def _answer(wire: bytes) -> bytes:
    q = dns.message.from_wire(wire)
    r = dns.message.make_response(q)
    name = q.question[0].name.to_text(omit_final_dot=True)
    if name not in ZONE:
        r.set_rcode(dns.rcode.NXDOMAIN)
    elif q.question[0].rdtype == dns.rdatatype.A:
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", ZONE[name]))
    return r.to_wire()


@pytest.fixture(scope="module")
def tls_ctx(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("dnspki"), ["doh.test", "dot.test"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert_pem, pki.key_pem)
    return ctx, str(pki.ca_pem)


class _DoH(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/dns-query" or self.headers.get("Content-Type") != "application/dns-message":
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        reply = _answer(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/dns-message")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def doh_server(tls_ctx):
    ctx, _ = tls_ctx
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _DoH)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def dot_server(tls_ctx):
    ctx, _ = tls_ctx
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.settimeout(0.1)
    stop = threading.Event()

    def serve_one(conn):
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                s.settimeout(5)
                while True:
                    head = s.recv(2)
                    if len(head) < 2:
                        return
                    (n,) = struct.unpack("!H", head)
                    data = b""
                    while len(data) < n:
                        chunk = s.recv(n - len(data))
                        if not chunk:
                            return
                        data += chunk
                    reply = _answer(data)
                    s.sendall(struct.pack("!H", len(reply)) + reply)
        except (OSError, ssl.SSLError):
            return

    def loop():
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield lsock.getsockname()[1]
    stop.set()
    t.join(2)
    lsock.close()


def _lookup(spec: str, name="www.facebook.com", qtype="A", ca=None, timeout=5.0):
    return asyncio.run(lookup(name, qtype, ResolverSpec.parse(spec), timeout=timeout, attempt=1,
                              t_origin=time.monotonic(), ca_bundle=ca))


def test_parse_forms():
    doh = ResolverSpec.parse("https://dns.example/dns-query")
    assert (doh.proto, doh.url, doh.servers, doh.tls_name) == ("doh", "https://dns.example/dns-query",
                                                                (("dns.example", 443),), "dns.example")
    pinned = ResolverSpec.parse("https://dns.example:8443/q#192.0.2.1")
    assert pinned.servers == (("192.0.2.1", 8443),) and pinned.url == "https://dns.example:8443/q"
    dot = ResolverSpec.parse("tls://dns.example")
    assert (dot.proto, dot.servers, dot.tls_name) == ("dot", (("dns.example", 853),), "dns.example")
    assert ResolverSpec.parse("tls://[::1]:8853").servers == (("::1", 8853),)
    assert ResolverSpec.parse("tcp://192.0.2.1").proto == "tcp"
    assert ResolverSpec.parse("192.0.2.1:5353").proto == "udp"
    for bad in ("ftp://x", "https://", "tls://x/path", "tcp://name.example", "dns.example", "https://x#notanip"):
        with pytest.raises(ValueError):
            ResolverSpec.parse(bad)


def test_doh_answers_with_proto(doh_server, tls_ctx):
    _, ca = tls_ctx
    rec = _lookup(f"https://127.0.0.1:{doh_server}/dns-query", ca=ca)
    assert rec.failure is None, rec.error_detail
    assert rec.answers == ["157.240.1.35"] and rec.proto == "doh" and rec.transport == "https"
    assert rec.resolver_address == f"https://127.0.0.1:{doh_server}/dns-query"
    nx = _lookup(f"https://127.0.0.1:{doh_server}/dns-query", name="gone.example", ca=ca)
    assert nx.failure == "dns_nxdomain_error" and nx.proto == "doh"


def test_doh_by_name_with_pinned_address(doh_server, tls_ctx):
    _, ca = tls_ctx
    rec = _lookup(f"https://doh.test:{doh_server}/dns-query#127.0.0.1", ca=ca)
    assert rec.failure is None, rec.error_detail
    assert rec.answers == ["157.240.1.35"]


def test_doh_certificate_checked(doh_server):
    rec = _lookup(f"https://127.0.0.1:{doh_server}/dns-query", timeout=3)  # system store: test CA unknown
    assert rec.failure is not None and rec.answers == [] and rec.proto == "doh"


def test_dot_answers_with_sni(dot_server, tls_ctx):
    _, ca = tls_ctx
    rec = _lookup(f"tls://dot.test:{dot_server}#127.0.0.1", ca=ca)
    assert rec.failure is None, rec.error_detail
    assert rec.answers == ["157.240.1.35"] and rec.proto == "dot" and rec.transport == "tls"
    assert rec.resolver_address == f"127.0.0.1:{dot_server}"
    by_ip = _lookup(f"tls://127.0.0.1:{dot_server}", ca=ca)
    assert by_ip.failure is None and by_ip.answers == ["157.240.1.35"]


def test_dot_wrong_name_fails_verification(dot_server, tls_ctx):
    _, ca = tls_ctx
    rec = _lookup(f"tls://wrong.test:{dot_server}#127.0.0.1", ca=ca, timeout=3)
    assert rec.failure is not None and rec.failure.startswith("ssl_"), rec.failure


def test_runner_records_proto_and_skips_injection_for_doh(doh_server, tls_ctx, dns_server):
    """A port-53 resolver that lies beside a DoH one that does not: both recorded, each with its proto."""
    from probe.records import Vantage
    from probe.pipeline import run_once
    from probe.runner import RunConfig
    from probe.targets import Target
    from tests.unit.servers import ZoneEntry

    _, ca = tls_ctx
    liar = dns_server({"www.facebook.com": ZoneEntry(a=["10.10.34.34"])})
    doh = f"https://127.0.0.1:{doh_server}/dns-query"
    cfg = RunConfig(vantage=Vantage(id="u"), results_dir=None, system_resolver=False, resolvers=(liar.address, doh),
                    ca_bundle=ca, timeout=10.0, retries=0, inject_window=0.2, target_deadline=30)
    t = Target("facebook", "fb", "web", dns_names=("www.facebook.com",))
    summary = run_once(cfg, [t])
    line = summary.records[0]
    by = {(d["resolver"], d["qtype"]): d for d in line["steps"]["dns"]}
    assert by[(liar.address, "A")]["answers"] == ["10.10.34.34"] and by[(liar.address, "A")]["proto"] == "udp"
    assert by[(doh, "A")]["answers"] == ["157.240.1.35"] and by[(doh, "A")]["proto"] == "doh"
    assert all(i["resolver"] != doh for i in line["steps"]["inject"])
    assert doh in line["config"]["resolvers"]
