"""Test-helper benchmark: control requests per second and the helper's peak RSS under 200 clients.

    python benchmarks/bench_helper.py [--requests 1000] [--clients 200] [--latency-ms 0] [--max-seconds 120]

Starts, each in its own process so CPU and memory figures belong to whom they should: loopback
target servers (a DNS server answering bench.test -> 127.0.0.1 and a plain HTTP server, optionally
with a simulated round trip), and `reachprobe helper` itself (the real command, --allow-net
127.0.0.0/8, limits raised so none of the load is refused). Then --clients concurrent clients send
--requests control requests for the target URL, and the helper's peak RSS is read from
/proc/PID/status (VmHWM).

Contender, in the same run: the same work done directly by the client (dnspython A+AAAA, a TCP
connect, an httpx GET with the body read), at the same concurrency: the ratio is what asking the
helper costs against measuring the URL yourself. Bounded in count and time; only 127.0.0.1 is
ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve_targets(latency: float, ready: mp.Queue, stop: mp.Event) -> None:
    from tests.unit.servers import DNSServer, HTTPServer, ZoneEntry

    with DNSServer({"bench.test": ZoneEntry(a=["127.0.0.1"])}, delay=latency) as dns, \
            HTTPServer(delay=latency) as http:
        ready.put((dns.port, http.port))
        stop.wait(3600)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _wait_up(url: str, proc: subprocess.Popen, deadline: float) -> None:
    import httpx

    async with httpx.AsyncClient(trust_env=False) as c:
        while True:
            try:
                if (await c.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the helper did not start")
            await asyncio.sleep(0.1)


async def _run_load(n: int, clients: int, max_seconds: float, one) -> tuple[float, Counter]:
    """n calls of `one()`, `clients` at a time, stopping early at max_seconds."""
    codes: Counter = Counter()
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    deadline = time.monotonic() + max_seconds

    async def worker():
        while time.monotonic() < deadline:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                codes[await one()] += 1
            except Exception as exc:  # a benchmark counts failures, it does not stop on them
                codes[type(exc).__name__] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - t0, codes


async def bench_helper(helper_url: str, target: str, n: int, clients: int, max_seconds: float):
    import httpx

    body = {"http_request": target, "http_request_headers": {}, "tcp_connect": []}
    # A fresh connection per control, as a probe's query_control makes.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=60) as c:
        async def one():
            r = await c.post(helper_url, json=body)
            ok = r.status_code == 200 and r.json()["http_request"]["status_code"] == 200
            return "ok" if ok else f"http_{r.status_code}"

        return await _run_load(n, clients, max_seconds, one)


async def bench_direct(dns_port: int, target: str, http_port: int, n: int, clients: int, max_seconds: float):
    import dns.asyncresolver
    import dns.nameserver
    import httpx

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", dns_port)]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)  # fresh, as the helper
    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=60) as c:
        async def one():
            await asyncio.gather(resolver.resolve("bench.test.", "A", lifetime=10, raise_on_no_answer=False),
                                 resolver.resolve("bench.test.", "AAAA", lifetime=10, raise_on_no_answer=False))
            _, w = await asyncio.open_connection("127.0.0.1", http_port)
            w.transport.abort()
            r = await c.get(target.replace("bench.test", "127.0.0.1"))
            return "ok" if r.status_code == 200 and r.content else f"http_{r.status_code}"

        return await _run_load(n, clients, max_seconds, one)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="simulated round trip of the target servers")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="per phase")
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    targets = ctx.Process(target=serve_targets, args=(args.latency_ms / 1000, ready, stop), daemon=True)
    targets.start()
    dns_port, http_port = ready.get(timeout=60)
    target = f"http://bench.test:{http_port}/"

    port = _free_port()
    helper = subprocess.Popen(
        [sys.executable, "-m", "probe", "helper", "--listen", f"127.0.0.1:{port}", "--allow-net", "127.0.0.0/8",
         "--resolver", f"127.0.0.1:{dns_port}", "--max-concurrent", str(args.clients + 56),
         "--rate", "100000/s", "--burst", "100000", "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    helper_url = f"http://127.0.0.1:{port}/"
    try:
        asyncio.run(_wait_up(helper_url, helper, time.monotonic() + 60))
        idle_rss = _proc_kb(helper.pid, "VmRSS") / 1024
        asyncio.run(bench_helper(helper_url, target, 20, 4, 30))  # warm-up
        cpu0 = _proc_cpu_s(helper.pid)
        wall_h, codes_h = asyncio.run(bench_helper(helper_url, target, args.requests, args.clients, args.max_seconds))
        cpu_h = _proc_cpu_s(helper.pid) - cpu0
        peak_rss = _proc_kb(helper.pid, "VmHWM") / 1024
        wall_d, codes_d = asyncio.run(bench_direct(dns_port, target, http_port, args.requests, args.clients,
                                                   args.max_seconds))
    finally:
        helper.terminate()
        helper.wait(30)
        stop.set()
        targets.join(10)

    done_h, done_d = sum(codes_h.values()), sum(codes_d.values())
    rps_h, rps_d = done_h / wall_h, done_d / wall_d
    print(f"target                   {target}  (latency {args.latency_ms:g} ms)")
    print(f"clients                  {args.clients}")
    print(f"helper: requests         {done_h} in {wall_h:.2f} s  -> {rps_h:8.1f} req/s   outcomes {dict(codes_h)}")
    print(f"helper: CPU per control  {cpu_h / max(done_h, 1) * 1000:8.1f} ms (the helper process alone)")
    print(f"helper: RSS idle / peak  {idle_rss:8.1f} MB / {peak_rss:.1f} MB")
    print(f"direct: requests         {done_d} in {wall_d:.2f} s  -> {rps_d:8.1f} req/s   outcomes {dict(codes_d)}")
    print(f"ratio helper/direct      {rps_h / rps_d:8.2f}  (requests/s; 1.0 = asking the helper costs nothing extra)")


if __name__ == "__main__":
    main()
