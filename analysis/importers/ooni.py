"""OONI measurements in: raw OONI JSON/JSONL -> one row per measurement with OUR verdict.

    from analysis.importers.ooni import read_ooni     # or analysis.read_ooni
    df = read_ooni("ALL_REAL_raw_measurements.jsonl", fingerprints=FingerprintDB.from_ooni_csv(...))
    df.attrs["skipped"]   # {"total": n, "by_test": {test_name: n}, "items": [{file, line, test_name, reason}]}

Our verdict is computed from OONI's *raw* test keys (``queries``, ``tcp_connect``, ``tls_handshakes``,
``requests``, and web_connectivity's ``control`` from OONI's test helper), converted into reachprobe's
step records and passed to the same :func:`probe.verdict.classify` the probe uses, with OONI's control
as a :class:`~probe.verdict.ControlMeasurement`. OONI's own label is kept in ``ooni_blocking`` for
comparison only; it never feeds our verdict. There are no canaries in an OONI measurement, so the
control measurement is the only outage check; without it, weak evidence stays ``inconclusive``.

Supported tests: web_connectivity, telegram, whatsapp, facebook_messenger, signal. Others are counted
in the skip report with the reason. This module never imports ``probe.measure`` (no network code).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pandas as pd

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
from probe.records import DNSAttempt, HTTPAttempt, HTTPRedirect, Steps, TCPAttempt, TLSAttempt, Verdict
from probe.targets import Endpoint, Target
from probe.verdict import RULES, CanaryHealth, ControlMeasurement, RunContext, classify

SUPPORTED_TESTS = ("web_connectivity", "telegram", "whatsapp", "facebook_messenger", "signal")

COLUMNS = [
    "measurement_uid",
    "report_id",
    "input",
    "measured_at",
    "probe_cc",
    "probe_asn",
    "test_name",
    "test_version",
    "target",
    "platform",
    "status",
    "layer",
    "method",
    "rule",
    "confidence",
    "confirmed",
    "reason",
    "ooni_blocking",
    "ooni_anomaly",
    "source",
    "line",
]

# Names each OONI IM test resolves: fixed by the test's specification, published by the platform,
# so with a single resolver an NXDOMAIN for one of them is blocking, not "the name is gone".
_IM_NAMES = {
    "signal": frozenset(
        {
            "textsecure-service.whispersystems.org",
            "storage.signal.org",
            "api.directory.signal.org",
            "cdn.signal.org",
            "cdn2.signal.org",
            "sfu.voip.signal.org",
            "uptime.signal.org",
        }
    ),
    "telegram": frozenset({"web.telegram.org"}),
    "whatsapp": frozenset({"web.whatsapp.com", "v.whatsapp.net"} | {f"e{i}.whatsapp.net" for i in range(1, 17)}),
    "facebook_messenger": frozenset(
        {
            "b-api.facebook.com",
            "b-graph.facebook.com",
            "edge-mqtt.facebook.com",
            "external.xx.fbcdn.net",
            "scontent.xx.fbcdn.net",
            "star.c10r.facebook.com",
            "stun.fbsbx.com",
        }
    ),
}

_PLATFORM_SUFFIXES = (
    ("facebook.com", "facebook"),
    ("fbcdn.net", "facebook"),
    ("messenger.com", "facebook"),
    ("fbsbx.com", "facebook"),
    ("instagram.com", "instagram"),
    ("cdninstagram.com", "instagram"),
    ("twitter.com", "twitter"),
    ("x.com", "twitter"),
    ("twimg.com", "twitter"),
    ("telegram.org", "telegram"),
    ("t.me", "telegram"),
    ("whatsapp.com", "whatsapp"),
    ("whatsapp.net", "whatsapp"),
    ("youtube.com", "youtube"),
    ("ytimg.com", "youtube"),
    ("googlevideo.com", "youtube"),
    ("signal.org", "signal"),
    ("whispersystems.org", "signal"),
    ("wikipedia.org", "wikipedia"),
    ("tiktok.com", "tiktok"),
    ("google.com", "google"),
)

# Signal's own root certificate (O=Signal Messenger, LLC, CN=Signal Messenger, 2022-01-26..2032-01-24),
# SHA-256 of the DER. Signal's servers chain to it; OONI's signal test v0.2.0 still pinned the older
# "TextSecure" CA and reported ssl_unknown_authority for the genuine servers (fixed in v0.2.2).
SIGNAL_ROOT_SHA256 = frozenset({"ddb0f92bb95c8d6fd202ea6e8cc5ccd182b544f8cd696f47d580659ddc9df65a"})


# --- reading -----------------------------------------------------------------------------------
def _iter_documents(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, document or None, error) for every measurement in a .json / .jsonl[.gz] file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:  # type: ignore[operator]
        text = f.read()
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped.rstrip()):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None
        if doc is not None:
            docs = doc if isinstance(doc, list) else [doc]
            for i, d in enumerate(docs, 1):
                yield i, d, None
            return
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield i, json.loads(line), None
        except json.JSONDecodeError as e:
            yield i, None, f"unparseable JSON: {e.msg}"


def _expand(path_or_paths: str | Path | Iterable[str | Path]) -> list[Path]:
    items = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    out: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            out += sorted(
                x for x in p.rglob("*") if x.is_file() and x.name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz"))
            )
        else:
            out.append(p)
    return out


def read_ooni(
    path_or_paths: str | Path | Iterable[str | Path], *, fingerprints: FingerprintDB | None = None
) -> pd.DataFrame:
    """Read OONI measurements and classify each with reachprobe's verdict rules.

    ``fingerprints``: the blockpage database (e.g. ``FingerprintDB.from_ooni_csv(...)``); default the
    built-in Iran fingerprints. The skip report is in ``df.attrs["skipped"]``."""
    db = fingerprints if fingerprints is not None else FingerprintDB.default()
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for path in _expand(path_or_paths):
        for line, doc, err in _iter_documents(path):
            if err is not None or not isinstance(doc, dict):
                skipped.append(
                    {"file": str(path), "line": line, "test_name": None, "reason": err or "not a JSON object"}
                )
                continue
            test = doc.get("test_name")
            if test not in SUPPORTED_TESTS:
                skipped.append(
                    {
                        "file": str(path),
                        "line": line,
                        "test_name": test,
                        "reason": f"test {test!r} is not one reachprobe classifies",
                    }
                )
                continue
            try:
                rows.append(measurement_row(doc, db, source=str(path), line=line))
            except Exception as e:  # noqa: BLE001 - one odd measurement must not stop the batch
                skipped.append(
                    {
                        "file": str(path),
                        "line": line,
                        "test_name": test,
                        "reason": f"could not convert: {type(e).__name__}: {e}",
                    }
                )
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["measured_at"] = pd.to_datetime(df["measured_at"], utc=True, errors="coerce")
    df["probe_asn"] = df["probe_asn"].astype("Int64")
    df["confidence"] = df["confidence"].astype(float)
    df["confirmed"] = df["confirmed"].astype(bool)
    df["ooni_anomaly"] = df["ooni_anomaly"].astype("boolean")
    df.attrs["skipped"] = {
        "total": len(skipped),
        "by_test": dict(Counter(str(s["test_name"]) for s in skipped)),
        "items": skipped,
    }
    return df


# --- one measurement -----------------------------------------------------------------------------
def measurement_row(doc: dict[str, Any], db: FingerprintDB, *, source: str = "", line: int = 0) -> dict[str, Any]:
    test = doc["test_name"]
    tk = doc.get("test_keys") or None
    inp = doc.get("input") if isinstance(doc.get("input"), str) else None
    target, steps, control, known = convert(doc, db)
    if tk is None:
        rule = RULES["inconclusive.no_test_keys"]
        verdict = Verdict(
            rule.status, rule.layer, rule.method, rule.id, confidence=0.0, reason="the measurement carries no test keys"
        )
    else:
        ctx = RunContext(health=CanaryHealth(), fingerprints=db, known_existing_names=known)
        verdict = classify(target, steps, ctx, control=control)
    blocking = ooni_label(test, tk)
    uid = doc.get("measurement_uid") or f"{doc.get('report_id')}|{inp or ''}"
    return {
        "measurement_uid": uid,
        "report_id": doc.get("report_id"),
        "input": inp,
        "measured_at": doc.get("measurement_start_time"),
        "probe_cc": doc.get("probe_cc"),
        "probe_asn": _asn(doc.get("probe_asn")),
        "test_name": test,
        "test_version": doc.get("test_version"),
        "target": inp or test,
        "platform": target.platform,
        "status": verdict.status,
        "layer": verdict.layer,
        "method": verdict.method,
        "rule": verdict.rule,
        "confidence": verdict.confidence,
        "confirmed": verdict.confirmed,
        "reason": verdict.reason,
        "ooni_blocking": blocking,
        "ooni_anomaly": None if blocking is None else blocking != "false",
        "source": source,
        "line": line,
    }


def ooni_label(test: str, tk: dict[str, Any] | None) -> str | None:
    """OONI's own verdict as a short string ("false", "dns", "http-diff", "web,tcp", ...) or None."""
    if not tk:
        return None
    if test == "web_connectivity":
        b = tk.get("blocking")
        return None if b is None else ("false" if b is False else str(b))
    parts: list[str] = []
    known = False
    if test == "telegram":
        for key, name in (("telegram_tcp_blocking", "tcp"), ("telegram_http_blocking", "http")):
            if tk.get(key) is not None:
                known = True
                if tk.get(key):
                    parts.append(name)
        if tk.get("telegram_web_status") is not None:
            known = True
            if tk.get("telegram_web_status") == "blocked":
                parts.append("web")
    elif test == "whatsapp":
        for key, name in (
            ("registration_server_status", "registration"),
            ("whatsapp_endpoints_status", "endpoints"),
            ("whatsapp_web_status", "web"),
        ):
            if tk.get(key) is not None:
                known = True
                if tk.get(key) == "blocked":
                    parts.append(name)
    elif test == "facebook_messenger":
        for key, name in (("facebook_dns_blocking", "dns"), ("facebook_tcp_blocking", "tcp")):
            if tk.get(key) is not None:
                known = True
                if tk.get(key):
                    parts.append(name)
    elif test == "signal":
        if tk.get("signal_backend_status") is not None:
            known = True
            if tk.get("signal_backend_status") == "blocked":
                parts.append(f"backend:{tk.get('signal_backend_failure')}")
    if not known:
        return None
    return ",".join(parts) if parts else "false"


