"""Benchmark: N synthetic measurements -> Parquet -> load + episodes + windows.

    python benchmarks/bench_analysis.py              # 10 million measurements
    python benchmarks/bench_analysis.py --n 1000000  # smaller
    python benchmarks/bench_analysis.py --n 200000 --dask

Prints seconds and peak RSS of each contender, each run in a fresh subprocess (so its peak RSS is its
own, and the data generation does not count):

* ``reachprobe``: ``analysis.load`` (Parquet, compacted layout) + ``analysis.episodes`` +
  ``unblocking_windows``/``blips``/``window_events``/``blocking_episodes`` (pandas, vectorised);
* ``duckdb``: the equivalent gaps-and-islands SQL (LAG, running SUM, GROUP BY, LAG/LEAD for bounds,
  majority baseline, corroboration self-join) over the same Parquet files, 2 threads;
* ``loop``: the straightforward per-row Python loop (``tests.synth.reference_episodes``: sort, then
  ``itertuples`` with a little state) over a subset of whole (vantage, target) series, scaled up
  linearly to N; and, for reference, the same loop written with ``iterrows``;
* ``dask`` (``--dask``): the reachprobe pipeline with ``engine="dask"`` on a LocalCluster bound to
  127.0.0.1 (2 worker processes, 1 thread each).

Goals (issue #5): under 30 s and under 4 GB for 10 M on 2 cores, >= 100x the loop, within 2x DuckDB.
The synthetic data (tests/synth.py) is 91 days at a 10-minute cadence, 6 targets per vantage, as many
vantages as N needs, the designed scenario of the tests plus random blips, 2% flaky/inconclusive noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS_PER_VANTAGE_DAY = 6 * 144
COLUMNS = ["measured_at", "vantage", "asn", "cc", "network", "platform", "target", "kind", "status", "method",
           "layer", "confidence", "confirmed"]
MAX_GAP = "1h"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def shape(n: int) -> tuple[int, int]:
    vantages = max(2, math.ceil(n / (ROWS_PER_VANTAGE_DAY * 91)))
    days = max(2, min(91, math.ceil(n / (vantages * ROWS_PER_VANTAGE_DAY))))
    return vantages, days


# ------------------------------------------------------------------------------------------ phases
def phase_generate(data: Path, n: int) -> dict:
    from analysis import compaction
    from tests import synth

    vantages, days = shape(n)
    t = time.perf_counter()
    df, _ = synth.timeline(days=days, n_vantages=vantages, with_ids=False, random_blips=3, with_truth=False)
    gen = time.perf_counter() - t
    t = time.perf_counter()
    compaction.write_by_month(df, data)
    (data / "bench.json").write_text(json.dumps({"n": n, "rows": len(df), "vantages": vantages, "days": days}))
    return {"rows": len(df), "vantages": vantages, "days": days, "generate_s": gen,
            "write_s": time.perf_counter() - t, "files": len(list(data.glob("v_*/*.parquet")))}


def phase_reachprobe(data: Path) -> dict:
    import analysis

    t0 = time.perf_counter()
    df = analysis.load(data, columns=COLUMNS)
    t1 = time.perf_counter()
    ep = analysis.episodes(df, max_gap=MAX_GAP)
    t2 = time.perf_counter()
    win = analysis.unblocking_windows(ep)
    bl = analysis.blips(ep)
    ev = analysis.window_events(ep)
    blk = analysis.blocking_episodes(ep)
    t3 = time.perf_counter()
    return {"rows": len(df), "load_s": t1 - t0, "episodes_s": t2 - t1, "windows_s": t3 - t2, "total_s": t3 - t0,
            "compute_s": t3 - t1, "episodes": len(ep), "windows": len(win), "blips": len(bl), "events": len(ev),
            "blocking": len(blk), "peak_rss_mb": peak_rss_mb()}


DUCKDB_EPISODES = """
CREATE TEMP TABLE ep AS
WITH ev AS (
    SELECT vantage, target, platform, cc, asn, measured_at AS t, method,
           CASE status WHEN 'ok' THEN 0 WHEN 'blocked' THEN 1 WHEN 'down' THEN 2 ELSE 3 END AS state
    FROM read_parquet('{glob}')
    WHERE status IN ('ok', 'blocked', 'down', 'outage')
), flagged AS (
    SELECT *, CASE WHEN lag(state) OVER w IS DISTINCT FROM state
                     OR t - lag(t) OVER w > INTERVAL '{gap_us} microseconds' THEN 1 ELSE 0 END AS new
    FROM ev WINDOW w AS (PARTITION BY vantage, target ORDER BY t)
), islands AS (
    SELECT *, sum(new) OVER (PARTITION BY vantage, target ORDER BY t ROWS UNBOUNDED PRECEDING) AS ep FROM flagged
), episodes AS (
    SELECT vantage, target, ep, any_value(platform) AS platform, any_value(cc) AS cc, any_value(asn) AS asn,
           any_value(state) AS state, min(t) AS start, max(t) AS "end", count(*) AS n, mode(method) AS method
    FROM islands GROUP BY vantage, target, ep
)
SELECT *, lag("end") OVER g AS start_after, lead(start) OVER g AS end_before,
       sum(CASE WHEN state = 1 THEN n ELSE 0 END) OVER (PARTITION BY vantage, target) AS n_blocked_total,
       sum(CASE WHEN state = 0 THEN n ELSE 0 END) OVER (PARTITION BY vantage, target) AS n_ok_total
