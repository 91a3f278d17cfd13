"""The decision: every rule's findings for one measurement, weighed in one fixed order.

The order is DECISION_ORDER, the one place it is written down (docs/verdicts.md is generated from
it); ``classify`` follows it step by step, each step marked with its key.
"""

from __future__ import annotations

from dataclasses import replace

from probe import netfacts
from probe.records import Steps, Verdict
from probe.targets import Target
from probe.verdict.controls import ControlMeasurement, RunContext, control_agrees
from probe.verdict.dns_rules import dns_findings
from probe.verdict.evidence import Evidence
from probe.verdict.finding import Finding, best, verdict
from probe.verdict.http_rules import http_findings
from probe.verdict.rules import RULES
from probe.verdict.steps import ep, split_host_controls
from probe.verdict.tcp_rules import tcp_findings
from probe.verdict.throttle import throttle
from probe.verdict.tls_rules import tls_findings
from probe.vocab import Layer, Status

DECISION_ORDER: tuple[tuple[str, str], ...] = (
    ("no_steps", "nothing measured → `inconclusive.no_steps`"),
    (
        "outage",
        "**outage control**: every canary failed and the target was not cleanly reached → `outage.canaries` "
        "(`outage.resolver` when the canaries failed at DNS only and the system resolver is the one failing)."
        " Domestic canaries answer and no international one does → `outage.international_shutdown`. The "
        "system resolver failed every canary query → `outage.resolver`. *No finding, however strong, turns "
        "into `blocked` while every canary fails* (property-tested); **loss control**: when the run is "
        "*lossy* (below) and the canaries did not go through cleanly, findings made of timeouts only are set "
        "aside: they lead to nothing but `flaky.lossy_path`",
    ),
    (
        "blocked",
        "a `strong` or `good` finding → `blocked`, **even if the target was reached another way** (Iran's "
        "hijacking resolver answers 10.10.34.34 while the second resolver's answer reaches the real site: "
        "users of that resolver are blocked). Earlier layers win (dns < tcp < tls < http)",
    ),
    (
        "deadline",
        "cut off by its deadline (`--target-deadline`) before its steps were complete, and not reached → "
        "`inconclusive.deadline`: the steps it never finished could have shown anything. A strong finding "
        "(above) still decides; a reached target is judged as usual (below)",
    ),
    (
        "nxdomain_rewritten",
        "the control says the name does not exist while a local resolver answered → `down.nxdomain_rewritten`",
    ),
    (
        "reached",
        "**reached**: what a person would get decides: when the URL was fetched, its fetch through the whole "
        "redirect chain, complete and with no blockpage fingerprint (a valid certificate proves the hop's "
        "authenticity, not the URL's reachability); when no fetch was made, a valid certificate for the name: "
        "every fetch ≥5× slower than the slowest canary, bandwidth-shaped (see Throttling) → "
        "`http.throttled` (without the control's timing: `inconclusive.needs_control`); every fetch answered "
        "with an HTTP error that the control gets too → `down.control_agrees` (the site's own refusal); a "
        "`strong`/`good` timeout finding set aside by the loss control → "
        "`flaky.lossy_path`; a failed step that succeeded on retry → `flaky.retry_succeeded` "
        "(`flaky.intermittent` when a success was followed by a failure); else `ok.*`",
    ),
    ("down", "a `down` finding → `down.*`"),
    (
        "elimination",
        "a `weak` finding (evidence by elimination) → never `blocked`: `inconclusive.needs_control` (a dead, slow "
        "or crashing server looks the same from one vantage; with the outside control the same evidence is "
        "`good` and decided above), or `inconclusive.no_controls`, `inconclusive.degraded_vantage`, "
        "`inconclusive.canary_failed`",
    ),
    ("lossy", "a timeout finding set aside by the loss control → `flaky.lossy_path`"),
    ("inconclusive", "otherwise `inconclusive.*` with the reason"),
)


