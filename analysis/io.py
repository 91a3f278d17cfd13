"""Reading results into the flat measurement frame: JSONL (tolerant), compacted Parquet, OONI; pandas or Dask.

Paths may be files or directories, mixed:

* ``*.jsonl`` files: results lines (``reachprobe/1``). A torn final line (a writer killed mid-line) is
  skipped, counted and reported, as :func:`probe.results.iter_results` does; any other undecodable line
  too. Fast path: ``pyarrow.json`` with an explicit schema of the contract fields (``steps`` and unknown
  fields ignored); a file it cannot parse is read again line by line through ``probe.results``.
* a directory made by ``reachprobe compact`` (it holds ``_reachprobe_compact.json``): its Parquet files.
* ``*.parquet`` files.
* any other directory: every ``*.jsonl`` below it (recursively; a directory of many volunteers'
  results directories works), or, when there is none, every ``*.parquet`` below it.

What was skipped is in ``df.attrs["read_report"]`` (pandas) or :func:`read_report` (both engines).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.json as pajson

from analysis import frame as fr
from analysis import remote
from probe.results import ReadReport, iter_results

log = logging.getLogger(__name__)

MANIFEST = "_reachprobe_compact.json"
JSONL_SUFFIX = ".jsonl"
PARQUET_SUFFIX = ".parquet"

# ---------------------------------------------------------------------------------------------- dask
# Which column a Dask frame is known to be partitioned by (every value of it in exactly one partition),
# and the read report of Dask frames, keyed by the collection's name (deterministic, hashable).
_PARTITIONED: dict[str, str] = {}
_DASK_ATTRS: dict[str, dict[str, Any]] = {}


def is_dask(df: Any) -> bool:
    mod = type(df).__module__
    return mod.startswith("dask") and hasattr(df, "map_partitions")


def partitioned_by(ddf: Any) -> str | None:
    return _PARTITIONED.get(getattr(ddf, "_name", None))


def mark_partitioned(ddf: Any, column: str | None, attrs: dict[str, Any] | None = None) -> Any:
    name = getattr(ddf, "_name", None)
    if name is not None:
        if column:
            _PARTITIONED[name] = column
        if attrs is not None:
            _DASK_ATTRS[name] = attrs
    return ddf


def persist(ddf: Any) -> Any:
    """``ddf.persist()`` keeping what is known about it (partitioning, read report)."""
    if not is_dask(ddf):
        return ddf
    out = ddf.persist()
    return mark_partitioned(out, partitioned_by(ddf), _DASK_ATTRS.get(ddf._name))


def read_report(df: Any) -> dict[str, Any]:
    """The reader's report (files, lines, torn_final, bad_lines, skipped, summary) of a loaded frame."""
    if is_dask(df):
        return dict(_DASK_ATTRS.get(df._name, {}).get("read_report", {}))
    return dict(getattr(df, "attrs", {}).get("read_report", {}))


def report_dict(rep: ReadReport) -> dict[str, Any]:
    return {"files": rep.files, "lines": rep.lines, "torn_final": list(rep.torn_final),
            "bad_lines": list(rep.bad_lines), "skipped": rep.skipped, "summary": rep.summary()}


