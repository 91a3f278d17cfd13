"""Questions about step records: grouping attempts, retry patterns, timings. Pure, no verdicts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import urlsplit

from probe import netfacts
from probe.failures import GENERIC_TIMEOUT, REDIRECT_FAILURES
from probe.records import HTTPAttempt, Steps
from probe.targets import Target
from probe.verdict.params import INIT_WINDOW_BYTES, THROTTLE_MIN_SECONDS


def ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def host(url: str | None) -> str:
    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


def scheme(url: str | None) -> str:
    try:
        return urlsplit(url or "").scheme.lower()
    except ValueError:
        return ""


def is_ip(text: str | None) -> bool:
    return bool(text) and netfacts.parse_ip(text) is not None  # type: ignore[arg-type]


def group(attempts: Iterable, key) -> dict:
    out: dict = defaultdict(list)
    for a in attempts:
        out[key(a)].append(a)
    for v in out.values():
        v.sort(key=lambda a: a.attempt)
    return out


def retry_pattern(attempts: list) -> str | None:
    """'retry_succeeded' if a failure was followed by a success, 'intermittent' if a success was
    followed by a failure, None if all attempts agree."""
    seen_fail = seen_ok = False
    for a in attempts:
        if a.failure is None:
            if seen_fail:
                return "retry_succeeded"
            seen_ok = True
        else:
            if seen_ok:
                return "intermittent"
            seen_fail = True
    return None


def http_response(a: HTTPAttempt) -> bool:
    return (a.status or 0) > 0 and (a.failure is None or a.failure in REDIRECT_FAILURES)


def split_host_controls(steps: Steps) -> tuple[Steps, list[HTTPAttempt]]:
    """The steps without harmless-Host control GETs, and those controls. A control response is the
    address answering *another* name: it must never count as reaching the target."""
    if not any(a.control for a in steps.http):
        return steps, []
    return (
        Steps(
            dns=steps.dns,
            tcp=steps.tcp,
            tls=steps.tls,
            http=[a for a in steps.http if not a.control],
            inject=steps.inject,
        ),
        [a for a in steps.http if a.control],
    )


def no_host_controls(measurements: Iterable[tuple[Target, Steps]]) -> list[tuple[Target, Steps]]:
    return [(t, split_host_controls(s)[0]) for t, s in measurements]


def target_hosts(target: Target, steps: Steps) -> set[str]:
    hosts = {h.lower() for h in target.url_hosts() if h}
    hosts |= {n.lower().rstrip(".") for n in target.dns_names}
    if target.tls_name:
        hosts.add(target.tls_name.lower())
    hosts |= {host(a.url) for a in steps.http}
    hosts.discard("")
    return hosts


def attempts(steps: Steps) -> list:
    return [*steps.dns, *steps.tcp, *steps.tls, *steps.http]


def loss_events(steps: Steps) -> int:
    """Steps (one DNS query, one TCP address, one TLS address+SNI, one URL) whose timeout did not
    reproduce: some attempt timed out and another succeeded. Random loss makes these; a censor that
    drops a flow makes every attempt time out."""
    groups = [
        group(steps.dns, lambda a: (a.query.lower().rstrip("."), a.qtype, a.resolver)),
        group(steps.tcp, lambda a: (a.ip, a.port)),
        group(steps.tls, lambda a: (a.ip, a.port, a.sni.lower(), a.control)),
        group(steps.http, lambda a: a.url),
    ]
    return sum(
        1
        for g in groups
        for atts in g.values()
        if any(a.failure == GENERIC_TIMEOUT for a in atts) and any(a.failure is None for a in atts)
    )


def min_connect_s(steps: Steps) -> float | None:
    """The target's round trip time, as well as it is known: its fastest successful TCP connect."""
    rtts = [a.duration_ms for a in steps.tcp if a.failure is None and a.duration_ms > 0]
    return min(rtts) / 1000 if rtts else None


def fetch_round_trips(url: str, body_length: int) -> int:
    """Round trips a fresh fetch of ``url`` needs besides the transfer itself: TCP, TLS (https), the request,
    and one per slow-start doubling beyond the initial window."""
    rounds = 0
    sent = INIT_WINDOW_BYTES
    while sent < body_length:
        rounds += 1
        sent += INIT_WINDOW_BYTES * (2**rounds)
    return 1 + (2 if scheme(url) == "https" else 0) + 1 + rounds


def body_trickle_bps(a: HTTPAttempt) -> float | None:
    """The body's own rate when it kept coming for >= THROTTLE_MIN_SECONDS after the first byte (the time
    is then transfer, not round trips or server time); None when it did not, or timings are unknown."""
    if a.ttfb_ms is None or not a.body_length or not a.duration_ms or a.failure not in (None, GENERIC_TIMEOUT):
        return None
    body_s = (a.duration_ms - a.ttfb_ms) / 1000
    if body_s < THROTTLE_MIN_SECONDS:
        return None
    return a.body_length / body_s


def host_addresses(steps: Steps, name: str) -> set[str]:
    if is_ip(name):
        return {name}
    return {ip for a in steps.dns if a.query.lower().rstrip(".") == name for ip in a.answers}


def forged_rst(attempts) -> str | None:
    """Why these attempts' RSTs were forged on the path, or None: on every attempt that was reset, a RST
    whose IP TTL is 2 or more from every TTL the server itself sent (``rst_ttl_mismatch``)."""
    reset = [a for a in attempts if a.failure is not None]
    if not reset or not all(getattr(a, "rst_ttl_mismatch", None) is True for a in reset):
        return None
    p = reset[-1].packets or {}
    rst = (p.get("rst") or [{}])[0]
    ref = p.get("synack_ttl") or (p.get("server_ttls") or [None])[0]
    return (
        f"the RST arrived with IP TTL {rst.get('ttl')} ({rst.get('hops')} hop(s) away) while the server's own "
        f"packets arrive with TTL {ref}: forged on the path"
    )
