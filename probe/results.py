"""Results: append-only JSON Lines, one measurement per line, one file per UTC day.

Durability: every line is written with a single ``os.write`` on a descriptor opened with
``O_APPEND`` and then ``fsync``-ed, so a crash or kill can at worst leave a torn *final* line; no
earlier line is ever rewritten. Before appending, the writer checks whether the file ends in a
newline and, if a previous writer died mid-line, starts on a fresh line so the torn fragment stays
isolated (readers skip it and report it).

Files are created mode 0600: results say which sites a volunteer tested, so only the owner reads them.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from probe.records import SCHEMA

FILE_SUFFIX = ".jsonl"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(ts: datetime) -> str:
    """UTC RFC 3339 with millisecond precision and a 'Z' suffix."""
    ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def new_id() -> str:
    return uuid.uuid4().hex


def day_file(results_dir: Path, ts: datetime) -> Path:
    return results_dir / (ts.astimezone(timezone.utc).strftime("%Y-%m-%d") + FILE_SUFFIX)


class ResultsWriteError(Exception):
    """The results directory or file cannot be written (full disk, permissions...).

    Raised by ``ResultsSpool.flush``, it also says how far the flush got: ``written`` lines were
    written before the failure and ``unwritten`` were not (they stay in the spool)."""

    def __init__(self, message: str, *, written: int = 0, unwritten: int | None = None):
        super().__init__(message)
        self.written = written
        self.unwritten = unwritten


def prepare_results_dir(results_dir: str | Path) -> Path:
    """Create the results directory 0700 (or take group/other access away from an existing one we
    own: the repository ships ``results/`` 0755, git cannot store 0700), then prove a file can be
    created in it, so a read-only or full directory is found before anything is measured.
    Raises ResultsWriteError."""
    d = Path(results_dir)
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ResultsWriteError(f"cannot create results directory {d}: {exc.strerror}") from exc
    _tighten(d)
    try:
        fd, probe_path = tempfile.mkstemp(prefix=".reachprobe-write-check.", dir=d)
    except OSError as exc:
        raise ResultsWriteError(f"results directory {d} is not writable: {exc.strerror}") from exc
    try:
        os.write(fd, b"\n")  # a full disk refuses even one byte on most filesystems
    except OSError as exc:
        raise ResultsWriteError(f"results directory {d} is not writable: {exc.strerror}") from exc
    finally:
        os.close(fd)
        try:
            os.unlink(probe_path)
        except OSError:
            pass
    return d


def _tighten(d: Path) -> None:
    try:
        st = d.stat()
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(d, stat.S_IMODE(st.st_mode) & 0o700)
    except OSError:
        pass  # not ours, or a read-only filesystem: the write check says what matters


class ResultsWriter:
    """Appends result lines to ``<dir>/<UTC day>.jsonl``."""

    def __init__(self, results_dir: str | Path, *, fsync: bool = True):
        self.dir = Path(results_dir)
        self.fsync = fsync
        self.written = 0
        self._tightened = False

    def _prepare(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ResultsWriteError(f"cannot create results directory {self.dir}: {exc.strerror}") from exc
        if not self._tightened:  # results say which sites a volunteer tested: the owner's only
            _tighten(self.dir)
            self._tightened = True

    def append(self, record: dict[str, Any]) -> Path:
        """Append one measurement; returns the file written. Raises ResultsWriteError."""
        return self.append_many([record])

    def append_many(self, records: Iterable[dict[str, Any]]) -> Path:
        self._prepare()
        path: Path | None = None
        for rec in records:
            ts = parse_rfc3339(rec.get("measured_at")) or utc_now()
            path = day_file(self.dir, ts)
            line = (json.dumps(rec, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
            self._write_line(path, line)
            self.written += 1
        return path if path is not None else day_file(self.dir, utc_now())

    def _write_line(self, path: Path, line: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ResultsWriteError(f"cannot open {path}: {exc.strerror}") from exc
        size = None
        try:
            size = os.fstat(fd).st_size
            if size:
                with open(path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        line = b"\n" + line  # isolate a torn line left by a killed writer
            n = os.write(fd, line)
            if n != len(line):
                _cut_back(fd, size)
                # A regular file takes part of a write only when the disk (or quota) is full.
                raise ResultsWriteError(f"cannot write {path}: No space left on device (short write, {n} of "
                                        f"{len(line)} bytes; the partial line was cut off again)") \
                    from OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            # A full disk can take half a line: cut it off so later appends never bury a torn line
            # mid-file. Safe because only the lock holder appends to a results directory.
            if size is not None:
                _cut_back(fd, size)
            raise ResultsWriteError(f"cannot write {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)


class ResultsSpool:
    """The one way results are written (`reachprobe run` and the daemon): records are queued, then
    written in order; while the directory refuses them they stay in memory (bounded, oldest
    dropped first) for the next ``flush``."""

    def __init__(self, results_dir: Path, max_buffered: int = 5000, *, fsync: bool = True):
        self.dir = Path(results_dir)
        self.writer = ResultsWriter(self.dir, fsync=fsync)
        self.max_buffered = max(1, max_buffered)
        self.buffer: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self.last_path: Path | None = None
        self._lock = threading.Lock()

    def add(self, records: Iterable[dict[str, Any]]) -> int:
        """Queue records; returns how many old ones had to be dropped to stay in bounds."""
        dropped = 0
        with self._lock:
            for rec in records:
                self.buffer.append(rec)
                if len(self.buffer) > self.max_buffered:
                    self.buffer.popleft()
                    dropped += 1
            self.dropped += dropped
        return dropped

    def flush(self) -> int:
        """Write buffered records in order; returns how many were written. Raises ResultsWriteError
        (what could not be written stays buffered)."""
        n = 0
        with self._lock:
            while self.buffer:
                try:
                    self.last_path = self.writer.append(self.buffer[0])
                except ResultsWriteError as exc:
                    exc.written, exc.unwritten = n, len(self.buffer)
                    raise
                self.buffer.popleft()
                n += 1
        return n

    @property
    def buffered(self) -> int:
        return len(self.buffer)


def _cut_back(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass


def parse_rfc3339(value: Any) -> datetime | None:
    """A timestamp as results lines and state files write it; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(slots=True)
