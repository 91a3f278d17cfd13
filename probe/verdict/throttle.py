"""Throttling: a fetch slowed by bandwidth shaping, told apart from a slow server and a lossy path."""

from __future__ import annotations

import statistics

from probe.failures import GENERIC_TIMEOUT
from probe.records import HTTPAttempt
from probe.verdict.evidence import Evidence
from probe.verdict.finding import Finding, finding
from probe.verdict.params import THROTTLE_HANDSHAKE_RATIO, THROTTLE_MIN_BYTES, THROTTLE_MIN_SECONDS, THROTTLE_RATIO_RAW
from probe.verdict.rules import RULES
from probe.verdict.steps import body_trickle_bps, fetch_round_trips, host, host_addresses, min_connect_s


def throttle(ev: Evidence, attempts: list[HTTPAttempt] | None = None) -> Finding | None:
    """Throttling: every usable fetch of the target is >= ``throttle_ratio`` times slower than the slowest
    canary, the time is bandwidth, and the path is clean.

    With ``canary_transfer_bps`` / ``canary_fetch_bps`` (run_context) a fetch counts when
    * it took >= THROTTLE_MIN_SECONDS (absolute slowness: a 40 ms fetch against 5 ms is not throttling);
    * its transfer time (whole time minus its round trips at the target's own connect time: latency is not
      throttling) is >= ``throttle_ratio`` times what the slowest canary's rate predicts for its bytes;
    * the time went into moving bytes, not into a server thinking: the body itself trickled after the first
      byte, or the TLS handshake was shaped too, or another fetch from the same address trickled in this run
      (over HTTPS a small body arrives in one TLS record with the headers, so the first byte says little).
    Never on a lossy path (one retransmission timeout stalls a fetch for 0.2-1 s), nor unless every canary
    was reached. Without those fields the runner's body throughput is compared with
    ``canary_throughput_bps`` at THROTTLE_RATIO_RAW, for bodies >= 64 KiB or taking >= 0.5 s."""
    ctx = ev.ctx
    pool = [
        a
        for a in (attempts if attempts is not None else ev.s.http)
        if a.body_length and (a.failure is None or a.failure == GENERIC_TIMEOUT)
    ]
    if not pool or ctx.lossy:
        return None
    ref = ctx.canary_transfer_bps or ctx.canary_fetch_bps
    if ref:
        if not (ctx.health.known and ctx.health.ok == ctx.health.total):
            return None  # a canary failed: the reference is not the vantage's normal
        rtt = min_connect_s(ev.s)
        if rtt is None:
            rtt = (ctx.canary_rtt_ms or 0.0) / 1000
        judged = []
        for a in pool:
            took = (a.duration_ms or 0.0) / 1000
            trips = fetch_round_trips(a.url, a.body_length or 0)
            moving = took - trips * rtt
            expected = (a.body_length or 0) / ref
            slow = moving / expected if expected > 0 else 0.0
            if took < THROTTLE_MIN_SECONDS or slow < ctx.throttle_ratio:
                if a.failure is None:
                    return None  # a fetch came at a normal pace (or too fast to judge): not throttled
                continue
            judged.append((a, took, trips, expected, slow))
        if not judged:
            return None
        a, took, trips, expected, slow = min(judged, key=lambda j: j[4])
        why = _bandwidth_evidence(ev, a, ref, rtt)
        if why is None:
            return None  # the time went before the first byte while the handshakes were normal: a slow server
        return _graded(
            ev,
            a,
            f"{a.url}: {a.body_length} B took {took * 1000:,.0f} ms; less {trips} round trips at "
            f"{rtt * 1000:,.0f} ms that is {slow:,.0f}x the {expected * 1000:,.0f} ms the slowest canary's "
            f"rate ({ref:,.0f} B/s) predicts (threshold {ctx.throttle_ratio:g}x); {why}",
        )
    ref = ctx.canary_throughput_bps
    if not ref or ref <= 0:
        return None
    samples2 = [
        a
        for a in pool
        if a.throughput_bps
        and a.throughput_bps > 0
        and (
            # body_length is a positive count for every attempt in the pool (filtered above)
            (a.body_length or 0) >= THROTTLE_MIN_BYTES
            or (a.body_length or 0) / a.throughput_bps >= THROTTLE_MIN_SECONDS
        )
    ]
    if not samples2:
        return None
    best = max(samples2, key=lambda a: a.throughput_bps or 0.0)
    tp = best.throughput_bps or 0.0
    ratio = max(ctx.throttle_ratio, THROTTLE_RATIO_RAW)
    if tp * ratio <= ref:
        return _graded(
            ev,
            best,
            f"{best.url}: {tp:,.0f} B/s against {ref:,.0f} B/s for the canaries "
            f"({ref / tp:,.0f}x slower, threshold {ratio:g}x)",
        )
    return None


def _graded(ev: Evidence, a: HTTPAttempt, reason: str) -> Finding | None:
    """A slow fetch, judged against the outside control. A server that trickles its own body, or thinks long,
    is slow from everywhere: only a fetch of the same URL from outside, fast where ours crawled, makes it the
    network's doing (good). Without that timing it is elimination (weak), never an accusation."""
    ctl = ev.control
    if ctl is not None and ctl.http_failed() and ctl.http_failure == GENERIC_TIMEOUT:
        return None  # it timed out from outside too: the server is slow, not the path
    if ctl is not None and ctl.http_ok() and ctl.http_duration_ms is not None:
        ours = a.duration_ms or 0.0
        if a.body_length and a.throughput_bps:
            ours = max(ours, a.body_length / a.throughput_bps * 1000)
        if ours < ev.ctx.throttle_ratio * ctl.http_duration_ms:
            return None  # slow from outside as well: the server, not the network
        return finding(
            RULES["http.throttled"],
            0.75,
            f"{reason}; the control fetched the same URL in {ctl.http_duration_ms:,.0f} ms",
            grade="good",
        )
    return finding(
        RULES["http.throttled"],
        0.5,
        f"{reason}; no outside timing of the same URL rules out a server that is slow by itself",
        grade="weak",
    )


def _bandwidth_evidence(ev: Evidence, a: HTTPAttempt, ref: float, rtt: float) -> str | None:
    """Why a slow fetch is bandwidth and not a server thinking, or None. Unknown timings (no time to first
    byte recorded) are not held against it; a wait before the first byte needs a shaped handshake or a
    trickle from the same address."""
    ctx = ev.ctx
    if a.ttfb_ms is None:
        return "time to first byte not recorded"
    bps = body_trickle_bps(a)
    if bps is not None and bps * ctx.throttle_ratio <= ref:
        return f"the body itself trickled in at {bps:,.0f} B/s after the first byte"
    tls_ms = [t.duration_ms for t in ev.s.tls if t.failure is None and not t.control and t.duration_ms > 0]
    if tls_ms and ctx.canary_tls_ms:
        median_tls = statistics.median(tls_ms)
        extra_rtt_ms = max(0.0, rtt * 1000 - (ctx.canary_rtt_ms or 0.0))
        allowed = THROTTLE_HANDSHAKE_RATIO * (ctx.canary_tls_ms + 2 * extra_rtt_ms)
        if median_tls >= max(30.0, allowed):
            return f"the TLS handshake was shaped too ({median_tls:,.0f} ms against the canaries' {ctx.canary_tls_ms:,.0f} ms)"
    shaped = sorted(host_addresses(ev.s, host(a.url)) & ctx.trickle_addresses)
    if shaped:
        return f"in the same run a body from {', '.join(shaped[:3])} trickled in (bandwidth shaping of the address)"
    return None
