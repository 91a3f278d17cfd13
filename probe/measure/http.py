"""HTTP GET with httpx: redirects followed by hand (bounded, every hop kept), body read with a cap.

Redirects are followed here rather than by httpx so the chain is evidence (a censor that redirects
to a blockpage shows up as a hop) and a redirect loop is recorded instead of raised. Connections are
never reused: a retry must open a fresh connection, or a reset on the first one would be hidden.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import time
from collections.abc import Callable

import httpcore
import httpx

from probe.failures import HTTP_TOO_MANY_REDIRECTS
from probe.measure import packets
from probe.measure.step import recording, since
from probe.records import HTTPAttempt, HTTPRedirect

# A common desktop browser string: censors and CDNs may treat unusual clients differently, and we
# want to see what a person would see.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
BODY_HEAD_CHARS = 2048
_TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)

BodyInspector = Callable[[str, dict[str, str]], list[dict[str, str]]]
LocationInspector = Callable[[str], list[dict[str, str]]]


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address the DNS step recorded for a host instead of resolving it again.
    One per measured target (the runner makes a client and a backend per target), so targets measured
    at once never connect to an address another target's DNS step produced.

    The HTTP evidence must belong to the same address the DNS evidence names (a hijacked answer
    leads the GET to the blockpage server, as it would a browser); hosts not pinned, e.g. the target
    of a cross-host redirect, fall back to the system resolver as a browser would.
    """

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.pins: dict[str, str] = {}

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = await self.inner.connect_tcp(
            self.pins.get(host.lower(), host),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        packets.note_socket(stream.get_extra_info("socket"))
        return stream

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def make_client(
    verify: ssl.SSLContext, *, timeout: float, max_connections: int = 100, backend: PinnedBackend | None = None
) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(verify=verify)
    # httpx has no public hook for the network backend; its transport is a thin mapping over an
    # httpcore pool, so we hand it a pool built with the documented httpcore API.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=verify,
        max_connections=max_connections,
        max_keepalive_connections=0,
        network_backend=backend or PinnedBackend(),
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
        trust_env=False,  # a proxy from the environment would measure the proxy's network, not ours
    )


def _title(body: bytes) -> str | None:
    m = _TITLE_RE.search(body[:65536])
    if not m:
        return None
    title = " ".join(m.group(1).decode("utf-8", "replace").split())
    return title[:300] or None


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    timeout: float,
    attempt: int,
    t_origin: float,
    max_redirects: int = 10,
    max_body: int = 262144,
    inspect_body: BodyInspector | None = None,
    host_header: str | None = None,
    inspect_location: LocationInspector | None = None,
) -> HTTPAttempt:
    """GET `url`. Never raises: a failure is recorded with what was seen before it.

    ``host_header`` replaces the Host header (the connection still goes to the URL host's address):
    that is the harmless-Host control, recorded with ``control=True``."""
    started = time.monotonic()
    rec = HTTPAttempt(
        attempt=attempt,
        url=url,
        t0=since(t_origin, started),
        duration_ms=0.0,
        failure=None,
        control=host_header is not None,
        host_header=host_header,
    )
    body = bytearray()
    with packets.attempt(rec), recording(rec, started):
        async with asyncio.timeout(timeout):
            await _follow(client, url, rec, body, started, max_redirects, max_body, host_header)
    if rec.status is not None:
        _summarise_body(rec, bytes(body), inspect_body)
    if inspect_location is not None:
        # A redirect into a blockpage host is evidence even when that host never answered.
        for hop in rec.redirects:
            if hop.location:
                rec.fingerprints.extend(inspect_location(hop.location))
    return rec


async def _follow(client, url, rec, body, started, max_redirects, max_body, host_header=None) -> None:
    request = client.build_request("GET", url, headers={"Host": host_header} if host_header else None)
    for hop in range(max_redirects + 1):
        rec.failed_url = str(request.url) if hop else None  # cleared below once this hop's page is complete
        response = await client.send(request, stream=True)
        try:
            rec.final_url = str(response.url)
            rec.status = response.status_code
            rec.headers = {k.lower(): v for k, v in response.headers.items()}
            if rec.ttfb_ms is None:
                rec.ttfb_ms = round((time.monotonic() - started) * 1000, 3)
            if response.next_request is not None:
                rec.redirects.append(
                    HTTPRedirect(
                        url=str(response.url), status=response.status_code, location=str(response.next_request.url)
                    )
                )
                if hop == max_redirects:
                    rec.failure = HTTP_TOO_MANY_REDIRECTS
                    rec.failed_url = None
                    return
                request = response.next_request
                continue
            await _read_body(response, rec, body, max_body)
            rec.failed_url = None
            return
        finally:
            await response.aclose()


async def _read_body(response: httpx.Response, rec: HTTPAttempt, body: bytearray, max_body: int) -> None:
    t_body = time.monotonic()
    try:
        async for chunk in response.aiter_bytes():
            room = max_body - len(body)
            body.extend(chunk[:room])
            if len(chunk) > room:
                rec.body_truncated = True
                break
    finally:
        # Throughput is kept even when the read is cut by the deadline: a throttled transfer is
        # exactly the case where the download does not finish.
        elapsed = time.monotonic() - t_body
        if body and elapsed > 0:
            rec.throughput_bps = round(len(body) / elapsed, 1)


def _summarise_body(rec: HTTPAttempt, body: bytes, inspect_body: BodyInspector | None) -> None:
    rec.body_length = len(body)
    rec.body_sha256 = hashlib.sha256(body).hexdigest()
    rec.title = _title(body)
    text = body.decode("utf-8", "replace")
    rec.body_head = text[:BODY_HEAD_CHARS]
    if inspect_body is not None:
        rec.fingerprints = inspect_body(text, rec.headers)
