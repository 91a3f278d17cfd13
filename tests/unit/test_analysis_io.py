"""Loading results (JSONL tolerant of torn lines, compacted Parquet, OONI) and `compact`."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis import compaction
from analysis import frame as fr
from analysis import io as aio
from tests import synth


@functools.lru_cache(maxsize=None)
def _week():
    df, truth = synth.timeline(days=28)
    return fr.normalize(df[df["measured_at"] < pd.Timestamp("2026-09-08", tz="UTC")].reset_index(drop=True))


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    out = fr.normalize(df.sort_values("id").reset_index(drop=True))
    out.attrs = {}
    return out


def assert_same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """assert_frame_equal, minus pandas' slow per-element path for categoricals (same dtype + same codes)."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        assert a[c].dtype == b[c].dtype, c
        if isinstance(a[c].dtype, pd.CategoricalDtype):
            assert np.array_equal(a[c].cat.codes.to_numpy(), b[c].cat.codes.to_numpy()), c
        else:
            pd.testing.assert_series_equal(a[c], b[c], check_index=False)


def test_jsonl_round_trip_with_torn_final_line(tmp_path):
    df = _week()
    paths = synth.write_jsonl(df, tmp_path / "res", torn_tail=True)
    got = analysis.load(tmp_path / "res")
    rep = got.attrs["read_report"]
    assert rep["torn_final"] == [str(paths[-1])] and rep["skipped"] == 1 and rep["bad_lines"] == []
    assert rep["files"] == len(paths) and rep["lines"] == len(df)
    assert "torn final line" in rep["summary"]
    assert_same_frame(_sorted(got), _sorted(df))
    assert analysis.read_report(got) == rep


def test_contract_only_lines_bad_lines_and_fallback_parser(tmp_path):
    rec = synth.to_records(_week().head(3))
    rec[0].pop("steps")  # lines may carry only the contract's fields
    rec[1]["steps"] = {}
    rec[2]["vantage"]["asn"] = "AS58224"  # a type the fast parser refuses: the file is re-read line by line
    p = tmp_path / "2026-09-01.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rec[:2]) + "\nnot json at all\n" + json.dumps(rec[2]) + "\n")
    got = analysis.load(p)
    assert len(got) == 3 and got["asn"].tolist() == [58224, 58224, 58224]
    rep = got.attrs["read_report"]
    assert rep["bad_lines"] == [f"{p}:3: not JSON (Expecting value at column 1)"] and rep["torn_final"] == []
    # the fast path gives the same frame as the line-by-line path
    ok = tmp_path / "ok.jsonl"
    ok.write_text("\n".join(json.dumps(r) for r in rec[:2]) + "\n")
    fast = aio.read_jsonl_file(ok)
    slow = fr.records_to_arrow(rec[:2])
    pd.testing.assert_frame_equal(fr.from_arrow(fast), fr.from_arrow(slow))


def test_torn_line_only_and_empty_files(tmp_path):
    (tmp_path / "2026-09-01.jsonl").write_bytes(b'{"schema": "reachprobe/1", "id": "x", "meas')
    (tmp_path / "2026-09-02.jsonl").write_bytes(b"")
    got = analysis.load(tmp_path)
    assert got.empty and got.attrs["read_report"]["torn_final"] == [str(tmp_path / "2026-09-01.jsonl")]
    assert list(got.columns) == list(fr.COLUMNS)


def test_directory_of_many_volunteers_and_dedupe(tmp_path):
    df = _week()
    a = df[df["vantage"].isin(["tci-teh-1", "mci-teh-1"])]
    b = df[~df["vantage"].isin(["tci-teh-1", "mci-teh-1"])]
    synth.write_jsonl(a, tmp_path / "volunteers" / "alice")
    synth.write_jsonl(b, tmp_path / "volunteers" / "bob" / "results")
    # the same measurement twice (a copied file) is counted once
    synth.write_jsonl(a.head(10), tmp_path / "volunteers" / "carol")
    got = analysis.load(tmp_path / "volunteers")
    assert_same_frame(_sorted(got), _sorted(df))


def test_compact_parquet_round_trip_idempotent_and_incremental(tmp_path):
    df = _week()
    res_dir = tmp_path / "res"
    synth.write_jsonl(df, res_dir, torn_tail=True)
    out = tmp_path / "pq"
    r1 = analysis.compact(res_dir, out)
    assert r1.months_written == ["2026-09"] and r1.rows == len(df) and r1.read_report["skipped"] == 1
    files = sorted(out.glob("v_*/*.parquet"))
    assert [f.parent.name for f in files] == sorted(f"v_{v}" for v in df["vantage"].cat.categories)
    assert not list(out.rglob("*.tmp"))
    stamp = {f: f.stat().st_mtime_ns for f in files}
    pq = analysis.load(out)
    assert_same_frame(_sorted(pq), _sorted(df))
    assert pq.attrs["read_report"]["torn_final"]  # the compaction's skipped line is still reported
    # same analysis from JSONL and from Parquet
    pd.testing.assert_frame_equal(analysis.episodes(pq), analysis.episodes(analysis.load(res_dir)))
    # idempotent: nothing changes, nothing is rewritten
    r2 = analysis.compact(res_dir, out)
    assert r2.months_written == [] and r2.months_skipped == ["2026-09"]
    assert {f: f.stat().st_mtime_ns for f in files} == stamp
    # incremental: a new line in one day rewrites that month only, and the new row appears
    extra = synth.to_records(df.tail(1))[0]
    extra["id"] = "new-measurement"
    last_day = sorted(res_dir.glob("*.jsonl"))[0]
    with open(last_day, "a") as fh:
        fh.write(json.dumps(extra) + "\n")
    r3 = analysis.compact(res_dir, out)
    assert r3.months_written == ["2026-09"]
    assert len(analysis.load(out)) == len(df) + 1
    # a forced run rewrites; a second forced run gives byte-identical files
    analysis.compact(res_dir, out, force=True)
    before = {f: f.read_bytes() for f in out.glob("v_*/*.parquet")}
    analysis.compact(res_dir, out, force=True)
    assert {f: f.read_bytes() for f in out.glob("v_*/*.parquet")} == before


