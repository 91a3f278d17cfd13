"""The daemon: APScheduler 3.x BlockingScheduler driving probe.runner, one run at a time.

* One interval job per platform group (the platform's targets plus the canaries, which every run
  needs to tell the vantage's own outages from blocking). Each job fires every ``interval`` plus a
  random ``jitter`` in [0, jitter] (APScheduler 3 adds jitter to each fire time, and the next fire
  time is computed from the jittered one, so volunteers drift apart instead of probing in lockstep).
  First runs are spread over the first minute. ``coalesce=True``, ``max_instances=1``,
  ``misfire_grace_time`` = half the interval, UTC throughout (the wiring: probe.daemon.scheduler).
* Runs go through a single worker thread: one measurement at a time, never two runs doubling the
  load. A hanging target is bounded by the runner's per-target deadline.
* Burst re-measurement after a flip between ``ok`` and ``blocked``: planned by
  probe.schedule.BurstPlanner, scheduled as date jobs.
* Faults (network gone, resolver dead, results disk full or unwritable, a run crashing) log one line
  when they start and one when they clear (probe.daemon.faults). Results go through
  probe.results.ResultsSpool (probe.daemon.writes): what cannot be written is kept in memory (bounded, oldest dropped
  first, and said so) and written, in order, as soon as the directory takes it again.
* SIGTERM/SIGINT: no new runs start; the in-flight run gets ``stop_grace`` seconds to finish (its
  lines are then written whole), after which it is abandoned (cancelled; nothing of it is written;
  probe.daemon.inflight).
  A second signal abandons at once. Then buffered lines get a last write attempt, the state file
  says "stopped", and the daemon exits 0.
* The state file (probe.daemon.state) feeds ``reachprobe status``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from probe.daemon.faults import FaultLog, check_vantage
from probe.daemon.inflight import InflightRun
from probe.daemon.options import DaemonOptions
from probe.daemon.scheduler import add_jobs, make_scheduler, next_run_times, replace_burst_jobs
from probe.daemon.state import STATE_NAME, STATE_SCHEMA, write_state
from probe.daemon.writes import ResultsSink
from probe.results import ResultsSpool, rfc3339, utc_now
from probe.schedule import BurstPlanner, effective_jitter, group_targets, misfire_grace

__all__ = ["Daemon", "DaemonOptions"]

log = logging.getLogger("reachprobe.daemon")


class Daemon:
    def __init__(self, cfg, targets, opts: DaemonOptions, *, logger: logging.Logger = log):
        """``cfg`` is the probe.runner.RunConfig of `reachprobe run`; ``targets`` its target list."""
        if cfg.results_dir is None:
            raise ValueError("the daemon needs a results directory")
        self.cfg = cfg
        self.results_dir = Path(cfg.results_dir)
        self.opts = opts
        self.log = logger
        self.groups, self.canaries = group_targets(targets)
        self.by_name = {t.name: t for t in targets}
        self.planner = BurstPlanner(opts.bursts, opts.max_pending_bursts)
        self._planner_lock = threading.Lock()
        self.spool = ResultsSpool(self.results_dir, opts.max_buffered)
        self.faults = FaultLog(logger)
        self.sink = ResultsSink(self.spool, self.faults, self.results_dir)
        self.scheduler: Any = None  # an apscheduler BlockingScheduler (untyped), made in run()
        self._stopping = threading.Event()
        self._started = threading.Event()
        self.inflight = InflightRun()
        self._state_lock = threading.Lock()
        self._run_lock = threading.Lock()  # held by the worker for a whole run (measure + write)
        self._stop_thread: threading.Thread | None = None
        self._stop_timer: threading.Timer | None = None
        self.stop_reason: str | None = None
        self.started_at = utc_now()
        self.runs = 0
        self.burst_runs = 0
        self.abandoned = 0
        self.totals: Counter[str] = Counter()
        self.last_run: dict[str, Any] | None = None
        self.measuring: dict[str, Any] | None = None
        self.clean_exit = True

    # -- scheduling --------------------------------------------------------------------------
    def _make_scheduler(self):
        return make_scheduler(self.opts.interval, self._on_missed, self._on_error, self._on_max_instances)

    def _add_jobs(self, now: datetime) -> None:
        add_jobs(self.scheduler, self.groups, self.opts, now, self._group_job, self._write_state)

    def _on_missed(self, event) -> None:
        if event.job_id == "heartbeat":
            return
        if event.job_id.startswith("burst-"):
            with self._planner_lock:
                self.planner.take(event.job_id)  # it will not run: free its share of the burst budget
        late = (utc_now() - event.scheduled_run_time).total_seconds()
        self.log.warning(
            "missed run %s scheduled at %s (%.0fs late, beyond the %ss grace: host suspended or "
            "overloaded); the next one is on schedule",
            event.job_id,
            rfc3339(event.scheduled_run_time),
            late,
            misfire_grace(self.opts.interval),
        )

    def _on_error(self, event) -> None:
        exc = event.exception
        self.faults.problem(
            "run",
            f"{type(exc).__name__}:{exc}",
            f"run {event.job_id} failed: {type(exc).__name__}: {exc} (the daemon keeps going; "
            "use --log-level debug for the traceback)",
            logging.ERROR,
        )
        if event.traceback:
            self.log.debug("traceback of %s:\n%s", event.job_id, event.traceback)

    def _on_max_instances(self, event) -> None:
        self.log.warning(
            "skipped run %s: its previous run has not finished yet (runs take longer than the interval?)", event.job_id
        )

    # -- jobs --------------------------------------------------------------------------------
    def _group_job(self, group: str) -> None:
        if self._stopping.is_set():
            return
        targets = self.groups[group] + self.canaries
        self._run(targets, {"trigger": "interval", "group": group})

    def _burst_job(self, job_id: str) -> None:
        if self._stopping.is_set():
            return
        with self._planner_lock:
            job = self.planner.take(job_id)
        if job is None or not job.names:
            return
        targets = [self.by_name[n] for n in sorted(job.names)]
        targets += [c for c in self.canaries if c.name not in job.names]
        self._run(
            targets,
            {
                "trigger": "burst",
                "burst": {"index": job.index, "of": job.of, "after_s": job.after_s},
                "changes": dict(sorted(job.changes.items())),
            },
        )

    def _run(self, targets, schedule_info: dict[str, Any]) -> None:
        with self._run_lock:
            if not self._stopping.is_set():
                self._run_locked(targets, schedule_info)

    def _run_locked(self, targets, schedule_info: dict[str, Any]) -> None:
        label = schedule_info.get("group") or (
            f"burst {schedule_info['burst']['index']}/{schedule_info['burst']['of']}"
            f" of {', '.join(sorted(schedule_info['changes']))}"
        )
        self.sink.write_pending()  # earlier unwritten lines first, so the files stay in order
        self.measuring = {"since": rfc3339(utc_now()), "what": label, "targets": len(targets)}
        self.log.info("measuring %s: %d targets", label, len(targets))
        try:
            summary = self.inflight.measure(self.cfg, targets)
        finally:
            self.measuring = None
        if summary is None:
            self.abandoned += 1
            self.log.info("abandoned the in-flight run %s (stopping); nothing of it was written", label)
            return
        self.runs += 1
        if schedule_info["trigger"] == "burst":
            self.burst_runs += 1
        counts = Counter(r.verdict.status if r.verdict else "inconclusive" for r in summary.results)
        for rec in summary.records:
            rec["schedule"] = {**schedule_info, "daemon_run": self.runs}
        self.sink.store(summary.records)
        self.faults.clear("run", "measurement runs work again")
        check_vantage(self.faults, summary.results)
        self.totals.update(counts)
        self.last_run = {
            "at": rfc3339(summary.results[0].measured_at) if summary.results else rfc3339(utc_now()),
            "finished_at": rfc3339(utc_now()),
            "what": label,
            "trigger": schedule_info["trigger"],
            "run_id": summary.run_id,
            "measurements": len(summary.records),
            "counts": dict(counts),
            "elapsed_s": round(summary.elapsed_s, 2),
        }
        self.log.info(
            "measured %s in %.1fs: %s",
            label,
            summary.elapsed_s,
            ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        )
        self._plan_bursts(summary.results)
        self._write_state()
        if self.opts.after_run is not None:
            self.opts.after_run()
        if self.opts.max_runs is not None and self.runs >= self.opts.max_runs:
            self.request_stop(f"--max-runs {self.opts.max_runs} reached")

    # -- bursts ------------------------------------------------------------------------------
    def _plan_bursts(self, results) -> None:
        if not self.opts.bursts:
            return
        statuses = [(r.target.name, r.verdict.status) for r in results if r.verdict and not r.target.is_canary]
        with self._planner_lock:
            plan = self.planner.observe(statuses, utc_now())
        if plan.changes:
            planned = sorted({n for j in plan.new_jobs for n in j.names})
            self.log.info(
                "status change: %s%s",
                ", ".join(f"{n} {c}" for n, c in sorted(plan.changes.items())),
                f"; re-measuring after {', '.join(f'{d:g}s' for d in self.opts.bursts)}" if planned else "",
            )
        if plan.dropped:
            self.log.warning(
                "burst budget full (%d re-measurements pending): no bursts for %s",
                self.opts.max_pending_bursts,
                ", ".join(plan.dropped),
            )
        if self.scheduler is None or self._stopping.is_set():
            return
        replace_burst_jobs(self.scheduler, plan, self._burst_job, self.opts.interval)

    # -- state -------------------------------------------------------------------------------
    def state(self, status: str = "running") -> dict[str, Any]:
        next_runs = next_run_times(self.scheduler)
        with self._planner_lock:
            pending = self.planner.pending
        return {
            "schema": STATE_SCHEMA,
            "status": status,
            "pid": os.getpid(),
            "started_at": rfc3339(self.started_at),
            "updated_at": rfc3339(utc_now()),
            "interval_s": self.opts.interval,
            "jitter_s": effective_jitter(self.opts.interval, self.opts.jitter),
            "bursts_s": list(self.opts.bursts),
            "heartbeat_s": self.opts.heartbeat,
            "groups": sorted(self.groups),
            "targets": len(self.by_name),
            "runs": self.runs,
            "burst_runs": self.burst_runs,
            "abandoned_runs": self.abandoned,
            "last_run": self.last_run,
            "measuring": self.measuring,
            "next_run": min(next_runs.values()) if next_runs and status == "running" else None,
            "next_runs": next_runs if status == "running" else {},
            "pending_bursts": pending,
            "totals": dict(self.totals),
            "buffered": self.spool.buffered,
            "dropped": self.spool.dropped,
            "faults": self.faults.snapshot(),
        }

    def _write_state(self, status: str = "running") -> None:
        with self._state_lock:
            try:
                write_state(self.results_dir, self.state(status))
            except OSError as exc:
                # The same problem as an unwritable results file: one fault, one line.
                reason = exc.strerror or str(exc)
                self.faults.problem(
                    "results",
                    reason,
                    f"results: cannot write {self.results_dir / STATE_NAME}: {reason}; measurements "
                    f"are kept in memory (at most {self.spool.max_buffered}) until it clears",
                )
                return
        if "results" in self.faults.active and not self.spool.buffered:
            self.faults.clear("results", f"results: {self.results_dir} takes writes again")

    # -- lifecycle ---------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Stop gracefully (from any thread, or the signal handler). Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.stop_reason = reason
        busy = self.measuring is not None
        self.log.info(
            "stopping (%s)%s",
            reason,
            f": letting the in-flight run finish for up to {self.opts.stop_grace:g}s" if busy else "",
        )
        self._stop_timer = threading.Timer(self.opts.stop_grace, self.inflight.abandon)
        self._stop_timer.daemon = True
        self._stop_timer.start()
        # Never shut the scheduler down from the signal handler: the main thread may be inside the
        # scheduler holding its job-store lock. Never wait for jobs while holding that lock either
        # (shutdown(wait=True) does, and a job touching the scheduler would deadlock): the main
        # thread waits for the run in flight after the scheduler loop has returned.
        self._stop_thread = threading.Thread(target=self._shutdown, name="reachprobe-stop", daemon=True)
        self._stop_thread.start()

    def _shutdown(self) -> None:
        self._started.wait(10)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _on_signal(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self._stopping.is_set():
            self.log.info("%s again: abandoning the in-flight run now", name)
            self.inflight.abandon()
            return
        self.request_stop(name)

    def run(self) -> int:
        """Run until stopped. Returns the exit code (0)."""
        from apscheduler.events import EVENT_SCHEDULER_STARTED

        if self.log.getEffectiveLevel() > logging.DEBUG:
            # Our listeners log missed/failed runs in one line; APScheduler would add a traceback.
            logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        self.scheduler = self._make_scheduler()
        self.scheduler.add_listener(lambda _e: self._started.set(), EVENT_SCHEDULER_STARTED)
        now = utc_now()
        self._add_jobs(now)
        # Our handlers stay until the run in flight has ended: a second SIGTERM/SIGINT while it goes
        # on must abandon it (the default handlers would kill the process without a last line and
        # with the state file saying "running", or raise KeyboardInterrupt while the run goes on).
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._serve()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _serve(self) -> int:
        run_timer = None
        if self.opts.run_for:
            run_timer = threading.Timer(
                self.opts.run_for, self.request_stop, args=(f"--run-for {self.opts.run_for:g}s",)
            )
            run_timer.daemon = True
            run_timer.start()
        jitter = effective_jitter(self.opts.interval, self.opts.jitter)
        self.log.info(
            "daemon started: %d group(s) (%s), %d targets, every %gs + up to %gs jitter, bursts %s; results in %s",
            len(self.groups),
            ", ".join(sorted(self.groups)),
            len(self.by_name),
            self.opts.interval,
            jitter,
            ", ".join(f"{d:g}s" for d in self.opts.bursts) or "off",
            self.results_dir,
        )
        self._write_state()
        try:
            if not self._stopping.is_set():
                self.scheduler.start()  # blocks until shutdown
        finally:
            if run_timer is not None:
                run_timer.cancel()
            if self._stop_thread is not None:
                self._stop_thread.join(15)
        # Wait for the run in flight: it finishes within stop_grace or is cancelled then.
        self.clean_exit = self._run_lock.acquire(timeout=self.opts.stop_grace + 60)
        if self._stop_timer is not None:
            self._stop_timer.cancel()
        if not self.clean_exit:
            self.log.error(
                "the in-flight run did not stop within %gs of the grace period; exiting without it",
                self.opts.stop_grace + 60,
            )
        self.sink.write_pending()
        if self.spool.buffered:
            self.log.error(
                "results: %d measurement(s) could not be written before exit and are lost", self.spool.buffered
            )
        self._write_state("stopped")
        self.log.info("stopped: %d run(s) (%d burst), %d abandoned", self.runs, self.burst_runs, self.abandoned)
        return 0
