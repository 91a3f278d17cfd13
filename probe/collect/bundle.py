"""The bundle: what leaves a volunteer's host. Pure functions, no I/O.

Wire format (one HTTP body)::

    b"RPB1" | manifest length (4 bytes, big-endian) | manifest (canonical JSON) | signature (64) | payload

``payload`` is the gzip'd results lines (``mtime=0``, so the same lines always give the same bytes);
the manifest carries the vantage's public key, the results schema, the line count and the SHA-256 and
sizes of the payload and of the lines; the Ed25519 signature covers the magic and the manifest. The
bundle id is ``sha256(key || lines_sha256)``: a retry of the same lines from the same key is the same
bundle, which is what makes the collector's acknowledgement idempotent.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from probe.collect.keys import parse_public_id, public_id
from probe.records import SCHEMA

MAGIC = b"RPB1"
FORMAT = "reachprobe-bundle/1"
SUPPORTED_SCHEMAS = frozenset({SCHEMA})
SIG_LEN = 64
MAX_MANIFEST = 16 * 1024


class BundleError(Exception):
    """A bundle the collector must refuse. ``status`` is the HTTP status, ``code`` a short word."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True, slots=True)
class Bundle:
    id: str
    manifest: dict[str, Any]
    data: bytes  # the whole wire body


@dataclass(frozen=True, slots=True)
class Verified:
    id: str
    key: str
    manifest: dict[str, Any]
    records: list[dict[str, Any]]


def bundle_id(key: str, lines_sha256: str) -> str:
    return hashlib.sha256(f"{key}\n{lines_sha256}".encode()).hexdigest()[:32]


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def build(
    lines: bytes,
    n_lines: int,
    key: Ed25519PrivateKey,
    *,
    vantages: list[str],
    source: dict[str, Any] | None = None,
    software: str = "",
) -> Bundle:
    """Sign a bundle of complete results lines (each ending in a newline)."""
    payload = gzip.compress(lines, compresslevel=6, mtime=0)
    kid = public_id(key.public_key())
    lines_sha = hashlib.sha256(lines).hexdigest()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "id": bundle_id(kid, lines_sha),
        "key": kid,
        "schema": SCHEMA,
        "vantages": sorted(set(vantages)),
        "lines": n_lines,
        "lines_bytes": len(lines),
        "lines_sha256": lines_sha,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "compression": "gzip",
        "source": source or {},
        "software": software,
    }
    mbytes = _canonical(manifest)
    sig = key.sign(MAGIC + mbytes)
    data = MAGIC + struct.pack(">I", len(mbytes)) + mbytes + sig + payload
    return Bundle(id=manifest["id"], manifest=manifest, data=data)


