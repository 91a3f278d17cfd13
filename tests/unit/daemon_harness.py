"""Subprocess harness for the daemon/lock/consent tests.

As a program (``python -m tests.unit.daemon_harness daemon --targets ...``, cwd = the repository) it
runs the reachprobe CLI the way the unit suite runs code in-process: with the loopback-only network
guard of ``tests/unit/conftest.py`` installed, and without the system resolver (whose servers are not
on loopback): only ``--resolver 127.0.0.1:PORT`` servers are asked.

As a module it gives the tests a process wrapper that collects log lines, a loopback HTTP server
whose answer can be switched (ok page, blockpage, no answer), and a targets-file writer.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


def _install_guard_and_run() -> None:
    import socket

    from tests.unit.conftest import _guard, _guarded_getaddrinfo, _real

    for name in _real:
        setattr(socket.socket, name, _guard(name))
    socket.getaddrinfo = _guarded_getaddrinfo  # address literals pass, names are refused

    import probe.cli.common as cli_common

    real_build_config = cli_common.build_config

    def build_config(o):
        cfg, targets = real_build_config(o)
        cfg.system_resolver = False
        return cfg, targets

    cli_common.build_config = build_config
    from probe.cli import main

    main(prog_name="reachprobe")


# ----------------------------------------------------------------------------------- processes
def clean_env(tmp_path: Path, consent: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACHPROBE_")}
    env.update(PYTHONPATH=str(REPO), REACHPROBE_CONFIG_DIR=str(tmp_path / "config"), PYTHONUNBUFFERED="1")
    if consent:
        env["REACHPROBE_CONSENT"] = "yes"
    env.update(extra)
    return env


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.unit.daemon_harness", *args]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cli_argv(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class Proc:
    """A reachprobe subprocess whose stderr lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.p = subprocess.Popen(cli_argv(*args), env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def matching(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        with self._cv:
            return [x for x in self.lines if rx.search(x)]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while len([x for x in self.lines if re.search(pattern, x)]) < count:
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self._reader.is_alive()):
                    return len([x for x in self.lines if re.search(pattern, x)]) >= count
                self._cv.wait(min(left, 0.2))
        return True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout)
        finally:
            self._reader.join(5)

    def log(self) -> str:
        with self._cv:
            return "\n".join(self.lines)

    def __enter__(self) -> "Proc":
        return self

    def __exit__(self, *exc) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        self._reader.join(5)
        if self.p.stdout:
            self.p.stdout.close()


# -------------------------------------------------------------------------------------- servers
OK_PAGE = b"<html><head><title>OK page</title></head><body>hello</body></html>"


class SwitchServer:
    """HTTP on 127.0.0.1 whose answer is switched by the test: mode 'ok' (200 page), 'blockpage'
    (Iran's blockpage), 'dead' (the connection is closed without a response)."""

    def __init__(self, mode: str = "ok"):
        from tests.unit.servers import IRAN_BLOCKPAGE

        self.mode = mode
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                outer.hits += 1
                if outer.mode == "dead":
                    self.close_connection = True
                    return
                body = IRAN_BLOCKPAGE.encode() if outer.mode == "blockpage" else OK_PAGE
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "SwitchServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_targets(path: Path, platforms: dict[str, list[dict]], canaries: list[dict]) -> Path:
    """A targets file; each target dict has name, kind and urls/endpoints (loopback only)."""
    import yaml

    from urllib.parse import urlsplit

    for t in [t for ts in platforms.values() for t in ts] + canaries:
        hosts = [urlsplit(u).hostname for u in t.get("urls", [])]
        hosts += [e.rsplit(":", 1)[0] for e in t.get("endpoints", [])]
        for host in hosts:  # loopback literals, or .test names served by a loopback resolver
            assert host == LOOPBACK or (host or "").endswith(".test"), f"non-loopback target {host!r}"
    doc = {"version": 1, "platforms": {p: {"targets": ts} for p, ts in platforms.items()}, "canaries": canaries}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


if __name__ == "__main__":
    _install_guard_and_run()
