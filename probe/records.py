"""Typed records that cross module boundaries.

Measurement code produces *step records* (one per attempt of one network operation); the verdict
engine reads them; the results writer serialises them. They are plain dataclasses so they are cheap
to build in the hot path and trivially turned into the JSON of a results line (``to_dict``).

Timing fields: ``t0`` is seconds since the start of the target's measurement, ``duration_ms`` the
wall time of the attempt. ``failure`` is ``None`` on success, otherwise one of OONI's failure strings
(see :mod:`probe.failures`), never raw exception text; ``error_detail`` keeps the raw text for
debugging only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

from probe.vocab import STATUSES, Layer, Status  # noqa: F401  (STATUSES: re-exported)

SCHEMA = "reachprobe/1"


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


_SCALARS = (str, int, float, bool, type(None))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _plain(value: Any) -> Any:
    """What ``dataclasses.asdict`` returns, without its per-value deepcopy and field introspection: every
    results line goes through here, and asdict cost ~0.5 CPU ms of each (3.5x this)."""
    if isinstance(value, _SCALARS):  # StrEnum members too: asdict keeps them as they are
        return value
    if hasattr(type(value), "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_plain(v) for v in value)
    return copy.deepcopy(value)


@dataclass(slots=True)
class DNSAttempt(_Record):
    """One DNS query (one name, one type, one resolver)."""

    attempt: int
    query: str
    qtype: str  # "A" | "AAAA"
    resolver: str  # "system", or as given with --resolver: "IP[:port]", "https://…", "tls://…", "tcp://…"
    resolver_address: str | None  # the server actually asked (for "system": first of resolv.conf)
    transport: str  # "udp" | "tcp" | "https" (DoH) | "tls" (DoT)
    t0: float
    duration_ms: float
    failure: str | None
    rcode: str | None = None  # "NOERROR", "NXDOMAIN", "SERVFAIL", ...
    answers: list[str] = field(default_factory=list)  # addresses only, in answer order
    cnames: list[str] = field(default_factory=list)
    ttl: int | None = None
    error_detail: str | None = None
    # The DNS protocol used: "udp", "tcp" (asked over TCP, or after a truncated UDP answer), "doh"
    # (over HTTPS) or "dot" (over TLS). DoH/DoT answers cannot be rewritten by a port-53 interceptor.
    proto: str = "udp"


@dataclass(slots=True)
class TCPAttempt(_Record):
    """One TCP connect to ip:port."""

    attempt: int
    ip: str
    port: int
    t0: float
    duration_ms: float
    failure: str | None
    hostname: str | None = None  # the name the IP came from, None for fixed endpoints
    error_detail: str | None = None
    # TCP packet evidence from the run's capture (probe.measure.packets): the server's SYN-ACK/FIN TTLs
    # and every RST's TTL/IP ID; {"skipped": reason} without CAP_NET_RAW, None when capture is off.
    packets: dict[str, Any] | None = None
    # A RST whose IP TTL differs by >= 2 from every TTL the server itself sent (see probe.measure.packets).
    rst_ttl_mismatch: bool | None = None


@dataclass(slots=True)
class TLSAttempt(_Record):
    """One TLS handshake to ip:port with a given SNI.

    ``control`` marks the harmless-SNI handshake made to the same IP after a failure with the
    target's SNI: ``failure is None`` there while the target SNI failed is the SNI-filtering signature.
    Control handshakes do not validate the certificate (only "did the handshake complete" matters).
    """

    attempt: int
    ip: str
    port: int
    sni: str
    t0: float
    duration_ms: float
    failure: str | None
    control: bool = False
    cert_valid: bool | None = None  # validated against the system store / --ca-bundle
    tls_version: str | None = None
    cipher: str | None = None
    cert_subject: str | None = None
    cert_issuer: str | None = None
    cert_not_after: str | None = None
    cert_sha256: str | None = None
    error_detail: str | None = None
    # TCP packet evidence from the run's capture (probe.measure.packets): the server's SYN-ACK/FIN TTLs
    # and every RST's TTL/IP ID; {"skipped": reason} without CAP_NET_RAW, None when capture is off.
    packets: dict[str, Any] | None = None
    # A RST whose IP TTL differs by >= 2 from every TTL the server itself sent (see probe.measure.packets).
    rst_ttl_mismatch: bool | None = None


@dataclass(slots=True)
class HTTPRedirect(_Record):
    url: str
    status: int
    location: str | None = None  # the redirect target as sent (absolute), even when it was never reached


@dataclass(slots=True)
class HTTPAttempt(_Record):
    """One HTTP GET of a URL with its redirect chain (bounded)."""

    attempt: int
    url: str
    t0: float
    duration_ms: float
    failure: str | None
    final_url: str | None = None
    status: int | None = None
    redirects: list[HTTPRedirect] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    title: str | None = None
    body_length: int | None = None  # bytes read (capped)
    body_truncated: bool = False
    body_sha256: str | None = None
    body_head: str | None = None  # first bytes of the body as text, kept as evidence
    throughput_bps: float | None = None  # body bytes per second of the body download
    ttfb_ms: float | None = None
    # Blockpage fingerprints matched against the *whole* body (not only body_head), filled in by the
    # runner before the body is dropped; each item {"name", "pattern", "location", "scope", "confirmed",
    # "countries", "source"}; "location" is "body", "header.<name>", or "header.location" for a
    # redirect target (matched even when the redirect target could not be reached).
    fingerprints: list[dict[str, str]] = field(default_factory=list)
    # A control GET: the same URL and address with a harmless Host header (``host_header``), made
    # once after every attempt was reset or cut. Answered while the real Host is reset = Host filter.
    control: bool = False
    host_header: str | None = None
    error_detail: str | None = None
    # The redirect hop whose request failed (a redirect was answered, the next hop was not): where a person
    # following the chain is stopped. None when the URL's own request failed, or nothing failed.
    failed_url: str | None = None
    # TCP packet evidence from the run's capture (probe.measure.packets): the server's SYN-ACK/FIN TTLs
    # and every RST's TTL/IP ID; {"skipped": reason} without CAP_NET_RAW, None when capture is off.
    packets: dict[str, Any] | None = None
    # A RST whose IP TTL differs by >= 2 from every TTL the server itself sent (see probe.measure.packets).
    rst_ttl_mismatch: bool | None = None


@dataclass(slots=True)
class InjectAttempt(_Record):
    """Raw DNS query whose every response in a window is collected (on-path injection check)."""

    attempt: int
    query: str
    resolver: str
    t0: float
    duration_ms: float
    failure: str | None
    skipped: str | None = None  # reason the check could not run (e.g. no CAP_NET_RAW)
    responses: list[dict[str, Any]] = field(default_factory=list)  # {"src","ttl","ip_id","answers","rcode","delay_ms"}
    error_detail: str | None = None


@dataclass(slots=True)
class Steps(_Record):
    dns: list[DNSAttempt] = field(default_factory=list)
    tcp: list[TCPAttempt] = field(default_factory=list)
    tls: list[TLSAttempt] = field(default_factory=list)
    http: list[HTTPAttempt] = field(default_factory=list)
    inject: list[InjectAttempt] = field(default_factory=list)


@dataclass(slots=True)
class Verdict(_Record):
    status: Status
    layer: Layer | None = None
    method: str | None = None
    rule: str | None = None
    confidence: float = 0.0
    confirmed: bool = False
    reason: str | None = None  # one human sentence: why this verdict


@dataclass(slots=True)
class Vantage(_Record):
    """Where the measurement was taken from. Never holds the vantage's public IP."""

    id: str
    asn: int | None = None
    cc: str | None = None
    network: str | None = None
