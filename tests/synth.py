"""Synthetic measurement timelines with ground truth, for the analysis tests and the benchmark.

``timeline()`` builds, fully vectorised, months of measurements at a 10-minute cadence from several
vantages on several Iranian ASNs, for blocked platforms (facebook x2 targets, twitter, telegram), a
normally reachable one (instagram) and a canary, then stamps a designed scenario on it:

=====  ============================================================================================
E1     day 5 21:00 -> day 6 01:30: facebook (both targets) and twitter open on every vantage (nationwide)
E2     day 9 10:00 -> 13:00: facebook opens on MCI (AS197207) only; MCI has an outage 09:00 -> 10:00 before
E3     day 12 14:00 -> 14:08: www.facebook.com opens on the TCI vantages: one ok each, corroborated
E4/E5  single uncorroborated oks (blips): facebook on Irancell day 15, twitter on ParsOnline day 18
E6     day 7 02:00 -> 05:00: outage on MCI (every target ``outage``): no window
E7     day 20 -> day 21: no data at all from the second TCI vantage (a gap): no window
E8     day 22 18:00 -> 20:00: facebook opens on ParsOnline, whose data stops 19:00 until day 23 06:00
E9     day 24 12:00 -> 13:00: twitter ``down`` everywhere: neither blocking nor unblocking
E10    day 3 08:00 -> day 4 20:00: instagram (normally reachable) blocked everywhere (protests)
noise  ``noise`` of the measurements turned ``flaky``/``inconclusive`` (never the designed singles or
       their neighbours)
=====  ============================================================================================

The ground truth's start/end/bounds are computed from the generated rows by a plain reference (first
and last ``ok`` inside the designed interval, last/first evidence outside), independently of the
vectorised analysis code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import frame as fr

CADENCE_S = 600
VANTAGES: list[tuple[str, int, str, str]] = [
    ("tci-teh-1", 58224, "IR", "TCI"),
    ("tci-isf-2", 58224, "IR", "TCI"),
    ("mci-teh-1", 197207, "IR", "MCI"),
    ("mtn-teh-1", 44244, "IR", "Irancell"),
    ("pars-teh-1", 16322, "IR", "ParsOnline"),
]
# platform, name, kind, baseline status, scope
TARGETS: list[tuple[str, str, str, str, str | None]] = [
    ("facebook", "www.facebook.com", "web", "blocked", "international"),
    ("facebook", "graph.facebook.com", "endpoint", "blocked", "international"),
    ("twitter", "twitter.com", "web", "blocked", "international"),
    ("telegram", "149.154.167.51:443", "endpoint", "blocked", "international"),
    ("instagram", "www.instagram.com", "web", "ok", "international"),
    ("canary", "www.aparat.com", "canary", "ok", "domestic"),
]
# blocking method per ASN: (layer, method, confirmed, confidence)
METHODS: dict[int, tuple[str, str, bool, float]] = {
    58224: ("dns", "blockpage_ip", True, 1.0),
    197207: ("tls", "sni_rst", True, 0.95),
    44244: ("http", "blockpage", True, 1.0),
    16322: ("tcp", "ip_blackhole", False, 0.7),
}
TELEGRAM_METHOD = ("tcp", "ip_blackhole", False, 0.7)
EVIDENCE = ("ok", "blocked", "down", "outage")


@dataclass
class Truth:
    windows: pd.DataFrame  # vantage, target, platform, asn, start_after, start, end, end_before, n_ok, corroborated, true_open, true_close, event
    blips: pd.DataFrame  # vantage, target, platform, at
    blocking: pd.DataFrame  # vantage, target, start_after, start, end, end_before, n_blocked, method
    events: pd.DataFrame  # event label, platforms, asns_open, scope
    outages: list[tuple[str, pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    gaps: list[tuple[str, pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    down: list[tuple[str, pd.Timestamp, pd.Timestamp]] = field(default_factory=list)


def _vantages(n_vantages: int | None) -> list[tuple[str, int, str, str]]:
    if n_vantages is None or n_vantages <= len(VANTAGES):
        return VANTAGES[: n_vantages or len(VANTAGES)]
    out = list(VANTAGES)
    i = 0
    while len(out) < n_vantages:
        base = VANTAGES[i % len(VANTAGES)]
        out.append((f"{base[0].rsplit('-', 1)[0]}-x{len(out)}", base[1], base[2], base[3]))
        i += 1
    return out


def timeline(start: str = "2026-09-01", days: int = 91, *, n_vantages: int | None = None, noise: float = 0.02,
             seed: int = 7, with_ids: bool = True, random_blips: int = 0,
             with_truth: bool = True) -> tuple[pd.DataFrame, Truth]:
    """(frame of measurements, ground truth). ``days`` >= 25 for the whole scenario; ``n_vantages`` adds
    vantages cycling over the ASNs (benchmarks); ``random_blips`` adds that many random single oks per
    blocked series (benchmarks only: not in the truth, and they may corroborate each other)."""
    rng = np.random.default_rng(seed)
    vans = _vantages(n_vantages)
    V, T, K = len(vans), len(TARGETS), days * 86400 // CADENCE_S
    t0 = pd.Timestamp(start, tz="UTC")
    t0_us = t0.value // 1000
    N = V * T * K
    vi = np.repeat(np.arange(V, dtype=np.int32), T * K)
    ti = np.tile(np.repeat(np.arange(T, dtype=np.int32), K), V)
    ki = np.tile(np.arange(K, dtype=np.int64), V * T)
    phase_us = (np.arange(V, dtype=np.int64) * 53 % CADENCE_S) * 1_000_000
    toff_us = np.arange(T, dtype=np.int64) * 2_000_000
    jitter = rng.integers(0, 1000, N, dtype=np.int64) * 1000
    t_us = t0_us + ki * CADENCE_S * 1_000_000 + phase_us[vi] + toff_us[ti] + jitter

    OK, BL, DN, OU, FL, IN = range(6)
    base = np.array([OK if b == "ok" else BL for *_, b, _s in TARGETS], dtype=np.int8)
    status = base[ti].copy()
    asn_of_v = np.array([v[1] for v in vans], dtype=np.int64)
    plat = np.array([t[0] for t in TARGETS], dtype=object)
    names = np.array([t[1] for t in TARGETS], dtype=object)
    keep = np.ones(N, dtype=bool)
    protect = np.zeros(N, dtype=bool)

    def at(day: float, hhmm: str = "00:00") -> int:
        h, m = map(int, hhmm.split(":"))
        return t0_us + int(day * 86400 + h * 3600 + m * 60) * 1_000_000

    def rows(vmask: np.ndarray, tmask: np.ndarray, a: int, b: int) -> np.ndarray:
        return vmask[vi] & tmask[ti] & (t_us >= a) & (t_us < b)

    vall = np.ones(V, dtype=bool)
    tall = np.ones(T, dtype=bool)

    def vsel(pred) -> np.ndarray:
        return np.array([bool(pred(v)) for v in vans])

    def tsel(pred) -> np.ndarray:
        return np.array([bool(pred(t)) for t in TARGETS])

    fb = tsel(lambda t: t[0] == "facebook")
    fb_www = tsel(lambda t: t[1] == "www.facebook.com")
    tw = tsel(lambda t: t[0] == "twitter")
    ig = tsel(lambda t: t[0] == "instagram")
    first_of = {}
    for i, v in enumerate(vans):
        first_of.setdefault(v[1], i)
    tci = vsel(lambda v: v[1] == 58224)
    mci = vsel(lambda v: v[1] == 197207)
    tci2 = np.zeros(V, dtype=bool)
    tci_idx = np.flatnonzero(tci)
    if len(tci_idx) > 1:
        tci2[tci_idx[1]] = True
    one = {asn: (np.arange(V) == first_of.get(asn, -1)) for asn in METHODS}

    windows: list[dict[str, Any]] = []  # designed: (label, vmask, tmask, a, b)
    outages, gaps, downs = [], [], []
    span_end = at(days)

    def inside(*times: int) -> bool:
        return all(x <= span_end for x in times)

    # E10 instagram blocked (protests)
    e10 = (at(3, "08:00"), at(4, "20:00"))
    if inside(*e10):
        status[rows(vall, ig, *e10)] = BL
    # E1 nationwide
    e1 = (at(5, "21:00"), at(6, "01:30"))
    if inside(*e1):
        status[rows(vall, fb | tw, *e1)] = OK
        windows.append(dict(event="E1", vmask=vall, tmask=fb | tw, a=e1[0], b=e1[1]))
    # E6 outage on MCI
    e6 = (at(7, "02:00"), at(7, "05:00"))
    if inside(*e6):
        status[rows(mci, tall, *e6)] = OU
        outages.append(("mci", *e6))
    # E2 MCI only, after an outage
    e2o, e2 = (at(9, "09:00"), at(9, "10:00")), (at(9, "10:00"), at(9, "13:00"))
    if inside(*e2):
        status[rows(mci, tall, *e2o)] = OU
        outages.append(("mci", *e2o))
        status[rows(mci, fb, *e2)] = OK
        windows.append(dict(event="E2", vmask=mci, tmask=fb, a=e2[0], b=e2[1]))
    # E3 corroborated singles on TCI
    e3 = (at(12, "14:00"), at(12, "14:08"))
    if inside(*e3):
        r = rows(tci, fb_www, *e3)
        status[r] = OK
        protect[r] = True
        windows.append(dict(event="E3", vmask=tci, tmask=fb_www, a=e3[0], b=e3[1]))
    # E4/E5 blips
    blips_designed = []
    for day, hhmm, asn, tm in ((15, "03:00", 44244, fb_www), (18, "07:00", 16322, tw)):
        a = at(day, hhmm)
        if not inside(a + 600_000_000) or not one[asn].any():
            continue
        r = np.flatnonzero(rows(one[asn], tm, a, a + CADENCE_S * 1_000_000))
        status[r] = OK
        blips_designed.append(r)
    # E7 gap on the second TCI vantage
    e7 = (at(20), at(21))
    if inside(*e7) and tci2.any():
        keep[rows(tci2, tall, *e7)] = False
        gaps.append(("tci2", *e7))
    # E8 ParsOnline window, then a data gap
    e8, e8g = (at(22, "18:00"), at(22, "20:00")), (at(22, "19:00"), at(23, "06:00"))
    if inside(*e8g) and one[16322].any():
        status[rows(one[16322], fb_www, *e8)] = OK
        keep[rows(one[16322], tall, *e8g)] = False
        gaps.append(("pars", *e8g))
        windows.append(dict(event="E8", vmask=one[16322], tmask=fb_www, a=e8[0], b=e8[1]))
    # E9 twitter down
    e9 = (at(24, "12:00"), at(24, "13:00"))
    if inside(*e9):
        status[rows(vall, tw, *e9)] = DN
        downs.append(("twitter", *e9))

    # random blips (benchmarks)
    if random_blips:
        blocked_series = base[ti] == BL
        cand = np.flatnonzero(blocked_series & (status == BL))
        pick = rng.choice(cand, size=min(len(cand), random_blips * V * int((base == BL).sum())), replace=False)
        status[pick] = OK

    # protect designed singles and their neighbours from noise
    for r in blips_designed:
        protect[r] = True
    idx = np.flatnonzero(protect)  # neighbours in the flat layout are the series' previous/next measurement
    protect[np.clip(idx - 1, 0, N - 1)] = True
    protect[np.clip(idx + 1, 0, N - 1)] = True
    if noise:
        flip = (rng.random(N) < noise) & ~protect & keep
        status[flip] = np.where(rng.random(int(flip.sum())) < 0.7, FL, IN).astype(np.int8)

    # columns (built from integer codes: fast at benchmark sizes)
    v_asn = asn_of_v[vi]
    layers = sorted({m[0] for m in METHODS.values()} | {TELEGRAM_METHOD[0]})
    methods = sorted({m[1] for m in METHODS.values()} | {TELEGRAM_METHOD[1]})
    lcode = np.full(N, -1, dtype=np.int8)
    mcode = np.full(N, -1, dtype=np.int8)
    confirmed = np.zeros(N, dtype=bool)
    conf = np.full(N, 0.9)
    is_bl = status == BL
    is_tg = (plat == "telegram")[ti]
    for asn, (ly, me, cf, cn) in METHODS.items():
        m = is_bl & (v_asn == asn) & ~is_tg
        lcode[m], mcode[m], confirmed[m], conf[m] = layers.index(ly), methods.index(me), cf, cn
    m = is_bl & is_tg
    ly, me, cf, cn = TELEGRAM_METHOD
    lcode[m], mcode[m], confirmed[m], conf[m] = layers.index(ly), methods.index(me), cf, cn
    rules = ["ok.reached", "down.controls_agree", "outage.canaries_failed", "flaky.retry_succeeded",
             "inconclusive.unexplained"] + [f"blocked.{x}" for x in methods]
    rcode = np.array([0, -1, 1, 2, 3, 4], dtype=np.int16)[status]
    rcode = np.where(is_bl, 5 + mcode.astype(np.int16), rcode)
    conf = np.where(status == OU, 0.8, np.where(status >= FL, 0.0, conf))

    sel = np.flatnonzero(keep)
    cat = pd.Categorical.from_codes

    def idx(values: list[str]) -> pd.Index:
        return pd.Index(values, dtype="str")

    vnames = [v[0] for v in vans]
    nets = sorted({v[3] for v in vans})
    vnet = np.array([nets.index(v[3]) for v in vans], dtype=np.int16)
    kinds = sorted({t[2] for t in TARGETS})
    scopes = sorted({t[4] for t in TARGETS if t[4]})
    plats = sorted(set(plat))
    tplat = np.array([plats.index(p) for p in plat], dtype=np.int16)
    tkind = np.array([kinds.index(t[2]) for t in TARGETS], dtype=np.int16)
    tscope = np.array([scopes.index(t[4]) if t[4] else -1 for t in TARGETS], dtype=np.int16)
    vs, ts_ = vi[sel], ti[sel]
    df = pd.DataFrame({
        "measured_at": pd.Series(t_us[sel].view("datetime64[us]")).dt.tz_localize("UTC"),
        "vantage": cat(vs, categories=idx(vnames)),
        "asn": pd.array(v_asn[sel], dtype="Int64"),
        "cc": cat(np.zeros(len(sel), dtype=np.int8), categories=idx(["IR"])),
        "network": cat(vnet[vs], categories=idx(nets)),
        "platform": cat(tplat[ts_], categories=idx(plats)),
        "target": cat(ts_, categories=idx(names.tolist())),
        "kind": cat(tkind[ts_], categories=idx(kinds)),
        "scope": cat(tscope[ts_], categories=idx(scopes)),
        "status": cat(status[sel].astype(np.int8), dtype=fr.STATUS_DTYPE),
        "layer": cat(lcode[sel], categories=idx(layers)),
        "method": cat(mcode[sel], categories=idx(methods)),
        "rule": cat(rcode[sel], categories=idx(rules)),
        "confidence": conf[sel],
        "confirmed": confirmed[sel],
    })
    if with_ids:
        df["run_id"] = pd.Series([f"run-{v}-{k}" for v, k in zip(vi[sel], ki[sel])], dtype="str")
        df["id"] = pd.Series([f"{seed:04x}{i:028x}" for i in sel], dtype="str")
    df["source"] = "reachprobe"
    df = fr.normalize(df)
    df = df.sort_values("measured_at", kind="stable").reset_index(drop=True)  # arrival order, like the files
    if not with_truth:
        return df, Truth(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame())

    truth = _truth(df, windows, blips_designed, t_us, vi, ti, vans, e10 if inside(*e10) else None)
    truth.outages, truth.gaps, truth.down = [_ts3(x) for x in outages], [_ts3(x) for x in gaps], [_ts3(x) for x in downs]
    return df, truth


def _ts3(x):
    return (x[0], pd.Timestamp(x[1], unit="us", tz="UTC"), pd.Timestamp(x[2], unit="us", tz="UTC"))


def _series(df: pd.DataFrame) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    out = {}
    d = df.sort_values(["vantage", "target", "measured_at"])
    for (v, t), g in d.groupby(["vantage", "target"], observed=True):
        out[(v, t)] = (g["measured_at"].array.asi8, g["status"].astype(str).to_numpy())
    return out


def _reference(ts: np.ndarray, st: np.ndarray, a: int, b: int, want: str) -> dict[str, Any] | None:
    """Plain reference: first/last `want` in [a, b), last/first evidence outside them."""
    idx = [i for i in range(len(ts)) if a <= ts[i] < b and st[i] == want]
    if not idx:
        return None
    i0, i1 = idx[0], idx[-1]
    before = [i for i in range(i0) if st[i] in EVIDENCE]
    after = [i for i in range(i1 + 1, len(ts)) if st[i] in EVIDENCE]
    n = sum(1 for i in range(i0, i1 + 1) if st[i] == want)
    ts_ = lambda i: pd.Timestamp(int(ts[i]), unit="us", tz="UTC")  # noqa: E731
    return {"start_after": ts_(before[-1]) if before else pd.NaT, "start": ts_(i0), "end": ts_(i1),
            "end_before": ts_(after[0]) if after else pd.NaT, "n": n}


def _truth(df, windows, blips_designed, t_us, vi, ti, vans, e10) -> Truth:
    series = _series(df)
    wrows = []
    for w in windows:
        for v in np.flatnonzero(w["vmask"]):
            for t in np.flatnonzero(w["tmask"]):
                key = (vans[v][0], TARGETS[t][1])
                ts, st = series[key]
                ref = _reference(ts, st, w["a"], w["b"], "ok")
                if ref is None:
                    continue
                wrows.append({"vantage": key[0], "target": key[1], "platform": TARGETS[t][0], "asn": vans[v][1],
                              **ref, "n_ok": ref["n"], "event": w["event"],
                              "true_open": pd.Timestamp(w["a"], unit="us", tz="UTC"),
                              "true_close": pd.Timestamp(w["b"], unit="us", tz="UTC")})
    windows_df = pd.DataFrame(wrows).drop(columns=["n"]) if wrows else pd.DataFrame()
    if len(windows_df):
        windows_df["corroborated_single"] = windows_df["n_ok"] == 1
        windows_df = windows_df.sort_values(["vantage", "target", "start"]).reset_index(drop=True)
    brows = []
    for r in blips_designed:
        for i in r:
            brows.append({"vantage": vans[vi[i]][0], "target": TARGETS[ti[i]][1], "platform": TARGETS[ti[i]][0],
                          "at": pd.Timestamp(int(t_us[i]), unit="us", tz="UTC")})
    blocking = []
    if e10 is not None:
        for v in range(len(vans)):
            for t in range(len(TARGETS)):
                if TARGETS[t][0] != "instagram":
                    continue
                key = (vans[v][0], TARGETS[t][1])
                ts, st = series[key]
                ref = _reference(ts, st, e10[0], e10[1], "blocked")
                if ref:
                    blocking.append({"vantage": key[0], "target": key[1], **ref, "n_blocked": ref["n"],
                                     "method": METHODS[vans[v][1]][1]})
    blocking_df = pd.DataFrame(blocking).drop(columns=["n"]) if blocking else pd.DataFrame()
    ev = []
    labels = {w["event"] for w in windows}
    all_asns = sorted({v[1] for v in vans})
    for w in windows:
        if w["event"] not in labels:
            continue
        labels.discard(w["event"])
        asns = sorted({vans[v][1] for v in np.flatnonzero(w["vmask"])})
        plats = sorted({TARGETS[t][0] for t in np.flatnonzero(w["tmask"])})
        scope = "nationwide" if asns == all_asns and len(asns) >= 2 else "isp-specific"
        ev.append({"event": w["event"], "platforms": ", ".join(plats), "asns_open": ", ".join(f"AS{a}" for a in asns),
                   "scope": scope, "true_open": pd.Timestamp(w["a"], unit="us", tz="UTC")})
    return Truth(windows=windows_df, blips=pd.DataFrame(brows), blocking=blocking_df, events=pd.DataFrame(ev))


# ------------------------------------------------------------------------------------------- JSONL
def to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Frame rows -> results lines (reachprobe/1, empty steps)."""
    d = df.copy()
    ts = d["measured_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
    out = []
    cols = {c: d[c].astype(object).where(d[c].notna(), None).tolist() for c in d.columns}
    for i in range(len(d)):
        g = lambda c, i=i: cols[c][i]  # noqa: E731
        target = {"platform": g("platform"), "name": g("target"), "kind": g("kind")}
        if g("scope") is not None:
            target["scope"] = g("scope")
        out.append({
            "schema": "reachprobe/1", "id": g("id"), "run_id": g("run_id"), "measured_at": ts.iat[i],
            "vantage": {"id": g("vantage"), "asn": None if g("asn") is None else int(g("asn")), "cc": g("cc"),
                        "network": g("network")},
            "software": {"name": "reachprobe", "version": "0.1.0"},
            "target": target,
            "steps": {"dns": [], "tcp": [], "tls": [], "http": []},
            "verdict": {"status": g("status"), "layer": g("layer"), "method": g("method"), "rule": g("rule"),
                        "confidence": g("confidence"), "confirmed": bool(g("confirmed"))},
        })
    return out


def write_jsonl(df: pd.DataFrame, directory: str | Path, *, torn_tail: bool = False) -> list[Path]:
    """Write results lines, one file per UTC day; ``torn_tail`` appends half a line to the last file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recs = to_records(df.sort_values("measured_at", kind="stable"))
    files: dict[str, list[str]] = {}
    for r in recs:
        files.setdefault(r["measured_at"][:10], []).append(json.dumps(r, separators=(",", ":")))
    paths = []
    for day, lines in sorted(files.items()):
        p = directory / f"{day}.jsonl"
        p.write_text("\n".join(lines) + "\n")
        paths.append(p)
    if torn_tail and paths:
        with open(paths[-1], "a") as fh:
            fh.write(json.dumps(recs[-1])[:57])
    return paths


# ------------------------------------------------------------------------------ reference (per row)
_STATE = {"ok": "reachable", "blocked": "blocked", "down": "down", "outage": "outage"}


def reference_episodes(df: pd.DataFrame, max_gap: Any = "1h", by: tuple[str, ...] = ("vantage", "target")) -> pd.DataFrame:
    """The straightforward per-row Python loop: the oracle for the vectorised code in property tests,
    and the baseline the benchmark compares against. Same columns as the core of analysis.episodes."""
    gap = pd.Timedelta(max_gap)
    d = df.sort_values([*by, "measured_at"], kind="stable")
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    pending = 0
    prev_key = None
    for row in d.itertuples(index=False):
        key = tuple(getattr(row, c) for c in by)
        if any(k is None or (isinstance(k, float) and k != k) or k is pd.NA for k in key):
            continue
        if key != prev_key:
            if cur is not None:
                out.append(cur)
            cur, pending, prev_key = None, 0, key
        state = _STATE.get(row.status)
        if state is None:
            if cur is not None:
                pending += 1
            continue
        t = row.measured_at
        if cur is not None and cur["state"] == state and t - cur["end"] <= gap:
            cur["end"] = t
            cur["n"] += 1
            cur["n_neutral"] += pending
            if isinstance(row.method, str):
                cur["methods"][row.method] = cur["methods"].get(row.method, 0) + 1
        else:
            start_after = pd.NaT
            if cur is not None:
                cur["end_before"] = t
                start_after = cur["end"]
                out.append(cur)
            cur = {**dict(zip(by, key)), "state": state, "start_after": start_after, "start": t, "end": t,
                   "end_before": pd.NaT, "n": 1, "n_neutral": 0,
                   "methods": {row.method: 1} if isinstance(row.method, str) else {}}
        pending = 0
    if cur is not None:
        out.append(cur)
    for e in out:
        m = e.pop("methods")
        e["method"] = min(m, key=lambda k: (-m[k], k)) if m else None
    cols = [*by, "state", "start_after", "start", "end", "end_before", "n", "n_neutral", "method"]
    return pd.DataFrame(out, columns=cols)


# -------------------------------------------------------------------------------------------- OONI
OONI_DOCS = [  # raw OONI measurements, as OONI publishes them (trimmed to the keys read_ooni reads)
    {"measurement_start_time": "2022-08-15 19:01:30", "probe_asn": "AS197207", "probe_cc": "IR",
     "test_name": "web_connectivity", "input": "https://www.facebook.com/", "report_id": "r1",
     "measurement_uid": "u1",
     "test_keys": {"queries": [{"hostname": "www.facebook.com", "query_type": "A", "failure": None,
                                "resolver_address": "", "answers": [{"answer_type": "A", "ipv4": "10.10.34.36"}]}],
                   "tcp_connect": [], "requests": [], "blocking": "dns", "accessible": False}},
    {"measurement_start_time": "2022-08-15 19:12:00", "probe_asn": "AS58224", "probe_cc": "IR",
     "test_name": "telegram", "input": None, "measurement_uid": "u3",
     "test_keys": {"telegram_http_blocking": True, "telegram_tcp_blocking": True}},
]


def write_ooni(path: str | Path) -> Path:
    """Write :data:`OONI_DOCS` as an OONI JSONL file (for analysis.ooni.read_ooni)."""
    path = Path(path)
    path.write_text("\n".join(json.dumps(d) for d in OONI_DOCS) + "\n")
    return path
