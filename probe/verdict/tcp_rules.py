"""TCP rules: blackholed addresses, resets and refusals, unreachable routes."""

from __future__ import annotations

from probe.failures import CONNECTION_REFUSED, GENERIC_TIMEOUT, RESET_OR_EOF, UNREACHABLE
from probe.verdict.controls import control_agrees
from probe.verdict.evidence import Evidence
from probe.verdict.finding import Finding, finding
from probe.verdict.rules import RULES
from probe.verdict.steps import ep, forged_rst
from probe.vocab import Layer


def address_reset(reason: str, attempts=(), control_ok: bool = False) -> Finding:
    """The address itself is reset whatever the name (seen by the TLS and HTTP rules). Confirmed when the
    RSTs carry a TTL the server never sent (forged on the path); good when the outside control got through
    to the same address; otherwise weak, by elimination (a server that resets everyone looks the same)."""
    forged = forged_rst(list(attempts))
    if forged:
        return finding(RULES["tcp.rst_injected"], 0.97, f"{reason}; {forged}")
    if control_ok:
        return finding(RULES["tcp.rst"], 0.75, f"{reason}; the outside control got through", grade="good")
    return finding(RULES["tcp.rst"], 0.6, reason, grade="weak")


def tcp_findings(ev: Evidence) -> list[Finding]:
    out: list[Finding] = []
    keys = [k for k in ev.tcp if k[0] not in ev.flagged]
    if not keys:
        return out
    if any(any(a.failure is None for a in ev.tcp[k]) for k in keys):
        return out  # at least one address connects: no IP-level blocking of the target
    finals = {k: ev.tcp[k][-1].failure for k in keys}
    # An IPv6 address that is unreachable while IPv4 addresses exist: the vantage has no IPv6.
    v4 = [k for k in keys if ":" not in k[0]]
    considered = [k for k in keys if not (":" in k[0] and finals[k] in UNREACHABLE and v4)]
    if not considered:
        return out
    fails = {finals[k] for k in considered}
    eps = ", ".join(ep(*k) for k in considered[:3]) + ("..." if len(considered) > 3 else "")
    ctl = ev.control
    ctl_ok = ctl is not None and any(ctl.tcp.get(ep(*k), "x") is None for k in considered)
    ctl_fail = ctl is not None and any(ep(*k) in ctl.tcp for k in considered) and not ctl_ok
    forged = (
        forged_rst([a for k in considered for a in ev.tcp[k]]) if fails <= {CONNECTION_REFUSED} | RESET_OR_EOF else None
    )
    if forged:
        out.append(
            address_reset(f"connections to {eps} were refused or reset", [a for k in considered for a in ev.tcp[k]])
        )
    elif fails == {GENERIC_TIMEOUT}:
        only_timeouts = all(a.failure == GENERIC_TIMEOUT for k in considered for a in ev.tcp[k])
        if ctl_ok:
            out.append(
                finding(
                    RULES["tcp.ip_blackhole"],
                    0.8,
                    f"every connection to {eps} timed out while the control connected",
                    timeout_only=only_timeouts,
                    grade="good",
                )
            )
        elif ctl_fail:
            out.append(
                control_agrees(
                    Layer.TCP, "unreachable", 0.7, f"connections to {eps} timed out here and from the control too"
                )
            )
        else:
            out.append(
                finding(
                    RULES["tcp.ip_blackhole"],
                    0.65,
                    f"every connection to {eps} timed out on every attempt while the canaries connected",
                    timeout_only=only_timeouts,
                    grade="weak",
                )
            )
    elif fails == {CONNECTION_REFUSED}:
        if ctl_ok:
            out.append(
                finding(
                    RULES["tcp.rst"],
                    0.75,
                    f"connections to {eps} were refused (RST to SYN) here but not from the control",
                    grade="good",
                )
            )
        elif ctl_fail:
            out.append(
                finding(
                    RULES["down.refused"],
                    0.8,
                    f"every connection to {eps} was refused, here and from the control: nothing listens "
                    "there (site down)",
                )
            )
        else:
            out.append(
                finding(
                    RULES["inconclusive.tcp_refused"],
                    0.3,
                    f"every connection to {eps} was refused (a RST to the SYN); without the outside control "
                    "a censor's RST and a server with nothing listening look the same",
                )
            )
    elif fails <= RESET_OR_EOF:
        out.append(
            finding(
                RULES["tcp.rst"],
                0.75 if ctl_ok else 0.6,
                f"connections to {eps} were reset during the TCP handshake",
                grade="good" if ctl_ok else "weak",
            )
        )
    elif fails <= UNREACHABLE:
        if ctl_ok:
            out.append(
                finding(
                    RULES["tcp.unreachable"],
                    0.65,
                    f"{eps} unreachable here ({', '.join(sorted(fails))}) while the control connected",
                )
            )
        else:
            out.append(
                finding(
                    RULES["inconclusive.tcp_unreachable"],
                    0.2,
                    f"{eps} unreachable ({', '.join(sorted(fails))}): a routing problem as likely as a block",
                )
            )
    elif fails <= {GENERIC_TIMEOUT, CONNECTION_REFUSED} | RESET_OR_EOF | UNREACHABLE and GENERIC_TIMEOUT in fails:
        out.append(
            finding(
                RULES["tcp.ip_blackhole"],
                0.55,
                f"no connection to {eps} succeeded ({', '.join(sorted(f or '' for f in fails))})",
                grade="weak",
            )
        )
    else:
        out.append(
            finding(
                RULES["inconclusive.tcp_failure"],
                0.2,
                f"no connection to {eps} succeeded ({', '.join(sorted(f or '' for f in fails))})",
            )
        )
    return out
