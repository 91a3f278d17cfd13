"""Pure scheduling arithmetic for `reachprobe daemon`: durations, jitter bounds, first-run offsets,
platform groups, burst times and the burst planner. No I/O, no threads, no scheduler: the daemon
(probe.daemon) turns what these return into APScheduler jobs.

Burst re-measurement: when a target's status flips between ``ok`` and ``blocked`` relative to its
last such verdict, it is re-measured (with the canaries) after each delay of ``bursts`` (default
30 s, 2 min, 5 min) so the start and end of an unblocking window get tight bounds. Targets that
flip in the same run share burst jobs; at most ``max_pending`` target re-measurements are pending
at once (extra load is bounded); a new flip of a target replaces its pending bursts. ``outage``,
``flaky``, ``inconclusive`` and ``down`` neither trigger bursts nor reset the last state.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Statuses that define a target's state for burst purposes: a flip between two of these triggers
# bursts. Anything else is "no news" about censorship (our own outage, a glitch, no evidence).
DECISIVE = {"ok": "reachable", "blocked": "blocked"}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str | float | int) -> float:
    """'90' or '90s' -> 90.0; '10m' -> 600.0; '1.5h' -> 5400.0; '250ms' -> 0.25."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _DURATION.match(text)
        if not m:
            raise ValueError(f"{text!r} is not a duration (e.g. 30s, 10m, 1h)")
        value = float(m.group(1)) * _UNITS[m.group(2).lower() if m.group(2) else None]
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"{text!r}: a duration must be zero or positive")
    return value


def parse_bursts(text: str) -> tuple[float, ...]:
    """'30s,2m,5m' -> (30.0, 120.0, 300.0), sorted, duplicates removed; 'off'/'' -> ()."""
    if text.strip().lower() in ("", "off", "none", "0"):
        return ()
    delays = sorted({parse_duration(part) for part in text.split(",") if part.strip()})
    if any(d <= 0 for d in delays):
        raise ValueError(f"{text!r}: burst delays must be positive")
    return tuple(delays)


def effective_jitter(interval: float, jitter: float) -> float:
    """Jitter is capped at half the interval, so a run can never land on the next one."""
    return max(0.0, min(jitter, interval / 2))


def gap_bounds(interval: float, jitter: float) -> tuple[float, float]:
    """Bounds of the time between two consecutive runs of one group (APScheduler 3 adds
    uniform(0, jitter) to each fire time, measured from the previous jittered fire time)."""
    j = effective_jitter(interval, jitter)
    return interval, interval + j


def misfire_grace(interval: float) -> int:
    """About half the interval, in whole seconds (APScheduler 3 wants a positive int). A run
    delayed by less than this (a long previous run, a suspended laptop) still happens."""
    return max(1, int(interval // 2))


def first_offsets(n_groups: int, interval: float, spread: float = 60.0) -> list[float]:
    """Seconds after start of each group's first run: spread evenly over min(interval, spread)."""
    if n_groups <= 0:
        return []
    window = min(interval, spread)
    return [i * window / n_groups for i in range(n_groups)]


def burst_times(changed_at: datetime, delays: Sequence[float]) -> list[datetime]:
    """When to re-measure a target whose status changed at ``changed_at``."""
    return [changed_at + timedelta(seconds=d) for d in sorted(delays)]


@dataclass
class BurstJob:
    id: str
    at: datetime
    index: int  # 1-based position in the burst sequence
    of: int
    after_s: float  # delay after the change
    names: set[str] = field(default_factory=set)
    changes: dict[str, str] = field(default_factory=dict)  # name -> "blocked->ok"


@dataclass
class BurstPlan:
    new_jobs: list[BurstJob]
    emptied_jobs: list[str]  # ids of previously planned jobs that no longer have a target
    changes: dict[str, str]  # name -> "old->new" for every flip seen
    dropped: list[str]  # names whose bursts did not fit in the budget


class BurstPlanner:
    """Which targets to re-measure when. Pure: the daemon turns plans into scheduler jobs."""

    def __init__(self, delays: Sequence[float], max_pending: int = 12):
        self.delays = tuple(sorted(delays))
        self.max_pending = max(0, max_pending)
        self.last: dict[str, str] = {}  # name -> last decisive status
        self.jobs: dict[str, BurstJob] = {}
        self._ids = itertools.count(1)

    @property
    def pending(self) -> int:
        """Target re-measurements still to come (the extra load)."""
        return sum(len(j.names) for j in self.jobs.values())

    def _cancel(self, name: str) -> list[str]:
        emptied = []
        for jid, job in list(self.jobs.items()):
            if name in job.names:
                job.names.discard(name)
                job.changes.pop(name, None)
                if not job.names:
                    del self.jobs[jid]
                    emptied.append(jid)
        return emptied

    def observe(self, statuses: Iterable[tuple[str, str]], now: datetime) -> BurstPlan:
        changed: dict[str, str] = {}
        for name, status in statuses:
            if status not in DECISIVE:
                continue
            before = self.last.get(name)
            self.last[name] = status
            if before is not None and before != status:
                changed[name] = f"{before}->{status}"
        emptied: list[str] = []
        for name in changed:
            emptied += self._cancel(name)  # a new flip restarts that target's sequence
        new_jobs: list[BurstJob] = []
        dropped: list[str] = []
        if changed and self.delays:
            # Fill the budget earliest-first: the first re-measurements matter most for the bounds.
            by_index: list[BurstJob] = []
            for i, (at, delay) in enumerate(zip(burst_times(now, self.delays), self.delays, strict=True), start=1):
                by_index.append(
                    BurstJob(id=f"burst-{next(self._ids)}", at=at, index=i, of=len(self.delays), after_s=delay)
                )
            for job in by_index:
                for name in changed:
                    if self.pending + sum(len(j.names) for j in by_index) >= self.max_pending:
                        if name not in dropped and job.index == 1:
                            dropped.append(name)
                        break
                    job.names.add(name)
                    job.changes[name] = changed[name]
            for job in by_index:
                if job.names:
                    self.jobs[job.id] = job
                    new_jobs.append(job)
        return BurstPlan(new_jobs, emptied, changed, dropped)

    def take(self, job_id: str) -> BurstJob | None:
        """The job is firing: its targets are measured now."""
        return self.jobs.pop(job_id, None)


def group_targets(targets) -> tuple[dict[str, list], list]:
    """{platform: non-canary targets}, canaries. With only canaries, one group 'canary'."""
    groups: dict[str, list] = {}
    canaries = [t for t in targets if t.is_canary]
    for t in targets:
        if not t.is_canary:
            groups.setdefault(t.platform, []).append(t)
    if not groups and canaries:
        groups["canary"] = []
    return groups, canaries