def classify(
    target: Target,
    steps: Steps,
    ctx: RunContext | None = None,
    control: ControlMeasurement | None = None,
    *,
    deadline_exceeded: bool = False,
) -> Verdict:
    """The verdict on one measurement: its step records, the run's controls (``ctx``) and, when there is
    one, the outside control. ``deadline_exceeded``: the target's deadline cut its steps short."""
    ctx = ctx or RunContext()
    # -- no_steps
    if not (steps.dns or steps.tcp or steps.tls or steps.http or steps.inject):
        return verdict(RULES["inconclusive.no_steps"], 0.0, "nothing was measured for this target")
    steps, host_controls = split_host_controls(steps)
    ev = Evidence(target, steps, ctx, control)
    ev.host_controls = {a.url: a for a in host_controls}
    findings = dns_findings(ev) + tcp_findings(ev) + tls_findings(ev) + http_findings(ev)
    # A lossy path: timeouts are what random loss looks like. Unless the canaries went through on every
    # attempt (then the loss is not the vantage's), timeout-only findings are not blocking evidence.
    lost: list[Finding] = []
    if ctx.lossy and not ctx.health.spotless:
        lost = [f for f in findings if f.timeout_only]
        findings = [f for f in findings if not f.timeout_only]
    blocking = [f for f in findings if f.status == Status.BLOCKED]
    strong = [f for f in blocking if f.grade in ("strong", "good")]
    weak = [f for f in blocking if f.grade == "weak"]
    downs = [f for f in findings if f.grade == "down"]
    notes = [f for f in findings if f.grade == "note"]
    reached = ev.reached or ev.endpoint_reached()
    health = ctx.health

    # -- outage: the vantage's own outage is never blocking (the loss control is above)
    resolver_outage = [f for f in findings if f.grade == "outage"]
    if health.all_failed and not (reached and not strong):
        if health.dns_only_failures and resolver_outage:
            return replace(
                resolver_outage[0],
                confidence=0.85,
                reason=f"every canary failed at DNS and {resolver_outage[0].reason}",
            ).verdict()
        extra = f"; the target also showed {best(strong).method}" if strong else ""
        return verdict(
            RULES["outage.canaries"],
            0.85,
            f"all {health.total} canaries failed in the same run: the vantage's network is down{extra}",
        )
    if health.international_shutdown and not reached:
        return verdict(
            RULES["outage.international_shutdown"],
            0.85,
            f"domestic canaries answered ({health.domestic_ok}/{health.domestic_total}) but no international "
            f"canary did (0/{health.international_total}): an international shutdown, not a platform block",
        )
    if (
        resolver_outage
        and ctx.system_resolver in health.failing_resolvers
        and not strong
        and any(v.resolver == ctx.system_resolver and v.status in ("timeout", "servfail") for v in ev.views.values())
    ):
        return resolver_outage[0].verdict()

    # -- blocked: strong or controlled evidence
    if strong:
        return best(strong).verdict()

    # -- deadline: what was cut off is missing evidence, never evidence of blocking
    if deadline_exceeded and not reached:
        return verdict(
            RULES["inconclusive.deadline"],
            0.1,
            "the target's deadline cut its steps short before it was reached: the steps it never "
            "finished could have shown it reachable, down or blocked",
        )

    # -- nxdomain_rewritten
    if ev.control is not None and ev.control.dns_says_nx() and not ev.tls_valid:
        local = [v for v in ev.views.values() if v.addrs and ev.control.speaks_for(v.name)]
        if local:
            v = local[0]
            return verdict(
                RULES["down.nxdomain_rewritten"],
                0.75,
                f"the control resolver says {v.name} does not exist, while {v.resolver} answered "
                f"{', '.join(v.addrs[:3])}: a resolver rewriting NXDOMAIN to its own page; the name is gone",
            )

    # -- reached
    if reached:
        thr = None if health.all_failed else throttle(ev)
        if thr is not None and thr.grade == "weak":
            return verdict(
                RULES["inconclusive.needs_control"],
                0.3,
                f"{thr.reason}: throttling and a slow server look the same without the outside control",
                layer=thr.layer,
                method=thr.method,
            )
        if thr is not None:
            return thr.verdict()
        refused = _refused_everywhere(ev)
        if refused is not None:
            return refused.verdict()
        decisive = [f for f in lost if f.grade in ("strong", "good")]  # weak findings never beat reaching
        if decisive:
            return _lossy_verdict(ev, decisive, reached=True)
        if ev.flaky:
            intermittent = any(x.endswith("intermittent") for x in ev.flaky)
            rule = RULES["flaky.intermittent"] if intermittent else RULES["flaky.retry_succeeded"]
            return verdict(
                rule,
                0.7,
                f"reached, but {'a step failed after succeeding' if intermittent else 'a failed step succeeded on retry'}: "
                + "; ".join(ev.flaky[:3]),
            )
        return _ok_verdict(ev)

    # -- down
    if downs:
        return best(downs).verdict()

    # -- elimination
    if weak:
        top = best(weak)
        if target.is_canary:
            return verdict(
                RULES["inconclusive.canary_failed"],
                0.3,
                f"this canary failed ({top.reason}); canaries are not judged as blocked on weak evidence",
                layer=top.layer,
                method=top.method,
            )
        if not health.known and ev.control is None:
            why = "no canaries were measured" + (
                f" and the control failed ({ev.control_failed})" if ev.control_failed else " and there is no control"
            )
            return verdict(
                RULES["inconclusive.no_controls"],
                0.3,
                f"{top.reason}; {why}, so an outage cannot be ruled out",
                layer=top.layer,
                method=top.method,
            )
        if health.degraded:
            return verdict(
                RULES["inconclusive.degraded_vantage"],
                0.3,
                f"{top.reason}; but {health.total - health.ok}/{health.total} canaries failed too",
                layer=top.layer,
                method=top.method,
            )
        # Elimination never accuses: a dead, slow or crashing server leaves the same traces from here.
        if ev.control_failed:
            why = f"the outside control failed ({ev.control_failed}), so a site's own failure cannot be ruled out"
        elif ev.control is None:
            why = "there is no outside control (--control), so a site's own failure cannot be ruled out"
        else:
            why = "the outside control's measurement does not settle it"
        return verdict(
            RULES["inconclusive.needs_control"], 0.3, f"{top.reason}; {why}", layer=top.layer, method=top.method
        )

    # -- lossy: only timeouts, on a lossy path
    if lost:
        return _lossy_verdict(ev, lost, reached=False)

    # -- inconclusive
    if not (steps.tcp or steps.tls or steps.http) and any(v.addrs for v in ev.views.values()) and not notes:
        addrs = [ip for v in ev.views.values() for ip in v.addrs]
        inside = [ip for ip in addrs if netfacts.in_prefixes(ip, ev.expected)]
        auth = (
            f"; {len(inside)}/{len(addrs)} answers are inside {target.platform}'s prefixes (authentic)"
            if ev.expected
            else ""
        )
        return verdict(
            RULES["inconclusive.dns_only"],
            0.2,
            f"only DNS was measured and it answered{auth}; no connection was attempted",
        )
    if ev.flaky and not notes:
        return verdict(
            RULES["flaky.retry_succeeded"],
            0.5,
            "steps failed and succeeded on retry, and nothing persistent was seen: " + "; ".join(ev.flaky[:3]),
        )
    if notes:
        n = best(notes)
        return n.verdict()
    if ev.control_failed:
        return verdict(
            RULES["inconclusive.control_failed"],
            0.1,
            f"the target was not reached and the control measurement failed ({ev.control_failed})",
        )
    return verdict(RULES["inconclusive.unexplained"], 0.0, "the target was not reached and no rule explains why")


