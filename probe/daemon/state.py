"""The daemon's state file (``<results>/.reachprobe-state.json``): its writer (atomic: tmp + rename)
and its reader, with the health judgement `reachprobe status --check` makes from it."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

STATE_NAME = ".reachprobe-state.json"
STATE_SCHEMA = "reachprobe-daemon-state/1"


def write_state(results_dir: Path, state: dict[str, Any]) -> None:
    """Atomically replace the daemon state file (tmp + rename). Raises OSError."""
    path = Path(results_dir) / STATE_NAME
    tmp = path.with_name(f"{STATE_NAME}.{os.getpid()}.tmp")
    data = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def read_state(results_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(results_dir) / STATE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == STATE_SCHEMA else None
