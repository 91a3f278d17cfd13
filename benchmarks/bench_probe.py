"""Probe throughput benchmark: N targets measured against loopback servers, beside dig+curl.

    python benchmarks/bench_probe.py [--targets 500] [--concurrency 64] [--inject] [--no-packet-capture] [--profile FILE]

Starts a DNS server (N names → 127.0.0.1) and an HTTPS server, both adding a simulated round trip
(--latency-ms; loopback has none and this kernel has no netem), with a throwaway CA in a *separate
process*, so the CPU figures are the probe's own. Measures every target (DNS A+AAAA, TCP, TLS,
HTTPS GET) at the given concurrency, then, in the same run and against the same servers, what a
volunteer would otherwise use: `dig` A and AAAA plus `curl` per target under `xargs -P <concurrency>`
(skipped with a message when the tools are missing), then the probe again at concurrency 1 as the
baseline. Prints targets/second, CPU ms per target (the contender's: every dig, curl, sh and xargs
process), the server process's CPU, peak RSS and the ratios, and checks that no verdict changed
between the probe's runs. ``--inject`` (root or CAP_NET_RAW) adds a run with the injection check
on and reports its CPU per target. Only 127.0.0.1 is ever contacted: dig asks the benchmark's
server, curl connects where dig's answer says (refused unless it is 127.0.0.0/8), through no proxy.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


def process_cpu(pid: int) -> float:
    """User+system CPU seconds of a live process (the servers), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    label: str
    n: int
    wall: float
    cpu: float  # seconds, the contender's own processes
    server_cpu: float  # seconds, the benchmark's servers while it ran
    verdicts: dict[str, tuple]
    inject_skipped: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        return self.n / self.wall

    def line(self) -> str:
        return (f"{self.label:<28} {self.rate:8.1f} targets/s  {1000 * self.cpu / self.n:7.2f} CPU ms/target"
                f"  (servers {1000 * self.server_cpu / self.n:5.2f})  wall {self.wall:6.2f}s  n={self.n}")


def measure(targets, dns_address: str, ca: str, concurrency: int, server_pid: int, *, inject: bool = False,
            label: str = "", profile: str | None = None, capture: bool = True) -> Figures:
    import ipaddress

    from probe.pipeline import run_once
    from probe.records import Vantage
    from probe.runner import RunConfig

    # Loopback answers are normal here, not bogons. The injection check is off unless asked for:
    # it holds every name for its listening window, which measures the window, not the probe.
    cfg = RunConfig(vantage=Vantage(id="bench"), results_dir=None, system_resolver=False,
                    resolvers=(dns_address,), ca_bundle=ca, concurrency=concurrency, timeout=10, retries=1,
                    inject_check=inject, packet_capture=capture, bogon_exempt=(ipaddress.ip_network("127.0.0.0/8"),))
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    s0 = process_cpu(server_pid)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    summary = run_once(cfg, targets)
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    s1 = process_cpu(server_pid)
    if prof:
        prof.dump_stats(profile)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    verdicts = {r.target.name: (str(r.verdict.status), r.verdict.layer, r.verdict.method) for r in summary.results}
    skipped = tuple(sorted({a.skipped for r in summary.results for a in r.steps.inject if a.skipped}))
    return Figures(label, len(targets), wall, cpu, s1 - s0, verdicts, skipped)


def inject_window() -> float:
    from probe.runner import RunConfig

    return RunConfig.__dataclass_fields__["inject_window"].default


