"""The runner: measures targets (DNS → TCP → TLS → HTTP), judges them, and builds results lines.

It writes nothing: `reachprobe run` (probe.pipeline) and the daemon (probe.daemon) both call
:func:`run_async` and write what it returns through probe.results.ResultsSpool.

Data flows one way: targets → step records (probe.measure) → verdicts (probe.verdict, pure) →
results lines (probe.results.make_record). Concurrency is bounded by a semaphore over targets;
every step has its own timeout and every target a deadline, so one hanging target never holds up a run.

This module runs a whole run (targets at once, each under its deadline, then the verdicts); its parts
are ``config`` (RunConfig), ``steps`` (one target's step sequence), ``control`` (the outside control
beside the steps) and ``outcome`` (TargetResult, RunSummary and the results lines).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from probe.control.convert import from_result
from probe.measure import dns as mdns
from probe.measure import http as mhttp
from probe.measure import packets as mpackets
from probe.measure import tls as mtls
from probe.records import Steps
from probe.results import new_id, utc_now
from probe.runner.config import CONTROL_TIMEOUT_CAP, RunConfig
from probe.runner.control import ask_control, control_url, wants_control
from probe.runner.outcome import RunSummary, TargetResult, build_records
from probe.runner.steps import HOST_CONTROL_FAILURES, NOT_RETRIED, StepSequence
from probe.targets import Target, known_existing_names
from probe.verdict import RunContext, classify, run_context

__all__ = [
    "CONTROL_TIMEOUT_CAP",
    "HOST_CONTROL_FAILURES",
    "NOT_RETRIED",
    "RunConfig",
    "RunSummary",
    "Runner",
    "TargetResult",
    "control_url",
    "run_async",
    "wants_control",
]


class Runner:
    def __init__(self, cfg: RunConfig, on_target_done: Callable[[TargetResult], None] | None = None):
        self.cfg = cfg
        self.on_target_done = on_target_done
        specs = [mdns.ResolverSpec.system(cfg.resolv_conf)] if cfg.system_resolver else []
        specs += [mdns.ResolverSpec.parse(r) for r in cfg.resolvers]
        self.resolvers = specs
        self.sequence = StepSequence(cfg, specs)

    # -- measuring ---------------------------------------------------------------------------
    async def measure_all(self, targets: list[Target]) -> list[TargetResult]:
        if not self.cfg.packet_capture:
            return await self._measure_all(targets)
        capture = mpackets.PacketCapture()
        await asyncio.to_thread(capture.start)  # a skip reason is recorded on every attempt
        try:
            with mpackets.activate(capture):
                return await self._measure_all(targets)
        finally:
            await asyncio.to_thread(capture.stop_and_fill)

    async def _measure_all(self, targets: list[Target]) -> list[TargetResult]:
        sem = asyncio.Semaphore(max(1, self.cfg.concurrency))
        verify = mtls.verifying_context(self.cfg.ca_bundle)

        async def one(t: Target) -> TargetResult:
            async with sem:
                # A client and pins per target: targets measured at once must never fetch from the
                # address another target's DNS step produced (same host, or a cross-host redirect).
                backend = mhttp.PinnedBackend()
                async with mhttp.make_client(
                    verify, timeout=self.cfg.timeout, backend=backend, max_connections=10
                ) as client:
                    res = await self.measure_target(t, client, backend.pins)
            if self.on_target_done:
                self.on_target_done(res)
            return res

        return list(await asyncio.gather(*(one(t) for t in targets)))

    async def measure_target(self, target: Target, client, pins: dict[str, str]) -> TargetResult:
        res = TargetResult(target=target, steps=Steps(), measured_at=utc_now())
        t_origin = time.monotonic()
        dns_done = asyncio.Event()
        control_task = None
        if self.cfg.controls and wants_control(target):
            # Beside the connect steps, never in their way; bounded by the target's deadline on its own,
            # so a slow helper neither delays the steps nor marks the target as out of time.
            control_task = asyncio.ensure_future(
                ask_control(self.cfg, target, res.steps, dns_done, t_origin + self.cfg.target_deadline)
            )
        try:
            try:
                async with asyncio.timeout(self.cfg.target_deadline):
                    await self.sequence.measure_into(target, res.steps, client, t_origin, pins, dns_done)
            except TimeoutError:
                # Steps finished so far are kept; the verdict sees the deadline through this flag.
                res.deadline_exceeded = True
            if control_task is not None:
                res.control = await control_task
        finally:
            if control_task is not None and not control_task.done():
                control_task.cancel()  # the run itself was cancelled
        return res

    # -- judging -----------------------------------------------------------------------------
    # Here, not in a part: classify is looked up in this module (tests spy on probe.runner.classify).
    def judge(self, results: list[TargetResult]) -> RunContext:
        """Controls from the whole run (canaries, addresses that reset any SNI), then a verdict each."""
        # The targets file's own names are known to exist: NXDOMAIN at every resolver for one of them is
        # not "site down" (a censor intercepting all DNS says exactly that).
        known = known_existing_names([r.target for r in results])
        ctx = run_context(
            [(r.target, r.steps) for r in results],
            fingerprints=self.cfg.fingerprints,
            bogon_exempt=tuple(self.cfg.bogon_exempt),
            known_existing_names=known,
        )
        for r in results:
            r.verdict = classify(
                r.target, r.steps, ctx, control=from_result(r.control), deadline_exceeded=r.deadline_exceeded
            )
        return ctx

    def records(self, results: list[TargetResult], run_id: str, ctx: RunContext) -> list[dict[str, Any]]:
        return build_records(self.cfg, self.resolvers, results, run_id, ctx)


async def run_async(
    cfg: RunConfig, targets: list[Target], on_target_done: Callable[[TargetResult], None] | None = None
) -> RunSummary:
    """Measure every target once, judge, and build the results lines. Writes nothing; cancelling
    the task abandons the run (the daemon's stop) and leaves nothing behind."""
    started = time.monotonic()
    runner = Runner(cfg, on_target_done)
    run_id = new_id()
    results = await runner.measure_all(targets)
    ctx = runner.judge(results)
    records = runner.records(results, run_id, ctx)
    return RunSummary(
        run_id=run_id, results=results, records=records, written_to=None, elapsed_s=time.monotonic() - started
    )
