"""What the helper does for one control request, the way oohelperd does it (probe-cli
``internal/oohelperd/measure.go``): resolve the URL's host, then concurrently TCP-connect (and TLS
handshake, SNI = the URL's host) to every endpoint and fetch the URL, following redirects.

Every connection goes through ``AddressPolicy`` and is made to the address that was checked.
Failures use oohelperd's words where its clients compare them (DNS, TCP, the HTTP special cases),
otherwise the df-007 strings of ``probe.failures`` (see docs/helper.md, "Protocol").
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
import httpcore
import httpx

from probe.control.asn import ASNTable
from probe.control.model import (
    FLAG_IS_BOGON,
    FLAG_RESOLVED_BY_PROBE,
    FLAG_RESOLVED_BY_TH,
    FLAG_VALID_FOR_DOMAIN,
    TH_BOGON_ERROR,
    TH_CONNECT_ERROR,
    TH_CONNECTION_REFUSED,
    TH_DNS_LOOKUP_ERROR,
    TH_DNS_NAME_ERROR,
    TH_DNS_SERVER_FAILURE,
    TH_UNKNOWN_ERROR,
    ControlRequest,
    ControlResponse,
    DNSResult,
    HTTPRequestResult,
    IPInfo,
    TCPConnectResult,
    TLSHandshakeResult,
)
from probe.control.policy import AddressPolicy
from probe.failures import (
    CONNECTION_REFUSED,
    DNS_NO_ANSWER,
    DNS_NXDOMAIN,
    DNS_REFUSED,
    DNS_SERVER_MISBEHAVING,
    DNS_SERVFAIL,
    DNS_TEMPORARY_FAILURE,
    GENERIC_TIMEOUT,
    classify_exception,
)
from probe.measure.http import USER_AGENT
from probe.netfacts import parse_ip

# Only these request headers are passed on, as oohelperd does: the rest could carry the probe's
# cookies or identify it to the site.
FORWARDED_HEADERS = ("user-agent", "accept", "accept-language")
TITLE_SCAN_BYTES = 65536
_TITLE_RE = re.compile(rb"(?i)<title>([^<]{1,512})</title>")  # measurexlite.WebGetTitle
_ADDRESSES_TRIED = 4  # per HTTP connection, of a name's (all allowed) addresses
# x_body_bytes_per_s only for a body that took this long from first to last byte: a shorter one is one
# or two TCP windows, whose "rate" says nothing about the path.
BODY_RATE_MIN_SECONDS = 0.2


class InvalidRequest(ValueError):
    """The request cannot be measured (bad URL, too many endpoints): the server answers 400."""


class DestinationRefused(Exception):
    """The SSRF policy refused every way to reach a host."""

    def __init__(self, host: str, reason: str):
        super().__init__(f"{host}: refused by the helper's address policy ({reason})")
        self.reason = reason


@dataclass(frozen=True)
class MeasureSettings:
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    resolvers: tuple[tuple[str, int], ...] = ()  # () = the host's resolv.conf
    timeout: float = 15.0  # per control request, all steps
    dns_timeout: float = 4.0
    max_body: int = 4 * 1024 * 1024
    max_redirects: int = 10
    max_endpoints: int = 32
    ca_bundle: str | None = None
    asn_table: ASNTable | None = None


# -------------------------------------------------------------------------------------- failures
def _dns_failure(exc: BaseException) -> str | None:
    """oohelperd's dnsMapFailure: what its clients compare the probe's DNS result against."""
    failure = classify_exception(exc)
    if failure == DNS_NXDOMAIN:
        return TH_DNS_NAME_ERROR
    if failure == DNS_NO_ANSWER:
        return None
    if failure in (DNS_SERVFAIL, DNS_REFUSED, DNS_SERVER_MISBEHAVING, DNS_TEMPORARY_FAILURE):
        return TH_DNS_SERVER_FAILURE
    return TH_UNKNOWN_ERROR  # a timeout too, as oohelperd says


def _tcp_failure(exc: BaseException) -> str:
    """oohelperd's tcpMapFailure."""
    failure = classify_exception(exc)
    if failure == GENERIC_TIMEOUT:
        return GENERIC_TIMEOUT
    if failure == CONNECTION_REFUSED:
        return TH_CONNECTION_REFUSED
    return TH_CONNECT_ERROR