def convert(doc: dict[str, Any], db: FingerprintDB) -> tuple[Target, Steps, ControlMeasurement | None, frozenset[str]]:
    """OONI measurement -> (Target, Steps, control, names known to exist)."""
    test = doc["test_name"]
    tk = doc.get("test_keys") or {}
    inp = doc.get("input") if isinstance(doc.get("input"), str) else None
    steps = Steps()
    known: frozenset[str] = _IM_NAMES.get(test, frozenset())

    skip_names = {"uptime.signal.org"} if test == "signal" else set()
    steps.dns = _dns(tk.get("queries") or [], skip_names)
    steps.tcp = _tcp(tk.get("tcp_connect") or [])
    steps.tls = _tls(tk.get("tls_handshakes") or [], test)
    chain = test == "web_connectivity"
    steps.http = _http(tk.get("requests") or [], db, chain=chain)
    if chain and not steps.http and inp and tk.get("http_experiment_failure"):
        # Older probes recorded a failed fetch only in http_experiment_failure.
        steps.http = [
            HTTPAttempt(
                attempt=1,
                url=inp,
                t0=0.0,
                duration_ms=0.0,
                failure=_failure(tk["http_experiment_failure"]),
                error_detail=str(tk["http_experiment_failure"]),
            )
        ]

    names = sorted({a.query for a in steps.dns})
    if test == "web_connectivity":
        host = (urlsplit(inp or "").hostname or "").lower()
        target = Target(
            platform=platform_of(host),
            name=inp or "?",
            kind="web",
            urls=(inp,) if inp else (),
            dns_names=(host,) if host else (),
            tls_name=host or None,
        )
        control = _control(tk, inp)
    else:
        platform = {"facebook_messenger": "facebook"}.get(test, test)
        urls = tuple(dict.fromkeys(a.url for a in steps.http if a.url))
        endpoints = tuple(dict.fromkeys(Endpoint(a.ip, a.port) for a in steps.tcp)) if test == "telegram" else ()
        target = Target(
            platform=platform, name=test, kind="web", urls=urls, endpoints=endpoints, dns_names=tuple(names)
        )
        control = None
    return target, steps, control, known


def platform_of(host: str) -> str:
    h = host.lower().rstrip(".")
    for suffix, platform in _PLATFORM_SUFFIXES:
        if h == suffix or h.endswith("." + suffix):
            return platform
    return "other"


# --- test keys -> step records ---------------------------------------------------------------------
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


def _asn(v: Any) -> int | None:
    if v is None:
        return None
    s = str(v).upper().removeprefix("AS")
    return int(s) if s.isdigit() else None


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
