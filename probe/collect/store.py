"""Where accepted measurements land: an fsspec URL (``s3://bucket/prefix`` or a local path).

Layout under the root::

    measurements/day=YYYY-MM-DD/cc=XX/<key>.<bundle id>.parquet   one file per bundle and (day, country)
    raw/<id[:2]>/<bundle id>.rpb                                  the signed bundle as received, for audit

Writes are idempotent: a bundle's files are named by its id, so writing it again replaces them with the
same bytes. The key in the name lets readers group a vantage's files without opening them (Dask
partitions by vantage). The raw bundle is written last and is the commit marker: a bundle counts as stored (and is
acknowledged as a duplicate on a retry) only once it exists. A collector killed mid-write leaves at
worst some of the bundle's Parquet files, which the uploader's retry rewrites identically.

Columns are the analysis frame's (``analysis.frame.COLUMNS``) plus ``bundle_id``, ``vantage_key`` (the
public key) and ``line`` (the results line itself, so nothing of the measurement is lost).
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from probe.collect.bundle import Verified

SCHEMA = pa.schema(
    [
        ("measured_at", pa.timestamp("us", tz="UTC")),
        ("vantage", pa.string()),
        ("asn", pa.int64()),
        ("cc", pa.string()),
        ("network", pa.string()),
        ("platform", pa.string()),
        ("target", pa.string()),
        ("kind", pa.string()),
        ("scope", pa.string()),
        ("status", pa.string()),
        ("layer", pa.string()),
        ("method", pa.string()),
        ("rule", pa.string()),
        ("confidence", pa.float64()),
        ("confirmed", pa.bool_()),
        ("run_id", pa.string()),
        ("id", pa.string()),
        ("source", pa.string()),
        ("bundle_id", pa.string()),
        ("vantage_key", pa.string()),
        ("line", pa.string()),
    ]
)
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class StoreUnavailable(Exception):
    """The object store cannot be written now (retryable: 503)."""


def _s(v: Any) -> str | None:
    return None if v is None else str(v)


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _float(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return None


def partition(rec: dict[str, Any]) -> tuple[str, str]:
    day = str(rec.get("measured_at", ""))[:10]
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        day = "unknown"
    cc = _SAFE.sub("", str((rec.get("vantage") or {}).get("cc") or ""))[:8] or "unknown"
    return day, cc


def to_table(records: list[dict[str, Any]], bundle_id: str, key: str) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for rec in records:
        v, t, d = rec.get("vantage") or {}, rec.get("target") or {}, rec.get("verdict") or {}
        for name, value in (
            ("measured_at", rec.get("measured_at")),
            ("vantage", _s(v.get("id"))),
            ("asn", _int(v.get("asn"))),
            ("cc", _s(v.get("cc"))),
            ("network", _s(v.get("network"))),
            ("platform", _s(t.get("platform"))),
            ("target", _s(t.get("name"))),
            ("kind", _s(t.get("kind"))),
            ("scope", _s(t.get("scope"))),
            ("status", _s(d.get("status"))),
            ("layer", _s(d.get("layer"))),
            ("method", _s(d.get("method"))),
            ("rule", _s(d.get("rule"))),
            ("confidence", _float(d.get("confidence"))),
            ("confirmed", d.get("confirmed") is True),
            ("run_id", _s(rec.get("run_id"))),
            ("id", _s(rec.get("id"))),
            ("source", "reachprobe"),
            ("bundle_id", bundle_id),
            ("vantage_key", key),
            ("line", json.dumps(rec, separators=(",", ":"), ensure_ascii=False)),
        ):
            cols[name].append(value)
    ts = pa.array(cols.pop("measured_at"), pa.string())
    try:
        parsed = pc.cast(
            pc.strptime(
                pc.utf8_slice_codeunits(ts, 0, 23), format="%Y-%m-%dT%H:%M:%S.%f", unit="us", error_is_null=True
            ),
            pa.timestamp("us", tz="UTC"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = pa.nulls(len(ts), pa.timestamp("us", tz="UTC"))
    if parsed.null_count:  # other RFC 3339 spellings: parse the odd ones in Python
        vals = []
        for raw, p in zip(ts.to_pylist(), parsed.to_pylist(), strict=True):
            if p is None and raw:
                try:
                    p = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                except ValueError:
                    p = None
            vals.append(p)
        parsed = pa.array(vals, pa.timestamp("us", tz="UTC"))
    arrays = [parsed] + [pa.array(cols[n], SCHEMA.field(n).type) for n in SCHEMA.names[1:]]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


class Store:
    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self.root = root.rstrip("/")
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    def raw_path(self, bundle_id: str) -> str:
        return f"{self.root}/raw/{bundle_id[:2]}/{bundle_id}.rpb"

    def has(self, bundle_id: str) -> bool:
        path = self.raw_path(bundle_id)
        try:
            self.fs.invalidate_cache(path)
            return bool(self.fs.exists(path))
        except Exception as exc:  # noqa: BLE001 - any store failure is "try again later"
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _put(self, path: str, data: bytes) -> None:
        if self.local:  # a local file appears whole or not at all
            parent = path.rsplit("/", 1)[0]
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        else:  # an S3 PUT is atomic
            self.fs.pipe_file(path, data)

    def write(self, v: Verified, raw: bytes) -> dict[str, int]:
        """Write the bundle's measurements (Parquet per day and country) and then the raw bundle."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for rec in v.records:
            groups[partition(rec)].append(rec)
        try:
            for (day, cc), recs in sorted(groups.items()):
                buf = io.BytesIO()
                pq.write_table(to_table(recs, v.id, v.key), buf, compression="zstd")
                self._put(f"{self.root}/measurements/day={day}/cc={cc}/{v.key}.{v.id}.parquet", buf.getvalue())
            self._put(self.raw_path(v.id), raw)
        except Exception as exc:  # noqa: BLE001
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return {f"{d}/{c}": len(r) for (d, c), r in groups.items()}


def storage_options_for(url: str, endpoint: str | None = None) -> dict[str, Any]:
    """fsspec options: for s3:// an endpoint (SeaweedFS, MinIO...) from --s3-endpoint or $AWS_ENDPOINT_URL."""
    if not url.startswith(("s3://", "s3a://")):
        return {}
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
    opts: dict[str, Any] = {"config_kwargs": {"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 2}}}
    if endpoint:
        opts["client_kwargs"] = {"endpoint_url": endpoint}
    return opts
