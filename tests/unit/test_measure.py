"""Each measurement against loopback servers, and every failure string we map."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time

import dns.exception
import httpx
import pytest

from probe import failures as F
from probe.measure import dns as mdns
from probe.measure import http as mhttp
from probe.measure import tcp as mtcp
from probe.measure import tls as mtls
from tests.unit.servers import ZoneEntry


def run(coro):
    return asyncio.run(coro)


def T0():
    return time.monotonic()


# --------------------------------------------------------------------------------------------- DNS
@pytest.mark.parametrize(
    "entry, failure, rcode, answers",
    [
        (ZoneEntry(a=["127.0.0.1", "127.0.0.2"]), None, "NOERROR", ["127.0.0.1", "127.0.0.2"]),
        (ZoneEntry(rcode="NXDOMAIN"), F.DNS_NXDOMAIN, "NXDOMAIN", []),
        (ZoneEntry(rcode="SERVFAIL"), F.DNS_SERVFAIL, "SERVFAIL", []),
        (ZoneEntry(rcode="REFUSED"), F.DNS_REFUSED, "REFUSED", []),
        (ZoneEntry(), F.DNS_NO_ANSWER, "NOERROR", []),
        (ZoneEntry(drop=True), F.GENERIC_TIMEOUT, None, []),
    ],
    ids=["answers", "nxdomain", "servfail", "refused", "no_answer", "timeout"],
)
def test_dns_lookup(dns_server, entry, failure, rcode, answers):
    srv = dns_server({"ok.test": entry})
    rec = run(mdns.lookup("ok.test", "A", mdns.ResolverSpec.parse(srv.address), timeout=0.5, attempt=1, t_origin=T0()))
    assert rec.failure == failure
    assert rec.rcode == rcode
    assert sorted(rec.answers) == answers
    assert rec.resolver == srv.address and rec.resolver_address == srv.address
    assert rec.duration_ms >= 0


def test_dns_aaaa(dns_server):
    srv = dns_server({"ok.test": ZoneEntry(aaaa=["::1"])})
    rec = run(mdns.lookup("ok.test", "AAAA", mdns.ResolverSpec.parse(srv.address), timeout=1, attempt=1, t_origin=T0()))
    assert rec.failure is None and rec.answers == ["::1"] and rec.ttl == 60


def test_resolver_spec_parsing(tmp_path):
    assert mdns.ResolverSpec.parse("127.0.0.1").servers == (("127.0.0.1", 53),)
    assert mdns.ResolverSpec.parse("127.0.0.1:5353").servers == (("127.0.0.1", 5353),)
    assert mdns.ResolverSpec.parse("[::1]:5353").servers == (("::1", 5353),)
    assert mdns.ResolverSpec.parse("::1").servers == (("::1", 53),)
    for bad in ("dns.google", "1.2.3.4:0", "1.2.3.4:x"):
        with pytest.raises(ValueError):
            mdns.ResolverSpec.parse(bad)
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.9\nnameserver 127.0.0.10\n")
    assert mdns.ResolverSpec.system(str(conf)).servers == (("127.0.0.9", 53), ("127.0.0.10", 53))


def test_dns_no_resolver_configured(tmp_path):
    spec = mdns.ResolverSpec.system(str(tmp_path / "missing.conf"))
    rec = run(mdns.lookup("ok.test", "A", spec, timeout=1, attempt=1, t_origin=T0()))
    assert rec.failure == "dns_no_resolver_configured"


# --------------------------------------------------------------------------------------------- TCP
def test_tcp_connect_ok(http_server):
    rec = run(mtcp.connect("127.0.0.1", http_server.port, timeout=1, attempt=1, t_origin=T0()))
    assert rec.failure is None and rec.port == http_server.port


def test_tcp_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rec = run(mtcp.connect("127.0.0.1", port, timeout=1, attempt=1, t_origin=T0()))
    assert rec.failure == F.CONNECTION_REFUSED


# --------------------------------------------------------------------------------------------- TLS
def hs(port, sni, ca=None, control=False, timeout=1.0):
    return run(mtls.handshake("127.0.0.1", port, sni, timeout=timeout, attempt=1, t_origin=T0(),
                              ca_bundle=ca, control=control))


def test_tls_valid(https_server, pki):
    rec = hs(https_server.port, "ok.test", str(pki.ca_pem))
    assert rec.failure is None and rec.cert_valid is True
    assert "reachprobe test CA" in rec.cert_issuer and rec.cert_sha256 and rec.tls_version


def test_tls_unknown_authority_records_presented_cert(https_server):
    rec = hs(https_server.port, "ok.test", None)  # system store does not know the test CA
    assert rec.failure == F.SSL_UNKNOWN_AUTHORITY and rec.cert_valid is False
    assert rec.cert_issuer and "reachprobe test CA" in rec.cert_issuer


def test_tls_invalid_hostname(https_server, pki):
    rec = hs(https_server.port, "not-in-cert.test", str(pki.ca_pem))
    assert rec.failure == F.SSL_INVALID_HOSTNAME and rec.cert_valid is False


def test_tls_reset(raw_listener):
    assert hs(raw_listener("reset").port, "ok.test").failure == F.CONNECTION_RESET


def test_tls_timeout(raw_listener):
    rec = hs(raw_listener("hang").port, "ok.test", timeout=0.3)
    assert rec.failure == F.GENERIC_TIMEOUT and rec.duration_ms < 2000


def test_tls_eof(raw_listener):
    assert hs(raw_listener("close").port, "ok.test").failure == F.EOF_ERROR


def test_tls_control_does_not_validate(https_server):
    rec = hs(https_server.port, "example.com", control=True)
    assert rec.failure is None and rec.control and rec.cert_valid is None


# -------------------------------------------------------------------------------------------- HTTP
def fetch(url, ca=None, inspect=None, timeout=2.0, max_body=262144, pins=None):
    async def go():
        backend = mhttp.PinnedBackend()
        backend.pins.update(pins or {})
        async with mhttp.make_client(mtls.verifying_context(ca), timeout=timeout, backend=backend) as c:
            return await mhttp.fetch(c, url, timeout=timeout, attempt=1, t_origin=T0(), max_body=max_body,
                                     inspect_body=inspect)
    return run(go())


def test_http_ok_via_pinned_name(http_server):
    rec = fetch(f"http://ok.test:{http_server.port}/", pins={"ok.test": "127.0.0.1"})
    assert rec.failure is None and rec.status == 200 and rec.title == "OK page"
    assert rec.body_length > 0 and len(rec.body_sha256) == 64 and rec.headers["content-type"].startswith("text/html")


def test_https_ok(https_server, pki):
    rec = fetch(f"https://ok.test:{https_server.port}/", ca=str(pki.ca_pem), pins={"ok.test": "127.0.0.1"})
    assert rec.failure is None and rec.status == 200


def test_https_unknown_authority(https_server):
    rec = fetch(f"https://ok.test:{https_server.port}/", pins={"ok.test": "127.0.0.1"})
    assert rec.failure == F.SSL_UNKNOWN_AUTHORITY and rec.status is None


def test_http_redirect_followed(http_server):
    rec = fetch(f"http://127.0.0.1:{http_server.port}/redirect")
    assert rec.status == 200 and [r.status for r in rec.redirects] == [301] and rec.final_url.endswith("/")


def test_http_redirect_loop_is_bounded(http_server):
    rec = fetch(f"http://127.0.0.1:{http_server.port}/loop")
    assert rec.failure == F.HTTP_TOO_MANY_REDIRECTS and len(rec.redirects) == 11


def test_http_blockpage_inspected(http_server):
    seen = []

    def inspect(text, headers):
        seen.append(text)
        return [{"name": "nat_ir", "pattern": "10.10.34.34", "location": "body"}] if "10.10.34.34" in text else []

    rec = fetch(f"http://127.0.0.1:{http_server.port}/blockpage", inspect=inspect)
    assert rec.fingerprints[0]["name"] == "nat_ir" and rec.title == "M1-6" and "iframe" in rec.body_head


def test_http_body_cap(http_server):
    rec = fetch(f"http://127.0.0.1:{http_server.port}/big", max_body=10000)
    assert rec.body_truncated and rec.body_length == 10000 and rec.failure is None


def test_http_trickle_throughput(http_server):
    rec = fetch(f"http://127.0.0.1:{http_server.port}/trickle")
    assert rec.failure is None and rec.body_length == 4096
    assert rec.throughput_bps is not None and rec.throughput_bps < 4096 / 0.2


def test_http_trickle_cut_by_deadline_keeps_partial(http_server):
    rec = fetch(f"http://127.0.0.1:{http_server.port}/trickle", timeout=0.15)
    assert rec.failure == F.GENERIC_TIMEOUT and rec.status == 200 and rec.body_length < 4096


def test_http_reset(http_server):
    assert fetch(f"http://127.0.0.1:{http_server.port}/reset").failure == F.CONNECTION_RESET


def test_http_close_without_response(http_server):
    assert fetch(f"http://127.0.0.1:{http_server.port}/close").failure == F.EOF_ERROR


# ------------------------------------------------------------------------------ failure mapping
@pytest.mark.parametrize(
    "exc, expected",
    [
        (OSError(errno.ENETUNREACH, "Network is unreachable"), F.NETWORK_UNREACHABLE),
        (OSError(errno.EHOSTUNREACH, "No route to host"), F.HOST_UNREACHABLE),
        (ConnectionResetError(), F.CONNECTION_RESET),
        (ConnectionRefusedError(), F.CONNECTION_REFUSED),
        (ConnectionAbortedError(), F.CONNECTION_ABORTED),
        (TimeoutError(), F.GENERIC_TIMEOUT),
        (dns.exception.Timeout(), F.GENERIC_TIMEOUT),
        (httpx.ReadTimeout("x"), F.GENERIC_TIMEOUT),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), F.DNS_NXDOMAIN),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), F.DNS_TEMPORARY_FAILURE),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), F.EOF_ERROR),
        (ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure"), F.SSL_FAILED_HANDSHAKE),
        (asyncio.IncompleteReadError(b"", 5), F.EOF_ERROR),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), F.EOF_ERROR),
        (httpx.RemoteProtocolError("malformed"), F.HTTP_PROTOCOL_ERROR),
    ],
)
def test_failure_mapping(exc, expected):
    assert F.classify_exception(exc) == expected


def test_wrapped_cause_is_found():
    try:
        try:
            raise ConnectionResetError(errno.ECONNRESET, "reset")
        except ConnectionResetError as inner:
            raise httpx.ReadError("read failed") from inner
    except httpx.ReadError as outer:
        assert F.classify_exception(outer) == F.CONNECTION_RESET


def test_unknown_failure_keeps_text():
    assert F.classify_exception(ValueError("odd")).startswith("unknown_failure: ValueError")
