"""The daemon's options (`reachprobe daemon`'s flags): the schedule, bursts, stopping, buffering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class DaemonOptions:
    interval: float = 600.0
    jitter: float = 60.0
    bursts: tuple[float, ...] = (30.0, 120.0, 300.0)
    max_pending_bursts: int = 12
    stop_grace: float = 5.0
    max_runs: int | None = None  # stop after this many runs (interval and burst); for tests
    run_for: float | None = None  # stop after this many seconds; for tests
    max_buffered: int = 5000
    heartbeat: float = 60.0
    start_spread: float = 60.0
    after_run: Any = None  # called after each written run (`daemon --upload`); must not block for long
