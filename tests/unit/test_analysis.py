"""Episodes, unblocking windows, blips, blocking episodes and window events against ground truth."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis import frame as fr
from tests import synth


@functools.lru_cache(maxsize=None)
def _scenario(days: int = 91):
    return synth.timeline(days=days)


@functools.lru_cache(maxsize=None)
def _analysis(days: int = 91):
    df, _ = _scenario(days)
    return analysis.analyse(df)


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def frame(rows, **defaults) -> pd.DataFrame:
    """Hand-made measurements: rows of (minute offset, status[, vantage, target, platform])."""
    base = ts("2026-10-01")
    recs = []
    for r in rows:
        minute, status, *rest = r
        vantage = rest[0] if len(rest) > 0 else defaults.get("vantage", "v1")
        target = rest[1] if len(rest) > 1 else defaults.get("target", "www.facebook.com")
        platform = rest[2] if len(rest) > 2 else defaults.get("platform", "facebook")
        recs.append({
            "measured_at": base + pd.Timedelta(minutes=minute), "vantage": vantage,
            "asn": defaults.get("asns", {}).get(vantage, 58224), "cc": "IR", "network": "TCI",
            "platform": platform, "target": target, "kind": "web", "status": status,
            "layer": "dns" if status == "blocked" else None, "method": "blockpage_ip" if status == "blocked" else None,
            "confidence": 1.0, "confirmed": status == "blocked", "id": f"m{len(recs)}",
        })
    return fr.normalize(pd.DataFrame(recs))


def blocked_background(vantages=("v1",), targets=(("www.facebook.com", "facebook"),), minutes=range(0, 600, 10)):
    return [(m, "blocked", v, t, p) for v in vantages for t, p in targets for m in minutes]


def with_overrides(rows, overrides):
    """Replace the status of (minute, vantage, target) rows; None removes the row."""
    out = []
    for r in rows:
        key = (r[0], r[2], r[3])
        if key in overrides:
            if overrides[key] is None:
                continue
            r = (r[0], overrides[key], *r[2:])
        out.append(r)
    return out


# ------------------------------------------------------------------------------------ ground truth
def test_windows_recovered_exactly_with_bounds():
    df, truth = _scenario()
    win = _analysis().windows
    got = win.set_index(["vantage", "target", "start"]).sort_index()
    exp = truth.windows.set_index(["vantage", "target", "start"]).sort_index()
    assert list(got.index) == list(exp.index), "window set differs from the ground truth"
    for col in ("start_after", "end", "end_before", "n_ok"):
        assert got[col].astype(object).tolist() == exp[col].astype(object).tolist(), col
    # the designed opening/closing lie inside the bounds
    assert (exp["start_after"] < exp["true_open"]).all() and (exp["true_open"] <= exp.index.get_level_values("start")).all()
    assert ((exp["end"] < exp["true_close"]) & (exp["true_close"] <= exp["end_before"])).all()
    # corroborated singles are windows, flagged corroborated
    singles = got[got["n_ok"] == 1]
    assert len(singles) == int(exp["corroborated_single"].sum()) == 2
    assert singles["corroborated"].all()


def test_window_after_outage_and_before_gap_has_wide_bounds():
    _, truth = _scenario()
    win = _analysis().windows
    e8 = truth.windows[truth.windows["event"] == "E8"].iloc[0]
    row = win[(win["vantage"] == e8["vantage"]) & (win["start"] == e8["start"])].iloc[0]
    assert row["gap_after"] and not row["gap_before"]
    assert row["end_before"] - row["end"] > pd.Timedelta(hours=10)  # the gap widens the bound
    e2 = truth.windows[truth.windows["event"] == "E2"].iloc[0]
    ep = _analysis().episodes
    prev = ep[(ep["vantage"] == e2["vantage"]) & (ep["target"] == e2["target"]) & (ep["end"] == e2["start_after"])]
    assert prev["state"].tolist() == ["outage"]  # the bound is the outage's last evidence, not invented blocking


def test_blips_are_listed_and_never_windows():
    _, truth = _scenario()
    a = _analysis()
    got = sorted(zip(a.blips["vantage"].astype(str), a.blips["target"].astype(str), a.blips["start"]))
    exp = sorted(zip(truth.blips["vantage"], truth.blips["target"], truth.blips["at"]))
    assert got == exp
    keys = set(zip(a.windows["vantage"].astype(str), a.windows["start"]))
    assert not any((v, t) in keys for v, _, t in exp)
    assert (a.blips["n_ok"] == 1).all() and not a.blips["corroborated"].any()


def test_no_window_from_outage_gap_or_down():
    _, truth = _scenario()
    win = _analysis().windows
    for _, a, b in truth.outages + truth.gaps + truth.down:
        inside = win[(win["start"] < b) & (win["end"] > a)]
        # only designed windows may touch these periods (E2 follows an outage, E8 precedes a gap)
        assert set(zip(inside["vantage"], inside["start"])) <= set(zip(truth.windows["vantage"], truth.windows["start"]))
    ep = _analysis().episodes
    assert (ep["state"] == "outage").any() and (ep["state"] == "down").any()
    # neither outage nor down episodes are ever windows or blocking episodes
    assert not set(zip(ep[ep["state"].isin(["outage", "down"])]["start"], ep[ep["state"].isin(["outage", "down"])]["vantage"])) \
        & set(zip(win["start"], win["vantage"]))


def test_blocking_episodes_of_normally_reachable_target():
    _, truth = _scenario()
    blk = _analysis().blocking
    got = blk.sort_values(["vantage"]).reset_index(drop=True)
    exp = truth.blocking.sort_values(["vantage"]).reset_index(drop=True)
    assert got["vantage"].astype(str).tolist() == exp["vantage"].tolist()
    for col in ("start_after", "start", "end", "end_before", "n_blocked"):
        assert got[col].astype(object).tolist() == exp[col].astype(object).tolist(), col
    assert got["method"].astype(str).tolist() == exp["method"].tolist()


def test_window_events_scope_and_platforms():
    _, truth = _scenario()
    ev = _analysis().events
    assert len(ev) == len(truth.events)
    exp = truth.events.sort_values("true_open").reset_index(drop=True)
    got = ev.sort_values("start").reset_index(drop=True)
    assert got["platforms"].tolist() == exp["platforms"].tolist()
    assert got["asns_open"].tolist() == exp["asns_open"].tolist()
    assert got["scope"].tolist() == exp["scope"].tolist()
    nationwide = got[got["scope"] == "nationwide"].iloc[0]
    assert pd.isna(nationwide["asns_blocked"]) and nationwide["n_asns"] == 4
    assert set(got[got["scope"] == "isp-specific"]["asns_blocked"].str.split(", ").map(len)) == {3}
    # windows carry the id of their event
    win = _analysis().windows
    assert set(win["event"]) == set(ev["event"])


def test_functions_agree_with_analyse_and_accept_episode_tables():
    df, _ = _scenario(28)
    a = analysis.analyse(df)
    ep = analysis.episodes(df)
    pd.testing.assert_frame_equal(ep, a.episodes)
    pd.testing.assert_frame_equal(analysis.unblocking_windows(df), a.windows.drop(columns="event"))
    pd.testing.assert_frame_equal(analysis.unblocking_windows(ep), a.windows.drop(columns="event"))
    pd.testing.assert_frame_equal(analysis.blips(df), a.blips)
    pd.testing.assert_frame_equal(analysis.blocking_episodes(df), a.blocking)
    pd.testing.assert_frame_equal(analysis.window_events(df), a.events)


def test_vectorised_episodes_match_per_row_reference_on_scenario():
    df, _ = _scenario(28)
    ep = analysis.episodes(df)
    ref = synth.reference_episodes(df)
    cols = ["vantage", "target", "state", "start_after", "start", "end", "end_before", "n", "n_neutral", "method"]
    _assert_same(ep[cols], ref[cols])


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) == len(b)
    for c in a.columns:
        x = a[c].astype(object).tolist()
        y = b[c].astype(object).tolist()
        same = [(p == q) or (pd.isna(p) and pd.isna(q)) for p, q in zip(x, y)]
        assert all(same), f"column {c} differs at {same.index(False)}: {x[same.index(False)]!r} != {y[same.index(False)]!r}"


# ------------------------------------------------------------------------------------- definitions
def test_flaky_and_inconclusive_never_split_episodes():
    rows = [(0, "blocked"), (10, "flaky"), (20, "blocked"), (30, "inconclusive"), (40, "blocked"),
            (50, "ok"), (60, "flaky"), (70, "ok"), (80, "blocked"), (90, "blocked")]
    ep = analysis.episodes(frame(rows))
    assert ep["state"].astype(str).tolist() == ["blocked", "reachable", "blocked"]
    assert ep["n"].tolist() == [3, 2, 2]
    assert ep["n_neutral"].tolist() == [2, 1, 0]
    assert ep["start_after"].iloc[1] == ts("2026-10-01 00:40") and ep["end_before"].iloc[1] == ts("2026-10-01 01:20")
    win = analysis.unblocking_windows(frame(rows))
    assert len(win) == 1 and win["n_ok"].iloc[0] == 2  # ok, flaky, ok: two consecutive ok


def test_bounds_and_nat_at_the_edges():
    rows = [(0, "ok"), (10, "ok"), (20, "blocked"), (30, "blocked"), (40, "blocked"), (50, "blocked"), (60, "ok"), (70, "ok")]
    ep = analysis.episodes(frame(rows))
    assert pd.isna(ep["start_after"].iloc[0]) and pd.isna(ep["end_before"].iloc[-1])
    assert ep["end_before"].iloc[0] == ep["start"].iloc[1] and ep["start_after"].iloc[1] == ep["end"].iloc[0]
    assert ep["duration"].tolist() == [pd.Timedelta(minutes=10), pd.Timedelta(minutes=30), pd.Timedelta(minutes=10)]


def test_gap_ends_evidence_and_makes_no_window():
    # blocked, then nothing for 3 hours, then blocked: two blocked episodes, no state across the gap
    rows = [(m, "blocked") for m in range(0, 60, 10)] + [(m, "blocked") for m in range(240, 300, 10)]
    ep = analysis.episodes(frame(rows), max_gap="1h")
    assert ep["state"].astype(str).tolist() == ["blocked", "blocked"]
    assert ep["gap_after"].tolist() == [True, False] and ep["gap_before"].tolist() == [False, True]
    assert ep["end_before"].iloc[0] == ts("2026-10-01 04:00")
    assert analysis.unblocking_windows(frame(rows)).empty
    # two oks separated by a gap are two single oks: blips, not a window
    rows = [(m, "blocked") for m in range(0, 60, 10)] + [(60, "ok"), (200, "ok")] + [(m, "blocked") for m in range(210, 300, 10)]
    assert analysis.unblocking_windows(frame(rows), max_gap="1h").empty
    assert len(analysis.blips(frame(rows), max_gap="1h")) == 2
    # with a longer limit the same data is one window
    assert len(analysis.unblocking_windows(frame(rows), max_gap="3h")) == 1


def test_outage_is_neither_blocking_nor_unblocking():
    rows = [(m, "blocked") for m in range(0, 60, 10)] + [(m, "outage") for m in range(60, 120, 10)] + \
        [(m, "blocked") for m in range(120, 180, 10)]
    f = frame(rows)
    assert analysis.unblocking_windows(f).empty and analysis.blips(f).empty
    ep = analysis.episodes(f)
    assert ep["state"].astype(str).tolist() == ["blocked", "outage", "blocked"]
    # a normally reachable target with an outage has no blocking episode either
    rows = [(m, "ok") for m in range(0, 60, 10)] + [(m, "outage") for m in range(60, 120, 10)] + [(m, "ok") for m in range(120, 180, 10)]
    assert analysis.blocking_episodes(frame(rows)).empty


def test_single_ok_corroborated_by_another_vantage_or_target():
    base = blocked_background(vantages=("v1", "v2"),
                              targets=(("www.facebook.com", "facebook"), ("graph.facebook.com", "facebook"),
                                       ("twitter.com", "twitter")))
    # v1 and v2 each see one ok of www.facebook.com at 100: corroborated by another vantage
    f = frame(with_overrides(base, {(100, "v1", "www.facebook.com"): "ok", (100, "v2", "www.facebook.com"): "ok"}))
    win = analysis.unblocking_windows(f)
    assert len(win) == 2 and win["corroborated"].all() and analysis.blips(f).empty
    # one vantage, two targets of the same platform: corroborated by another target
    f = frame(with_overrides(base, {(200, "v1", "www.facebook.com"): "ok", (200, "v1", "graph.facebook.com"): "ok"}))
    assert len(analysis.unblocking_windows(f)) == 2
    # another platform does not corroborate: both are blips
    f = frame(with_overrides(base, {(300, "v1", "www.facebook.com"): "ok", (300, "v2", "twitter.com"): "ok"}))
    assert analysis.unblocking_windows(f).empty and len(analysis.blips(f)) == 2
    # an ok outside the single's bounds (next measurement of the other vantage) does not corroborate
    f = frame(with_overrides(base, {(300, "v1", "www.facebook.com"): "ok", (320, "v2", "www.facebook.com"): "ok"}))
    assert analysis.unblocking_windows(f).empty and len(analysis.blips(f)) == 2


def test_baseline_definitions():
    # mostly reachable target with a blocked stretch: a blocking episode, and under "neighbours" the
    # reachable stretch between two blocked stretches is a window
    rows = [(m, "ok") for m in range(0, 300, 10)] + [(m, "blocked") for m in range(300, 360, 10)] + \
        [(m, "ok") for m in range(360, 390, 10)] + [(m, "blocked") for m in range(390, 450, 10)] + \
        [(m, "ok") for m in range(450, 700, 10)]
    f = frame(rows)
    assert len(analysis.blocking_episodes(f)) == 2
    assert analysis.unblocking_windows(f).empty
    w = analysis.unblocking_windows(f, baseline="neighbours")
    assert len(w) == 1 and w["start"].iloc[0] == ts("2026-10-01 06:00") and w["n_ok"].iloc[0] == 3
    ep = analysis.episodes(f)
    assert set(ep["baseline"].astype(str)) == {"reachable"}
    with pytest.raises(ValueError):
        analysis.unblocking_windows(f, baseline="nonsense")


def test_grouping_by_asn_merges_vantages():
    df, _ = _scenario(28)
    ep = analysis.episodes(df, by=("asn", "target"))
    assert {"asn", "target", "cc"} <= set(ep.columns) and "vantage" not in ep.columns
    win = analysis.unblocking_windows(df, by=("asn", "target"))
    assert set(win["asn"]) == {58224, 197207, 44244, 16322}
    ep2 = analysis.episodes(df, by=("vantage", "platform"))
    assert "platform" in ep2.columns and "target" not in ep2.columns


def test_selection_and_empty_inputs():
    df, _ = _scenario(28)
    sel = analysis.select(df, since="2026-09-06", until="2026-09-08", platforms=["twitter"])
    assert set(sel["platform"].astype(str)) == {"twitter"}
    assert sel["measured_at"].min() >= ts("2026-09-06") and sel["measured_at"].max() < ts("2026-09-08")
    assert len(analysis.unblocking_windows(sel)) == 5
    empty = fr.empty_frame()
    for fn in (analysis.episodes, analysis.unblocking_windows, analysis.blips, analysis.blocking_episodes,
               analysis.window_events):
        assert fn(empty).empty
    only_flaky = frame([(0, "flaky"), (10, "inconclusive")])
    assert analysis.episodes(only_flaky).empty


def test_dtypes_are_canonical():
    a = _analysis(28)
    ep = a.episodes
    assert str(ep["start"].dtype) == "datetime64[us, UTC]" and str(ep["asn"].dtype) == "Int64"
    assert isinstance(ep["vantage"].dtype, pd.CategoricalDtype)
    assert list(ep["vantage"].cat.categories) == sorted(ep["vantage"].cat.categories)
    assert str(a.windows["duration"].dtype) == "timedelta64[us]"


# --------------------------------------------------------------------------------------- property
_statuses = st.sampled_from(["ok", "blocked", "down", "outage", "flaky", "inconclusive", "ok", "blocked"])
_steps = st.sampled_from([1, 10, 10, 10, 50, 70, 200])


@st.composite
def timelines(draw):
    rows = []
    for v in draw(st.lists(st.sampled_from(["v1", "v2", "v3"]), min_size=1, max_size=3, unique=True)):
        for t, p in draw(st.lists(st.sampled_from([("www.facebook.com", "facebook"), ("graph.facebook.com", "facebook"),
                                                   ("twitter.com", "twitter")]), min_size=1, max_size=2, unique=True)):
            minute = draw(st.integers(0, 20))
            for _ in range(draw(st.integers(0, 25))):
                rows.append((minute + 0.01 * ord(v[-1]), draw(_statuses), v, t, p))
                minute += draw(_steps)
    return rows


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines())
def test_property_vectorised_equals_reference_and_windows_partition_candidates(rows):
    f = frame(rows).sample(frac=1.0, random_state=0)  # arrival order must not matter
    ep = analysis.episodes(f)
    ref = synth.reference_episodes(f)
    cols = ["vantage", "target", "state", "start_after", "start", "end", "end_before", "n", "n_neutral", "method"]
    _assert_same(ep[cols].reset_index(drop=True), ref[cols].reset_index(drop=True))
    # every reachable episode of a blocked-baseline group is exactly one of: window, blip
    win, bl = analysis.unblocking_windows(ep), analysis.blips(ep)
    cand = ep[(ep["state"] == "reachable") & (ep["baseline"] == "blocked")]
    assert len(win) + len(bl) == len(cand)
    assert (bl["n_ok"] == 1).all() and not bl["corroborated"].any()
    assert ((win["n_ok"] >= 2) | win["corroborated"]).all()
    # bounds bracket the evidence
    assert ((ep["start_after"].isna()) | (ep["start_after"] < ep["start"])).all()
    assert ((ep["end_before"].isna()) | (ep["end_before"] > ep["end"])).all()
    ev = analysis.window_events(ep)
    assert ev["n_windows"].sum() == len(win)


def test_dominant_method_paths_agree_and_durations_parse():
    from analysis import episode_runs as tl

    rng = np.random.default_rng(1)
    ep = np.sort(rng.integers(0, 3000, 60_000)).astype(np.int32)
    codes = rng.integers(-1, 30, 60_000).astype(np.int16)
    small, trip_small = tl._dominant(codes, ep, 3000, 30)  # bincount matrix
    large, trip_large = tl._dominant(codes, ep, 3000, 30_000)  # np.unique fallback (huge category space)
    assert (small == large).all() and len(trip_small) == len(trip_large)
    assert tl.parse_duration("1d") == pd.Timedelta(days=1) == tl.parse_duration("24h")
    assert tl.gap_us("90min") == 90 * 60 * 1_000_000
    with pytest.raises(ValueError):
        tl.gap_us("0s")


def test_threaded_slices_give_the_serial_result(monkeypatch):
    from analysis import episode_table as tl

    df, _ = _scenario(28)
    grouped = df.sort_values(["vantage", "measured_at"], kind="stable").reset_index(drop=True)  # like Parquet
    serial = analysis.episodes(grouped)
    monkeypatch.setattr(tl, "PARALLEL_MIN_ROWS", 1000)
    monkeypatch.setattr(tl.os, "cpu_count", lambda: 2)
    slices = tl._parallel_slices(grouped, ("vantage", "target"))
    assert slices is not None and len(slices) == 2
    pd.testing.assert_frame_equal(analysis.episodes(grouped), serial)
    assert tl._parallel_slices(df, ("vantage", "target")) is None  # time-ordered rows: not grouped
