"""The daemon's results writing: lines go through the long-lived results spool, which keeps in memory
what the directory refuses (bounded, oldest dropped first); one fault line when writing stops or the
buffer fills, one when it works again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from probe.daemon.faults import FaultLog
from probe.results import ResultsSpool, ResultsWriteError


class ResultsSink:
    def __init__(self, spool: ResultsSpool, faults: FaultLog, results_dir: Path) -> None:
        self.spool = spool
        self.faults = faults
        self.results_dir = results_dir

    def store(self, records: list[dict[str, Any]]) -> None:
        dropped = self.spool.add(records)
        if dropped:
            self.faults.problem(
                "buffer",
                "full",
                f"results: {self.spool.max_buffered} unwritten measurements in "
                "memory, the limit: dropping the oldest ones until the results directory "
                "takes writes again",
            )
        self.write_pending()

    def write_pending(self) -> None:
        if not self.spool.buffered:
            return
        try:
            n = self.spool.flush()
        except ResultsWriteError as exc:
            cause = exc.__cause__
            kind = getattr(cause, "strerror", None) or str(exc)
            self.faults.problem(
                "results",
                kind,
                f"results: {exc}; keeping {self.spool.buffered} measurement(s) in memory "
                f"(at most {self.spool.max_buffered}) and retrying before every run",
            )
            return
        if "results" in self.faults.active:
            dropped = self.spool.dropped
            self.faults.clear(
                "results",
                f"results: {self.results_dir} takes writes again; wrote {n} buffered "
                f"measurement(s)" + (f", {dropped} were dropped while it did not" if dropped else ""),
            )
            self.faults.clear("buffer", "results: memory buffer no longer full")
            self.spool.dropped = 0
