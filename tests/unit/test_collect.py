"""Bundles, the upload ledger and the collector app, in process (a local-directory store).

The end-to-end path over real sockets into SeaweedFS is in test_collect_e2e.py."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from probe.collect import bundle as bd
from probe.collect.app import CollectorConfig, RateLimiter, create_app
from probe.collect.keys import ensure_key, public_id
from probe.collect.ledger import Ledger
from probe.collect.store import Store
from probe.collect.upload import UploadConfigError, endpoint
from tests.unit.collect_env import make_vantage


def _lines(n: int, schema: str = "reachprobe/1", start: int = 0) -> bytes:
    return b"".join(json.dumps({"schema": schema, "id": f"m{i}", "measured_at": "2026-12-01T10:00:00.000Z",
                                "vantage": {"id": "v-x", "cc": "IR"}, "target": {"platform": "facebook",
                                "name": "fb"}, "verdict": {"status": "blocked"}}).encode() + b"\n"
                    for i in range(start, start + n))


def _resign(data: bytes, key: Ed25519PrivateKey, edit) -> bytes:
    manifest, _mb, _sig, payload = bd.read_manifest(data)
    edit(manifest)
    mbytes = bd._canonical(manifest)
    return bd.MAGIC + struct.pack(">I", len(mbytes)) + mbytes + key.sign(bd.MAGIC + mbytes) + payload


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "store"))


def _client(store, **kw):
    return TestClient(create_app(CollectorConfig(store=store, **kw)))


def _written(store) -> list[str]:
    root = Path(store.root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ---------------------------------------------------------------------------------------- bundle
def test_bundle_roundtrip_is_deterministic(key):
    a = bd.build(_lines(3), 3, key, vantages=["v-x"])
    b = bd.build(_lines(3), 3, key, vantages=["v-x"])
    assert a.data == b.data and a.id == b.id  # a retry of the same lines is the same bundle
    v = bd.verify(a.data, max_lines_bytes=1 << 20)
    assert v.id == a.id and v.key == public_id(key.public_key()) and [r["id"] for r in v.records] == ["m0", "m1", "m2"]
    assert bd.build(_lines(3, start=1), 3, key, vantages=["v-x"]).id != a.id


def test_key_is_made_once_and_private(tmp_path):
    k1 = ensure_key(tmp_path / "k.pem")
    k2 = ensure_key(tmp_path / "k.pem")
    assert public_id(k1.public_key()) == public_id(k2.public_key())
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600


def test_consent_makes_the_vantage_key(tmp_path, monkeypatch):
    from probe import consent

    monkeypatch.setenv("REACHPROBE_CONFIG_DIR", str(tmp_path / "cfg"))
    consent.record_consent("--yes")
    assert (tmp_path / "cfg" / "vantage_ed25519.pem").exists()


# ---------------------------------------------------------------------------------- bad bundles
def _bad_cases(key: Ed25519PrivateKey) -> dict[str, tuple[bytes, int, str]]:
    good = bd.build(_lines(5), 5, key, vantages=["v-x"]).data
    m, mb, sig, payload = bd.read_manifest(good)
    bad_sig = bytearray(good)
    bad_sig[8 + len(mb) + 3] ^= 0xFF
    other = Ed25519PrivateKey.generate()
    # a payload of 64 MiB of zeros gzips to ~64 KiB: signed and hashed correctly, only its size is wrong
    bomb_lines = b"\0" * (64 * 1024 * 1024)
    bomb = bd.build(bomb_lines, 1, key, vantages=["v-x"]).data
    bomb = _resign(bomb, key, lambda m: m.update(lines_bytes=1000))  # and it lies about its size
    future = bd.build(_lines(2, schema="reachprobe/2"), 2, key, vantages=["v-x"]).data
    future_manifest = _resign(good, key, lambda m: m.update(schema="reachprobe/9"))
    return {
        "bad signature": (bytes(bad_sig), 401, "signature"),
        "signed by another key": (_resign(good, other, lambda m: None), 401, "signature"),
        "truncated": (good[:-10], 400, "truncated"),
        "truncated in the manifest": (good[:20], 400, "truncated"),
        "bomb": (bomb, 413, "bomb"),
        "future schema (lines)": (future, 422, "schema"),
        "future schema (manifest)": (future_manifest, 422, "schema"),
        "garbage": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10, 400, "garbage"),
        "manifest not json": (bd.MAGIC + struct.pack(">I", 5) + b"{{{{{" + b"\0" * 80, 400, "garbage"),
        "lying line count": (_resign(good, key, lambda m: m.update(lines=6)), 400, "manifest"),
        "lying hash": (_resign(good, key, lambda m: m.update(lines_sha256="0" * 64)), 400, "hash"),
    }


@pytest.mark.parametrize("case", list(_bad_cases(Ed25519PrivateKey.generate())))
def test_bad_bundle_is_rejected_with_a_status_a_log_line_and_nothing_written(case, key, store, caplog):
    data, status, code = _bad_cases(key)[case]
    with caplog.at_level(logging.WARNING, logger="reachprobe.collector"), _client(store) as client:
        r = client.post("/v1/bundles", content=data)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    assert any(f"{status} {code}" in rec.getMessage() for rec in caplog.records), caplog.text
    assert _written(store) == []


def test_unknown_key_is_refused_when_there_is_an_allow_list(key, store, caplog):
    other = Ed25519PrivateKey.generate()
    with caplog.at_level(logging.WARNING, logger="reachprobe.collector"), \
            _client(store, allowed_keys=frozenset({public_id(other.public_key())})) as client:
        r = client.post("/v1/bundles", content=bd.build(_lines(2), 2, key, vantages=["v"]).data)
        assert r.status_code == 403 and r.json()["error"] == "unknown_key"
        assert "403 unknown_key" in caplog.text
        assert _written(store) == []
        r = client.post("/v1/bundles", content=bd.build(_lines(2), 2, other, vantages=["v"]).data)
        assert r.status_code == 200


def test_body_over_the_cap_is_refused_from_its_content_length(key, store):
    with _client(store, max_body=4096) as client:
        r = client.post("/v1/bundles", content=b"x" * 5000)
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert _written(store) == []


def test_accepted_bundle_is_stored_once_and_a_retry_is_a_duplicate(key, store, caplog):
    b = bd.build(_lines(4), 4, key, vantages=["v-x"])
    with caplog.at_level(logging.INFO, logger="reachprobe.collector"), _client(store) as client:
        r1 = client.post("/v1/bundles", content=b.data)
        r2 = client.post("/v1/bundles", content=b.data)
    assert r1.json() == {"id": b.id, "status": "stored", "lines": 4}
    assert r2.json() == {"id": b.id, "status": "duplicate", "lines": 4}
    files = _written(store)
    assert files == [f"measurements/day=2026-12-01/cc=IR/{public_id(key.public_key())}.{b.id}.parquet", f"raw/{b.id[:2]}/{b.id}.rpb"]
    assert "testclient" not in caplog.text  # the client's address is never logged


def test_rate_limit_per_key():
    lim = RateLimiter(rate=1.0, burst=3)
    assert [lim.take("a", now=0.0) for _ in range(3)] == [0, 0, 0]
    assert lim.take("a", now=0.0) > 0 and lim.take("b", now=0.0) == 0
    assert lim.take("a", now=2.0) == 0


def test_flood_from_one_key_is_rate_limited(key, store):
    with _client(store, rate=0.01, burst=5) as client:
        codes = [client.post("/v1/bundles", content=bd.build(_lines(1, start=i), 1, key, vantages=["v"]).data)
                 for i in range(12)]
        assert [r.status_code for r in codes].count(200) == 5
        limited = [r for r in codes if r.status_code == 429]
        assert len(limited) == 7 and all(int(r.headers["retry-after"]) >= 1 for r in limited)
        assert client.get("/healthz").status_code == 200


# ------------------------------------------------------------------------------------- the ledger
def test_pack_covers_every_line_once_and_skips_a_torn_tail(tmp_path):
    v = make_vantage(tmp_path, "v-pack")
    day = sorted(v["results"].glob("*.jsonl"))[-1]
    with open(day, "ab") as fh:
        fh.write(b'{"schema":"reachprobe/1","id":"half')  # a writer killed mid-line
    with Ledger.open(v["results"]) as led:
        made = led.pack(v["key"], max_lines=100)
        per_file = [len(f.read_bytes().splitlines()) for f in sorted(v["results"].glob("*.jsonl"))]
        per_file[-1] -= 1  # the torn line
        assert len(made) == sum(-(-n // 100) for n in per_file)
        assert led.pack(v["key"], max_lines=100) == []  # nothing new
    ids = []
    for p in made:
        ids += [r["id"] for r in bd.verify(p.read_bytes(), max_lines_bytes=1 << 24).records]
    assert len(ids) == len(set(ids)) == v["n"]


def test_a_crash_after_the_bundle_before_the_ledger_repacks_nothing(tmp_path):
    v = make_vantage(tmp_path, "v-crash")
    with Ledger.open(v["results"]) as led:
        made = led.pack(v["key"], max_lines=50)
    (v["results"] / ".upload" / "ledger.json").unlink()  # as if the process died before saving it
    with Ledger.open(v["results"]) as led:
        assert led.pack(v["key"], max_lines=50) == []
        assert sorted(led.pending()) == sorted(made)


def test_plain_http_only_to_loopback():
    assert endpoint("http://127.0.0.1:8470") == "http://127.0.0.1:8470/v1/bundles"
    assert endpoint("https://collector.example.org/") == "https://collector.example.org/v1/bundles"
    assert endpoint("http://abcdefgh.onion").endswith("/v1/bundles")
    with pytest.raises(UploadConfigError):
        endpoint("http://collector.example.org")


def test_bundle_hashes_are_sha256(key):
    b = bd.build(_lines(2), 2, key, vantages=["v"])
    payload = b.data[-b.manifest["payload_bytes"]:]
    assert b.manifest["payload_sha256"] == hashlib.sha256(payload).hexdigest()
    assert gzip.decompress(payload) == _lines(2)


# ---------------------------------------------------------------------------------- the uploader
class _Scripted:
    """A loopback HTTP server answering POSTs from a script of (status, body, headers)."""

    def __init__(self, script):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.script, self.bodies = list(script), []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.bodies.append(body)
                status, answer, headers = outer.script.pop(0) if outer.script else (500, {}, {})
                if callable(answer):
                    answer = answer(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def _ack(body):
    return {"id": bd.read_manifest(body)[0]["id"], "status": "stored"}


def _one_bundle(tmp_path):
    v = make_vantage(tmp_path, "v-up", days=1)
    with Ledger.open(v["results"]) as led:
        led.pack(v["key"], max_lines=10_000)
    return v


def test_retries_are_bounded_back_off_with_jitter_and_honour_retry_after(tmp_path):
    from probe.collect.upload import UploadOptions, send_pending

    v = _one_bundle(tmp_path)
    srv = _Scripted([(503, {"error": "store_unavailable"}, {}), (200, {"id": "someone-else"}, {}),
                     (429, {"error": "rate_limited"}, {"retry-after": "7"}), (200, _ack, {})])
    delays: list[float] = []
    try:
        with Ledger.open(v["results"]) as led:
            rep = send_pending(led, UploadOptions(collector=srv.url, retries=3, backoff=1.0, max_backoff=30),
                               sleep=delays.append)
            assert rep.sent == 1 and rep.pending == 0 and led.pending() == [] and len(led.sent) == 1
    finally:
        srv.close()
    assert len(delays) == 3 and 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and delays[2] >= 7
    assert len(set(srv.bodies)) == 1  # every retry is the same bundle


def test_unreachable_collector_leaves_bundles_pending(tmp_path):
    from probe.collect.upload import UploadOptions, send_pending

    v = _one_bundle(tmp_path)
    srv = _Scripted([(503, {}, {})] * 3)
    try:
        with Ledger.open(v["results"]) as led:
            before = led.pending()
            rep = send_pending(led, UploadOptions(collector=srv.url, retries=2), sleep=lambda s: None)
            assert rep.pending == len(before) and led.pending() == before and led.sent == {}
    finally:
        srv.close()


def test_a_refused_bundle_moves_to_rejected_with_the_reason(tmp_path):
    from probe.collect.ledger import status
    from probe.collect.upload import UploadOptions, send_pending

    v = _one_bundle(tmp_path)
    srv = _Scripted([(401, {"error": "signature", "detail": "bad"}, {})])
    try:
        with Ledger.open(v["results"]) as led:
            rep = send_pending(led, UploadOptions(collector=srv.url, retries=2), sleep=lambda s: None)
            assert len(rep.rejected) == 1 and led.pending() == []
            assert list(led.rejected.values())[0]["http_status"] == 401
            assert len(list(led.rejected_dir.iterdir())) == 1
    finally:
        srv.close()
    assert status(v["results"])["rejected_bundles"] == 1
