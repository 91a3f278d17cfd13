"""One measuring process per results directory: an ``fcntl.flock`` lock file.

``reachprobe run`` (from cron) and ``reachprobe daemon`` take the same lock, so overlapping runs
never interleave lines or double the traffic. The lock lives next to the results, in
``<results>/.reachprobe.lock`` (readers only look at ``*.jsonl``), so it also works between users
(root running ``reachprobe run`` by hand while the service runs). If the results directory cannot
hold it (not creatable yet, read-only), the lock falls back to the config directory, keyed by the
results directory's absolute path.

``flock`` locks belong to the open file and die with the process: a lock file left by a crashed or
killed run never blocks the next one, whatever pid it still contains. The file is never deleted
(deleting a flock'ed file lets two processes lock two different inodes).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from probe.config import config_dir

LOCK_NAME = ".reachprobe.lock"


class LockBusy(Exception):
    """Another process holds the lock."""

    def __init__(self, path: Path, holder_pid: int | None):
        self.path = path
        self.holder_pid = holder_pid
        who = f"pid {holder_pid}" if holder_pid else "another process"
        super().__init__(f"{who} holds {path}")


class LockError(Exception):
    """The lock file cannot be created anywhere."""


def fallback_lock_path(results_dir: str | Path) -> Path:
    key = hashlib.sha256(str(Path(results_dir).resolve()).encode()).hexdigest()[:16]
    return config_dir() / "locks" / f"results-{key}.lock"


def _open_lock(path: Path) -> int:
    """A read-only descriptor (flock needs no write access, and holding no writable descriptor for
    months lets an administrator remount the results filesystem read-only)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)


def read_holder(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


class RunLock:
    """``with RunLock(results_dir):`` ... raises LockBusy when taken, LockError when impossible."""

    def __init__(self, results_dir: str | Path):
        self.results_dir = Path(results_dir)
        self.path: Path | None = None
        self._fd: int | None = None

    def candidates(self) -> list[Path]:
        return [self.results_dir / LOCK_NAME, fallback_lock_path(self.results_dir)]

    def acquire(self) -> RunLock:
        errors = []
        for path in self.candidates():
            try:
                fd = _open_lock(path)
            except OSError as exc:
                errors.append(f"{path}: {exc.strerror or exc}")
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockBusy(path, read_holder(path)) from None
            except OSError as exc:
                os.close(fd)
                errors.append(f"{path}: {exc.strerror or exc}")
                continue
            self._fd, self.path = fd, path
            self._write_pid()
            return self
        raise LockError("cannot create a lock file (" + "; ".join(errors) + ")")

    def _write_pid(self) -> None:
        assert self.path is not None
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, f"{os.getpid()}\n".encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # read-only or full filesystem: the pid is only for the message

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(results_dir: str | Path) -> tuple[bool, int | None]:
    """Is some process holding the lock of this results directory? (for ``reachprobe status``).

    Probes with a shared, non-blocking lock that is dropped at once; never creates a file.
    """
    for path in RunLock(results_dir).candidates():
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, read_holder(path)
        except OSError:
            continue
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    return False, None
