"""OONI's raw test keys -> reachprobe's step records (``queries``, ``tcp_connect``, ``tls_handshakes``,
``requests``) and web_connectivity's ``control`` -> a :class:`~probe.verdict.ControlMeasurement`."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any, cast

from probe.control.client import JSON_PARSE_ERROR
from probe.control.convert import normalize_failure, to_measurement
from probe.control.model import ControlResponse
from probe.failures import (
    CERT_FAILURES,
    DNS_NO_ANSWER,
    DNS_NXDOMAIN,
    DNS_SERVFAIL,
    SSL_UNKNOWN_AUTHORITY,
    UNKNOWN_FAILURE,
)
from probe.fingerprints import FingerprintDB
from probe.records import DNSAttempt, HTTPAttempt, HTTPRedirect, TCPAttempt, TLSAttempt
from probe.verdict import ControlMeasurement

# Signal's own root certificate (O=Signal Messenger, LLC, CN=Signal Messenger, 2022-01-26..2032-01-24),
# SHA-256 of the DER. Signal's servers chain to it; OONI's signal test v0.2.0 still pinned the older
# "TextSecure" CA and reported ssl_unknown_authority for the genuine servers (fixed in v0.2.2).
SIGNAL_ROOT_SHA256 = frozenset({"ddb0f92bb95c8d6fd202ea6e8cc5ccd182b544f8cd696f47d580659ddc9df65a"})


def _failure(f: Any) -> str | None:
    """OONI failure -> our failure string (None = success). Normalises legacy spellings."""
    return normalize_failure(f)


def _resolver_id(q: dict[str, Any]) -> str:
    engine = (q.get("engine") or "").lower()
    addr = q.get("resolver_address") or ""
    if engine in ("", "system", "getaddrinfo", "android", "go") and not addr:
        return "system"
    if engine in ("system", "getaddrinfo"):
        return "system"
    return addr or engine or "system"


def _dns(queries: list[dict[str, Any]], skip: set[str]) -> list[DNSAttempt]:
    out: list[DNSAttempt] = []
    counter: Counter = Counter()
    for q in queries:
        name = (q.get("hostname") or "").lower().rstrip(".")
        if not name or name in skip:
            continue
        qtype = q.get("query_type") or "A"
        resolver = _resolver_id(q)
        key = (name, qtype, resolver)
        counter[key] += 1
        addrs, cnames = [], []
        for a in q.get("answers") or []:
            ip = a.get("ipv4") or a.get("ipv6")
            if ip:
                addrs.append(ip)
            elif a.get("hostname"):
                cnames.append(a["hostname"])
        failure = _failure(q.get("failure"))
        if failure is None and not addrs and qtype in ("A", "AAAA"):
            failure = DNS_NO_ANSWER
        rcode = {DNS_NXDOMAIN: "NXDOMAIN", DNS_SERVFAIL: "SERVFAIL"}.get(failure or "", None)
        out.append(
            DNSAttempt(
                attempt=counter[key],
                query=name,
                qtype=qtype,
                resolver=resolver,
                resolver_address=q.get("resolver_address") or None,
                transport=q.get("engine") or "system",
                t0=float(q.get("t") or 0.0),
                duration_ms=0.0,
                failure=failure,
                rcode=rcode or ("NOERROR" if failure is None else None),
                answers=addrs,
                cnames=cnames,
            )
        )
    return out


def _tcp(conns: list[dict[str, Any]]) -> list[TCPAttempt]:
    out: list[TCPAttempt] = []
    counter: Counter = Counter()
    for c in conns:
        ip, port = c.get("ip"), c.get("port")
        if not ip or port is None:
            continue
        st = c.get("status") or {}
        failure = _failure(st.get("failure"))
        if failure is None and st.get("success") is False:
            failure = UNKNOWN_FAILURE
        counter[(ip, port)] += 1
        out.append(
            TCPAttempt(
                attempt=counter[(ip, port)],
                ip=ip,
                port=int(port),
                t0=float(c.get("t") or 0.0),
                duration_ms=0.0,
                failure=failure,
            )
        )
    return out


def _split_address(addr: str | None) -> tuple[str, int]:
    if not addr:
        return "", 443
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 443
    if addr.count(":") == 1:
        h, p = addr.split(":")
        return h, int(p)
    return addr, 443


def _tls(handshakes: list[dict[str, Any]], test: str) -> list[TLSAttempt]:
    out: list[TLSAttempt] = []
    counter: Counter = Counter()
    for h in handshakes:
        ip, port = _split_address(h.get("address"))
        sni = (h.get("server_name") or "").lower()
        failure = _failure(h.get("failure"))
        detail = None
        valid: bool | None = failure is None and not h.get("no_tls_verify")
        if failure is not None and failure not in CERT_FAILURES:
            valid = None
        elif failure is not None:
            valid = False
        if test == "signal" and failure == SSL_UNKNOWN_AUTHORITY and _signal_chain_ok(h.get("peer_certificates"), sni):
            detail = (
                "OONI: ssl_unknown_authority; chain verified against Signal's own 2022 root (outdated pin in the test)"
            )
            failure, valid = None, True
        counter[(ip, port, sni)] += 1
        out.append(
            TLSAttempt(
                attempt=counter[(ip, port, sni)],
                ip=ip,
                port=port,
                sni=sni,
                t0=float(h.get("t") or 0.0),
                duration_ms=0.0,
                failure=failure,
                cert_valid=valid,
                tls_version=h.get("tls_version"),
                cipher=h.get("cipher_suite"),
                error_detail=detail,
            )
        )
    return out


def _b64(v: Any) -> bytes:
    if isinstance(v, dict) and v.get("format") == "base64":
        data = str(v.get("data") or "")
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=False)
    if isinstance(v, str):
        return v.encode("utf-8", "replace")
    return b""


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    return _b64(v).decode("utf-8", "replace")


def _headers(resp: dict[str, Any]) -> dict[str, str]:
    h = resp.get("headers")
    out: dict[str, str] = {}
    if isinstance(h, dict):
        for k, v in h.items():
            out[str(k)] = _text(v) if not isinstance(v, list) else ", ".join(_text(x) for x in v)
    elif isinstance(resp.get("headers_list"), list):
        for pair in resp["headers_list"]:
            if isinstance(pair, list) and len(pair) == 2:
                out[str(pair[0])] = _text(pair[1])
    return out


def _http(requests: list[dict[str, Any]], db: FingerprintDB, *, chain: bool) -> list[HTTPAttempt]:
    """web_connectivity's ``requests`` is one redirect chain, most recent first: it becomes ONE
    HTTPAttempt (url = first request, final_url/status/body = last response, redirects = the hops).
    The IM tests' requests are independent fetches: one HTTPAttempt each."""
    reqs = [r for r in requests if isinstance(r, dict) and (r.get("request") or {}).get("url")]
    if not reqs:
        return []
    if chain:
        last, hops = reqs[0], list(reversed(reqs[1:]))
        a = _one_http(last, db, attempt=1)
        first_url = (hops[0]["request"]["url"]) if hops else a.url
        a.redirects = [
            HTTPRedirect(url=h["request"]["url"], status=int((h.get("response") or {}).get("code") or 0)) for h in hops
        ] + ([HTTPRedirect(url=a.url, status=a.status or 0)] if hops else [])
        if hops:
            a.final_url, a.url = a.url, first_url
        return [a]
    out: list[HTTPAttempt] = []
    counter: Counter = Counter()
    for r in reqs:
        url = r["request"]["url"]
        counter[url] += 1
        out.append(_one_http(r, db, attempt=counter[url]))
    return out