def _refused_everywhere(ev: Evidence) -> Finding | None:
    """The site answers every fetch with an HTTP error (403, 451, 503...) and so it answers the control: its
    own refusal, the same for everyone (a person cannot load the page, and no network is to blame)."""
    ctl = ev.control
    if ctl is None or not ev.http_ok or (ctl.http_status or 0) < 400 or ctl.http_failure is not None:
        return None
    if not all((a.status or 0) >= 400 for a in ev.http_ok):
        return None
    mine = sorted({a.status for a in ev.http_ok if a.status})
    return control_agrees(
        Layer.HTTP,
        "http_error",
        0.7,
        f"the site answers HTTP {', '.join(map(str, mine))} here and HTTP {ctl.http_status} to the "
        "control: its own refusal, the same from outside",
    )


def _lossy_verdict(ev: Evidence, lost: list[Finding], reached: bool) -> Verdict:
    ctx = ev.ctx
    top = best(lost)
    h = ctx.health
    canaries = (
        f"{h.timeout_attempts} canary attempt(s) timed out too"
        if h.timeout_attempts
        else f"{h.total - h.ok}/{h.total} canaries failed"
        if h.known and h.ok < h.total
        else "no canary went through cleanly"
    )
    return verdict(
        RULES["flaky.lossy_path"],
        0.5,
        f"{'reached; ' if reached else ''}the only evidence is timeouts ({top.reason}), on a path that lost "
        f"packets in this run ({ctx.loss_events} step(s) in {ctx.loss_measurements} measurements timed out and "
        f"then succeeded; {canaries}): random loss explains them, so they are not judged as blocking",
    )


def _ok_verdict(ev: Evidence) -> Verdict:
    if ev.tls_valid:
        a = ev.tls_valid[0]
        where = f" at {ep(a.ip, a.port)}" if a.ip else ""
        return verdict(
            RULES["ok.tls_valid"], 0.95, f"valid certificate for {a.sni}{where}: the authentic service answered"
        )
    if ev.http_ok:
        ch = ev.http_challenge[0] if ev.http_challenge and len(ev.http_challenge) == len(ev.http_ok) else None
        if ch is not None:
            return verdict(
                RULES["ok.http_challenge"],
                0.7,
                f"{ch[0].url} answered a {ch[1]} page: the site's own CDN protection, not a blockpage",
            )
        h = ev.http_ok[0]
        return verdict(RULES["ok.http"], 0.8, f"{h.url} answered HTTP {h.status} with no blockpage fingerprint")
    return verdict(
        RULES["ok.tcp_endpoint"], 0.6, "the fixed endpoint(s) accepted TCP connections (no application check)"
    )
