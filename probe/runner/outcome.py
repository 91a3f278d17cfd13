"""What a run gives back: each target's :class:`TargetResult`, the :class:`RunSummary`, and the
results lines (probe.results.make_record) built from the judged results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from probe import __version__
from probe.control.client import ControlResult
from probe.measure.dns import ResolverSpec
from probe.records import Steps, Verdict
from probe.results import make_record
from probe.runner.config import RunConfig
from probe.runner.control import wants_control
from probe.targets import Target
from probe.verdict import RunContext


@dataclass(slots=True)
class TargetResult:
    target: Target
    steps: Steps
    measured_at: datetime
    deadline_exceeded: bool = False
    verdict: Verdict | None = None
    control: ControlResult | None = None  # the outside control, when one was asked for


@dataclass(slots=True)
class RunSummary:
    run_id: str
    results: list[TargetResult]
    records: list[dict[str, Any]]
    written_to: Path | None
    elapsed_s: float

    def counts(self) -> dict[str, dict[str, int]]:
        """platform -> status -> count."""
        out: dict[str, dict[str, int]] = {}
        for r in self.results:
            status = r.verdict.status if r.verdict else "inconclusive"
            per = out.setdefault(r.target.platform, {})
            per[status] = per.get(status, 0) + 1
        return out

    def without_control(self) -> tuple[int, int]:
        """(verdicts made without an outside control, verdicts that could have had one): web targets
        with no control configured, or whose helpers all failed."""
        eligible = [r for r in self.results if wants_control(r.target)]
        return sum(1 for r in eligible if r.control is None or not r.control.ok), len(eligible)


def build_records(
    cfg: RunConfig, resolvers: Sequence[ResolverSpec], results: list[TargetResult], run_id: str, ctx: RunContext
) -> list[dict[str, Any]]:
    """One results line per judged result; the run's controls and configuration go on each of them."""
    health = ctx.health
    controls = {
        "canaries": {
            "domestic_ok": health.domestic_ok,
            "domestic_total": health.domestic_total,
            "international_ok": health.international_ok,
            "international_total": health.international_total,
        },
        "canary_throughput_bps": ctx.canary_throughput_bps,
        "canary_fetch_bps": ctx.canary_fetch_bps,
        "canary_rtt_ms": ctx.canary_rtt_ms,
    }
    config = {
        "resolvers": [s.label for s in resolvers],
        "timeout": cfg.timeout,
        "retries": cfg.retries,
        "ca_bundle": bool(cfg.ca_bundle),
        "control_sni": cfg.control_sni,
    }
    out = []
    for r in results:
        target: dict[str, Any] = {"platform": r.target.platform, "name": r.target.name, "kind": r.target.kind}
        if r.target.scope:
            target["scope"] = r.target.scope
        target["known_to_exist"] = r.target.known_to_exist
        assert r.verdict is not None
        extra: dict[str, Any] = {"deadline_exceeded": r.deadline_exceeded, "controls": controls, "config": config}
        if r.control is not None:
            extra["control"] = r.control.to_dict()
        out.append(
            make_record(
                run_id=run_id,
                measured_at=r.measured_at,
                vantage=cfg.vantage.to_dict(),
                software_version=__version__,
                target=target,
                steps=r.steps.to_dict(),
                verdict=r.verdict.to_dict(),
                extra=extra,
            )
        )
    return out
