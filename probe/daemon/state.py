"""The daemon's state file (``<results>/.reachprobe-state.json``): its writer (atomic: tmp + rename)
and its reader, with the health judgement `reachprobe status --check` makes from it."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from probe.fileio import atomic_write_bytes
from probe.results import parse_rfc3339

STATE_NAME = ".reachprobe-state.json"
STATE_SCHEMA = "reachprobe-daemon-state/1"


def write_state(results_dir: Path, state: dict[str, Any]) -> None:
    """Atomically replace the daemon state file (tmp + rename; a FIFO or device there is never
    replaced). Raises OSError."""
    data = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()
    atomic_write_bytes(Path(results_dir) / STATE_NAME, data, 0o600)


def read_state(results_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(results_dir) / STATE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == STATE_SCHEMA else None


MIN_FREE = 64 * 1024  # below this the next lines will not fit: a full disk


def disk_status(results_dir: Path) -> dict:
    """Free space and read-only flag of the results filesystem, measured now: the daemon cannot
    update its state file on a full or read-only disk, so the state alone would look healthy."""
    try:
        st = os.statvfs(results_dir)
    except OSError as exc:
        return {"free_bytes": None, "read_only": None, "error": exc.strerror}
    return {"free_bytes": st.f_bavail * st.f_frsize, "read_only": bool(st.f_flag & os.ST_RDONLY)}


def health(
    state: dict | None, locked: bool, holder: int | None, now: datetime, disk: dict | None = None
) -> tuple[bool, str]:
    """Is a daemon alive and writing? (for `status --check` and the Docker HEALTHCHECK)."""
    if disk:
        if disk.get("read_only"):
            return False, "results filesystem is read-only"
        if disk.get("free_bytes") is not None and disk["free_bytes"] < MIN_FREE:
            return False, f"results disk full: No space left on device ({disk['free_bytes']} bytes free)"
    if state is None:
        return False, "no daemon state file (has the daemon ever run on this results directory?)"
    if state.get("status") != "running":
        return False, f"daemon {state.get('status')} (last update {state.get('updated_at')})"
    if not locked:
        return False, "daemon not running (its lock is free), though the state file says running"
    if holder and state.get("pid") and holder != state.get("pid"):
        return False, f"the lock is held by pid {holder}, not by the daemon (pid {state.get('pid')})"
    updated = parse_rfc3339(state.get("updated_at"))
    limit = 3 * float(state.get("heartbeat_s") or 60) + 60
    if updated is None or (now - updated).total_seconds() > limit:
        return False, f"state file stale: last update {state.get('updated_at')} (> {limit:.0f}s ago)"
    faults = state.get("faults") or {}
    for key in ("results", "buffer", "state", "run"):
        if key in faults:
            return False, f"fault: {faults[key]}"
    return True, "healthy"
