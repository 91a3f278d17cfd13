"""Servers the unit tests start on 127.0.0.1: a DNS server with a zone, an HTTP(S) server with a
test CA made at test time, and raw TCP listeners that reset, hang or close. Each runs in a thread
and is stopped by its fixture."""

from __future__ import annotations

import datetime as dt
import socket
import socketserver
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

LOOPBACK = "127.0.0.1"


class _Threaded:
    """A socketserver run in a daemon thread for the length of a `with` block."""

    server: socketserver.BaseServer
    thread: threading.Thread

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------- DNS
@dataclass
class ZoneEntry:
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    rcode: str = "NOERROR"
    drop: bool = False  # never answer (a timeout)
    fail_first: int = 0  # answer SERVFAIL to the first N queries (a flaky resolver)


class DNSServer(_Threaded):
    def __init__(self, zone: dict[str, ZoneEntry], delay: float = 0.0):
        self.delay = delay  # seconds before each reply: a simulated round trip
        self.zone = {k.lower().rstrip("."): v for k, v in zone.items()}
        self.queries: list[tuple[str, str]] = []
        self._seen: dict[str, int] = {}
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                if outer.delay:
                    time.sleep(outer.delay)
                reply = outer.answer(data)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        self.server = socketserver.ThreadingUDPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"{LOOPBACK}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, data: bytes) -> bytes | None:
        q = dns.message.from_wire(data)
        question = q.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        qtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, qtype))
        entry = self.zone.get(name)
        resp = dns.message.make_response(q)
        if entry is None:
            resp.set_rcode(dns.rcode.NXDOMAIN)
            return resp.to_wire()
        if entry.drop:
            return None
        n = self._seen[name] = self._seen.get(name, 0) + 1
        if n <= entry.fail_first:
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp.to_wire()
        resp.set_rcode(dns.rcode.from_text(entry.rcode))
        addrs = entry.a if qtype == "A" else entry.aaaa if qtype == "AAAA" else []
        if addrs and entry.rcode == "NOERROR":
            resp.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", qtype, addrs))
        return resp.to_wire()



# -------------------------------------------------------------------------------------- TLS certs
@dataclass
class TestPKI:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_pki(directory: Path, names: list[str]) -> TestPKI:
    """A CA and one server certificate for `names` (+ 127.0.0.1), made fresh for the test run."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reachprobe test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = TestPKI(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    pki.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    return pki


# ------------------------------------------------------------------------------------------- HTTP
IRAN_BLOCKPAGE = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
                  '<title>M1-6</title></head><body><iframe src="http://10.10.34.34?type=Invalid Site&policy=MainPolicy"'
                  ' style="width: 100%; height: 100%" scrolling="no" marginwidth="0" marginheight="0" frameborder="0"'
                  ' vspace="0" hspace="0"></iframe></body></html>')


def _linger_reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        delay = getattr(self.server, "delay", 0.0)
        if delay:
            time.sleep(delay)
        path = self.path.split("?")[0]
        if (self.headers.get("Host") or "").startswith("host-filtered.test"):
            # A Host filter: this name is reset whatever the path; any other Host is answered.
            self.wfile.flush()
            _linger_reset(self.connection)
            self.close_connection = True
            return
        if path == "/":
            self._send(200, b"<html><head><title>OK page</title></head><body>hello</body></html>")
        elif path == "/blockpage":
            self._send(200, IRAN_BLOCKPAGE.encode())
        elif path == "/loop":
            self._send(302, b"", extra={"Location": "/loop"})
        elif path == "/redirect":
            self._send(301, b"", extra={"Location": "/"})
        elif path == "/big":
            self._send(200, b"x" * (2 * 1024 * 1024), ctype="application/octet-stream")
        elif path == "/trickle":
            chunk, n = b"y" * 512, 8
            self.send_response(200)
            self.send_header("Content-Length", str(len(chunk) * n))
            self.end_headers()
            for _ in range(n):
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(0.05)
        elif path == "/reset":
            self.wfile.flush()
            _linger_reset(self.connection)
            self.close_connection = True
        elif path == "/close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(404, b"<title>not found</title>")


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops SYNs under concurrent clients (1 s retransmits), and wrapping
    # the listening socket would run every TLS handshake serially in the accept loop: the handshake
    # is done in the connection's own thread instead.
    request_queue_size = 512
    daemon_threads = True
    tls: ssl.SSLContext | None = None
    delay = 0.0

    def finish_request(self, request, client_address):
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class HTTPServer(_Threaded):
    """ThreadingHTTPServer on 127.0.0.1, plain or TLS (with the test PKI)."""

    def __init__(self, pki: TestPKI | None = None, delay: float = 0.0):
        self.server = _Server((LOOPBACK, 0), _Handler)
        self.server.delay = delay  # seconds before each response: a simulated round trip
        if pki is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pki.cert_pem, pki.key_pem)
            self.server.tls = ctx
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)



class RawListener:
    """A TCP listener that misbehaves on purpose: 'reset' (RST on accept), 'hang' (accept, never
    answer), 'close' (read the first bytes, then a clean FIN)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            if self.mode == "reset":
                try:
                    conn.settimeout(1)
                    conn.recv(1024)  # wait for the ClientHello, as a middlebox does
                except OSError:
                    pass
                _linger_reset(conn)
            elif self.mode == "hang":
                self.held.append(conn)
            else:
                # Drain the whole ClientHello first: closing with unread bytes makes the kernel
                # send a RST, and this listener is meant to end with a clean FIN.
                conn.settimeout(0.2)
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
                conn.shutdown(socket.SHUT_WR)
                conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(2)
        for c in self.held:
            c.close()
        self.sock.close()
