"""CPU cost of the packet capture (RST TTL/IP-ID evidence) per target, against loopback servers.

    sudo python benchmarks/bench_capture.py [--targets 300] [--concurrency 32] [--repeat 3]

Needs CAP_NET_RAW. Servers run in another process (bench_probe.serve: DNS + HTTPS with a simulated
round trip), so the CPU figures are the probe's own (process user+system time, the sniffer thread
included). Each target is DNS A+AAAA, TCP, TLS and an HTTPS GET. Compared, in the same run:

* capture off;
* one capture per run, kernel BPF passing only SYN/FIN/RST (what the probe does);
* one capture per run without the BPF (every packet, bodies included, dissected in Python);
* one capture per target: the start/stop cost of a sniffer, paid once per target, added to the above.

Only 127.0.0.1 is contacted. Note: the capture sees every SYN/FIN/RST on the interfaces, including
other processes' loopback traffic; on a shared machine the figures include that.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_probe import serve  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(targets, dns_address, ca, concurrency, capture_mode: str) -> tuple[float, int]:
    import asyncio
    import ipaddress

    from probe.measure import packets
    from probe.records import Vantage
    from probe.runner import RunConfig, Runner

    cfg = RunConfig(vantage=Vantage(id="bench"), results_dir=None, system_resolver=False, resolvers=(dns_address,),
                    ca_bundle=ca, concurrency=concurrency, timeout=10, retries=1, inject_check=False,
                    packet_capture=False, bogon_exempt=(ipaddress.ip_network("127.0.0.0/8"),))
    runner = Runner(cfg)

    async def go():
        cap = None
        if capture_mode != "off":
            cap = packets.PacketCapture(["lo"], bpf=capture_mode != "nobpf")
            assert cap.start() is None, cap.skipped
        with packets.activate(cap):
            results = await runner.measure_all(targets)
        if cap is not None:
            cap.stop_and_fill()
        return results, cap

    c0 = _cpu()
    results, cap = asyncio.run(go())
    cpu = _cpu() - c0
    if cap is not None:
        missing = sum(1 for r in results for a in r.steps.tcp if not (a.packets or {}).get("synack_ttl"))
        if missing:
            print(f"  ({capture_mode}: {missing} TCP attempts without a captured SYN-ACK)")
    return cpu, cap.packets_seen if cap is not None else 0


def start_stop_cost(n: int) -> float:
    from probe.measure import packets

    c0 = _cpu()
    for _ in range(n):
        cap = packets.PacketCapture(["lo"])
        cap.start()
        cap.stop(drain_s=0)
    return (_cpu() - c0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from probe.measure.packets import capture_unavailable
    from probe.targets import Target

    why = capture_unavailable()
    if why:
        sys.exit(f"bench_capture: {why}")
    names = [f"t{i}.bench.test" for i in range(args.targets)]
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    modes = ("off", "run", "nobpf")
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    seen: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as workdir:
        proc = ctx.Process(target=serve, args=(names, workdir, args.latency_ms / 1000, ready, stop), daemon=True)
        proc.start()
        try:
            dns_address, port, ca = ready.get(timeout=60)
            targets = [Target("other", n, "web", urls=(f"https://{n}:{port}/",), dns_names=(n,)) for n in names]
            run(targets[:20], dns_address, ca, 8, "run")  # warm-up: imports, SSL contexts, scapy
            for _ in range(args.repeat):
                for m in modes:  # interleaved, so load changes on a shared machine hit every mode alike
                    c, s = run(targets, dns_address, ca, args.concurrency, m)
                    cpu[m].append(c)
                    seen[m] = s
            per_start = start_stop_cost(20)
        finally:
            stop.set()
            proc.join(5)

    n = args.targets
    med = {m: statistics.median(v) * 1000 / n for m, v in cpu.items()}
    print(f"targets {n} x {args.repeat} (DNS A+AAAA, TCP, TLS, HTTPS GET; concurrency {args.concurrency}; "
          f"{args.latency_ms:g} ms simulated latency); CPU ms per target, median of {args.repeat}:")
    print(f"  capture off                              {med['off']:7.2f}")
    print(f"  one capture per run, BPF (the probe)     {med['run']:7.2f}   (+{med['run'] - med['off']:.2f}; "
          f"{seen['run'] / n:.1f} packets/target reached Python)")
    print(f"  one capture per run, no BPF              {med['nobpf']:7.2f}   (+{med['nobpf'] - med['off']:.2f}; "
          f"{seen['nobpf'] / n:.1f} packets/target reached Python)")
    print(f"  one capture per target (start+stop)      {med['run'] + per_start * 1000:7.2f}   "
          f"(+{per_start * 1000:.2f} ms CPU per sniffer start/stop)")


if __name__ == "__main__":
    main()
