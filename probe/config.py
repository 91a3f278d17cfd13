"""Where the probe keeps its own state (vantage id, consent), and defaults from the environment."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from probe.fileio import atomic_write_bytes


def config_dir() -> Path:
    """$REACHPROBE_CONFIG_DIR, else $XDG_CONFIG_HOME/reachprobe, else ~/.config/reachprobe."""
    if os.environ.get("REACHPROBE_CONFIG_DIR"):
        return Path(os.environ["REACHPROBE_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "reachprobe"


def vantage_id() -> str:
    """A random id made once per installation. Deliberately not the hostname or an address: results
    get shared, and neither must point back at the volunteer."""
    path = config_dir() / "vantage_id"
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except OSError:
        pass
    vid = "v-" + uuid.uuid4().hex[:12]
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(path, (vid + "\n").encode(), 0o600)
    except OSError:
        pass  # read-only home: the id is then per run, which only weakens grouping, never safety
    return vid
