"""What a run's verdicts need from the run itself: canary health, path loss, throttling references,
addresses reset whatever the name. Computed once per run, before any target is judged."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from probe import netfacts
from probe.failures import DNS_EMPTY, DNS_NX, GENERIC_TIMEOUT, RESET_OR_EOF
from probe.records import Steps
from probe.targets import Target
from probe.verdict.controls import CanaryHealth, RunContext
from probe.verdict.params import THROTTLE_RATIO
from probe.verdict.reach import target_reached
from probe.verdict.steps import (
    attempts,
    body_trickle_bps,
    fetch_round_trips,
    group,
    host,
    host_addresses,
    loss_events,
    min_connect_s,
    no_host_controls,
)


def canary_health(measurements: list[tuple[Target, Steps]]) -> CanaryHealth:
    measurements = no_host_controls(measurements)
    d_ok = d_tot = i_ok = i_tot = 0
    answered: set[str] = set()
    queried_failed: set[str] = set()
    special_normal = False
    failed_dns_only: list[bool] = []
    timeouts = loss = 0
    for target, steps in measurements:
        ok = target_reached(steps, target)
        if target.scope == "domestic":
            d_tot += 1
            d_ok += ok
        else:
            i_tot += 1
            i_ok += ok
        got_address = False
        for key, atts in group(steps.dns, lambda a: (a.query, a.qtype, a.resolver)).items():
            resolver = key[2]
            if any(a.failure is None or a.answers for a in atts) or any(a.failure in DNS_NX | DNS_EMPTY for a in atts):
                answered.add(resolver)  # an NXDOMAIN or empty answer is still an answer
            else:
                queried_failed.add(resolver)
            if any(a.answers for a in atts):
                got_address = True
        timeouts += sum(1 for a in attempts(steps) if a.failure == GENERIC_TIMEOUT)
        loss += loss_events(steps)
        if ok:
            for a in steps.tls:
                if a.failure is None and a.cert_valid and not a.control:
                    sp = netfacts.special_purpose(a.ip)
                    if sp and not netfacts.is_sinkhole(a.ip):
                        special_normal = True
        else:
            failed_dns_only.append(not got_address and not steps.tcp)
    return CanaryHealth(
        d_ok,
        d_tot,
        i_ok,
        i_tot,
        failing_resolvers=frozenset(queried_failed - answered),
        answering_resolvers=frozenset(answered),
        special_answers_normal=special_normal,
        dns_only_failures=bool(failed_dns_only) and all(failed_dns_only),
        timeout_attempts=timeouts,
        loss_events=loss,
    )


def address_evidence(measurements: Iterable[tuple[Target, Steps]]) -> frozenset[str]:
    """Addresses that reset (or cut) every TLS handshake, for the target's SNI and for the harmless
    control SNI, after the TCP connection succeeded: the address is reset whatever the name."""
    measurements = no_host_controls(measurements)
    out: set[str] = set()
    for _, steps in measurements:
        tcp_ok = {(a.ip, a.port) for a in steps.tcp if a.failure is None}
        by_ip: dict[tuple[str, int], list] = defaultdict(list)
        for a in steps.tls:
            by_ip[(a.ip, a.port)].append(a)
        for (ip, port), atts in by_ip.items():
            real = [a for a in atts if not a.control]
            ctl = [a for a in atts if a.control]
            if (ip, port) in tcp_ok and real and ctl and all(a.failure in RESET_OR_EOF for a in real + ctl):
                out.add(ip)
    return frozenset(out)


def run_context(measurements: list[tuple[Target, Steps]], **kwargs) -> RunContext:
    """Everything a run's verdicts need from the run itself, in one call:

        ctx = run_context([(target, steps) for every target of the run, canaries included],
                          fingerprints=db, bogon_exempt=..., known_existing_names=...)

    health from the canaries; ``canary_throughput_bps`` the median of the canaries' body throughput;
    ``canary_fetch_bps`` the slowest canary's whole-fetch goodput and ``canary_transfer_bps`` the slowest
    canary's transfer rate (its round trips taken out, at most half its time): conservative, random loss
    on one canary makes the reference slower, never a target "throttled"; ``canary_rtt_ms`` /
    ``canary_tls_ms`` the canaries' median TCP connect / TLS handshake time; ``trickle_addresses`` and
    ``reset_addresses`` from every target; ``loss_events`` / ``loss_measurements`` (path loss) from every
    measurement. Keyword arguments override."""
    measurements = no_host_controls(measurements)
    canaries = [(t, s) for t, s in measurements if t.is_canary]
    fetches = [
        a
        for _, s in canaries
        for a in s.http
        if a.failure is None and a.body_length and a.duration_ms and a.duration_ms > 0
    ]
    rates = [a.throughput_bps for a in fetches if a.throughput_bps]
    rtts = [a.duration_ms for _, s in canaries for a in s.tcp if a.failure is None and a.duration_ms > 0]
    tlss = [
        a.duration_ms for _, s in canaries for a in s.tls if a.failure is None and not a.control and a.duration_ms > 0
    ]
    transfer = []
    for _, s in canaries:
        rtt = min_connect_s(s) or 0.0
        for a in s.http:
            if a.failure is None and a.body_length and a.duration_ms and a.duration_ms > 0:
                took = a.duration_ms / 1000
                moving = max(took - fetch_round_trips(a.url, a.body_length) * rtt, took / 2)
                transfer.append(a.body_length / moving)
    transfer_bps = min(transfer) if transfer else None
    fetch_bps = min(a.body_length / (a.duration_ms / 1000) for a in fetches) if fetches else None  # type: ignore[operator]
    ratio = kwargs.get("throttle_ratio", THROTTLE_RATIO)
    ref = kwargs.get("canary_transfer_bps", transfer_bps) or kwargs.get("canary_fetch_bps", fetch_bps)
    trickle: set[str] = set()
    events = loss_measurements = 0
    for t, s in measurements:
        n = loss_events(s)
        events += n
        loss_measurements += n > 0
        if t.is_canary or not ref:
            continue
        for a in s.http:
            bps = body_trickle_bps(a)
            if bps is not None and bps * ratio <= ref:
                trickle |= host_addresses(s, host(a.url))
    values: dict[str, Any] = dict(
        health=canary_health(canaries),
        canary_throughput_bps=statistics.median(rates) if rates else None,
        canary_fetch_bps=fetch_bps,
        canary_transfer_bps=transfer_bps,
        canary_rtt_ms=statistics.median(rtts) if rtts else None,
        canary_tls_ms=statistics.median(tlss) if tlss else None,
        reset_addresses=address_evidence(measurements),
        trickle_addresses=frozenset(trickle),
        loss_events=events,
        loss_measurements=loss_measurements,
    )
    values.update(kwargs)
    return RunContext(**values)
