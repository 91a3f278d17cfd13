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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probe.records import SCHEMA
from probe.resultline import UNPARSED, is_future, parse_line

FILE_SUFFIX = ".jsonl"


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(ts: datetime) -> str:
    """UTC RFC 3339 with millisecond precision and a 'Z' suffix."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def new_id() -> str:
    return uuid.uuid4().hex


def day_file(results_dir: Path, ts: datetime) -> Path:
    return results_dir / (ts.astimezone(UTC).strftime("%Y-%m-%d") + FILE_SUFFIX)


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
                raise ResultsWriteError(
                    f"cannot write {path}: No space left on device (short write, {n} of "
                    f"{len(line)} bytes; the partial line was cut off again)"
                ) from OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
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


#: per-line details kept in a ReadReport; beyond this only the count grows (a file of garbage must not
#: turn into a report as large as itself)
MAX_DETAILS = 1000


@dataclass(slots=True)
class ReadReport:
    """What a reader skipped or read with a warning, so callers say so instead of losing lines silently.

    ``bad_lines`` holds ``"path:line: reason"`` (the first :data:`MAX_DETAILS`; ``bad_count`` counts
    all), ``torn_final`` the paths whose last line was torn by a writer stopped mid-line, and
    ``future`` one ``"path:line: …"`` note per file and newer schema version read as ``reachprobe/1``.
    """

    files: int = 0
    lines: int = 0
    torn_final: list[str] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    bad_count: int = 0
    future: list[str] = field(default_factory=list)
    _future_seen: set[tuple[str, str]] = field(default_factory=set, repr=False)

    @property
    def skipped(self) -> int:
        return len(self.torn_final) + self.bad_count

    def bad(self, path: str | Path, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad_lines) < MAX_DETAILS:
            self.bad_lines.append(f"{path}:{line}: {reason}")

    def future_schema(self, path: str | Path, line: int, schema: str) -> None:
        if (str(path), schema) not in self._future_seen:
            self._future_seen.add((str(path), schema))
            self.future.append(
                f"{path}:{line}: schema {schema!r} is not {SCHEMA!r}; read by its {SCHEMA} "
                f"fields (this and later lines of that file)"
            )

    def merge(self, other: ReadReport) -> None:
        self.files += other.files
        self.lines += other.lines
        self.torn_final.extend(other.torn_final)
        self.bad_lines.extend(other.bad_lines[: max(0, MAX_DETAILS - len(self.bad_lines))])
        self.bad_count += other.bad_count
        self.future.extend(other.future)

    def messages(self, limit: int = 20) -> list[str]:
        """One line per skipped line (``skipped path:line: reason``), at most ``limit`` of them, then the
        torn final lines and the schema warnings: what every command prints on stderr."""
        out = [f"skipped {b}" for b in self.bad_lines[:limit]]
        if self.bad_count > limit:
            out.append(f"skipped {self.bad_count - limit} more line(s)")
        out += [f"skipped the torn final line of {p} (a writer stopped mid-line)" for p in self.torn_final]
        out += [f"read with a warning: {f}" for f in self.future]
        return out

    def summary(self) -> str:
        parts = []
        if self.torn_final:
            parts.append(f"skipped a torn final line in {len(self.torn_final)} file(s): {', '.join(self.torn_final)}")
        if self.bad_count:
            parts.append(
                f"skipped {self.bad_count} bad line(s): {'; '.join(self.bad_lines[:5])}"
                + ("; …" if self.bad_count > 5 else "")
            )
        if self.future:
            parts.append(f"read {len(self.future)} file(s) with a newer schema: {'; '.join(self.future[:3])}")
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


def use_line(raw: bytes, path: str | Path, lineno: int, final: bool, report: ReadReport) -> dict[str, Any] | None:
    """The record of one raw line (without its newline), or None after noting in ``report`` why not.

    ``final``: the line is the file's last and has no newline; one that does not parse is then a torn
    line (a writer stopped mid-line), not a bad one."""
    if not raw.strip():
        return None
    rec, reason = parse_line(raw)
    if rec is None:
        assert reason is not None  # parse_line gives a reason with every refused line
        if final and reason.startswith(UNPARSED):
            report.torn_final.append(str(path))
        else:
            report.bad(path, lineno, reason)
        return None
    if is_future(rec):
        report.future_schema(path, lineno, rec["schema"])
    report.lines += 1
    return rec


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, raw line without newline, is_torn_candidate)``, streaming: memory is one line."""
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, 1):
            if raw.endswith(b"\n"):
                yield i, raw[:-1], False
            else:
                yield i, raw, True


def iter_results(
    paths: str | Path | Iterable[str | Path], report: ReadReport | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each usable measurement (a dict) from results files or directories, streaming.

    Every line goes through :func:`probe.resultline.parse_line`; what is skipped, and why, is recorded
    in ``report`` (see :class:`ReadReport`)."""
    report = report if report is not None else ReadReport()
    for path in result_files(paths):
        report.files += 1
        for i, raw, final in iter_lines(path):
            rec = use_line(raw, path, i, final, report)
            if rec is not None:
                yield rec


def read_tail(path: str | Path, max_bytes: int, report: ReadReport | None = None) -> list[dict[str, Any]]:
    """The usable records among the last ``max_bytes`` of a results file (the partial line the window
    starts in is dropped), each validated as :func:`iter_results` does."""
    report = report if report is not None else ReadReport()
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        fh.seek(start)
        data = fh.read()
        fh.seek(0)
        before = 0  # newlines before the window, for true line numbers (a streaming count)
        for _ in range(start // (1 << 20) + 1):
            chunk = fh.read(min(1 << 20, start - fh.tell()))
            if not chunk:
                break
            before += chunk.count(b"\n")
    lines = data.split(b"\n")
    first = 1
    if start:  # lines[0] is the rest of line before+1, cut by the window: dropped
        lines, first = lines[1:], before + 2
    final = not data.endswith(b"\n")
    if not final:
        lines.pop()  # the empty string after the last newline
    report.files += 1
    out = []
    for k, raw in enumerate(lines):
        rec = use_line(raw, path, first + k, final and k == len(lines) - 1, report)
        if rec is not None:
            out.append(rec)
    return out


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
