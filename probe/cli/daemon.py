"""`reachprobe daemon` (continuous monitoring) and `reachprobe status` (what it is doing).

Exit codes (probe.cli.common.ExitCode): 0 stopped cleanly (SIGTERM, SIGINT, --max-runs, --run-for) /
status: healthy; 1 cannot start (daemon), unhealthy or no daemon (status --check); 2 bad
configuration, or no consent; 3 another reachprobe already measures into this results directory.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import click

from probe.cli import common  # common.build_config is looked up at call time (the test harness wraps it)
from probe.cli.common import ExitCode, acquire_lock_or_exit, common_run_options, consent_option, fail, require_consent
from probe.collect.commands import make_options, upload_hook, upload_options
from probe.daemon.state import disk_status, health, read_state
from probe.results import ReadReport, parse_rfc3339, read_tail


def _duration(_ctx, param, value):
    from probe.schedule import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _bursts(_ctx, param, value):
    from probe.schedule import parse_bursts

    try:
        return parse_bursts(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def setup_logging(level: str) -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    fmt = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    fmt.converter = time.gmtime  # UTC throughout
    handler.setFormatter(fmt)
    logger = logging.getLogger("reachprobe")
    logger.handlers[:] = [handler]
    logger.setLevel(getattr(logging, level.upper()))
    logger.propagate = False
    if level.upper() == "DEBUG":
        aps = logging.getLogger("apscheduler")
        aps.handlers[:] = [handler]
        aps.setLevel(logging.DEBUG)
    return logging.getLogger("reachprobe.daemon")


@click.command("daemon")
@common_run_options
@consent_option
@click.option(
    "--interval",
    default="10m",
    show_default=True,
    callback=_duration,
    help="Time between two runs of a platform group (e.g. 600, 10m, 1h).",
)
@click.option(
    "--jitter",
    default="60s",
    show_default=True,
    callback=_duration,
    help="Random delay added to each run (capped at half the interval), so probes do not run in lockstep.",
)
@click.option(
    "--burst",
    "bursts",
    default="30s,2m,5m",
    show_default=True,
    callback=_bursts,
    help="When a target flips between ok and blocked, re-measure it after these delays ('off' disables).",
)
@click.option(
    "--max-bursts",
    type=click.IntRange(0, 1000),
    default=12,
    show_default=True,
    help="At most this many burst re-measurements pending at once (bounds the extra load).",
)
@click.option(
    "--stop-grace",
    default="5s",
    show_default=True,
    callback=_duration,
    help="On SIGTERM/SIGINT, let the run in flight finish for this long, then abandon it.",
)
@click.option(
    "--buffer",
    "max_buffered",
    type=click.IntRange(1, 10_000_000),
    default=5000,
    show_default=True,
    help="Measurements kept in memory while the results directory cannot be written.",
)
@click.option(
    "--max-runs",
    type=click.IntRange(1),
    default=None,
    help="Stop (exit 0) after this many runs, bursts included. For tests and smoke checks.",
)
@click.option(
    "--run-for", default=None, callback=_duration, help="Stop (exit 0) after this long. For tests and smoke checks."
)
@click.option(
    "--heartbeat",
    default="60s",
    show_default=True,
    callback=_duration,
    hidden=True,
    help="How often the status file is refreshed between runs.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default=lambda: os.environ.get("REACHPROBE_LOG_LEVEL", "info"),
    show_default="info",
    help="Log verbosity (to stderr, UTC timestamps). [env REACHPROBE_LOG_LEVEL]",
)
@click.option("--upload", "upload", is_flag=True, help="After each run, upload new results to --collector.")
@upload_options
def daemon_cmd(
    consent_yes,
    interval,
    jitter,
    bursts,
    max_bursts,
    stop_grace,
    max_buffered,
    max_runs,
    run_for,
    heartbeat,
    log_level,
    upload,
    collector,
    proxy,
    upload_retries,
    upload_ca_bundle,
    **o,
) -> None:
    """Measure continuously: every platform group on an interval with jitter, with burst
    re-measurement when a target flips between ok and blocked.

    Stop with SIGTERM or Ctrl-C (exit 0). Exit codes: 0 stopped cleanly, 1 cannot start,
    2 bad configuration or no consent, 3 another reachprobe holds this results directory.
    """
    from probe.daemon import Daemon, DaemonOptions  # heavy (APScheduler, the runner): not for --help

    if interval < 1:
        raise click.BadParameter("must be at least 1s", param_hint="--interval")
    logger = setup_logging(log_level)
    cfg, targets = common.build_config(o)
    require_consent(consent_yes)
    lock = acquire_lock_or_exit(cfg.results_dir)
    opts = DaemonOptions(
        interval=interval,
        jitter=jitter,
        bursts=bursts,
        max_pending_bursts=max_bursts,
        stop_grace=stop_grace,
        max_runs=max_runs,
        run_for=run_for,
        max_buffered=max_buffered,
        heartbeat=max(0.5, heartbeat or 60.0),
        after_run=upload_hook(cfg.results_dir, make_options(collector, proxy, upload_retries, upload_ca_bundle), logger)
        if upload
        else None,
    )
    daemon = Daemon(cfg, targets, opts, logger=logger)
    try:
        code = daemon.run()
    finally:
        lock.release()
    if not daemon.clean_exit:
        logging.shutdown()
        os._exit(code)  # a worker thread is stuck in a system call: do not wait for it at exit
    sys.exit(code)


# ------------------------------------------------------------------------------------- status
def _ago(ts: str | None, now: datetime) -> str:
    t = parse_rfc3339(ts)
    if t is None:
        return "-"
    secs = (now - t).total_seconds()
    word = "ago" if secs >= 0 else "from now"
    secs = abs(secs)
    if secs < 120:
        human = f"{secs:.0f}s"
    elif secs < 7200:
        human = f"{secs / 60:.0f}m"
    elif secs < 172800:
        human = f"{secs / 3600:.1f}h"
    else:
        human = f"{secs / 86400:.1f}d"
    return f"{ts} ({human} {word})"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def results_usage(results_dir: Path) -> dict:
    files = sorted(results_dir.glob("*.jsonl"))
    total = 0
    for p in results_dir.iterdir() if results_dir.is_dir() else []:
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return {"files": len(files), "bytes": total, "newest": files[-1].name if files else None}


def last_run_from_results(results_dir: Path, report: ReadReport | None = None) -> dict | None:
    """Without daemon state (cron use): the last run in the newest results file (its tail only);
    lines skipped there are noted in ``report``."""
    files = sorted(results_dir.glob("*.jsonl"))
    if not files:
        return None
    try:
        recs = read_tail(files[-1], 512 * 1024, report)
    except OSError:
        return None
    if not recs:
        return None
    run_id = recs[-1].get("run_id")
    same = [r for r in recs if r.get("run_id") == run_id]
    return {
        "at": min(r.get("measured_at", "") for r in same),
        "run_id": run_id,
        "measurements": len(same),
        "counts": dict(Counter(r.get("verdict", {}).get("status", "?") for r in same)),
        "what": "run",
    }


@click.command("status")
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False),
    show_default=True,
    default=lambda: os.environ.get("REACHPROBE_RESULTS", "results"),
    help="Results directory of the daemon or cron runs. [env REACHPROBE_RESULTS]",
)
@click.option("--check", is_flag=True, help="Exit 1 unless a daemon is running and writing results (healthcheck).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(results_dir: str, check: bool, as_json: bool) -> None:
    """Show the last run, the next run, counts per status, and the size of the results."""
    from probe.collect.ledger import status as upload_status
    from probe.lock import is_locked

    path = Path(results_dir)
    if not path.is_dir():
        fail(f"{results_dir}: no such results directory", ExitCode.FAILED)
    now = datetime.now(UTC)
    state = read_state(path)
    locked, holder = is_locked(path)
    disk = disk_status(path)
    ok, why = health(state, locked, holder, now, disk)
    if check and not as_json:
        click.echo(f"reachprobe: {why}", err=not ok)
        sys.exit(ExitCode.OK if ok else ExitCode.FAILED)
    usage = results_usage(path)
    report = ReadReport()
    last = (state or {}).get("last_run") or last_run_from_results(path, report)
    for msg in report.messages():
        click.echo(f"reachprobe: warning: {msg}", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "healthy": ok,
                    "reason": why,
                    "locked": locked,
                    "lock_pid": holder,
                    "state": state,
                    "last_run": last,
                    "results": usage,
                    "disk": disk,
                    "upload": upload_status(path),
                },
                indent=1,
                sort_keys=True,
            )
        )
        sys.exit(ExitCode.OK if ok or not check else ExitCode.FAILED)
    lines = []
    if state is None:
        lines.append(f"daemon:     none (no state file){f'; a run holds the lock (pid {holder})' if locked else ''}")
    else:
        running = ok or (state.get("status") == "running" and locked)
        lines.append(
            f"daemon:     {'running' if running else state.get('status', '?')} (pid {state.get('pid')}, "
            f"since {state.get('started_at')}, every {state.get('interval_s'):g}s"
            f" + up to {state.get('jitter_s'):g}s jitter); {why}"
        )
        if state.get("measuring"):
            m = state["measuring"]
            lines.append(f"measuring:  {m.get('what')} ({m.get('targets')} targets) since {m.get('since')}")
    if last:
        counts = ", ".join(f"{k} {v}" for k, v in sorted((last.get("counts") or {}).items()))
        lines.append(
            f"last run:   {_ago(last.get('at'), now)}  {last.get('what', '')}: "
            f"{last.get('measurements')} measurements ({counts})"
        )
    else:
        lines.append("last run:   none yet")
    if state and state.get("status") == "running" and state.get("next_run"):
        nxt = state["next_run"]
        which = [k for k, v in (state.get("next_runs") or {}).items() if v == nxt]
        lines.append(f"next run:   {_ago(nxt, now)}  {', '.join(which)}")
        if state.get("pending_bursts"):
            lines.append(f"bursts:     {state['pending_bursts']} re-measurement(s) pending")
    else:
        lines.append("next run:   - (no daemon; cron runs are not known here)")
    if state and state.get("totals"):
        lines.append(
            "since start: "
            + ", ".join(f"{k} {v}" for k, v in sorted(state["totals"].items()))
            + f" ({state.get('runs')} runs, {state.get('burst_runs')} bursts)"
        )
    lines.append(
        f"results:    {path} — {usage['files']} file(s), {_size(usage['bytes'])}"
        + (f", newest {usage['newest']}" if usage["newest"] else "")
        + (f"; {_size(disk['free_bytes'])} free" if disk.get("free_bytes") is not None else "")
        + ("; READ-ONLY" if disk.get("read_only") else "")
    )
    up = upload_status(path)
    if up:
        lines.append(
            f"upload:     {up['pending_bundles']} bundle(s) pending ({up['pending_lines']} measurements), "
            f"{_size(up['unpacked_bytes'])} not yet packed, {up['sent_bundles']} sent, "
            f"{up['rejected_bundles']} rejected; last sent {up['last_sent_at'] or '-'}"
        )
    if state and state.get("buffered"):
        lines.append(f"buffered:   {state['buffered']} measurement(s) waiting to be written")
    for _key, msg in sorted(((state or {}).get("faults") or {}).items()):
        lines.append(f"fault:      {msg}")
    click.echo("\n".join(lines))
    sys.exit(ExitCode.OK if ok or not check else ExitCode.FAILED)
