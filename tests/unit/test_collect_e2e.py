"""End to end over real sockets: vantages -> `reachprobe upload` -> `reachprobe collector` -> SeaweedFS
(a real S3 server on 127.0.0.1) -> `analysis.load("s3://...")` on pandas and on Dask, compared with the
vantages' own results. Faults: kill -9 of the uploader and of the collector, the object store down, a 1 GB
body, a flood. SeaweedFS starts once for the module (~15 s)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import pandas as pd
import pyarrow.dataset as pads
import pytest

import analysis
from analysis import frame as fr
from tests.unit.collect_env import (
    REPO,
    S3_ENV,
    Collector,
    Forwarder,
    SeaweedFS,
    Socks5,
    make_vantage,
    run_upload,
    vantage_env,
    wait_for,
)

pytestmark = pytest.mark.slow
BUCKET = "reachprobe"


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    d = tmp_path_factory.mktemp("seaweedfs")
    sw = SeaweedFS(d)
    try:
        sw.start()
    except FileNotFoundError as exc:
        pytest.skip(f"SeaweedFS is not installed: {exc}")
    sw.fs().mkdir(BUCKET)
    yield sw
    sw.stop()


@pytest.fixture
def s3env(monkeypatch):
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def prefix(request, seaweed, s3env):
    return f"s3://{BUCKET}/{re.sub(r'[^a-z0-9]+', '-', request.node.name.lower())}"


@pytest.fixture
def collectors(tmp_path):
    started = []

    def start(store, *args, **kw):
        c = Collector(store, tmp_path, *args, **kw).start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def _opts(seaweed):
    return {"key": S3_ENV["AWS_ACCESS_KEY_ID"], "secret": S3_ENV["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"endpoint_url": seaweed.endpoint}}


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    df = df[list(fr.COLUMNS)].copy()
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype) or c in fr.STRING_COLUMNS:  # Dask has its own strings
            df[c] = df[c].astype(object)
    return df.sort_values("id").reset_index(drop=True)


def _store_ids(seaweed, url: str) -> list[str]:
    fs = seaweed.fs()
    root = url.removeprefix("s3://")
    fs.invalidate_cache()
    files = fs.glob(root + "/measurements/**/*.parquet")
    if not files:
        return []
    return pads.dataset(files, format="parquet", filesystem=fs).to_table(columns=["id"]).column("id").to_pylist()


def _raw_count(seaweed, url: str) -> int:
    fs = seaweed.fs()
    fs.invalidate_cache()
    return len(fs.glob(url.removeprefix("s3://") + "/raw/**/*.rpb"))


def _assert_store_matches(seaweed, url, vantages):
    ids = _store_ids(seaweed, url)
    assert len(ids) == len(set(ids)), "a measurement is in the store twice"
    local = analysis.load([v["results"] for v in vantages])
    assert sorted(ids) == sorted(local["id"]), "the store does not hold exactly the vantages' measurements"
    return local


def _no_client_address(collector: Collector) -> None:
    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", collector.log_text())}
    assert ports <= {collector.port}, f"a client address was logged: {ports}"


# ----------------------------------------------------------------------------------------- the path
def test_vantages_to_collector_to_seaweedfs_to_pandas_and_dask(tmp_path, seaweed, prefix, collectors):
    col = collectors(prefix, s3_endpoint=seaweed.endpoint)
    vantages = [make_vantage(tmp_path, f"v-e2e-{i}", seed=i) for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-m", "probe", "upload", "--results", str(v["results"]),
                               "--collector", col.url, "--bundle-lines", "300"], env=vantage_env(v), cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in vantages]
    for p in procs:  # all at once
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    local = _assert_store_matches(seaweed, prefix, vantages)

    remote = analysis.load(prefix + "/", storage_options=_opts(seaweed))
    pd.testing.assert_frame_equal(_plain(remote), _plain(local))
    ddf = analysis.load(prefix + "/", engine="dask", storage_options=_opts(seaweed))
    pd.testing.assert_frame_equal(_plain(ddf.compute()), _plain(local))
    # the same analysis on both engines
    assert len(analysis.episodes(remote)) == len(analysis.episodes(local))

    again = run_upload(vantages[0], col.url)
    assert again.returncode == 0 and "packed 0 bundle(s); sent 0" in again.stdout + again.stderr
    st = subprocess.run([sys.executable, "-m", "probe", "status", "--results", str(vantages[0]["results"])],
                        env=vantage_env(vantages[0]), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "upload:     0 bundle(s) pending" in st.stdout, st.stdout + st.stderr
    _no_client_address(col)


def test_upload_through_a_socks5_proxy(tmp_path, seaweed, prefix, collectors):
    col = collectors(prefix, s3_endpoint=seaweed.endpoint)
    v = make_vantage(tmp_path, "v-socks")
    proxy = Socks5().start()
    try:
        r = run_upload(v, col.url, "--proxy", f"socks5://127.0.0.1:{proxy.port}")
    finally:
        proxy.stop()
    assert r.returncode == 0, r.stderr
    assert proxy.targets and {p for _h, p in proxy.targets} == {col.port}
    _assert_store_matches(seaweed, prefix, [v])


# ------------------------------------------------------------------------------------------- faults
def test_kill9_of_the_uploader_mid_upload_loses_and_duplicates_nothing(tmp_path, seaweed, prefix, collectors):
    col = collectors(prefix, s3_endpoint=seaweed.endpoint)
    v = make_vantage(tmp_path, "v-kill-up")
    ledger = v["results"] / ".upload" / "ledger.json"
    p = subprocess.Popen([sys.executable, "-m", "probe", "upload", "--results", str(v["results"]),
                          "--collector", col.url, "--bundle-lines", "15"], env=vantage_env(v), cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def some_sent():
        try:
            return len(json.loads(ledger.read_text()).get("sent", {})) >= 3
        except (OSError, ValueError):
            return False

    wait_for(some_sent, 120, "the uploader to send a few bundles")
    p.kill()
    p.wait(30)
    sent_before = len(json.loads(ledger.read_text())["sent"])
    assert sent_before < -(-v["n"] // 15), "the uploader finished before it was killed"
    r = run_upload(v, col.url, "--bundle-lines", "15")
    assert r.returncode == 0, r.stderr
    _assert_store_matches(seaweed, prefix, [v])


def test_kill9_of_the_collector_mid_write_loses_and_duplicates_nothing(tmp_path, seaweed, prefix, collectors):
    col = collectors(prefix, s3_endpoint=seaweed.endpoint)
    v = make_vantage(tmp_path, "v-kill-col")
    p = subprocess.Popen([sys.executable, "-m", "probe", "upload", "--results", str(v["results"]),
                          "--collector", col.url, "--bundle-lines", "15", "--upload-retries", "20",
                          "--backoff", "0.2"], env=vantage_env(v), cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: _raw_count(seaweed, prefix) >= 3, 120, "the collector to store a few bundles")
    col.kill9()
    assert _raw_count(seaweed, prefix) < -(-v["n"] // 15), "everything was stored before the kill"
    col2 = collectors(prefix, s3_endpoint=seaweed.endpoint, port=col.port)
    out, err = p.communicate(timeout=300)
    if p.returncode != 0:  # it gave up while the collector was down: the next upload finishes the job
        r = run_upload(v, col2.url, "--bundle-lines", "15")
        assert r.returncode == 0, r.stderr
    _assert_store_matches(seaweed, prefix, [v])


def test_object_store_down_bundles_wait_then_go(tmp_path, seaweed, prefix, collectors):
    fwd = Forwarder(seaweed.ports["s3"]).start()
    col = collectors(prefix, s3_endpoint=f"http://127.0.0.1:{fwd.port}")
    v = make_vantage(tmp_path, "v-store-down")
    fwd.stop()  # the object store goes away
    try:
        r = run_upload(v, col.url, "--upload-retries", "1", "--backoff", "0.1")
        assert r.returncode == 1
        assert "pending" in r.stderr and "503" in r.stderr
        st = subprocess.run([sys.executable, "-m", "probe", "status", "--results", str(v["results"])],
                            env=vantage_env(v), cwd=REPO, capture_output=True, text=True, timeout=60)
        pending = int(re.search(r"upload: +(\d+) bundle\(s\) pending", st.stdout).group(1))
        assert pending >= 1
        assert _store_ids(seaweed, prefix) == []
        assert "object store unavailable" in col.log_text()
    finally:
        fwd.start()  # it comes back on the same port
    try:
        r = run_upload(v, col.url)
        assert r.returncode == 0, r.stderr
        _assert_store_matches(seaweed, prefix, [v])
    finally:
        fwd.stop()


# ------------------------------------------------------------------------------------------ hostile
def test_a_1gb_body_is_refused_without_reading_it(seaweed, prefix, collectors):
    col = collectors(prefix, s3_endpoint=seaweed.endpoint)
    # declared: refused from the Content-Length, before the body
    with socket.create_connection(("127.0.0.1", col.port), timeout=30) as s:
        s.sendall(b"POST /v1/bundles HTTP/1.1\r\nHost: collector\r\nContent-Length: 1073741824\r\n\r\n"
                  + b"\0" * 65536)
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    # streamed without a length: refused once the cap (16 MiB) is passed, long before 1 GB
    sent = 0

    def body():
        nonlocal sent
        chunk = b"\0" * (1 << 20)
        while sent < (1 << 30):
            sent += len(chunk)
            yield chunk

    try:
        r = httpx.post(col.url + "/v1/bundles", content=body(), timeout=60)
        assert r.status_code == 413
    except httpx.TransportError:
        pass  # the collector closed the connection on us mid-body: refused as well
    assert sent < 256 * (1 << 20), f"{sent} bytes went out before the refusal"
    assert _raw_count(seaweed, prefix) == 0 and _store_ids(seaweed, prefix) == []
    assert "413 too_large" in col.log_text()
    assert httpx.get(col.url + "/healthz", timeout=10).status_code == 200


def test_a_flood_is_rate_limited_and_the_collector_stays_responsive(tmp_path, seaweed, prefix, collectors):
    from probe.collect.bundle import build

    col = collectors(prefix, "--rate", "0.1", "--burst", "5", s3_endpoint=seaweed.endpoint)
    v = make_vantage(tmp_path, "v-flood")
    line = next(iter(open(sorted(v["results"].glob("*.jsonl"))[0], "rb")))
    bundles = [build(line.replace(b'"id":"', f'"id":"flood{i}-'.encode(), 1), 1, v["key"], vantages=["v"]).data
               for i in range(150)]
    codes: list[int] = []
    health: list[int] = []

    def flood(chunk):
        with httpx.Client(timeout=60) as c:
            for data in chunk:
                codes.append(c.post(col.url + "/v1/bundles", content=data).status_code)

    threads = [threading.Thread(target=flood, args=(bundles[i::10],)) for i in range(10)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        health.append(httpx.get(col.url + "/healthz", timeout=30).status_code)
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert health and set(health) == {200}
    assert codes.count(429) >= 100 and set(codes) <= {200, 429}
    assert codes.count(200) == len(_store_ids(seaweed, prefix))
