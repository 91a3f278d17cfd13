"""`reachprobe daemon`: continuous measurement. ``core`` holds the daemon (runs, bursts, stopping),
``options`` its options, ``scheduler`` its APScheduler wiring, ``inflight`` the run in flight that a
stop abandons, ``writes`` its results writing, ``faults`` its fault log and vantage diagnosis,
``state`` its state file (writer and reader). The scheduling arithmetic is in probe.schedule;
measuring is probe.runner's; writing is probe.results'."""

from probe.daemon.core import Daemon
from probe.daemon.faults import FaultLog, diagnose
from probe.daemon.options import DaemonOptions
from probe.daemon.state import STATE_NAME, STATE_SCHEMA, read_state, write_state

__all__ = ["STATE_NAME", "STATE_SCHEMA", "Daemon", "DaemonOptions", "FaultLog", "diagnose", "read_state", "write_state"]