def median_run(runs: list[Figures]) -> Figures:
    """The run with the median rate (each repeat is one probe run and one dig+curl run, alternated, so
    a burst of load from elsewhere on the machine lands on both sides)."""
    return sorted(runs, key=lambda f: f.rate)[len(runs) // 2]


# What a volunteer without reachprobe would script: both address families asked, then the page fetched
# from the address dig gave, certificate checked. Anything but a loopback answer is never connected to
# (curl would otherwise resolve the name itself), and no proxy from the environment is used.
CONTENDER_SH = r"""
n="$1"
ip=$(dig @127.0.0.1 -p "$DNS_PORT" +short +time=10 +tries=2 A "$n")
dig @127.0.0.1 -p "$DNS_PORT" +short +time=10 +tries=2 AAAA "$n" >/dev/null
case "$ip" in
  127.*) code=$(curl -sS --noproxy '*' --proto '=https' --max-time 10 --cacert "$CA" \
                     --resolve "$n:$HTTPS_PORT:$ip" -o /dev/null -w '%{http_code}' "https://$n:$HTTPS_PORT/") ;;
  *) code=no_address ;;
esac
echo "$n $code"
"""


def missing_tools() -> list[str]:
    return [t for t in ("dig", "curl", "xargs", "sh") if shutil.which(t) is None]


def contender(names: list[str], dns_address: str, https_port: int, ca: str, concurrency: int,
              server_pid: int) -> Figures:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DNS_PORT": dns_address.rsplit(":", 1)[1],
           "HTTPS_PORT": str(https_port), "CA": ca, "LC_ALL": "C"}  # no *_proxy variables reach curl
    s0 = process_cpu(server_pid)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # xargs waits for its children, so their CPU is in RUSAGE_CHILDREN once xargs is reaped.
    proc = subprocess.run(["xargs", "-P", str(concurrency), "-n", "1", "sh", "-c", CONTENDER_SH, "sh"],
                          input="\n".join(names) + "\n", capture_output=True, text=True, env=env,
                          timeout=max(120, 2 * len(names)))
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s1 = process_cpu(server_pid)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    verdicts = {}
    for line in proc.stdout.splitlines():
        name, _, code = line.partition(" ")
        verdicts[name] = ("ok",) if code == "200" else ("failed", code)
    return Figures(f"dig+curl, xargs -P {concurrency}", len(names), wall, cpu, s1 - s0, verdicts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency-ms", type=float, default=50.0,
                    help="simulated round trip added by the servers to each DNS reply and HTTP response "
                         "(loopback has none, so without it concurrency has nothing to overlap)")
    ap.add_argument("--baseline-targets", type=int, default=None,
                    help="targets in the concurrency-1 baseline (default: all; fewer = quicker, rates compared; "
                         "0 = no baseline)")
    ap.add_argument("--no-contender", action="store_true", help="skip the dig+curl run")
    ap.add_argument("--inject", action="store_true",
                    help="also run with the injection check on (root or CAP_NET_RAW for the raw listener) "
                         "and report its CPU per target")
    ap.add_argument("--no-packet-capture", dest="capture", action="store_false",
                    help="measure without the packet capture (RST TTL evidence; as root it is on, as for a volunteer "
                         "with CAP_NET_RAW)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the (first) concurrency-N probe run into FILE")
    ap.add_argument("--repeat", type=int, default=3,
                    help="alternate the probe and dig+curl runs this many times and report the median of each "
                         "(the machine may be shared: one run of each says little)")
    args = ap.parse_args()

    from probe.targets import Target

    names = [f"t{i}.bench.test" for i in range(args.targets)]
    n_base = args.targets if args.baseline_targets is None else args.baseline_targets
    missing = [] if args.no_contender else missing_tools()
    if missing:
        print(f"dig+curl contender skipped: {', '.join(missing)} not found "
              f"(Debian: apt-get install bind9-dnsutils curl)", file=sys.stderr)
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    runs: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as workdir:
        proc = ctx.Process(target=serve, args=(names, workdir, args.latency_ms / 1000, ready, stop), daemon=True)
        proc.start()
        try:
            dns_address, port, ca = ready.get(timeout=60)
            pid = proc.pid
            targets = [Target("other", n, "web", urls=(f"https://{n}:{port}/",), dns_names=(n,)) for n in names]
            measure(targets[:20], dns_address, ca, 8, pid)  # warm-up: imports, SSL contexts

            probes, contenders, injects = [], [], []
            for i in range(max(1, args.repeat)):
                probes.append(measure(targets, dns_address, ca, args.concurrency, pid,
                                      label=f"reachprobe, concurrency {args.concurrency}",
                                      profile=args.profile if i == 0 else None, capture=args.capture))
                if not args.no_contender and not missing:
                    contenders.append(contender(names, dns_address, port, ca, args.concurrency, pid))
                if args.inject:
                    injects.append(measure(targets, dns_address, ca, args.concurrency, pid, inject=True,
                                           label="reachprobe + injection check", capture=args.capture))
                for fig in (probes[-1], *contenders[-1:], *injects[-1:]):
                    print("  repeat", i + 1, fig.line(), file=sys.stderr, flush=True)
            runs["probe"] = median_run(probes)
            if contenders:
                runs["contender"] = median_run(contenders)
            if injects:
                runs["inject"] = median_run(injects)
            if n_base:
                runs["base"] = measure(targets[:n_base], dns_address, ca, 1, pid, label="reachprobe, concurrency 1",
                                      capture=args.capture)
        finally:
            stop.set()
            proc.join(5)

    probe = runs["probe"]
    print(f"targets: {args.targets}, each DNS A+AAAA, TCP, TLS, HTTPS GET; {args.latency_ms:g} ms simulated "
          f"latency per DNS reply and HTTP response; servers in another process on 127.0.0.1; "
          f"median of {max(1, args.repeat)} alternated runs")
    for fig in runs.values():
        print(fig.line())
    if "contender" in runs:
        c = runs["contender"]
        ok_c = sum(v == ("ok",) for v in c.verdicts.values())
        ok_p = sum(v[0] == "ok" for v in probe.verdicts.values())
        # Each repeat's probe and dig+curl runs are neighbours in time: their ratio is the paired figure.
        ratios = sorted(p.rate / q.rate for p, q in zip(probes, contenders))
        print(f"reachprobe / dig+curl        {statistics.median(ratios):8.1f}x throughput (median of the "
              f"{len(ratios)} paired runs; {ratios[0]:.1f}x to {ratios[-1]:.1f}x), "
              f"{c.cpu / probe.cpu:.1f}x less CPU per target; ok: reachprobe {ok_p}, dig+curl {ok_c} of {c.n}")
        failed_c = collections.Counter(v[1] for q in contenders for v in q.verdicts.values() if v != ("ok",))
        if failed_c:
            print(f"  dig+curl failures over all its runs (curl's HTTP code, 000 = no response): "
                  f"{dict(failed_c)}")
    if "base" in runs:
        print(f"speed-up vs concurrency 1    {probe.rate / runs['base'].rate:8.1f}x")
    if "inject" in runs:
        i = runs["inject"]
        on_ms = statistics.median(1000 * f.cpu / f.n for f in injects)
        off_ms = statistics.median(1000 * f.cpu / f.n for f in probes)
        if i.inject_skipped:
            print(f"injection check              skipped: {'; '.join(i.inject_skipped)}")
        else:
            print(f"injection check CPU          {on_ms - off_ms:8.2f} CPU ms/target (median with it on, "
                  f"{on_ms:.2f}, minus median without, {off_ms:.2f}; it listens {inject_window():g} s per "
                  f"name, so the rate with it on measures the window)")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS                     {peak_rss_mb:8.1f} MB")
    failed = False
    compared = [r for r in ("base", "inject") if r in runs]
    for other in probes:
        changed = [n for n in other.verdicts if other.verdicts[n] != probe.verdicts[n]]
        if changed:
            print(f"verdicts changed between repeats of the probe run: {changed[:10]}")
            failed = True
    for r in compared:
        other = runs[r].verdicts
        changed = [n for n in other if other[n] != probe.verdicts[n]]
        print(f"verdicts {sorted({v[0] for v in other.values()})}; changed between {probe.label!r} "
              f"and {runs[r].label!r}: {len(changed)}")
        if changed:
            print("  changed:", changed[:10])
            failed = True
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
