"""DNS lookups with dnspython, one query per (name, type, resolver), recording rcode and answers.

We send our own queries rather than calling getaddrinfo so that the rcode, the CNAME chain, the TTL
and which server answered are all kept as evidence. "system" means the nameservers of the host's
resolv.conf, asked in order as the stub resolver would (the one that answered is recorded).

Resolver forms (``ResolverSpec.parse``, the one parser of ``--resolver``):

| form | proto | notes |
|---|---|---|
| ``system`` | udp | resolv.conf's nameservers |
| ``IP``, ``IP:port``, ``[v6]:port`` | udp | TCP when the answer is truncated (recorded as ``proto: tcp``) |
| ``tcp://IP[:port]`` | tcp | DNS over TCP only |
| ``https://host[:port]/path`` | doh | DNS over HTTPS (RFC 8484, POST); certificate checked for ``host`` |
| ``tls://host[:port]`` | dot | DNS over TLS (RFC 7858), port 853 by default; SNI and certificate name ``host`` |

A DoH or DoT ``host`` given as a name is looked up through the system resolver before the query
(a port-53 interceptor can then refuse the name, but it cannot rewrite the answers that come back
over TLS). ``#IP`` at the end pins the server's address and skips that lookup:
``https://dns.example/dns-query#192.0.2.1``, ``tls://dns.example#192.0.2.1``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

import dns.asyncquery
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from probe.endpoint import format_endpoint, split_host_port
from probe.failures import DNS_NO_ANSWER, DNS_NO_RESOLVER, GENERIC_TIMEOUT, RCODE_FAILURES, UNKNOWN_FAILURE
from probe.measure.step import elapsed_ms, record_failure, since
from probe.netfacts import is_ip_literal
from probe.records import DNSAttempt

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class ResolverSpec:
    """A resolver as the user named it (see the module docstring for the forms)."""

    label: str
    servers: tuple[tuple[str, int], ...]
    proto: str = "udp"  # "udp" (TCP on truncation) | "tcp" | "doh" | "dot"
    url: str | None = None  # DoH: the query URL (without the #address pin)
    tls_name: str | None = None  # DoH/DoT: the name the certificate must carry (None for an IP)

    @classmethod
    def parse(cls, text: str) -> ResolverSpec:
        """ValueError with a message naming what is wrong for anything else."""
        text = text.strip()
        if text == SYSTEM:
            return cls.system()
        if "://" in text:
            return cls._parse_url(text)
        host, port = split_host_port(text, 53)
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        ipaddress.ip_address(host)  # raises ValueError for a name: resolvers are given by address
        return cls(text, ((host, port),))

    @classmethod
    def _parse_url(cls, text: str) -> ResolverSpec:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("https", "tls", "tcp", "udp"):
            raise ValueError(f"unknown resolver scheme {scheme}:// (use https://, tls://, tcp:// or an IP)")
        parts = urlsplit(text)
        host = parts.hostname
        if not host:
            raise ValueError("no host in the resolver URL")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        pin = parts.fragment or None
        if pin is not None:
            ipaddress.ip_address(pin.strip("[]"))
            pin = pin.strip("[]")
        is_ip = is_ip_literal(host)
        if scheme in ("tcp", "udp"):
            if not is_ip:
                raise ValueError(f"{scheme}:// needs an IP address, not a name ({host})")
            return cls(text, ((host, port or 53),), proto=scheme)
        if scheme == "tls":
            if parts.path not in ("", "/"):
                raise ValueError("tls:// takes host[:port] only (no path)")
            return cls(text, ((pin or host, port or 853),), proto="dot", tls_name=None if is_ip else host)
        netloc_host = f"[{host}]" if ":" in host else host
        url = f"https://{netloc_host}{f':{port}' if port else ''}{parts.path or '/dns-query'}"
        if parts.query:
            url += "?" + parts.query
        return cls(text, ((pin or host, port or 443),), proto="doh", url=url, tls_name=None if is_ip else host)

    @classmethod
    def system(cls, resolv_conf: str = "/etc/resolv.conf") -> ResolverSpec:
        try:
            # Read from resolv.conf the nameservers are address strings (dnspython types them str | Nameserver).
            servers = tuple((cast(str, ns), 53) for ns in dns.resolver.Resolver(filename=resolv_conf).nameservers)
        except (dns.resolver.NoResolverConfiguration, OSError):
            servers = ()
        return cls(SYSTEM, servers)


@lru_cache(maxsize=8)
def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """For DoT and DoH: the system store or only ``--ca-bundle`` (no ALPN: DoT servers need none)."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()


