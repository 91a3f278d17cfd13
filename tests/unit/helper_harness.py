"""The test helper (``probe.control.server``) run by a real uvicorn server on 127.0.0.1, in a thread
(its fixtures are in ``helper_fixtures``, which test modules load with ``pytest_plugins``), plus a small redirect server (a Location of the test's choosing) and a listener that only counts
connections, for the SSRF tests."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn

from probe.control.policy import AddressPolicy
from probe.control.server import HelperConfig, bind, create_app, uvicorn_config

LOOPBACK = "127.0.0.1"
LOOP = AddressPolicy.from_cidrs(["127.0.0.0/8"])  # what --allow-net 127.0.0.0/8 gives


class HelperServer:
    def __init__(self, config: HelperConfig, certfile: str | None = None, keyfile: str | None = None):
        self.config = config
        self.app = create_app(config)
        self.sock = bind(LOOPBACK, 0)
        self.port = self.sock.getsockname()[1]
        self.scheme = "https" if certfile else "http"
        self.server = uvicorn.Server(uvicorn_config(self.app, host=LOOPBACK, port=self.port, certfile=certfile,
                                                    keyfile=keyfile, max_concurrent=config.max_concurrent))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}/"

    def __enter__(self) -> HelperServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the helper did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


class StaticServer:
    """Answers every GET and POST with one fixed response: a 302 to ``location`` (the SSRF tests),
    or ``status`` and ``body`` (a "helper" that is not one, for the client tests)."""

    def __init__(self, location: str | None = None, status: int = 200, body: bytes = b""):
        outer = self
        self.location = location

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(302 if outer.location else status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class CountingListener:
    """A listening socket nobody accepts on: the kernel completes any connection into the backlog,
    so ``connections()`` tells, without timing, whether anything connected."""

    def __init__(self, host: str = LOOPBACK):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        self.sock.setblocking(False)
        n = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return n
            conn.close()
            n += 1

    def close(self) -> None:
        self.sock.close()

