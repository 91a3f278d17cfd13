"""The volunteer side's upload state, in ``<results>/.upload/``:

* ``outbox/<id>.rpb``: signed bundles not yet acknowledged (written atomically before the ledger moves on);
* ``ledger.json``: how far each results file is packed, and which bundle ids the collector acknowledged;
* ``rejected/``: bundles the collector refused for good (kept, with the reason in the ledger).

Packing never loses or repeats a line across crashes: a bundle file is the durable record of the lines
it holds, so on start the packed offsets are the maximum of the ledger's and of every bundle's source
range, and a repacked range gives the same bytes, hence the same bundle id. Results files are never
touched; a bundle file is removed only after the ledger records its acknowledgement.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from probe import __version__
from probe.collect.bundle import build, read_manifest

UPLOAD_DIR = ".upload"
LEDGER = "ledger.json"
SUFFIX = ".rpb"
MAX_LINES = 2000
MAX_LINES_BYTES = 8 * 1024 * 1024  # below the collector's default decompressed cap (32 MiB)


class UploadBusy(Exception):
    """Another upload holds this results directory's upload lock."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass
class Ledger:
    results_dir: Path
    offsets: dict[str, int] = field(default_factory=dict)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock_fd: int | None = None

    # -- paths ---------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return self.results_dir / UPLOAD_DIR

    @property
    def outbox(self) -> Path:
        return self.dir / "outbox"

    @property
    def rejected_dir(self) -> Path:
        return self.dir / "rejected"

    # -- state ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, results_dir: str | Path, *, lock: bool = True) -> Ledger:
        led = cls(Path(results_dir))
        for d in (led.dir, led.outbox, led.rejected_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        if lock:
            fd = os.open(led.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UploadBusy(f"another upload is running on {results_dir}") from None
            led._lock_fd = fd
        led._load()
        return led

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _load(self) -> None:
        try:
            data = json.loads((self.dir / LEDGER).read_text())
        except FileNotFoundError:
            data = {}
        except ValueError as exc:
            raise ValueError(f"{self.dir / LEDGER}: not valid JSON ({exc}); move it aside to start over") from None
        self.offsets = {str(k): int(v) for k, v in (data.get("offsets") or {}).items()}
        self.sent = dict(data.get("sent") or {})
        self.rejected = dict(data.get("rejected") or {})
        for path in self.pending():  # a bundle written before a crash that kept the ledger behind
            src = _source(path)
            if src and src.get("file"):
                self.offsets[src["file"]] = max(self.offsets.get(src["file"], 0), int(src.get("end", 0)))
        for info in self.sent.values():
            if info.get("file"):
                self.offsets[info["file"]] = max(self.offsets.get(info["file"], 0), int(info.get("end", 0)))

    def save(self) -> None:
        data = {
            "version": 1,
            "offsets": dict(sorted(self.offsets.items())),
            "sent": self.sent,
            "rejected": self.rejected,
            "updated_at": _now(),
        }
        write_atomic(self.dir / LEDGER, json.dumps(data, indent=1).encode())

    def pending(self) -> list[Path]:
        """Bundles waiting for an acknowledgement, oldest first."""
        if not self.outbox.is_dir():
            return []
        files = [p for p in self.outbox.iterdir() if p.suffix == SUFFIX]
        return sorted(files, key=lambda p: (_source(p) or {}).get("seq", 0))

    def unpacked_bytes(self) -> int:
        total = 0
        for f in sorted(self.results_dir.glob("*.jsonl")):
            try:
                total += max(0, f.stat().st_size - self.offsets.get(f.name, 0))
            except OSError:
                pass
        return total

    # -- transitions ---------------------------------------------------------------------------
    def mark_sent(self, path: Path, answer: dict[str, Any]) -> None:
        manifest = read_manifest(path.read_bytes())[0]
        src = manifest.get("source") or {}
        self.sent[manifest["id"]] = {
            "at": _now(),
            "lines": manifest.get("lines"),
            "file": src.get("file"),
            "end": src.get("end"),
            "status": answer.get("status"),
        }
        self.save()  # the acknowledgement is on disk before the bundle goes
        path.unlink(missing_ok=True)

    def mark_rejected(self, path: Path, status: int, reason: str) -> None:
        bid = path.stem
        self.rejected[bid] = {"at": _now(), "http_status": status, "reason": reason[:500]}
        os.replace(path, self.rejected_dir / path.name)
        self.save()

    # -- packing -------------------------------------------------------------------------------
    def pack(
        self, key: Ed25519PrivateKey, *, max_lines: int = MAX_LINES, max_bytes: int = MAX_LINES_BYTES
    ) -> list[Path]:
        """Pack every complete, not yet packed results line into signed bundles in the outbox."""
        made: list[Path] = []
        seq = max([int((_source(p) or {}).get("seq", 0)) for p in self.pending()] + [len(self.sent)]) + 1
        for f in sorted(self.results_dir.glob("*.jsonl")):
            start = self.offsets.get(f.name, 0)
            try:
                with open(f, "rb") as fh:
                    fh.seek(start)
                    data = fh.read()
            except OSError:
                continue
            data = data[: data.rfind(b"\n") + 1]  # complete lines only: a line being written waits
            if not data:
                continue
            chunk: list[bytes] = []
            vantages: list[str] = []
            size = 0
            pos = start
            chunk_start = start
            for raw in data.splitlines(keepends=True):
                line_end = pos + len(raw)
                rec = _parse(raw)
                if rec is not None:
                    chunk.append(raw if raw.endswith(b"\n") else raw + b"\n")
                    size += len(raw)
                    vid = (rec.get("vantage") or {}).get("id")
                    if isinstance(vid, str):
                        vantages.append(vid)
                pos = line_end
                if len(chunk) >= max_lines or size >= max_bytes:
                    made.append(self._write_bundle(key, chunk, vantages, f.name, chunk_start, pos, seq))
                    seq += 1
                    chunk, vantages, size, chunk_start = [], [], 0, pos
            if chunk:
                made.append(self._write_bundle(key, chunk, vantages, f.name, chunk_start, pos, seq))
                seq += 1
            self.offsets[f.name] = pos
            self.save()
        return made

    def _write_bundle(self, key, chunk, vantages, name, start, end, seq) -> Path:
        b = build(
            b"".join(chunk),
            len(chunk),
            key,
            vantages=vantages,
            source={"file": name, "start": start, "end": end, "seq": seq},
            software=f"reachprobe {__version__}",
        )
        path = self.outbox / f"{b.id}{SUFFIX}"
        if b.id not in self.sent:
            write_atomic(path, b.data)
        return path


def _parse(raw: bytes) -> dict[str, Any] | None:
    """A results line, or None for a blank or torn one (left behind by a killed writer)."""
    if not raw.strip():
        return None
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("id"), str) else None


def _source(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8 + 16 * 1024)
        return read_manifest(head + b"\0" * 64)[0].get("source")
    except Exception:  # noqa: BLE001 - a half-written or foreign file: ignored, never fatal
        return None


def status(results_dir: str | Path) -> dict[str, Any] | None:
    """What is pending upload (for `reachprobe status`); None when upload was never used here."""
    d = Path(results_dir) / UPLOAD_DIR
    if not d.is_dir():
        return None
    try:
        led = Ledger.open(results_dir, lock=False)
    except (OSError, ValueError) as exc:  # status must still answer; the upload itself says what to do
        return {
            "pending_bundles": len(list((d / "outbox").glob("*" + SUFFIX))),
            "pending_lines": 0,
            "unpacked_bytes": 0,
            "sent_bundles": 0,
            "rejected_bundles": 0,
            "last_sent_at": None,
            "error": str(exc),
        }
    pending = led.pending()
    lines = 0
    for p in pending:
        try:
            lines += int(read_manifest(p.read_bytes())[0].get("lines", 0))
        except Exception:  # noqa: BLE001
            pass
    last = max((v.get("at", "") for v in led.sent.values()), default=None)
    return {
        "pending_bundles": len(pending),
        "pending_lines": lines,
        "unpacked_bytes": led.unpacked_bytes(),
        "sent_bundles": len(led.sent),
        "rejected_bundles": len(led.rejected),
        "last_sent_at": last,
    }
