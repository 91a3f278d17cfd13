"""Verdicts: pure functions from step records (+ run controls) to a Verdict. No I/O here.

Interface used by the runner (stable):

    health = canary_health(canary_measurements)          # from the canaries of the same run
    ctx = run_context([(target, steps), ...], fingerprints=db)   # or RunContext(health=health, ...)
    verdict = classify(target, steps, ctx)                # optional: control=ControlMeasurement(...)

Every verdict names the rule that produced it (``Verdict.rule``), a row of ``RULES`` (rules.py, the
source of docs/verdicts.md's table). Rules produce findings (dns_rules, tcp_rules, tls_rules,
http_rules, throttle) from one measurement's evidence (evidence.py, steps.py, reach.py) and the run's
controls (controls.py, run.py); decide.py weighs them in the order DECISION_ORDER gives.

``confirmed`` is true only for a fingerprint match or an unambiguous signature: a known blockpage IP,
a DNS answer contradicted by another resolver with a special-purpose address, an injected DNS answer,
a TLS reset/EOF for the target's SNI while a harmless SNI to the same IP completes.
"""

from __future__ import annotations

from probe.verdict.controls import CanaryHealth, ControlMeasurement, RunContext
from probe.verdict.decide import DECISION_ORDER, classify
from probe.verdict.dns_rules import injection_evidence
from probe.verdict.params import THROTTLE_MIN_BYTES, THROTTLE_MIN_SECONDS, THROTTLE_RATIO
from probe.verdict.reach import target_reached
from probe.verdict.rules import RULES, Rule
from probe.verdict.run import address_evidence, canary_health, run_context
from probe.verdict.steps import split_host_controls

__all__ = [
    "RULES",
    "Rule",
    "DECISION_ORDER",
    "CanaryHealth",
    "RunContext",
    "ControlMeasurement",
    "canary_health",
    "run_context",
    "address_evidence",
    "classify",
    "target_reached",
    "split_host_controls",
    "injection_evidence",
    "THROTTLE_MIN_BYTES",
    "THROTTLE_MIN_SECONDS",
    "THROTTLE_RATIO",
]
