"""Probe throughput benchmark: N targets measured against loopback servers.

    python benchmarks/bench_probe.py [--targets 500] [--concurrency 64]

Starts a DNS server (N names → 127.0.0.1) and an HTTPS server, both adding a simulated round trip
(--latency-ms; loopback has none and this kernel has no netem), with a throwaway CA in a *separate
process*, so the CPU figures are the probe's own. Measures every target (DNS A+AAAA, TCP, TLS,
HTTPS GET) at the given concurrency, then again at concurrency 1 as the baseline, and prints
targets/second, CPU ms per target, peak RSS and the speed-up ratio, and checks that no verdict
changed between the two runs. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(names: list[str], workdir: str, latency: float, ready: mp.Queue, stop: mp.Event) -> None:
    from tests.unit.servers import DNSServer, HTTPServer, ZoneEntry, make_pki

    pki = make_pki(Path(workdir), names[:1] + ["*.bench.test"])
    zone = {n: ZoneEntry(a=["127.0.0.1"]) for n in names}
    with DNSServer(zone, delay=latency) as dns, HTTPServer(pki, delay=latency) as https:
        ready.put((dns.address, https.port, str(pki.ca_pem)))
        stop.wait(3600)


def measure(targets, dns_address: str, ca: str, concurrency: int):
    from probe.pipeline import run_once
    from probe.records import Vantage
    from probe.runner import RunConfig

    import ipaddress

    # The injection check holds every name for its listening window, which measures the window,
    # not the probe; loopback answers are normal here, not bogons.
    cfg = RunConfig(vantage=Vantage(id="bench"), results_dir=None, system_resolver=False,
                    resolvers=(dns_address,), ca_bundle=ca, concurrency=concurrency, timeout=10, retries=1,
                    inject_check=False, bogon_exempt=(ipaddress.ip_network("127.0.0.0/8"),))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    summary = run_once(cfg, targets)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    verdicts = {r.target.name: (r.verdict.status, r.verdict.layer, r.verdict.method) for r in summary.results}
    return wall, cpu, verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency-ms", type=float, default=50.0,
                    help="simulated round trip added by the servers to each DNS reply and HTTP response "
                         "(loopback has none, so without it concurrency has nothing to overlap)")
    ap.add_argument("--baseline-targets", type=int, default=None,
                    help="targets in the concurrency-1 baseline (default: all; fewer = quicker, rates compared)")
    args = ap.parse_args()

    from probe.targets import Target

    names = [f"t{i}.bench.test" for i in range(args.targets)]
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    with tempfile.TemporaryDirectory() as workdir:
        proc = ctx.Process(target=serve, args=(names, workdir, args.latency_ms / 1000, ready, stop), daemon=True)
        proc.start()
        try:
            dns_address, port, ca = ready.get(timeout=60)
            targets = [Target("other", n, "web", urls=(f"https://{n}:{port}/",), dns_names=(n,)) for n in names]
            measure(targets[:20], dns_address, ca, 8)  # warm-up: imports, SSL contexts

            wall, cpu, verdicts = measure(targets, dns_address, ca, args.concurrency)
            n_base = args.baseline_targets or args.targets
            wall1, cpu1, verdicts1 = measure(targets[:n_base], dns_address, ca, 1)
        finally:
            stop.set()
            proc.join(5)

    rate, rate1 = args.targets / wall, n_base / wall1
    changed = [n for n in verdicts1 if verdicts1[n] != verdicts[n]]
    statuses = sorted({v[0] for v in verdicts.values()})
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"targets                  {args.targets} (each: DNS A+AAAA, TCP, TLS, HTTPS GET; "
          f"{args.latency_ms:g} ms simulated latency per DNS reply and HTTP response)")
    print(f"concurrency {args.concurrency:<4}         {rate:8.1f} targets/s   {1000 * cpu / args.targets:6.2f} CPU ms/target   wall {wall:.2f}s")
    print(f"concurrency 1 (baseline) {rate1:8.1f} targets/s   {1000 * cpu1 / n_base:6.2f} CPU ms/target   wall {wall1:.2f}s ({n_base} targets)")
    print(f"speed-up vs baseline     {rate / rate1:8.1f}x")
    print(f"peak RSS                 {peak_rss_mb:8.1f} MB")
    print(f"verdicts                 {statuses}; changed between concurrency 1 and {args.concurrency}: {len(changed)}")
    if changed:
        print("  changed:", changed[:10])
        sys.exit(1)


if __name__ == "__main__":
    main()
