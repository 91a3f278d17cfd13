"""TLS rules: SNI filtering (the harmless-SNI handshake to the same address completes), resets and
timeouts of the handshake, certificates that are not valid for the name."""

from __future__ import annotations

from probe.failures import CERT_FAILURES, CONNECTION_RESET, EOF_ERROR, GENERIC_TIMEOUT, RESET_OR_EOF
from probe.verdict.controls import control_agrees
from probe.verdict.evidence import Evidence
from probe.verdict.finding import Finding, finding
from probe.verdict.rules import RULES
from probe.verdict.steps import ep, scheme
from probe.verdict.tcp_rules import address_reset
from probe.vocab import Layer

# The handshake for the target failed and no harmless-SNI handshake was made to compare with.
_HANDSHAKE_FAILED = {
    CONNECTION_RESET: RULES["tls.rst"],
    EOF_ERROR: RULES["tls.rst"],
    GENERIC_TIMEOUT: RULES["tls.timeout"],
}


def tls_findings(ev: Evidence) -> list[Finding]:
    out: list[Finding] = []
    ctl = ev.control
    for (ip, port, sni, is_control), atts in ev.tls.items():
        if is_control or ip in ev.flagged:
            continue
        if any(a.failure is None for a in atts):
            continue  # succeeded at least once (flakiness is judged elsewhere)
        fail = atts[-1].failure
        controls = [a for (cip, cport, _, c), cat in ev.tls.items() if c and cip == ip and cport == port for a in cat]
        harmless_ok = any(a.failure is None for a in controls)
        where = ep(ip, port)
        n = len(atts)
        ctl_tls = ctl.tls.get(where, "missing") if ctl is not None else "missing"
        only_timeouts = all(a.failure == GENERIC_TIMEOUT for a in atts)
        if fail in RESET_OR_EOF | {GENERIC_TIMEOUT}:
            if harmless_ok:
                harmless = next(a.sni for a in controls if a.failure is None)
                if fail == CONNECTION_RESET:
                    out.append(
                        finding(
                            RULES["tls.sni_rst"],
                            0.97,
                            f"TLS to {where} with SNI {sni} was reset ({n} attempt(s)) while SNI {harmless} "
                            "to the same address completed: SNI filtering",
                        )
                    )
                elif fail == EOF_ERROR:
                    out.append(
                        finding(
                            RULES["tls.sni_eof"],
                            0.95,
                            f"TLS to {where} with SNI {sni} was cut (EOF) while SNI {harmless} "
                            "to the same address completed: SNI filtering",
                        )
                    )
                else:
                    out.append(
                        finding(
                            RULES["tls.sni_timeout"],
                            0.85,
                            f"TLS to {where} with SNI {sni} timed out ({n} attempt(s)) while SNI {harmless} "
                            "to the same address completed: SNI filtering by dropping",
                            timeout_only=only_timeouts,
                        )
                    )
            elif (
                controls
                and fail in RESET_OR_EOF
                and all(a.failure in RESET_OR_EOF for a in controls)
                and any(a.failure is None for a in ev.tcp.get((ip, port), []))
            ):
                out.append(
                    address_reset(
                        f"TCP to {where} connects, then TLS is {'reset' if fail == CONNECTION_RESET else 'cut'} for SNI {sni} "
                        "and for a harmless SNI alike: the address itself is reset (IP-based RST injection)",
                        [*atts, *controls],
                        control_ok=ctl_tls is None,
                    )
                )
            elif controls:
                out.append(
                    finding(
                        RULES["inconclusive.tls_any_sni"],
                        0.25,
                        f"TLS to {where} fails ({fail}) for SNI {sni} and for a harmless SNI too: the address "
                        "(or the server) breaks every handshake",
                        timeout_only=only_timeouts and all(a.failure == GENERIC_TIMEOUT for a in controls),
                    )
                )
            elif ctl_tls is None:
                out.append(
                    finding(
                        _HANDSHAKE_FAILED[fail],
                        0.75,
                        f"TLS to {where} with SNI {sni} failed ({fail}) while the control's handshake succeeded",
                        grade="good",
                        timeout_only=only_timeouts,
                    )
                )
            else:
                out.append(
                    finding(
                        _HANDSHAKE_FAILED[fail],
                        0.5,
                        f"TLS to {where} with SNI {sni} failed ({fail}) on every attempt; no harmless-SNI control",
                        grade="weak",
                        timeout_only=only_timeouts,
                    )
                )
        elif fail in CERT_FAILURES:
            out.extend(cert_finding(ev, where, sni, fail, ctl_tls))
    return out


def cert_finding(ev: Evidence, where: str, sni: str, fail: str, ctl_tls: str | None) -> list[Finding]:
    """A certificate not valid for the name at ``where``: interception, or the site's own, as the control says."""
    ctl = ev.control
    if ctl_tls is None or (
        ctl is not None and ctl_tls == "missing" and ctl.http_ok() and scheme_of_target(ev) == "https"
    ):
        return [
            finding(
                RULES["tls.invalid_cert"],
                0.75,
                f"the certificate at {where} is not valid for {sni} ({fail}) while the control validated it: "
                "interception or a redirect to another server",
            )
        ]
    if ctl is not None and (ctl_tls not in (None, "missing") or ctl.http_failed()):
        return [
            control_agrees(
                Layer.TLS,
                "invalid_cert",
                0.65,
                f"the certificate at {where} is not valid for {sni} ({fail}) and the control failed too: "
                "the site's own certificate problem",
            )
        ]
    return [
        finding(
            RULES["inconclusive.tls_invalid_cert"],
            0.25,
            f"the certificate at {where} is not valid for {sni} ({fail}): interception and a site's own "
            "misconfiguration look the same without a control",
        )
    ]


def scheme_of_target(ev: Evidence) -> str:
    return scheme(ev.t.urls[0]) if ev.t.urls else ""
