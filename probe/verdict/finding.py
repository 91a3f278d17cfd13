"""Findings: one rule's evidence about one measurement, before the decision weighs them."""

from __future__ import annotations

from dataclasses import dataclass

from probe.records import Verdict
from probe.verdict.rules import Rule
from probe.vocab import Layer, Status

_LAYER_ORDER = {Layer.DNS: 0, Layer.TCP: 1, Layer.TLS: 2, Layer.HTTP: 3, None: 4}
_GRADE_ORDER = {"strong": 0, "good": 1, "weak": 2}
_FROM_RULE = object()


@dataclass(slots=True)
class Finding:
    rule: Rule
    confidence: float
    reason: str
    grade: str  # one of the rule's grades
    confirmed: bool
    layer: Layer | None
    method: str | None
    # The evidence is timeouts and nothing else (every failed attempt behind it timed out): random loss
    # produces it too, so on a lossy path it is not blocking evidence (classify()).
    timeout_only: bool = False

    @property
    def status(self) -> Status:
        return self.rule.status

    def verdict(self) -> Verdict:
        return Verdict(
            self.rule.status,
            self.layer,
            self.method,
            self.rule.id,
            round(self.confidence, 2),
            self.confirmed,
            self.reason,
        )


def finding(
    rule: Rule,
    confidence: float,
    reason: str,
    *,
    grade: str | None = None,
    confirmed: bool | None = None,
    layer: Layer | str | None | object = _FROM_RULE,
    method: str | None | object = _FROM_RULE,
    timeout_only: bool = False,
) -> Finding:
    """A finding of ``rule``. ``grade`` is needed only when the rule has several; ``confirmed`` only to
    say no where the rule could say yes; ``layer``/``method`` only for rules that leave both to the
    evidence (their row has neither)."""
    if grade is None:
        if len(rule.grades) > 1:
            raise ValueError(f"{rule.id}: say which grade of {rule.grade}")
        grade = rule.grade
    elif grade not in rule.grades:
        raise ValueError(f"{rule.id}: grade {grade!r} is not one of {rule.grade!r}")
    if confirmed is None:
        confirmed = rule.confirmed
    elif confirmed and not rule.confirmed:
        raise ValueError(f"{rule.id} is never confirmed")
    if layer is _FROM_RULE and method is _FROM_RULE:
        layer, method = rule.layer, rule.method
    elif rule.layer is not None or rule.method is not None:
        raise ValueError(f"{rule.id} has its own layer and method")
    else:
        layer = None if layer is _FROM_RULE else layer
        method = None if method is _FROM_RULE else method
    return Finding(rule, confidence, reason, grade, confirmed, layer, method, timeout_only)  # type: ignore[arg-type]


def verdict(rule: Rule, confidence: float, reason: str, **kwargs) -> Verdict:
    """A verdict the decision reaches itself (no finding behind it), from its rule."""
    return finding(rule, confidence, reason, **kwargs).verdict()


def best(findings: list[Finding]) -> Finding:
    return sorted(findings, key=lambda f: (_GRADE_ORDER.get(f.grade, 9), _LAYER_ORDER.get(f.layer, 9), -f.confidence))[
        0
    ]