def merge_reports(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rep = ReadReport()
    for r in reports:
        rep.files += int(r.get("files", 0))
        rep.lines += int(r.get("lines", 0))
        rep.torn_final.extend(r.get("torn_final", []))
        rep.bad_lines.extend(r.get("bad_lines", []))
    return report_dict(rep)


# ------------------------------------------------------------------------------------------ discovery
class Sources:
    """What a list of paths expands to."""

    def __init__(self) -> None:
        self.jsonl: list[Path] = []
        self.parquet_groups: dict[str, list[Path]] = {}  # one group per vantage directory
        self.compact_reports: list[dict[str, Any]] = []

    def add_parquet(self, files: Iterable[Path]) -> None:
        for f in files:
            self.parquet_groups.setdefault(str(f.parent), []).append(f)

    @property
    def empty(self) -> bool:
        return not self.jsonl and not self.parquet_groups


def discover(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Sources:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    src = Sources()
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            manifest = p / MANIFEST
            if manifest.exists():
                src.add_parquet(sorted(p.glob("*/*" + PARQUET_SUFFIX)))
                try:
                    src.compact_reports.append(json.loads(manifest.read_text()).get("read_report", {}))
                except (OSError, ValueError):
                    pass
                continue
            found = sorted(f for f in p.rglob("*" + JSONL_SUFFIX) if f.is_file())
            if found:
                for f in found:
                    if f.resolve() not in seen:
                        seen.add(f.resolve())
                        src.jsonl.append(f)
            else:
                src.add_parquet(sorted(f for f in p.rglob("*" + PARQUET_SUFFIX) if f.is_file()))
        elif p.suffix == PARQUET_SUFFIX:
            src.add_parquet([p])
        else:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                src.jsonl.append(p)
    for files in src.parquet_groups.values():
        files.sort()
    return src


# ---------------------------------------------------------------------------------------------- JSONL
_PARSE = pajson.ParseOptions(explicit_schema=fr.JSON_SCHEMA, unexpected_field_behavior="ignore")


def _split_torn_tail(data: bytes) -> tuple[bytes, bool]:
    """(body without a torn final line, whether one was cut)."""
    if not data or data.endswith(b"\n"):
        return data, False
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    if not tail.strip():
        return data, False
    try:
        rec = json.loads(tail)
        if isinstance(rec, dict):
            return data + b"\n", False
    except ValueError:
        pass
    return data[:cut], True


def read_jsonl_file(path: Path, rep: ReadReport | None = None) -> pa.Table:
    """One results file -> Arrow table of the flat columns; skipped lines recorded in ``rep``."""
    rep = rep if rep is not None else ReadReport()
    with open(path, "rb") as fh:
        data = fh.read()
    rep.files += 1
    body, torn = _split_torn_tail(data)
    if not body.strip():
        if torn:
            rep.torn_final.append(str(path))
        return fr.records_to_arrow([])
    try:
        block = max(1 << 20, min(len(body) + 1, 1 << 26))
        tbl = pajson.read_json(io.BytesIO(body), read_options=pajson.ReadOptions(block_size=block),
                               parse_options=_PARSE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        sub = ReadReport()
        records = list(iter_results([path], sub))
        rep.lines += sub.lines
        rep.torn_final.extend(sub.torn_final)
        rep.bad_lines.extend(sub.bad_lines)
        if sub.bad_lines:
            log.warning("%s: skipped %d undecodable line(s)", path, len(sub.bad_lines))
        return fr.records_to_arrow(records)
    if torn:
        rep.torn_final.append(str(path))
    rep.lines += tbl.num_rows
    return fr.flatten_json_table(tbl)


def _read_jsonl_files(files: Sequence[Path], columns: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
    rep = ReadReport()
    tables = [read_jsonl_file(Path(f), rep) for f in files]
    tbl = pa.concat_tables(tables) if tables else fr.records_to_arrow([])
    df = fr.from_arrow(tbl, columns=columns)
    return df, report_dict(rep)


def _read_jsonl_part(files: Sequence[str], columns: list[str] | None = None) -> pd.DataFrame:
    df, _ = _read_jsonl_files([Path(f) for f in files], columns)
    if "id" in df.columns:
        df = _dedupe(df)
    return df


def scan_torn_tails(files: Iterable[Path]) -> list[str]:
    """Cheap pre-scan (last line only) for torn final lines, for lazily read (Dask) inputs."""
    torn = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                if not size:
                    continue
                fh.seek(size - 1)
                if fh.read(1) == b"\n":
                    continue
                back = min(size, 1 << 16)
                while True:
                    fh.seek(size - back)
                    chunk = fh.read(back)
                    if b"\n" in chunk or back == size:
                        break
                    back = min(size, back * 4)
        except OSError:
            continue
        _, cut = _split_torn_tail(chunk if b"\n" in chunk else b"\n" + chunk)
        if cut:
            torn.append(str(f))
    return torn


# -------------------------------------------------------------------------------------------- Parquet
def read_parquet_files(files: Sequence[str | Path], columns: list[str] | None = None,
                       filters: Any = None) -> pd.DataFrame:
    """Parquet files (compacted layout or any file with the frame columns) -> normalized frame."""
    if not files:
        return fr.empty_frame(columns)
    dataset = pads.dataset([str(f) for f in files], format="parquet")
    names = set(dataset.schema.names)
    want = list(columns) if columns is not None else list(fr.COLUMNS)
    tbl = dataset.to_table(columns=[c for c in want if c in names], filter=filters, use_threads=True)
    # Parquet dictionaries hold only the values of their file (the compactor writes normalized frames),
    # so unless rows were filtered out there is no unused category to scan for
    return fr.from_arrow(tbl, columns=want, drop_unused=filters is not None)


def _parquet_filter(since: pd.Timestamp | None, until: pd.Timestamp | None, platforms: Sequence[str] | None):
    expr = None

    def conj(a, b):
        return b if a is None else a & b

    if since is not None:
        expr = conj(expr, pads.field("measured_at") >= pa.scalar(since.to_pydatetime(), pa.timestamp("us", "UTC")))
    if until is not None:
        expr = conj(expr, pads.field("measured_at") < pa.scalar(until.to_pydatetime(), pa.timestamp("us", "UTC")))
    if platforms:
        expr = conj(expr, pads.field("platform").isin(list(platforms)))
    return expr


# ----------------------------------------------------------------------------------------- selection
def to_utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def select(df: Any, since: Any = None, until: Any = None, platforms: Sequence[str] | None = None) -> Any:
    """Rows with ``since <= measured_at < until`` and ``platform in platforms`` (pandas or Dask)."""
    since, until = to_utc(since), to_utc(until)
    if since is None and until is None and not platforms:
        return df
    mask = None

    def conj(a, b):
        return b if a is None else a & b

    if since is not None:
        mask = conj(mask, df["measured_at"] >= since)
    if until is not None:
        mask = conj(mask, df["measured_at"] < until)
    if platforms:
        mask = conj(mask, df["platform"].isin(list(platforms)))
    out = df[mask]
    if is_dask(df):
        mark_partitioned(out, partitioned_by(df), _DASK_ATTRS.get(df._name))
    return out


def _dedupe(df: pd.DataFrame) -> pd.DataFrame:
    ids = df["id"]
    has = ids.notna()
    if not has.any():
        return df
    dup = ids.duplicated(keep="first") & has
    if dup.any():
        df = df[~dup.to_numpy()]
    return df


def concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate normalized frames, unioning categoricals (no detour through object)."""
    frames = [f for f in frames if f is not None]
    if not frames:
        return fr.empty_frame()
    if len(frames) == 1:
        return frames[0]
    cols = list(frames[0].columns)
    out: dict[str, Any] = {}
    for c in cols:
        series = [f[c] for f in frames]
        if isinstance(series[0].dtype, pd.CategoricalDtype) and c != "status":
            out[c] = pd.Series(pd.api.types.union_categoricals(series, sort_categories=True, ignore_order=True))
        else:
            out[c] = pd.concat([s.reset_index(drop=True) for s in series], ignore_index=True)
    df = fr.normalize(pd.DataFrame(out), columns=cols)
    reports = [f.attrs.get("read_report") for f in frames if f.attrs.get("read_report")]
    if reports:
        df.attrs["read_report"] = merge_reports(reports)
    return df


# ---------------------------------------------------------------------------------------------- load
def load(paths: str | os.PathLike | Iterable[str | os.PathLike], engine: str = "pandas", *,
         npartitions: int | None = None, columns: Sequence[str] | None = None,
         since: Any = None, until: Any = None, platforms: Sequence[str] | None = None,
         storage_options: dict[str, Any] | None = None) -> Any:
    """Read results (JSONL files/directories, compacted Parquet) into one flat frame.

    A URL (``s3://bucket/reachprobe/``, any fsspec protocol) reads a collector's store
    (:mod:`analysis.remote`); ``storage_options`` go to fsspec (e.g. an S3 endpoint).

    ``engine="pandas"`` returns a :class:`pandas.DataFrame`; ``engine="dask"`` a lazy Dask DataFrame
    partitioned by vantage (each vantage's rows in exactly one partition; ``npartitions`` caps the
    count). ``columns`` restricts the columns read (``measured_at``, ``status`` and the grouping columns
    are what the episode code needs). ``since``/``until``/``platforms`` filter rows (pushed down into
    Parquet reads).
    """
    if engine not in ("pandas", "dask"):
        raise ValueError(f"engine must be 'pandas' or 'dask', not {engine!r}")
    cols = list(columns) if columns is not None else None
    if cols is not None:
        unknown = [c for c in cols if c not in fr.COLUMNS]
        if unknown:
            raise ValueError(f"unknown column(s): {', '.join(unknown)}")
    if remote.is_url(paths):
        return remote.load_url(paths, engine, columns=cols, npartitions=npartitions, storage_options=storage_options,
                               pfilter=_parquet_filter(to_utc(since), to_utc(until), platforms))
    src = discover(paths)
    missing = [str(p) for p in src.jsonl if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such results file: {missing[0]}")
    since_ts, until_ts = to_utc(since), to_utc(until)
    pfilter = _parquet_filter(since_ts, until_ts, platforms)
    added: list[str] = []
    if cols is not None:  # the row filters need their columns; they are dropped again below
        for c in ((["measured_at"] if since_ts is not None or until_ts is not None else [])
                  + (["platform"] if platforms else [])):
            if c not in cols:
                cols.append(c)
                added.append(c)
    if engine == "dask":
        out = _load_dask(src, npartitions, cols, pfilter, since_ts, until_ts, platforms)
        if added:
            kept = out[[c for c in cols if c not in added]]
            return mark_partitioned(kept, partitioned_by(out), _DASK_ATTRS.get(out._name))
        return out
    parts: list[pd.DataFrame] = []
    reports: list[dict[str, Any]] = list(src.compact_reports)
    if src.parquet_groups:
        files = [f for group in src.parquet_groups.values() for f in group]
        parts.append(read_parquet_files(files, cols, pfilter))
    if src.jsonl:
        df, rep = _read_jsonl_files(src.jsonl, cols)
        df = select(df, since_ts, until_ts, platforms)
        if cols is None or "id" in cols:
            df = _dedupe(df)
        parts.append(df)
        reports.append(rep)
    df = concat(parts) if parts else fr.empty_frame(cols)
    df = df.reset_index(drop=True)
    if added:
        df = df.drop(columns=added)
    df.attrs["read_report"] = merge_reports(reports)
    return df


def _chunks(items: list[Any], n: int | None) -> list[list[Any]]:
    if not items:
        return []
    if not n or n >= len(items):
        return [[x] for x in items]
    size = -(-len(items) // n)
    return [items[i:i + size] for i in range(0, len(items), size)]


def _read_parquet_part(files: Sequence[str], columns: list[str] | None = None, filters: Any = None) -> pd.DataFrame:
    return read_parquet_files(list(files), columns, filters)


def _load_dask(src: Sources, npartitions: int | None, cols: list[str] | None, pfilter: Any,
               since: pd.Timestamp | None, until: pd.Timestamp | None, platforms: Sequence[str] | None) -> Any:
    import dask.dataframe as dd
    from dask.dataframe.utils import clear_known_categories

    meta = clear_known_categories(fr.empty_frame(cols))
    reports = list(src.compact_reports)
    pieces = []
    if src.parquet_groups:
        groups = [[str(f) for f in g] for g in src.parquet_groups.values()]
        chunks = _chunks(groups, npartitions)
        flat = [[f for g in chunk for f in g] for chunk in chunks]
        pieces.append(("vantage", dd.from_map(_read_parquet_part, flat, columns=cols, filters=pfilter,
                                              meta=meta, enforce_metadata=False)))
    if src.jsonl:
        files = [str(f) for f in src.jsonl]
        jd = dd.from_map(_read_jsonl_part, [[f] for f in files], columns=cols, meta=meta, enforce_metadata=False)
        jd = select(jd, since, until, platforms)
        pieces.append((None, jd))
        reports.append({"files": len(files), "lines": 0, "torn_final": scan_torn_tails(src.jsonl),
                        "bad_lines": []})
    if not pieces:
        out = dd.from_pandas(fr.empty_frame(cols), npartitions=1)
        return mark_partitioned(out, "vantage", {"read_report": merge_reports(reports)})
    if len(pieces) == 1 and pieces[0][0] == "vantage":
        out = pieces[0][1]
    else:
        both = dd.concat([p for _, p in pieces]) if len(pieces) > 1 else pieces[0][1]
        nparts = npartitions or max(1, min(both.npartitions, 64))
        out = both.shuffle(on="vantage", npartitions=nparts) if "vantage" in both.columns else both
    rep = merge_reports(reports)
    if src.jsonl:
        rep["lines"] = None  # counted when the data is computed; only the torn-tail scan is known up front
    return mark_partitioned(out, "vantage" if "vantage" in out.columns else None, {"read_report": rep})


def summarize_report(rep: dict[str, Any]) -> str:
    if not rep:
        return ""
    r = ReadReport(files=rep.get("files", 0) or 0, lines=rep.get("lines", 0) or 0,
                   torn_final=list(rep.get("torn_final", [])), bad_lines=list(rep.get("bad_lines", [])))
    return r.summary()


# ----------------------------------------------------------------------------------------------- OONI
_PLATFORM_HOSTS = {
    "facebook": ("facebook.com", "fb.com", "fbcdn.net", "messenger.com", "facebook.net"),
    "twitter": ("twitter.com", "x.com", "twimg.com", "t.co"),
    "instagram": ("instagram.com", "cdninstagram.com"),
    "telegram": ("telegram.org", "t.me", "telegram.me", "telesco.pe"),
    "whatsapp": ("whatsapp.com", "whatsapp.net", "wa.me"),
    "youtube": ("youtube.com", "youtu.be", "ytimg.com", "googlevideo.com"),
    "signal": ("signal.org", "whispersystems.org"),
    "wikipedia": ("wikipedia.org",),
    "google": ("google.com",),
    "tiktok": ("tiktok.com",),
}
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "or", "ne", "go", "gen", "nic"}
_TEST_PLATFORM = {"telegram": "telegram", "whatsapp": "whatsapp", "facebook_messenger": "facebook",
                  "signal": "signal", "tor": "tor", "vanilla_tor": "tor", "torsf": "tor", "psiphon": "psiphon"}


def platform_of(url: Any, test_name: Any = None) -> str | None:
    """Platform from an OONI input URL (host suffix) or, for IM tests, from the test name."""
    if isinstance(test_name, str) and test_name in _TEST_PLATFORM:
        return _TEST_PLATFORM[test_name]
    if not isinstance(url, str) or not url:
        return test_name if isinstance(test_name, str) else None
    from urllib.parse import urlsplit

    host = (urlsplit(url if "://" in url else "//" + url).hostname or "").lower().rstrip(".")
    for platform, suffixes in _PLATFORM_HOSTS.items():
        if any(host == s or host.endswith("." + s) for s in suffixes):
            return platform
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
        return host  # an address, not a name
    except ValueError:
        pass
    parts = host.removeprefix("www.").split(".")
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in _SECOND_LEVEL:
        return ".".join(parts[-3:])  # example.co.uk, example.com.br
    return ".".join(parts[-2:]) if len(parts) >= 2 else (host or None)


def _raw_ooni_status(m: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """Minimal status of a raw OONI measurement (used only when read_ooni hands back raw documents)."""
    tk = m.get("test_keys") or {}
    test = m.get("test_name")
    if test == "web_connectivity":
        blocking, accessible = tk.get("blocking"), tk.get("accessible")
        if blocking is False and accessible is True:
            return "ok", None, None
        if isinstance(blocking, str):
            return "blocked", *{"dns": ("dns", "dns"), "tcp_ip": ("tcp", "tcp_ip"),
                                "http-failure": ("http", "http-failure"),
                                "http-diff": ("http", "http-diff")}.get(blocking, (None, blocking))
        return "inconclusive", None, None
    flags = {"telegram": ("telegram_http_blocking", "telegram_tcp_blocking"),
             "facebook_messenger": ("facebook_tcp_blocking", "facebook_dns_blocking"),
             "whatsapp": ("whatsapp_endpoints_blocked", "registration_server_status")}
    if test in flags:
        vals = [tk.get(k) for k in flags[test]]
        if any(v is True or v == "blocked" for v in vals):
            return "blocked", None, test
        if all(v is False or v == "ok" for v in vals if v is not None) and any(v is not None for v in vals):
            return "ok", None, None
    if test == "signal" and tk.get("signal_backend_status") in ("ok", "blocked"):
        return ("ok", None, None) if tk["signal_backend_status"] == "ok" else ("blocked", None, "signal")
    return "inconclusive", None, None


def ooni_frame(obj: Any) -> pd.DataFrame:
    """Map what ``read_ooni`` returned (a frame, reachprobe/1 records, or raw OONI documents) to frame rows.

    Whatever the shape: ``vantage = "ooni-AS<asn>"``, ``target`` = the OONI input (URL), ``platform``
    derived from the input URL or the test name, ``source = "ooni"``.
    """
    if isinstance(obj, pd.DataFrame):
        return _ooni_from_frame(obj)
    rows = list(obj)
    recs: list[dict[str, Any]] = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        if "verdict" in r or "vantage" in r and isinstance(r.get("vantage"), dict):  # reachprobe/1 shaped
            v = r.get("vantage") or {}
            t = r.get("target") or {}
            vd = r.get("verdict") or {}
            ooni = r.get("ooni") if isinstance(r.get("ooni"), dict) else {}
            inp = r.get("input") or ooni.get("input") or t.get("url") or t.get("input") or t.get("name")
            test = r.get("test_name") or ooni.get("test_name")
            asn = fr._as_asn(v.get("asn"))
            recs.append({"measured_at": r.get("measured_at"), "asn": asn, "cc": v.get("cc"),
                         "network": v.get("network"), "vantage": f"ooni-AS{asn}" if asn is not None else "ooni",
                         "platform": t.get("platform") or platform_of(inp, test), "target": inp,
                         "kind": t.get("kind") or "web", "scope": t.get("scope"), "status": vd.get("status"),
                         "layer": vd.get("layer"), "method": vd.get("method"), "rule": vd.get("rule"),
                         "confidence": vd.get("confidence"), "confirmed": vd.get("confirmed"),
                         "run_id": r.get("run_id") or r.get("report_id"), "id": r.get("id")})
        elif "status" in r and ("measured_at" in r or "measurement_start_time" in r):  # flat rows
            recs.extend(_ooni_from_frame(pd.DataFrame([r])).astype(object).to_dict("records"))
        else:  # raw OONI measurement document
            asn = fr._as_asn(r.get("probe_asn"))
            inp = r.get("input")
            if isinstance(inp, list):
                inp = ",".join(map(str, inp))
            test = r.get("test_name")
            status, layer, method = _raw_ooni_status(r)
            ts = r.get("measurement_start_time")
            recs.append({"measured_at": ts.replace(" ", "T") + "Z" if isinstance(ts, str) and "T" not in ts else ts,
                         "asn": asn, "cc": r.get("probe_cc"), "network": r.get("probe_network_name"),
                         "vantage": f"ooni-AS{asn}" if asn is not None else "ooni",
                         "platform": platform_of(inp, test), "target": inp or test, "kind": "web",
                         "status": status, "layer": layer, "method": method, "rule": f"ooni.{test}",
                         "confidence": None, "confirmed": False, "run_id": r.get("report_id"),
                         "id": r.get("measurement_uid") or r.get("id")})
    df = pd.DataFrame.from_records(recs, columns=list(fr.COLUMNS)) if recs else pd.DataFrame(columns=list(fr.COLUMNS))
    df["source"] = "ooni"
    return fr.normalize(df)


def _ooni_from_frame(d: pd.DataFrame) -> pd.DataFrame:
    """A frame from ``read_ooni`` (OONI or frame column names) -> frame rows, vectorised."""
    n = len(d)

    def col(*names: str) -> pd.Series:
        for name in names:
            if name in d.columns:
                return d[name].astype(object).where(d[name].notna(), None).reset_index(drop=True)
        return pd.Series([None] * n, dtype=object)

    asn = col("asn", "probe_asn").map(fr._as_asn)
    inp = col("input", "url")
    target = inp.where(inp.notna(), col("target"))
    test = col("test_name")
    platform = col("platform")
    derived = pd.Series([platform_of(u, t) for u, t in zip(target, test)], dtype=object)
    platform = platform.where(platform.notna() & (platform != "other"), derived)
    ts = col("measured_at", "measurement_start_time")
    ts = ts.map(lambda v: v.replace(" ", "T") + "Z" if isinstance(v, str) and "T" not in v and "+" not in v else v)
    out = pd.DataFrame({
        "measured_at": pd.to_datetime(ts, utc=True, errors="coerce", format="mixed") if n else ts,
        "vantage": asn.map(lambda a: f"ooni-AS{a}" if a is not None else "ooni"),
        "asn": asn, "cc": col("cc", "probe_cc"), "network": col("network", "probe_network_name"),
        "platform": platform, "target": target, "kind": col("kind").where(col("kind").notna(), "web"),
        "scope": col("scope"), "status": col("status"), "layer": col("layer"), "method": col("method"),
        "rule": col("rule"), "confidence": col("confidence"), "confirmed": col("confirmed"),
        "run_id": col("run_id", "report_id"), "id": col("id", "measurement_uid"), "source": "ooni",
    })
    return fr.normalize(out)


def load_ooni(files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """OONI measurement files through ``analysis.ooni.read_ooni``, as frame rows."""
    from analysis.ooni import read_ooni  # a colleague's module; imported lazily

    frames = [ooni_frame(read_ooni(f)) for f in files]
    df = concat(frames) if frames else fr.empty_frame()
    df = df.reset_index(drop=True)
    df.attrs["read_report"] = {"files": len(files), "lines": len(df), "torn_final": [], "bad_lines": [],
                               "skipped": 0, "summary": ""}
    return df


def add_frames(a: Any, b: pd.DataFrame) -> Any:
    """``a`` (pandas or Dask) plus the rows of pandas frame ``b``."""
    if b is None or not len(b):
        return a
    if is_dask(a):
        import dask.dataframe as dd

        rep = merge_reports([read_report(a), b.attrs.get("read_report", {})])
        both = dd.concat([a, dd.from_pandas(b, npartitions=1)])
        out = both.shuffle(on="vantage", npartitions=max(1, a.npartitions))
        return mark_partitioned(out, "vantage", {"read_report": rep})
    out = concat([a, b]).reset_index(drop=True)
    out.attrs["read_report"] = merge_reports([a.attrs.get("read_report", {}), b.attrs.get("read_report", {})])
    return out
