"""Did the authentic service answer? Blockpage matching of HTTP answers, and ``target_reached``."""

from __future__ import annotations

from functools import lru_cache

from probe.fingerprints import WEAK_SCOPES, FingerprintDB
from probe.records import HTTPAttempt, Steps
from probe.targets import Target
from probe.verdict.steps import host, http_response, scheme, split_host_controls, target_hosts


@lru_cache(maxsize=1)
def default_db() -> FingerprintDB:
    return FingerprintDB.default()


def http_blockpage_matches(a: HTTPAttempt, db: FingerprintDB, hosts: set[str]) -> list[dict[str, str]]:
    """Blockpage fingerprints of one HTTP attempt: the runner's full-body matches, header and redirect
    Location matches, and body_head when the runner matched nothing. Body matches on content that came
    over validated HTTPS from the requested host are dropped (a censor cannot present that name's
    certificate), as are vague words on CDN challenge pages."""
    matches: list[dict[str, str]] = []
    body = list(a.fingerprints)
    if not body and a.body_head:
        body = db.match_body(a.body_head)
    final = a.final_url or a.url
    if body and scheme(final) == "https" and http_response(a) and host(final) in hosts:
        body = [m for m in body if m.get("location", "body") != "body"]
    if body and db.challenge(a.body_head, a.headers) is not None:
        body = [m for m in body if (m.get("scope") or db.scope_of(m.get("name", "")) or "") in ("nat", "isp")]
    matches.extend(body)
    matches.extend(db.match_headers(a.headers))
    for hop in [r.url for r in a.redirects] + ([a.final_url] if a.final_url and a.final_url != a.url else []):
        matches.extend(db.match_location(hop))
    seen: set[tuple[str, str]] = set()
    out = []
    for m in matches:
        k = (m.get("name", ""), m.get("location", ""))
        if k not in seen:
            seen.add(k)
            out.append(m)
    return out


def weak_only(matches: list[dict[str, str]], db: FingerprintDB) -> bool:
    return all((m.get("scope") or db.scope_of(m.get("name", "")) or "") in WEAK_SCOPES for m in matches)


def target_reached(steps: Steps, target: Target | None = None, db: FingerprintDB | None = None) -> bool:
    """The authentic service answered: a validated TLS handshake for the name (not a control
    handshake), or an HTTP response that is not a blockpage."""
    steps = split_host_controls(steps)[0]
    if any(a.failure is None and a.cert_valid and not a.control for a in steps.tls):
        return True
    db = db or default_db()
    hosts = target_hosts(target, steps) if target is not None else {host(a.url) for a in steps.http}
    for a in steps.http:
        if http_response(a):
            m = http_blockpage_matches(a, db, hosts)
            if not m or weak_only(m, db):
                return True
    return False
