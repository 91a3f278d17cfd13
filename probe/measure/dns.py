"""DNS lookups with dnspython, one query per (name, type, resolver), recording rcode and answers.

We send our own queries rather than calling getaddrinfo so that the rcode, the CNAME chain, the TTL
and which server answered are all kept as evidence. "system" means the nameservers of the host's
resolv.conf, asked in order as the stub resolver would (the one that answered is recorded).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from probe.endpoint import format_endpoint, split_host_port
from probe.failures import DNS_NO_ANSWER, DNS_NO_RESOLVER, GENERIC_TIMEOUT, RCODE_FAILURES, UNKNOWN_FAILURE
from probe.measure.step import elapsed_ms, record_failure, since
from probe.records import DNSAttempt

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class ResolverSpec:
    """A resolver as the user named it: "system", "IP" or "IP:port" ("[v6]:port"). The one parser of
    that syntax (``--resolver``, the runner, the injection check)."""

    label: str
    servers: tuple[tuple[str, int], ...]

    @classmethod
    def parse(cls, text: str) -> "ResolverSpec":
        text = text.strip()
        if text == SYSTEM:
            return cls.system()
        host, port = split_host_port(text, 53)
        ipaddress.ip_address(host)  # raises ValueError for a name: resolvers are given by address
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        return cls(text, ((host, port),))

    @classmethod
    def system(cls, resolv_conf: str = "/etc/resolv.conf") -> "ResolverSpec":
        try:
            servers = tuple((ns, 53) for ns in dns.resolver.Resolver(filename=resolv_conf).nameservers)
        except (dns.resolver.NoResolverConfiguration, OSError):
            servers = ()
        return cls(SYSTEM, servers)


async def lookup(
    name: str,
    qtype: str,
    resolver: ResolverSpec,
    *,
    timeout: float,
    attempt: int,
    t_origin: float,
) -> DNSAttempt:
    """One query of `name`/`qtype` through `resolver`. Never raises: failures are recorded."""
    started = time.monotonic()
    rec = DNSAttempt(
        attempt=attempt,
        query=name,
        qtype=qtype,
        resolver=resolver.label,
        resolver_address=None,
        transport="udp",
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
            response = await dns.asyncquery.udp(query, server[0], timeout=remaining, port=server[1])
            if response.flags & dns.flags.TC:
                rec.transport = "tcp"
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

