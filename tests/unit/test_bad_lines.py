"""Every results reader survives any line: it skips it and says `file:line: reason` (issue #13 part 2).

The same results directory, holding good lines and one of each kind of bad line, is read by `show`,
`status`, `report`, `compact`, `analysis.load` (pandas) and `analysis.load` (Dask); each must use the
good lines, skip the same bad ones with the same reasons, and read a future schema version with a
warning.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import analysis
from analysis import io as aio
from probe.cli import main
from probe.resultline import MAX_DEPTH, nesting_depth, parse_line
from probe.results import ReadReport, iter_results, read_tail
from tests import synth


@functools.lru_cache(maxsize=None)
def _good() -> list[dict]:
    df, _ = synth.timeline(days=1, noise=0.0)
    return synth.to_records(df.head(40))


def _line(rec: dict) -> bytes:
    return json.dumps(rec, separators=(",", ":")).encode()


def _bad_lines() -> list[tuple[bytes, str]]:
    """(line, the reason every reader must give for it)."""
    g = _good()[0]
    ff = _line({**g, "id": "bad-ff"}).replace(b'"bad-ff"', b'"bad-\xff"')
    return [
        (ff, "not UTF-8 (byte 0xff at column"),
        (b"[" * 100_000, f"JSON nested deeper than {MAX_DEPTH} levels"),
        (_line({**g, "steps": 0})[:-1].replace(b'"steps":0', b'"steps":' + b"[" * 5000 + b"]" * 5000) + b"}",
         f"JSON nested deeper than {MAX_DEPTH} levels"),
        (_line({**g, "verdict": "blocked"}), "verdict is a string, not an object"),
        (_line({**g, "target": ["facebook"]}), "target is a list, not an object"),
        (_line({**g, "measured_at": 1732442400}), "measured_at is a number, not an RFC 3339 string"),
        (_line({**g, "measured_at": "yesterday"}), "measured_at 'yesterday' is not an RFC 3339 date-time"),
        (_line({**g, "measured_at": "2026-09-01"}), "measured_at '2026-09-01' is not an RFC 3339 date-time"),
        (_line({**g, "verdict": {**g["verdict"], "status": None}}), "verdict.status is null, not a string"),
        (_line({**g, "target": {**g["target"], "name": 7}}), "target.name is a number, not a string"),
        (_line({**g, "run_id": ["r"]}), "run_id is a list, not a string"),
        (_line({k: v for k, v in g.items() if k != "schema"}), "schema is null, not a string reachprobe/"),
        (b"not json at all", "not JSON (Expecting value at column 1)"),
        (b"42", "not a JSON object but a number"),
    ]


FUTURE_ID = "future-schema-line"


@pytest.fixture
def results(tmp_path) -> tuple[Path, list[str], int]:
    """A results dir with one day file: good lines, each bad line, a future-schema line.
    Returns (dir, expected 'path:line: reason' prefixes, number of usable lines)."""
    d = tmp_path / "results"
    d.mkdir()
    path = d / "2026-09-01.jsonl"
    good = _good()
    lines: list[bytes] = []
    expected: list[str] = []
    bad = _bad_lines()
    for i, rec in enumerate(good):
        lines.append(_line(rec))
        if i < len(bad):
            lines.append(bad[i][0])
            expected.append(f"{path}:{len(lines)}: {bad[i][1]}")
    future = {**good[-1], "schema": "reachprobe/2", "id": FUTURE_ID, "new_field": {"x": 1}}
    lines.append(_line(future))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return d, expected, len(good) + 1


def _assert_reported(text: str, expected: list[str]) -> None:
    for e in expected:
        assert e in text, f"missing {e!r} in:\n{text}"
    assert "schema 'reachprobe/2'" in text


def test_validator_reasons_directly():
    for raw, reason in _bad_lines():
        rec, why = parse_line(raw)
        assert rec is None and why.startswith(reason), (raw[:60], why)
    assert parse_line(_line(_good()[0]))[1] is None
    assert nesting_depth(b'{"a":"[[[[[[","b":[{"c":[]}]}') == 4  # brackets in strings do not count


def test_iter_results_and_read_tail(results):
    d, expected, n = results
    rep = ReadReport()
    got = list(iter_results(d, rep))
    assert len(got) == n and rep.bad_count == len(expected) and not rep.torn_final
    _assert_reported("\n".join(rep.messages(limit=100)), expected)
    tail_rep = ReadReport()
    path = d / "2026-09-01.jsonl"
    tail = read_tail(path, path.stat().st_size - 100, tail_rep)  # starts inside line 1
    assert len(tail) == n - 1 and tail[-1]["id"] == FUTURE_ID
    # the window's line numbers are the file's own
    assert len(tail_rep.bad_lines) == len(expected)
    assert all(b.startswith(e) for b, e in zip(tail_rep.bad_lines, expected))


def test_show(results):
    d, expected, n = results
    res = CliRunner().invoke(main, ["show", str(d)])
    assert res.exit_code == 0, res.output
    _assert_reported(res.stderr, expected)
    assert "skipped" not in res.stdout


def test_status(results):
    d, expected, n = results
    res = CliRunner().invoke(main, ["status", "--results", str(d)])
    assert res.exit_code == 0, res.output
    _assert_reported(res.stderr, expected)
    assert "last run:" in res.stdout and "measurements" in res.stdout


def test_report(results, tmp_path):
    d, expected, n = results
    out = tmp_path / "r.md"
    res = CliRunner().invoke(main, ["report", str(d), "-o", str(out)])
    assert res.exit_code == 0, res.output
    _assert_reported(res.stderr, expected)
    assert f"({n} measurements;" in res.stdout  # no row silently dropped


def test_report_dask(results, tmp_path):
    d, expected, n = results
    res = CliRunner().invoke(main, ["report", str(d), "-o", str(tmp_path / "r.csv"), "--engine", "dask"])
    assert res.exit_code == 0, res.output
    _assert_reported(res.stderr, expected)
    assert f"({n} measurements;" in res.stdout


def test_compact(results, tmp_path):
    d, expected, n = results
    res = CliRunner().invoke(main, ["compact", str(d), "-o", str(tmp_path / "pq")])
    assert res.exit_code == 0, res.output
    _assert_reported(res.stderr, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", aio.SkippedLinesWarning)
        assert len(analysis.load(tmp_path / "pq")) == n


def test_load_pandas(results):
    d, expected, n = results
    with pytest.warns(aio.SkippedLinesWarning, match="bad line"):
        df = analysis.load(d)
    assert len(df) == n and df["measured_at"].notna().all()
    assert FUTURE_ID in set(df["id"])
    rep = analysis.read_report(df)
    assert rep["bad_count"] == len(expected) and rep["skipped"] == len(expected)
    _assert_reported("\n".join(rep["bad_lines"] + rep["future"]), expected)


def test_load_dask(results):
    d, expected, n = results
    ddf = analysis.load(d, engine="dask")
    assert len(ddf.compute()) == n
    with pytest.warns(aio.SkippedLinesWarning, match="bad line"):
        rep = analysis.read_report(ddf)
    assert rep["bad_count"] == len(expected) and rep["lines"] == n
    _assert_reported("\n".join(rep["bad_lines"] + rep["future"]), expected)
    assert analysis.read_report(ddf) == rep  # made once, kept


def test_fast_and_slow_paths_agree(tmp_path):
    """Arrow's block parser and the line validator give the same frame for the same good lines."""
    good = _good()
    a = tmp_path / "a" / "2026-09-01.jsonl"
    b = tmp_path / "b" / "2026-09-01.jsonl"
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_bytes(b"\n".join(map(_line, good)) + b"\n")
    b.write_bytes(b"\n".join(map(_line, good)) + b"\nnot json\n")  # forces the line-by-line path
    fast = analysis.load(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", aio.SkippedLinesWarning)
        slow = analysis.load(b)
    fast.attrs, slow.attrs = {}, {}
    pd.testing.assert_frame_equal(fast, slow)


@pytest.mark.parametrize("block,min_split", [(97, aio.MIN_SPLIT), (aio.BLOCK_BYTES, 50)])
def test_blocks_split_anywhere(tmp_path, monkeypatch, block, min_split):
    """Block boundaries and the halving of a refused block never lose, split or renumber a line."""
    d, expected, n = _small_blocks_fixture(tmp_path)
    monkeypatch.setattr(aio._line_blocks, "__defaults__", (block,))
    monkeypatch.setattr("analysis.jsonl.MIN_SPLIT", min_split)  # where _read_block reads it
    with pytest.warns(aio.SkippedLinesWarning):
        df = analysis.load(d)
    assert len(df) == n
    assert analysis.read_report(df)["bad_lines"] == expected


def _small_blocks_fixture(tmp_path):
    d = tmp_path / "res"
    d.mkdir()
    p = d / "2026-09-01.jsonl"
    good = _good()[:6]
    lines = [_line(good[0]), b"", _line(good[1]), b"{broken", _line(good[2]), _line(good[3]),
             b"\xff\xfe", _line(good[4]), _line(good[5])]
    p.write_bytes(b"\n".join(lines) + b"\n" + _line(good[0])[:30])  # and a torn final line
    expected = [f"{p}:4: not JSON (Expecting property name enclosed in double quotes at column 2)",
                f"{p}:7: not UTF-8 (byte 0xff at column 1)"]
    return d, expected, 6
