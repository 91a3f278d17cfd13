"""Map exceptions to OONI's failure strings (ooni/spec data-formats/df-007-errors.md).

Analysts compare our data with OONI's, so a reset is ``connection_reset`` whether it surfaced from
asyncio, ssl, httpx or dnspython. Anything unmapped becomes ``unknown_failure: <text>``, as OONI does.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import dns.exception
import dns.resolver
import httpx

GENERIC_TIMEOUT = "generic_timeout_error"
CONNECTION_RESET = "connection_reset"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_ABORTED = "connection_aborted"
EOF_ERROR = "eof_error"
NETWORK_UNREACHABLE = "network_unreachable"
HOST_UNREACHABLE = "host_unreachable"
DNS_NXDOMAIN = "dns_nxdomain_error"
DNS_NO_ANSWER = "dns_no_answer"
DNS_SERVFAIL = "dns_servfail_error"
DNS_REFUSED = "dns_refused_error"
DNS_SERVER_MISBEHAVING = "dns_server_misbehaving"
DNS_TEMPORARY_FAILURE = "dns_temporary_failure"
SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"
# reachprobe extensions, for conditions OONI's list has no word for:
HTTP_TOO_MANY_REDIRECTS = "http_too_many_redirects"
HTTP_PROTOCOL_ERROR = "http_protocol_error"
DNS_NO_RESOLVER = "dns_no_resolver_configured"  # no resolver in resolv.conf: the probe's host, not the network
# Spellings found in OONI data that our measurements never produce, read by the verdict and the importer:
DNS_NAME_ERROR = "dns_name_error"  # OONI's pre-2020 spelling of NXDOMAIN
DNS_NO_DATA = "dns_no_data"
DNS_SERVER_FAILURE = "dns_server_failure"
HTTP_INVALID_REDIRECT_URL = "http_invalid_redirect_url"
TOO_MANY_REDIRECTS = "too_many_redirects"
UNKNOWN_ERROR = "unknown_error"
# Prefix of every failure no mapping knows ("unknown_failure: <text>", as OONI writes it).
UNKNOWN_FAILURE = "unknown_failure"

# --- groups: the words the verdict rules reason with --------------------------------------------------
RESET_OR_EOF = frozenset({CONNECTION_RESET, EOF_ERROR})
DNS_NX = frozenset({DNS_NXDOMAIN, DNS_NAME_ERROR})
DNS_EMPTY = frozenset({DNS_NO_ANSWER, DNS_NO_DATA})
DNS_SERVER_FAILURES = frozenset({DNS_SERVFAIL, DNS_REFUSED, DNS_SERVER_FAILURE})
UNREACHABLE = frozenset({NETWORK_UNREACHABLE, HOST_UNREACHABLE})
CERT_FAILURES = frozenset({SSL_INVALID_HOSTNAME, SSL_UNKNOWN_AUTHORITY, SSL_INVALID_CERTIFICATE})
# The HTTP exchange completed but the client refused to follow the answer (a site's own broken
# redirect): the server was reached.
REDIRECT_FAILURES = frozenset({HTTP_INVALID_REDIRECT_URL, HTTP_TOO_MANY_REDIRECTS, TOO_MANY_REDIRECTS})

# OONI's older spellings (measurements before ~2020), read as today's words by the OONI importer.
LEGACY_SPELLINGS = {
    DNS_NAME_ERROR: DNS_NXDOMAIN,
    "connection_refused_error": CONNECTION_REFUSED,
    "connection_reset_error": CONNECTION_RESET,
}

RCODE_FAILURES = {
    "NXDOMAIN": DNS_NXDOMAIN,
    "SERVFAIL": DNS_SERVFAIL,
    "REFUSED": DNS_REFUSED,
    "FORMERR": DNS_SERVER_MISBEHAVING,
    "NOTIMP": DNS_SERVER_MISBEHAVING,
}

_ERRNO_FAILURES = {
    errno.ECONNRESET: CONNECTION_RESET,
    errno.ECONNREFUSED: CONNECTION_REFUSED,
    errno.ECONNABORTED: CONNECTION_ABORTED,
    errno.ENETUNREACH: NETWORK_UNREACHABLE,
    errno.EHOSTUNREACH: HOST_UNREACHABLE,
    errno.ETIMEDOUT: GENERIC_TIMEOUT,
    errno.EPIPE: CONNECTION_RESET,
}

# OpenSSL X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code)
_X509_HOSTNAME_MISMATCH = 62
_X509_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21}


def _chain(exc: BaseException):
    """The exception and its causes, outermost first (httpx wraps the socket error)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def classify_exception(exc: BaseException) -> str:
    """Return the OONI failure string for an exception raised by a measurement step."""
    for e in _chain(exc):
        failure = _classify_one(e)
        if failure is not None:
            return failure
    return f"{UNKNOWN_FAILURE}: {type(exc).__name__}: {exc}"


def _classify_one(e: BaseException) -> str | None:
    if isinstance(e, ssl.SSLCertVerificationError):
        code = getattr(e, "verify_code", None)
        if code == _X509_HOSTNAME_MISMATCH:
            return SSL_INVALID_HOSTNAME
        if code in _X509_UNKNOWN_AUTHORITY:
            return SSL_UNKNOWN_AUTHORITY
        return SSL_INVALID_CERTIFICATE
    if isinstance(e, httpx.RemoteProtocolError):
        # httpx says "Server disconnected without sending a response" for a closed connection
        return EOF_ERROR if "disconnected" in str(e).lower() else HTTP_PROTOCOL_ERROR
    if isinstance(e, (ssl.SSLEOFError, asyncio.IncompleteReadError)):
        return EOF_ERROR
    if isinstance(e, ssl.SSLError):
        text = str(e).lower()
        if "reset" in text:
            return CONNECTION_RESET
        if "eof" in text:
            return EOF_ERROR
        return SSL_FAILED_HANDSHAKE
    if isinstance(
        e, (TimeoutError, asyncio.TimeoutError, dns.exception.Timeout, httpx.TimeoutException, socket.timeout)
    ):
        return GENERIC_TIMEOUT
    if isinstance(e, dns.resolver.NXDOMAIN):
        return DNS_NXDOMAIN
    if isinstance(e, (dns.resolver.NoAnswer,)):
        return DNS_NO_ANSWER
    if isinstance(e, dns.resolver.NoNameservers):
        return DNS_SERVFAIL
    if isinstance(e, socket.gaierror):
        if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return DNS_NXDOMAIN
        if e.errno == socket.EAI_AGAIN:
            return DNS_TEMPORARY_FAILURE
        return DNS_SERVER_MISBEHAVING
    if isinstance(e, ConnectionResetError):
        return CONNECTION_RESET
    if isinstance(e, ConnectionRefusedError):
        return CONNECTION_REFUSED
    if isinstance(e, ConnectionAbortedError):
        return CONNECTION_ABORTED
    if isinstance(e, BrokenPipeError):
        return CONNECTION_RESET
    if isinstance(e, OSError) and e.errno in _ERRNO_FAILURES:
        return _ERRNO_FAILURES[e.errno]
    if isinstance(e, httpx.TooManyRedirects):
        return HTTP_TOO_MANY_REDIRECTS
    if isinstance(e, (httpx.ProtocolError, httpx.DecodingError)):
        return HTTP_PROTOCOL_ERROR
    if isinstance(e, EOFError):
        return EOF_ERROR
    return None


def detail(exc: BaseException) -> str:
    """Raw text kept next to the failure string, for debugging only."""
    return f"{type(exc).__name__}: {exc}"[:300]