def _one_http(r: dict[str, Any], db: FingerprintDB, *, attempt: int) -> HTTPAttempt:
    resp = r.get("response") or {}
    body_bytes = _b64(resp.get("body"))
    body = body_bytes.decode("utf-8", "replace")
    code = resp.get("code")
    status = int(code) if isinstance(code, int) and code > 0 else None
    headers = _headers(resp)
    failure = _failure(r.get("failure"))
    return HTTPAttempt(
        attempt=attempt,
        url=r["request"]["url"],
        t0=float(r.get("t") or 0.0),
        duration_ms=0.0,
        failure=failure,
        final_url=r["request"]["url"],
        status=status,
        headers=headers,
        body_length=len(body_bytes) if body_bytes else None,
        body_truncated=bool(resp.get("body_is_truncated")),
        body_head=body[:4096] if body else None,
        fingerprints=db.match_body(body) if body else [],
        error_detail=str(r.get("failure")) if r.get("failure") else None,
    )


def _control(tk: dict[str, Any], url: str | None = None) -> ControlMeasurement | None:
    """OONI's control (its test helper's answer), converted as the probe converts its own."""
    c = tk.get("control")
    cf = tk.get("control_failure")
    if not isinstance(c, dict) or not c:
        return ControlMeasurement(source="ooni_th", failed=str(cf)) if cf else None
    try:
        response = ControlResponse.model_validate(c)
    except ValueError:  # pydantic's ValidationError: a control we cannot read is no control
        return ControlMeasurement(source="ooni_th", failed=str(cf) if cf else JSON_PARSE_ERROR)
    return to_measurement(response, url or None, source="ooni_th", control_failure=cf)


def _signal_chain_ok(certs: Any, sni: str) -> bool:
    """The presented chain is Signal's: the leaf is issued by Signal's root (known SHA-256) and names
    sni. Some OONI versions recorded only the root for these failures; a one-certificate chain that IS
    Signal's root is accepted too (a middlebox would have recorded its own leaf first)."""
    if not isinstance(certs, list) or not certs:
        return False
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtensionOID
    except ImportError:
        return False
    try:
        ders = [_b64(c) for c in certs]
        parsed = [x509.load_der_x509_certificate(d) for d in ders]
    except Exception:  # noqa: BLE001
        return False
    if len(parsed) == 1:
        return parsed[0].fingerprint(hashes.SHA256()).hex() in SIGNAL_ROOT_SHA256
    roots = [c for c in parsed[1:] if c.fingerprint(hashes.SHA256()).hex() in SIGNAL_ROOT_SHA256]
    if not roots:
        return False
    leaf = parsed[0]
    try:
        leaf.verify_directly_issued_by(roots[0])
    except Exception:  # noqa: BLE001
        return False
    try:
        ext = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        sans = cast(x509.SubjectAlternativeName, ext.value)
        names = [n.lower() for n in sans.get_values_for_type(x509.DNSName)]
    except Exception:  # noqa: BLE001
        names = []
    return any(
        n == sni or (n.startswith("*.") and sni.endswith(n[1:]) and sni.count(".") == n.count(".")) for n in names
    )
