"""The outside control of one target: whether the test helpers are asked about it, the URL they are
asked about, and the request (probe.control.ask), which waits for the target's DNS step and names the
addresses it found."""

from __future__ import annotations

import asyncio
import time

from probe.control import ask as mcontrol
from probe.control.client import ControlResult
from probe.endpoint import format_endpoint
from probe.measure import http as mhttp
from probe.records import Steps
from probe.runner.config import RunConfig
from probe.targets import Target


def wants_control(target: Target) -> bool:
    """Targets the outside control is asked about: web targets by their first URL, and fixed endpoints
    (Telegram's data centres) by their first address, whose connect the helper reports."""
    return (target.kind == "web" and bool(target.urls)) or (target.kind == "endpoint" and bool(target.endpoints))


def control_url(target: Target) -> str:
    """The URL the control request names: the target's first URL, or for an endpoint target its first
    address and port as a URL (the helper connects to it; its fetch there is not evidence of anything)."""
    if target.urls:
        return target.urls[0]
    ep = target.endpoints[0]
    return f"{'https' if ep.port == 443 else 'http'}://{format_endpoint(ep.host, ep.port)}/"


async def ask_control(
    cfg: RunConfig, target: Target, steps: Steps, dns_done: asyncio.Event, deadline: float
) -> ControlResult:
    """The outside control for the target's first URL, with the addresses the DNS step found."""
    url = control_url(target)
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            await dns_done.wait()
        resolved = resolved_addresses(steps)
    except TimeoutError:
        resolved = {}  # the DNS step did not finish: the helpers get the URL alone
    return await mcontrol.ask(
        cfg.controls,
        url,
        {"User-Agent": mhttp.USER_AGENT},
        mcontrol.control_endpoints(url, resolved, cfg.ipv6),
        timeout=cfg.control_timeout_s,
        deadline=deadline,
        ca_bundle=cfg.control_ca_bundle,
    )


def resolved_addresses(steps: Steps) -> dict[str, list[str]]:
    """name -> every address any resolver answered for it (A first), uncapped: the control's view."""
    out: dict[str, list[str]] = {}
    for a in sorted(steps.dns, key=lambda a: a.qtype != "A"):
        if a.failure is None:
            out.setdefault(a.query.lower().rstrip("."), []).extend(a.answers)
    return out
