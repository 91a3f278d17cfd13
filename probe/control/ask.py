"""The probe asking for its outside control: which helper URLs are acceptable, what the request
carries (the target's URL and the addresses the probe resolved), and one query bounded by the
target's deadline, so a slow or dead helper never holds up a target.

``probe.control.client.query_control`` does the asking; this module adds what the runner needs
around it. Like it, nothing here raises on a failed helper: that is a recorded fact, never evidence.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from probe.control.client import ControlResult, HelperFailure, query_control
from probe.control.model import ControlRequest
from probe.failures import classify_exception
from probe.netfacts import parse_ip

# A helper refuses more than its --max-endpoints (32 by default; oohelperd has no lower cap).
MAX_ENDPOINTS = 32
# The failure word of a helper not asked because the target's deadline had passed (or was too close).
DEADLINE_FAILURE = "target_deadline_exceeded"
# Below this much time left there is no point in starting a query.
MIN_QUERY_SECONDS = 0.5


def check_helper_url(url: str) -> str | None:
    """Why ``url`` cannot be a helper (one line), or None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "a helper URL starts with https:// (or http://), e.g. https://th.example.org/"
    if not parts.hostname:
        return "the URL has no host"
    return None


def endpoint(ip: str, port: int) -> str:
    """The helper protocol's "ip:port" / "[v6]:port"."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def control_endpoints(url: str, resolved: Mapping[str, Iterable[str]], ipv6: bool) -> list[str]:
    """``tcp_connect`` for ``url``: every address the probe resolved for its host (IPv6 only when the
    probe connects over IPv6 too), with the URL's port; the literal itself for an address URL."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    port = url_port(url)
    literal = parse_ip(host)
    ips = [str(literal)] if literal is not None else list(dict.fromkeys(resolved.get(host, ())))
    out = []
    for ip in ips:
        addr = parse_ip(ip)
        if addr is None or (addr.version == 6 and not ipv6):
            continue
        out.append(endpoint(str(addr), port))
    return out[:MAX_ENDPOINTS]


def _unasked(url: str, headers: Mapping[str, str], tcp_connect: Sequence[str]) -> ControlResult:
    return ControlResult(
        request=ControlRequest(
            http_request=url, tcp_connect=list(tcp_connect), http_request_headers={k: [v] for k, v in headers.items()}
        )
    )


async def ask(
    helpers: Sequence[str],
    url: str,
    headers: Mapping[str, str],
    tcp_connect: Sequence[str],
    timeout: float,
    deadline: float,
    ca_bundle: str | None = None,
) -> ControlResult:
    """Ask ``helpers`` in order until one answers, each for at most ``timeout`` seconds and all of
    them before ``deadline`` (a ``time.monotonic()`` instant). Helpers left unasked when the deadline
    comes are recorded with :data:`DEADLINE_FAILURE`. Never raises."""
    result = _unasked(url, headers, tcp_connect)
    for helper in helpers:
        left = deadline - time.monotonic()
        if left < MIN_QUERY_SECONDS:
            result.failures.append(HelperFailure(helper, DEADLINE_FAILURE))
            continue
        try:
            one = await query_control([helper], url, headers, tcp_connect, min(timeout, left), ca_bundle=ca_bundle)
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable CA bundle: a failed helper, never a failed target
            one = _unasked(url, headers, tcp_connect)
            one.failures.append(HelperFailure(helper, classify_exception(exc)[:200]))
        one.failures[:0] = result.failures
        result = one
        if result.ok:
            break
    return result