FROM episodes WINDOW g AS (PARTITION BY vantage, target ORDER BY ep)
"""

DUCKDB_WINDOWS = """
WITH cand AS (
    SELECT *, greatest(coalesce(start_after, start - INTERVAL '{gap_us} microseconds'),
                       start - INTERVAL '{gap_us} microseconds') AS lo,
              least(coalesce(end_before, "end" + INTERVAL '{gap_us} microseconds'),
                    "end" + INTERVAL '{gap_us} microseconds') AS hi
    FROM ep WHERE state = 0 AND n_blocked_total > n_ok_total
), corr AS (
    SELECT c.vantage, c.target, c.start, count(*) AS k
    FROM cand c JOIN cand o ON o.platform = c.platform AND o.cc IS NOT DISTINCT FROM c.cc
                           AND o.start < c.hi AND o."end" > c.lo
    WHERE c.n = 1 GROUP BY ALL
)
SELECT cand.*, coalesce(corr.k, 1) >= 2 AS corroborated
FROM cand LEFT JOIN corr USING (vantage, target, start)
"""


def phase_duckdb(data: Path) -> dict:
    import duckdb

    import analysis.timelines as tl

    gap = tl.gap_us(MAX_GAP)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET preserve_insertion_order = false")
    glob = str(data / "v_*" / "*.parquet")
    t0 = time.perf_counter()
    con.execute(DUCKDB_EPISODES.format(glob=glob, gap_us=gap))
    n_ep = con.execute("SELECT count(*) FROM ep").fetchone()[0]
    t1 = time.perf_counter()
    cand = con.execute(DUCKDB_WINDOWS.format(gap_us=gap)).df()
    t2 = time.perf_counter()
    windows = int(((cand["n"] >= 2) | cand["corroborated"]).sum())
    return {"episodes_s": t1 - t0, "windows_s": t2 - t1, "total_s": t2 - t0, "episodes": int(n_ep),
            "windows": windows, "blips": int(len(cand) - windows), "peak_rss_mb": peak_rss_mb()}


def _subset(data: Path, rows: int):
    """Whole (vantage, target) series, vantage by vantage, until ``rows`` are reached."""
    import analysis

    vdirs = sorted(p for p in data.glob("v_*") if p.is_dir())
    files, got = [], 0
    for d in vdirs:
        files.extend(sorted(d.glob("*.parquet")))
        got = len(analysis.load(files, columns=COLUMNS))
        if got >= rows:
            break
    df = analysis.load(files, columns=COLUMNS)
    targets = sorted(df["target"].astype(str).unique())
    keep = []
    n = 0
    for v in sorted(df["vantage"].astype(str).unique()):
        for t in targets:
            keep.append((v, t))
            n += int(((df["vantage"] == v) & (df["target"] == t)).sum())
            if n >= rows:
                break
        if n >= rows:
            break
    key = df["vantage"].astype(str) + "\x00" + df["target"].astype(str)
    return df[key.isin([v + "\x00" + t for v, t in keep]).to_numpy()].reset_index(drop=True)


def iterrows_episodes(df, max_gap=MAX_GAP):
    """The same loop as tests.synth.reference_episodes, written with DataFrame.iterrows."""
    import pandas as pd

    gap = pd.Timedelta(max_gap)
    states = {"ok": "reachable", "blocked": "blocked", "down": "down", "outage": "outage"}
    out, cur, key_prev = [], None, None
    for _, row in df.sort_values(["vantage", "target", "measured_at"], kind="stable").iterrows():
        key = (row["vantage"], row["target"])
        state = states.get(row["status"])
        if key != key_prev:
            if cur:
                out.append(cur)
            cur, key_prev = None, key
        if state is None:
            continue
        t = row["measured_at"]
        if cur and cur["state"] == state and t - cur["end"] <= gap:
            cur["end"], cur["n"] = t, cur["n"] + 1
        else:
            if cur:
                cur["end_before"] = t
                out.append(cur)
            cur = {"key": key, "state": state, "start": t, "end": t, "n": 1,
                   "start_after": cur["end"] if cur else pd.NaT}
    if cur:
        out.append(cur)
    return out


def phase_loop(data: Path, rows: int, kind: str) -> dict:
    import analysis
    from tests import synth

    sub = _subset(data, rows)
    t0 = time.perf_counter()
    if kind == "itertuples":
        ep = synth.reference_episodes(sub, MAX_GAP)
        n_ep = len(ep)
        # the windows step of the loop approach: baseline per series and a scan of reachable episodes
        win = 0
        for _, g in ep.groupby(["vantage", "target"], observed=True, sort=False):
            nb = g.loc[g["state"] == "blocked", "n"].sum()
            nok = g.loc[g["state"] == "reachable", "n"].sum()
            if nb > nok:
                for r in g.itertuples():
                    win += r.state == "reachable" and r.n >= 2
    else:
        n_ep = len(iterrows_episodes(sub))
    t1 = time.perf_counter()
    check = len(analysis.episodes(sub)) == n_ep
    return {"rows": len(sub), "loop_s": t1 - t0, "per_row_us": (t1 - t0) / max(len(sub), 1) * 1e6,
            "same_episodes_as_vectorised": check, "peak_rss_mb": peak_rss_mb()}


def phase_dask(data: Path) -> dict:
    from dask.distributed import Client, LocalCluster

    import analysis

    with LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        t0 = time.perf_counter()
        df = analysis.load(data, engine="dask", columns=COLUMNS)
        ep = analysis.episodes(df, max_gap=MAX_GAP)
        t1 = time.perf_counter()
        win = analysis.unblocking_windows(ep)
        t2 = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"load_episodes_s": t1 - t0, "windows_s": t2 - t1, "total_s": t2 - t0, "episodes": len(ep),
            "windows": len(win), "peak_rss_mb": peak_rss_mb(), "peak_rss_worker_mb": children}


# ------------------------------------------------------------------------------------------ driver
def run_phase(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"phase {args[0]} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _runs(runs: list[dict]) -> str:
    return ", ".join("%.2f" % r["total_s"] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="measurements (default 10 million)")
    ap.add_argument("--data", type=Path, default=None, help="Parquet directory to create/reuse")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each timed contender (best is kept)")
    ap.add_argument("--loop-rows", type=int, default=300_000, help="rows of the per-row loop subset")
    ap.add_argument("--iterrows-rows", type=int, default=30_000, help="rows of the iterrows loop subset")
    ap.add_argument("--dask", action="store_true", help="also time engine='dask' on a local cluster")
    ap.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.phase:
        name, *rest = a.phase
        data = Path(rest[0])
        res = {"generate": lambda: phase_generate(data, int(rest[1])),
               "reachprobe": lambda: phase_reachprobe(data),
               "duckdb": lambda: phase_duckdb(data),
               "loop": lambda: phase_loop(data, int(rest[1]), rest[2]),
               "dask": lambda: phase_dask(data)}[name]()
        print(json.dumps(res))
        return

    data = a.data or Path(tempfile.gettempdir()) / f"reachprobe-bench-{a.n}"
    meta = data / "bench.json"
    if not (meta.exists() and json.loads(meta.read_text()).get("n") == a.n):
        print(f"generating {a.n:,} measurements into {data} ...", flush=True)
        g = run_phase("generate", str(data), str(a.n))
        print(f"  {g['rows']:,} rows, {g['vantages']} vantages x 6 targets x {g['days']} days, {g['files']} Parquet "
              f"files; generated in {g['generate_s']:.1f} s, written in {g['write_s']:.1f} s")
    info = json.loads(meta.read_text())
    n = info["rows"]
    print(f"data: {n:,} measurements, {os.cpu_count()} CPU(s)\n")

    runs = [run_phase("reachprobe", str(data)) for _ in range(a.repeat)]
    rp = min(runs, key=lambda r: r["total_s"])
    ddb_runs = [run_phase("duckdb", str(data)) for _ in range(a.repeat)]
    ddb = min(ddb_runs, key=lambda r: r["total_s"])
    loop = run_phase("loop", str(data), str(min(a.loop_rows, n)), "itertuples")
    loop_ir = run_phase("loop", str(data), str(min(a.iterrows_rows, n)), "iterrows")
    loop_scaled = loop["per_row_us"] * n / 1e6
    ir_scaled = loop_ir["per_row_us"] * n / 1e6

    print(f"reachprobe (pandas)  load {rp['load_s']:6.2f} s  episodes {rp['episodes_s']:6.2f} s  windows+blips+events"
          f"+blocking {rp['windows_s']:5.2f} s  total {rp['total_s']:6.2f} s  peak RSS {rp['peak_rss_mb']:7.0f} MB"
          f"   (runs: {_runs(runs)} s)")
    print(f"                     {rp['episodes']:,} episodes, {rp['windows']:,} windows, {rp['blips']:,} blips, "
          f"{rp['events']:,} events, {rp['blocking']:,} blocking episodes")
    print(f"duckdb (2 threads)   episodes {ddb['episodes_s']:6.2f} s  windows {ddb['windows_s']:5.2f} s  total "
          f"{ddb['total_s']:6.2f} s  peak RSS {ddb['peak_rss_mb']:7.0f} MB   (runs: {_runs(ddb_runs)} s)")
    print(f"                     {ddb['episodes']:,} episodes, {ddb['windows']:,} windows, {ddb['blips']:,} blips "
          f"-> {'same counts' if (ddb['episodes'], ddb['windows'], ddb['blips']) == (rp['episodes'], rp['windows'], rp['blips']) else 'COUNTS DIFFER'}")
    print(f"python loop          itertuples {loop['per_row_us']:.2f} us/row on {loop['rows']:,} rows -> "
          f"{loop_scaled:7.1f} s for {n:,} (episodes agree: {loop['same_episodes_as_vectorised']})")
    print(f"                     iterrows   {loop_ir['per_row_us']:.2f} us/row on {loop_ir['rows']:,} rows -> "
          f"{ir_scaled:7.1f} s for {n:,}")
    if a.dask:
        dk = run_phase("dask", str(data))
        print(f"dask (2 procs x 1)   load+episodes {dk['load_episodes_s']:6.2f} s  windows {dk['windows_s']:5.2f} s  "
              f"total {dk['total_s']:6.2f} s  client RSS {dk['peak_rss_mb']:.0f} MB, largest worker "
              f"{dk['peak_rss_worker_mb']:.0f} MB  ({dk['episodes']:,} episodes, {dk['windows']:,} windows)")
    print()
    print(f"speed-up vs the itertuples loop (compute only): {loop_scaled / rp['compute_s']:7.1f}x   "
          f"(incl. load on our side: {loop_scaled / rp['total_s']:.1f}x)")
    print(f"speed-up vs the iterrows loop (compute only):   {ir_scaled / rp['compute_s']:7.1f}x")
    print(f"reachprobe / duckdb (end to end):              {rp['total_s'] / ddb['total_s']:7.2f}")
    ok_time, ok_mem = rp["total_s"] < 30, rp["peak_rss_mb"] < 4096
    print(f"goals: <30 s {'met' if ok_time else 'MISSED'}, <4 GB {'met' if ok_mem else 'MISSED'}, "
          f">=100x loop {'met' if loop_scaled / rp['compute_s'] >= 100 else 'MISSED'} (itertuples) / "
          f"{'met' if ir_scaled / rp['compute_s'] >= 100 else 'MISSED'} (iterrows), within 2x DuckDB "
          f"{'met' if rp['total_s'] <= 2 * ddb['total_s'] else 'MISSED'}")


if __name__ == "__main__":
    main()