async def _doh(
    query: dns.message.Message, resolver: ResolverSpec, server: tuple[str, int], timeout: float, ca_bundle: str | None
) -> dns.message.Message:
    """RFC 8484 POST with httpx (dnspython's own DoH needs an extra HTTP stack). With a pinned
    address the connection goes there while Host, SNI and the certificate check keep the name."""
    import httpx

    assert resolver.url is not None
    url = httpx.URL(resolver.url)
    headers = {"content-type": "application/dns-message", "accept": "application/dns-message"}
    extensions = {}
    if resolver.tls_name and is_ip_literal(server[0]):
        headers["host"] = url.netloc.decode("ascii")
        extensions["sni_hostname"] = resolver.tls_name
        url = url.copy_with(host=server[0])
    async with httpx.AsyncClient(verify=_tls_context(ca_bundle), timeout=timeout, trust_env=False) as client:
        r = await client.post(url, content=query.to_wire(), headers=headers, extensions=extensions)
    if r.status_code != 200:
        raise DoHStatusError(f"DoH server answered HTTP {r.status_code}")
    response = dns.message.from_wire(r.content)
    if not query.is_response(response):
        raise dns.query.BadResponse("the DoH answer does not match the query")
    return response


class DoHStatusError(Exception):
    """A DoH server answered something other than 200 (recorded, not raised, by ``lookup``)."""


async def _address_of(host: str, port: int) -> str:
    """A DoT server given by name: looked up through the system, as a stub would."""
    if is_ip_literal(host):
        return host
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return cast(str, infos[0][4][0])  # an AF_INET/AF_INET6 sockaddr: (address, port, ...)


async def lookup(
    name: str,
    qtype: str,
    resolver: ResolverSpec,
    *,
    timeout: float,
    attempt: int,
    t_origin: float,
    ca_bundle: str | None = None,
) -> DNSAttempt:
    """One query of `name`/`qtype` through `resolver`. Never raises: failures are recorded.
    ``ca_bundle`` is the trust store for DoH/DoT certificates (None: the system store)."""
    started = time.monotonic()
    rec = DNSAttempt(
        attempt=attempt,
        query=name,
        qtype=qtype,
        resolver=resolver.label,
        resolver_address=None,
        transport={"doh": "https", "dot": "tls"}.get(resolver.proto, resolver.proto),
        proto=resolver.proto,
        t0=since(t_origin, started),
        duration_ms=0.0,
        failure=None,
    )
    if not resolver.servers:
        rec.failure = DNS_NO_RESOLVER
        return rec
    query = dns.message.make_query(name, dns.rdatatype.from_text(qtype))
    response = None
    # Ask the servers in order, as a stub resolver does, until one answers at all.
    for server in resolver.servers:
        rec.resolver_address = format_endpoint(*server)
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            break
        try:
            if resolver.proto == "doh":
                rec.resolver_address = resolver.url
                response = await _doh(query, resolver, server, remaining, ca_bundle)
            elif resolver.proto == "dot":
                async with asyncio.timeout(remaining):
                    ip = await _address_of(server[0], server[1])
                    rec.resolver_address = format_endpoint(ip, server[1])
                    response = await dns.asyncquery.tls(
                        query,
                        ip,
                        timeout=remaining,
                        port=server[1],
                        ssl_context=_tls_context(ca_bundle),
                        server_hostname=resolver.tls_name or ip,
                    )
            elif resolver.proto == "tcp":
                response = await dns.asyncquery.tcp(query, server[0], timeout=remaining, port=server[1])
            else:
                response = await dns.asyncquery.udp(query, server[0], timeout=remaining, port=server[1])
                if response.flags & dns.flags.TC:
                    rec.transport = rec.proto = "tcp"
                    response = await dns.asyncquery.tcp(query, server[0], timeout=remaining, port=server[1])
            break
        except Exception as exc:  # recorded, never raised: a DNS failure is data
            record_failure(rec, exc)
    rec.duration_ms = elapsed_ms(started)
    if response is None:
        rec.failure = rec.failure or GENERIC_TIMEOUT
        return rec
    rec.failure = None
    rec.error_detail = None
    rcode = dns.rcode.to_text(response.rcode())
    rec.rcode = rcode
    want = dns.rdatatype.from_text(qtype)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.CNAME:
            rec.cnames.extend(r.target.to_text(omit_final_dot=True) for r in rrset)
        elif rrset.rdtype == want:
            rec.answers.extend(r.address for r in rrset)
            rec.ttl = rrset.ttl if rec.ttl is None else min(rec.ttl, rrset.ttl)
    if rcode in RCODE_FAILURES:
        rec.failure = RCODE_FAILURES[rcode]
    elif rcode != "NOERROR":
        rec.failure = f"{UNKNOWN_FAILURE}: rcode {rcode}"
    elif not rec.answers:
        rec.failure = DNS_NO_ANSWER
    return rec
