"""Benchmark: peak RSS of reading one large results file, against the file's size.

    python benchmarks/bench_readers.py                 # a 200 MB file
    python benchmarks/bench_readers.py --mb 1000       # 1 GB (the size in issue #13)

Generates one ``YYYY-MM-DD.jsonl`` of realistic lines (about 3 KB each: DNS, TCP, TLS and HTTP
attempts with a body head, as the probe writes them), with one bad line of each kind sprinkled in,
then runs each contender in a fresh subprocess (so its peak RSS is its own) and prints seconds, peak
RSS, the RSS added by reading (peak minus the RSS after imports) and that added RSS as a fraction of
the file size:

* ``load``: ``analysis.load`` (pandas), the streaming block reader;
* ``load-dask``: ``analysis.load(engine="dask").compute()`` (threads) plus ``read_report``;
* ``iter_results``: the reader behind ``show`` (a dict per line, counted and dropped);
* ``whole-file``: the reader this replaced: the whole file read into memory, then parsed by
  ``pyarrow.json`` in one go (on a clean file; it crashed on the bad lines);
* ``pandas``: ``pandas.read_json(lines=True)``, the naive contender (on a clean copy: it raises on
  the first bad line).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------------------------- generate
def _steps(i: int) -> dict:
    ip = f"157.240.{i % 250}.{(i * 7) % 250}"
    dns = [{"attempt": a, "t0": 0.01 * a, "duration_ms": 12.5, "failure": None, "resolver": r, "qtype": q,
            "rcode": "NOERROR", "answers": [ip] if q == "A" else [], "cnames": [], "ttl": 60}
           for a in (1,) for r in ("system", "9.9.9.9") for q in ("A", "AAAA")]
    tcp = [{"attempt": 1, "t0": 0.05, "duration_ms": 40.1, "failure": None, "ip": ip, "port": p} for p in (80, 443)]
    tls = [{"attempt": 1, "t0": 0.09, "duration_ms": 80.3, "failure": None, "ip": ip, "sni": "www.facebook.com",
            "version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "cert_subject": "CN=*.facebook.com",
            "cert_issuer": "CN=DigiCert SHA2 High Assurance Server CA", "cert_sha256": "ab" * 32}]
    http = [{"attempt": 1, "t0": 0.2, "duration_ms": 210.0, "failure": None, "url": "https://www.facebook.com/",
             "ip": ip, "status": 200, "headers": {"content-type": "text/html", "server": "proxygen-bolt"},
             "title": "Facebook", "length": 81234, "sha256": "cd" * 32, "body_head": "<!DOCTYPE html>" + "x" * 1500,
             "throughput_bps": 812345.0, "redirects": []}]
    return {"dns": dns, "tcp": tcp, "tls": tls, "http": http, "inject": []}


def generate(path: Path, mb: int, with_bad: bool) -> int:
    """Write about ``mb`` MB of lines; returns the number of good lines."""
    from tests import synth

    df, _ = synth.timeline(days=2, noise=0.0)
    recs = synth.to_records(df)
    bad = [b"\xff" * 10, b"[" * 100_000, b'{"schema":"reachprobe/1","verdict":"blocked"}', b"not json"]
    n = 0
    with open(path, "wb") as fh:
        while fh.tell() < mb * 1_000_000:
            rec = dict(recs[n % len(recs)])
            rec["id"] = f"m{n}"
            rec["steps"] = _steps(n)
            fh.write(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
            n += 1
            if with_bad and n % 2_000 == 0:
                fh.write(bad[(n // 2_000) % len(bad)] + b"\n")
    return n


# ------------------------------------------------------------------------------------------ phases
def phase(name: str, path: Path) -> dict:
    import warnings

    import pandas as pd
    import pyarrow.json as pajson

    import analysis
    from analysis import frame as fr
    from analysis import io as aio
    from probe.results import ReadReport, iter_results

    warnings.simplefilter("ignore")
    base = rss_mb()
    t = time.perf_counter()
    if name == "load":
        df = analysis.load(path)
        rows, skipped = len(df), analysis.read_report(df)["skipped"]
    elif name == "load-dask":
        import dask

        with dask.config.set(scheduler="threads", num_workers=2):
            ddf = analysis.load(path, engine="dask")
            rows = len(ddf.compute())
            skipped = analysis.read_report(ddf)["skipped"]
    elif name == "iter_results":
        rep = ReadReport()
        rows = sum(1 for _ in iter_results(path, rep))
        skipped = rep.skipped
    elif name == "whole-file":
        with open(path, "rb") as fh:
            data = fh.read()
        block = max(1 << 20, min(len(data) + 1, 1 << 26))
        tbl = pajson.read_json(io.BytesIO(data), read_options=pajson.ReadOptions(block_size=block),
                               parse_options=aio._PARSE)
        df = fr.from_arrow(fr.flatten_json_table(tbl))
        rows, skipped = len(df), 0
    elif name == "pandas":
        df = pd.read_json(path, lines=True, dtype=False)
        rows, skipped = len(df), 0
    else:
        raise SystemExit(f"unknown phase {name}")
    return {"seconds": time.perf_counter() - t, "rows": rows, "skipped": skipped, "base_mb": base,
            "peak_mb": peak_rss_mb()}


def run_phase(name: str, path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--phase", name, str(path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=3600)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--dir", default=os.environ.get("TMPDIR", "/var/tmp"), help="where the files are generated")
    ap.add_argument("--phase", nargs=2, metavar=("NAME", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", default=None, help="contenders to run (default: all)")
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase[0], Path(args.phase[1]))))
        return
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-readers-") as tmp:
        dirty = Path(tmp) / "dirty" / "2026-09-01.jsonl"
        clean = Path(tmp) / "clean" / "2026-09-01.jsonl"
        dirty.parent.mkdir()
        clean.parent.mkdir()
        n = generate(dirty, args.mb, with_bad=True)
        generate(clean, args.mb, with_bad=False)
        size = dirty.stat().st_size / 1e6
        print(f"results file: {size:.0f} MB, {n:,} good lines (+ bad ones in the dirty copy); "
              f"{os.cpu_count()} CPUs")
        contenders = [("load", dirty), ("load-dask", dirty), ("iter_results", dirty), ("whole-file", clean),
                      ("pandas", clean)]
        for name, path in contenders:
            if args.only and name not in args.only:
                continue
            r = run_phase(name, path)
            if "error" in r:
                print(f"  {name:13s} failed: {r['error']}")
                continue
            added = r["peak_mb"] - r["base_mb"]
            print(f"  {name:13s} {r['seconds']:6.1f} s  peak RSS {r['peak_mb']:6.0f} MB  "
                  f"(+{added:5.0f} MB over imports = {added / size:5.2f}x the file)  "
                  f"rows {r['rows']:,} skipped {r['skipped']}  [{path.parent.name}]")


if __name__ == "__main__":
    main()