def _http_failure(exc: BaseException) -> str:
    """oohelperd's httpMapFailure for the cases its clients compare; df-007 strings otherwise."""
    for e in (exc, exc.__cause__, exc.__context__):
        if isinstance(e, DestinationRefused):
            return TH_BOGON_ERROR
        if isinstance(e, (dns.exception.DNSException, _LookupTimeout)):
            return TH_DNS_LOOKUP_ERROR
    failure = classify_exception(exc)
    if failure == CONNECTION_REFUSED:
        return TH_CONNECTION_REFUSED
    return failure[:200]


class _LookupTimeout(TimeoutError):
    """A name lookup for an HTTP hop ran out of time (dns_lookup_error, not a fetch timeout)."""


# -------------------------------------------------------------------------------------------- DNS
def make_resolver(servers: tuple[tuple[str, int], ...]) -> dns.asyncresolver.Resolver:
    if not servers:
        return dns.asyncresolver.Resolver()
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
    return resolver


async def resolve(resolver: dns.asyncresolver.Resolver, host: str, timeout: float) -> list[str]:
    """A and AAAA (CNAMEs followed), A first. Raises dnspython's exception if both fail;
    [] when the name exists but has no address."""
    name = host.rstrip(".") + "."

    async def one(rdtype: str) -> list[str]:
        answer = await resolver.resolve(name, rdtype, lifetime=timeout, search=False, raise_on_no_answer=False)
        return [rr.to_text() for rr in answer.rrset] if answer.rrset is not None else []

    a, aaaa = await asyncio.gather(one("A"), one("AAAA"), return_exceptions=True)
    if isinstance(a, BaseException) and isinstance(aaaa, BaseException):
        raise a
    return (a if isinstance(a, list) else []) + (aaaa if isinstance(aaaa, list) else [])


# ---------------------------------------------------------------------------------- pinned fetch
class PinnedGuardBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the SSRF guard in front of every connection.

    Each host (the URL's and every redirect hop's) is resolved once per control request through the
    helper's resolver, every address is checked, and the socket is opened to a checked address: what
    was checked is what is connected to. As netxlite's bogon resolver does, one special-purpose
    answer among a name's addresses refuses the name.
    """

    def __init__(self, policy: AddressPolicy, lookup: Callable[[str], Awaitable[list[str]]]):
        self.inner = httpcore.AnyIOBackend()
        self.policy = policy
        self.lookup = lookup

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addrs = [host] if parse_ip(host) is not None else await self.lookup(host)
        if not addrs:
            raise dns.resolver.NoAnswer()
        for ip in addrs:
            reason = self.policy.refusal(ip)
            if reason is not None:
                raise DestinationRefused(host, reason)
        last: Exception | None = None
        for ip in addrs[:_ADDRESSES_TRIED]:
            try:
                return await self.inner.connect_tcp(
                    str(parse_ip(ip)), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:  # try the next address, as a browser would
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args, **kwargs):  # never: only TCP to checked addresses
        raise DestinationRefused("unix socket", "not-an-address")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _canonical_header(name: str) -> str:
    """Go's CanonicalMIMEHeaderKey, so our headers read like oohelperd's ("X-Xss-Protection")."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _h3_endpoint(first: httpx.Response) -> str:
    """oohelperd's discoverH3Endpoint: the h3 entry of the first response's Alt-Svc."""
    for entry in first.headers.get("alt-svc", "").split(","):
        _, _, authority = entry.split(";")[0].partition("h3=")
        authority = authority.strip().strip('"')
        if not authority:
            continue
        host, _, port = authority.rpartition(":")
        if not port:
            return ""
        return f"{host or first.request.url.host}:{port}"
    return ""


