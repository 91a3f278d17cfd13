"""``reachprobe helper``: the test helper as an ASGI app (Starlette, served by uvicorn).

An internet-facing service that fetches URLs for strangers, so every request passes, in order: the
per-client rate limit (429), a bounded request body (413), the concurrency limit (503, at once,
never queued), then the measurement under a total time cap. Nothing here logs a client address:
uvicorn's access log is off and our own lines name only what was measured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from probe import __version__
from probe.control.limits import RateLimiter
from probe.control.measure import ControlMeasurer, InvalidRequest, MeasureSettings
from probe.control.model import ControlRequest

log = logging.getLogger("probe.control")

SERVER_HEADER = f"reachprobe-helper/{__version__}"
_BODY_READ_TIMEOUT = 10.0  # a client that trickles its request body does not hold a slot for long


@dataclass(frozen=True)
class HelperConfig:
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    max_concurrent: int = 50  # measurements in flight; the next request gets 503 at once
    rate: float = 1.0  # requests per second per client (token bucket) ...
    burst: int = 30  # ... with this many saved up: one probe run's web targets
    max_request_bytes: int = 64 * 1024


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Server": SERVER_HEADER})


def create_app(config: HelperConfig) -> Starlette:
    measurer = ControlMeasurer(config.measure)
    limiter = RateLimiter(config.rate, config.burst)
    in_flight = asyncio.Semaphore(config.max_concurrent)
    stats = {"served": 0}

    async def endpoint(request: Request) -> Response:
        if request.method == "GET":  # oohelperd's liveness answer
            return JSONResponse(
                {"message": "Hello OONItarian!", "server": SERVER_HEADER}, headers={"Server": SERVER_HEADER}
            )
        if not limiter.allow(request.client.host if request.client else ""):
            return _error(429, "rate limit: slow down")
        try:
            async with asyncio.timeout(_BODY_READ_TIMEOUT):
                body = await _read_body(request, config.max_request_bytes)
        except _TooLarge:
            return _error(413, f"request body over {config.max_request_bytes} bytes")
        except TimeoutError:
            return _error(408, "request body too slow")
        if in_flight.locked():
            return _error(503, "busy: too many control requests in flight")
        async with in_flight:
            try:
                creq = ControlRequest.model_validate_json(body)
                started = time.monotonic()
                # The measurement's own steps stop within the timeout; this only bounds a bug.
                async with asyncio.timeout(config.measure.timeout + 5):
                    cresp = await measurer.measure(creq)
            except (ValidationError, InvalidRequest, json.JSONDecodeError) as exc:
                return _error(400, _one_line(exc))
            except TimeoutError:
                return _error(504, "measurement over its time cap")
        stats["served"] += 1
        log.debug("control %s: %s in %.2fs", stats["served"], _host_of(creq.http_request), time.monotonic() - started)
        return JSONResponse(cresp.to_wire(), headers={"Server": SERVER_HEADER})

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
    app.state.measurer = measurer
    app.state.limiter = limiter
    return app


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc']) or 'body'}: {first['msg']}"
    return str(exc).splitlines()[0][:300]


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def uvicorn_config(
    app,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    certfile: str | None = None,
    keyfile: str | None = None,
    trusted_proxies: str = "127.0.0.1",
    max_concurrent: int = 50,
):
    """uvicorn settings for an internet-facing helper: no access log, no logging config of its own
    (ours applies), bounded connections, short keep-alive, X-Forwarded-For trusted only from the
    reverse proxy (so the rate limit sees the real client, and nothing else can forge it)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        lifespan="off",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        proxy_headers=True,
        forwarded_allow_ips=trusted_proxies,
        server_header=False,
        limit_concurrency=max_concurrent * 4 + 16,
        timeout_keep_alive=5,
        # h11 rather than httptools: h11 caps the request line and headers (16 KiB here), llhttp
        # as uvicorn uses it does not. uvloop, when installed, is picked up for the event loop.
        http="h11",
        h11_max_incomplete_event_size=16 * 1024,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port), for running the server on a known socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
