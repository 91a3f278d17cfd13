"""Schedule arithmetic and the daemon's building blocks, without starting a scheduler."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone

import pytest

from probe import results as presults
from probe.daemon import Daemon, DaemonOptions, FaultLog, diagnose, read_state, write_state
from probe.records import DNSAttempt, Steps, TCPAttempt, Vantage, Verdict
from probe.results import ReadReport, ResultsSpool, iter_results
from probe.runner import RunConfig, TargetResult
from probe.schedule import (
    BurstPlanner,
    burst_times,
    effective_jitter,
    first_offsets,
    gap_bounds,
    group_targets,
    misfire_grace,
    parse_bursts,
    parse_duration,
)
from probe.targets import Endpoint, Target

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------ durations
@pytest.mark.parametrize("text,secs", [("90", 90), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("250ms", 0.25),
                                       ("2d", 172800), (" 30 s ", 30), ("0", 0), (5, 5.0)])
def test_parse_duration(text, secs):
    assert parse_duration(text) == pytest.approx(secs)


@pytest.mark.parametrize("bad", ["", "ten", "5x", "-3s", "1m30s", "nan"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_parse_bursts():
    assert parse_bursts("30s,2m,5m") == (30.0, 120.0, 300.0)
    assert parse_bursts("5m, 30s ,2m,30") == (30.0, 120.0, 300.0)  # sorted, deduplicated
    assert parse_bursts("off") == () and parse_bursts("") == ()
    with pytest.raises(ValueError):
        parse_bursts("30s,0s")


# --------------------------------------------------------------------------------------- jitter
@pytest.mark.parametrize("interval,jitter,expected", [(600, 60, 60), (600, 0, 0), (60, 45, 30), (1, 5, 0.5)])
def test_effective_jitter_is_capped_at_half_the_interval(interval, jitter, expected):
    assert effective_jitter(interval, jitter) == expected
    lo, hi = gap_bounds(interval, jitter)
    assert lo == interval and hi == interval + expected and hi < 2 * interval


@pytest.mark.parametrize("interval,jitter", [(600, 60), (10, 3), (2, 5)])
def test_apscheduler_gaps_stay_within_gap_bounds(interval, jitter):
    """The bounds are APScheduler 3's real behaviour: uniform(0, jitter) added to each fire time,
    the next one computed from the jittered previous one."""
    from apscheduler.triggers.interval import IntervalTrigger

    random.seed(4)
    lo, hi = gap_bounds(interval, jitter)
    trig = IntervalTrigger(seconds=interval, jitter=effective_jitter(interval, jitter), timezone=timezone.utc,
                           start_date=T0)
    prev = trig.get_next_fire_time(None, T0)
    gaps = []
    for _ in range(300):
        nxt = trig.get_next_fire_time(prev, prev)
        gaps.append((nxt - prev).total_seconds())
        prev = nxt
    assert all(lo - 1e-6 <= g <= hi + 1e-6 for g in gaps)
    assert max(gaps) - min(gaps) > 0.5 * (hi - lo)  # the jitter really spreads runs


def test_misfire_grace_is_about_half_the_interval_and_a_positive_int():
    assert misfire_grace(600) == 300 and misfire_grace(61) == 30
    assert misfire_grace(1) == 1 and misfire_grace(0.5) == 1
    assert all(isinstance(misfire_grace(x), int) for x in (0.1, 1, 7, 600))


def test_first_offsets_spread_over_a_minute_at_most():
    assert first_offsets(0, 600) == []
    assert first_offsets(1, 600) == [0]
    assert first_offsets(4, 600) == [0, 15, 30, 45]
    offs = first_offsets(3, 2)  # short intervals (tests): within one interval
    assert offs[0] == 0 and max(offs) < 2


def test_burst_times():
    assert burst_times(T0, [120, 30, 300]) == [T0 + timedelta(seconds=s) for s in (30, 120, 300)]
    assert burst_times(T0, []) == []


# -------------------------------------------------------------------------------- burst planner
def test_first_verdict_and_unchanged_status_trigger_nothing():
    bp = BurstPlanner((30, 120, 300))
    assert bp.observe([("a", "blocked")], T0).new_jobs == []
    assert bp.observe([("a", "blocked")], T0 + timedelta(minutes=10)).new_jobs == []
    assert bp.pending == 0


def test_flip_schedules_the_burst_sequence():
    bp = BurstPlanner((30, 120, 300))
    bp.observe([("a", "blocked"), ("b", "blocked")], T0)
    now = T0 + timedelta(minutes=10)
    plan = bp.observe([("a", "ok"), ("b", "blocked")], now)
    assert plan.changes == {"a": "blocked->ok"}
    assert [j.at for j in plan.new_jobs] == burst_times(now, (30, 120, 300))
    assert [(j.index, j.of, j.names) for j in plan.new_jobs] == [(1, 3, {"a"}), (2, 3, {"a"}), (3, 3, {"a"})]
    assert bp.pending == 3
    job = bp.take(plan.new_jobs[0].id)
    assert job.names == {"a"} and job.changes == {"a": "blocked->ok"} and bp.pending == 2
    assert bp.take(plan.new_jobs[0].id) is None


def test_targets_flipping_together_share_burst_jobs():
    bp = BurstPlanner((30, 120), max_pending=20)
    bp.observe([("a", "ok"), ("b", "ok")], T0)
    plan = bp.observe([("a", "blocked"), ("b", "blocked")], T0 + timedelta(minutes=1))
    assert len(plan.new_jobs) == 2 and all(j.names == {"a", "b"} for j in plan.new_jobs)


def test_non_decisive_statuses_neither_trigger_nor_reset():
    bp = BurstPlanner((30,))
    bp.observe([("a", "blocked")], T0)
    for s in ("outage", "flaky", "inconclusive", "down"):
        assert bp.observe([("a", s)], T0).new_jobs == []
    assert bp.observe([("a", "blocked")], T0).new_jobs == []  # blocked, outage..., blocked: no news
    assert bp.observe([("a", "ok")], T0).changes == {"a": "blocked->ok"}  # blocked, ..., ok: a window


def test_a_new_flip_replaces_pending_bursts():
    bp = BurstPlanner((30, 120, 300))
    bp.observe([("a", "blocked")], T0)
    first = bp.observe([("a", "ok")], T0 + timedelta(minutes=1))
    # The window closes during the bursts: the first burst measurement sees it blocked again.
    bp.take(first.new_jobs[0].id)
    second = bp.observe([("a", "blocked")], T0 + timedelta(minutes=1, seconds=30))
    assert sorted(second.emptied_jobs) == sorted(j.id for j in first.new_jobs[1:])
    assert second.changes == {"a": "ok->blocked"} and len(second.new_jobs) == 3 and bp.pending == 3


def test_burst_load_is_bounded():
    bp = BurstPlanner((30, 120, 300), max_pending=4)
    names = ["a", "b", "c"]
    bp.observe([(n, "blocked") for n in names], T0)
    plan = bp.observe([(n, "ok") for n in names], T0 + timedelta(minutes=1))
    assert bp.pending == 4  # never more than the budget
    first = plan.new_jobs[0]
    assert first.index == 1 and first.names == {"a", "b", "c"}  # earliest re-measurements first
    bp.observe([("d", "blocked")], T0)
    late = bp.observe([("d", "ok")], T0 + timedelta(minutes=2))
    assert late.new_jobs == [] and late.dropped == ["d"] and bp.pending == 4


def test_bursts_off():
    bp = BurstPlanner(())
    bp.observe([("a", "blocked")], T0)
    plan = bp.observe([("a", "ok")], T0)
    assert plan.changes == {"a": "blocked->ok"} and plan.new_jobs == []


# ------------------------------------------------------------------------------------ diagnosis
def _dns(ok: bool, resolver="127.0.0.1:53", rcode=None):
    return DNSAttempt(1, "x.test", "A", resolver, None, "udp", 0, 1, None if ok else "generic_timeout_error",
                      rcode="NOERROR" if ok else rcode, answers=["127.0.0.1"] if ok else [])


def _result(name, *, dns=(), tcp_ok=None, status="ok", canary=False):
    t = Target("canary" if canary else "facebook", name, "canary" if canary else "web",
               urls=("http://127.0.0.1:1/",), scope="international" if canary else None)
    steps = Steps(dns=list(dns))
    if tcp_ok is not None:
        steps.tcp.append(TCPAttempt(1, "127.0.0.1", 1, 0, 1, None if tcp_ok else "connection_refused"))
    return TargetResult(t, steps, T0, verdict=Verdict(status))


def test_diagnose_healthy_run():
    rs = [_result("a", dns=[_dns(True), _dns(True)], tcp_ok=True), _result("c", tcp_ok=True, canary=True)]
    assert diagnose(rs) == {}


def test_diagnose_dead_resolver_while_connections_work():
    rs = [_result("a", dns=[_dns(False), _dns(False)], status="inconclusive"),
          _result("c", tcp_ok=True, canary=True)]
    d = diagnose(rs)
    assert set(d) == {"resolver"} and "127.0.0.1:53 not answering" in d["resolver"][1]


def test_nxdomain_is_an_answer_not_a_dead_resolver():
    rs = [_result("a", dns=[_dns(False, rcode="NXDOMAIN"), _dns(False, rcode="NXDOMAIN")], status="blocked"),
          _result("c", tcp_ok=True, canary=True)]
    assert diagnose(rs) == {}


def test_diagnose_network_gone():
    rs = [_result("a", dns=[_dns(False), _dns(False)], status="outage"),
          _result("c", tcp_ok=False, status="outage", canary=True)]
    d = diagnose(rs)
    assert set(d) == {"network"} and d["network"][0] == "offline"


def test_diagnose_all_canaries_failed():
    rs = [_result("a", tcp_ok=True, status="outage"), _result("c", tcp_ok=False, status="outage", canary=True)]
    assert diagnose(rs)["network"][0] == "canaries"


# ------------------------------------------------------------------------------------ fault log
def test_fault_log_one_line_per_problem(caplog):
    logger = logging.getLogger("test.faults")
    faults = FaultLog(logger)
    with caplog.at_level(logging.INFO, logger="test.faults"):
        for _ in range(5):
            faults.problem("results", "No space left on device", "results: disk full")
        faults.problem("network", "offline", "network down")
        faults.problem("results", "Read-only file system", "results: read-only")  # a different problem
        faults.clear("results", "results writable again")
        faults.clear("results", "results writable again")  # already clear: silent
        faults.clear("resolver", "resolver back")  # never failed: silent
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["results: disk full", "network down", "results: read-only",
                    "results writable again (problem seen 1 time)"]
    assert faults.snapshot() == {"network": "network down"}


# ------------------------------------------------------------------------------------ spooling
def _rec(i: int) -> dict:
    return {"schema": "reachprobe/1", "id": str(i), "measured_at": "2024-03-01T12:00:00.000Z", "n": i,
            "target": {"platform": "p", "name": "t"}, "verdict": {"status": "ok"}}


def test_spool_keeps_records_while_unwritable_and_writes_them_in_order(tmp_path, monkeypatch):
    target = tmp_path / "results"
    spool = ResultsSpool(target, max_buffered=3, fsync=False)
    blocker = tmp_path / "results"
    blocker.write_text("a file where the directory should be")  # mkdir fails: unwritable
    spool.add([_rec(1), _rec(2)])
    with pytest.raises(presults.ResultsWriteError):
        spool.flush()
    assert spool.buffered == 2
    assert spool.add([_rec(3), _rec(4)]) == 1 and spool.dropped == 1  # bounded: the oldest goes
    blocker.unlink()
    assert spool.flush() == 3 and spool.buffered == 0
    assert [r["n"] for r in iter_results(target)] == [2, 3, 4]


def test_failed_append_is_cut_off_so_no_torn_line_is_buried(tmp_path, monkeypatch):
    spool = ResultsSpool(tmp_path, fsync=False)
    spool.add([_rec(1)])
    spool.flush()
    real_write = presults.os.write

    def half_write(fd, data):  # a full disk accepting half a line
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(presults.os, "write", half_write)
    spool.add([_rec(2)])
    with pytest.raises(presults.ResultsWriteError):
        spool.flush()
    monkeypatch.setattr(presults.os, "write", real_write)
    spool.add([_rec(3)])
    assert spool.flush() == 2
    report = ReadReport()
    assert [r["n"] for r in iter_results(tmp_path, report)] == [1, 2, 3]
    assert report.skipped == 0


def test_state_file_round_trip_and_atomic(tmp_path):
    write_state(tmp_path, {"schema": "reachprobe-daemon-state/1", "status": "running", "runs": 3})
    assert read_state(tmp_path)["runs"] == 3
    assert [p.name for p in tmp_path.iterdir()] == [".reachprobe-state.json"]  # no temporary left
    (tmp_path / ".reachprobe-state.json").write_text("{torn")
    assert read_state(tmp_path) is None


# ---------------------------------------------------------------------- scheduler configuration
def _targets():
    return [Target("facebook", "fb", "web", urls=("http://127.0.0.1:1/",)),
            Target("facebook", "fb2", "web", urls=("http://127.0.0.1:2/",)),
            Target("telegram", "tg", "endpoint", endpoints=(Endpoint("127.0.0.1", 3),)),
            Target("canary", "c", "canary", urls=("http://127.0.0.1:4/",), scope="international")]


def test_groups_per_platform_with_canaries_apart():
    groups, canaries = group_targets(_targets())
    assert {g: [t.name for t in ts] for g, ts in groups.items()} == {"facebook": ["fb", "fb2"], "telegram": ["tg"]}
    assert [c.name for c in canaries] == ["c"]
    only, canaries = group_targets(_targets()[3:])
    assert list(only) == ["canary"]


def test_scheduler_jobs_follow_the_rules(tmp_path):
    from apscheduler.triggers.interval import IntervalTrigger

    cfg = RunConfig(vantage=Vantage(id="unit"), results_dir=tmp_path)
    d = Daemon(cfg, _targets(), DaemonOptions(interval=600, jitter=60))
    d.scheduler = d._make_scheduler()
    assert str(d.scheduler.timezone) == "UTC"
    assert d.scheduler._job_defaults == {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
    d._add_jobs(T0)
    jobs = {j.id: j for j in d.scheduler.get_jobs()}
    assert set(jobs) == {"group:facebook", "group:telegram", "heartbeat"}
    fb = jobs["group:facebook"]
    assert isinstance(fb.trigger, IntervalTrigger) and fb.trigger.interval == timedelta(seconds=600)
    assert fb.trigger.jitter == 60 and str(fb.trigger.timezone) == "UTC"
    assert fb.coalesce is True and fb.max_instances == 1 and fb.misfire_grace_time == 300
    starts = sorted(j.next_run_time for j in jobs.values() if j.id.startswith("group:"))
    assert starts[0] == T0 and starts[1] - starts[0] == timedelta(seconds=30)  # first runs spread out
    assert jobs["heartbeat"].executor == "light"


def test_a_missed_burst_frees_its_share_of_the_budget(tmp_path, caplog):
    from types import SimpleNamespace

    cfg = RunConfig(vantage=Vantage(id="unit"), results_dir=tmp_path)
    d = Daemon(cfg, _targets(), DaemonOptions(interval=600, bursts=(30, 120), max_pending_bursts=2))
    d.planner.observe([("fb", "blocked")], T0)
    plan = d.planner.observe([("fb", "ok")], T0)
    assert d.planner.pending == 2
    with caplog.at_level(logging.WARNING, logger="reachprobe.daemon"):
        d._on_missed(SimpleNamespace(job_id=plan.new_jobs[0].id, scheduled_run_time=T0))
    assert d.planner.pending == 1
    assert len(caplog.records) == 1 and "missed run burst-" in caplog.records[0].getMessage()
