"""One target's measurement steps: DNS → TCP → TLS → HTTP, each attempt retried and every attempt
kept; the harmless-SNI and harmless-Host controls; the DNS injection check beside them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from probe.endpoint import format_endpoint
from probe.failures import DNS_NO_ANSWER, RESET_OR_EOF
from probe.measure import dns as mdns
from probe.measure import http as mhttp
from probe.measure import inject as minject
from probe.measure import tcp as mtcp
from probe.measure import tls as mtls
from probe.netfacts import is_ip_literal
from probe.records import Steps
from probe.runner.config import RunConfig
from probe.targets import Target

R = TypeVar("R")

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


def _default_port(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port, parts.scheme


class StepSequence:
    """The steps of one target, as the run's configuration and resolvers say."""

    def __init__(self, cfg: RunConfig, resolvers: list[mdns.ResolverSpec]):
        self.cfg = cfg
        self.resolvers = resolvers

    async def measure_into(
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
            for ip in [host] if is_ip_literal(host) else addresses.get(host, []):
                conns.setdefault((ip, port), None if is_ip_literal(host) else host)
        for ep in target.endpoints:
            for ip in [ep.host] if is_ip_literal(ep.host) else addresses.get(ep.host, []):
                conns.setdefault((ip, ep.port), None if is_ip_literal(ep.host) else ep.host)
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
            for ip in [host] if is_ip_literal(host) else addresses.get(host, []):
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
            if not is_ip_literal(host) and addresses.get(host):
                pins[host.lower()] = addresses[host][0]
            if is_ip_literal(host) or addresses.get(host):
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
                and not is_ip_literal(host)
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
