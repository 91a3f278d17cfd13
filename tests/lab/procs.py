"""Processes the lab runs: commands inside namespaces, the servers it spawned (found again from another
process through their namespace), and the probe's own command line."""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.addresses import REPO, REQUIRED_BINARIES, probe_cli


class LabError(RuntimeError):
    pass


def missing_binaries() -> list[str]:
    return [b for b in REQUIRED_BINARIES if shutil.which(b) is None]


@functools.cache
def helper_available() -> bool:
    """The probe under test has the test helper (module probe.control, command ``helper``).
    Feature-detected, so the lab works before and after the helper lands. Asked of the CLI itself:
    a bare ``find_spec('probe.control')`` can be answered by another checkout's editable install
    (setuptools' editable finder maps ``probe.*`` submodules to its own tree)."""
    return bool(probe_help("helper"))


def has_option(help_text: str, option: str) -> bool:
    """``option`` is one of the options a ``--help`` text lists (``--control`` is not
    ``--control-sni``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


@functools.cache
def probe_help(*command: str) -> str:
    """``<probe> COMMAND --help`` (empty if the command does not exist)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACHPROBE_")}
    env["PYTHONPATH"] = str(REPO)
    p = subprocess.run([*probe_cli(), *command, "--help"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=60, check=False)
    return p.stdout if p.returncode == 0 else ""


def _run(cmd: list[str], *, check: bool = True, timeout: float = 15, input: str | None = None
         ) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise LabError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p


def _ns_inode(ns: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return None


def _pid_in_ns(pid: int, ns_inode: int | None) -> bool:
    """True when pid is alive and lives in the network namespace with that inode."""
    try:
        return ns_inode is not None and os.stat(f"/proc/{pid}/ns/net").st_ino == ns_inode
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Proc:
    name: str
    ns: str
    pid: int
    cmd: list[str]
    log: str
    popen: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {"name": self.name, "ns": self.ns, "pid": self.pid, "cmd": self.cmd, "log": self.log}


def _rmdir_if_empty(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass


def _kill_proc(proc: Proc, timeout: float) -> None:
    ns_inode = _ns_inode(proc.ns)
    if proc.popen is not None:
        if proc.popen.poll() is None:
            proc.popen.terminate()
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(5)
        return
    # Not our child (state from another process): kill only if the pid still is that process,
    # living in the lab's namespace (a recycled pid elsewhere is never touched).
    if not _pid_in_ns(proc.pid, ns_inode):
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _pid_in_ns(proc.pid, ns_inode) and _pid_alive(proc.pid):
            os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_ns_pids(ns: str) -> None:
    """Kill whatever still runs inside a lab namespace (a hung probe, an orphaned helper): those
    are processes the lab started, in a namespace that only the lab uses."""
    if not Path("/run/netns", ns).exists():
        return
    ns_inode = _ns_inode(ns)
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 1.0)):
        p = _run(["ip", "netns", "pids", ns], check=False)
        pids = [int(x) for x in p.stdout.split() if x.isdigit() and int(x) != os.getpid()]
        pids = [pid for pid in pids if _pid_in_ns(pid, ns_inode)]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
