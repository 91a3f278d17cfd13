"""Verdicts: pure functions from step records (+ run controls) to a Verdict. No I/O here.

Interface used by the runner (keep it stable):

    health = canary_health(canary_measurements)          # from the canaries of the same run
    ctx = RunContext(health=health, canary_throughput_bps=...)
    verdict = classify(target, steps, ctx)

This first version is deliberately simple; the verdict engine issue replaces the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.records import Steps, Verdict
from probe.targets import Target


@dataclass(frozen=True, slots=True)
class CanaryHealth:
    domestic_ok: int = 0
    domestic_total: int = 0
    international_ok: int = 0
    international_total: int = 0

    @property
    def total(self) -> int:
        return self.domestic_total + self.international_total

    @property
    def ok(self) -> int:
        return self.domestic_ok + self.international_ok


@dataclass(frozen=True, slots=True)
class RunContext:
    health: CanaryHealth = CanaryHealth()
    canary_throughput_bps: float | None = None


def target_reached(steps: Steps) -> bool:
    """The authentic service answered: a validated TLS handshake, or an HTTP response with no
    blockpage fingerprint."""
    if any(a.failure is None and a.cert_valid and not a.control for a in steps.tls):
        return True
    return any(a.failure is None and a.status is not None and not a.fingerprints for a in steps.http)


def canary_health(measurements: list[tuple[Target, Steps]]) -> CanaryHealth:
    d_ok = d_tot = i_ok = i_tot = 0
    for target, steps in measurements:
        ok = target_reached(steps)
        if target.scope == "domestic":
            d_tot += 1
            d_ok += ok
        else:
            i_tot += 1
            i_ok += ok
    return CanaryHealth(d_ok, d_tot, i_ok, i_tot)


def classify(target: Target, steps: Steps, ctx: RunContext) -> Verdict:
    if target_reached(steps):
        return Verdict("ok", rule="ok.reached", confidence=0.9, reason="the service answered")
    if ctx.health.total and ctx.health.ok == 0:
        return Verdict("outage", rule="outage.canaries_failed", confidence=0.8,
                       reason="every canary failed in the same run")
    for a in steps.http:
        if a.fingerprints:
            return Verdict("blocked", "http", "blockpage", "http.blockpage.fingerprint", 1.0, True,
                           reason=f"blockpage fingerprint {a.fingerprints[0]['name']}")
    return Verdict("inconclusive", rule="inconclusive.unexplained", confidence=0.0,
                   reason="the target was not reached and no rule explains why")