def read_manifest(data: bytes) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """(manifest, manifest bytes, signature, payload); BundleError 400 on anything malformed."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise BundleError(400, "garbage", "not a reachprobe bundle (bad magic)")
    (mlen,) = struct.unpack(">I", data[4:8])
    if mlen > MAX_MANIFEST:
        raise BundleError(400, "garbage", f"manifest of {mlen} bytes (cap {MAX_MANIFEST})")
    if len(data) < 8 + mlen + SIG_LEN:
        raise BundleError(400, "truncated", "body ends inside the manifest or signature")
    mbytes = data[8 : 8 + mlen]
    sig = data[8 + mlen : 8 + mlen + SIG_LEN]
    payload = data[8 + mlen + SIG_LEN :]
    try:
        manifest = json.loads(mbytes)
    except ValueError:
        raise BundleError(400, "garbage", "manifest is not JSON") from None
    if not isinstance(manifest, dict):
        raise BundleError(400, "garbage", "manifest is not a JSON object")
    return manifest, mbytes, sig, payload


def verify(
    data: bytes, *, max_lines_bytes: int, allowed_keys: frozenset[str] | None = None, check_key: Any = None
) -> Verified:
    """Check a bundle fully; return its records. Raises BundleError with the status to answer.

    Order: structure, format and schema, key (allow-list), signature (cheap), ``check_key(key)`` (the
    rate limit, before any expensive work), payload hash, bounded decompression, line hash and count,
    then every line (a JSON object of the declared schema)."""
    manifest, mbytes, sig, payload = read_manifest(data)
    if manifest.get("format") != FORMAT:
        raise BundleError(422, "format", f"bundle format {manifest.get('format')!r} is not {FORMAT}")
    if manifest.get("schema") not in SUPPORTED_SCHEMAS:
        raise BundleError(
            422,
            "schema",
            f"results schema {manifest.get('schema')!r} is not supported ({', '.join(sorted(SUPPORTED_SCHEMAS))})",
        )
    kid = manifest.get("key")
    try:
        pub = parse_public_id(kid if isinstance(kid, str) else "")
    except ValueError as exc:
        raise BundleError(400, "key", f"manifest key: {exc}") from None
    assert isinstance(kid, str)  # any other key was refused above, as parse_public_id("") raises
    if allowed_keys is not None and kid not in allowed_keys:
        raise BundleError(403, "unknown_key", "this key is not on the collector's allow-list")
    try:
        pub.verify(sig, MAGIC + mbytes)
    except InvalidSignature:
        raise BundleError(401, "signature", "the signature does not match the manifest and key") from None
    if check_key is not None:  # after the signature: nobody can spend another key's budget
        check_key(kid)
    for field in ("lines", "lines_bytes", "payload_bytes"):
        if not isinstance(manifest.get(field), int) or manifest[field] < 0:
            raise BundleError(400, "manifest", f"manifest field {field!r} is not a count")
    if manifest["lines_bytes"] > max_lines_bytes:
        raise BundleError(413, "too_large", f"{manifest['lines_bytes']} bytes of lines (cap {max_lines_bytes})")
    if len(payload) != manifest["payload_bytes"]:
        raise BundleError(
            400, "truncated", f"payload has {len(payload)} bytes, manifest says {manifest['payload_bytes']}"
        )
    if hashlib.sha256(payload).hexdigest() != manifest.get("payload_sha256"):
        raise BundleError(400, "hash", "payload SHA-256 does not match the manifest")
    lines = _gunzip(payload, max_lines_bytes)
    if len(lines) != manifest["lines_bytes"] or hashlib.sha256(lines).hexdigest() != manifest.get("lines_sha256"):
        raise BundleError(400, "hash", "decompressed lines do not match the manifest's size and SHA-256")
    if manifest.get("id") != bundle_id(kid, manifest["lines_sha256"]):
        raise BundleError(400, "manifest", "bundle id is not sha256(key, lines_sha256)")
    records = _records(lines, manifest)
    return Verified(id=manifest["id"], key=kid, manifest=manifest, records=records)


def _gunzip(payload: bytes, cap: int) -> bytes:
    """Decompress at most ``cap`` bytes: a decompression bomb is refused after ``cap``, never inflated."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(payload, cap + 1)
    except zlib.error as exc:
        raise BundleError(400, "compression", f"payload is not valid gzip: {exc}") from None
    if len(out) > cap or d.unconsumed_tail:
        raise BundleError(413, "bomb", f"payload inflates beyond {cap} bytes")
    if not d.eof:
        raise BundleError(400, "truncated", "gzip stream ends early")
    return out


def _records(lines: bytes, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    raw = lines.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    if len(raw) != manifest["lines"]:
        raise BundleError(400, "manifest", f"{len(raw)} lines, manifest says {manifest['lines']}")
    out = []
    for i, line in enumerate(raw, 1):
        try:
            rec = json.loads(line)
        except ValueError:
            raise BundleError(400, "line", f"line {i} is not JSON") from None
        if not isinstance(rec, dict):
            raise BundleError(400, "line", f"line {i} is not a JSON object")
        if rec.get("schema") not in SUPPORTED_SCHEMAS:
            raise BundleError(422, "schema", f"line {i}: schema {rec.get('schema')!r} is not supported")
        if not isinstance(rec.get("id"), str) or not isinstance(rec.get("measured_at"), str):
            raise BundleError(400, "line", f"line {i}: no 'id' or 'measured_at'")
        out.append(rec)
    return out
