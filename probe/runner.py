"""The runner: measures targets (DNS → TCP → TLS → HTTP), judges them, and builds results lines.

It writes nothing: `reachprobe run` (probe.pipeline) and the daemon (probe.daemon) both call
:func:`run_async` and write what it returns through probe.results.ResultsSpool.

Data flows one way: targets → step records (probe.measure) → verdicts (probe.verdict, pure) →
results lines (probe.results.make_record). Concurrency is bounded by a semaphore over targets;
every step has its own timeout and every target a deadline, so one hanging target never holds up a run.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from probe import __version__
from probe.control import ask as mcontrol
from probe.control.client import ControlResult
from probe.control.convert import from_result
from probe.endpoint import format_endpoint
from probe.failures import DNS_NO_ANSWER, RESET_OR_EOF
from probe.fingerprints import FingerprintDB
from probe.measure import dns as mdns
from probe.measure import http as mhttp
from probe.measure import inject as minject
from probe.measure import packets as mpackets
from probe.measure import tcp as mtcp
from probe.measure import tls as mtls
from probe.records import Steps, Vantage, Verdict
from probe.results import make_record, new_id, utc_now
from probe.targets import Target, known_existing_names
from probe.verdict import RunContext, classify, run_context

R = TypeVar("R")


@dataclass(slots=True)
class RunConfig:
    vantage: Vantage
    results_dir: Path | None = Path("results")  # where probe.pipeline.run_once writes; the runner never does
    resolvers: tuple[
        str, ...
    ] = ()  # extra resolvers (ResolverSpec forms: IP[:port], https://, tls://) besides the system one
    system_resolver: bool = True
    resolv_conf: str = "/etc/resolv.conf"
    ca_bundle: str | None = None
    concurrency: int = 8
    timeout: float = 10.0  # per step attempt
    target_deadline: float = 90.0  # per target, all steps and retries included
    retries: int = 2  # extra attempts for a failed step
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_ips_per_name: int = 4
    ipv6: bool = False  # connect to IPv6 answers too (DNS always asks AAAA)
    max_redirects: int = 10
    max_body: int = 262144
    control_sni: str = "example.com"
    fingerprints: FingerprintDB = field(default_factory=FingerprintDB.default)
    inject_check: bool = True  # one raw query per name and resolver, every response collected
    inject_window: float = 1.0  # seconds the injection check listens for responses
    bogon_exempt: tuple[Any, ...] = ()  # special-purpose networks that are normal answers here
    packet_capture: bool = True  # one sniffer per run: TTL/IP ID of SYN-ACKs and RSTs (needs CAP_NET_RAW)
    controls: tuple[str, ...] = ()  # test helper URLs (the outside control), tried in order; () = none
    control_timeout: float | None = None  # per helper; None: 3 x the step timeout, at most CONTROL_TIMEOUT_CAP
    control_ca_bundle: str | None = None  # CA bundle for the helpers' own HTTPS (default: the system store)

    @property
    def control_timeout_s(self) -> float:
        if self.control_timeout is not None:
            return self.control_timeout
        return min(self.timeout * 3, CONTROL_TIMEOUT_CAP)


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


# Seconds a helper gets at most by default (a helper's own --timeout is 15 s per control).
CONTROL_TIMEOUT_CAP = 30.0


def wants_control(target: Target) -> bool:
    """Targets the outside control is asked about: web targets by their first URL, and fixed endpoints
    (Telegram's data centres) by their first address, whose connect the helper reports."""
    return (target.kind == "web" and bool(target.urls)) or (target.kind == "endpoint" and bool(target.endpoints))


def control_url(target: Target) -> str:
    """The URL the control request names: the target's first URL, or for an endpoint target its first
    address and port as a URL (the helper connects to it; its fetch there is not evidence of anything)."""
    if target.urls:
        return target.urls[0]
    ep = target.endpoints[0]
    return f"{'https' if ep.port == 443 else 'http'}://{format_endpoint(ep.host, ep.port)}/"


# A resolver's NOERROR-without-records is a definitive answer (a name with no IPv6, say), not a glitch
# that a retry could clear. Every other failure is retried: a blocking signature must reproduce.
NOT_RETRIED = frozenset({DNS_NO_ANSWER})
# After these on every attempt at an http:// URL, a harmless-Host GET tells a Host filter from an
# address that resets everything (the HTTP counterpart of the harmless-SNI handshake).
HOST_CONTROL_FAILURES = RESET_OR_EOF


async def _with_retries(make: Callable[[int], Awaitable[R]], retries: int, backoff: float) -> list[R]:
    """Run attempt 1..retries+1 until one succeeds; every attempt is kept as evidence."""
    attempts: list[R] = []
    for n in range(1, retries + 2):
        rec = await make(n)
        attempts.append(rec)
        failure = rec.failure  # type: ignore[attr-defined]
        if failure is None or failure in NOT_RETRIED or n > retries:
            break
        await asyncio.sleep(backoff * (2 ** (n - 1)))
    return attempts


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _default_port(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port, parts.scheme


class Runner:
    def __init__(self, cfg: RunConfig, on_target_done: Callable[[TargetResult], None] | None = None):
        self.cfg = cfg
        self.on_target_done = on_target_done
        specs = [mdns.ResolverSpec.system(cfg.resolv_conf)] if cfg.system_resolver else []
        specs += [mdns.ResolverSpec.parse(r) for r in cfg.resolvers]
        self.resolvers = specs

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
                self._control(target, res.steps, dns_done, t_origin + self.cfg.target_deadline)
            )
        try:
            try:
                async with asyncio.timeout(self.cfg.target_deadline):
                    await self._measure_into(target, res.steps, client, t_origin, pins, dns_done)
            except TimeoutError:
                # Steps finished so far are kept; the verdict sees the deadline through this flag.
                res.deadline_exceeded = True
            if control_task is not None:
                res.control = await control_task
        finally:
            if control_task is not None and not control_task.done():
                control_task.cancel()  # the run itself was cancelled
        return res

    async def _control(self, target: Target, steps: Steps, dns_done: asyncio.Event, deadline: float) -> ControlResult:
        """The outside control for the target's first URL, with the addresses the DNS step found."""
        cfg = self.cfg
        url = control_url(target)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await dns_done.wait()
            resolved = self._resolved(steps)
        except TimeoutError:
            resolved = {}  # the DNS step did not finish: the helpers get the URL alone
        return await mcontrol.ask(
            cfg.controls,
            url,
            {"User-Agent": mhttp.USER_AGENT},
            mcontrol.control_endpoints(url, resolved, cfg.ipv6),
            timeout=cfg.control_timeout_s,
            deadline=deadline,
            ca_bundle=cfg.control_ca_bundle,
        )

    @staticmethod
    def _resolved(steps: Steps) -> dict[str, list[str]]:
        """name -> every address any resolver answered for it (A first), uncapped: the control's view."""
        out: dict[str, list[str]] = {}
        for a in sorted(steps.dns, key=lambda a: a.qtype != "A"):
            if a.failure is None:
                out.setdefault(a.query.lower().rstrip("."), []).extend(a.answers)
        return out

    async def _measure_into(
        self,
        target: Target,
        steps: Steps,
        client,
        t_origin: float,
        pins: dict[str, str],
        dns_done: asyncio.Event | None = None,
    ) -> None:
        cfg = self.cfg
        # The injection check listens for its whole window: it runs beside the other steps, once the
        # DNS step has asked its questions (the resolver sees the stub's query first, as a browser's).
        dns_done = dns_done if dns_done is not None else asyncio.Event()
        inject_task = asyncio.ensure_future(self._inject(target, t_origin, dns_done)) if cfg.inject_check else None
        try:
            await self._connect_steps(target, steps, client, t_origin, pins, dns_done)
            if inject_task is not None:
                steps.inject.extend(await inject_task)
        finally:
            if inject_task is not None and not inject_task.done():
                inject_task.cancel()  # the target's deadline struck first

    async def _connect_steps(
        self,
        target: Target,
        steps: Steps,
        client,
        t_origin: float,
        pins: dict[str, str],
        dns_done: asyncio.Event | None = None,
    ) -> None:
        cfg = self.cfg

        async def retried(make):
            return await _with_retries(make, cfg.retries, cfg.backoff)

        # 1. DNS: every name, A and AAAA, every resolver.
        jobs = []
        for name in target.dns_names:
            for qtype in ("A", "AAAA"):
                for spec in self.resolvers:
                    jobs.append(
                        retried(
                            lambda a, n=name, q=qtype, s=spec: mdns.lookup(
                                n, q, s, timeout=cfg.timeout, attempt=a, t_origin=t_origin, ca_bundle=cfg.ca_bundle
                            )
                        )
                    )
        for attempts in await asyncio.gather(*jobs):
            steps.dns.extend(attempts)
        if dns_done is not None:
            dns_done.set()
        addresses = self._addresses(steps)

        # 2. TCP: each address of each URL host and each fixed endpoint.
        conns: dict[tuple[str, int], str | None] = {}
        for url in target.urls:
            host, port, _ = _default_port(url)
            for ip in [host] if _is_ip(host) else addresses.get(host, []):
                conns.setdefault((ip, port), None if _is_ip(host) else host)
        for ep in target.endpoints:
            for ip in [ep.host] if _is_ip(ep.host) else addresses.get(ep.host, []):
                conns.setdefault((ip, ep.port), None if _is_ip(ep.host) else ep.host)
        tcp_lists = await asyncio.gather(
            *(
                retried(
                    lambda a, ip=ip, port=port, h=h: mtcp.connect(
                        ip, port, timeout=cfg.timeout, attempt=a, t_origin=t_origin, hostname=h
                    )
                )
                for (ip, port), h in conns.items()
            )
        )
        tcp_ok: set[tuple[str, int]] = set()
        for attempts in tcp_lists:
            steps.tcp.extend(attempts)
            if any(a.failure is None for a in attempts):
                tcp_ok.add((attempts[0].ip, attempts[0].port))

        # 3. TLS for https URLs, on addresses whose TCP connect worked.
        tls_jobs = []
        for url in target.urls:
            host, port, scheme = _default_port(url)
            if scheme != "https":
                continue
            sni = target.tls_name or host
            for ip in [host] if _is_ip(host) else addresses.get(host, []):
                if (ip, port) in tcp_ok:
                    tls_jobs.append(self._tls_with_control(ip, port, sni, t_origin))
        seen: set[tuple[str, int, str]] = set()
        for attempts in await asyncio.gather(*tls_jobs):
            key = (attempts[0].ip, attempts[0].port, attempts[0].sni)
            if key not in seen:
                seen.add(key)
                steps.tls.extend(attempts)

        # 4. HTTP GET of each URL whose host resolved somewhere (else there is nothing to fetch),
        # to the first address recorded for it (the system resolver's, when it answered).
        inspect = self._inspector()
        http_jobs = []
        for url in target.urls:
            host, _, _ = _default_port(url)
            if not _is_ip(host) and addresses.get(host):
                pins[host.lower()] = addresses[host][0]
            if _is_ip(host) or addresses.get(host):
                http_jobs.append(
                    retried(
                        lambda a, u=url: mhttp.fetch(
                            client,
                            u,
                            timeout=cfg.timeout,
                            attempt=a,
                            t_origin=t_origin,
                            max_redirects=cfg.max_redirects,
                            max_body=cfg.max_body,
                            inspect_body=inspect,
                            inspect_location=getattr(cfg.fingerprints, "match_location", None),
                        )
                    )
                )
        for attempts in await asyncio.gather(*http_jobs):
            steps.http.extend(attempts)
        for attempts in await asyncio.gather(
            *(self._host_control(a, client, t_origin) for a in self._host_control_candidates(steps))
        ):
            steps.http.extend(attempts)

    def _host_control_candidates(self, steps: Steps) -> list[str]:
        """http:// URLs (by name) whose every attempt was reset or cut: worth one harmless-Host GET."""
        by_url: dict[str, list] = {}
        for a in steps.http:
            by_url.setdefault(a.url, []).append(a)
        out = []
        for url, attempts in by_url.items():
            host, _, scheme = _default_port(url)
            if (
                scheme == "http"
                and not _is_ip(host)
                and self.cfg.control_sni
                and all(a.failure in HOST_CONTROL_FAILURES for a in attempts)
            ):
                out.append(url)
        return out

    async def _host_control(self, url: str, client, t_origin: float):
        # Same URL, same pinned address, a harmless Host and no redirects: only "was it answered" counts.
        rec = await mhttp.fetch(
            client,
            url,
            timeout=self.cfg.timeout,
            attempt=1,
            t_origin=t_origin,
            max_redirects=0,
            max_body=4096,
            host_header=self.cfg.control_sni,
        )
        return [rec]

    async def _inject(self, target: Target, t_origin: float, after: asyncio.Event):
        await after.wait()
        jobs = []
        for name in target.dns_names:
            for spec in self.resolvers:
                if spec.servers and spec.proto == "udp":  # DoH/DoT/TCP answers cannot be raced by a forger
                    address = format_endpoint(*spec.servers[0])
                    jobs.append(
                        minject.dns_injection_check(
                            name, address, window_s=self.cfg.inject_window, attempt=1, t_origin=t_origin
                        )
                    )
        return list(await asyncio.gather(*jobs))

    async def _tls_with_control(self, ip: str, port: int, sni: str, t_origin: float):
        cfg = self.cfg
        attempts = await _with_retries(
            lambda a: mtls.handshake(
                ip, port, sni, timeout=cfg.timeout, attempt=a, t_origin=t_origin, ca_bundle=cfg.ca_bundle
            ),
            cfg.retries,
            cfg.backoff,
        )
        last = attempts[-1]
        if last.failure is not None and last.cert_valid is None and cfg.control_sni and cfg.control_sni != sni:
            # The handshake itself failed (reset, timeout, EOF): does the same IP complete one for a
            # harmless name? If so the filter keys on the SNI, not the address.
            attempts.append(
                await mtls.handshake(
                    ip, port, cfg.control_sni, timeout=cfg.timeout, attempt=1, t_origin=t_origin, control=True
                )
            )
        return attempts

    def _addresses(self, steps: Steps) -> dict[str, list[str]]:
        """host -> addresses to connect to: answers of every resolver, system resolver's first."""
        out: dict[str, list[str]] = {}
        for a in sorted(steps.dns, key=lambda a: a.resolver != mdns.SYSTEM):
            if a.failure is not None or (a.qtype == "AAAA" and not self.cfg.ipv6):
                continue
            lst = out.setdefault(a.query, [])
            for ip in a.answers:
                if ip not in lst and len(lst) < self.cfg.max_ips_per_name:
                    lst.append(ip)
        return out

    def _inspector(self):
        db = self.cfg.fingerprints

        def inspect(text: str, headers: dict[str, str]) -> list[dict[str, str]]:
            return db.match_body(text) + db.match_headers(headers)

        return inspect

    # -- judging -----------------------------------------------------------------------------
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
            "resolvers": [s.label for s in self.resolvers],
            "timeout": self.cfg.timeout,
            "retries": self.cfg.retries,
            "ca_bundle": bool(self.cfg.ca_bundle),
            "control_sni": self.cfg.control_sni,
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
                    vantage=self.cfg.vantage.to_dict(),
                    software_version=__version__,
                    target=target,
                    steps=r.steps.to_dict(),
                    verdict=r.verdict.to_dict(),
                    extra=extra,
                )
            )
        return out


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