async def _fetch(
    req: ControlRequest, settings: MeasureSettings, backend: PinnedGuardBackend, ssl_ctx: ssl.SSLContext, timeout: float
) -> HTTPRequestResult:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    for name, values in req.http_request_headers.items():
        if name.lower() in FORWARDED_HEADERS and values:
            headers[name] = values[0]
    transport = httpx.AsyncHTTPTransport(verify=ssl_ctx)
    # httpx has no public hook for the network backend; its transport is a thin mapping over an
    # httpcore pool, so we hand it a pool built with the documented httpcore API (as probe.measure.http).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_ctx, max_connections=4, max_keepalive_connections=0, network_backend=backend
    )
    result = HTTPRequestResult()
    started = time.monotonic()
    first_byte = last_byte = None  # when the body's first and last chunks arrived
    length = 0
    async with httpx.AsyncClient(
        transport=transport,
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        timeout=httpx.Timeout(timeout),
        trust_env=False,
    ) as client:
        try:
            async with asyncio.timeout(timeout):
                async with client.stream("GET", req.http_request, headers=headers) as response:
                    result.status_code = response.status_code
                    result.headers = {_canonical_header(k): v for k, v in response.headers.items()}
                    result.discovered_h3_endpoint = _h3_endpoint((response.history or [response])[0])
                    head = bytearray()
                    try:
                        async for chunk in response.aiter_bytes():
                            last_byte = time.monotonic()
                            if first_byte is None:
                                first_byte = last_byte
                            chunk = chunk[: settings.max_body - length]
                            length += len(chunk)
                            if len(head) < TITLE_SCAN_BYTES:
                                head += chunk[: TITLE_SCAN_BYTES - len(head)]
                            if length >= settings.max_body:
                                break  # the cap: oohelperd reads through a LimitedReader likewise
                    finally:
                        result.body_length = length
                        m = _TITLE_RE.search(bytes(head))
                        result.title = m.group(1).decode("utf-8", "replace") if m else ""
        except Exception as exc:
            result.failure = _http_failure(exc)
            if result.status_code == -1:
                result.body_length = -1
    _set_timing(result, started, first_byte, last_byte, length)
    return result


def _set_timing(
    result: HTTPRequestResult, started: float, first_byte: float | None, last_byte: float | None, length: int
) -> None:
    """Our extension to the protocol (OONI's helpers lack it; clients must do without): the whole
    fetch's time, and the body's transfer rate when the body took long enough to measure one, so a
    client can tell a throttled path from a slow server."""
    # Extra (undeclared) fields of the extra="allow" model: they stay in model_extra, where convert.py reads them.
    result.x_duration_ms = round((time.monotonic() - started) * 1000, 3)  # type: ignore[attr-defined]
    body_s = (last_byte - first_byte) if first_byte is not None and last_byte is not None else 0.0
    result.x_body_bytes_per_s = round(length / body_s, 1) if body_s >= BODY_RATE_MIN_SECONDS else None  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ TCP and TLS
async def _tcp_tls(
    ip: str, port: int, sni: str | None, ssl_ctx: ssl.SSLContext, timeout: float
) -> tuple[TCPConnectResult, TLSHandshakeResult | None]:
    deadline = time.monotonic() + timeout
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(ip, port)
    except Exception as exc:
        return TCPConnectResult(status=False, failure=_tcp_failure(exc)), None
    tls = None
    try:
        if sni is not None:
            try:
                async with asyncio.timeout(max(0.001, deadline - time.monotonic())):
                    await writer.start_tls(ssl_ctx, server_hostname=sni)
                tls = TLSHandshakeResult(server_name=sni, status=True, failure=None)
            except Exception as exc:
                tls = TLSHandshakeResult(server_name=sni, status=False, failure=classify_exception(exc)[:200])
    finally:
        writer.transport.abort()  # nothing to say to the server: no need to wait for a clean close
    return TCPConnectResult(status=True, failure=None), tls


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _split_endpoint(text: str) -> str | None:
    """The address of an "ip:port" / "[v6]:port" endpoint; None for names (never resolved here)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit():
        return None
    addr = parse_ip(host)
    return None if addr is None or (addr.version == 6 and not host.startswith("[")) else str(addr)


def parse_target(url: str) -> tuple[str, str, list[int]]:
    """(scheme, host, ports to measure) as oohelperd's ipInfoToEndpoints: an explicit port alone,
    else 443 for https and 80 and 443 for http. InvalidRequest for anything but http(s) URLs."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"http_request: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("http_request: only http:// and https:// URLs with a host are measured")
    ports = [port] if port else ([443] if parts.scheme == "https" else [80, 443])
    return parts.scheme, parts.hostname, ports


