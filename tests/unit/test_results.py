"""Results files: append-only, one line per measurement, torn final lines skipped and reported."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone

from probe.results import ReadReport, ResultsWriter, iter_results, make_record, rfc3339


def rec(i: int, ts: datetime) -> dict:
    return make_record(run_id="r", measured_at=ts, vantage={"id": "v", "asn": None, "cc": None, "network": None},
                       software_version="t", target={"platform": "facebook", "name": f"t{i}", "kind": "web"},
                       steps={"dns": [], "tcp": [], "tls": [], "http": []},
                       verdict={"status": "ok", "layer": None, "method": None, "rule": None,
                                "confidence": 1.0, "confirmed": False})


def test_one_file_per_utc_day_and_owner_only(tmp_path):
    w = ResultsWriter(tmp_path / "res")
    w.append(rec(1, datetime(2026, 11, 24, 23, 59, tzinfo=timezone.utc)))
    w.append(rec(2, datetime(2026, 11, 25, 0, 1, tzinfo=timezone.utc)))
    files = sorted(p.name for p in (tmp_path / "res").iterdir())
    assert files == ["2026-11-24.jsonl", "2026-11-25.jsonl"]
    mode = stat.S_IMODE(os.stat(tmp_path / "res" / "2026-11-24.jsonl").st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "res").st_mode) == 0o700


def test_contract_shape(tmp_path):
    ts = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=timezone.utc)
    ResultsWriter(tmp_path).append(rec(1, ts))
    line = json.loads((tmp_path / "2026-11-24.jsonl").read_text())
    assert line["schema"] == "reachprobe/1" and line["measured_at"] == "2026-11-24T10:00:00.123Z"
    assert set(line) >= {"schema", "id", "run_id", "measured_at", "vantage", "software", "target", "steps", "verdict"}
    assert rfc3339(ts).endswith("Z")


def test_torn_final_line_is_skipped_and_reported(tmp_path):
    ts = datetime(2026, 11, 24, tzinfo=timezone.utc)
    w = ResultsWriter(tmp_path)
    w.append_many([rec(i, ts) for i in range(3)])
    path = tmp_path / "2026-11-24.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"schema": "reachprobe/1", "id": "torn')  # a writer killed mid-line
    report = ReadReport()
    got = list(iter_results(tmp_path, report))
    assert len(got) == 3 and report.torn_final == [str(path)] and "torn" in report.summary()


def test_append_after_torn_line_isolates_it(tmp_path):
    ts = datetime(2026, 11, 24, tzinfo=timezone.utc)
    path = tmp_path / "2026-11-24.jsonl"
    path.write_bytes(b'{"torn": ')
    ResultsWriter(tmp_path).append(rec(1, ts))
    report = ReadReport()
    got = list(iter_results(path, report))
    assert [g["target"]["name"] for g in got] == ["t1"]
    assert report.bad_lines == [f"{path}:1: not JSON (Expecting value at column 10)"] and not report.torn_final


def test_unwritable_directory_raises_clear_error(tmp_path):
    import pytest

    from probe.results import ResultsWriteError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ResultsWriteError, match="cannot create results directory"):
        ResultsWriter(blocker / "sub").append(rec(1, datetime.now(timezone.utc)))