class ReadReport:
    """What a reader skipped, so callers can say so instead of silently losing lines."""

    files: int = 0
    lines: int = 0
    torn_final: list[str] = field(default_factory=list)  # "path" of files whose last line was torn
    bad_lines: list[str] = field(default_factory=list)  # "path:line" of undecodable lines elsewhere

    @property
    def skipped(self) -> int:
        return len(self.torn_final) + len(self.bad_lines)

    def summary(self) -> str:
        parts = []
        if self.torn_final:
            parts.append(f"skipped a torn final line in {len(self.torn_final)} file(s): {', '.join(self.torn_final)}")
        if self.bad_lines:
            parts.append(f"skipped {len(self.bad_lines)} undecodable line(s): {', '.join(self.bad_lines[:5])}")
        return "; ".join(parts)


def result_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expand files and directories into the sorted list of results files (*.jsonl)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*" + FILE_SUFFIX)))
        else:
            out.append(p)
    return out


def iter_results(paths: str | Path | Iterable[str | Path], report: ReadReport | None = None) -> Iterator[dict[str, Any]]:
    """Yield each measurement (a dict) from results files or directories.

    A line that does not parse is skipped and recorded in ``report``: as ``torn_final`` when it is the
    last line of its file (a writer killed mid-write), otherwise as ``bad_lines``.
    """
    report = report if report is not None else ReadReport()
    for path in result_files(paths):
        report.files += 1
        with open(path, "rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        last_index = len(lines) - 1
        if lines and lines[-1] == b"":
            last_index -= 1
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
            except ValueError:
                if i == last_index and not data.endswith(b"\n"):
                    report.torn_final.append(str(path))
                else:
                    report.bad_lines.append(f"{path}:{i + 1}")
                continue
            report.lines += 1
            yield rec


def make_record(
    *,
    run_id: str,
    measured_at: datetime,
    vantage: dict[str, Any],
    software_version: str,
    target: dict[str, Any],
    steps: dict[str, Any],
    verdict: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one results line of schema reachprobe/1 (the contract other tools rely on)."""
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "id": new_id(),
        "run_id": run_id,
        "measured_at": rfc3339(measured_at),
        "vantage": vantage,
        "software": {"name": "reachprobe", "version": software_version},
        "target": target,
        "steps": steps,
        "verdict": verdict,
    }
    if extra:
        rec.update(extra)
    return rec