# ------------------------------------------------------------------------------------ the request
class ControlMeasurer:
    """Holds what lives for the helper's lifetime (resolver, TLS context, ASN table)."""

    def __init__(self, settings: MeasureSettings):
        self.settings = settings
        self.resolver = make_resolver(settings.resolvers)
        # Validates as a browser would, as oohelperd does (system roots; a lab gives its own CA).
        self.ssl_ctx = (
            ssl.create_default_context(cafile=settings.ca_bundle)
            if settings.ca_bundle
            else ssl.create_default_context()
        )
        self.ssl_ctx.set_alpn_protocols(["http/1.1"])

    def validate(self, req: ControlRequest) -> tuple[str, str, list[int]]:
        if len(req.tcp_connect) > self.settings.max_endpoints:
            raise InvalidRequest(
                f"tcp_connect: {len(req.tcp_connect)} endpoints, at most {self.settings.max_endpoints} are measured"
            )
        return parse_target(req.http_request)

    async def measure(self, req: ControlRequest) -> ControlResponse:
        s = self.settings
        scheme, host, ports = self.validate(req)
        started = time.monotonic()
        literal = parse_ip(host)
        cache: dict[str, asyncio.Future[list[str]]] = {}

        async def lookup(name: str) -> list[str]:
            key = name.lower().rstrip(".")
            if key not in cache:
                cache[key] = asyncio.ensure_future(resolve(self.resolver, key, s.dns_timeout))
            try:
                return await asyncio.shield(cache[key])
            except dns.exception.Timeout as exc:
                raise _LookupTimeout(str(exc)) from exc

        dns_result = DNSResult()
        if literal is None:
            try:
                dns_result.addrs = await lookup(host)
            except Exception as exc:
                dns_result.failure = _dns_failure(exc)

        ip_info = self._ip_info(req, dns_result.addrs)
        # Over the cap, the probe's own addresses go first: they are what the control is compared with.
        usable = sorted(
            (ip for ip, info in ip_info.items() if not info.flags & FLAG_IS_BOGON),
            key=lambda ip: not ip_info[ip].flags & FLAG_RESOLVED_BY_PROBE,
        )
        endpoints = [(ip, port) for ip in usable for port in ports][: s.max_endpoints]
        remaining = max(0.5, s.timeout - (time.monotonic() - started))
        sni = host
        tls_on = {p for p in ports if p == 443 or scheme == "https"}

        backend = PinnedGuardBackend(s.policy, lookup)
        conns = [_tcp_tls(ip, port, sni if port in tls_on else None, self.ssl_ctx, remaining) for ip, port in endpoints]
        gathered = await asyncio.gather(_fetch(req, s, backend, self.ssl_ctx, remaining), *conns)
        http = cast(HTTPRequestResult, gathered[0])
        pairs = cast(list[tuple[TCPConnectResult, TLSHandshakeResult | None]], gathered[1:])

        resp = ControlResponse(dns=dns_result, http_request=http, ip_info=ip_info)
        for (ip, port), (tcp, tls) in zip(endpoints, pairs, strict=False):
            key = _endpoint(ip, port)
            resp.tcp_connect[key] = tcp
            if tls is not None:
                resp.tls_handshake[key] = tls
                if tls.status:
                    ip_info[ip].flags |= FLAG_VALID_FOR_DOMAIN
        for fut in cache.values():
            fut.cancel()
        return resp

    def _ip_info(self, req: ControlRequest, th_addrs: list[str]) -> dict[str, IPInfo]:
        """oohelperd's newIPInfo: who found each address, whether it is (for us) refused, its ASN.
        The bogon flag means "refused by this helper's policy": an --allow-net network is measured."""
        flags: dict[str, int] = {}
        for epnt in req.tcp_connect:
            addr = _split_endpoint(epnt)
            if addr is not None:
                flags[addr] = flags.get(addr, 0) | FLAG_RESOLVED_BY_PROBE
        for text in th_addrs:
            ip = parse_ip(text)
            if ip is not None:
                flags[str(ip)] = flags.get(str(ip), 0) | FLAG_RESOLVED_BY_TH
        table = self.settings.asn_table
        out: dict[str, IPInfo] = {}
        for addr in sorted(flags, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a))):
            f = flags[addr] | (FLAG_IS_BOGON if not self.settings.policy.allows(addr) else 0)
            out[addr] = IPInfo(asn=table.lookup(addr) if table else 0, flags=f)
        return out
