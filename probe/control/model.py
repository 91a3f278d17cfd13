"""The web-connectivity test-helper protocol (ooni/spec ts-017; probe-cli ``internal/model/th.go``).

One model serves both directions: the probe parses OONI's helpers' answers with it, and our helper
answers in it. It is lenient on purpose: unknown fields are kept, and the ``null``\\ s that real OONI
controls carry in place of empty objects (``"headers": null``, ``"tcp_connect": null``) read as empty,
because a control written by a helper from 2016 is still a control.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# ip_info flags, as oohelperd sets them (th.go THIPInfoFlag*).
FLAG_RESOLVED_BY_PROBE = 1
FLAG_RESOLVED_BY_TH = 2
FLAG_IS_BOGON = 4
FLAG_VALID_FOR_DOMAIN = 8

# oohelperd's own failure words (its dnsMapFailure / tcpMapFailure / httpMapFailure), which differ
# from the probe-side strings of df-007 on purpose: clients compare against these.
TH_DNS_NAME_ERROR = "dns_name_error"
TH_DNS_SERVER_FAILURE = "dns_server_failure"
TH_DNS_LOOKUP_ERROR = "dns_lookup_error"
TH_CONNECTION_REFUSED = "connection_refused_error"
TH_CONNECT_ERROR = "connect_error"
TH_UNKNOWN_ERROR = "unknown_error"
# netxlite's word for "a lookup returned a special-purpose address"; our helper uses it for every
# destination its SSRF policy refuses (the URL's host or a redirect hop).
TH_BOGON_ERROR = "dns_bogon_error"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _none_to(default_factory):
    def convert(cls, value: Any) -> Any:
        return default_factory() if value is None else value

    return classmethod(convert)


class ControlRequest(_Lenient):
    """What the probe POSTs: the URL, the headers to send with it, the endpoints it resolved."""

    http_request: str
    http_request_headers: dict[str, list[str]] = Field(default_factory=dict)
    tcp_connect: list[str] = Field(default_factory=list)
    x_quic_enabled: bool = False

    _headers_none = field_validator("http_request_headers", mode="before")(_none_to(dict))
    _tcp_none = field_validator("tcp_connect", mode="before")(_none_to(list))

    @field_validator("http_request_headers", mode="before")
    @classmethod
    def _single_values(cls, value: Any) -> Any:
        # Old probes sent {"User-Agent": "..."}; Go's map[string][]string wants lists.
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


class DNSResult(_Lenient):
    failure: str | None = None
    addrs: list[str] = Field(default_factory=list)

    _addrs_none = field_validator("addrs", mode="before")(_none_to(list))


class TCPConnectResult(_Lenient):
    status: bool = False
    failure: str | None = None


class TLSHandshakeResult(_Lenient):
    server_name: str = ""
    status: bool = False
    failure: str | None = None


class HTTPRequestResult(_Lenient):
    """The helper's fetch of the URL (redirects followed). ``-1`` length/status means it failed."""

    body_length: int = -1
    discovered_h3_endpoint: str = ""
    failure: str | None = None
    title: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    status_code: int = -1

    _headers_none = field_validator("headers", mode="before")(_none_to(dict))
    _title_none = field_validator("title", "discovered_h3_endpoint", mode="before")(_none_to(str))


class IPInfo(_Lenient):
    asn: int = 0
    flags: int = 0


class ControlResponse(_Lenient):
    """The helper's answer. Every field is optional: old helpers sent only dns/tcp_connect/http_request,
    and a helper that failed outright may send ``{}``."""

    dns: DNSResult = Field(default_factory=DNSResult)
    tcp_connect: dict[str, TCPConnectResult] = Field(default_factory=dict)
    tls_handshake: dict[str, TLSHandshakeResult] = Field(default_factory=dict)
    quic_handshake: dict[str, TLSHandshakeResult] = Field(default_factory=dict)
    http_request: HTTPRequestResult = Field(default_factory=HTTPRequestResult)
    http3_request: HTTPRequestResult | None = None
    ip_info: dict[str, IPInfo] = Field(default_factory=dict)

    _none = field_validator("dns", "http_request", mode="before")(_none_to(dict))
    _maps_none = field_validator("tcp_connect", "tls_handshake", "quic_handshake", "ip_info", mode="before")(
        _none_to(dict)
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON object as oohelperd writes it (http3_request: null; no unset extras dropped)."""
        return self.model_dump(mode="json")