def test_compacted_files_are_private_and_names_safe(tmp_path):
    df = _week().head(50).copy()
    df["vantage"] = pd.Categorical(["../evil v/1"] * len(df))
    compaction.write_partitioned(df, tmp_path / "pq", "2026-09")
    files = list((tmp_path / "pq").rglob("*.parquet"))
    assert len(files) == 1 and files[0].parent.parent == tmp_path / "pq"
    assert files[0].parent.name == "v_%2E%2E%2Fevil%20v%2F1"
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    assert analysis.load(tmp_path / "pq")["vantage"].unique().tolist() == ["../evil v/1"]


def test_load_columns_filters_and_errors(tmp_path):
    df = _week()
    synth.write_jsonl(df, tmp_path / "res")
    analysis.compact(tmp_path / "res", tmp_path / "pq")
    cols = ["measured_at", "vantage", "target", "status"]
    got = analysis.load(tmp_path / "pq", columns=cols, since="2026-09-03", platforms=["facebook"])
    assert list(got.columns) == cols
    assert got["measured_at"].min() >= pd.Timestamp("2026-09-03", tz="UTC")
    exp = df[(df["measured_at"] >= pd.Timestamp("2026-09-03", tz="UTC")) & (df["platform"] == "facebook")]
    assert len(got) == len(exp)
    assert len(analysis.load(tmp_path / "res", since="2026-09-03", platforms=["facebook"])) == len(exp)
    with pytest.raises(ValueError):
        analysis.load(tmp_path / "pq", engine="spark")
    with pytest.raises(ValueError):
        analysis.load(tmp_path / "pq", columns=["nope"])
    with pytest.raises(FileNotFoundError):
        analysis.load(tmp_path / "missing.jsonl")


def test_ooni_rows_map_to_frame_columns(tmp_path):
    df = analysis.load_ooni([synth.write_ooni(tmp_path / "raw.jsonl")])
    assert df["vantage"].astype(str).tolist() == ["ooni-AS197207", "ooni-AS58224"]
    assert df["platform"].astype(str).tolist() == ["facebook", "telegram"]
    assert df["target"].iloc[0] == "https://www.facebook.com/"
    # our verdict rules on OONI's raw keys: Iran's blockpage IP is confirmed blocking; the telegram
    # document carries OONI's flags only, no steps, so our rules have nothing to go on
    assert df["status"].astype(str).tolist() == ["blocked", "inconclusive"]
    assert df["rule"].iloc[0] == "dns.blockpage_ip" and bool(df["confirmed"].iloc[0])
    assert set(df["source"].astype(str)) == {"ooni"} and df["asn"].tolist() == [197207, 58224]
    assert list(df.columns) == list(fr.COLUMNS) and str(df["measured_at"].dtype) == fr.TIME_DTYPE
    assert df["measured_at"].iloc[0] == pd.Timestamp("2022-08-15 19:01:30", tz="UTC")


def test_platform_of_urls_and_tests():
    assert aio.platform_of("https://m.facebook.com/x") == "facebook"
    assert aio.platform_of("https://x.com/") == "twitter"
    assert aio.platform_of(None, "whatsapp") == "whatsapp"
    assert aio.platform_of("https://www.example.org/") == "example.org"
    assert aio.platform_of("http://notfacebook.com/") == "notfacebook.com"
    assert aio.platform_of("http://www.postmaster.co.uk/") == "postmaster.co.uk"
    assert aio.platform_of("https://8.8.4.4/dns-query") == "8.8.4.4"


def _shared() -> Path:
    env = os.environ.get("REACHPROBE_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


SHARED = _shared()
REAL_OONI = SHARED / "data" / "ooni_real" / "ALL_REAL_raw_measurements.jsonl"


@pytest.mark.skipif(not REAL_OONI.exists(), reason=f"shared reference data not found at {SHARED}")
def test_real_ooni_measurements_through_read_ooni():
    df = analysis.load_ooni([REAL_OONI])
    assert len(df) > 0 and set(df["source"].astype(str)) == {"ooni"}
    assert list(df.columns) == list(fr.COLUMNS) and str(df["measured_at"].dtype) == fr.TIME_DTYPE
    assert (df["vantage"].astype(str) == "ooni-AS" + df["asn"].astype(str)).all()
    ir_fb = df[(df["asn"] == 197207) & (df["platform"] == "facebook")]
    assert len(ir_fb) and set(ir_fb["status"].astype(str)) == {"blocked"}
    assert ir_fb["target"].astype(str).str.contains("facebook.com").all()
    ep = analysis.episodes(df, max_gap="30d")
    assert len(ep) and set(ep["vantage"].astype(str)) <= set(df["vantage"].astype(str))


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    compaction.atomic_write_bytes(target, b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        compaction.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
