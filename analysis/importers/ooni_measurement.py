"""One OONI measurement -> a row with our verdict: its test keys become a Target, step records and a
control, judged by :func:`probe.verdict.classify`; OONI's own label is kept beside it for comparison."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from analysis.importers.ooni_testkeys import _control, _dns, _failure, _http, _tcp, _tls
from probe.fingerprints import FingerprintDB
from probe.records import HTTPAttempt, Steps, Verdict
from probe.targets import Endpoint, Target
from probe.verdict import RULES, CanaryHealth, ControlMeasurement, RunContext, classify

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


def _asn(v: Any) -> int | None:
    if v is None:
        return None
    s = str(v).upper().removeprefix("AS")
    return int(s) if s.isdigit() else None
