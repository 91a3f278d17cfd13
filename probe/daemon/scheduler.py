"""The daemon's APScheduler wiring: the scheduler (one worker for runs, one for the heartbeat), the rules
every job follows, the group, heartbeat and burst jobs, and their next fire times. When to run is
probe.schedule's arithmetic; what a job does is the daemon's (probe.daemon.core)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from probe.daemon.options import DaemonOptions
from probe.results import rfc3339
from probe.schedule import BurstPlan, effective_jitter, first_offsets, misfire_grace


def job_rules(interval: float) -> dict[str, Any]:
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": misfire_grace(interval)}


def make_scheduler(interval: float, on_missed: Callable, on_error: Callable, on_max_instances: Callable):
    from apscheduler.events import (
        EVENT_JOB_ERROR,
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
    )
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.blocking import BlockingScheduler

    sched = BlockingScheduler(
        timezone=UTC,
        executors={
            "default": ThreadPoolExecutor(max_workers=1),  # one run at a time
            "light": ThreadPoolExecutor(max_workers=1),  # heartbeat, never behind a run
        },
        job_defaults=job_rules(interval),
    )
    sched.add_listener(on_missed, EVENT_JOB_MISSED)
    sched.add_listener(on_error, EVENT_JOB_ERROR)
    sched.add_listener(on_max_instances, EVENT_JOB_MAX_INSTANCES)
    return sched


def add_jobs(
    scheduler, groups: dict[str, Any], opts: DaemonOptions, now: datetime, group_job: Callable, heartbeat: Callable
) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    jitter = effective_jitter(opts.interval, opts.jitter)
    offsets = first_offsets(len(groups), opts.interval, opts.start_spread)
    for group, offset in zip(sorted(groups), offsets, strict=True):
        scheduler.add_job(
            group_job,
            IntervalTrigger(seconds=opts.interval, jitter=jitter or None, timezone=UTC),
            args=(group,),
            id=f"group:{group}",
            name=f"group {group}",
            next_run_time=now + timedelta(seconds=offset),
            **job_rules(opts.interval),
        )
    scheduler.add_job(
        heartbeat,
        IntervalTrigger(seconds=opts.heartbeat, timezone=UTC),
        id="heartbeat",
        name="heartbeat",
        executor="light",
        misfire_grace_time=max(1, int(opts.heartbeat)),
    )


def replace_burst_jobs(scheduler, plan: BurstPlan, burst_job: Callable, interval: float) -> None:
    for jid in plan.emptied_jobs:
        try:
            scheduler.remove_job(jid)
        except Exception:  # noqa: BLE001 (already fired or gone)
            pass
    from apscheduler.triggers.date import DateTrigger

    for job in plan.new_jobs:
        scheduler.add_job(
            burst_job,
            DateTrigger(run_date=job.at, timezone=UTC),
            args=(job.id,),
            id=job.id,
            name=f"{job.id} {job.index}/{job.of}",
            **job_rules(interval),
        )


def next_run_times(scheduler) -> dict[str, str]:
    out: dict[str, str] = {}
    if scheduler is None:
        return out
    try:
        jobs = scheduler.get_jobs()
    except Exception:  # noqa: BLE001 (shutting down)
        return out
    for job in jobs:
        if job.id != "heartbeat" and getattr(job, "next_run_time", None):
            out[job.id] = rfc3339(job.next_run_time)
    return out
